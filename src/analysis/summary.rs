//! Building the run summary (`stampede.summary/v1`, its types in `stampede_rundir::summary`)
//! from the phases' merged data: per-step latency and errors, thresholds, the verdict.

use std::collections::BTreeMap;

use super::aggregate::{PhaseAgg, StepAgg};
use super::thresholds::evaluate;
use crate::outcome::classify;
use crate::rundir::{RunMeta, RunStatus};
pub use stampede_rundir::summary::*;

/// A measured value within this fraction of its limit makes a pass conditional.
const NEAR_LIMIT: f64 = 0.10;

pub(super) fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub(super) fn latency(h: &crate::recorder::Hist) -> Option<LatencyMs> {
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

pub(super) fn rate(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        r3(n as f64 / d as f64 * 1000.0) / 1000.0
    }
}

fn step_summary(s: &StepAgg, agg: &PhaseAgg) -> StepSummary {
    let duration_s = agg.duration_s;
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
        bytes_decoded: s.bytes_decoded,
        redirects: s.redirects,
        error_samples: s.samples.iter().map(|x| x.message.clone()).collect(),
        ws: super::ws::summary(s, agg),
        sql: super::sql::summary(s),
        tls_handshakes: tls_handshakes(s),
        dns: dns_time(s),
    }
}

/// A step's DNS time from its `dns_resolves` / `dns_us` / `dns_lookups` counters.
fn dns_time(s: &super::StepAgg) -> Option<crate::rundir::summary::DnsTime> {
    use crate::recorder::Count;
    let get = |c: Count| s.counters.get(&c.name()).copied().unwrap_or(0);
    let connections = get(Count::DnsResolves);
    if connections == 0 {
        return None;
    }
    let total_ms = get(Count::DnsUs) as f64 / 1000.0;
    Some(crate::rundir::summary::DnsTime {
        connections,
        lookups: get(Count::DnsLookups),
        avg_ms: total_ms / connections as f64,
        total_ms,
    })
}

/// A step's TLS handshakes from its `tls_full` / `tls_resumed` counters.
fn tls_handshakes(s: &super::StepAgg) -> Option<crate::rundir::summary::TlsHandshakes> {
    use crate::recorder::Count;
    let get = |c: Count| s.counters.get(&c.name()).copied();
    match (get(Count::TlsFull), get(Count::TlsResumed)) {
        (None, None) => None,
        (full, resumed) => Some(crate::rundir::summary::TlsHandshakes {
            full: full.unwrap_or(0),
            resumed: resumed.unwrap_or(0),
        }),
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
                metric: t.metric.clone(),
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
        model: meta.map(|m| m.model),
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
        connect_backoffs: agg.backoffs,
        connect_backoff_s: r3(agg.backoff_ms as f64 / 1000.0),
        vus_max: agg.vus_max,
        ws_open_max: agg.ws_open_max,
        latency_ms: latency(&all.latency),
        errors_by_kind: all.kinds.clone(),
        errors_by_class: by_class,
        steps: agg.steps.iter().map(|s| step_summary(s, agg)).collect(),
        thresholds,
        server: Vec::new(),
        windows: Vec::new(),
        drift: None,
    }
}

/// Above this share of failed requests, a run without thresholds is not a plain pass.
const UNJUDGED_ERROR_RATE: f64 = 0.05;

/// What the thresholds leave unjudged: a threshold that had no data in any phase it applies to
/// (a step that never ran, a phase with no requests: nothing broke the limit, but nothing met
/// it either), and, when the plan has no thresholds at all, phases where more than 5% of the
/// requests failed (every request refused is not a pass).
fn unjudged(phases: &[PhaseSummary]) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
    for t in phases.iter().flat_map(|p| &p.thresholds) {
        let key = (t.expr.as_str(), t.step.as_deref());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        let same = |u: &&ThresholdResult| u.expr == t.expr && u.step == t.step;
        if phases
            .iter()
            .flat_map(|p| &p.thresholds)
            .filter(same)
            .all(|u| u.value.is_none())
        {
            let scope = t.step.as_ref().map(|s| format!(" (step {s})")).unwrap_or_default();
            out.push(format!(
                "threshold `{}`{scope} had no data to judge: no request in its scope completed",
                t.expr
            ));
        }
    }
    if phases.iter().all(|p| p.thresholds.is_empty()) {
        for p in phases
            .iter()
            .filter(|p| p.requests > 0 && p.error_rate > UNJUDGED_ERROR_RATE)
        {
            out.push(format!(
                "{}: {:.1}% of requests failed and the plan has no thresholds to judge them: add one (e.g. `error_rate < 5%`)",
                p.name,
                p.error_rate * 100.0
            ));
        }
    }
    out
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
    conditions.extend(unjudged(&phases));
    match meta.status {
        RunStatus::Aborted => failed = true,
        RunStatus::Interrupted => conditions.push("the run was interrupted before all phases finished".into()),
        RunStatus::Running => {
            conditions.push("the run did not finish (its process ended without writing an end time)".into())
        }
        RunStatus::Completed => {}
    }
    // No measurement is not a pass: a run killed in its first second, or whose disk was full
    // from the start, has thresholds with nothing to evaluate, and they would all "pass".
    if phases.iter().all(|p| p.requests == 0) {
        failed = true;
        conditions.push("nothing was measured: no request completed in any phase".into());
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
        note: meta.note.clone(),
        conditions,
        phases,
        warnings: skipped
            .iter()
            .map(|(line, e)| format!("intervals.jsonl:{line}: skipped an unreadable record ({e})"))
            .collect(),
        findings: Vec::new(),
        capacity: None,
        capacity_estimate: None,
        generator: None,
        hosts: super::hosts::hosts(meta, aggs),
        variants: Vec::new(),
    }
}
