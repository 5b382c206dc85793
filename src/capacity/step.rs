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
    if agg.duration_s <= 0.0 {
        return None;
    }
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
        .filter(|t| !evaluate(t, &agg).1)
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
        p95_stable: p95_stable(phase, &ivs),
        breached,
    })
}
