//! How `meta.json` describes a plan: its phases (model, one-line description, planned length,
//! peak) and thresholds, and how a stored threshold reads back as the plan's metric and
//! operator. The run-directory crate holds the records; this is what ties them to plans.

use stampede_plan::{CmpOp, Load, Metric, Plan, Threshold};

use crate::rundir::{InterleavedMeta, LoadModel, PhaseMeta, ThresholdSpec};

/// A phase as `meta.json` records it.
pub fn phase_meta(plan: &Plan, index: usize) -> PhaseMeta {
    let p = &plan.phases[index];
    // An entry in interleaved variants lists each variant's scenario (`s[a] + s[b]`).
    let scenarios = p
        .mix
        .iter()
        .map(|w| {
            let names: Vec<&str> = w.scenarios().iter().map(|&s| plan.scenarios[s].name.as_str()).collect();
            let name = names.join(" + ");
            if p.mix.len() > 1 {
                format!("{name} (weight {})", w.weight)
            } else {
                name
            }
        })
        .collect();
    let interleaved = p
        .mix
        .iter()
        .filter_map(|w| w.variants.as_ref())
        .map(|v| InterleavedMeta {
            scenario: v.of.clone(),
            variants: v.names.clone(),
        })
        .collect();
    let stages_text = |start: f64, stages: &[stampede_plan::Stage], unit: &str| {
        let mut s = format!("{start}{unit}");
        for st in stages {
            s.push_str(&format!(
                " → {}{unit} over {}",
                st.target,
                fmt_dur(st.duration.as_secs_f64())
            ));
        }
        s
    };
    let (model, description, planned_s, peak) = match &p.load {
        Load::Closed { vus, duration } => (
            LoadModel::Closed,
            format!("{vus} VUs for {}", fmt_dur(duration.as_secs_f64())),
            duration.as_secs_f64(),
            *vus as f64,
        ),
        Load::RampingVus { start_vus, stages } => (
            LoadModel::RampingVus,
            format!("ramping VUs {}", stages_text(*start_vus as f64, stages, "")),
            stages.iter().map(|s| s.duration.as_secs_f64()).sum(),
            stages.iter().map(|s| s.target).fold(*start_vus as f64, f64::max),
        ),
        Load::Open {
            rate,
            duration,
            max_vus,
            ..
        } => (
            LoadModel::Open,
            format!("{rate}/s for {} (max {max_vus} VUs)", fmt_dur(duration.as_secs_f64())),
            duration.as_secs_f64(),
            *rate,
        ),
        Load::RampingRate {
            start_rate,
            stages,
            max_vus,
            ..
        } => (
            LoadModel::RampingRate,
            format!(
                "ramping rate {} (max {max_vus} VUs)",
                stages_text(*start_rate, stages, "/s")
            ),
            stages.iter().map(|s| s.duration.as_secs_f64()).sum(),
            stages.iter().map(|s| s.target).fold(*start_rate, f64::max),
        ),
        Load::Iterations {
            vus,
            iterations,
            max_duration,
        } => (
            LoadModel::Iterations,
            format!(
                "{iterations} iterations on {vus} VUs (at most {})",
                fmt_dur(max_duration.as_secs_f64())
            ),
            max_duration.as_secs_f64(),
            *vus as f64,
        ),
    };
    PhaseMeta {
        name: p.name.clone(),
        model,
        description,
        scenarios,
        planned_s,
        peak,
        variant_of: p.variant.as_ref().map(|v| v.of.clone()),
        variant: p.variant.as_ref().map(|v| v.name.clone()),
        interleaved,
    }
}

fn fmt_dur(s: f64) -> String {
    let s = s.round() as u64;
    match (s / 3600, (s / 60) % 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// The stored names of threshold metrics without a parameter and of operators: the one mapping
/// between the plan's types and `meta.json`, read both ways (percentiles are `p<q>`).
const METRICS: &[(Metric, &str)] = &[
    (Metric::Avg, "avg"),
    (Metric::Min, "min"),
    (Metric::Max, "max"),
    (Metric::ErrorRate, "error_rate"),
    (Metric::Rps, "rps"),
    (Metric::WsLostRate, "ws_lost_rate"),
    (Metric::ConnectFailed, "connect_failed"),
];
const OPS: &[(CmpOp, &str)] = &[(CmpOp::Lt, "<"), (CmpOp::Le, "<="), (CmpOp::Gt, ">"), (CmpOp::Ge, ">=")];

/// A threshold as `meta.json` records it.
pub fn threshold_spec(t: &Threshold) -> ThresholdSpec {
    let metric = match t.metric {
        Metric::Percentile(q) => format!("p{q}"),
        m => METRICS.iter().find(|(x, _)| *x == m).map_or("", |(_, n)| n).to_string(),
    };
    ThresholdSpec {
        expr: t.expr.clone(),
        metric,
        op: OPS.iter().find(|(x, _)| *x == t.op).map_or("", |(_, n)| n).to_string(),
        value: t.value,
        phase: t.scope.phase.clone(),
        step: t.scope.step.clone(),
        abort_on_fail: t.abort_on_fail,
    }
}

/// A stored threshold's metric and operator, as the plan's types.
pub trait SpecTerms {
    /// `None` for a name this version does not know.
    fn metric(&self) -> Option<Metric>;
    fn op(&self) -> Option<CmpOp>;
}

/// The metric stored under `name` (`None` for a name this version does not know).
pub fn metric_named(name: &str) -> Option<Metric> {
    match METRICS.iter().find(|(_, n)| *n == name) {
        Some((m, _)) => Some(*m),
        None => Some(Metric::Percentile(name.strip_prefix('p')?.parse().ok()?)),
    }
}

impl SpecTerms for ThresholdSpec {
    fn metric(&self) -> Option<Metric> {
        metric_named(&self.metric)
    }

    fn op(&self) -> Option<CmpOp> {
        OPS.iter().find(|(_, n)| *n == self.op).map(|(o, _)| *o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_thresholds_read_back_as_they_were_written() {
        for expr in [
            "p95 < 500ms",
            "p(99.9) <= 1s",
            "avg > 1ms",
            "error_rate < 5%",
            "rps >= 250",
            "min < 1s",
            "max < 2s",
        ] {
            let t = &stampede_plan::parse_thresholds(expr).unwrap()[0];
            let spec = threshold_spec(t);
            assert_eq!(spec.metric(), Some(t.metric), "{expr}");
            assert_eq!(spec.op(), Some(t.op), "{expr}");
        }
    }
}
