//! Analysis: from intervals to numbers and verdicts. Pure functions over run-directory data,
//! so `stampede summary` on a directory gives what `stampede run` printed at its end.

mod aggregate;
pub mod findings;
mod summary;
mod thresholds;

pub use aggregate::{aggregate, PhaseAgg, StepAgg};
pub use summary::{
    summarize, Capacity, CapacityStep, Finding, LatencyMs, PhaseSummary, ServerMetric, StepSummary, Summary,
    ThresholdResult, Usl, Verdict, SUMMARY_SCHEMA,
};
pub use thresholds::{evaluate, measure};
