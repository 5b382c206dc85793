//! The plan's thresholds as rules on stampede's own series (what `--output prometheus-rw`
//! pushes): `stampede_latency_seconds_bucket{phase,step,le}` / `_sum` / `_count`,
//! `stampede_requests_total{phase,step,status}`, `stampede_errors_total{phase,step,kind}`.
//!
//! Levels (docs/alerts.md): critical at the threshold's limit; warning at 60% of it from a plan
//! (the insurance seed's 300 ms warning for a 500 ms SLO), or, from a run, at what the run
//! measured + 20%, kept between 10% and 90% of the limit so it neither fires on the baseline's
//! noise nor coincides with the critical rule.

use stampede_rundir::ThresholdSpec;

use super::{num, rule, selector, Rule, Severity, Source};

/// The plan's warning level, as a share of the limit (the seed's 300 / 500).
pub const PLAN_WARNING: f64 = 0.6;
/// From a run: measured × this.
pub const RUN_MARGIN: f64 = 1.2;
/// From a run, the warning stays within these shares of the limit.
pub const RUN_FLOOR: f64 = 0.1;
pub const RUN_CAP: f64 = 0.9;
/// How long a breach lasts before the rule fires.
pub const FOR: &str = "2m";

/// What a threshold measures, in stampede's series.
enum Measure {
    /// A latency percentile, as a fraction (0.95).
    Quantile(f64),
    Avg,
    ErrorRate,
}

pub fn rules(src: &Source, notes: &mut Vec<String>) -> Vec<Rule> {
    let mut out = Vec::new();
    for t in &src.thresholds {
        let Some(measure) = measure(&t.metric) else {
            notes.push(format!(
                "threshold `{}`: no alert rule (only avg, pNN and error_rate thresholds have one)",
                t.expr
            ));
            continue;
        };
        if !matches!(t.op.as_str(), "<" | "<=") {
            notes.push(format!(
                "threshold `{}`: no alert rule (only upper limits, `<` or `<=`, have one)",
                t.expr
            ));
            continue;
        }
        out.extend(threshold_rules(src, t, &measure));
    }
    out
}

/// The warning level of an upper limit: from a plan 60% of it; from a run what it measured +
/// 20%, kept within 10% and 90% of the limit (so always below the critical level).
pub fn warning_level(limit: f64, measured: Option<f64>) -> f64 {
    match measured {
        Some(v) => (v * RUN_MARGIN).clamp(limit * RUN_FLOOR, limit * RUN_CAP),
        None => limit * PLAN_WARNING,
    }
}

fn measure(metric: &str) -> Option<Measure> {
    match metric {
        "avg" => Some(Measure::Avg),
        "error_rate" => Some(Measure::ErrorRate),
        m => {
            let q: f64 = m.strip_prefix('p')?.parse().ok()?;
            (q > 0.0 && q < 100.0).then_some(Measure::Quantile(q / 100.0))
        }
    }
}

fn threshold_rules(src: &Source, t: &ThresholdSpec, m: &Measure) -> Vec<Rule> {
    let mut labels = Vec::new();
    if let Some(p) = &t.phase {
        labels.push(("phase".to_string(), p.clone()));
    }
    if let Some(s) = &t.step {
        labels.push(("step".to_string(), s.clone()));
    }
    let sel = selector(&labels);
    // The series' unit: seconds for latency, a fraction for the error rate (as the plan's).
    let (scale, unit) = match m {
        Measure::ErrorRate => (1.0, ""),
        _ => (0.001, " s"),
    };
    let expr = match m {
        Measure::Quantile(q) => format!(
            "histogram_quantile({}, sum by (le) (rate(stampede_latency_seconds_bucket{sel}[1m])))",
            num(*q)
        ),
        Measure::Avg => format!(
            "sum(rate(stampede_latency_seconds_sum{sel}[1m])) / sum(rate(stampede_latency_seconds_count{sel}[1m]))"
        ),
        Measure::ErrorRate => {
            format!("sum(rate(stampede_errors_total{sel}[1m])) / sum(rate(stampede_requests_total{sel}[1m]))")
        }
    };
    let (name, what) = match m {
        Measure::Quantile(_) => (
            format!("Latency{}High", t.metric.to_uppercase().replace('.', "_")),
            format!("{} latency", t.metric),
        ),
        Measure::Avg => ("LatencyAvgHigh".to_string(), "average latency".to_string()),
        Measure::ErrorRate => ("ErrorRateHigh".to_string(), "error rate".to_string()),
    };
    let scope = match (&t.phase, &t.step) {
        (Some(p), Some(s)) => format!(" (phase {p}, step {s})"),
        (Some(p), None) => format!(" (phase {p})"),
        (None, Some(s)) => format!(" (step {s})"),
        (None, None) => String::new(),
    };
    let show = |v: f64| match m {
        Measure::ErrorRate => format!("{}%", num(v * 100.0)),
        _ => format!("{} ms", num((v * 10.0).round() / 10.0)),
    };
    let limit = t.value;
    let measured = src.run.as_ref().and_then(|r| r.measured(t));
    let (warning, why) = match &measured {
        Some((v, phase)) => {
            let w = warning_level(limit, Some(*v));
            let run = &src.run.as_ref().expect("measured comes from a run").id;
            (
                w,
                format!(
                    "run {run} measured {} in phase {phase}{}; warning at {} (the measured value + 20%, kept between 10% and 90% of the limit)",
                    show(*v),
                    if *v > limit { ", over the limit: the run failed this threshold" } else { "" },
                    show(w)
                ),
            )
        }
        None => {
            let w = warning_level(limit, None);
            (w, format!("warning at {} (60% of the limit)", show(w)))
        }
    };
    let label_refs: Vec<(&str, &str)> = std::iter::once(("slo", t.expr.as_str()))
        .chain(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .collect();
    let mut out = Vec::new();
    for (sev, level) in [(Severity::Warning, warning), (Severity::Critical, limit)] {
        let mut r = rule(
            src,
            &name,
            sev,
            format!("{expr} > {}", num(level * scale)),
            FOR,
            &label_refs,
            format!("{what}{scope} above {} ({})", show(level), sev.as_str()),
            format!(
                "The plan's threshold `{}` allows at most {}; critical at the limit, {why}. Measured by stampede's series (stampede_latency_seconds, stampede_requests_total, stampede_errors_total) as `--output prometheus-rw` pushes them; now {{{{ $value }}}}{unit}.",
                t.expr,
                show(limit)
            ),
        );
        if let (Some((v, _)), Some(_)) = (&measured, &src.run) {
            r.annotations.insert("measured".to_string(), show(*v));
        }
        out.push(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_levels_follow_the_seed_and_the_run_and_stay_below_the_critical() {
        // The seed: 300 ms warning for a 500 ms SLO.
        assert!((warning_level(500.0, None) - 300.0).abs() < 1e-9);
        // A run's baseline + 20%.
        assert!((warning_level(500.0, Some(120.0)) - 144.0).abs() < 1e-9);
        // Near or over the limit: capped at 90% of it.
        assert!((warning_level(500.0, Some(480.0)) - 450.0).abs() < 1e-9);
        assert!((warning_level(500.0, Some(900.0)) - 450.0).abs() < 1e-9);
        // No errors measured: 10% of the error budget, not zero.
        assert!((warning_level(0.005, Some(0.0)) - 0.0005).abs() < 1e-12);
    }

    #[test]
    fn only_latency_and_error_rate_metrics_have_rules() {
        assert!(matches!(measure("p95"), Some(Measure::Quantile(q)) if (q - 0.95).abs() < 1e-12));
        assert!(matches!(measure("p99.9"), Some(Measure::Quantile(q)) if (q - 0.999).abs() < 1e-12));
        assert!(matches!(measure("avg"), Some(Measure::Avg)));
        assert!(matches!(measure("error_rate"), Some(Measure::ErrorRate)));
        for m in ["rps", "max", "min", "ws_lost_rate", "connect_failed", "p100", "p0"] {
            assert!(measure(m).is_none(), "{m}");
        }
    }
}
