//! Evaluating thresholds against a phase's merged numbers.

use crate::describe::SpecTerms;
use crate::recorder::Count;
use stampede_plan::Metric;

use super::aggregate::{PhaseAgg, StepAgg};
use crate::rundir::ThresholdSpec;

/// The measured value of `metric` (ms for latency, a fraction for error_rate, per second for
/// rps); `None` when there is nothing to measure (no requests).
pub fn measure(metric: Metric, s: &StepAgg, duration_s: f64) -> Option<f64> {
    let ms = |us: u64| us as f64 / 1000.0;
    let counted = |num: Count, den: Count| {
        let c = |k: Count| s.counters.get(&k.name()).copied().unwrap_or(0);
        let d = c(den);
        (d > 0).then(|| c(num) as f64 / d as f64)
    };
    match metric {
        Metric::WsLostRate => counted(Count::WsLost, Count::WsAwaited),
        Metric::ConnectFailed => counted(Count::WsConnectFailed, Count::WsConnects),
        Metric::Rps => Some(if duration_s > 0.0 {
            s.requests as f64 / duration_s
        } else {
            0.0
        }),
        _ if s.requests == 0 => None,
        Metric::ErrorRate => Some(s.errors as f64 / s.requests as f64),
        Metric::Avg => Some(s.latency.mean() / 1000.0),
        Metric::Min => Some(ms(s.latency.min())),
        Metric::Max => Some(ms(s.latency.max())),
        Metric::Percentile(q) => Some(ms(s.latency.value_at_quantile(q / 100.0))),
    }
}

/// `(value, passed)` of one threshold for one phase. No data passes (nothing broke a limit),
/// shown as such; a threshold with no data in any phase makes the verdict a condition
/// (`summary::unjudged`).
pub fn evaluate(t: &ThresholdSpec, phase: &PhaseAgg) -> (Option<f64>, bool) {
    let (Some(metric), Some(op)) = (t.metric(), t.op()) else {
        return (None, false);
    };
    let merged = phase.merged(t.step.as_deref());
    let value = measure(metric, &merged, phase.duration_s);
    let passed = value.is_none_or(|v| op.holds(v, t.value));
    (value, passed)
}
