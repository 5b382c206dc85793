//! Per-second values: for every phase, and for the whole phase and each step, one row per full
//! second (average and percentile latency, requests, errors). `compare` tests whether two runs
//! differ on these values (see [`super::significance`]): the second is the unit that repeats
//! within a run, where a single request is not (requests of one second share the server's state).
//!
//! Folded in the one pass from each interval's histogram buckets when asked for
//! ([`super::analyze_dir_with_seconds`], as `compare` and `report --update` do), so the run is
//! read once and nothing but a few numbers per second is kept. Summaries and reports skip it:
//! on a synthetic hour of 20 endpoints it is a quarter of the reading time (debug build).

use crate::recorder::{Interval, StepInterval};

/// An interval shorter than this (a phase's last, partial one: requests still in flight at its
/// end) is left out: its rate and latencies describe a fraction of a second at the phase's edge.
const MIN_DUR_S: f64 = 0.5;

/// One second of one row (the whole phase, or a step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Second {
    /// The interval's index within its phase: the same second of the same plan in two runs.
    pub seq: u64,
    pub dur: f64,
    pub requests: u64,
    pub errors: u64,
    /// None in a second without a completed request.
    pub latency: Option<Latency>,
}

/// A second's latency, in ms.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Latency {
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// How many latencies the second holds: what its average weighs when seconds of several
    /// steps are put together (an interleaved variant's steps, `ab.rs`).
    pub samples: u64,
}

/// A phase's seconds, whole and per step (steps in order of first appearance).
#[derive(Debug, Clone, Default)]
pub struct PhaseSeconds {
    pub name: String,
    pub all: Vec<Second>,
    pub steps: Vec<(String, Vec<Second>)>,
}

impl PhaseSeconds {
    /// The seconds of `step`, or of the whole phase (None); a step the phase never ran has none.
    pub fn row(&self, step: Option<&str>) -> &[Second] {
        match step {
            None => &self.all,
            Some(name) => self
                .steps
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, s)| s.as_slice())
                .unwrap_or(&[]),
        }
    }
}

/// Every phase's seconds, in the order the phases first ran.
#[derive(Debug, Clone, Default)]
pub struct Seconds {
    pub phases: Vec<PhaseSeconds>,
    /// The buckets of one second's steps together, reused from second to second.
    merged: Vec<(u64, u64)>,
}

impl Seconds {
    pub fn phase(&self, name: &str) -> Option<&PhaseSeconds> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// Adds one interval.
    pub fn add(&mut self, iv: &Interval) {
        if iv.dur < MIN_DUR_S {
            return;
        }
        let at = self.phases.iter().position(|p| p.name == iv.phase);
        let phase = match at {
            Some(i) => &mut self.phases[i],
            None => {
                self.phases.push(PhaseSeconds {
                    name: iv.phase.clone(),
                    ..PhaseSeconds::default()
                });
                self.phases.last_mut().expect("just pushed")
            }
        };
        let empty = |seq| Second {
            seq,
            dur: iv.dur,
            requests: 0,
            errors: 0,
            latency: None,
        };
        let mut merged = std::mem::take(&mut self.merged);
        merged.clear();
        let (mut requests, mut errors) = (0, 0);
        for s in &iv.steps {
            let buckets = buckets(s);
            let second = Second {
                latency: latency(&buckets),
                requests: s.requests,
                errors: s.errors,
                ..empty(iv.seq)
            };
            requests += s.requests;
            errors += s.errors;
            merged.extend_from_slice(&buckets);
            match phase.steps.iter_mut().find(|(n, _)| *n == s.name) {
                Some((_, row)) => row.push(second),
                None => {
                    // A step first seen now ran no request in the phase's earlier seconds.
                    let mut row: Vec<Second> = phase
                        .all
                        .iter()
                        .map(|a| Second {
                            dur: a.dur,
                            ..empty(a.seq)
                        })
                        .collect();
                    row.push(second);
                    phase.steps.push((s.name.clone(), row));
                }
            }
        }
        // A step this interval does not list ran no request in it.
        for (_, row) in phase.steps.iter_mut() {
            if row.last().is_none_or(|l| l.seq != iv.seq) {
                row.push(empty(iv.seq));
            }
        }
        merged.sort_unstable_by_key(|&(v, _)| v);
        phase.all.push(Second {
            latency: latency(&merged),
            requests,
            errors,
            ..empty(iv.seq)
        });
        self.merged = merged;
    }
}

/// A step's latency buckets in value order: those read from disk, or those of its histogram.
fn buckets(s: &StepInterval) -> std::borrow::Cow<'_, [(u64, u64)]> {
    match &s.buckets {
        Some(b) => std::borrow::Cow::Borrowed(b.0.as_slice()),
        None => s
            .latency
            .iter_recorded()
            .map(|v| (s.latency.lowest_equivalent(v.value_iterated_to()), v.count_at_value()))
            .collect(),
    }
}

/// Average and percentiles (ms) of `(µs, count)` buckets in value order, in one walk; a
/// percentile is the value at or below which that share of the requests lies.
fn latency(buckets: &[(u64, u64)]) -> Option<Latency> {
    let n: u64 = buckets.iter().map(|&(_, c)| c).sum();
    if n == 0 {
        return None;
    }
    let rank = |q: f64| ((q * n as f64).ceil() as u64).clamp(1, n);
    let ranks = [rank(0.50), rank(0.95), rank(0.99)];
    let mut at = [0u64; 3];
    let (mut seen, mut sum, mut next) = (0u64, 0f64, 0usize);
    for &(v, c) in buckets {
        seen += c;
        sum += v as f64 * c as f64;
        while next < 3 && seen >= ranks[next] {
            at[next] = v;
            next += 1;
        }
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Some(Latency {
        avg: sum / n as f64 / 1000.0,
        p50: ms(at[0]),
        p95: ms(at[1]),
        p99: ms(at[2]),
        samples: n,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(name: &str, latencies_us: &[u64], errors: u64) -> StepInterval {
        let mut s = StepInterval::empty(name);
        for &v in latencies_us {
            s.latency.record(v).unwrap();
        }
        s.requests = latencies_us.len() as u64;
        s.errors = errors;
        s
    }

    fn interval(phase: &str, seq: u64, dur: f64, steps: Vec<StepInterval>) -> Interval {
        Interval {
            phase: phase.into(),
            seq,
            t: seq as f64,
            dur,
            vus: 1,
            waiting: 0,
            iterations: 0,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            late: stampede_rundir::hist::new_hist(),
            steps,
        }
    }

    #[test]
    fn percentiles_of_buckets_are_the_values_at_their_ranks() {
        let b: Vec<(u64, u64)> = (1..=100).map(|v| (v * 1000, 1)).collect();
        let l = latency(&b).unwrap();
        assert_eq!((l.p50, l.p95, l.p99), (50.0, 95.0, 99.0));
        assert!((l.avg - 50.5).abs() < 1e-9);
        assert_eq!(latency(&[]), None);
        let one = latency(&[(7000, 3)]).unwrap();
        assert_eq!((one.avg, one.p50, one.p99), (7.0, 7.0, 7.0));
    }

    /// The whole phase merges its steps' requests second by second; a step missing from an
    /// interval, or first seen late, has seconds without requests; a partial last second is
    /// left out.
    #[test]
    fn seconds_are_kept_per_phase_and_step() {
        let mut s = Seconds::default();
        s.add(&interval("p", 0, 1.0, vec![step("a", &[10_000, 20_000], 1)]));
        s.add(&interval(
            "p",
            1,
            1.0,
            vec![step("a", &[10_000], 0), step("b", &[30_000], 0)],
        ));
        s.add(&interval("p", 2, 1.0, vec![step("b", &[40_000], 0)]));
        s.add(&interval("p", 3, 0.02, vec![step("a", &[90_000], 0)]));
        let p = s.phase("p").unwrap();
        assert_eq!(p.all.len(), 3);
        assert_eq!(p.all.iter().map(|x| x.requests).collect::<Vec<_>>(), [2, 2, 1]);
        assert_eq!(p.all[1].latency.unwrap().p99, 30.0);
        let a = p.row(Some("a"));
        assert_eq!(
            a.iter().map(|x| (x.seq, x.requests)).collect::<Vec<_>>(),
            [(0, 2), (1, 1), (2, 0)]
        );
        assert_eq!(a[0].errors, 1);
        assert_eq!(a[2].latency, None);
        let b = p.row(Some("b"));
        assert_eq!(
            b.iter().map(|x| (x.seq, x.requests)).collect::<Vec<_>>(),
            [(0, 0), (1, 1), (2, 1)]
        );
        assert!(p.row(Some("nope")).is_empty());
    }
}
