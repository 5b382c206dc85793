//! Comparing two runs: for every phase the first run has, the whole phase and each of its steps
//! before and after (p95, average latency, throughput, error rate). Phases are matched by name,
//! steps within a phase by name too, so a renamed step shows as gone.

use super::{LatencyMs, Summary, Verdict};

/// Two runs side by side, in the first run's phase order.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub before: RunRef,
    pub after: RunRef,
    pub phases: Vec<PhaseComparison>,
    /// Phases only the second run has, in its order.
    pub only_after: Vec<String>,
}

/// Which run: its plan name, start and verdict.
#[derive(Debug, Clone)]
pub struct RunRef {
    pub name: String,
    pub started_at: String,
    pub verdict: Verdict,
}

#[derive(Debug, Clone)]
pub enum PhaseComparison {
    /// A phase both runs have: the whole phase first, then the first run's steps.
    Both { name: String, rows: Vec<Row> },
    /// A phase only the first run has.
    OnlyBefore(String),
}

/// One line of a phase's comparison.
#[derive(Debug, Clone)]
pub struct Row {
    /// None: the whole phase.
    pub step: Option<String>,
    /// ms
    pub p95: Change,
    /// ms
    pub avg: Change,
    /// requests per second
    pub rps: Change,
    /// a fraction
    pub error_rate: Change,
}

/// A value before and after; either may be missing (no requests, or no such step).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub before: Option<f64>,
    pub after: Option<f64>,
}

impl Change {
    /// The change in percent of the value before; None without a base to divide by.
    pub fn percent(self) -> Option<f64> {
        match (self.before, self.after) {
            (Some(a), Some(b)) if a != 0.0 => Some((b - a) / a * 100.0),
            _ => None,
        }
    }
}

fn run_ref(s: &Summary) -> RunRef {
    RunRef {
        name: s.name.clone(),
        started_at: s.started_at.clone(),
        verdict: s.verdict,
    }
}

fn latency(l: &Option<LatencyMs>, pick: fn(&LatencyMs) -> f64) -> Option<f64> {
    l.as_ref().map(pick)
}

/// `a` before, `b` after.
pub fn compare(a: &Summary, b: &Summary) -> Comparison {
    let phases = a
        .phases
        .iter()
        .map(|pa| {
            let Some(pb) = b.phases.iter().find(|p| p.name == pa.name) else {
                return PhaseComparison::OnlyBefore(pa.name.clone());
            };
            let change = |before, after| Change { before, after };
            let mut rows = vec![Row {
                step: None,
                p95: change(latency(&pa.latency_ms, |l| l.p95), latency(&pb.latency_ms, |l| l.p95)),
                avg: change(latency(&pa.latency_ms, |l| l.avg), latency(&pb.latency_ms, |l| l.avg)),
                rps: change(Some(pa.rps), Some(pb.rps)),
                error_rate: change(Some(pa.error_rate), Some(pb.error_rate)),
            }];
            for sa in &pa.steps {
                let sb = pb.steps.iter().find(|s| s.name == sa.name);
                rows.push(Row {
                    step: Some(sa.name.clone()),
                    p95: change(
                        latency(&sa.latency_ms, |l| l.p95),
                        sb.and_then(|s| latency(&s.latency_ms, |l| l.p95)),
                    ),
                    avg: change(
                        latency(&sa.latency_ms, |l| l.avg),
                        sb.and_then(|s| latency(&s.latency_ms, |l| l.avg)),
                    ),
                    rps: change(Some(sa.rps), sb.map(|s| s.rps)),
                    error_rate: change(Some(sa.error_rate), sb.map(|s| s.error_rate)),
                });
            }
            PhaseComparison::Both {
                name: pa.name.clone(),
                rows,
            }
        })
        .collect();
    Comparison {
        before: run_ref(a),
        after: run_ref(b),
        phases,
        only_after: b
            .phases
            .iter()
            .filter(|p| !a.phases.iter().any(|x| x.name == p.name))
            .map(|p| p.name.clone())
            .collect(),
    }
}
