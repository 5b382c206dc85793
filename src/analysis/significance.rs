//! Whether a change between two runs is real: a paired sign-flip permutation test over
//! per-second values, with Holm's correction over every test of one comparison
//! (docs/compare.md explains the choice and what it promises).
//!
//! Second `i` of a phase in run A is paired with second `i` of the same phase in run B: the same
//! plan puts the same load on the system at the same second, so a ramp's shape cancels out of
//! the differences. If nothing changed, each difference is as likely to be `+d` as `-d`; the test
//! asks how often a random choice of signs gives a sum at least as far from 0 as the observed one.
//! Hand-written (no statistics crate): it is a few lines, exact for short phases.

use rand::rngs::SmallRng;
use rand::{RngCore, SeedableRng};

/// The family-wise error rate: the chance that two runs of an unchanged system show any
/// significant change, over all the metrics, phases and steps of one comparison.
pub const ALPHA: f64 = 0.05;

/// Up to this many paired seconds, every one of the 2^n sign patterns is tried (exact p-value).
const EXACT_UP_TO: usize = 12;
/// Up to this many, random sign patterns (a Monte Carlo p-value, which is still valid: the
/// observed pattern counts as one of them); beyond, the normal approximation, which the
/// sign-flip distribution reaches long before (its variance is known: the sum of squares).
const MONTE_CARLO_UP_TO: usize = 400;
const RESAMPLES: u64 = 9_999;
/// Fixed, so the same two runs always give the same p-values.
const SEED: u64 = 0x5ee0_d5ee_d5ee_d5ee;

/// The test of one metric: the p-value before correction and the mean per-second change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Test {
    pub p_value: f64,
    /// Seconds paired.
    pub seconds: usize,
    /// Mean of (after − before) over the paired seconds.
    pub mean_diff: f64,
}

/// Pairs `(seq, value)` rows by `seq` (both in ascending `seq` order) and tests them; None when
/// no second pairs or every difference is 0 (nothing to test: it could never be significant).
pub fn paired_test(before: &[(u64, f64)], after: &[(u64, f64)]) -> Option<Test> {
    scaled_test(before, after, 1.0)
}

/// The same test of after − `factor` × before: with `factor` 1.05, whether the seconds after
/// are more than 5% above those before (a change beyond a tolerance), not merely above them.
pub fn scaled_test(before: &[(u64, f64)], after: &[(u64, f64)], factor: f64) -> Option<Test> {
    let d = differences(before, after, factor);
    let seconds = d.len();
    if seconds == 0 {
        return None;
    }
    let mean_diff = d.iter().sum::<f64>() / seconds as f64;
    // A zero difference is the same under either sign: it changes no sum, so it is dropped.
    let d: Vec<f64> = d.into_iter().filter(|x| *x != 0.0).collect();
    if d.is_empty() {
        return None;
    }
    Some(Test {
        p_value: sign_flip_p(&d),
        seconds,
        mean_diff,
    })
}

/// after − factor × before for every `seq` both have.
fn differences(before: &[(u64, f64)], after: &[(u64, f64)], factor: f64) -> Vec<f64> {
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < before.len() && j < after.len() {
        match before[i].0.cmp(&after[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(after[j].1 - factor * before[i].1);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// The two-sided p-value of the sign-flip test of the sum of `d` (no zeros).
pub fn sign_flip_p(d: &[f64]) -> f64 {
    let observed = d.iter().sum::<f64>().abs();
    // Sums equal to the observed one up to rounding count as at least as extreme.
    let eps = 1e-9 * d.iter().map(|x| x.abs()).sum::<f64>();
    let extreme = |s: f64| s.abs() >= observed - eps;
    let n = d.len();
    if n <= EXACT_UP_TO {
        let hits = (0u32..1 << n)
            .filter(|mask| {
                extreme(
                    d.iter()
                        .enumerate()
                        .map(|(i, x)| if mask >> i & 1 == 1 { -x } else { *x })
                        .sum(),
                )
            })
            .count();
        hits as f64 / f64::from(1u32 << n)
    } else if n <= MONTE_CARLO_UP_TO {
        let mut rng = SmallRng::seed_from_u64(SEED ^ n as u64);
        let mut hits = 0u64;
        for _ in 0..RESAMPLES {
            let mut sum = 0.0;
            for chunk in d.chunks(64) {
                let bits = rng.next_u64();
                for (i, x) in chunk.iter().enumerate() {
                    sum += if bits >> i & 1 == 1 { -x } else { *x };
                }
            }
            hits += u64::from(extreme(sum));
        }
        (1 + hits) as f64 / (1 + RESAMPLES) as f64
    } else {
        let sd = d.iter().map(|x| x * x).sum::<f64>().sqrt();
        erfc(observed / sd / std::f64::consts::SQRT_2)
    }
}

/// The fewest paired seconds with which a change can be significant among `tests` tests: even
/// when every second moves the same way, the smallest p-value is 2/2^n (exact) or about
/// 1/10,000 (Monte Carlo), and Holm's first step needs it below ALPHA / tests.
pub fn min_seconds(tests: usize) -> usize {
    let bar = ALPHA / tests.max(1) as f64;
    let exact = (1..=EXACT_UP_TO).find(|&n| 2.0 / (1u64 << n) as f64 <= bar - f64::EPSILON);
    match exact {
        Some(n) => n,
        None if 1.0 / (1 + RESAMPLES) as f64 <= bar => EXACT_UP_TO + 1,
        // Only the normal approximation, beyond the Monte Carlo range, gets that low.
        None => MONTE_CARLO_UP_TO + 1,
    }
}

/// Holm's step-down adjustment: the adjusted p-values, in the input's order. Rejecting where an
/// adjusted p-value is below [`ALPHA`] keeps the chance of any false rejection among them all at
/// most [`ALPHA`], whatever the dependence between the tests.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running: f64 = 0.0;
    for (k, &i) in order.iter().enumerate() {
        running = running.max(((m - k) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// The complementary error function (Numerical Recipes' `erfcc`: relative error below 1.2e-7
/// everywhere, which keeps small p-values accurate too).
pub(crate) fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * (-z * z + poly).exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(values: &[f64]) -> Vec<(u64, f64)> {
        values.iter().enumerate().map(|(i, v)| (i as u64, *v)).collect()
    }

    #[test]
    fn every_second_worse_is_as_significant_as_n_seconds_allow() {
        // 8 seconds, all worse: only "all +" and "all −" are as extreme: p = 2/256.
        let t = paired_test(&rows(&[20.0; 8]), &rows(&[30.0; 8])).unwrap();
        assert_eq!(t.p_value, 2.0 / 256.0);
        assert_eq!((t.seconds, t.mean_diff), (8, 10.0));
        // Alternating signs of equal size: nothing but noise.
        let t = paired_test(&rows(&[1.0, 2.0, 1.0, 2.0]), &rows(&[2.0, 1.0, 2.0, 1.0])).unwrap();
        assert_eq!(t.p_value, 1.0);
    }

    #[test]
    fn a_scaled_test_asks_for_a_change_beyond_the_factor() {
        let before = rows(&[20.0, 21.0, 19.0, 20.5, 20.0, 19.5, 20.2, 20.8]);
        let after: Vec<f64> = before.iter().map(|(_, v)| v * 1.04).collect();
        let plain = paired_test(&before, &rows(&after)).unwrap();
        assert_eq!(plain.p_value, 2.0 / 256.0, "4% up in every second");
        let beyond = scaled_test(&before, &rows(&after), 1.05).unwrap();
        assert!(beyond.mean_diff < 0.0, "but less than 5% up");
        let far: Vec<f64> = before.iter().map(|(_, v)| v * 1.5).collect();
        let t = scaled_test(&before, &rows(&far), 1.05).unwrap();
        assert!(t.p_value < 0.01 && t.mean_diff > 0.0);
    }

    #[test]
    fn nothing_to_test_is_none() {
        assert_eq!(paired_test(&rows(&[1.0, 2.0]), &rows(&[1.0, 2.0])), None);
        assert_eq!(paired_test(&rows(&[1.0]), &[]), None);
        // Seconds pair by seq, not by position.
        let t = paired_test(&[(0, 1.0), (5, 1.0)], &[(5, 3.0), (9, 0.0)]).unwrap();
        assert_eq!((t.seconds, t.mean_diff, t.p_value), (1, 2.0, 1.0));
    }

    /// The three ways to a p-value agree where they meet: exact, Monte Carlo, normal.
    #[test]
    fn monte_carlo_and_normal_agree_with_the_exact_test() {
        let d: Vec<f64> = (0..12)
            .map(|i| if i % 3 == 0 { -1.0 } else { 1.0 + i as f64 * 0.1 })
            .collect();
        let exact = sign_flip_p(&d);
        let mut longer = d.clone();
        longer.push(0.05); // 13 values: Monte Carlo, nearly the same data
        let mc = sign_flip_p(&longer);
        assert!((exact - mc).abs() < 0.02, "exact {exact}, Monte Carlo {mc}");
        // 500 values (normal): a sign flip of 30 ± 1 noise around a +0.2 shift.
        let d: Vec<f64> = (0..500).map(|i| 0.2 + if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let z = 0.2 * 500.0 / (d.iter().map(|x| x * x).sum::<f64>()).sqrt();
        let p = sign_flip_p(&d);
        assert!(p < 1e-4 && p > 0.0, "z {z}, p {p}");
        assert!((erfc(0.0) - 1.0).abs() < 1e-7);
        assert!((erfc(1.959_964 / std::f64::consts::SQRT_2) - 0.05).abs() < 1e-6);
        assert!((erfc(-1.0) - 1.842_700_79).abs() < 1e-6);
    }

    #[test]
    fn the_seconds_needed_grow_with_the_tests() {
        assert_eq!(min_seconds(1), 6, "2/64 < 0.05");
        assert_eq!(min_seconds(5), 8, "2/256 < 0.01");
        assert_eq!(min_seconds(60), 12, "2/4096 < 0.05/60");
        assert_eq!(min_seconds(200), EXACT_UP_TO + 1, "Monte Carlo: 1/10,000 < 0.05/200");
        assert_eq!(min_seconds(10_000), MONTE_CARLO_UP_TO + 1);
        let t = paired_test(&rows(&[20.0; 8]), &rows(&[30.0; 8])).unwrap();
        assert!(t.p_value * 5.0 < ALPHA, "8 seconds suffice for 5 tests");
    }

    #[test]
    fn holm_adjusts_step_down_and_keeps_the_order() {
        let adj = holm(&[0.04, 0.001, 0.02, 0.5]);
        // Sorted 0.001, 0.02, 0.04, 0.5 → 0.004, 0.06, 0.08, 0.5 (monotone).
        let want = [0.08, 0.004, 0.06, 0.5];
        for (a, w) in adj.iter().zip(want) {
            assert!((a - w).abs() < 1e-12, "{adj:?}");
        }
        assert!(holm(&[]).is_empty());
    }

    /// Under the null (signs at random), the test rejects at most ALPHA of the time.
    #[test]
    fn under_no_change_the_false_positive_rate_is_at_most_alpha() {
        let mut rng = SmallRng::seed_from_u64(7);
        let trials = 1000;
        let mut rejected = 0;
        for _ in 0..trials {
            let d: Vec<f64> = (0..10)
                .map(|_| {
                    let size = 0.5 + (rng.next_u32() % 1000) as f64 / 1000.0;
                    if rng.next_u32() & 1 == 1 {
                        size
                    } else {
                        -size
                    }
                })
                .collect();
            rejected += usize::from(sign_flip_p(&d) < ALPHA);
        }
        let rate = rejected as f64 / trials as f64;
        assert!(rate <= ALPHA + 0.01, "false-positive rate {rate}");
        assert!(rate > 0.02, "the test does reject at random sometimes: {rate}");
    }
}
