//! Monitors: server-side samples taken during the run, on the run's clock (seconds since the
//! run started), written to `monitors.jsonl` beside the client-side intervals.
//!
//! One task per monitor, each on its own interval, all feeding one writer. A monitor that fails
//! (unreachable, refused, bad credentials) is reported once, on stderr and as an `error` record,
//! and retried at its next tick: monitoring never stops or slows the load.
//!
//! | file | kind |
//! | --- | --- |
//! | `prom.rs` | Prometheus text-format parser |
//! | `prometheus.rs` | scrape a `/metrics` URL, counters → rates |
//! | `host.rs` | this machine from `/proc` |
//! | `process.rs` | processes by name or pid file, restarts |
//! | `postgres.rs` | PostgreSQL through `tokio-postgres` |
//! | `redis.rs` | Redis `INFO` through a tiny RESP client |
//! | `latest.rs` | each monitor's latest sample, for live outputs |

pub mod generator;
mod host;
pub mod latest;
mod postgres;
mod process;
pub mod prom;
pub(crate) mod prometheus;
mod redis;

use std::time::Duration;

use stampede_plan::{Monitor, MonitorKind};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use stampede_rundir::monitor::{parse_records, MonitorRecord, Series};

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot connect to {what}: {reason}")]
    Connect { what: String, reason: String },
    #[error("{what} did not answer within {secs:.1}s")]
    Timeout { what: String, secs: f64 },
    #[error("{what}: {reason}")]
    Failed { what: String, reason: String },
    #[error("{what}: authentication failed: {reason}")]
    Auth { what: String, reason: String },
}

/// A monitor's live state (connections, previous counter values for rates).
enum Source {
    Prometheus(prometheus::Prometheus),
    Host(host::Host),
    Process(process::Processes),
    Postgres(postgres::Postgres),
    Redis(redis::Redis),
}

impl Source {
    fn new(m: &Monitor) -> Source {
        match &m.kind {
            MonitorKind::Prometheus {
                origin,
                path,
                include,
                labels,
            } => Source::Prometheus(prometheus::Prometheus::new(
                origin.clone(),
                path.clone(),
                include.clone(),
                labels.clone(),
            )),
            MonitorKind::Host => Source::Host(host::Host::new()),
            MonitorKind::Process(sel) => Source::Process(process::Processes::new(sel.clone())),
            MonitorKind::Postgres { url } => Source::Postgres(postgres::Postgres::new(url.clone())),
            MonitorKind::Redis { url } => Source::Redis(redis::Redis::new(url.clone())),
        }
    }

    async fn sample(&mut self) -> Result<Series, MonitorError> {
        match self {
            Source::Prometheus(s) => s.sample().await,
            Source::Host(s) => s.sample(),
            Source::Process(s) => s.sample(),
            Source::Postgres(s) => s.sample().await,
            Source::Redis(s) => s.sample().await,
        }
    }
}

/// The running monitors; [`Monitors::stop`] ends them and returns once every record is written.
pub struct Monitors {
    stop: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    writer: Option<tokio::task::JoinHandle<()>>,
}

/// Where records go (the run writer's `monitors.jsonl`); errors in writing are the sink's to
/// report (a full disk also stops the run through the interval writer).
pub trait RecordSink: Send + 'static {
    fn write(&mut self, rec: &MonitorRecord);
}

impl RecordSink for crate::rundir::MonitorLog {
    fn write(&mut self, rec: &MonitorRecord) {
        crate::rundir::MonitorLog::write(self, rec)
    }
}

impl Monitors {
    /// Starts every monitor on the current runtime. `clock` is the run's start.
    pub fn start(monitors: &[Monitor], clock: Instant, mut sink: impl RecordSink, quiet_errors: bool) -> Monitors {
        let stop = CancellationToken::new();
        let (tx, mut rx) = mpsc::channel::<MonitorRecord>(1024);
        let writer = (!monitors.is_empty()).then(|| {
            tokio::spawn(async move {
                while let Some(rec) = rx.recv().await {
                    sink.write(&rec);
                }
            })
        });
        let tasks = monitors
            .iter()
            .map(|m| {
                let m = m.clone();
                let tx = tx.clone();
                let stop = stop.clone();
                tokio::spawn(run_one(m, clock, tx, stop, quiet_errors))
            })
            .collect();
        Monitors { stop, tasks, writer }
    }

    pub async fn stop(mut self) {
        self.stop.cancel();
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
        if let Some(w) = self.writer.take() {
            let _ = w.await;
        }
    }
}

/// How long one sample may take before it counts as a failure.
fn sample_timeout(interval: Duration) -> Duration {
    interval.clamp(Duration::from_secs(1), Duration::from_secs(5))
}

async fn run_one(m: Monitor, clock: Instant, tx: mpsc::Sender<MonitorRecord>, stop: CancellationToken, quiet: bool) {
    let mut source = Source::new(&m);
    let mut tick = tokio::time::interval(m.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let timeout = sample_timeout(m.interval);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let started = Instant::now();
        let t = started.saturating_duration_since(clock).as_secs_f64();
        let result = tokio::select! {
            _ = stop.cancelled() => break,
            r = tokio::time::timeout(timeout, source.sample()) => r.unwrap_or_else(|_| Err(MonitorError::Timeout {
                what: m.name.clone(),
                secs: timeout.as_secs_f64(),
            })),
        };
        let rec = match result {
            Ok(series) => {
                if failing && !quiet {
                    eprintln!("monitor {}: sampling again", m.name);
                }
                failing = false;
                if series.is_empty() {
                    continue;
                }
                MonitorRecord {
                    t: round3(t),
                    monitor: m.name.clone(),
                    series,
                    error: None,
                }
            }
            Err(e) => {
                if failing {
                    continue;
                }
                failing = true;
                let msg = scrub(&m, &e.to_string());
                if !quiet {
                    eprintln!(
                        "monitor {}: {msg} (retrying every {:?}; the load goes on)",
                        m.name, m.interval
                    );
                }
                MonitorRecord {
                    t: round3(t),
                    monitor: m.name.clone(),
                    series: Series::new(),
                    error: Some(msg),
                }
            }
        };
        if tx.send(rec).await.is_err() {
            break;
        }
    }
}

/// One line about what a monitor samples, passwords hidden (for `stampede validate`).
pub fn describe(kind: &MonitorKind) -> String {
    match kind {
        MonitorKind::Prometheus { origin, path, .. } => format!(
            "prometheus {}://{}{path}",
            if origin.tls { "https" } else { "http" },
            origin.authority
        ),
        MonitorKind::Host => "host (CPU, load, memory, network)".into(),
        MonitorKind::Process(stampede_plan::ProcessSelector::Name(n)) => format!("processes named `{n}`"),
        MonitorKind::Process(stampede_plan::ProcessSelector::PidFile(p)) => {
            format!("the process in {}", p.display())
        }
        MonitorKind::Postgres { url } => format!("postgres {}", url.shown()),
        MonitorKind::Redis { url } => format!("redis {}", url.shown()),
    }
}

/// Removes a URL's password from a message, in case a driver quoted it.
fn scrub(m: &Monitor, msg: &str) -> String {
    let pw = match &m.kind {
        MonitorKind::Postgres { url } | MonitorKind::Redis { url } => url.password(),
        _ => None,
    };
    match pw {
        Some(p) if !p.is_empty() => msg.replace(&p, "***"),
        _ => msg.to_string(),
    }
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per-second rate of a cumulative counter between two readings; a counter that went down was
/// reset (a restarted process), so its new value is what accrued since.
pub(crate) fn rate(prev: Option<(f64, Instant)>, now: (f64, Instant)) -> Option<f64> {
    let (pv, pt) = prev?;
    let dt = now.1.saturating_duration_since(pt).as_secs_f64();
    if dt <= 0.0 {
        return None;
    }
    let d = if now.0 >= pv { now.0 - pv } else { now.0 };
    Some(d / dt)
}
