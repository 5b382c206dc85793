//! The run summary, schema `stampede.summary/v1`: what `stampede run` prints at its end and
//! `stampede summary` rebuilds from the run directory. Fields are only ever added, so an older
//! reader still reads a newer summary.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::labels::named_enum;
use crate::meta::{LoadModel, RunStatus};

pub const SUMMARY_SCHEMA: &str = "stampede.summary/v1";

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
    /// Why the run exists (`stampede run --note`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
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
    /// Capacity estimated from the run's own seconds, when its phases ramp the load or step
    /// through several levels and the plan has an SLO (a run of `stampede capacity` has
    /// `capacity` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_estimate: Option<CapacityEstimate>,
    /// The load generator's own health (`generator.jsonl` and the intervals' `late`); absent
    /// for run directories written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generator: Option<Generator>,
    /// One row per origin the steps called, over the whole run (the third-party table).
    #[serde(default)]
    pub hosts: Vec<HostRow>,
    /// A/B: each variant of a phase against its baseline (the first variant).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<AbTable>,
}

impl Summary {
    /// The run's capacity answer: a search's (`capacity`), else the estimate from its own
    /// seconds, with the estimate's basis. What every report's Capacity section shows.
    pub fn capacity_answer(&self) -> Option<(&Capacity, Option<&CapacityEstimate>)> {
        match (&self.capacity, &self.capacity_estimate) {
            (Some(c), _) => Some((c, None)),
            (None, Some(e)) => Some((&e.capacity, Some(e))),
            (None, None) => None,
        }
    }
}

/// Capacity from an ordinary run: the same answer as a search's (`slo_capacity`, `saturation`,
/// `peak_throughput_rps`, the step table, the statement), with what it was estimated from and
/// how far to trust it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CapacityEstimate {
    #[serde(flatten)]
    pub capacity: Capacity,
    /// What the estimate rests on, in words: which phases, how many load levels, how long each.
    pub basis: String,
    /// How far off it may be, in words (the gap between the last level that met the SLO and the
    /// first that broke it; levels too short for a stable p95).
    pub uncertainty: String,
    /// The load at which the SLO broke and throughput no longer grew: "overloaded" in the
    /// seed's words (the first level both past the knee and breaking the SLO).
    #[serde(default)]
    pub overloaded: Option<f64>,
}

/// One variant against the baseline of its phase (the seed's with/without table).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbTable {
    /// The plan's phase; back to back, its variants ran as `<phase>[<variant>]`; interleaved,
    /// they ran in it.
    pub phase: String,
    pub baseline: String,
    pub variant: String,
    /// The variants ran in one phase, iteration by iteration in turn (`interleave: true`, or
    /// `variants:` on a scenario), so the rows compare within it, second by second.
    #[serde(default)]
    pub interleaved: bool,
    /// Interleaved: the plan's scenarios that ran in these variants.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<String>,
    /// `step` "all" first: back to back the whole phase, interleaved every step of the
    /// variants' scenarios; then one row per step both ran.
    pub rows: Vec<AbRow>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AbRow {
    pub step: String,
    pub baseline_avg_ms: Option<f64>,
    pub variant_avg_ms: Option<f64>,
    pub baseline_p95_ms: Option<f64>,
    pub variant_p95_ms: Option<f64>,
    /// How much lower the variant's average latency is, in percent of the baseline's
    /// (negative: slower).
    pub improvement_pct: Option<f64>,
    /// The paired sign-flip test over per-second averages (second i of one against second i of
    /// the other), Holm-corrected over the table's rows.
    pub p_value: Option<f64>,
    pub significant: bool,
    pub seconds: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostRow {
    /// `scheme://authority`.
    pub host: String,
    pub requests: u64,
    pub errors: u64,
    pub success_rate: f64,
    pub avg_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    /// Answers `429 Too Many Requests`.
    pub rate_limited: u64,
    /// The steps that called it.
    pub steps: Vec<String>,
}

/// The load generator's own health over the run: whether it, not the system, was the limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Generator {
    /// CPU of the cores stampede may use (100 = all of them busy), highest 1 s sample.
    pub cpu_percent_max: Option<f64>,
    pub rss_max_bytes: Option<f64>,
    /// How late the load threads' timers fired (the delay arrivals and iteration starts saw).
    pub late_ms_p99: Option<f64>,
    pub late_ms_max: Option<f64>,
    /// The cores stampede could run on (`taskset`, cpusets).
    pub cores: Option<f64>,
    pub open_sockets_max: Option<f64>,
    pub threads_max: Option<f64>,
    /// Open-model arrivals dropped over all phases.
    pub dropped_arrivals: u64,
    /// CPU over 80% of its cores for 3 samples or more, or timers late by more than 25 ms at
    /// p99 in 3 seconds or more (and a tenth of them): latency figures include the generator's
    /// own queueing.
    pub limited: bool,
    /// When it first was (seconds since the run start).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limited_from_s: Option<f64>,
    /// Why, in words (also the verdict's condition).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
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
    pub model: LoadModel,
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
    /// How the phase made its load (`null` for a phase `meta.json` does not list).
    pub model: Option<LoadModel>,
    pub description: String,
    pub duration_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub rps: f64,
    pub iterations: u64,
    /// Open model: arrivals that never found a free VU before the phase ended.
    pub dropped_iterations: u64,
    /// How often VUs waited after failed connects (10 ms doubling to 1 s) and for how long in
    /// all: a target that refused connections was not flooded.
    #[serde(default)]
    pub connect_backoffs: u64,
    #[serde(default)]
    pub connect_backoff_s: f64,
    pub vus_max: u64,
    /// The most WebSocket connections open at once (at a second's end; 0 without WebSocket).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub ws_open_max: u64,
    pub latency_ms: Option<LatencyMs>,
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Errors by where they come from: configuration, load, check, other.
    pub errors_by_class: BTreeMap<String, u64>,
    pub steps: Vec<StepSummary>,
    pub thresholds: Vec<ThresholdResult>,
    /// Server-side series over this phase, from the monitors.
    #[serde(default)]
    pub server: Vec<ServerMetric>,
    /// The phase in time windows (the soak table): the seed's 0-30 min, 30-60 min, then hourly
    /// for a phase over an hour, else up to 5 equal windows.
    #[serde(default)]
    pub windows: Vec<Window>,
    /// Whether latency, errors and memory trended over the phase (None when it had fewer than
    /// 8 points to judge).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drift: Option<Drift>,
}

/// One time window of a phase. Times are seconds since the phase's start.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub requests: u64,
    pub errors: u64,
    /// None when no request completed in the window.
    pub avg_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub error_rate: f64,
    /// Each memory series' growth from its first sample in the phase to its last in the window.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryGrowth>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryGrowth {
    /// `monitor.series`, e.g. `app.rss_bytes`.
    pub series: String,
    pub bytes: f64,
    /// `bytes` over the phase-start value, in percent (None when that was 0).
    pub pct: Option<f64>,
}

named_enum! {
    /// A trend's judgement: significant and large enough to matter, in which direction.
    pub enum DriftVerdict {
        Stable = "stable",
        Degrading = "degrading",
        Improving = "improving",
    }
}

named_enum! {
    /// What a memory series did over a phase.
    pub enum MemoryVerdict {
        /// No significant growth large enough to matter.
        Stable = "stable",
        /// Grew and was still growing in the phase's last third: a leak until shown otherwise.
        LeakSuspected = "leak_suspected",
        /// Grew, then levelled off (caches, pools filling up).
        WarmsUp = "warms_up",
        /// Shrank significantly.
        Shrinking = "shrinking",
    }
}

/// The drift of a phase: one trend test per series (docs/reports.md, "Drift").
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Drift {
    /// Degrading when any latency or error trend degrades or a memory leak is suspected,
    /// improving when one improves and none degrades, else stable.
    pub verdict: DriftVerdict,
    /// The median (p50) latency per point.
    pub latency: LatencyDrift,
    /// The p95 latency per point.
    pub latency_p95: LatencyDrift,
    pub error_rate: ErrorRateDrift,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub memory: Vec<MemoryDrift>,
    /// Points the phase was judged on, and the seconds each covers.
    pub points: usize,
    pub point_s: f64,
    /// `mann_kendall_ar1`: Mann-Kendall, variance corrected for lag-1 autocorrelation.
    pub test: String,
    pub alpha: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyDrift {
    /// Theil-Sen slope.
    pub slope_ms_per_h: f64,
    /// The fitted line at the phase's start and end.
    pub start_ms: f64,
    pub end_ms: f64,
    /// end over start, in percent.
    pub change_pct: f64,
    pub p_value: f64,
    pub significant: bool,
    pub verdict: DriftVerdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ErrorRateDrift {
    /// Theil-Sen slope of the error rate (a fraction) per hour.
    pub slope_per_h: f64,
    pub start: f64,
    pub end: f64,
    pub p_value: f64,
    pub significant: bool,
    pub verdict: DriftVerdict,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemoryDrift {
    pub series: String,
    /// Theil-Sen slope over the whole phase, and over its last third.
    pub slope_mib_per_h: f64,
    pub last_third_mib_per_h: f64,
    /// The means of the phase's first and last twelfth of samples.
    pub start_bytes: f64,
    pub end_bytes: f64,
    pub growth_pct: Option<f64>,
    pub p_value: f64,
    pub significant: bool,
    pub verdict: MemoryVerdict,
    /// The limit it grows towards, when known (the host's memory, a `*_limit_bytes` series).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<f64>,
    /// Leak suspected and limit known: hours from the phase's end until the limit at the last
    /// third's rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaches_limit_h: Option<f64>,
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
    /// Response body bytes as received (compressed, without chunk framing).
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Response body bytes after content decoding (gzip, deflate, br, zstd); `bytes_in` when
    /// nothing was compressed.
    #[serde(default)]
    pub bytes_decoded: u64,
    /// Redirects followed (hops beyond each step's first request).
    #[serde(default)]
    pub redirects: u64,
    /// A few error messages as the target gave them (raw text: escape before display).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub error_samples: Vec<String>,
    /// A WebSocket step's connections and messages (absent for other steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ws: Option<WsSummary>,
    /// An SQL step's rows and plan (absent for other steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<SqlSummary>,
    /// HTTPS connections this step opened, by handshake (absent without TLS connects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshakes: Option<TlsHandshakes>,
    /// Name resolution of the connections this step opened (absent when it connected only to
    /// IP literals, or opened no connection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns: Option<DnsTime>,
}

/// The DNS part of a step's connects, apart from the TCP connect: every connection to a name
/// resolves it once; `lookups` of them asked the resolver (the others were answered by the
/// 30 s cache); `avg_ms` is the wait per connection, `total_ms` all of it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DnsTime {
    pub connections: u64,
    pub lookups: u64,
    pub avg_ms: f64,
    pub total_ms: f64,
}

/// TLS handshakes of the connections a step opened: full ones, and ones that resumed a
/// session from an earlier connection (cheaper for client and server alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsHandshakes {
    pub full: u64,
    pub resumed: u64,
}

/// An SQL step over a phase: the rows its statements returned or affected, and (with
/// `explain: true`) what EXPLAIN said at the run's start, and at its end when the plan changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SqlSummary {
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<ExplainSummary>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainSummary {
    /// The plan's top node.
    pub plan: String,
    pub index_used: bool,
    pub seq_scan_tables: Vec<String>,
    /// Sequentially scanned tables of 1,000 rows or more (a small one is read whole faster).
    #[serde(default)]
    pub large_seq_scans: Vec<String>,
    /// The indexes read.
    #[serde(default)]
    pub indexes: Vec<String>,
    pub total_cost: f64,
    /// EXPLAIN at the run's end, when its plan differs from the start's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_end: Option<Box<ExplainSummary>>,
}

/// What a WebSocket step's connections and messages did over a phase. The step's own
/// `requests` are the replies awaited and `latency_ms` their latency.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WsSummary {
    /// Connection attempts that opened (the first of each step execution and reconnects).
    pub connections: u64,
    pub connect_failed: u64,
    /// `connect_failed` over all attempts.
    pub connect_failed_rate: f64,
    /// TCP, TLS and the 101 handshake, per attempt.
    pub connect_ms: Option<LatencyMs>,
    pub messages_sent: u64,
    pub messages_received: u64,
    /// Replies that did not come within their timeout (`ws_lost`), and their share of the
    /// replies awaited.
    pub lost: u64,
    pub lost_rate: f64,
    /// Connections closed by the server or broken while the session needed them.
    pub dropped_connections: u64,
    pub reconnects: u64,
    /// From a drop to the new connection, on average (the back-off included).
    pub reconnect_ms_avg: Option<f64>,
    /// Messages that answered no awaited reply.
    pub pushes: u64,
    /// Sequence numbers pushed messages skipped, and those that came twice (with `sequence:`).
    pub sequence_gaps: u64,
    pub duplicates: u64,
    /// Unexpected closes by close code (`1006`: no close frame, the connection broke).
    pub close_codes: BTreeMap<String, u64>,
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
    /// The metric's stored name (as in `meta.json`: `p95`, `avg`, `error_rate`, `rps` …), which
    /// says the unit of `value` and `limit`.
    #[serde(default)]
    pub metric: String,
    /// The measured value (ms, fraction or per second); null when there was nothing to measure.
    pub value: Option<f64>,
    pub limit: f64,
    pub passed: bool,
    /// Passed, but within 10% of the limit.
    pub near_limit: bool,
    pub step: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}
