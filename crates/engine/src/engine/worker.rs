//! Engine workers: one OS thread each, running a single-threaded tokio runtime. VUs are dealt to
//! workers (see `schedule::Share`), so a worker's recorder shard is touched by its thread only.

use std::cell::RefCell;
use std::io;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;

use tokio::runtime::Runtime;
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
    /// `--http-debug`: where the first exchanges are printed.
    pub http_debug: Option<Arc<crate::http::debug::HttpDebug>>,
}

/// One worker's view of the run.
pub struct Worker {
    pub program: Arc<Program>,
    pub shared: Arc<Shared>,
    pub connector: Connector,
    /// WebSocket and PostgreSQL steps connect here: TLS without `h2` in ALPN (a WebSocket
    /// upgrade is HTTP/1.1; PostgreSQL connections are plain TCP).
    pub transport: crate::transport::Transport,
    /// Per database: this load thread's share of its `pool:` (`None`: a connection per VU).
    pub sql_pools: Vec<Option<super::step::sql::Pool>>,
    pub shard: RefCell<Shard>,
    pub share: Share,
    pub index: usize,
}

/// What the controller asks of a worker.
pub struct PhaseCmd {
    pub phase: usize,
    /// Common start time of the phase on every worker.
    pub start: Instant,
    /// The run's `engine::Controls`: `stop` (no new iterations), `kill` (cancel in flight).
    pub stop: CancellationToken,
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

/// Starts the worker's thread. Returns once its runtime is running, or with the error that kept
/// it from starting: a worker without a runtime would run nothing and never report, and the
/// controller would wait for its intervals forever.
pub fn spawn(
    worker: Worker,
    cmds: std_mpsc::Receiver<PhaseCmd>,
    out: UnboundedSender<WorkerMsg>,
) -> io::Result<std::thread::JoinHandle<()>> {
    let index = worker.index;
    start_thread(format!("stampede-worker-{index}"), build_runtime, move |rt| {
        let worker = std::rc::Rc::new(worker);
        while let Ok(cmd) = cmds.recv() {
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, executor::run_phase(worker.clone(), cmd, out.clone()));
        }
    })
    .map_err(|e| io::Error::new(e.kind(), format!("worker {index}: {e}")))
}

fn build_runtime() -> io::Result<Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

/// A thread that runs `body` on the runtime `build` makes, started once that runtime is built
/// (the error otherwise). `build` is a parameter so that tests can make it fail.
fn start_thread(
    name: String,
    build: fn() -> io::Result<Runtime>,
    body: impl FnOnce(Runtime) + Send + 'static,
) -> io::Result<std::thread::JoinHandle<()>> {
    let (ready_tx, ready) = std_mpsc::sync_channel(1);
    let thread = std::thread::Builder::new().name(name).spawn(move || match build() {
        Ok(rt) => {
            let _ = ready_tx.send(Ok(()));
            body(rt);
        }
        Err(e) => {
            let _ = ready_tx.send(Err(e));
        }
    })?;
    match ready.recv() {
        Ok(Ok(())) => Ok(thread),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(io::Error::new(e.kind(), format!("its runtime did not start: {e}")))
        }
        Err(_) => {
            let _ = thread.join();
            Err(io::Error::other("its thread ended before its runtime started"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A runtime that cannot be built (as when the process is out of file descriptors) is an
    /// error for the caller, and the thread is gone; nothing is left waiting for it.
    #[test]
    fn a_runtime_that_fails_to_build_is_reported() {
        let e = start_thread(
            "test".into(),
            || Err(io::Error::other("no epoll today")),
            |_| unreachable!("no runtime, no body"),
        )
        .expect_err("the failure is reported");
        assert_eq!(e.to_string(), "its runtime did not start: no epoll today");
    }

    /// Otherwise the body runs on the runtime built for it.
    #[test]
    fn the_body_runs_on_its_runtime() {
        let (tx, rx) = std_mpsc::channel();
        let thread = start_thread("test".into(), build_runtime, move |rt| {
            let _ = tx.send(rt.block_on(async { 7 }));
        })
        .expect("a runtime");
        thread.join().expect("no panic");
        assert_eq!(rx.recv().ok(), Some(7));
    }
}
