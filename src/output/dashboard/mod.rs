//! The live dashboard (`run --dashboard [ADDR]`, `stampede dashboard RUN_DIR`): an output that
//! turns each interval into one JSON event ([`event`]), a hub that keeps a bounded replay and
//! fans events out to browsers ([`hub`]), and a small HTTP server on the runner's runtime
//! ([`server`]) serving the page and `/events`. The output runs once per second on the
//! runner's task: nothing here touches the hot path, and no browser can slow the run (a slow
//! one is disconnected and counted). [`replay`] feeds a finished run through the same builder.

pub mod event;
pub mod hub;
pub mod replay;
pub mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;

use super::{Flow, Output, PhaseView};
use crate::analysis::Summary;
use crate::monitor::latest::Latest;
use crate::recorder::Interval;
use crate::rundir::summary::{Finding, ThresholdResult};
use event::EventBuilder;
use hub::Hub;

/// Past this much run time the findings are not computed after a phase, only at the end: the
/// analysis reads the whole run so far, and for hours of seconds that is seconds of CPU and
/// hundreds of MB (BENCHMARKS.md, long runs) in the generator's process.
pub const PHASE_FINDINGS_UP_TO_S: f64 = 1800.0;

/// The default address, as k6's.
pub const DEFAULT_ADDR: &str = "127.0.0.1:5665";

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error("--dashboard {addr}: cannot listen there: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Binds the dashboard's address now (before any load, so an address in use is an error the
/// user sees before the run starts). Serve it with [`start`] inside the runtime.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, DashboardError> {
    let l = std::net::TcpListener::bind(addr).map_err(|source| DashboardError::Bind { addr, source })?;
    l.set_nonblocking(true)
        .map_err(|source| DashboardError::Bind { addr, source })?;
    Ok(l)
}

/// The URL to print for a bound listener.
pub fn url(l: &std::net::TcpListener) -> String {
    match l.local_addr() {
        Ok(a) => format!("http://{a}/"),
        Err(_) => "http://(unknown)/".into(),
    }
}

/// A running dashboard server: its hub and its task (ended on drop).
pub struct Server {
    pub hub: Arc<Hub>,
    task: tokio::task::JoinHandle<()>,
}

/// Starts serving `listener` on the current runtime.
pub fn start(listener: std::net::TcpListener) -> std::io::Result<Server> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let hub = Arc::new(Hub::new());
    let task = tokio::spawn(server::serve(listener, hub.clone()));
    Ok(Server { hub, task })
}

impl Drop for Server {
    fn drop(&mut self) {
        self.hub.close();
        self.task.abort();
    }
}

/// A `summary` event: the findings and thresholds so far (after a phase), or at the end.
#[derive(Debug, Serialize)]
pub struct SummaryEvent<'a> {
    /// `true` once the run has ended (the last summary).
    #[serde(rename = "final")]
    pub is_final: bool,
    /// The phase that just ended (`null` for the final one).
    pub phase: Option<&'a str>,
    pub status: crate::rundir::RunStatus,
    pub verdict: crate::analysis::Verdict,
    pub findings: &'a [Finding],
    pub thresholds: Vec<PhaseThreshold<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PhaseThreshold<'a> {
    pub phase: &'a str,
    #[serde(flatten)]
    pub result: &'a ThresholdResult,
}

/// The `summary` event's JSON for `summary`.
pub fn summary_json(summary: &Summary, phase: Option<&str>, is_final: bool) -> String {
    let ev = SummaryEvent {
        is_final,
        phase,
        status: summary.status,
        verdict: summary.verdict,
        findings: &summary.findings,
        thresholds: summary
            .phases
            .iter()
            .flat_map(|p| {
                p.thresholds.iter().map(move |t| PhaseThreshold {
                    phase: &p.name,
                    result: t,
                })
            })
            .collect(),
    };
    serde_json::to_string(&ev).unwrap_or_default()
}

/// The dashboard as an output of a run.
pub struct Dashboard {
    hub: Arc<Hub>,
    builder: EventBuilder,
    monitors: Latest,
    /// The run directory, read again after each phase for the findings so far.
    dir: Option<PathBuf>,
    /// The run's last phase: after it the run's own analysis gives the final summary, so it is
    /// not read again here.
    last_phase: Option<usize>,
}

impl Dashboard {
    /// `last_phase`: the index of the run's last phase (its end is the run's, whose summary
    /// the caller publishes).
    pub fn new(hub: Arc<Hub>, monitors: Latest, dir: Option<&Path>, last_phase: Option<usize>) -> Dashboard {
        Dashboard {
            hub,
            builder: EventBuilder::new(),
            monitors,
            dir: dir.map(Path::to_path_buf),
            last_phase,
        }
    }
}

impl Output for Dashboard {
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
        let records = self.monitors.records();
        let ev = self.builder.event(iv, phase, &records);
        if let Ok(json) = serde_json::to_string(&ev) {
            self.hub.publish(&json);
        }
        Flow::Continue
    }

    /// Findings are computed by analysis from the run directory: after each phase but the
    /// last they are computed on a blocking thread (never the runner's task or a load thread)
    /// and published when ready. This reads the run so far once per phase, so only while the
    /// run is shorter than [`PHASE_FINDINGS_UP_TO_S`].
    fn phase_end(&mut self, phase: &PhaseView) {
        let run_s = phase.agg.start_t + phase.elapsed_s;
        if self.last_phase == Some(phase.index) || run_s.is_nan() || run_s > PHASE_FINDINGS_UP_TO_S {
            return;
        }
        let (Some(dir), Ok(rt)) = (self.dir.clone(), tokio::runtime::Handle::try_current()) else {
            return;
        };
        let hub = self.hub.clone();
        let name = phase.name.to_string();
        rt.spawn_blocking(move || {
            if let Ok(s) = crate::analysis::summarize_dir(&dir) {
                hub.publish_summary(&summary_json(&s, Some(&name), false), false);
            }
        });
    }
}
