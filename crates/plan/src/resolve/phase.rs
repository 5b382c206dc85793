//! Phases: scenario mix and load model (closed, ramping VUs, open, ramping rate, iterations).

use std::time::Duration;

use super::*;
use crate::model::*;
use crate::raw::*;

pub(super) fn resolve_phase(rs: &Resolver, index: usize, p: &S<RawPhase>, scenarios: &NameSet) -> R<Phase> {
    let errs = &rs.errs;
    let r = &p.value;
    let name = match &r.name {
        Some(n) => rs.string(n)?,
        None => format!("phase-{}", index + 1),
    };
    let find = |n: &S<String>| -> R<usize> {
        scenarios.position(&n.value).ok_or_else(|| {
            let hint = scenarios.hint(&n.value, "scenarios");
            errs.hint(
                &n.referenced,
                format!("phase `{name}`: no scenario named `{}`", n.value),
                hint,
            )
        })
    };
    let mix = match (&r.scenario, &r.scenarios) {
        (Some(s), None) => vec![Weighted::new(find(s)?, 1)],
        (None, Some(list)) if !list.is_empty() => {
            let mut mix = Vec::new();
            for w in list {
                let weight = match &w.value.weight {
                    Some(x) => rs.count(x, "weight", 1)? as u32,
                    None => 1,
                };
                mix.push(Weighted::new(find(&w.value.name)?, weight));
            }
            mix
        }
        (Some(_), Some(_)) => {
            return Err(errs.at(
                &p.referenced,
                format!("phase `{name}`: give `scenario:` or `scenarios:`, not both"),
            ))
        }
        _ => {
            return Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` has no scenario"),
                "add `scenario: NAME` (or a weighted `scenarios:` list)",
            ))
        }
    };
    let stages = |start_key: &str| -> R<Vec<Stage>> {
        let list = r.stages.as_deref().unwrap_or(&[]);
        if list.is_empty() {
            return Err(errs.at(&p.referenced, format!("phase `{name}`: `stages:` is empty")));
        }
        list.iter()
            .map(|s| {
                let target = rs.number(&s.value.target, "stage target")?;
                if !(0.0..=ABSURD).contains(&target) {
                    return Err(errs.at(
                        &s.value.target.referenced,
                        format!("stage target {target} is out of range (0 to 1,000,000)"),
                    ));
                }
                let _ = start_key;
                Ok(Stage {
                    target,
                    duration: rs.duration(&s.value.duration, "stage duration")?,
                })
            })
            .collect()
    };
    let dur = |v: &Option<Any>, key: &str| -> R<Duration> {
        match v {
            Some(d) => rs.positive_duration(d, key),
            None => Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` needs `{key}:`"),
                "e.g. `duration: 2m`",
            )),
        }
    };
    let max_vus_of = |default: u64| -> R<u32> {
        Ok(match &r.max_vus {
            Some(m) => rs.count(m, "max_vus", 1)? as u32,
            None => default.clamp(1, ABSURD as u64) as u32,
        })
    };
    let pre_vus_of = |max_vus: u32, rate: f64| -> R<u32> {
        let pre = match &r.pre_vus {
            Some(x) => rs.count(x, "pre_vus", 0)? as u32,
            None => (rate.ceil() as u32).min(max_vus),
        };
        if pre > max_vus {
            let loc = r.pre_vus.as_ref().map(|x| x.referenced).unwrap_or(p.referenced);
            return Err(errs.at(&loc, format!("pre_vus ({pre}) is above max_vus ({max_vus})")));
        }
        Ok(pre)
    };
    let executor = r.executor.as_ref().map(|e| e.value.replace('_', "-"));
    let kind = match executor.as_deref() {
        Some(k @ ("closed" | "ramping-vus" | "open" | "ramping-rate" | "iterations")) => k.to_string(),
        Some(other) => {
            let loc = r.executor.as_ref().map(|e| e.referenced).unwrap_or(p.referenced);
            return Err(errs.hint(
                &loc,
                format!("`{other}` is not an executor"),
                "use closed, ramping-vus, open, ramping-rate or iterations (or leave it out: it is inferred)",
            ));
        }
        None if r.iterations.is_some() => "iterations".into(),
        None if r.stages.is_some() && (r.start_rate.is_some() || r.rate.is_some() || r.max_vus.is_some()) => {
            "ramping-rate".into()
        }
        None if r.stages.is_some() => "ramping-vus".into(),
        None if r.rate.is_some() => "open".into(),
        None if r.vus.is_some() || r.duration.is_some() => "closed".into(),
        None => {
            return Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` has no load"),
                "give `vus` + `duration` (closed), `rate` + `duration` (open), `stages`, or `iterations`",
            ))
        }
    };
    let load = match kind.as_str() {
        "closed" => {
            if let Some(rt) = &r.rate {
                return Err(errs.hint(
                    &rt.referenced,
                    format!("phase `{name}`: `rate` and `vus` do not mix"),
                    "an open phase has `rate` + `max_vus`; a closed one `vus`",
                ));
            }
            let vus = match &r.vus {
                Some(v) => rs.count(v, "vus", 1)? as u32,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `vus:`"))),
            };
            Load::Closed {
                vus,
                duration: dur(&r.duration, "duration")?,
            }
        }
        "ramping-vus" => Load::RampingVus {
            start_vus: r
                .start_vus
                .as_ref()
                .map(|v| rs.count(v, "start_vus", 0))
                .transpose()?
                .unwrap_or(0) as u32,
            stages: stages("start_vus")?,
        },
        "open" => {
            let rate = match &r.rate {
                Some(x) => rs.rate(x, "rate")?,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `rate:`"))),
            };
            let max_vus = max_vus_of(((rate.ceil() as u64) * 10).max(100))?;
            Load::Open {
                rate,
                duration: dur(&r.duration, "duration")?,
                max_vus,
                pre_vus: pre_vus_of(max_vus, rate)?,
            }
        }
        "ramping-rate" => {
            let start_rate = match r.start_rate.as_ref().or(r.rate.as_ref()) {
                Some(x) => {
                    let s = rs.scalar(x, "start_rate")?;
                    let v = parse_rate(&s).map_err(|e| errs.at(&x.referenced, format!("start_rate: {e}")))?;
                    if !(0.0..=ABSURD).contains(&v) {
                        return Err(errs.at(&x.referenced, format!("start_rate {v} is out of range")));
                    }
                    v
                }
                None => 0.0,
            };
            let st = stages("start_rate")?;
            let peak = st.iter().map(|s| s.target).fold(start_rate, f64::max);
            if peak <= 0.0 {
                return Err(errs.at(&p.referenced, format!("phase `{name}`: the rate never rises above 0")));
            }
            let max_vus = max_vus_of(((peak.ceil() as u64) * 10).max(100))?;
            Load::RampingRate {
                start_rate,
                stages: st,
                max_vus,
                pre_vus: pre_vus_of(max_vus, start_rate)?,
            }
        }
        _ => {
            let iterations = match &r.iterations {
                Some(x) => rs.count(x, "iterations", 1)?,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `iterations:`"))),
            };
            let vus = r.vus.as_ref().map(|v| rs.count(v, "vus", 1)).transpose()?.unwrap_or(1) as u32;
            let max_duration = match &r.max_duration {
                Some(d) => rs.positive_duration(d, "max_duration")?,
                None => Duration::from_secs(600),
            };
            Load::Iterations {
                vus,
                iterations,
                max_duration,
            }
        }
    };
    let grace = match &r.grace {
        Some(g) => rs.duration(g, "grace")?,
        None => Duration::from_secs(30),
    };
    Ok(Phase {
        name,
        mix,
        load,
        grace,
        variant: None,
    })
}
