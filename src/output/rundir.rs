//! The run directory as an output: each interval appended to `intervals.jsonl` and flushed.

use super::{Flow, Output, PhaseView, StopReason};
use crate::recorder::Interval;
use crate::rundir::IntervalLog;

/// Appends every interval to the run directory. A write that fails stops the run: a full disk
/// must not go unnoticed, and what was written stays readable.
pub struct IntervalWriter {
    log: IntervalLog,
    failed: bool,
}

impl IntervalWriter {
    pub fn new(log: IntervalLog) -> IntervalWriter {
        IntervalWriter { log, failed: false }
    }
}

impl Output for IntervalWriter {
    fn interval(&mut self, iv: &Interval, _phase: &PhaseView) -> Flow {
        if self.failed {
            return Flow::Continue;
        }
        match self.log.append(iv) {
            Ok(()) => Flow::Continue,
            Err(e) => {
                self.failed = true;
                Flow::Stop(StopReason::WriteFailed(e))
            }
        }
    }
}
