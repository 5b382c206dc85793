//! Time series for the charts, computed from the intervals: latency percentiles, VUs,
//! throughput and errors over the run. Long runs are bucketed (at most [`MAX_POINTS`] points)
//! and each bucket's percentiles come from its merged histogram, never from averaged percentiles.

use serde::Serialize;

use crate::recorder::{new_hist, Interval};

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
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    /// Seconds per point.
    pub bucket_s: f64,
    pub points: Vec<TimePoint>,
    /// Where each phase starts: (phase, seconds since the run start).
    pub phase_starts: Vec<(String, f64)>,
}

/// Buckets all intervals of the run by their start time.
pub fn timeline(intervals: &[Interval]) -> Timeline {
    let span = intervals
        .iter()
        .map(|iv| iv.t + iv.dur)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let bucket_s = (span / MAX_POINTS as f64).ceil().max(1.0);
    let n = ((span / bucket_s).ceil() as usize).clamp(1, MAX_POINTS + 1);
    struct Acc {
        hist: crate::recorder::Hist,
        requests: u64,
        errors: u64,
        dur: f64,
        vus: u64,
        seen: bool,
    }
    let mut acc: Vec<Acc> = (0..n)
        .map(|_| Acc {
            hist: new_hist(),
            requests: 0,
            errors: 0,
            dur: 0.0,
            vus: 0,
            seen: false,
        })
        .collect();
    let mut phase_starts: Vec<(String, f64)> = Vec::new();
    for iv in intervals {
        if !iv.t.is_finite() || iv.t < 0.0 {
            continue;
        }
        if !phase_starts.iter().any(|(p, _)| p == &iv.phase) {
            phase_starts.push((iv.phase.clone(), iv.t));
        }
        let i = ((iv.t / bucket_s) as usize).min(n - 1);
        let a = &mut acc[i];
        a.seen = true;
        a.dur += iv.dur.max(0.0);
        a.vus = a.vus.max(iv.vus);
        for s in &iv.steps {
            a.requests += s.requests;
            a.errors += s.errors;
            let _ = a.hist.add(&s.latency);
        }
    }
    let q = |h: &crate::recorder::Hist, q: f64| {
        if h.is_empty() {
            None
        } else {
            Some(h.value_at_quantile(q) as f64 / 1000.0)
        }
    };
    let points = acc
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
            }
        })
        .collect();
    Timeline {
        bucket_s,
        points,
        phase_starts,
    }
}
