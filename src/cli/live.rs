//! What `run`, `demo` and `capacity` share around a live run: the runtime, the host facts for
//! `meta.json`, and the signals. The first Ctrl-C, SIGTERM or SIGHUP stops the run gracefully
//! (no new iterations, in-flight requests get 2 s, results are kept and summarised, exit 130);
//! a second one, or the 2 s passing, cancels what is still in flight. SIGTERM is what
//! Kubernetes, `docker stop`, systemd, `timeout` and CI cancellation send, and SIGHUP what a
//! closed terminal sends: both must keep the results like Ctrl-C does.

use std::future::Future;
use std::time::Duration;

use super::{host, EXIT_INVALID};
use crate::engine::Controls;
use crate::runner::{HostFacts, RunOutcome};

/// Runs `run` on a fresh runtime with signal handling (`interrupted` is printed on the first
/// signal), then `then` on the run's result on the same runtime once the run's signal
/// handling has ended: what a dashboard that lingers after the run needs (its server
/// stays up while `then` runs, and a Ctrl-C then is [`wait_for_stop`]'s, not the run's).
/// `Err(EXIT_INVALID)` (the environment) when the runtime cannot start.
pub fn with_run_runtime_then<T, U, F, G>(
    interrupted: &'static str,
    run: impl FnOnce(Controls, HostFacts) -> F,
    then: impl FnOnce(T) -> G,
) -> Result<U, u8>
where
    F: Future<Output = T>,
    G: Future<Output = U>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("error: cannot start the runtime: {e}");
            EXIT_INVALID
        })?;
    let controls = Controls::default();
    let facts = HostFacts {
        host: host::hostname(),
        cores: host::cores(),
        memory_bytes: host::memory_bytes(),
        now: host::now_rfc3339(),
    };
    Ok(rt.block_on(async {
        let c = controls.clone();
        let signals = tokio::spawn(async move {
            let Ok(mut stop) = StopSignals::new() else {
                return;
            };
            stop.next().await;
            eprintln!("\ninterrupted: {interrupted} (Ctrl-C again to stop now)");
            c.stop.cancel();
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                _ = stop.next() => {}
            }
            c.kill.cancel();
        });
        let r = run(controls, facts).await;
        signals.abort();
        then(r).await
    }))
}

/// Waits for Ctrl-C, SIGTERM or SIGHUP (at once when signals cannot be watched, so nothing
/// waits forever).
pub async fn wait_for_stop() {
    match StopSignals::new() {
        Ok(mut s) => s.next().await,
        Err(e) => eprintln!("warning: cannot watch for Ctrl-C ({e}); not waiting"),
    }
}

/// Ctrl-C, and on Unix SIGTERM and SIGHUP, as one stream of "stop" requests.
struct StopSignals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn new() -> std::io::Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                term: signal(SignalKind::terminate())?,
                hup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Waits for the next signal (pending forever if signals cannot be watched).
    async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            r = tokio::signal::ctrl_c() => if r.is_err() { std::future::pending::<()>().await },
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
        #[cfg(not(unix))]
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await
        }
    }
}

/// Writes the run's reports into its directory from the run's own analysis, and the CI job's
/// summary (`$GITHUB_STEP_SUMMARY`) when set. A report that
/// cannot be written does not undo the run: it is a warning, and `None`.
pub fn write_reports(
    outcome: &RunOutcome,
    lang: crate::report::lang::Lang,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let mut report = crate::report::build(outcome.analysis.clone());
    report.lang = lang;
    crate::report::append_step_summary(&report);
    match crate::report::write_report_files(&outcome.dir, &report) {
        Ok(paths) => Some(paths),
        Err(e) => {
            eprintln!("warning: the report was not written: {e}");
            None
        }
    }
}

/// Names on stderr what the run directory lacks (a disk that filled); `true` when it lacks
/// anything, which makes the command exit 2 after it has shown what was measured.
pub fn incomplete(outcome: &RunOutcome) -> bool {
    for e in &outcome.unwritten {
        eprintln!("error: the run directory is incomplete: {e}");
    }
    !outcome.unwritten.is_empty()
}
