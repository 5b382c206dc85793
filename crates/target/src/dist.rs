//! Service-time distributions.
//!
//! The target's capacity is only "known by construction" if the service time is: every
//! distribution here is described by its mean, so `workers / mean` is the saturation throughput
//! whatever the shape. The shape only decides the tail (p99), which is what a report compares.

use std::time::Duration;

use rand::Rng;

/// z-score of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326_347_874;

/// A validated service-time distribution. Sampling never panics and never returns a negative
/// duration.
#[derive(Debug, Clone, PartialEq)]
pub enum Dist {
    /// Always the same duration.
    Fixed(Duration),
    /// Uniform between `min` and `max` (inclusive).
    Uniform { min: Duration, max: Duration },
    /// Log-normal: `ln X ~ N(mu, sigma)`, in seconds. Heavy right tail like real services.
    LogNormal { mu: f64, sigma: f64 },
    /// Exponential (memoryless) with the given mean: the M/M/c textbook case.
    Exponential { mean: Duration },
}

/// Why a distribution cannot be built from its parameters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistError {
    #[error("uniform: min must not exceed max")]
    UniformOrder,
    #[error("lognormal: mean must be greater than zero")]
    ZeroMean,
    #[error("lognormal: give either p99 or sigma, not both")]
    BothP99AndSigma,
    #[error("lognormal: p99 must be greater than the mean")]
    P99NotAboveMean,
    #[error("lognormal: p99 may be at most ~14.9x the mean (no log-normal has a longer p99 tail)")]
    P99TooFar,
    #[error("lognormal: sigma must be a finite number >= 0")]
    BadSigma,
}

impl Dist {
    /// A log-normal with the given mean and either a p99 or a sigma (of `ln X`).
    ///
    /// With mean `m` and p99 `q`: `ln m = mu + s²/2` and `ln q = mu + z·s`, so
    /// `s²/2 − z·s + ln(q/m) = 0`, whose smaller root is the sigma we want.
    pub fn lognormal(mean: Duration, p99: Option<Duration>, sigma: Option<f64>) -> Result<Dist, DistError> {
        let m = mean.as_secs_f64();
        if m <= 0.0 {
            return Err(DistError::ZeroMean);
        }
        let s = match (p99, sigma) {
            (Some(_), Some(_)) => return Err(DistError::BothP99AndSigma),
            (Some(q), None) => {
                let q = q.as_secs_f64();
                if q <= m {
                    return Err(DistError::P99NotAboveMean);
                }
                let disc = Z99 * Z99 - 2.0 * (q / m).ln();
                if disc < 0.0 {
                    return Err(DistError::P99TooFar);
                }
                Z99 - disc.sqrt()
            }
            (None, Some(s)) if s.is_finite() && s >= 0.0 => s,
            (None, Some(_)) => return Err(DistError::BadSigma),
            // A moderate default tail: p99 ≈ 1.6 × mean.
            (None, None) => 0.25,
        };
        Ok(Dist::LogNormal {
            mu: m.ln() - s * s / 2.0,
            sigma: s,
        })
    }

    /// Uniform, checking the bounds.
    pub fn uniform(min: Duration, max: Duration) -> Result<Dist, DistError> {
        if min > max {
            return Err(DistError::UniformOrder);
        }
        Ok(Dist::Uniform { min, max })
    }

    /// The distribution's mean, the number capacity arithmetic is done with.
    pub fn mean(&self) -> Duration {
        match self {
            Dist::Fixed(d) => *d,
            Dist::Uniform { min, max } => (*min + *max) / 2,
            Dist::LogNormal { mu, sigma } => secs((mu + sigma * sigma / 2.0).exp()),
            Dist::Exponential { mean } => *mean,
        }
    }

    /// Draws one service time.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match self {
            Dist::Fixed(d) => *d,
            Dist::Uniform { min, max } => {
                let (lo, hi) = (min.as_nanos() as u64, max.as_nanos() as u64);
                Duration::from_nanos(rng.random_range(lo..=hi))
            }
            Dist::LogNormal { mu, sigma } => secs((mu + sigma * standard_normal(rng)).exp()),
            Dist::Exponential { mean } => {
                // 1 - u is in (0, 1], so the log is finite.
                let u: f64 = rng.random();
                secs(-(1.0 - u).ln() * mean.as_secs_f64())
            }
        }
    }
}

/// Box–Muller; `rand` without `rand_distr` has no normal distribution, and one draw is enough.
fn standard_normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Seconds to a duration, clamped to [0, 1 hour] so a wild draw can neither panic nor hang.
fn secs(s: f64) -> Duration {
    if s.is_finite() {
        Duration::from_secs_f64(s.clamp(0.0, 3600.0))
    } else {
        Duration::from_secs(3600)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn lognormal_matches_mean_and_p99() {
        let d = Dist::lognormal(Duration::from_millis(100), Some(Duration::from_millis(140)), None).unwrap();
        assert!((d.mean().as_secs_f64() - 0.1).abs() < 1e-9);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut v: Vec<f64> = (0..50_000).map(|_| d.sample(&mut rng).as_secs_f64()).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let p99 = v[v.len() * 99 / 100];
        assert!((mean - 0.1).abs() < 0.002, "mean {mean}");
        assert!((p99 - 0.14).abs() < 0.005, "p99 {p99}");
    }

    #[test]
    fn exponential_mean() {
        let d = Dist::Exponential {
            mean: Duration::from_millis(50),
        };
        let mut rng = SmallRng::seed_from_u64(1);
        let n = 50_000;
        let mean = (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).sum::<f64>() / n as f64;
        assert!((mean - 0.05).abs() < 0.002, "mean {mean}");
    }

    #[test]
    fn bad_parameters_are_errors() {
        let ms = Duration::from_millis;
        assert_eq!(
            Dist::lognormal(ms(100), Some(ms(90)), None),
            Err(DistError::P99NotAboveMean)
        );
        assert_eq!(Dist::lognormal(ms(1), Some(ms(100)), None), Err(DistError::P99TooFar));
        assert_eq!(Dist::uniform(ms(2), ms(1)), Err(DistError::UniformOrder));
    }
}
