//! Rehearsals: compress a suite's phases in time (`--quick`) or scale its load (`--load-scale`),
//! keeping each phase's shape. A compressed soak is a rehearsal of the suite, not a soak test;
//! the run directory records that it was adjusted.

use std::time::Duration;

use crate::model::{Load, Plan, Stage};

/// The phase's planned length (without grace).
pub fn phase_length(load: &Load) -> Duration {
    match load {
        Load::Closed { duration, .. } | Load::Open { duration, .. } => *duration,
        Load::RampingVus { stages, .. } | Load::RampingRate { stages, .. } => stages.iter().map(|s| s.duration).sum(),
        Load::Iterations { max_duration, .. } => *max_duration,
    }
}

fn scale_stages(stages: &mut [Stage], k: f64) {
    for s in stages {
        s.duration = s.duration.mul_f64(k);
    }
}

/// Shrinks every phase longer than `max` to `max`, stages in proportion. Returns a note per
/// phase changed.
pub fn compress(plan: &mut Plan, max: Duration) -> Vec<String> {
    let mut notes = Vec::new();
    for p in &mut plan.phases {
        let len = phase_length(&p.load);
        if len <= max || len.is_zero() {
            continue;
        }
        let k = max.as_secs_f64() / len.as_secs_f64();
        match &mut p.load {
            Load::Closed { duration, .. } | Load::Open { duration, .. } => *duration = max,
            Load::RampingVus { stages, .. } | Load::RampingRate { stages, .. } => scale_stages(stages, k),
            Load::Iterations { max_duration, .. } => *max_duration = max,
        }
        notes.push(format!(
            "phase {}: compressed from {:.0}s to {:.0}s (--quick): a rehearsal of its shape, not its length",
            p.name,
            len.as_secs_f64(),
            max.as_secs_f64()
        ));
        // Grace need not outlast the compressed phase.
        p.grace = p.grace.min(max);
    }
    notes
}

fn scale_count(n: &mut u32, f: f64) {
    *n = ((*n as f64) * f).round().max(1.0) as u32;
}

/// Multiplies VU counts and arrival rates by `f` (> 0). Returns a note if anything changed.
pub fn scale_load(plan: &mut Plan, f: f64) -> Vec<String> {
    if f.is_nan() || f <= 0.0 || (f - 1.0).abs() < 1e-9 {
        return Vec::new();
    }
    for p in &mut plan.phases {
        match &mut p.load {
            Load::Closed { vus, .. } => scale_count(vus, f),
            Load::RampingVus { start_vus, stages } => {
                *start_vus = ((*start_vus as f64) * f).round() as u32;
                for s in stages {
                    s.target = (s.target * f).round();
                }
            }
            Load::Open {
                rate, max_vus, pre_vus, ..
            } => {
                *rate *= f;
                scale_count(max_vus, f);
                *pre_vus = ((*pre_vus as f64) * f).round().min(*max_vus as f64) as u32;
            }
            Load::RampingRate {
                start_rate,
                stages,
                max_vus,
                pre_vus,
            } => {
                *start_rate *= f;
                for s in stages {
                    s.target *= f;
                }
                scale_count(max_vus, f);
                *pre_vus = ((*pre_vus as f64) * f).round().min(*max_vus as f64) as u32;
            }
            Load::Iterations { vus, .. } => scale_count(vus, f),
        }
    }
    vec![format!("VU counts and arrival rates scaled by {f} (--load-scale)")]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn plan(load: Load) -> Plan {
        Plan {
            name: "p".into(),
            target: None,
            target_path: String::new(),
            http: HttpOptions {
                http2: true,
                h2c: false,
                insecure: false,
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
                headers: vec![],
                max_body: 1,
                follow_redirects: 10,
                cookies: CookieMode::Clear,
                tls: Default::default(),
                on_429: Default::default(),
                local_addrs: Vec::new(),
            },
            scenarios: vec![],
            phases: vec![Phase {
                name: "x".into(),
                mix: vec![],
                load,
                grace: Duration::from_secs(30),
                variant: None,
            }],
            thresholds: vec![],
            monitors: vec![],
            databases: vec![],
            slots: vec![],
            feeders: vec![],
            redacted: serde_json::Value::Null,
            secrets: vec![],
            source_name: String::new(),
            about: Default::default(),
        }
    }

    #[test]
    fn compress_keeps_the_shape() {
        let st = |t, s| Stage {
            target: t,
            duration: Duration::from_secs(s),
        };
        let mut p = plan(Load::RampingVus {
            start_vus: 0,
            stages: vec![st(10.0, 30), st(100.0, 120), st(0.0, 60)],
        });
        let notes = compress(&mut p, Duration::from_secs(21));
        assert_eq!(notes.len(), 1);
        assert_eq!(phase_length(&p.phases[0].load), Duration::from_secs(21));
        let Load::RampingVus { stages, .. } = &p.phases[0].load else {
            panic!()
        };
        assert_eq!(stages[0].duration, Duration::from_secs(3));
        assert_eq!(stages[1].target, 100.0);
        assert_eq!(p.phases[0].grace, Duration::from_secs(21));
        let mut q = plan(Load::Closed {
            vus: 5,
            duration: Duration::from_secs(10),
        });
        assert!(compress(&mut q, Duration::from_secs(20)).is_empty());
    }

    #[test]
    fn load_scales() {
        let mut p = plan(Load::Open {
            rate: 100.0,
            duration: Duration::from_secs(1),
            max_vus: 200,
            pre_vus: 100,
        });
        scale_load(&mut p, 0.5);
        assert_eq!(
            p.phases[0].load,
            Load::Open {
                rate: 50.0,
                duration: Duration::from_secs(1),
                max_vus: 100,
                pre_vus: 50
            }
        );
    }
}
