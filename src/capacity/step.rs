//! One load level's numbers, from its phase's intervals: warm-up discarded, SLO evaluated.
//! A pure function of run-directory data, so the same table comes out live and from disk.

use crate::analysis::{evaluate, CapacityStep, PhaseAgg};
use crate::recorder::Interval;
use crate::rundir::ThresholdSpec;

/// Intervals shorter than this (a phase's last, partial second) are left out of a step's
/// measurement: they hold the tail of the requests in flight, not a steady second.
const MIN_INTERVAL_S: f64 = 0.5;

/// Two halves whose p95 differ by less than this fraction count as stable.
const STABLE_P95: f64 = 0.10;
/// …or by less than this many milliseconds (sub-millisecond jitter is not instability).
const STABLE_P95_MS: f64 = 2.0;

/// The intervals of a step that count: after `warmup_n` whole seconds, up to and including
/// `until` (the second at which the step was ended: later ones hold the drain of requests in
/// flight, not a steady state), full seconds only.
pub fn measured(intervals: &[Interval], warmup_n: u64, until: u64) -> impl Iterator<Item = &Interval> {
    intervals
        .iter()
        .filter(move |iv| iv.seq >= warmup_n && iv.seq <= until && iv.dur >= MIN_INTERVAL_S)
}

fn p95_ms(agg: &PhaseAgg) -> Option<f64> {
    let m = agg.merged(None);
    (!m.latency.is_empty()).then(|| m.latency.value_at_quantile(0.95) as f64 / 1000.0)
}

/// Whether the p95 of the first and second half of the measured seconds agree.
pub fn p95_stable(name: &str, intervals: &[&Interval]) -> bool {
    if intervals.len() < 2 {
        return false;
    }
    let mid = intervals.len() / 2;
    let (mut a, mut b) = (PhaseAgg::new(name), PhaseAgg::new(name));
    intervals[..mid].iter().for_each(|iv| a.add(iv));
    intervals[mid..].iter().for_each(|iv| b.add(iv));
    match (p95_ms(&a), p95_ms(&b)) {
        (Some(x), Some(y)) => {
            let d = (x - y).abs();
            d <= STABLE_P95_MS || d / x.max(y) <= STABLE_P95
        }
        _ => false,
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// The step's row, or `None` when nothing was measured after the warm-up.
pub fn measure(
    load: f64,
    phase: &str,
    intervals: &[Interval],
    warmup_n: u64,
    until: u64,
    slo: &[ThresholdSpec],
) -> Option<CapacityStep> {
    let ivs: Vec<&Interval> = measured(intervals, warmup_n, until).collect();
    let mut agg = PhaseAgg::new(phase);
    ivs.iter().for_each(|iv| agg.add(iv));
    row(load, &agg, slo, p95_stable(phase, &ivs))
}

/// The row of a load level from its aggregate (a search's step, or the seconds of an ordinary
/// run at one load: `analysis::estimate`); `None` when it holds no time.
pub fn row(load: f64, agg: &PhaseAgg, slo: &[ThresholdSpec], p95_stable: bool) -> Option<CapacityStep> {
    if agg.duration_s <= 0.0 {
        return None;
    }
    let phase = agg.name.as_str();
    let all = agg.merged(None);
    let ms = |us: u64| r3(us as f64 / 1000.0);
    let q = |p: f64| {
        if all.latency.is_empty() {
            0.0
        } else {
            ms(all.latency.value_at_quantile(p))
        }
    };
    let throughput = all.requests as f64 / agg.duration_s;
    let goodput = (all.requests - all.errors.min(all.requests)) as f64 / agg.duration_s;
    let avg_ms = if all.latency.is_empty() {
        0.0
    } else {
        all.latency.mean() / 1000.0
    };
    let mut breached: Vec<String> = slo
        .iter()
        .filter(|t| !evaluate(t, agg).1)
        .map(|t| t.expr.clone())
        .collect();
    if all.requests == 0 {
        breached.push("no request completed".into());
    }
    Some(CapacityStep {
        load,
        phase: phase.to_string(),
        throughput_rps: r3(throughput),
        avg_ms: r3(avg_ms),
        p50_ms: q(0.50),
        p95_ms: q(0.95),
        p99_ms: q(0.99),
        error_rate: if all.requests > 0 {
            r3(all.errors as f64 / all.requests as f64 * 1000.0) / 1000.0
        } else {
            0.0
        },
        slo_passed: breached.is_empty(),
        requests: all.requests,
        duration_s: r3(agg.duration_s),
        goodput_rps: r3(goodput),
        concurrency: r3(throughput * avg_ms / 1000.0),
        p95_stable,
        breached,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::{new_hist, StepInterval};

    /// One interval of `n` requests at `ms` each, `errors` of them failed.
    fn iv(seq: u64, dur: f64, n: u64, ms: u64, errors: u64) -> Interval {
        let mut h = new_hist();
        for _ in 0..n {
            let _ = h.record(ms * 1000);
        }
        Interval {
            phase: "vus-4".into(),
            seq,
            t: seq as f64,
            dur,
            vus: 4,
            waiting: 0,
            iterations: n,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            late: stampede_rundir::hist::new_hist(),
            steps: vec![StepInterval {
                name: "w".into(),
                requests: n,
                errors,
                bytes_in: 0,
                bytes_out: 0,
                bytes_decoded: 0,
                redirects: 0,
                statuses: Default::default(),
                kinds: Default::default(),
                counters: Default::default(),
                latency: h.clone(),
                service: h,
                latency_sum_us: None,
                buckets: None,
                samples: Vec::new(),
            }],
        }
    }

    fn slo(expr: &str) -> Vec<ThresholdSpec> {
        stampede_plan::parse_thresholds(expr)
            .unwrap()
            .iter()
            .map(crate::describe::threshold_spec)
            .collect()
    }

    #[test]
    fn warm_up_partial_seconds_and_the_drain_are_not_measured() {
        let ivs = vec![
            iv(0, 1.0, 10, 900, 0), // warm-up: slow, discarded
            iv(1, 1.0, 80, 50, 0),
            iv(2, 1.0, 80, 50, 0),
            iv(3, 1.0, 20, 700, 0), // after the step was ended: the drain
            iv(4, 0.2, 5, 700, 0),  // partial
        ];
        let row = measure(4.0, "vus-4", &ivs, 1, 2, &slo("p95 < 100ms, error_rate < 5%")).unwrap();
        assert_eq!(row.requests, 160);
        assert_eq!(row.throughput_rps, 80.0);
        assert!((49.0..=51.0).contains(&row.p95_ms), "{}", row.p95_ms);
        assert!(row.slo_passed && row.p95_stable, "{row:?}");
        assert!((row.concurrency - 4.0).abs() < 0.1, "Little's law: {}", row.concurrency);
        // Everything, warm-up included, breaks the SLO.
        let all = measure(4.0, "vus-4", &ivs, 0, u64::MAX, &slo("p95 < 100ms")).unwrap();
        assert!(!all.slo_passed);
        assert_eq!(all.breached, vec!["p95 < 100ms".to_string()]);
    }

    #[test]
    fn errors_are_not_goodput_and_nothing_measured_is_none() {
        let ivs = vec![iv(0, 1.0, 100, 10, 60), iv(1, 1.0, 100, 10, 60)];
        let row = measure(8.0, "vus-8", &ivs, 0, u64::MAX, &slo("error_rate < 5%")).unwrap();
        assert_eq!(row.goodput_rps, 40.0);
        assert_eq!(row.error_rate, 0.6);
        assert!(!row.slo_passed);
        assert!(measure(8.0, "vus-8", &ivs, 5, u64::MAX, &[]).is_none());
        let empty = vec![iv(0, 1.0, 0, 0, 0)];
        let row = measure(8.0, "vus-8", &empty, 0, u64::MAX, &[]).unwrap();
        assert!(!row.slo_passed, "no request completed is not a pass");
    }

    #[test]
    fn p95_stability_compares_the_halves() {
        let steady = [iv(0, 1.0, 50, 50, 0), iv(1, 1.0, 50, 51, 0)];
        let drifting = [iv(0, 1.0, 50, 50, 0), iv(1, 1.0, 50, 120, 0)];
        assert!(p95_stable("x", &steady.iter().collect::<Vec<_>>()));
        assert!(!p95_stable("x", &drifting.iter().collect::<Vec<_>>()));
        assert!(!p95_stable("x", &steady[..1].iter().collect::<Vec<_>>()));
    }
}
