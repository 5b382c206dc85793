//! Outputs: everything a run does with its stream of per-second intervals. The runner has one
//! interval loop; each interval (and each phase start and end) is handed to every output in
//! turn, and an output can ask the run to stop. The run directory writer, the terminal progress
//! and the `abort_on_fail` rules are outputs; a live dashboard or a remote-write exporter is
//! one more.
//!
//! To add an output: implement [`Output`] in a file of this module and add it where the run is
//! made (`runner::Session::add_output`, or the default set in `Session::open`). It is called on the
//! runner's task once per second, never on the hot path, so a trait object costs nothing.

mod abort;
mod console;
pub mod dashboard;
pub mod peers;
pub mod remote;
mod rundir;

pub use abort::AbortRules;
pub use console::Console;
pub use rundir::IntervalWriter;

use crate::analysis::PhaseAgg;
use crate::recorder::Interval;
use crate::rundir::RunDirError;

/// The phase an interval belongs to, as the runner tracks it.
pub struct PhaseView<'a> {
    /// The phase's index in the plan.
    pub index: usize,
    pub name: &'a str,
    /// Its planned length in seconds (0 when it has none).
    pub planned_s: f64,
    /// Seconds since the phase started, at the end of the latest interval.
    pub elapsed_s: f64,
    /// Everything the phase measured so far, merged.
    pub agg: &'a PhaseAgg,
}

/// What an output asks of the run after an interval.
#[derive(Debug)]
pub enum Flow {
    Continue,
    Stop(StopReason),
}

/// Why an output stops the run (or, for [`StopReason::EndPhase`], the phase).
#[derive(Debug)]
pub enum StopReason {
    /// An `abort_on_fail` threshold failed: the run ends as aborted.
    Abort {
        rule: String,
        phase: String,
        value: Option<f64>,
    },
    /// The run directory cannot be written (a full disk): the run stops now, keeping what was
    /// written, and fails.
    WriteFailed(RunDirError),
    /// The caller has seen enough of this phase (a capacity level that broke its SLO): no new
    /// iterations, those in flight finish, the run goes on.
    EndPhase,
}

/// Something every output may want to tell the user about, raised by another output.
pub enum Notice<'a> {
    Aborting {
        rule: &'a str,
        phase: &'a str,
        value: Option<f64>,
    },
}

/// A consumer of the run's intervals.
pub trait Output {
    fn phase_start(&mut self, _phase: &PhaseView) {}

    /// Called once per interval, in order, after the phase's aggregate includes it.
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow;

    fn phase_end(&mut self, _phase: &PhaseView) {}

    fn notice(&mut self, _notice: &Notice) {}

    /// The run has ended (after the last phase end): an output with work left, such as a
    /// queue of seconds for a remote receiver, does it in the returned future, which must end
    /// by itself within a few seconds; what it reports (one entry per receiver) goes into
    /// `meta.json`'s `outputs`.
    fn finish(&mut self) -> Option<FinishFuture> {
        None
    }
}

/// An output's work at the end of the run, run on the runner's runtime.
pub type FinishFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Vec<crate::rundir::OutputStats>> + Send>>;

/// An output from a closure over each interval and its phase so far; returning `true` ends the
/// phase early ([`StopReason::EndPhase`]).
pub struct Watch<F>(pub F);

impl<F: FnMut(&Interval, &PhaseAgg) -> bool> Output for Watch<F> {
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
        if (self.0)(iv, phase.agg) {
            Flow::Stop(StopReason::EndPhase)
        } else {
            Flow::Continue
        }
    }
}
