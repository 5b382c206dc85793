//! `stampede capacity`: finds the load level where the SLO breaks and says how many users the
//! system holds.
//!
//! The search ([`search`]) steps the load up geometrically, then bisects between the last good
//! and the first bad level; each level is one phase of a single run directory, so reports are
//! rebuilt from it like from any run. [`step`] turns a phase's intervals into a row of the step
//! table, [`result`] turns the table into the answer (SLO capacity, knee, peak throughput, USL
//! fit, projections, statement), [`usl`] fits the Universal Scalability Law by hand.
//! See docs/capacity.md.

pub mod result;
pub mod search;
pub mod step;
pub mod usl;

use std::time::Duration;

use crate::rundir::ThresholdSpec;

pub use result::conclude;
pub use search::{search, SearchError, Searched};

/// Closed model: the load is a number of VUs looping; open model: arrivals per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Model {
    Closed,
    Open,
}

impl Model {
    /// The load model as run directories name it.
    pub fn load_model(self) -> stampede_rundir::LoadModel {
        match self {
            Model::Closed => stampede_rundir::LoadModel::Closed,
            Model::Open => stampede_rundir::LoadModel::Open,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.load_model().as_str()
    }

    /// The unit of a load figure.
    pub fn unit(self) -> &'static str {
        match self {
            Model::Closed => "VUs",
            Model::Open => "arrivals/s",
        }
    }

    /// The unit after the figure `x` ("1 VU", "2 VUs").
    pub fn unit_for(self, x: f64) -> &'static str {
        match self {
            Model::Closed if x == 1.0 => "VU",
            m => m.unit(),
        }
    }
}

/// Above this error rate a step counts as an error explosion: the search stops at once instead
/// of pushing a failing (possibly real, production-like) system harder.
pub const EXPLODED_ERROR_RATE: f64 = 0.5;

/// A step is extended up to this many times its duration until its p95 is stable.
pub const MAX_EXTENSION: u64 = 3;

/// How to search.
#[derive(Debug, Clone)]
pub struct SearchOptions {
    pub model: Model,
    /// Name of the scenario to load with, and its index in the plan.
    pub scenario: String,
    pub scenario_index: usize,
    /// The SLO, as thresholds evaluated on each step's measured seconds.
    pub slo: Vec<ThresholdSpec>,
    /// The first load level (VUs or arrivals/s).
    pub min: f64,
    /// The largest load level ever run (never exceeded).
    pub max: f64,
    /// Open model: the cap on VUs serving arrivals.
    pub max_vus: u32,
    /// Measured length of a step (after the warm-up), extended until the p95 is stable.
    pub step_duration: Duration,
    /// Discarded at the start of every step.
    pub warmup: Duration,
    /// Length of the final ramp from the last level to zero (zero: none).
    pub ramp_down: Duration,
    /// Geometric growth factor between steps before the SLO breaks (e.g. 2).
    pub growth: f64,
    /// Safety margin for the recommendation, a fraction in [0, 1).
    pub margin: f64,
}

impl SearchOptions {
    /// Whole seconds discarded per step.
    pub fn warmup_n(&self) -> u64 {
        self.warmup.as_secs_f64().ceil() as u64
    }

    /// Whole seconds measured per step at least.
    pub fn step_n(&self) -> u64 {
        (self.step_duration.as_secs_f64().ceil() as u64).max(1)
    }

    /// A load level as the model runs it: whole VUs; arrivals/s to 0.1 below 10/s, whole above.
    pub fn level(&self, x: f64) -> f64 {
        let x = x.min(self.max);
        match self.model {
            Model::Closed => x.round().max(1.0),
            Model::Open if x < 10.0 => ((x * 10.0).round() / 10.0).max(0.1),
            Model::Open => x.round(),
        }
    }

    /// Bisection stops when the bracket is this narrow.
    pub fn resolution(&self, lo: f64) -> f64 {
        let floor = match self.model {
            Model::Closed => 1.0,
            Model::Open => 0.5,
        };
        (lo * 0.1).max(floor)
    }
}
