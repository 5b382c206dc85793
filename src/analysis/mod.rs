//! Analysis: from intervals to numbers and verdicts. Pure functions over run-directory data,
//! so `stampede summary` on a directory gives what `stampede run` printed at its end.
//!
//! [`analyze_dir`] is the one pass over a run directory: it yields the summary (with server
//! metrics, [`findings`] and capacity), the chart timeline and the charted server series
//! together (and, when asked for, the per-second values [`compare`] tests), and everything that reads a run (the
//! runner's final summary, `stampede summary`, `compare`, the history, the reports) goes through it.

mod ab;
mod aggregate;
pub mod compare;
mod drift;
mod estimate;
pub mod findings;
mod generator;
mod hosts;
mod packed;
mod pass;
pub mod seconds;
pub mod series;
pub mod significance;
mod sql;
mod summary;
mod thresholds;
pub mod trend;
mod windows;
mod ws;

pub use aggregate::{aggregate, aggregate_into, PhaseAgg, StepAgg};
pub use pass::{analyze, analyze_dir, analyze_dir_with_seconds, summarize_dir, Analysis};
pub use summary::{
    AbRow, AbTable, Capacity, CapacityStep, Drift, DriftVerdict, ErrorRateDrift, Finding, Generator, HostRow,
    LatencyDrift, LatencyMs, MemoryDrift, MemoryGrowth, MemoryVerdict, PhaseSummary, Priority, Projection,
    ServerMetric, StepSummary, Summary, ThresholdResult, Usl, Verdict, Window, SUMMARY_SCHEMA,
};
pub use thresholds::{evaluate, measure};
