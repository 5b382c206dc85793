//! The run summary, schema `stampede.summary/v1`: what `stampede run` prints at its end and
//! `stampede summary` rebuilds from the run directory. Fields are only ever added, so an older
//! reader still reads a newer summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::aggregate::{PhaseAgg, StepAgg};
use super::labels::named_enum;
use super::thresholds::evaluate;
use crate::outcome::classify;
use crate::rundir::{RunMeta, RunStatus};

pub const SUMMARY_SCHEMA: &str = "stampede.summary/v1";

/// A measured value within this fraction of its limit makes a pass conditional.
const NEAR_LIMIT: f64 = 0.10;

named_enum! {
    /// The run's verdict, stored under its `as_str` name.
    pub enum Verdict {
        Passed = "passed",
        PassedWithConditions = "passed_with_conditions",
        Failed = "failed",
    }
}

impl Verdict {
    /// For people: the headline of terminal and reports, and the index's verdict column.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Passed => "PASSED",
            Verdict::PassedWithConditions => "PASSED WITH CONDITIONS",
            Verdict::Failed => "FAILED",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    pub schema: String,
    pub name: String,
    pub verdict: Verdict,
    pub status: RunStatus,
    pub started_at: String,
    pub ended_at: Option<String>,
    pub target: Option<String>,
    /// Why the verdict is not a plain pass.
    pub conditions: Vec<String>,
    pub phases: Vec<PhaseSummary>,
    /// Problems reading the run directory (e.g. a torn last line after a crash).
    pub warnings: Vec<String>,
    /// Bottlenecks and other findings from the joint client/server timeline.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// The capacity search's result, when the run directory holds one (`capacity.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<Capacity>,
}

named_enum! {
    /// How urgent a finding is, most urgent first (findings sort by it).
    pub enum Priority {
        /// The client already suffers: a threshold crossed, or errors from the bottleneck.
        Critical = "critical",
        /// Latency degraded, or errors that distort the results.
        High = "high",
        /// At a limit with no client-visible effect yet, or a slow drift.
        Medium = "medium",
    }
}

/// A finding: what was seen, the numbers and times that show it, and what to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finding {
    pub priority: Priority,
    /// Short, e.g. "Connection pool `db` saturated".
    pub title: String,
    /// Evidence lines with numbers and times, e.g. "db_pool_in_use 100/100 from t=42s to t=75s".
    pub evidence: Vec<String>,
    pub recommendation: String,
    #[serde(default)]
    pub phase: Option<String>,
    /// Seconds since the run start when it was first seen.
    #[serde(default)]
    pub at_s: Option<f64>,
}

/// A server-side series over one phase (from the monitors), e.g. CPU 25-35 %.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerMetric {
    /// e.g. `host.cpu_percent`, `target.db_pool_in_use`.
    pub name: String,
    /// e.g. `%`, `bytes`, `connections`, `/s`.
    pub unit: String,
    pub min: f64,
    pub avg: f64,
    pub max: f64,
}

/// The result of `stampede capacity`, as its `capacity.json` holds it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Capacity {
    /// `closed` (load = VUs) or `open` (load = arrivals/s).
    pub model: String,
    pub scenario: String,
    pub slo: Vec<String>,
    /// Largest load level that met the SLO (None when even the first step broke it).
    pub slo_capacity: Option<f64>,
    /// The knee: where throughput stops growing with load.
    pub saturation: Option<f64>,
    pub peak_throughput_rps: f64,
    /// `slo_capacity` less the safety margin.
    pub recommended: Option<f64>,
    pub margin: f64,
    pub steps: Vec<CapacityStep>,
    pub usl: Option<Usl>,
    /// Plain-language result, e.g. "holds 60 concurrent users with p95 < 500ms; …".
    pub statement: String,
    /// Model estimates for more hardware, clearly labelled as such.
    #[serde(default)]
    pub projections: Vec<String>,
    /// `VUs` (closed) or `arrivals/s` (open): the unit of every load figure.
    #[serde(default)]
    pub unit: String,
    /// The SLO never broke within the loads tried (max reached, saturation, interruption):
    /// the system holds *at least* `slo_capacity`.
    #[serde(default)]
    pub slo_capacity_is_lower_bound: bool,
    /// The smallest load level that broke the SLO.
    #[serde(default)]
    pub breaks_at: Option<f64>,
    /// Why the search ended, for people.
    #[serde(default)]
    pub stop_reason: String,
    /// Seconds discarded at the start of every step.
    #[serde(default)]
    pub warmup_s: f64,
    /// Seconds measured per step at least (extended up to 3× until the p95 is stable).
    #[serde(default)]
    pub step_duration_s: f64,
    /// The numbers behind `projections` (None without a usable USL fit).
    #[serde(default)]
    pub projection: Option<Projection>,
}

/// A "what if" for `factor`× the hardware: a model estimate, never a measurement.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Projection {
    pub factor: f64,
    pub peak_throughput_rps: f64,
    pub peak_concurrency: Option<f64>,
    pub slo_capacity: Option<f64>,
    /// What the estimate assumes, in words.
    pub assumptions: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityStep {
    /// VUs or arrivals/s.
    pub load: f64,
    pub phase: String,
    pub throughput_rps: f64,
    pub avg_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub error_rate: f64,
    pub slo_passed: bool,
    /// Requests measured (after the warm-up).
    #[serde(default)]
    pub requests: u64,
    /// Seconds measured (after the warm-up).
    #[serde(default)]
    pub duration_s: f64,
    /// Successful requests per second: errors are not throughput.
    #[serde(default)]
    pub goodput_rps: f64,
    /// Requests in flight on average, by Little's law (throughput × mean latency).
    #[serde(default)]
    pub concurrency: f64,
    /// The p95 of the step's two halves agreed within 10% (or it ran as long as allowed).
    #[serde(default)]
    pub p95_stable: bool,
    /// The SLO expressions this step broke.
    #[serde(default)]
    pub breached: Vec<String>,
}

/// Universal Scalability Law fit: X(N) = λN / (1 + σ(N−1) + κN(N−1)).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Usl {
    pub sigma: f64,
    pub kappa: f64,
    pub lambda: f64,
    pub r2: f64,
    /// √((1−σ)/κ): the concurrency of peak throughput the fit predicts (None when κ = 0).
    pub peak_concurrency: Option<f64>,
    /// good (R² ≥ 0.9), fair (≥ 0.7) or poor: a poor fit is shown but not used.
    #[serde(default)]
    pub quality: String,
    /// Concurrency of the points fitted: `closed` VUs, or `littles_law` (open model:
    /// throughput × mean latency per step).
    #[serde(default)]
    pub concurrency_from: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseSummary {
    pub name: String,
    pub model: String,
    pub description: String,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub iterations: u64,
    /// Open model: arrivals that never found a free VU before the phase ended.
    pub dropped_iterations: u64,
    pub vus_max: u64,
    pub latency_ms: Option<LatencyMs>,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Errors by where they come from: configuration, load, check, other.
    pub errors_by_class: BTreeMap<String, u64>,
    pub steps: Vec<StepSummary>,
    pub thresholds: Vec<ThresholdResult>,
    /// Server-side series over this phase, from the monitors.
    #[serde(default)]
    pub server: Vec<ServerMetric>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepSummary {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    /// From the intended start (open model) or the send (closed model) to the last byte.
    pub latency_ms: Option<LatencyMs>,
    /// From the send to the last byte.
    pub service_ms: Option<LatencyMs>,
    pub status_codes: BTreeMap<String, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// A few error messages as the target gave them (raw text: escape before display).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyMs {
    pub avg: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    #[serde(rename = "p99.9")]
    pub p99_9: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThresholdResult {
    pub expr: String,
    /// The measured value (ms, fraction or per second); null when there was nothing to measure.
    pub value: Option<f64>,
    pub limit: f64,
    pub passed: bool,
    /// Passed, but within 10% of the limit.
    pub near_limit: bool,
    pub step: Option<String>,
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn latency(h: &crate::recorder::Hist) -> Option<LatencyMs> {
    if h.is_empty() {
        return None;
    }
    let q = |q: f64| r3(h.value_at_quantile(q) as f64 / 1000.0);
    Some(LatencyMs {
        avg: r3(h.mean() / 1000.0),
        min: r3(h.min() as f64 / 1000.0),
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p99_9: q(0.999),
        max: r3(h.max() as f64 / 1000.0),
    })
}

fn rate(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        r3(n as f64 / d as f64 * 1000.0) / 1000.0
    }
}

fn step_summary(s: &StepAgg, duration_s: f64) -> StepSummary {
    StepSummary {
        name: s.name.clone(),
        requests: s.requests,
        errors: s.errors,
        error_rate: rate(s.errors, s.requests),
        rps: if duration_s > 0.0 {
            r3(s.requests as f64 / duration_s)
        } else {
            0.0
        },
        latency_ms: latency(&s.latency),
        service_ms: latency(&s.service),
        status_codes: s.statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        errors_by_kind: s.kinds.clone(),
        bytes_in: s.bytes_in,
        bytes_out: s.bytes_out,
        error_samples: s.samples.clone(),
    }
}

fn near(value: f64, limit: f64) -> bool {
    if limit == 0.0 {
        return false;
    }
    ((limit - value) / limit).abs() <= NEAR_LIMIT
}

fn phase_summary(run_meta: &RunMeta, agg: &PhaseAgg) -> PhaseSummary {
    let meta = run_meta.phases.iter().find(|p| p.name == agg.name);
    let all = agg.merged(None);
    let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
    for (k, v) in &all.kinds {
        *by_class.entry(classify(k).as_str().into()).or_default() += v;
    }
    let thresholds = run_meta
        .thresholds
        .iter()
        .filter(|t| t.applies_to(&agg.name))
        .map(|t| {
            let (value, passed) = evaluate(t, agg);
            ThresholdResult {
                expr: t.expr.clone(),
                value: value.map(|v| (v * 1e6).round() / 1e6),
                limit: t.value,
                passed,
                near_limit: passed && value.is_some_and(|v| near(v, t.value)),
                step: t.step.clone(),
            }
        })
        .collect();
    PhaseSummary {
        name: agg.name.clone(),
        model: meta.map(|m| m.model.clone()).unwrap_or_default(),
        description: meta.map(|m| m.description.clone()).unwrap_or_default(),
        duration_s: r3(agg.duration_s),
        requests: all.requests,
        errors: all.errors,
        error_rate: rate(all.errors, all.requests),
        rps: if agg.duration_s > 0.0 {
            r3(all.requests as f64 / agg.duration_s)
        } else {
            0.0
        },
        iterations: agg.iterations,
        dropped_iterations: agg.dropped,
        vus_max: agg.vus_max,
        latency_ms: latency(&all.latency),
        errors_by_kind: all.kinds.clone(),
        errors_by_class: by_class,
        steps: agg.steps.iter().map(|s| step_summary(s, agg.duration_s)).collect(),
        thresholds,
        server: Vec::new(),
    }
}

/// The client-side summary from phase aggregates already folded (see
/// [`super::aggregate_into`]); `skipped` are the unreadable interval lines. Server metrics,
/// findings and capacity need the whole run directory: [`super::analyze_dir`] adds them.
pub(crate) fn summarize_aggs(meta: &RunMeta, aggs: &[PhaseAgg], skipped: &[(usize, String)]) -> Summary {
    // Phases that never started (skipped by a stop) are left out; the status says why.
    let phases: Vec<PhaseSummary> = aggs
        .iter()
        .filter(|a| !a.start_t.is_nan())
        .map(|a| phase_summary(meta, a))
        .collect();
    let mut conditions: Vec<String> = meta.notes.clone();
    let mut failed = false;
    for p in &phases {
        for t in &p.thresholds {
            if !t.passed {
                failed = true;
            } else if t.near_limit {
                conditions.push(format!("{}: {} is within 10% of its limit", p.name, t.expr));
            }
        }
        if p.dropped_iterations > 0 {
            conditions.push(format!(
                "{}: {} arrivals were dropped (no free VU before the phase ended): raise max_vus",
                p.name, p.dropped_iterations
            ));
        }
    }
    match meta.status {
        RunStatus::Aborted => failed = true,
        RunStatus::Interrupted => conditions.push("the run was interrupted before all phases finished".into()),
        RunStatus::Running => {
            conditions.push("the run did not finish (its process ended without writing an end time)".into())
        }
        RunStatus::Completed => {}
    }
    let verdict = if failed {
        Verdict::Failed
    } else if conditions.is_empty() {
        Verdict::Passed
    } else {
        Verdict::PassedWithConditions
    };
    Summary {
        schema: SUMMARY_SCHEMA.into(),
        name: meta.name.clone(),
        verdict,
        status: meta.status,
        started_at: meta.started_at.clone(),
        ended_at: meta.ended_at.clone(),
        target: meta.target.clone(),
        conditions,
        phases,
        warnings: skipped
            .iter()
            .map(|(line, e)| format!("intervals.jsonl:{line}: skipped an unreadable record ({e})"))
            .collect(),
        findings: Vec::new(),
        capacity: None,
    }
}
