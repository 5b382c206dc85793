//! Time series for the charts: latency percentiles, VUs, throughput and errors over the run,
//! folded from the intervals as they stream by, and the server series worth a chart beside
//! them. Long runs are bucketed (at most 2 × [`MAX_POINTS`] points) and each bucket's
//! percentiles come from its merged histogram, never from averaged percentiles.

use std::collections::BTreeSet;

use serde::Serialize;

use super::findings::Samples;
use crate::recorder::{Hist, Interval};

/// More points than a chart is pixels wide add nothing but time and bytes.
pub const MAX_POINTS: usize = 300;

#[derive(Debug, Clone, Serialize)]
pub struct TimePoint {
    /// Seconds since the run start, at the bucket's start.
    pub t: f64,
    /// The highest VU count seen in the bucket.
    pub vus: u64,
    pub rps: f64,
    pub errors_per_s: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The most WebSocket connections open at once in the bucket (0 without WebSocket steps).
    pub ws_open: u64,
    /// p95 of WebSocket message latency (replies awaited) in the bucket.
    pub ws_p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Seconds per point.
    pub bucket_s: f64,
    pub points: Vec<TimePoint>,
    /// Where each phase starts: (phase, seconds since the run start).
    pub phase_starts: Vec<(String, f64)>,
}

struct Acc {
    hist: Hist,
    requests: u64,
    errors: u64,
    dur: f64,
    vus: u64,
    ws_hist: Hist,
    ws_open: u64,
    seen: bool,
}

impl Acc {
    fn new() -> Acc {
        Acc {
            hist: crate::recorder::new_growable(),
            requests: 0,
            errors: 0,
            dur: 0.0,
            vus: 0,
            ws_hist: crate::recorder::new_growable(),
            ws_open: 0,
            seen: false,
        }
    }

    fn merge(&mut self, o: Acc) {
        let _ = self.hist.add(&o.hist);
        self.requests += o.requests;
        self.errors += o.errors;
        self.dur += o.dur;
        self.vus = self.vus.max(o.vus);
        let _ = self.ws_hist.add(&o.ws_hist);
        self.ws_open = self.ws_open.max(o.ws_open);
        self.seen |= o.seen;
    }
}

/// Folds intervals, in any number, into at most 2 × [`MAX_POINTS`] buckets: when a run turns
/// out longer than expected, neighbouring buckets are merged and the bucket length doubles, so
/// memory stays bounded without knowing the run's length in advance.
pub struct TimelineBuilder {
    bucket_s: f64,
    acc: Vec<Acc>,
    phase_starts: Vec<(String, f64)>,
}

impl TimelineBuilder {
    /// `expected_s`: the run's expected length (e.g. its planned phases), to pick the bucket.
    pub fn new(expected_s: f64) -> TimelineBuilder {
        let e = if expected_s.is_finite() {
            expected_s.max(0.0)
        } else {
            0.0
        };
        TimelineBuilder {
            bucket_s: (e / MAX_POINTS as f64).ceil().max(1.0),
            acc: Vec::new(),
            phase_starts: Vec::new(),
        }
    }

    pub fn add(&mut self, iv: &Interval) {
        if !iv.t.is_finite() || iv.t < 0.0 || iv.t > 1e9 {
            return;
        }
        if !self.phase_starts.iter().any(|(p, _)| p == &iv.phase) {
            self.phase_starts.push((iv.phase.clone(), iv.t));
        }
        let mut i = (iv.t / self.bucket_s) as usize;
        while i >= 2 * MAX_POINTS {
            self.coarsen();
            i = (iv.t / self.bucket_s) as usize;
        }
        while self.acc.len() <= i {
            self.acc.push(Acc::new());
        }
        let a = &mut self.acc[i];
        a.seen = true;
        a.dur += iv.dur.max(0.0);
        a.vus = a.vus.max(iv.vus);
        a.ws_open = a.ws_open.max(iv.ws_open);
        // A WebSocket step keeps its counters on itself; its named replies are `<step>:<name>`
        // and its connect attempts `<step>:connect` (not message latency).
        let ws_steps: Vec<&str> = iv
            .steps
            .iter()
            .filter(|s| s.counters.keys().any(|k| k.starts_with("ws_")))
            .map(|s| s.name.as_str())
            .collect();
        let is_ws_message = |name: &str| {
            ws_steps.iter().any(|w| {
                name == *w
                    || name
                        .strip_prefix(w)
                        .and_then(|r| r.strip_prefix(':'))
                        .is_some_and(|r| r != "connect")
            })
        };
        for s in &iv.steps {
            a.requests += s.requests;
            a.errors += s.errors;
            s.add_latency_to(&mut a.hist);
            if is_ws_message(&s.name) {
                s.add_latency_to(&mut a.ws_hist);
            }
        }
    }

    fn coarsen(&mut self) {
        let old = std::mem::take(&mut self.acc);
        let mut it = old.into_iter();
        while let Some(mut a) = it.next() {
            if let Some(b) = it.next() {
                a.merge(b);
            }
            self.acc.push(a);
        }
        self.bucket_s *= 2.0;
    }

    pub fn finish(self) -> Timeline {
        let bucket_s = self.bucket_s;
        let q = |h: &Hist, q: f64| {
            if h.is_empty() {
                None
            } else {
                Some(h.value_at_quantile(q) as f64 / 1000.0)
            }
        };
        let points = self
            .acc
            .iter()
            .enumerate()
            .filter(|(_, a)| a.seen)
            .map(|(i, a)| {
                let d = if a.dur > 0.0 { a.dur } else { bucket_s };
                TimePoint {
                    t: i as f64 * bucket_s,
                    vus: a.vus,
                    rps: a.requests as f64 / d,
                    errors_per_s: a.errors as f64 / d,
                    p50_ms: q(&a.hist, 0.50),
                    p95_ms: q(&a.hist, 0.95),
                    p99_ms: q(&a.hist, 0.99),
                    ws_open: a.ws_open,
                    ws_p95_ms: q(&a.ws_hist, 0.95),
                }
            })
            .collect();
        Timeline {
            bucket_s,
            points,
            phase_starts: self.phase_starts,
        }
    }
}

/// One monitored series over time: `monitor.series` and (seconds since start, value).
#[derive(Debug, Clone, Serialize)]
pub struct ServerSeries {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

/// Charted server series at most: more would bury the latency charts they explain.
const MAX_SERVER_CHARTS: usize = 6;
/// Points per server series at most.
const MAX_SERVER_POINTS: usize = 600;

/// Whether a server series (its name as the monitor gave it) is one a reader looks at next to
/// latency: saturation (busy workers, pool in use, queue depth), CPU and load, cache hit ratio,
/// connections.
pub fn charted(series: &str) -> bool {
    const WANTED: &[&str] = &[
        "busy",
        "in_use",
        "queue_depth",
        "cpu_percent",
        "load1",
        "hit_ratio",
        "connections",
    ];
    WANTED.iter().any(|w| series.contains(w))
}

/// The server series to chart: of the `charted` keys, the first six (by name) with at
/// least two points, each thinned to at most 600 points.
pub fn server_series(samples: &Samples, charted: &BTreeSet<String>) -> Vec<ServerSeries> {
    charted
        .iter()
        .filter_map(|name| Some((name, samples.get(name)?)))
        .filter(|(_, pts)| pts.len() >= 2)
        .take(MAX_SERVER_CHARTS)
        .map(|(name, pts)| {
            let step = pts.len().div_ceil(MAX_SERVER_POINTS).max(1);
            ServerSeries {
                name: name.clone(),
                points: pts.iter().copied().step_by(step).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An interval of one second in `phase`, without steps.
    pub(crate) fn interval(phase: &str, t: f64) -> Interval {
        Interval {
            phase: phase.into(),
            seq: 0,
            t,
            dur: 1.0,
            vus: 1,
            waiting: 0,
            iterations: 1,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            late: stampede_rundir::hist::new_hist(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn a_run_longer_than_expected_is_coarsened_not_unbounded() {
        let mut b = TimelineBuilder::new(10.0);
        for t in 0..5_000 {
            b.add(&interval("p", t as f64));
        }
        let tl = b.finish();
        assert!(tl.points.len() <= 2 * MAX_POINTS, "{}", tl.points.len());
        assert!(tl.bucket_s >= 8.0);
        assert!(tl.points.windows(2).all(|w| w[0].t < w[1].t));
        let last = tl.points.last().map(|p| p.t).unwrap_or(0.0);
        assert!(last <= 5_000.0 && last + tl.bucket_s >= 4_999.0, "{last}");
    }
}
