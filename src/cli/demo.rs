use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::host;
use super::run::{default_out, execute_outcome};
use super::{EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK};
use crate::analysis::Verdict;
use crate::rundir::RunStatus;
use crate::runner::RunnerOptions;

/// The demo suite: the voice-gateway seed's plan, run against the built-in target.
const DEMO_PLAN: &str = include_str!("../../examples/voice-gateway.yaml");

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The run directory to write (default: runs/<timestamp>-voice-gateway).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Length each phase is compressed to (the full suite takes 10.5 minutes).
    #[arg(long, default_value = "20s", value_parser = super::run::parse_duration_arg)]
    phase_length: std::time::Duration,
    /// No live progress line.
    #[arg(long, short)]
    quiet: bool,
}

/// Starts the built-in `voice-gateway` target on a free loopback port, runs the voice suite
/// against it (each phase compressed), writes the run directory and prints the summary. Exits 0
/// when the suite ran, whatever its verdict: the verdict is the demo's result, not an error.
pub fn demo(a: DemoArgs) -> u8 {
    let Some(config) = stampede_target::profile("voice-gateway") else {
        eprintln!("error: the built-in voice-gateway profile is missing");
        return EXIT_FAILED;
    };
    // The target runs on its own runtime and threads, like a separate server would.
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server_thread = std::thread::spawn(move || {
        let rt = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
        {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e.to_string()));
                return;
            }
        };
        rt.block_on(async move {
            match stampede_target::start(config, "127.0.0.1:0".parse().expect("loopback address")).await {
                Ok(server) => {
                    let _ = tx.send(Ok(server.url()));
                    let _ = stop_rx.await;
                    server.shutdown().await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                }
            }
        });
    });
    let url = match rx.recv() {
        Ok(Ok(url)) => url,
        Ok(Err(e)) => {
            eprintln!("error: the built-in target did not start: {e}");
            return EXIT_FAILED;
        }
        Err(_) => {
            eprintln!("error: the built-in target did not start");
            return EXIT_FAILED;
        }
    };
    outln!("built-in target `voice-gateway` listening on {url}");
    let env = |k: &str| std::env::var(k).ok().filter(|_| k != "BASE_URL");
    let opts = stampede_plan::LoadOptions {
        vars: vec![("BASE_URL".into(), url.clone())],
        env: &env,
    };
    let mut plan = match stampede_plan::load_str(
        DEMO_PLAN,
        "examples/voice-gateway.yaml",
        std::path::Path::new("examples"),
        &opts,
    ) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    let mut notes = vec![format!(
        "demo: run against the built-in `voice-gateway` target at {url}"
    )];
    notes.extend(stampede_plan::adjust::compress(&mut plan, a.phase_length));
    if let Err(e) = add_demo_monitors(&mut plan, &url) {
        eprintln!("error: {e}");
        return EXIT_FAILED;
    }
    let out = a.out.unwrap_or_else(|| default_out(&plan.name));
    let opts = RunnerOptions {
        plan_file: "examples/voice-gateway.yaml".into(),
        phases: (0..plan.phases.len()).collect(),
        out,
        workers: host::cores(),
        segment: crate::rundir::Segment::WHOLE,
        start_at: None,
        plan_sha256: None,
        share_dir: None,
        seed: 1,
        progress: !a.quiet,
        notes,
        http_debug: None,
        note: None,
    };
    let outcome = execute_outcome(Arc::new(plan), opts);
    let _ = stop_tx.send(());
    let _ = server_thread.join();
    match outcome {
        Err(code) => code,
        Ok(o) if o.status == RunStatus::Interrupted => EXIT_INTERRUPTED,
        Ok(o) => {
            if o.summary.verdict == Verdict::Failed {
                outln!(
                    "The demo target saturates by construction (8 workers, ~55 concurrent calls): the peak phase is meant to fail its targets, as in the seed report."
                );
            }
            EXIT_OK
        }
    }
}

/// Families of the built-in target's `/metrics` the demo keeps: pools, queues, rejections,
/// cache, in-flight requests and the process's CPU and memory.
const DEMO_INCLUDE: &str = "^(stampede_target_(service_(busy_workers|max_workers|queue_depth|rejected_total)|connection_pool_(in_use|max)|in_flight_requests|cache_(hits|misses)_total)|process_cpu_seconds_total|process_resident_memory_bytes)$";

/// The demo watches the server side the way a user's plan would: the target's `/metrics` (its
/// 8 PHP workers saturate in the peak phase) and this host. Recorded in `plan.json` too.
fn add_demo_monitors(plan: &mut stampede_plan::Plan, url: &str) -> Result<(), String> {
    let metrics = format!("{url}/metrics");
    let (origin, path) = stampede_plan::parse_origin(&metrics)?;
    let include = stampede_plan::Regex::new(DEMO_INCLUDE).map_err(|e| e.to_string())?;
    let interval = std::time::Duration::from_secs(1);
    plan.monitors = vec![
        stampede_plan::Monitor {
            name: "target".into(),
            interval,
            kind: stampede_plan::MonitorKind::Prometheus {
                origin,
                path,
                include: vec![stampede_plan::SeriesFilter::Regex(include)],
                labels: vec![],
            },
        },
        stampede_plan::Monitor {
            name: "host".into(),
            interval,
            kind: stampede_plan::MonitorKind::Host,
        },
    ];
    if let Some(obj) = plan.redacted.as_object_mut() {
        obj.insert(
            "monitors".into(),
            serde_json::json!([
                { "name": "target", "prometheus": metrics, "include": [format!("/{DEMO_INCLUDE}/")] },
                { "host": true }
            ]),
        );
    }
    Ok(())
}
