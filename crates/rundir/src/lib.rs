//! The run directory: the source of truth. Every summary, report and comparison is computed
//! from it alone, so a report can be rebuilt later, elsewhere, or after a crash.
//!
//! ```text
//! RUN_DIR/
//!   meta.json        what ran: plan name, phases, steps, thresholds, host, times, status
//!   plan.json        the resolved plan, secrets from the environment redacted
//!   intervals.jsonl  one merged interval per phase-second, appended and flushed every second
//!   monitors.jsonl   server-side samples (when the plan has monitors), same clock, same rules
//!   summary.json     written at the end (and rebuilt by `stampede summary` when missing)
//!   capacity.json    `stampede capacity` only: the search's settings and result
//! ```
//! `kill -9` loses at most the interval being written; the reader skips a torn last line.

//!
//! This crate is the directory's schema and its reading and writing: what `stampede merge`, a
//! dashboard or a CI plugin depend on, with serde and hdrhistogram and nothing of the engine,
//! the plan format or the reports.

pub mod explain;
pub mod hist;
pub mod interval;
pub mod labels;
pub mod merge;
mod meta;
pub mod monitor;
mod reader;
pub mod summary;
pub mod time;
mod writer;

pub use interval::{admits, keep_sample, ErrorSample, Interval, StepInterval, SAMPLES_KEPT, SAMPLES_PER_INTERVAL};
pub use meta::{
    About, Generator, InterleavedMeta, LoadModel, OutputStats, PhaseMeta, Resolved, RunMeta, RunStatus, Segment,
    ThresholdSpec, RUN_SCHEMA,
};
pub use reader::{for_each_interval, read_capacity, read_meta, read_monitors, read_run, Intervals, Run};
pub use writer::{write_atomic, write_json_atomic, IntervalLog, MonitorLog, RunWriter};

#[derive(Debug, thiserror::Error)]
pub enum RunDirError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a stampede run directory ({reason})")]
    Invalid { path: String, reason: String },
    #[error("{path}: already holds a run; choose another --out directory")]
    Exists { path: String },
    /// A value that cannot be written as JSON (never written as an empty file instead).
    #[error("{path}: cannot be written as JSON: {source}")]
    Serialize {
        path: String,
        #[source]
        source: serde_json::Error,
    },
}
