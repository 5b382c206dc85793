//! Merging a phase's intervals: histograms are added (never percentiles averaged).

use crate::recorder::{Interval, StepInterval};

/// A step's numbers over a phase: the same shape as one interval's, merged.
pub type StepAgg = StepInterval;

#[derive(Debug, Clone)]
pub struct PhaseAgg {
    pub name: String,
    /// Seconds measured (the sum of the intervals' lengths).
    pub duration_s: f64,
    pub iterations: u64,
    pub dropped: u64,
    /// Waits after failed connects, and their total planned length in ms.
    pub backoffs: u64,
    pub backoff_ms: u64,
    pub vus_max: u64,
    pub ws_open_max: u64,
    /// Steps in order of first appearance.
    pub steps: Vec<StepAgg>,
    /// Seconds since the run start of the phase's first interval.
    pub start_t: f64,
}

impl PhaseAgg {
    pub fn new(name: &str) -> PhaseAgg {
        PhaseAgg {
            name: name.to_string(),
            duration_s: 0.0,
            iterations: 0,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            vus_max: 0,
            ws_open_max: 0,
            steps: Vec::new(),
            start_t: f64::NAN,
        }
    }

    pub fn add(&mut self, iv: &Interval) {
        if self.start_t.is_nan() {
            self.start_t = iv.t;
        }
        self.duration_s += iv.dur;
        self.iterations += iv.iterations;
        self.dropped += iv.dropped;
        self.backoffs += iv.backoffs;
        self.backoff_ms += iv.backoff_ms;
        self.vus_max = self.vus_max.max(iv.vus);
        self.ws_open_max = self.ws_open_max.max(iv.ws_open);
        for s in &iv.steps {
            match self.steps.iter_mut().find(|a| a.name == s.name) {
                Some(a) => a.add(s),
                None => self.steps.push(s.to_aggregate()),
            }
        }
    }

    /// Adds another aggregate's numbers to this one (histograms added, counters summed), as if
    /// its intervals had been added here: how the seconds of neighbouring load levels of a ramp
    /// become one level of a capacity estimate.
    pub fn absorb(&mut self, other: &PhaseAgg) {
        if self.start_t.is_nan() || other.start_t < self.start_t {
            self.start_t = other.start_t;
        }
        self.duration_s += other.duration_s;
        self.iterations += other.iterations;
        self.dropped += other.dropped;
        self.backoffs += other.backoffs;
        self.backoff_ms += other.backoff_ms;
        self.vus_max = self.vus_max.max(other.vus_max);
        self.ws_open_max = self.ws_open_max.max(other.ws_open_max);
        for s in &other.steps {
            match self.steps.iter_mut().find(|a| a.name == s.name) {
                Some(a) => a.add(s),
                None => self.steps.push(s.to_aggregate()),
            }
        }
    }

    pub fn requests(&self) -> u64 {
        self.steps.iter().map(|s| s.requests).sum()
    }

    pub fn errors(&self) -> u64 {
        self.steps.iter().map(|s| s.errors).sum()
    }

    /// All steps (or only `step`) merged into one.
    pub fn merged(&self, step: Option<&str>) -> StepAgg {
        let mut out = StepAgg::empty(step.unwrap_or("all"));
        for s in self.steps.iter().filter(|s| step.is_none_or(|n| n == s.name)) {
            out.add(s);
        }
        out
    }
}

/// Groups intervals by phase, in the order `phase_order` gives (phases without intervals get
/// an empty aggregate, so a phase that never ran still shows).
pub fn aggregate(phase_order: &[String], intervals: &[Interval]) -> Vec<PhaseAgg> {
    let mut out: Vec<PhaseAgg> = phase_order.iter().map(|n| PhaseAgg::new(n)).collect();
    for iv in intervals {
        aggregate_into(&mut out, iv);
    }
    out
}

/// Adds one interval to the phase aggregates (a phase not yet seen is appended), for folds that
/// stream the intervals instead of holding them all.
pub fn aggregate_into(aggs: &mut Vec<PhaseAgg>, iv: &Interval) {
    match aggs.iter_mut().find(|p| p.name == iv.phase) {
        Some(p) => p.add(iv),
        None => {
            let mut p = PhaseAgg::new(&iv.phase);
            p.add(iv);
            aggs.push(p);
        }
    }
}
