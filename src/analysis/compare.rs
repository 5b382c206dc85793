//! Comparing two runs (`stampede.compare/v1`): for every phase both runs have, the whole phase
//! and each step both have, six metrics before → after with the change and whether it is
//! significant. Phases are matched by name, steps within a phase by name too; what has no
//! counterpart is listed, so a renamed step shows as gone and new.
//!
//! The headline values are the summaries' (merged histograms); significance comes from the
//! runs' per-second values ([`super::seconds`]) through a paired sign-flip test with Holm's
//! correction over the whole comparison ([`super::significance`]).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use stampede_rundir::named_enum;

use super::seconds::{PhaseSeconds, Second};
use super::significance::{holm, paired_test, scaled_test, Test, ALPHA};
use super::{Analysis, LatencyMs, Verdict};

pub const COMPARE_SCHEMA: &str = "stampede.compare/v1";

/// The default `--tolerance`: a significant change smaller than this is unchanged. The test
/// sees only the noise within each run; two runs of one system are also made in different
/// conditions (other processes on the machine, its caches), which shift a whole run by a few
/// per cent. Measured on a 2-core machine with other builds running: A/A shifts of 3-6% in
/// latency and throughput (docs/compare.md).
pub const DEFAULT_TOLERANCE: &str = "5%";

named_enum! {
    /// What a metric did, judged by the test and the tolerance.
    pub enum ChangeVerdict {
        Improved = "improved",
        Regressed = "regressed",
        Unchanged = "unchanged",
    }
}

named_enum! {
    /// The metrics compared, in the order every format shows them.
    pub enum Metric {
        Avg = "avg",
        P50 = "p50",
        P95 = "p95",
        P99 = "p99",
        Rps = "rps",
        ErrorRate = "error_rate",
    }
}

/// Every metric, as an array (rows of tests are arrays of six).
const METRICS: [Metric; 6] = [
    Metric::Avg,
    Metric::P50,
    Metric::P95,
    Metric::P99,
    Metric::Rps,
    Metric::ErrorRate,
];

impl Metric {
    /// Whether a higher value is worse (latency, errors) or better (throughput).
    fn higher_is_worse(self) -> bool {
        self != Metric::Rps
    }

    /// For people: the row label of tables.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Avg => "avg latency",
            Metric::P50 => "p50 latency",
            Metric::P95 => "p95 latency",
            Metric::P99 => "p99 latency",
            Metric::Rps => "throughput",
            Metric::ErrorRate => "error rate",
        }
    }

    fn of_latency(self, l: &LatencyMs) -> Option<f64> {
        match self {
            Metric::Avg => Some(l.avg),
            Metric::P50 => Some(l.p50),
            Metric::P95 => Some(l.p95),
            Metric::P99 => Some(l.p99),
            Metric::Rps | Metric::ErrorRate => None,
        }
    }

    /// The headline value of a phase or step (`latency` None: nothing completed).
    fn headline(self, latency: Option<&LatencyMs>, rps: f64, error_rate: f64, requests: u64) -> Option<f64> {
        match self {
            Metric::Rps => Some(rps),
            Metric::ErrorRate => (requests > 0).then_some(error_rate),
            _ => latency.and_then(|l| self.of_latency(l)),
        }
    }

    /// One second's value: latency of the requests completed in it, its rate, its error rate.
    fn per_second(self, s: &Second) -> Option<f64> {
        match self {
            Metric::Avg => s.latency.map(|l| l.avg),
            Metric::P50 => s.latency.map(|l| l.p50),
            Metric::P95 => s.latency.map(|l| l.p95),
            Metric::P99 => s.latency.map(|l| l.p99),
            Metric::Rps => Some(s.requests as f64 / s.dur),
            Metric::ErrorRate => (s.requests > 0).then(|| s.errors as f64 / s.requests as f64),
        }
    }

    fn series(self, seconds: &[Second]) -> Vec<(u64, f64)> {
        seconds
            .iter()
            .filter_map(|s| self.per_second(s).map(|v| (s.seq, v)))
            .collect()
    }
}

/// Two runs side by side, in the first run's phase order.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub schema: &'static str,
    pub before: RunRef,
    pub after: RunRef,
    /// The family-wise false-positive rate the test keeps (over the whole comparison).
    pub alpha: f64,
    /// Significant changes smaller than this (in % of the value before) count as unchanged.
    pub tolerance_pct: f64,
    /// Paired seconds a phase needs before any change in it can be significant, given how many
    /// tests this comparison makes (even a change in every second has p = 2/2^n).
    pub min_seconds: usize,
    /// Tests made (metrics with data to test, over every phase and step).
    pub tests: usize,
    pub regressions: Vec<Flagged>,
    pub improvements: Vec<Flagged>,
    pub phases: Vec<PhaseComparison>,
    /// Phases and steps with no counterpart in the other run.
    pub unmatched: Unmatched,
}

/// Which run: its plan name, start, note and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct RunRef {
    pub name: String,
    pub started_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub verdict: Verdict,
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseComparison {
    pub name: String,
    /// The most seconds any of its tests paired.
    pub seconds: usize,
    /// The whole phase (all steps merged).
    pub metrics: Metrics,
    /// The steps both runs have, in the first run's order.
    pub steps: Vec<StepComparison>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepComparison {
    pub name: String,
    pub metrics: Metrics,
}

/// The six metrics of a row, serialized as a map from metric name in [`Metric::ALL`]'s order.
#[derive(Debug, Clone)]
pub struct Metrics(pub Vec<MetricChange>);

impl Metrics {
    pub fn get(&self, m: Metric) -> &MetricChange {
        self.0.iter().find(|c| c.metric == m).expect("every metric is compared")
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for c in &self.0 {
            map.serialize_entry(c.metric.as_str(), c)?;
        }
        map.end()
    }
}

/// One metric before and after; either may be missing (nothing completed in that run).
#[derive(Debug, Clone, Serialize)]
pub struct MetricChange {
    #[serde(skip)]
    pub metric: Metric,
    /// ms for latency, per second for rps, a fraction for error_rate.
    pub before: Option<f64>,
    pub after: Option<f64>,
    /// (after − before) / before in %; None without a base to divide by.
    pub change_pct: Option<f64>,
    /// The test says the runs differ here (Holm-adjusted p below alpha, the per-second change
    /// in the headline's direction).
    pub significant: bool,
    pub verdict: ChangeVerdict,
    /// Holm-adjusted; None when there was nothing to test (no paired second, or no difference).
    pub p_value: Option<f64>,
    /// Holm-adjusted, of the test whether the seconds changed by more than the tolerance in the
    /// headline's direction (the same test on after − (1 ± tolerance) × before); the p-value
    /// itself when the tolerance is 0.
    pub p_beyond_tolerance: Option<f64>,
    /// Seconds paired for the test.
    pub seconds: usize,
}

/// A significant change beyond the tolerance, for the lists at the top.
#[derive(Debug, Clone, Serialize)]
pub struct Flagged {
    pub phase: String,
    /// None: the whole phase.
    pub step: Option<String>,
    pub metric: Metric,
    pub before: Option<f64>,
    pub after: Option<f64>,
    pub change_pct: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Unmatched {
    pub phases_only_before: Vec<String>,
    pub phases_only_after: Vec<String>,
    pub steps_only_before: Vec<PhaseStep>,
    pub steps_only_after: Vec<PhaseStep>,
}

impl Unmatched {
    pub fn is_empty(&self) -> bool {
        self.phases_only_before.is_empty()
            && self.phases_only_after.is_empty()
            && self.steps_only_before.is_empty()
            && self.steps_only_after.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PhaseStep {
    pub phase: String,
    pub step: String,
}

/// (after − before) / before in %.
pub fn percent(before: Option<f64>, after: Option<f64>) -> Option<f64> {
    match (before, after) {
        (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a * 100.0),
        _ => None,
    }
}

fn run_ref(a: &Analysis) -> RunRef {
    RunRef {
        name: a.summary.name.clone(),
        started_at: a.summary.started_at.clone(),
        note: a.meta.note.clone(),
        verdict: a.summary.verdict,
    }
}

/// A row's headline values and per-second rows, before and after.
struct RowInput<'a> {
    phase: usize,
    step: Option<usize>,
    headline: [(Option<f64>, Option<f64>); 6],
    before: &'a [Second],
    after: &'a [Second],
    /// The phase row of a phase with one step is that step's data: tested once, as the step.
    alias: bool,
}

/// `a` before, `b` after, both read with [`super::analyze_dir_with_seconds`] (without their
/// seconds nothing can be tested, and nothing would be significant); significant changes
/// within `tolerance_pct` % are unchanged.
pub fn compare(a: &Analysis, b: &Analysis, tolerance_pct: f64) -> Comparison {
    let empty = PhaseSeconds::default();
    let mut unmatched = Unmatched {
        phases_only_after: b
            .summary
            .phases
            .iter()
            .filter(|p| !a.summary.phases.iter().any(|x| x.name == p.name))
            .map(|p| p.name.clone())
            .collect(),
        ..Unmatched::default()
    };
    let mut phases = Vec::new();
    let mut inputs = Vec::new();
    for pa in &a.summary.phases {
        let Some(pb) = b.summary.phases.iter().find(|p| p.name == pa.name) else {
            unmatched.phases_only_before.push(pa.name.clone());
            continue;
        };
        let sa = a.seconds.phase(&pa.name).unwrap_or(&empty);
        let sb = b.seconds.phase(&pb.name).unwrap_or(&empty);
        let index = phases.len();
        let both: Vec<_> = pa
            .steps
            .iter()
            .filter_map(|x| pb.steps.iter().find(|y| y.name == x.name).map(|y| (x, y)))
            .collect();
        let single = both.len() == 1 && pa.steps.len() == 1 && pb.steps.len() == 1;
        inputs.push(RowInput {
            phase: index,
            step: None,
            headline: METRICS.map(|m| {
                (
                    m.headline(pa.latency_ms.as_ref(), pa.rps, pa.error_rate, pa.requests),
                    m.headline(pb.latency_ms.as_ref(), pb.rps, pb.error_rate, pb.requests),
                )
            }),
            before: sa.row(None),
            after: sb.row(None),
            alias: single,
        });
        for (i, (x, y)) in both.iter().enumerate() {
            inputs.push(RowInput {
                phase: index,
                step: Some(i),
                headline: METRICS.map(|m| {
                    (
                        m.headline(x.latency_ms.as_ref(), x.rps, x.error_rate, x.requests),
                        m.headline(y.latency_ms.as_ref(), y.rps, y.error_rate, y.requests),
                    )
                }),
                before: sa.row(Some(&x.name)),
                after: sb.row(Some(&y.name)),
                alias: false,
            });
        }
        let unmatched_steps = |from: &[super::StepSummary], other: &[super::StepSummary]| -> Vec<PhaseStep> {
            from.iter()
                .filter(|s| !other.iter().any(|o| o.name == s.name))
                .map(|s| PhaseStep {
                    phase: pa.name.clone(),
                    step: s.name.clone(),
                })
                .collect()
        };
        unmatched
            .steps_only_before
            .extend(unmatched_steps(&pa.steps, &pb.steps));
        unmatched.steps_only_after.extend(unmatched_steps(&pb.steps, &pa.steps));
        phases.push(PhaseComparison {
            name: pa.name.clone(),
            seconds: 0,
            metrics: Metrics(Vec::new()),
            steps: both
                .iter()
                .map(|(x, _)| StepComparison {
                    name: x.name.clone(),
                    metrics: Metrics(Vec::new()),
                })
                .collect(),
        });
    }
    // Every test of the comparison, then Holm's correction over the family.
    let (tests, adjusted) = family(&inputs, |r, m, _| paired_test(&m.series(r.before), &m.series(r.after)));
    let tests_made = tests.iter().flatten().flatten().count();
    let min_seconds = super::significance::min_seconds(tests_made);
    // Whether each change exceeds the tolerance, in its headline's direction: a family of its own.
    let (beyond, beyond_adjusted) = if tolerance_pct > 0.0 {
        family(&inputs, |r, m, (before, after)| {
            let up = after? > before?;
            let factor = 1.0 + if up { tolerance_pct } else { -tolerance_pct } / 100.0;
            scaled_test(&m.series(r.before), &m.series(r.after), factor)
        })
    } else {
        (tests.clone(), adjusted.clone())
    };
    let (mut regressions, mut improvements) = (Vec::new(), Vec::new());
    for (k, r) in inputs.iter().enumerate() {
        // An alias row takes the test of the step it stands for (the next row).
        let src = if r.alias { k + 1 } else { k };
        let metrics = Metrics(
            METRICS
                .iter()
                .enumerate()
                .map(|(i, &m)| {
                    let (before, after) = r.headline[i];
                    let raw = tests[src][i].zip(adjusted[src][i]);
                    let tol = beyond[src][i].zip(beyond_adjusted[src][i]);
                    judge(m, before, after, raw, tol, tolerance_pct)
                })
                .collect(),
        );
        let phase = &mut phases[r.phase];
        // A single step's phase row is that step: its changes are listed once, as the step's.
        for c in metrics.0.iter().filter(|_| !r.alias) {
            let flagged = || Flagged {
                phase: phase.name.clone(),
                step: r.step.map(|i| phase.steps[i].name.clone()),
                metric: c.metric,
                before: c.before,
                after: c.after,
                change_pct: c.change_pct,
            };
            match c.verdict {
                ChangeVerdict::Regressed => regressions.push(flagged()),
                ChangeVerdict::Improved => improvements.push(flagged()),
                ChangeVerdict::Unchanged => {}
            }
        }
        phase.seconds = phase
            .seconds
            .max(metrics.0.iter().map(|c| c.seconds).max().unwrap_or(0));
        match r.step {
            None => phase.metrics = metrics,
            Some(i) => phase.steps[i].metrics = metrics,
        }
    }
    Comparison {
        schema: COMPARE_SCHEMA,
        before: run_ref(a),
        after: run_ref(b),
        alpha: ALPHA,
        tolerance_pct,
        min_seconds,
        tests: tests_made,
        regressions,
        improvements,
        phases,
        unmatched,
    }
}

/// A row's six tests (None for an alias row or nothing to test) and their Holm-adjusted
/// p-values, over every row: one family.
type Family = (Vec<[Option<Test>; 6]>, Vec<[Option<f64>; 6]>);

fn family(inputs: &[RowInput], test: impl Fn(&RowInput, Metric, (Option<f64>, Option<f64>)) -> Option<Test>) -> Family {
    let tests: Vec<[Option<Test>; 6]> = inputs
        .iter()
        .map(|r| {
            let mut i = 0;
            METRICS.map(|m| {
                let headline = r.headline[i];
                i += 1;
                if r.alias {
                    None
                } else {
                    test(r, m, headline)
                }
            })
        })
        .collect();
    let raw: Vec<f64> = tests.iter().flatten().flatten().map(|t| t.p_value).collect();
    let mut adjusted = holm(&raw).into_iter();
    let adjusted = tests
        .iter()
        .map(|row| row.map(|t| t.map(|_| adjusted.next().expect("one adjusted p per test"))))
        .collect();
    (tests, adjusted)
}

/// One metric's change and verdict, from its test and adjusted p-value (`raw`) and the test
/// beyond the tolerance (`beyond`).
fn judge(
    metric: Metric,
    before: Option<f64>,
    after: Option<f64>,
    raw: Option<(Test, f64)>,
    beyond: Option<(Test, f64)>,
    tolerance_pct: f64,
) -> MetricChange {
    let change_pct = percent(before, after);
    let headline_up = match (before, after) {
        (Some(a), Some(b)) if a != b => Some(b > a),
        _ => None,
    };
    // Significant: the test rejects, and the seconds moved the way the headline did (a
    // headline up while the typical second went down is no clear change).
    let rejects = |t: Option<(Test, f64)>| match (t, headline_up) {
        (Some((t, p)), Some(up)) => p < ALPHA && (t.mean_diff > 0.0) == up,
        _ => false,
    };
    let significant = rejects(raw);
    // Beyond the tolerance: by the test (the seconds moved by more than it), and by the headline.
    let beyond_tolerance = rejects(beyond) && change_pct.is_none_or(|c| c.abs() > tolerance_pct);
    let verdict = match headline_up {
        Some(up) if significant && beyond_tolerance => {
            if up == metric.higher_is_worse() {
                ChangeVerdict::Regressed
            } else {
                ChangeVerdict::Improved
            }
        }
        _ => ChangeVerdict::Unchanged,
    };
    MetricChange {
        metric,
        before,
        after,
        change_pct,
        significant,
        verdict,
        p_value: raw.map(|(_, p)| p),
        p_beyond_tolerance: beyond.map(|(_, p)| p),
        seconds: raw.map_or(0, |(t, _)| t.seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(p: f64, mean_diff: f64) -> Option<(Test, f64)> {
        Some((
            Test {
                p_value: p,
                seconds: 10,
                mean_diff,
            },
            p,
        ))
    }

    #[test]
    fn the_metric_array_is_the_table() {
        assert_eq!(METRICS.as_slice(), Metric::ALL);
    }

    #[test]
    fn a_verdict_needs_the_test_the_direction_and_the_tolerance() {
        let j = |m, b, a, t, tol| judge(m, Some(b), Some(a), t, t, tol).verdict;
        use ChangeVerdict::*;
        assert_eq!(j(Metric::P95, 20.0, 30.0, test(0.001, 10.0), 0.0), Regressed);
        assert_eq!(j(Metric::P95, 30.0, 20.0, test(0.001, -10.0), 0.0), Improved);
        assert_eq!(j(Metric::Rps, 200.0, 130.0, test(0.001, -70.0), 0.0), Regressed);
        assert_eq!(
            j(Metric::P95, 20.0, 30.0, test(0.2, 10.0), 0.0),
            Unchanged,
            "not significant"
        );
        assert_eq!(
            j(Metric::P95, 20.0, 21.0, test(0.001, 1.0), 5.0),
            Unchanged,
            "within 5%"
        );
        assert_eq!(
            j(Metric::P95, 20.0, 30.0, test(0.001, -1.0), 0.0),
            Unchanged,
            "seconds disagree"
        );
        // Significant, 6% up, but the seconds are not clearly beyond 5%.
        let c = judge(
            Metric::P95,
            Some(20.0),
            Some(21.2),
            test(0.001, 1.2),
            test(0.3, 0.2),
            5.0,
        );
        assert!(c.significant);
        assert_eq!(c.verdict, Unchanged);
        let c = judge(
            Metric::P95,
            Some(20.0),
            Some(30.0),
            test(0.001, 10.0),
            test(0.001, 9.0),
            5.0,
        );
        assert_eq!(c.verdict, Regressed, "clearly beyond 5%");
        // From no errors to some: no percentage, beyond any tolerance.
        let c = judge(
            Metric::ErrorRate,
            Some(0.0),
            Some(0.1),
            test(0.001, 0.1),
            test(0.001, 0.1),
            50.0,
        );
        assert_eq!((c.change_pct, c.verdict), (None, Regressed));
        let c = judge(Metric::Avg, None, Some(3.0), None, None, 0.0);
        assert_eq!((c.significant, c.verdict, c.seconds), (false, Unchanged, 0));
    }
}
