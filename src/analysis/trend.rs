//! Whether a series trends over a phase: the Mann-Kendall test with Hamed and Rao's (1998)
//! variance correction for autocorrelation, and the Theil-Sen slope as the effect size
//! (docs/reports.md, "Drift", says why and what it promises).
//!
//! Per-second latency is autocorrelated (a GC pause, a slow disk or a queue spans several
//! seconds), and a plain trend test on such data calls a flat system degrading far more often
//! than its α says. Mann-Kendall uses only the order of values (no assumption about their
//! distribution, robust to outliers such as one slow second); Hamed and Rao widen its variance
//! by the autocorrelation of the detrended ranks, so runs of similar seconds count as the fewer
//! independent observations they are. Theil-Sen (the median of all pairwise slopes) is the
//! matching robust slope. Both are O(n²): callers bucket a phase to at most [`MAX_POINTS`].

use super::significance::erfc;

/// The false-alarm rate of one trend test on a series without trend (two-sided).
pub const ALPHA: f64 = 0.05;
/// Callers bucket a phase into at most this many points (one per second for a phase of up to
/// 4 minutes): the tests are quadratic, and 240 points keep a 24-hour phase's judgement in
/// milliseconds.
pub const MAX_POINTS: usize = 240;
/// Below this many points a trend is not judged: the test could not reach significance anyway.
pub const MIN_POINTS: usize = 8;

/// One series' trend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Theil-Sen slope, in the series' unit per unit of `t`.
    pub slope: f64,
    /// The Theil-Sen line's value at the first and at the last point's time.
    pub start: f64,
    pub end: f64,
    /// Mann-Kendall's two-sided p-value, variance corrected for autocorrelation.
    pub p_value: f64,
    /// The variance correction applied (n / n*: 1 for independent points, larger when they are
    /// positively autocorrelated).
    pub correction: f64,
    pub points: usize,
}

impl Trend {
    pub fn significant(&self) -> bool {
        self.p_value < ALPHA
    }
}

/// The trend of `pts` (time, value), or None with fewer than [`MIN_POINTS`] finite points.
pub fn trend(pts: &[(f64, f64)]) -> Option<Trend> {
    judge(pts, true)
}

/// [`trend`] without the autocorrelation correction, for points that are already means of
/// blocks long enough to be nearly independent. A smooth curve that rises and levels off (a
/// cache warming up) has detrended residuals that look like strong autocorrelation, and the
/// correction would call its rise insignificant; block means avoid that.
pub fn trend_of_blocks(pts: &[(f64, f64)]) -> Option<Trend> {
    judge(pts, false)
}

fn judge(pts: &[(f64, f64)], corrected: bool) -> Option<Trend> {
    let pts: Vec<(f64, f64)> = pts
        .iter()
        .copied()
        .filter(|(t, v)| t.is_finite() && v.is_finite())
        .collect();
    let n = pts.len();
    if n < MIN_POINTS {
        return None;
    }
    let slope = theil_sen(&pts);
    let intercept = median(pts.iter().map(|(t, v)| v - slope * t).collect());
    let (t0, t1) = (pts[0].0, pts[n - 1].0);
    let s = kendall_s(&pts);
    let correction = if corrected {
        hamed_rao(&pts, slope).max(1.0)
    } else {
        1.0
    };
    let var = tie_corrected_variance(&pts) * correction;
    let p_value = if var <= 0.0 || s == 0.0 {
        1.0
    } else {
        // Continuity correction: S moves in steps of 2.
        let z = (s.abs() - 1.0).max(0.0) / var.sqrt();
        erfc(z / std::f64::consts::SQRT_2).min(1.0)
    };
    Some(Trend {
        slope,
        start: intercept + slope * t0,
        end: intercept + slope * t1,
        p_value,
        correction,
        points: n,
    })
}

/// Kendall's S: concordant minus discordant pairs in time order.
fn kendall_s(pts: &[(f64, f64)]) -> f64 {
    let mut s = 0i64;
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            s += match b.1.partial_cmp(&a.1) {
                Some(std::cmp::Ordering::Greater) => 1,
                Some(std::cmp::Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    s as f64
}

/// Var(S) under no trend, with the correction for tied values (latency read from histograms
/// of 3 significant digits ties often; a flat error rate of 0 is all ties).
fn tie_corrected_variance(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let mut v: Vec<f64> = pts.iter().map(|p| p.1).collect();
    v.sort_by(f64::total_cmp);
    let mut ties = 0.0;
    let mut i = 0;
    while i < v.len() {
        let j = v[i..].iter().take_while(|x| **x == v[i]).count();
        let t = j as f64;
        ties += t * (t - 1.0) * (2.0 * t + 5.0);
        i += j;
    }
    (n * (n - 1.0) * (2.0 * n + 5.0) - ties) / 18.0
}

/// Hamed and Rao's n/n* = 1 + 2/(n(n−1)(n−2)) Σ (n−k)(n−k−1)(n−k−2) ρ(k), with ρ(k) = ρ₁^k from
/// the lag-1 rank autocorrelation ρ₁ of the detrended series (bias-corrected for its length).
/// Hamed and Rao sum the sample autocorrelations that pass a 5% test instead; on 60 seconds of
/// AR(1) noise with ρ = 0.5 that drops lags that matter and alarms 14% of the time (measured),
/// where one estimated ρ₁ carried to every lag (plus one standard error) keeps it at α or below.
fn hamed_rao(pts: &[(f64, f64)], slope: f64) -> f64 {
    let n = pts.len();
    let detrended: Vec<f64> = pts.iter().map(|(t, v)| v - slope * t).collect();
    let r = ranks(&detrended);
    let mean = r.iter().sum::<f64>() / n as f64;
    let d: Vec<f64> = r.iter().map(|x| x - mean).collect();
    let denom: f64 = d.iter().map(|x| x * x).sum();
    if denom <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let r1 = d.iter().zip(&d[1..]).map(|(a, b)| a * b).sum::<f64>() / denom;
    // E[r₁] ≈ ρ − (1 + 3ρ)/n for AR(1) (Kendall, 1954), solved for ρ; then one standard error
    // more, since a short series' estimate still falls short of a strong ρ often enough to
    // matter (the test errs on the side of "stable").
    let rho = (nf * r1 + 1.0) / (nf - 3.0);
    let rho = (rho.max(0.0) + ((1.0 - rho * rho).max(0.0) / nf).sqrt()).min(0.99);
    let mut sum = 0.0;
    let mut rho_k = 1.0;
    for k in 1..n.saturating_sub(2) {
        rho_k *= rho;
        if rho_k.abs() < 1e-6 {
            break;
        }
        let m = (n - k) as f64;
        sum += m * (m - 1.0) * (m - 2.0) * rho_k;
    }
    1.0 + 2.0 / (nf * (nf - 1.0) * (nf - 2.0)) * sum
}

/// Ranks from 1, ties given their average rank.
fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|a, b| v[*a].total_cmp(&v[*b]));
    let mut out = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let j = idx[i..].iter().take_while(|k| v[**k] == v[idx[i]]).count();
        let avg = i as f64 + (j as f64 + 1.0) / 2.0;
        for k in &idx[i..i + j] {
            out[*k] = avg;
        }
        i += j;
    }
    out
}

/// The median of all pairwise slopes.
fn theil_sen(pts: &[(f64, f64)]) -> f64 {
    let mut slopes = Vec::with_capacity(pts.len() * (pts.len() - 1) / 2);
    for (i, a) in pts.iter().enumerate() {
        for b in &pts[i + 1..] {
            if b.0 != a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    if slopes.is_empty() {
        0.0
    } else {
        median(slopes)
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};

    /// A flat series with AR(1) noise (each second carries `phi` of the last one's deviation),
    /// the shape of per-second latency on a system without trend.
    pub(crate) fn ar1(rng: &mut SmallRng, n: usize, level: f64, sd: f64, phi: f64) -> Vec<(f64, f64)> {
        let mut e = 0.0;
        (0..n)
            .map(|i| {
                // Sum of uniforms: a bell-shaped innovation without a distributions crate.
                let u: f64 = (0..12).map(|_| rng.random::<f64>()).sum::<f64>() - 6.0;
                e = phi * e + sd * (1.0 - phi * phi).sqrt() * u;
                (i as f64, level + e)
            })
            .collect()
    }

    #[test]
    fn a_steady_rise_is_significant_with_its_slope() {
        let mut rng = SmallRng::seed_from_u64(1);
        // 1 ms per second on 5 ms of noise, over 60 s.
        let pts: Vec<(f64, f64)> = ar1(&mut rng, 60, 20.0, 5.0, 0.5)
            .into_iter()
            .map(|(t, v)| (t, v + t))
            .collect();
        let tr = trend(&pts).unwrap();
        assert!(tr.significant(), "{tr:?}");
        assert!((tr.slope - 1.0).abs() < 0.2, "{tr:?}");
        assert!(tr.end > tr.start + 45.0, "{tr:?}");
        let down: Vec<(f64, f64)> = pts.iter().map(|(t, v)| (*t, 100.0 - v)).collect();
        let tr = trend(&down).unwrap();
        assert!(tr.significant() && tr.slope < 0.0, "{tr:?}");
    }

    #[test]
    fn all_ties_and_short_series_are_not_trends() {
        let zeros: Vec<(f64, f64)> = (0..30).map(|i| (i as f64, 0.0)).collect();
        let tr = trend(&zeros).unwrap();
        assert_eq!((tr.p_value, tr.slope), (1.0, 0.0));
        assert_eq!(trend(&zeros[..MIN_POINTS - 1]), None);
        let with_nan: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, if i == 3 { f64::NAN } else { 1.0 }))
            .collect();
        assert_eq!(trend(&with_nan).unwrap().points, 9);
    }

    #[test]
    fn textbook_values() {
        // S and Var(S) for 1..=10 strictly rising: S = 45, Var = 10·9·25/18 = 125.
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, i as f64)).collect();
        assert_eq!(kendall_s(&pts), 45.0);
        assert!((tie_corrected_variance(&pts) - 125.0).abs() < 1e-9);
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), [3.5, 1.0, 3.5, 2.0]);
        assert_eq!(
            theil_sen(&[(0.0, 0.0), (1.0, 2.0), (2.0, 4.0), (3.0, 6.0), (4.0, 100.0)]),
            2.0
        );
    }

    /// The promise: on series without trend, independent or autocorrelated like real seconds,
    /// the test is significant at most about α of the time (measured over 2,000 series each,
    /// docs/reports.md has the table). Kept cheap: fewer series here, with the bound widened
    /// by 2.5 standard errors of the measured rate.
    #[test]
    fn false_alarm_rate_on_flat_series_is_at_most_alpha() {
        let mut rng = SmallRng::seed_from_u64(7);
        for (n, phi, runs) in [(60, 0.0, 1000), (60, 0.5, 1000), (20, 0.3, 1000), (240, 0.7, 200)] {
            let alarms = (0..runs)
                .filter(|_| trend(&ar1(&mut rng, n, 50.0, 5.0, phi)).unwrap().significant())
                .count();
            let rate = alarms as f64 / runs as f64;
            let se = (ALPHA * (1.0 - ALPHA) / runs as f64).sqrt();
            println!("n={n} phi={phi}: false alarms {rate:.3} of {runs}");
            assert!(rate <= ALPHA + 2.5 * se, "n={n} phi={phi}: {rate}");
        }
    }
}
