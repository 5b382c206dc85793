//! `run --dashboard [ADDR]` (with `--dashboard-linger`) and `stampede dashboard RUN_DIR [ADDR]`:
//! the address is bound before anything else happens (an address in use is exit 2 before any
//! load), and the first line on stderr is the dashboard's URL.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK};
use crate::output::dashboard::{self, replay, DEFAULT_ADDR};

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// The run directory to replay.
    run_dir: PathBuf,
    /// Where to serve (default 127.0.0.1:5665).
    #[arg(value_name = "ADDR", default_value = DEFAULT_ADDR, value_parser = parse_addr)]
    addr: SocketAddr,
    /// Pace the events at this many times the run's own speed (e.g. 1 as it ran, 10 ten times
    /// faster); without it every event is sent at once.
    #[arg(long, value_name = "FACTOR", value_parser = parse_speed)]
    speed: Option<f64>,
}

pub(crate) fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.parse::<SocketAddr>()
        .map_err(|_| format!("`{s}` is not an address as IP:PORT (e.g. 127.0.0.1:5665, [::1]:5665)"))
}

fn parse_speed(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 10_000.0 => Ok(f),
        _ => Err(format!("`{s}` is not a speed factor between 0 and 10000")),
    }
}

/// The live options `run` and `capacity` share (flattened into both): remote outputs and the
/// dashboard. In a capacity search each load level is a phase of both.
#[derive(Debug, Args)]
pub struct LiveArgs {
    /// Push the numbers while the load runs: `prometheus-rw=URL` (Prometheus remote write 1.0)
    /// or `otlp=URL` (OTLP/HTTP), options after commas: `header=NAME:VALUE`, `label=NAME=VALUE`,
    /// `histograms=classic|native` (repeatable; docs/outputs.md).
    #[arg(long = "output", value_name = "KIND=URL[,OPTION]...", value_parser = crate::output::remote::Endpoint::parse)]
    pub outputs: Vec<crate::output::remote::Endpoint>,
    /// Serve a live dashboard at ADDR while the load runs (default 127.0.0.1:5665): the page at
    /// `/`, one JSON event per second at `/events`.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_ADDR, value_parser = parse_addr)]
    pub dashboard: Option<SocketAddr>,
    /// With --dashboard: keep serving after the run ends, until Ctrl-C.
    #[arg(long, requires = "dashboard")]
    pub dashboard_linger: bool,
}

impl LiveArgs {
    /// Binds the dashboard's address, if asked for, before anything is created or sent: an
    /// address in use is exit 2 before any load.
    pub(crate) fn open_dashboard(&self) -> Result<Option<LiveDashboard>, u8> {
        self.dashboard.map(|addr| open(addr, self.dashboard_linger)).transpose()
    }
}

/// A bound dashboard address for `run`, and whether it stays up after the run.
pub struct LiveDashboard {
    pub listener: std::net::TcpListener,
    pub url: String,
    pub linger: bool,
}

/// A live dashboard served on the run's runtime: what `run` and `capacity` share.
pub(crate) struct Serving {
    server: dashboard::Server,
    url: String,
    linger: bool,
}

impl LiveDashboard {
    /// Starts serving on the current runtime; if it cannot, a warning and no dashboard (the
    /// load goes on without it).
    pub(crate) fn serve(self) -> Option<Serving> {
        match dashboard::start(self.listener) {
            Ok(server) => Some(Serving {
                server,
                url: self.url,
                linger: self.linger,
            }),
            Err(e) => {
                eprintln!("warning: the dashboard cannot be served: {e}");
                None
            }
        }
    }
}

impl Serving {
    /// Feeds the dashboard from `session`'s seconds; `last_phase` (when known) is the phase
    /// after which the run's own summary, not a re-read, carries the findings.
    pub(crate) fn attach(&self, session: &mut crate::runner::Session, last_phase: Option<usize>) {
        let out = dashboard::Dashboard::new(
            self.server.hub.clone(),
            session.monitors_latest(),
            Some(session.dir()),
            last_phase,
        );
        session.add_output(Box::new(out));
    }

    /// The run's final summary, the page's last word.
    pub(crate) fn publish_final(&self, summary: &crate::analysis::Summary) {
        self.server
            .hub
            .publish_summary(&dashboard::summary_json(summary, None, true), true);
    }

    /// After the run: with `--dashboard-linger` (and a run that showed), serves until Ctrl-C;
    /// says how many slow clients were cut off.
    pub(crate) async fn end(self, shown: bool) {
        if self.linger && shown {
            eprintln!("dashboard: the run has ended; lingering at {} until Ctrl-C", self.url);
            super::live::wait_for_stop().await;
        }
        let st = self.server.hub.stats();
        if st.slow_dropped > 0 {
            eprintln!(
                "dashboard: {} slow client(s) were disconnected (the run did not wait for them)",
                st.slow_dropped
            );
        }
    }
}

/// Binds `addr` and prints its URL on stderr, or says why not (exit 2).
pub(crate) fn open(addr: SocketAddr, linger: bool) -> Result<LiveDashboard, u8> {
    let listener = dashboard::bind(addr).map_err(|e| {
        eprintln!("error: {e}\n  hint: another dashboard (stampede, k6) may be running there; pass another address, e.g. --dashboard 127.0.0.1:0 for a free port");
        EXIT_INVALID
    })?;
    let url = dashboard::url(&listener);
    eprintln!("dashboard: {url}");
    Ok(LiveDashboard { listener, url, linger })
}

/// `stampede dashboard RUN_DIR [ADDR]`: serves the finished run until Ctrl-C.
pub fn dashboard(a: DashboardArgs) -> u8 {
    if let Err(e) = replay::check(&a.run_dir) {
        eprintln!("error: {}: not a run directory: {e}", a.run_dir.display());
        return EXIT_INVALID;
    }
    let live = match open(a.addr, true) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_INVALID;
        }
    };
    rt.block_on(async move {
        let server = match dashboard::start(live.listener) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot serve the dashboard: {e}");
                return EXIT_INVALID;
            }
        };
        let hub = server.hub.clone();
        let dir = a.run_dir.clone();
        tokio::select! {
            r = replay::replay(&dir, &hub, a.speed) => match r {
                Ok(done) => {
                    let skipped = if done.skipped > 0 {
                        format!(" ({} unreadable lines passed over)", done.skipped)
                    } else {
                        String::new()
                    };
                    eprintln!(
                        "dashboard: replayed {} seconds of {}{skipped}; serving {} until Ctrl-C",
                        done.events,
                        dir.display(),
                        live.url
                    );
                    super::live::wait_for_stop().await;
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", dir.display());
                    return EXIT_INVALID;
                }
            },
            _ = super::live::wait_for_stop() => {}
        }
        drop(server);
        EXIT_OK
    })
}
