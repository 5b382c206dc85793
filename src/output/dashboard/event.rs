//! One dashboard event: what the page shows for one second of the run, built from the interval
//! and the phase so far. The live output and `stampede dashboard RUN_DIR` use this one builder,
//! so a replay shows what the live page showed. Field names are the contract in docs/cli.md.

use std::collections::BTreeMap;

use serde::Serialize;

use super::super::PhaseView;
use crate::monitor::MonitorRecord;
use crate::recorder::{new_growable, Hist, Interval};

/// Series shown per monitor: a Prometheus monitor may expose hundreds; the page shows the
/// first ones by name and says how many there are.
pub const SERIES_PER_MONITOR: usize = 40;

/// An event of `/events` (the default `message` type): one second of the run.
#[derive(Debug, Serialize)]
pub struct Event<'a> {
    /// Seconds since the run started, at the end of this second.
    pub t: f64,
    pub phase: &'a str,
    pub phase_index: usize,
    pub phase_elapsed_s: f64,
    pub phase_planned_s: f64,
    pub vus: u64,
    /// Requests completed this second, per second.
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    /// This second's errors / requests (0 without requests).
    pub error_rate: f64,
    /// This second's latency percentiles (`null` without requests).
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Since the run started (every phase).
    pub requests_total: u64,
    pub errors_total: u64,
    /// The phase so far.
    pub phase_totals: Totals,
    /// The phase so far, by error kind (`errors_by_kind` of the summary).
    pub errors_by_kind: BTreeMap<String, u64>,
    pub steps: Vec<StepRow>,
    /// Each monitor's latest sample at this second (empty without monitors).
    pub monitors: Vec<MonitorRow>,
}

/// Numbers over the phase so far.
#[derive(Debug, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    /// Requests / seconds measured.
    pub rps: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// One step of the phase: this second's rate, and the phase so far.
#[derive(Debug, Serialize)]
pub struct StepRow {
    pub name: String,
    /// This second's requests per second.
    pub rps: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct MonitorRow {
    pub name: String,
    /// When the sample was taken (seconds since the run started).
    pub t: f64,
    /// At most [`SERIES_PER_MONITOR`] series, by name.
    pub series: BTreeMap<String, f64>,
    pub series_total: usize,
    /// The monitor's latest failure, while it is failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Builds the events of one run in order; holds the run's running totals.
#[derive(Debug, Default)]
pub struct EventBuilder {
    requests_total: u64,
    errors_total: u64,
}

impl EventBuilder {
    pub fn new() -> EventBuilder {
        EventBuilder::default()
    }

    /// The event of `iv`, the latest interval of `phase` (whose aggregate includes it), with
    /// the monitors' latest samples.
    pub fn event<'a>(&mut self, iv: &Interval, phase: &PhaseView<'a>, monitors: &[MonitorRecord]) -> Event<'a> {
        let (mut requests, mut errors) = (0, 0);
        for s in &iv.steps {
            requests += s.requests;
            errors += s.errors;
        }
        // One step (the common case) is its own total: no merge, no second scan of it.
        let merged;
        let latency = match iv.steps.as_slice() {
            [one] if one.stored_latency_buckets().is_none() => &one.latency,
            steps => {
                let mut h = new_growable();
                steps.iter().for_each(|s| s.add_latency_to(&mut h));
                merged = h;
                &merged
            }
        };
        self.requests_total += requests;
        self.errors_total += errors;
        let per_s = |n: u64| if iv.dur > 0.0 { round3(n as f64 / iv.dur) } else { 0.0 };
        let agg = phase.agg;
        let (mut phase_requests, mut phase_errors) = (0, 0);
        for s in &agg.steps {
            phase_requests += s.requests;
            phase_errors += s.errors;
        }
        let mut errors_by_kind = BTreeMap::new();
        for s in &agg.steps {
            for (k, n) in &s.kinds {
                *errors_by_kind.entry(k.clone()).or_default() += n;
            }
        }
        let step_quantiles: Vec<[Option<f64>; 3]> = agg.steps.iter().map(|s| quantiles_ms(&s.latency)).collect();
        // The phase's: one step (the common case) is its own; several are merged into a
        // histogram that grows to what it holds (not `PhaseAgg::merged`, which allocates
        // full-range histograms every second).
        let phase_quantiles = match step_quantiles.as_slice() {
            [one] => *one,
            _ => {
                let mut all = new_growable();
                for s in &agg.steps {
                    let _ = all.add(&s.latency);
                }
                quantiles_ms(&all)
            }
        };
        let steps = agg
            .steps
            .iter()
            .zip(&step_quantiles)
            .map(|(s, &[p50_ms, p95_ms, p99_ms])| StepRow {
                name: s.name.clone(),
                rps: per_s(iv.steps.iter().find(|x| x.name == s.name).map_or(0, |x| x.requests)),
                requests: s.requests,
                errors: s.errors,
                error_rate: rate(s.errors, s.requests),
                p50_ms,
                p95_ms,
                p99_ms,
            })
            .collect();
        let [p50_ms, p95_ms, p99_ms] = quantiles_ms(latency);
        Event {
            t: round3(iv.t + iv.dur),
            phase: phase.name,
            phase_index: phase.index,
            phase_elapsed_s: round3(phase.elapsed_s),
            phase_planned_s: round3(phase.planned_s),
            vus: iv.vus,
            rps: per_s(requests),
            requests,
            errors,
            error_rate: rate(errors, requests),
            p50_ms,
            p95_ms,
            p99_ms,
            requests_total: self.requests_total,
            errors_total: self.errors_total,
            phase_totals: totals(phase_requests, phase_errors, phase_quantiles, agg.duration_s),
            errors_by_kind,
            steps,
            monitors: monitors.iter().map(monitor_row).collect(),
        }
    }
}

fn totals(requests: u64, errors: u64, [p50_ms, p95_ms, p99_ms]: [Option<f64>; 3], secs: f64) -> Totals {
    Totals {
        requests,
        errors,
        error_rate: rate(errors, requests),
        rps: if secs > 0.0 {
            round3(requests as f64 / secs)
        } else {
            0.0
        },
        p50_ms,
        p95_ms,
        p99_ms,
    }
}

fn monitor_row(r: &MonitorRecord) -> MonitorRow {
    MonitorRow {
        name: r.monitor.clone(),
        t: r.t,
        series: r
            .series
            .iter()
            .take(SERIES_PER_MONITOR)
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
        series_total: r.series.len(),
        error: r.error.clone(),
    }
}

fn rate(errors: u64, requests: u64) -> f64 {
    if requests == 0 {
        0.0
    } else {
        errors as f64 / requests as f64
    }
}

/// p50, p95 and p99 in milliseconds (histograms hold µs), in one scan of the histogram (each
/// `value_at_quantile` scans it again); `None` for an empty histogram.
fn quantiles_ms(h: &Hist) -> [Option<f64>; 3] {
    let mut out = [None; 3];
    if !h.is_empty() {
        for (o, v) in out.iter_mut().zip(h.value_at_quantiles([0.50, 0.95, 0.99])) {
            *o = Some(round3(v as f64 / 1000.0));
        }
    }
    out
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
