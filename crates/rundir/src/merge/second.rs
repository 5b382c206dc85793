//! One second of the merged run, from the same second of every share.

use crate::interval::{keep_sample, Interval, StepInterval, SAMPLES_PER_INTERVAL};

/// One second of every share that recorded it, as one interval.
pub fn merge_second(ivs: &[Interval]) -> Interval {
    let mut out = Interval {
        phase: ivs.first().map(|i| i.phase.clone()).unwrap_or_default(),
        seq: ivs.first().map_or(0, |i| i.seq),
        t: ivs.iter().map(|i| i.t).fold(f64::INFINITY, f64::min),
        dur: ivs.iter().map(|i| i.dur).fold(0.0, f64::max),
        vus: 0,
        waiting: 0,
        iterations: 0,
        dropped: 0,
        backoffs: 0,
        backoff_ms: 0,
        ws_open: 0,
        late: crate::hist::new_growable(),
        steps: Vec::new(),
    };
    if !out.t.is_finite() {
        out.t = 0.0;
    }
    for iv in ivs {
        out.vus += iv.vus;
        out.waiting += iv.waiting;
        out.iterations += iv.iterations;
        out.dropped += iv.dropped;
        out.backoffs += iv.backoffs;
        out.backoff_ms += iv.backoff_ms;
        out.ws_open += iv.ws_open;
        // Every share's timer lateness in one histogram: the merged run's generator p99 is
        // over all its load threads, as a single process's is.
        let _ = out.late.add(&iv.late);
        for st in &iv.steps {
            match out.steps.iter_mut().find(|s| s.name == st.name) {
                Some(m) => add_step(m, st),
                None => {
                    let mut m = StepInterval::empty(&st.name);
                    add_step(&mut m, st);
                    out.steps.push(m);
                }
            }
        }
    }
    out
}

/// Adds a share's step second into the merged one, keeping error messages as an interval does
/// (not as an aggregate, which keeps more).
fn add_step(into: &mut StepInterval, st: &StepInterval) {
    let mut samples = std::mem::take(&mut into.samples);
    for s in &st.samples {
        keep_sample(&mut samples, s, SAMPLES_PER_INTERVAL);
    }
    into.add(st);
    into.samples = samples;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::new_hist;

    fn step(name: &str, values: &[u64], samples: &[(&str, &str)]) -> StepInterval {
        let mut s = StepInterval::empty(name);
        let mut h = new_hist();
        for v in values {
            h.saturating_record(*v);
        }
        s.requests = values.len() as u64;
        s.latency = h.clone();
        s.service = h;
        s.samples = samples
            .iter()
            .map(|(k, m)| crate::ErrorSample {
                kind: k.to_string(),
                message: m.to_string(),
            })
            .collect();
        s
    }

    fn second(t: f64, vus: u64, steps: Vec<StepInterval>) -> Interval {
        // Through the disk form, as merge reads them.
        let iv = Interval {
            phase: "p".into(),
            seq: 0,
            t,
            dur: 1.0,
            vus,
            waiting: 1,
            iterations: 2,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            late: new_hist(),
            steps,
        };
        Interval::from_json_line(&iv.to_json_line().unwrap()).unwrap()
    }

    /// Percentiles of the merged second are those of all samples together: here one share at
    /// 1 ms and one at 100 ms give a p50 of one of the two, never their average.
    #[test]
    fn a_merged_second_adds_histograms_and_sums_gauges() {
        let a = second(3.02, 2, vec![step("s", &[1000; 30], &[("timeout", "slow 1")])]);
        let b = second(
            3.01,
            5,
            vec![
                step(
                    "s",
                    &[100_000; 10],
                    &[("timeout", "slow 2"), ("timeout", "slow 3"), ("reset", "r")],
                ),
                step("t", &[7], &[]),
            ],
        );
        let m = merge_second(&[a, b]);
        assert_eq!((m.t, m.vus, m.waiting, m.iterations), (3.01, 7, 2, 4));
        let back = Interval::from_json_line(&m.to_json_line().unwrap()).unwrap();
        let s = back.steps[0].to_aggregate();
        assert_eq!(s.requests, 40);
        assert_eq!(s.latency.len(), 40);
        assert!((999..=1001).contains(&s.latency.value_at_quantile(0.5)));
        assert!(s.latency.value_at_quantile(0.95) >= 99_900, "p95 is a 100 ms sample");
        let kinds: Vec<&str> = m.steps[0].samples.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["timeout", "timeout", "timeout", "reset"],
            "3 per interval, then one per new kind"
        );
        assert_eq!(m.steps[1].name, "t");
    }
}
