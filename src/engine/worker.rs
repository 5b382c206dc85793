//! Engine workers: one OS thread each, running a single-threaded tokio runtime. VUs are dealt to
//! workers (see `schedule::Share`), so a worker's recorder shard is touched by its thread only.

use std::cell::RefCell;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::executor;
use super::program::Program;
use super::schedule::Share;
use crate::http::Connector;
use crate::recorder::{Shard, WorkerInterval};

/// State all workers share: set up once per run.
pub struct Shared {
    pub seed: u64,
    /// Next row of each sequential data feeder.
    pub feeder_seq: Vec<AtomicU64>,
}

/// One worker's view of the run.
pub struct Worker {
    pub program: Arc<Program>,
    pub shared: Arc<Shared>,
    pub connector: Connector,
    pub shard: RefCell<Shard>,
    pub share: Share,
    pub index: usize,
}

/// What the controller asks of a worker.
pub struct PhaseCmd {
    pub phase: usize,
    /// Common start time of the phase on every worker.
    pub start: Instant,
    /// Soft stop for the whole run (Ctrl-C, abort_on_fail): no new iterations.
    pub stop: CancellationToken,
    /// Hard stop for the whole run: cancel requests in flight.
    pub kill: CancellationToken,
    /// Iterations left, for `iterations` phases (shared by all workers).
    pub iterations_left: Arc<AtomicU64>,
}

/// What a worker tells the controller.
pub enum WorkerMsg {
    Interval {
        worker: usize,
        phase: usize,
        seq: u64,
        data: WorkerInterval,
        /// Set on the worker's last interval of the phase: when it finished.
        ended: Option<Instant>,
    },
}

pub fn spawn(
    worker: Worker,
    cmds: std_mpsc::Receiver<PhaseCmd>,
    out: UnboundedSender<WorkerMsg>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("stampede-worker-{}", worker.index))
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("stampede: worker {} could not start its runtime: {e}", worker.index);
                    return;
                }
            };
            let worker = std::rc::Rc::new(worker);
            while let Ok(cmd) = cmds.recv() {
                let local = tokio::task::LocalSet::new();
                local.block_on(&rt, executor::run_phase(worker.clone(), cmd, out.clone()));
            }
        })
}
