//! The engine: runs a plan's phases against the target and emits one merged [`Interval`] per
//! second. It knows nothing of run directories or reports: the caller decides what to do with
//! the events (write them, print progress, evaluate thresholds, stop early).

mod collect;
pub mod cookies;
mod executor;
mod open;
pub mod program;
pub mod render;
pub mod schedule;
mod step;

/// SQL steps' checks before the run and EXPLAIN (the runner calls them).
pub mod sql {
    pub use super::step::sql::preflight::{preflight, Explained, PreflightError};
}
mod timer;
mod turns;
mod vu;
mod worker;

use std::sync::atomic::AtomicU64;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use program::Program;
pub use render::{civil_from_days, push_iso};
pub use schedule::Share;

use crate::http::Connector;
use crate::recorder::{Interval, Shard};
use collect::PhaseCollector;
use worker::{PhaseCmd, Shared, Worker, WorkerMsg};

/// How to run: which phases, on how many threads, which segment of a distributed run.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Indices into `plan.phases`, in the order to run them.
    pub phases: Vec<usize>,
    /// Worker threads (default: the number of cores).
    pub workers: usize,
    /// `--segment i/N`: this process runs share `i` of `N` (0-based).
    pub segment: (u64, u64),
    pub seed: u64,
    /// The run's clock: interval times are seconds since this instant. The runner sets it so
    /// that monitors, started beside the engine, share it; `None` starts it here.
    pub clock: Option<Instant>,
    /// `--http-debug`: print the first exchanges there.
    pub http_debug: Option<Arc<crate::http::debug::HttpDebug>>,
}

/// Stop signals the caller holds (Ctrl-C, `abort_on_fail`).
#[derive(Debug, Clone, Default)]
pub struct Controls {
    /// Start no new iterations; the current phase ends, later phases are skipped.
    pub stop: CancellationToken,
    /// Cancel requests in flight.
    pub kill: CancellationToken,
}

#[derive(Debug)]
pub enum Event {
    PhaseStart { index: usize, name: String, t: f64 },
    Interval(Interval),
    PhaseEnd { index: usize, name: String, t: f64 },
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("TLS set-up failed: {0}")]
    Tls(#[from] rustls::Error),
    #[error("could not start a worker thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Runs the phases. Returns when all have ended or a stop was requested.
pub async fn run(
    program: Arc<Program>,
    opts: EngineOptions,
    controls: Controls,
    mut on_event: impl FnMut(Event),
) -> Result<(), EngineError> {
    let plan = program.plan.clone();
    let tls = if program.needs_tls() {
        Some(crate::transport::tls_config(
            plan.http.insecure,
            plan.http.http2,
            &plan.http.tls,
        )?)
    } else {
        None
    };
    let ws_tls = if program.needs_tls() && program.has_ws() {
        Some(crate::transport::tls_config(plan.http.insecure, false, &plan.http.tls)?)
    } else {
        None
    };
    let sni = plan.http.tls.server_name.as_deref();
    let shared = Arc::new(Shared {
        seed: opts.seed,
        feeder_seq: plan.feeders.iter().map(|_| AtomicU64::new(0)).collect(),
        http_debug: opts.http_debug.clone(),
    });
    let workers = opts.workers.max(1);
    // One transport for HTTP, cloned per worker, so `local_addrs` turns are shared.
    let http_transport = crate::transport::Transport::new(tls.clone(), plan.http.connect_timeout)
        .with_server_name(sni)
        .with_local_addrs(&plan.http.local_addrs);
    let (out_tx, mut out_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut cmd_txs = Vec::new();
    let mut threads = Vec::new();
    for index in 0..workers {
        let (tx, rx) = std_mpsc::channel();
        let w = Worker {
            program: program.clone(),
            shared: shared.clone(),
            connector: Connector::new(http_transport.clone(), plan.http.h2c),
            transport: step::ws::transport(ws_tls.clone(), plan.http.connect_timeout)
                .with_server_name(sni)
                .with_local_addrs(&plan.http.local_addrs),
            sql_pools: program
                .databases
                .iter()
                .map(|d| d.pool.map(|n| step::sql::Pool::new(n, index, workers)))
                .collect(),
            shard: std::cell::RefCell::new(Shard::new(program.steps.len())),
            share: Share {
                segment: opts.segment.0,
                segments: opts.segment.1.max(1),
                worker: index as u64,
                workers: workers as u64,
            },
            index,
        };
        threads.push(worker::spawn(w, rx, out_tx.clone())?);
        cmd_txs.push(tx);
    }
    drop(out_tx);

    let run_start = opts.clock.unwrap_or_else(Instant::now);
    for &pi in &opts.phases {
        if controls.stop.is_cancelled() {
            break;
        }
        let phase = &plan.phases[pi];
        let iterations = match phase.load {
            stampede_plan::Load::Iterations { iterations, .. } => {
                // This segment's share of the iterations (the remainder to the first ones).
                let (i, n) = (opts.segment.0, opts.segment.1.max(1));
                iterations / n + u64::from(i < iterations % n)
            }
            _ => 0,
        };
        let start = Instant::now() + Duration::from_millis(20);
        let iterations_left = Arc::new(AtomicU64::new(iterations));
        for tx in &cmd_txs {
            let _ = tx.send(PhaseCmd {
                phase: pi,
                start,
                stop: controls.stop.clone(),
                kill: controls.kill.clone(),
                iterations_left: iterations_left.clone(),
            });
        }
        let offset = start.saturating_duration_since(run_start).as_secs_f64();
        on_event(Event::PhaseStart {
            index: pi,
            name: phase.name.clone(),
            t: offset,
        });
        let mut collector = PhaseCollector::new(phase.name.clone(), workers, start, offset);
        while !collector.done() {
            let Some(msg) = out_rx.recv().await else {
                break;
            };
            let WorkerMsg::Interval {
                worker,
                phase: p,
                seq,
                data,
                ended,
            } = msg;
            if p != pi {
                continue;
            }
            collector.add(worker, seq, data, ended);
            for iv in collector.ready(&program) {
                on_event(Event::Interval(iv));
            }
        }
        on_event(Event::PhaseEnd {
            index: pi,
            name: phase.name.clone(),
            t: run_start.elapsed().as_secs_f64(),
        });
    }
    drop(cmd_txs);
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}
