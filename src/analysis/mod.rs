//! Analysis: from intervals to numbers and verdicts. Pure functions over run-directory data,
//! so `stampede summary` on a directory gives what `stampede run` printed at its end.

mod aggregate;
pub mod findings;
mod summary;
mod thresholds;

pub use aggregate::{aggregate, aggregate_into, PhaseAgg, StepAgg};
pub use summary::{
    summarize, summarize_aggs, summarize_dir, Capacity, CapacityStep, Finding, LatencyMs, PhaseSummary, Projection,
    ServerMetric, StepSummary, Summary, ThresholdResult, Usl, Verdict, SUMMARY_SCHEMA,
};
pub use thresholds::{evaluate, measure};
