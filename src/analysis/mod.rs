//! Analysis: from intervals to numbers and verdicts. Pure functions over run-directory data,
//! so `stampede summary` on a directory gives what `stampede run` printed at its end.

mod aggregate;
mod summary;
mod thresholds;

pub use aggregate::{aggregate, PhaseAgg, StepAgg};
pub use summary::{summarize, LatencyMs, PhaseSummary, StepSummary, Summary, ThresholdResult, Verdict, SUMMARY_SCHEMA};
pub use thresholds::{evaluate, measure};
