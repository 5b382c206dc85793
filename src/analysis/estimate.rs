//! Capacity from any run (`capacity_estimate`): a run whose phases ramp the load, or step
//! through several load levels, already holds what a capacity search measures: latency and
//! throughput at each load. This fold groups the run's seconds by the load they ran at and
//! hands the levels to the capacity search's own conclusion (`capacity::conclude`), so an
//! estimate and a search say the same things in the same words (docs/capacity.md).
//!
//! - Closed phases (`vus`, `ramping_vus`, `iterations`): the load of a second is its VUs.
//!   Open phases (`rate`, `ramping_rate`): arrivals offered in it (started + dropped) per second.
//! - The first second of every phase is a warm-up and left out, as are partial seconds and a
//!   ramp's way down (the queue built at its peak still drains there).
//! - A constant phase is one level (its two halves compared for a stable p95); a ramping
//!   phase's seconds are grouped by load, and neighbouring loads merged until each level holds
//!   at least [`MIN_LEVEL_S`] seconds and [`MIN_LEVEL_REQUESTS`] requests.
//! - The SLO is the plan's run-wide latency and error-rate thresholds: without a latency
//!   threshold there is no estimate (nothing says what "holds" means). Configuration errors
//!   (a 424 "not configured" fails at any load) do not count against the error rate.
//! - Levels come from the phases of one scenario and load model (the largest such group), and
//!   there must be at least [`MIN_LEVELS`] of them spanning at least a factor of 2.

use std::collections::BTreeMap;

use super::PhaseAgg;
use crate::capacity::{self, Model, SearchOptions, Searched};
use crate::describe::SpecTerms;
use crate::outcome::{classify, ErrorClass};
use crate::recorder::Interval;
use crate::rundir::summary::CapacityEstimate;
use crate::rundir::{LoadModel, PhaseMeta, RunMeta, ThresholdSpec};
use stampede_plan::Metric;

/// A level of a ramp holds at least this many seconds…
pub const MIN_LEVEL_S: f64 = 2.0;
/// …and this many requests, so its p95 means something.
pub const MIN_LEVEL_REQUESTS: u64 = 100;
/// Fewer levels than this are no curve to estimate from.
pub const MIN_LEVELS: usize = 3;
/// The recommendation's margin below the SLO capacity, as `stampede capacity` defaults to.
const MARGIN: f64 = 0.2;
/// A ramp's second at less than this share of the load it reached before is a ramp down.
const DOWN: f64 = 0.98;
/// Seconds shorter than this (a phase's last, partial one) hold a drain, not a load level.
const MIN_SECOND: f64 = 0.5;

fn model_of(m: LoadModel) -> Model {
    match m {
        LoadModel::Open | LoadModel::RampingRate => Model::Open,
        LoadModel::Closed | LoadModel::RampingVus | LoadModel::Iterations => Model::Closed,
    }
}

fn ramps(m: LoadModel) -> bool {
    matches!(m, LoadModel::RampingVus | LoadModel::RampingRate)
}

/// Where a second goes: its phase, and for a ramp its load (a constant phase: which half).
#[derive(PartialEq, Eq, PartialOrd, Ord, Clone, Copy)]
enum Part {
    /// A ramp's load, in thousandths (a map key).
    Load(u64),
    /// A constant phase's first or second half.
    Half(bool),
}

/// The fold: every measured second of the run, added to its phase's part.
pub struct Levels {
    phases: Vec<PhaseMeta>,
    parts: BTreeMap<(usize, Part), PhaseAgg>,
    /// Each ramping phase's highest load so far: a second below it is a ramp down.
    highest: Vec<f64>,
}

impl Levels {
    pub fn new(meta: &RunMeta) -> Levels {
        Levels {
            phases: meta.phases.clone(),
            parts: BTreeMap::new(),
            highest: vec![0.0; meta.phases.len()],
        }
    }

    pub fn add(&mut self, iv: &Interval) {
        if iv.seq == 0 || iv.dur < MIN_SECOND {
            return;
        }
        let Some(i) = self.phases.iter().position(|p| p.name == iv.phase) else {
            return;
        };
        let pm = &self.phases[i];
        let part = if ramps(pm.model) {
            let load = match model_of(pm.model) {
                Model::Closed => iv.vus as f64,
                Model::Open => (iv.iterations + iv.dropped) as f64 / iv.dur,
            };
            // A ramp down: the queue built at the peak still drains, so its latency belongs to
            // the higher load, not to this one.
            if load <= 0.0 || load < DOWN * self.highest[i] {
                return;
            }
            self.highest[i] = self.highest[i].max(load);
            Part::Load((load * 1000.0).round() as u64)
        } else {
            Part::Half(iv.seq as f64 >= pm.planned_s / 2.0)
        };
        self.parts
            .entry((i, part))
            .or_insert_with(|| PhaseAgg::new(&pm.name))
            .add(iv);
    }

    /// The estimate, when the run has the levels and the SLO for one.
    pub fn finish(self, meta: &RunMeta) -> Option<CapacityEstimate> {
        let mut groups: BTreeMap<(Vec<String>, bool), Vec<usize>> = BTreeMap::new();
        for (i, p) in meta.phases.iter().enumerate() {
            let open = model_of(p.model) == Model::Open;
            groups.entry((p.scenarios.clone(), open)).or_default().push(i);
        }
        let mut best: Option<(Vec<Level>, Vec<usize>)> = None;
        for phases in groups.into_values() {
            let levels: Vec<Level> = phases
                .iter()
                .flat_map(|&i| self.levels_of(i, &meta.phases[i]))
                .collect();
            if best.as_ref().is_none_or(|b| levels.len() > b.0.len()) {
                best = Some((levels, phases));
            }
        }
        let (levels, phases) = best?;
        let group: Vec<&PhaseMeta> = phases.iter().map(|&i| &meta.phases[i]).collect();
        let slo = slo(&meta.thresholds, &group);
        if !slo.iter().any(is_latency) {
            return None;
        }
        let (lo, hi) = levels
            .iter()
            .fold((f64::INFINITY, 0.0f64), |(a, b), l| (a.min(l.load), b.max(l.load)));
        if levels.len() < MIN_LEVELS || hi < 2.0 * lo {
            return None;
        }
        let model = model_of(group[0].model);
        let steps: Vec<_> = levels
            .iter()
            .filter_map(|l| {
                capacity::step::row(
                    (l.load * 10.0).round() / 10.0,
                    &without_configuration_errors(&l.agg),
                    &slo,
                    l.stable,
                )
            })
            .collect();
        let names: Vec<&str> = group.iter().map(|p| p.name.as_str()).collect();
        let (short, long) = steps.iter().fold((f64::INFINITY, 0.0f64), |(a, b), s| {
            (a.min(s.duration_s), b.max(s.duration_s))
        });
        let basis = format!(
            "estimated from this run's own seconds: {} load levels from {} to {} {} in phase{} {} ({:.0}-{:.0} s each, the first second of every phase left out), judged by {} (configuration errors, which fail at any load, not counted)",
            steps.len(),
            capacity::result::show(model, lo),
            capacity::result::show(model, hi),
            model.unit(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            short,
            long,
            slo.iter().map(|t| t.expr.as_str()).collect::<Vec<_>>().join(" and ")
        );
        let opts = SearchOptions {
            model,
            scenario: group[0].scenarios.join(", "),
            scenario_index: 0,
            slo: slo.clone(),
            min: lo,
            max: hi,
            max_vus: 0,
            step_duration: std::time::Duration::ZERO,
            warmup: std::time::Duration::from_secs(1),
            ramp_down: std::time::Duration::ZERO,
            growth: 2.0,
            margin: MARGIN,
        };
        let searched = Searched {
            steps,
            stop_reason: "the run's own load levels".into(),
            aborted: false,
            interrupted: false,
        };
        let mut c = capacity::conclude(&opts, &searched);
        c.steps.sort_by(|a, b| a.load.total_cmp(&b.load));
        c.warmup_s = 1.0;
        c.step_duration_s = short;
        let overloaded = overloaded(&c, &slo);
        let uncertainty = uncertainty(&c, model);
        if let Some(o) = overloaded {
            c.statement = format!(
                "{} Overloaded from ~{} {}.",
                c.statement,
                capacity::result::show(model, o),
                model.unit()
            );
        }
        Some(CapacityEstimate {
            capacity: c,
            basis,
            uncertainty,
            overloaded,
        })
    }

    /// Phase `i`'s levels: a constant phase is one (two halves), a ramp's loads are merged
    /// with their neighbours until each level is long enough.
    fn levels_of(&self, i: usize, pm: &PhaseMeta) -> Vec<Level> {
        let parts: Vec<(&Part, &PhaseAgg)> = self
            .parts
            .range((i, Part::Load(0))..)
            .take_while(|((j, _), _)| *j == i)
            .map(|((_, p), a)| (p, a))
            .collect();
        if parts.is_empty() {
            return Vec::new();
        }
        if !ramps(pm.model) {
            let mut agg = PhaseAgg::new(&pm.name);
            parts.iter().for_each(|(_, a)| agg.absorb(a));
            let stable = parts.len() == 2 && same_p95(parts[0].1, parts[1].1);
            return vec![Level {
                load: pm.peak,
                agg,
                stable,
            }];
        }
        let mut out: Vec<Level> = Vec::new();
        let mut open: Option<(PhaseAgg, f64, Vec<&PhaseAgg>)> = None;
        for (part, a) in &parts {
            let Part::Load(l) = part else { continue };
            let (agg, weighted, members) = open.get_or_insert_with(|| (PhaseAgg::new(&pm.name), 0.0, Vec::new()));
            agg.absorb(a);
            *weighted += *l as f64 / 1000.0 * a.duration_s;
            members.push(a);
            if agg.duration_s >= MIN_LEVEL_S && agg.requests() >= MIN_LEVEL_REQUESTS {
                if let Some((agg, w, m)) = open.take() {
                    out.push(level(agg, w, &m));
                }
            }
        }
        // What is left is too short for a level of its own: it joins the last one.
        if let Some((agg, w, m)) = open {
            match out.last_mut() {
                Some(last) => {
                    let total = last.agg.duration_s + agg.duration_s;
                    last.load = (last.load * last.agg.duration_s + w) / total;
                    last.agg.absorb(&agg);
                }
                None => out.push(level(agg, w, &m)),
            }
        }
        out
    }
}

/// One load level: the load (duration-weighted), its seconds, and whether its p95 was stable.
struct Level {
    load: f64,
    agg: PhaseAgg,
    stable: bool,
}

fn level(agg: PhaseAgg, weighted: f64, members: &[&PhaseAgg]) -> Level {
    let load = weighted / agg.duration_s.max(1e-9);
    let stable = if members.len() >= 2 {
        let mid = members.len() / 2;
        let half = |ms: &[&PhaseAgg]| {
            let mut a = PhaseAgg::new(&agg.name);
            ms.iter().for_each(|m| a.absorb(m));
            a
        };
        same_p95(&half(&members[..mid]), &half(&members[mid..]))
    } else {
        false
    };
    Level { load, agg, stable }
}

/// Whether two aggregates' p95 agree within 10 % or 2 ms, as a search's halves must.
fn same_p95(a: &PhaseAgg, b: &PhaseAgg) -> bool {
    let p95 = |x: &PhaseAgg| {
        let m = x.merged(None);
        (!m.latency.is_empty()).then(|| m.latency.value_at_quantile(0.95) as f64 / 1000.0)
    };
    match (p95(a), p95(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 2.0 || (x - y).abs() / x.max(y) <= 0.10,
        _ => false,
    }
}

/// The level with its configuration errors taken out of its errors (the requests stay): a
/// request the system is not set up for (a 404, a 424 "not configured") fails at any load, so
/// it says nothing about capacity; the report lists those errors apart.
fn without_configuration_errors(agg: &PhaseAgg) -> PhaseAgg {
    let mut a = agg.clone();
    for s in &mut a.steps {
        let configuration: u64 = s
            .kinds
            .iter()
            .filter(|(k, _)| classify(k) == ErrorClass::Configuration)
            .map(|(_, n)| n)
            .sum();
        s.errors -= configuration.min(s.errors);
    }
    a
}

fn is_latency(t: &ThresholdSpec) -> bool {
    matches!(t.metric(), Some(Metric::Avg | Metric::Max | Metric::Percentile(_)))
}

/// The plan's run-wide latency and error-rate thresholds (and those of the group's phases),
/// each once: what "holds" means.
fn slo(thresholds: &[ThresholdSpec], group: &[&PhaseMeta]) -> Vec<ThresholdSpec> {
    let mut out: Vec<ThresholdSpec> = Vec::new();
    for t in thresholds {
        let scoped = t.phase.as_ref().is_none_or(|p| group.iter().any(|g| &g.name == p));
        let judged = is_latency(t) || matches!(t.metric(), Some(Metric::ErrorRate));
        if t.step.is_none() && scoped && judged && !out.iter().any(|o| o.expr == t.expr) {
            out.push(ThresholdSpec {
                phase: None,
                ..t.clone()
            });
        }
    }
    out
}

/// The first level past the point of no service: beyond the knee (or the SLO's break) with
/// its p95 at twice the latency limit, or 5 % of its requests failing.
fn overloaded(c: &crate::analysis::Capacity, slo: &[ThresholdSpec]) -> Option<f64> {
    let limit = slo
        .iter()
        .filter(|t| matches!(t.metric(), Some(Metric::Percentile(q)) if q >= 90.0))
        .map(|t| t.value)
        .fold(f64::INFINITY, f64::min);
    let from = c.breaks_at?;
    c.steps
        .iter()
        .filter(|s| s.load >= from)
        .find(|s| s.error_rate >= 0.05 || (limit.is_finite() && s.p95_ms >= 2.0 * limit))
        .map(|s| s.load)
}

/// How far to trust the estimate, in words.
fn uncertainty(c: &crate::analysis::Capacity, model: Model) -> String {
    let show = |x: f64| capacity::result::show(model, x);
    let mut parts = Vec::new();
    match (c.slo_capacity, c.breaks_at) {
        (Some(a), Some(b)) => parts.push(format!(
            "the SLO capacity lies between {} and {} {} (the last level that met the SLO and the first that broke it)",
            show(a),
            show(b),
            model.unit()
        )),
        (Some(a), None) => parts.push(format!(
            "at least {} {}: the SLO never broke within the loads run",
            show(a),
            model.unit()
        )),
        _ => {}
    }
    let unstable = c.steps.iter().filter(|s| !s.p95_stable).count();
    if unstable > 0 {
        parts.push(format!(
            "{unstable} of {} levels had halves whose p95 differed by more than 10 % (a ramp's levels change while measured; a longer or stepped ramp narrows this)",
            c.steps.len()
        ));
    }
    if parts.is_empty() {
        "every level's p95 was stable".into()
    } else {
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{new_hist, StepInterval};

    /// The ideal 8-worker × 50 ms pool at `vus`: 160 req/s at most, R = max(50 ms, N/160 s).
    fn second(phase: &str, seq: u64, vus: u64) -> Interval {
        let n = vus as f64;
        let rps = (20.0 * n).min(160.0);
        let ms = (n / rps * 1000.0).max(50.0) as u64;
        let mut h = new_hist();
        h.record_n(ms * 1000, rps as u64).unwrap();
        let mut iv = crate::analysis::series::tests::interval(phase, seq as f64);
        iv.seq = seq;
        iv.vus = vus;
        iv.steps = vec![StepInterval {
            requests: rps as u64,
            latency: h.clone(),
            service: h,
            ..StepInterval::empty("w")
        }];
        iv
    }

    fn meta(phases: serde_json::Value, thresholds: &str) -> RunMeta {
        let thresholds: Vec<ThresholdSpec> = stampede_plan::parse_thresholds(thresholds)
            .unwrap()
            .iter()
            .map(crate::describe::threshold_spec)
            .collect();
        serde_json::from_value(serde_json::json!({
            "schema": "stampede.run/v1", "name": "t", "plan_file": "p.yaml", "tool_version": "0",
            "host": "h", "os": "linux", "cores": 2, "memory_bytes": 0, "started_at": "2026-01-01T00:00:00Z",
            "status": "completed", "workers": 1, "segment": "0/1",
            "phases": phases, "steps": ["w"], "thresholds": thresholds
        }))
        .unwrap()
    }

    fn phase(name: &str, model: &str, peak: f64, planned_s: f64) -> serde_json::Value {
        serde_json::json!({ "name": name, "model": model, "description": "", "scenarios": ["s"],
                            "planned_s": planned_s, "peak": peak })
    }

    #[test]
    fn a_ramp_of_the_ideal_pool_gives_its_knee_capacity_and_peak() {
        let m = meta(
            serde_json::json!([phase("ramp", "ramping_vus", 48.0, 48.0)]),
            "p95 < 200ms",
        );
        let mut l = Levels::new(&m);
        for s in 0..48 {
            l.add(&second("ramp", s, s + 1));
        }
        let e = l.finish(&m).expect("an estimate");
        let c = &e.capacity;
        // Response time N/160 s: 200 ms at 32 VUs.
        let slo = c.slo_capacity.unwrap();
        assert!((28.0..32.0).contains(&slo), "{slo} {}", c.statement);
        assert!((6.0..=10.0).contains(&c.saturation.unwrap()), "{:?}", c.saturation);
        assert_eq!(c.peak_throughput_rps, 160.0);
        assert!(c.steps.iter().all(|s| s.duration_s >= MIN_LEVEL_S), "{:?}", c.steps);
        assert!(e.basis.contains("phase ramp"), "{}", e.basis);
        assert!(e.uncertainty.contains("between"), "{}", e.uncertainty);
        // 400 ms (twice the limit) at 64 VUs: beyond the loads run, so not overloaded yet.
        assert_eq!(e.overloaded, None);
    }

    #[test]
    fn a_ramp_down_is_left_out() {
        let m = meta(
            serde_json::json!([phase("ramp", "ramping_vus", 48.0, 96.0)]),
            "p95 < 200ms",
        );
        let mut l = Levels::new(&m);
        for s in 0..48 {
            l.add(&second("ramp", s, s + 1));
        }
        // Down again with the queue of the peak still draining: 900 ms at every load.
        for s in 48..96 {
            let mut iv = second("ramp", s, 96 - s);
            let mut h = new_hist();
            h.record_n(900_000, 50).unwrap();
            iv.steps[0].latency = h.clone();
            iv.steps[0].service = h;
            l.add(&iv);
        }
        let e = l.finish(&m).expect("an estimate");
        let slo = e.capacity.slo_capacity.unwrap();
        assert!((28.0..32.0).contains(&slo), "the way up decides: {slo}");
    }

    #[test]
    fn constant_phases_are_one_level_each_and_too_few_are_none() {
        let phases = serde_json::json!([
            phase("a", "closed", 4.0, 4.0),
            phase("b", "closed", 16.0, 4.0),
            phase("c", "closed", 64.0, 4.0)
        ]);
        let m = meta(phases, "p95 < 200ms");
        let mut l = Levels::new(&m);
        for (p, vus) in [("a", 4), ("b", 16), ("c", 64)] {
            for s in 0..4 {
                l.add(&second(p, s, vus));
            }
        }
        let e = l.finish(&m).expect("an estimate");
        let loads: Vec<f64> = e.capacity.steps.iter().map(|s| s.load).collect();
        assert_eq!(loads, [4.0, 16.0, 64.0]);
        assert!(e.capacity.steps.iter().all(|s| s.p95_stable && s.duration_s == 3.0));
        assert_eq!(e.capacity.slo_capacity, Some(16.0));
        assert_eq!(e.overloaded, Some(64.0), "400 ms at 64 VUs: twice the limit");
        // Two levels, or no latency threshold: no estimate.
        let m2 = meta(
            serde_json::json!([phase("a", "closed", 4.0, 4.0), phase("b", "closed", 16.0, 4.0)]),
            "p95 < 200ms",
        );
        let mut l = Levels::new(&m2);
        (0..4).for_each(|s| l.add(&second("a", s, 4)));
        (0..4).for_each(|s| l.add(&second("b", s, 16)));
        assert!(l.finish(&m2).is_none());
        let m3 = meta(
            serde_json::json!([
                phase("a", "closed", 4.0, 4.0),
                phase("b", "closed", 16.0, 4.0),
                phase("c", "closed", 64.0, 4.0)
            ]),
            "error_rate < 1%",
        );
        let mut l = Levels::new(&m3);
        for (p, vus) in [("a", 4), ("b", 16), ("c", 64)] {
            (0..4).for_each(|s| l.add(&second(p, s, vus)));
        }
        assert!(l.finish(&m3).is_none());
    }
}
