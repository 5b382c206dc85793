//! `meta.json`: what a run was. Written at the start (status `running`) and rewritten at the end.

use serde::{Deserialize, Serialize};

pub const RUN_SCHEMA: &str = "stampede.run/v1";

crate::named_enum! {
    /// Where a run is: `running` until it ends, then how it ended.
    pub enum RunStatus {
        Running = "running",
        Completed = "completed",
        /// Ctrl-C, SIGTERM or SIGHUP.
        Interrupted = "interrupted",
        /// A threshold with `abort_on_fail` failed.
        Aborted = "aborted",
    }
}

crate::named_enum! {
    /// How a phase makes its load.
    pub enum LoadModel {
        Closed = "closed",
        RampingVus = "ramping_vus",
        Open = "open",
        RampingRate = "ramping_rate",
        Iterations = "iterations",
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunMeta {
    pub schema: String,
    pub name: String,
    pub plan_file: String,
    pub tool_version: String,
    pub host: String,
    pub os: String,
    pub cores: usize,
    pub memory_bytes: u64,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub status: RunStatus,
    #[serde(default)]
    pub target: Option<String>,
    pub workers: usize,
    /// Which share of a distributed run this is (`0/1` for an ordinary run).
    pub segment: Segment,
    /// SHA-256 of the plan file as read (hex): `stampede merge` takes only shares of one plan.
    /// Absent in run directories written before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_sha256: Option<String>,
    /// The common start the shares of a distributed run waited for (`run --start-at`), RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    pub phases: Vec<PhaseMeta>,
    pub steps: Vec<String>,
    /// The origin each HTTP or WebSocket step called (`scheme://authority`), by step name: the
    /// summary's `hosts` rows.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub step_hosts: std::collections::BTreeMap<String, String>,
    pub thresholds: Vec<ThresholdSpec>,
    /// How this run departs from its plan (e.g. phases compressed by `--quick`).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Why the run exists, in the user's words (`stampede run --note`): the title of its
    /// "Update" section in a report of several runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The origins' names as resolved before the run, and how long each lookup took.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<Resolved>,
    /// A merged run's shares (`stampede merge`), in segment order; empty for a run made by
    /// one process.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub generators: Vec<Generator>,
    /// The plan's `about:` (objectives, environment, software versions), for the report.
    #[serde(default, skip_serializing_if = "About::is_empty")]
    pub about: About,
    /// What each remote output (`--output prometheus-rw=…`, `otlp=…`) delivered: a receiver
    /// that was slow or down loses seconds, never load, and this says how many.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<OutputStats>,
}

/// One remote output's delivery over the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputStats {
    /// `prometheus-rw` or `otlp`.
    pub output: String,
    /// The receiver's URL (never with credentials: they travel in headers, not stored).
    pub url: String,
    /// Pushes made (one per second of the run, and one per phase end).
    pub seconds: u64,
    pub sent: u64,
    /// Not delivered: dropped from a full queue, refused by the receiver, or still queued
    /// when the run ended and the receiver did not take them in time.
    pub dropped: u64,
    pub failed_attempts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// Share `index` of `count` (0-based) of every phase's VUs and arrivals.
///
/// On disk `{"index", "count"}`; run directories written before that hold the text `"I/N"`,
/// which reads the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "SegmentRecord")]
pub struct Segment {
    pub index: u64,
    pub count: u64,
}

impl Segment {
    /// The whole run: one share of one.
    pub const WHOLE: Segment = Segment { index: 0, count: 1 };

    /// `I/N` with `0 <= I < N`.
    pub fn parse(s: &str) -> Result<Segment, String> {
        let (i, n) = s.split_once('/').ok_or("expected I/N, e.g. 0/4")?;
        let index: u64 = i.trim().parse().map_err(|_| "I must be a whole number")?;
        let count: u64 = n.trim().parse().map_err(|_| "N must be a whole number")?;
        Segment::new(index, count)
    }

    pub fn new(index: u64, count: u64) -> Result<Segment, String> {
        if count == 0 || index >= count {
            return Err(format!("segment {index}/{count}: need 0 <= I < N"));
        }
        Ok(Segment { index, count })
    }
}

impl std::fmt::Display for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SegmentRecord {
    Object { index: u64, count: u64 },
    Text(String),
}

impl TryFrom<SegmentRecord> for Segment {
    type Error = String;
    fn try_from(r: SegmentRecord) -> Result<Segment, String> {
        match r {
            SegmentRecord::Object { index, count } => Segment::new(index, count),
            SegmentRecord::Text(t) => Segment::parse(&t),
        }
    }
}

/// One share of a merged run, as `stampede merge` found it: where it ran and how it went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generator {
    pub segment: Segment,
    pub host: String,
    /// The share's run directory, as given to `stampede merge`.
    pub dir: String,
    pub started_at: String,
    #[serde(default)]
    pub ended_at: Option<String>,
    pub status: RunStatus,
    pub workers: usize,
    pub cores: usize,
    /// Summed over the share's intervals.
    pub requests: u64,
    pub errors: u64,
    pub dropped: u64,
    /// Seconds of intervals it recorded.
    pub seconds: u64,
}

/// What a report says of the test before its numbers, as the plan's `about:` block gave it
/// (the plan crate's `About`, stored): rows in plan order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct About {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<String>,
    /// (component, what it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<(String, String)>,
    /// (component, version).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<(String, String)>,
}

impl About {
    pub fn is_empty(&self) -> bool {
        self.objectives.is_empty() && self.environment.is_empty() && self.software.is_empty()
    }
}

/// One origin's name lookup at the start of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Resolved {
    /// `host:port` as the plan names it.
    pub origin: String,
    pub addrs: Vec<String>,
    pub lookup_ms: f64,
}

/// A phase as configured (the measured side is in the intervals).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PhaseMeta {
    pub name: String,
    pub model: LoadModel,
    /// One line, e.g. "30 VUs for 5m" or "50/s for 1m (max 200 VUs)".
    pub description: String,
    pub scenarios: Vec<String>,
    /// Configured length in seconds (without grace).
    pub planned_s: f64,
    /// Peak VUs (closed) or peak arrival rate per second (open).
    pub peak: f64,
    /// An A/B variant (`variants:`): the plan's phase it is a variant of, and its name. The
    /// variants of one phase are consecutive, the baseline first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Interleaved A/B variants within this phase (`interleave: true`, or `variants:` on a
    /// scenario): per scenario that runs in variants, which, taken in turn iteration by
    /// iteration; their steps are `<scenario>[<variant>]/<step>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interleaved: Vec<InterleavedMeta>,
}

/// One scenario of a phase run in interleaved variants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterleavedMeta {
    /// The plan's scenario.
    pub scenario: String,
    /// The variants' names, the baseline first.
    pub variants: Vec<String>,
}

/// A threshold as stored: enough to evaluate it again from the run directory alone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdSpec {
    pub expr: String,
    /// avg | min | max | pNN | error_rate | rps
    pub metric: String,
    /// < | <= | > | >=
    pub op: String,
    /// ms for latency, a fraction for error_rate, per second for rps.
    pub value: f64,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub step: Option<String>,
    #[serde(default)]
    pub abort_on_fail: bool,
}

impl ThresholdSpec {
    /// Whether this threshold is evaluated for the phase named `phase`.
    pub fn applies_to(&self, phase: &str) -> bool {
        self.phase.as_deref().is_none_or(|p| p == phase)
    }
}
