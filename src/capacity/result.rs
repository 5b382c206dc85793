//! From the step table to the answer: SLO capacity, the knee, peak throughput, the USL fit, the
//! "what if" projections and the plain-language statement.

use super::search::Searched;
use super::{usl, Model, SearchOptions, EXPLODED_ERROR_RATE};
use crate::analysis::{Capacity, CapacityStep, Projection, Usl};

/// Hardware factor of the "what if" projection.
const PROJECTION_FACTOR: f64 = 2.0;

/// The knee is only reported when the search went at least this far beyond it: otherwise the
/// throughput may simply still be growing.
const KNEE_CONFIRM: f64 = 1.5;

fn round_load(model: Model, x: f64) -> f64 {
    match model {
        Model::Closed => (x * 10.0).round() / 10.0,
        Model::Open => (x * 10.0).round() / 10.0,
    }
}

/// A load figure for people: whole VUs, arrivals/s to one decimal when below 10.
pub fn show(model: Model, x: f64) -> String {
    match model {
        Model::Closed if (x - x.round()).abs() < 0.05 => format!("{x:.0}"),
        Model::Open if x >= 10.0 || (x - x.round()).abs() < 0.05 => format!("{x:.0}"),
        _ => format!("{x:.1}"),
    }
}

/// The knee by bottleneck analysis: where the line of linear scaling through the smallest load
/// meets the peak throughput (N* = X_max / (X(N₀)/N₀); for the open model, the arrival rate
/// that equals the peak). `None` when the search did not go clearly beyond it (1.5×), or did not
/// reach it with the SLO breaking there (`broke`): a throughput still growing linearly would
/// otherwise pass for a knee at the largest load tried.
pub fn knee(steps: &[&CapacityStep], broke: bool) -> Option<f64> {
    let first = steps.iter().min_by(|a, b| a.load.total_cmp(&b.load))?;
    let max_load = steps.iter().map(|s| s.load).fold(0.0, f64::max);
    let peak = steps.iter().map(|s| s.goodput_rps).fold(0.0, f64::max);
    if first.load <= 0.0 || first.goodput_rps <= 0.0 || peak <= 0.0 {
        return None;
    }
    let knee = peak / (first.goodput_rps / first.load);
    let confirmed = max_load >= KNEE_CONFIRM * knee || (broke && max_load >= 0.95 * knee);
    (knee.is_finite() && confirmed).then_some(knee)
}

/// Fits the USL to the usable steps (closed: N = VUs; open: N = measured concurrency).
pub fn fit(model: Model, steps: &[&CapacityStep]) -> Option<Usl> {
    let pts: Vec<(f64, f64)> = steps
        .iter()
        .map(|s| match model {
            Model::Closed => (s.load, s.goodput_rps),
            Model::Open => (s.concurrency, s.goodput_rps),
        })
        .collect();
    usl::fit(&pts).map(|u| Usl {
        concurrency_from: match model {
            Model::Closed => "vus".into(),
            Model::Open => "littles_law".into(),
        },
        ..u
    })
}

fn projection(model: Model, u: &Usl, slo_capacity: Option<f64>, peak_measured: f64) -> Projection {
    let k = PROJECTION_FACTOR;
    let (peak, at) = match u.peak_concurrency {
        Some(n) => (usl::throughput(u, n), Some(n * k)),
        None => (peak_measured, None),
    };
    Projection {
        factor: k,
        peak_throughput_rps: (peak * k * 10.0).round() / 10.0,
        peak_concurrency: at.map(|n| (n * 10.0).round() / 10.0),
        slo_capacity: slo_capacity.map(|c| round_load(model, c * k)),
        assumptions: format!(
            "model estimate, not a measurement: {k}× the hardware as {k} copies of the system measured, behind a perfect load balancer, sharing nothing (each copy gets 1/{k} of the load and behaves as fitted: USL σ = {:.3}, κ = {:.5}, R² = {:.2}). A shared database, cache or network link makes this an overestimate.",
            u.sigma, u.kappa, u.r2
        ),
    }
}

/// The answer from what the search measured.
pub fn conclude(opts: &SearchOptions, searched: &Searched) -> Capacity {
    let model = opts.model;
    let steps = &searched.steps;
    // Steps whose errors exploded say nothing about throughput or scalability.
    let usable: Vec<&CapacityStep> = steps.iter().filter(|s| s.error_rate <= EXPLODED_ERROR_RATE).collect();
    let breaks_at = steps
        .iter()
        .filter(|s| !s.slo_passed)
        .map(|s| s.load)
        .min_by(f64::total_cmp);
    // The largest passing level below the first breaking one (a pass above a break is noise).
    let slo_capacity = steps
        .iter()
        .filter(|s| s.slo_passed && breaks_at.is_none_or(|b| s.load < b))
        .map(|s| s.load)
        .max_by(f64::total_cmp);
    let peak = usable.iter().map(|s| s.goodput_rps).fold(0.0, f64::max);
    let saturation = knee(&usable, breaks_at.is_some()).map(|k| round_load(model, k));
    let usl = fit(model, &usable);
    let recommended = slo_capacity.map(|c| match model {
        Model::Closed => (c * (1.0 - opts.margin)).floor().max(1.0).min(c),
        Model::Open => ((c * (1.0 - opts.margin)) * 10.0).floor() / 10.0,
    });
    let lower_bound = slo_capacity.is_some() && breaks_at.is_none();
    let slo_text = opts
        .slo
        .iter()
        .map(|t| t.expr.as_str())
        .collect::<Vec<_>>()
        .join(" and ");
    let unit_words = match model {
        Model::Closed => "concurrent users (VUs)",
        Model::Open => "arrivals/s",
    };

    let mut parts = Vec::new();
    match (slo_capacity, breaks_at) {
        (Some(c), Some(b)) => parts.push(format!(
            "holds {} {unit_words} with {slo_text} (breaks at {})",
            show(model, c),
            show(model, b)
        )),
        (Some(c), None) => parts.push(format!(
            "holds at least {} {unit_words} with {slo_text} (the SLO never broke in the loads tried)",
            show(model, c)
        )),
        (None, Some(b)) => parts.push(format!(
            "does not meet {slo_text} even at {} {}",
            show(model, b),
            model.unit_for(b)
        )),
        (None, None) => parts.push("no load level was measured".to_string()),
    }
    match saturation {
        Some(k) => parts.push(format!("saturates at ~{} {}", show(model, k), model.unit())),
        None if !usable.is_empty() => parts.push("no saturation within the loads tried".into()),
        None => {}
    }
    if peak > 0.0 {
        parts.push(format!("throughput peaks at {peak:.0} req/s"));
    }
    if let Some(r) = recommended {
        parts.push(format!(
            "recommended operating point {} {} ({:.0}% margin)",
            show(model, r),
            model.unit_for(r),
            opts.margin * 100.0
        ));
    }
    let mut statement = format!("{}: {}.", opts.scenario, parts.join("; "));
    if searched.aborted || searched.interrupted {
        statement.push_str(&format!(" Search cut short: {}.", searched.stop_reason));
    }

    let (projection, projections) = match &usl {
        Some(u) if u.r2 >= usl::USABLE_R2 => {
            let p = projection(model, u, slo_capacity, peak);
            let mut lines = vec![format!(
                "{}× hardware (model estimate): throughput peaks at ≈{:.0} req/s{}{}. Assumes {}",
                p.factor,
                p.peak_throughput_rps,
                p.peak_concurrency
                    .map(|n| match model {
                        Model::Closed => format!(" at ≈{n:.0} VUs"),
                        Model::Open => format!(" at ≈{n:.0} requests in flight"),
                    })
                    .unwrap_or_default(),
                p.slo_capacity
                    .map(|c| format!("; holds ≈{} {} within the SLO", show(model, c), model.unit()))
                    .unwrap_or_default(),
                p.assumptions.trim_start_matches("model estimate, not a measurement: ")
            )];
            if u.sigma > 0.0 {
                lines.push(format!(
                    "contention (USL σ = {:.3}) alone caps throughput at λ/σ ≈ {:.0} req/s however much load is offered, unless more hardware removes the contended resource itself (model estimate)",
                    u.sigma,
                    u.lambda / u.sigma
                ));
            }
            (Some(p), lines)
        }
        Some(u) => (
            None,
            vec![format!(
                "no projection: the USL fit is {} (R² = {:.2}), so these numbers do not support a model of more hardware",
                usl::quality(u.r2),
                u.r2
            )],
        ),
        None => (
            None,
            vec![format!(
                "no projection: fewer than {} load levels were measured for a USL fit",
                usl::MIN_POINTS
            )],
        ),
    };

    Capacity {
        model: model.load_model(),
        scenario: opts.scenario.clone(),
        slo: opts.slo.iter().map(|t| t.expr.clone()).collect(),
        slo_capacity,
        saturation,
        peak_throughput_rps: (peak * 1000.0).round() / 1000.0,
        recommended,
        margin: opts.margin,
        steps: steps.clone(),
        usl,
        statement,
        projections,
        unit: model.unit().into(),
        slo_capacity_is_lower_bound: lower_bound,
        breaks_at,
        stop_reason: searched.stop_reason.clone(),
        warmup_s: opts.warmup.as_secs_f64(),
        step_duration_s: opts.step_duration.as_secs_f64(),
        projection,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(load: f64, x: f64, p95: f64, passed: bool) -> CapacityStep {
        CapacityStep {
            load,
            phase: format!("vus-{load}"),
            throughput_rps: x,
            avg_ms: p95 * 0.9,
            p50_ms: p95 * 0.9,
            p95_ms: p95,
            p99_ms: p95,
            error_rate: 0.0,
            slo_passed: passed,
            requests: 100,
            duration_s: 2.0,
            goodput_rps: x,
            concurrency: x * p95 * 0.9 / 1000.0,
            p95_stable: true,
            breached: if passed { vec![] } else { vec!["p95 < 150ms".into()] },
        }
    }

    fn opts() -> SearchOptions {
        SearchOptions {
            model: Model::Closed,
            scenario: "s".into(),
            scenario_index: 0,
            slo: vec![],
            min: 1.0,
            max: 100.0,
            max_vus: 100,
            step_duration: Duration::from_secs(2),
            warmup: Duration::from_secs(1),
            ramp_down: Duration::ZERO,
            growth: 2.0,
            margin: 0.2,
        }
    }

    /// The ideal 8-worker × 50 ms system: X = min(20N, 160), R = max(50, N/160 s).
    fn ideal(n: f64) -> CapacityStep {
        let x = (20.0 * n).min(160.0);
        let r = (n / x * 1000.0).max(50.0);
        row(n, x, r, r < 150.0)
    }

    #[test]
    fn an_ideal_pool_gives_its_knee_capacity_and_peak() {
        let searched = Searched {
            steps: [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 24.0, 20.0, 22.0]
                .into_iter()
                .map(ideal)
                .collect(),
            stop_reason: "test".into(),
            ..Default::default()
        };
        let c = conclude(&opts(), &searched);
        assert_eq!(c.slo_capacity, Some(22.0));
        assert_eq!(c.breaks_at, Some(24.0));
        assert_eq!(c.saturation, Some(8.0));
        assert_eq!(c.peak_throughput_rps, 160.0);
        assert_eq!(c.recommended, Some(17.0));
        assert!(!c.slo_capacity_is_lower_bound);
        assert!(c.statement.contains("holds 22 concurrent users"), "{}", c.statement);
        assert!(c.statement.contains("saturates at ~8 VUs"), "{}", c.statement);
        assert!(c.statement.contains("peaks at 160 req/s"), "{}", c.statement);
        let u = c.usl.unwrap();
        assert!(u.sigma >= 0.0 && u.kappa >= 0.0);
    }

    #[test]
    fn no_break_is_a_lower_bound_and_no_saturation() {
        let searched = Searched {
            steps: [1.0, 2.0, 4.0]
                .into_iter()
                .map(|n| row(n, 20.0 * n, 50.0, true))
                .collect(),
            ..Default::default()
        };
        let c = conclude(&opts(), &searched);
        assert_eq!(c.slo_capacity, Some(4.0));
        assert!(c.slo_capacity_is_lower_bound);
        assert_eq!(c.saturation, None);
        assert!(c.statement.contains("at least 4"), "{}", c.statement);
        assert!(c.usl.is_none());
        assert!(c.projections[0].starts_with("no projection"));
    }

    #[test]
    fn breaking_at_the_first_step_has_no_capacity() {
        let searched = Searched {
            steps: vec![row(1.0, 1.0, 900.0, false)],
            ..Default::default()
        };
        let c = conclude(&opts(), &searched);
        assert_eq!(c.slo_capacity, None);
        assert_eq!(c.recommended, None);
        assert!(c.statement.contains("does not meet"), "{}", c.statement);
    }
}
