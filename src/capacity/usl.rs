//! Universal Scalability Law fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)).
//!
//! Fitted by hand (no solver dependency): λ is taken from the smallest load measured (as if the
//! system scaled linearly up to it), then the linearised form
//! `N/C(N) − 1 = σ(N−1) + κN(N−1)` with `C(N) = X(N)/λ` is solved by least squares with σ, κ ≥ 0.
//! R² is computed on the throughput itself (measured X against the fitted curve), so a fit that
//! explains nothing says so with a low (even negative) R² instead of a confident number.

use crate::analysis::Usl;

/// Fewer distinct load levels than this give no fit: three parameters need more than three points
/// to say anything about how well they fit.
pub const MIN_POINTS: usize = 4;

/// R² at or above which the fit is used for the statement and projections.
pub const USABLE_R2: f64 = 0.7;

/// Fits the USL to `(N, X)` points (N: concurrency, X: throughput). `None` with fewer than
/// [`MIN_POINTS`] distinct usable levels.
pub fn fit(points: &[(f64, f64)]) -> Option<Usl> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(n, x)| n.is_finite() && x.is_finite() && *n > 0.0 && *x > 0.0)
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut distinct = pts.iter().map(|p| p.0).collect::<Vec<_>>();
    distinct.dedup();
    if distinct.len() < MIN_POINTS {
        return None;
    }
    let (n0, x0) = pts[0];
    let lambda = x0 / n0;
    // Sums for the normal equations of y = σa + κb.
    let (mut saa, mut sab, mut sbb, mut say, mut sby) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(n, x) in &pts {
        let (a, b) = (n - 1.0, n * (n - 1.0));
        let y = n * lambda / x - 1.0;
        saa += a * a;
        sab += a * b;
        sbb += b * b;
        say += a * y;
        sby += b * y;
    }
    let sse = |s: f64, k: f64| -> f64 {
        pts.iter()
            .map(|&(n, x)| {
                let y = n * lambda / x - 1.0;
                let e = y - s * (n - 1.0) - k * n * (n - 1.0);
                e * e
            })
            .sum()
    };
    // Non-negative least squares in two variables: the unconstrained optimum if it is feasible,
    // otherwise the best of the one-variable fits on the boundary (and the origin).
    let mut candidates = vec![(0.0, 0.0)];
    let det = saa * sbb - sab * sab;
    if det.abs() > 1e-12 * (saa * sbb).max(1e-300) {
        let s = (say * sbb - sby * sab) / det;
        let k = (saa * sby - sab * say) / det;
        if s >= 0.0 && k >= 0.0 {
            candidates.push((s, k));
        }
    }
    if saa > 0.0 {
        candidates.push(((say / saa).max(0.0), 0.0));
    }
    if sbb > 0.0 {
        candidates.push((0.0, (sby / sbb).max(0.0)));
    }
    let (sigma, kappa) = candidates
        .into_iter()
        .filter(|(s, k)| s.is_finite() && k.is_finite())
        .min_by(|a, b| sse(a.0, a.1).total_cmp(&sse(b.0, b.1)))
        .unwrap_or((0.0, 0.0));
    let usl = Usl {
        sigma,
        kappa,
        lambda,
        r2: 0.0,
        peak_concurrency: peak_concurrency(sigma, kappa),
        quality: String::new(),
        concurrency_from: String::new(),
    };
    let mean = pts.iter().map(|p| p.1).sum::<f64>() / pts.len() as f64;
    let ss_tot: f64 = pts.iter().map(|p| (p.1 - mean).powi(2)).sum();
    let ss_res: f64 = pts.iter().map(|&(n, x)| (x - throughput(&usl, n)).powi(2)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else if ss_res <= 1e-9 {
        1.0
    } else {
        0.0
    };
    Some(Usl {
        r2,
        quality: quality(r2).into(),
        ..usl
    })
}

/// √((1−σ)/κ): where the fitted curve peaks. None when it never peaks (κ = 0) or σ ≥ 1.
pub fn peak_concurrency(sigma: f64, kappa: f64) -> Option<f64> {
    (kappa > 0.0 && sigma < 1.0).then(|| ((1.0 - sigma) / kappa).sqrt())
}

/// The fitted throughput at concurrency `n`.
pub fn throughput(u: &Usl, n: f64) -> f64 {
    let d = 1.0 + u.sigma * (n - 1.0) + u.kappa * n * (n - 1.0);
    if d > 0.0 {
        u.lambda * n / d
    } else {
        0.0
    }
}

/// "good", "fair" or "poor", for people.
pub fn quality(r2: f64) -> &'static str {
    if r2 >= 0.9 {
        "good"
    } else if r2 >= USABLE_R2 {
        "fair"
    } else {
        "poor"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(sigma: f64, kappa: f64, lambda: f64, ns: &[f64]) -> Vec<(f64, f64)> {
        let u = Usl {
            sigma,
            kappa,
            lambda,
            r2: 0.0,
            peak_concurrency: None,
            quality: String::new(),
            concurrency_from: String::new(),
        };
        ns.iter().map(|&n| (n, throughput(&u, n))).collect()
    }

    #[test]
    fn recovers_known_parameters_from_synthetic_data() {
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
        let u = fit(&curve(0.05, 0.001, 100.0, &ns)).unwrap();
        assert!((u.sigma - 0.05).abs() < 1e-6, "{u:?}");
        assert!((u.kappa - 0.001).abs() < 1e-8, "{u:?}");
        assert!((u.lambda - 100.0).abs() < 1e-9, "{u:?}");
        assert!(u.r2 > 0.999, "{u:?}");
        let peak = u.peak_concurrency.unwrap();
        assert!((peak - (0.95f64 / 0.001).sqrt()).abs() < 1e-3, "{peak}");
        assert_eq!(quality(u.r2), "good");
    }

    #[test]
    fn recovers_parameters_through_a_little_noise() {
        // ±2% deterministic wobble on a contention-only system.
        let ns = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0];
        let wobble = [1.0, 1.02, 0.98, 1.01, 0.99, 1.02];
        let pts: Vec<_> = curve(0.1, 0.0, 50.0, &ns)
            .into_iter()
            .zip(wobble)
            .map(|((n, x), w)| (n, x * w))
            .collect();
        let u = fit(&pts).unwrap();
        assert!((u.sigma - 0.1).abs() < 0.02, "{u:?}");
        assert!(u.kappa < 0.001, "{u:?}");
        assert!(u.r2 > 0.95, "{u:?}");
    }

    #[test]
    fn linear_scaling_has_no_contention_and_no_peak() {
        let pts = curve(0.0, 0.0, 20.0, &[1.0, 2.0, 4.0, 8.0]);
        let u = fit(&pts).unwrap();
        assert!(u.sigma.abs() < 1e-9 && u.kappa.abs() < 1e-12, "{u:?}");
        assert_eq!(u.peak_concurrency, None);
        assert!(u.r2 > 0.999);
    }

    #[test]
    fn noise_is_reported_as_a_poor_fit() {
        // Throughput that does not depend on the load at all: nothing for the model to explain.
        let pts = [
            (1.0, 97.0),
            (2.0, 140.0),
            (4.0, 61.0),
            (8.0, 133.0),
            (16.0, 72.0),
            (32.0, 118.0),
            (64.0, 88.0),
        ];
        let u = fit(&pts).unwrap();
        assert!(u.r2 < 0.5, "a fit to noise must not look good: {u:?}");
        assert_eq!(quality(u.r2), "poor");
        assert!(u.sigma >= 0.0 && u.kappa >= 0.0);
    }

    #[test]
    fn too_few_or_bad_points_give_no_fit() {
        assert!(fit(&[(1.0, 10.0), (2.0, 20.0), (4.0, 30.0)]).is_none());
        assert!(fit(&[(1.0, 10.0), (1.0, 11.0), (2.0, 20.0), (2.0, 19.0)]).is_none());
        assert!(fit(&[(0.0, 10.0), (f64::NAN, 1.0), (2.0, 0.0), (4.0, -1.0)]).is_none());
        assert!(fit(&[]).is_none());
    }
}
