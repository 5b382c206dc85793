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
    /// The run directory of the first run, whose report tells the whole story (default:
    /// runs/<timestamp>-voice-gateway); the two update runs go beside it (`DIR-quick-wins`,
    /// `DIR-upgrade`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Length each phase is compressed to (the full suite takes 10.5 minutes per run).
    #[arg(long, default_value = "15s", value_parser = super::run::parse_duration_arg)]
    phase_length: std::time::Duration,
    /// No live progress line.
    #[arg(long, short)]
    quiet: bool,
    /// The language of the reports (`en`, `de`): each run's and the story's.
    #[arg(long, default_value = "en", value_parser = super::report::parse_lang)]
    lang: crate::report::lang::Lang,
}

/// One chapter of the voice seed's story: the system as configured, and why this run exists.
struct Chapter {
    /// The run's note (`stampede run --note`), the title of its update section.
    note: &'static str,
    /// Beside the first run's directory: `<out><suffix>`.
    suffix: &'static str,
    /// The built-in target as reconfigured for this chapter.
    configure: fn(&mut stampede_target::Config),
}

/// The seed's three runs: the suite as found, after the quick wins (more PHP workers, the
/// crashing workers fixed), after the server upgrade (more cores, so more workers again).
const CHAPTERS: &[Chapter] = &[
    Chapter {
        note: "Initial suite: PHP-FPM 8 workers",
        suffix: "",
        configure: |_| {},
    },
    Chapter {
        note: "Quick wins: PHP-FPM workers 8 → 12, crashing workers fixed",
        suffix: "-quick-wins",
        configure: |c| {
            set_workers(c, 12);
            c.endpoints.iter_mut().for_each(|e| e.errors = None);
        },
    },
    Chapter {
        note: "Server upgrade: 10 → 14 cores, PHP-FPM workers 12 → 17",
        suffix: "-upgrade",
        configure: |c| {
            set_workers(c, 17);
            c.endpoints.iter_mut().for_each(|e| e.errors = None);
        },
    },
];

fn set_workers(c: &mut stampede_target::Config, n: usize) {
    c.services.iter_mut().for_each(|s| s.workers = n);
}

/// Tells the voice seed's story on the built-in `voice-gateway` target: the suite (each phase
/// compressed) against the target as configured, then against it reconfigured with the quick
/// wins, then with more cores; each run noted; the first run's report ends with one Update
/// section per later run (before/after tables, findings gone and new, the new capacity
/// estimate). Exits 0 when the story ran, whatever the verdicts: they are the demo's result.
pub fn demo(a: DemoArgs) -> u8 {
    let mut first: Option<PathBuf> = None;
    let mut later: Vec<String> = Vec::new();
    for (i, chapter) in CHAPTERS.iter().enumerate() {
        let Some(mut config) = stampede_target::profile("voice-gateway") else {
            eprintln!("error: the built-in voice-gateway profile is missing");
            return EXIT_FAILED;
        };
        (chapter.configure)(&mut config);
        outln!("\n== {} of {}: {} ==", i + 1, CHAPTERS.len(), chapter.note);
        let out = match (&first, &a.out) {
            (Some(f), _) => PathBuf::from(format!("{}{}", f.display(), chapter.suffix)),
            (None, Some(o)) => o.clone(),
            (None, None) => default_out("voice-gateway"),
        };
        match run_chapter(config, chapter.note, &out, &a) {
            Ok(()) => {}
            Err(code) => return code,
        }
        match &first {
            None => first = Some(out),
            Some(_) => later.push(out.display().to_string()),
        }
    }
    let Some(first) = first else { return EXIT_FAILED };
    let mut report = match super::report::with_updates(
        &first,
        &later,
        super::pick::parse_tolerance(crate::analysis::compare::DEFAULT_TOLERANCE).unwrap_or(5.0),
    ) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    };
    report.lang = a.lang;
    match crate::report::write_report_files(&first, &report) {
        Ok((md, html)) => {
            outln!("\nthe story in one report, with {} update sections:", later.len());
            outln!("report: {}", md.display());
            outln!("report: {}", html.display());
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_FAILED;
        }
    }
    outln!(
        "The first run's target saturates by construction (8 workers, ~55 concurrent calls): its peak phase is meant to fail its targets, as in the seed report."
    );
    EXIT_OK
}

/// Starts the target as configured on a free loopback port, runs the suite against it into
/// `out` with `note`, stops the target.
fn run_chapter(config: stampede_target::Config, note: &str, out: &std::path::Path, a: &DemoArgs) -> Result<(), u8> {
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
            return Err(EXIT_FAILED);
        }
        Err(_) => {
            eprintln!("error: the built-in target did not start");
            return Err(EXIT_FAILED);
        }
    };
    outln!("built-in target `voice-gateway` listening on {url}");
    let outcome = run_suite(&url, note, out, a);
    let _ = stop_tx.send(());
    let _ = server_thread.join();
    match outcome? {
        o if o.status == RunStatus::Interrupted => Err(EXIT_INTERRUPTED),
        o => {
            if o.summary.verdict == Verdict::Failed {
                outln!("verdict: failed (the demo goes on: a failed target is the finding)");
            }
            Ok(())
        }
    }
}

/// The suite against `url`, compressed, with the demo's monitors.
fn run_suite(url: &str, note: &str, out: &std::path::Path, a: &DemoArgs) -> Result<crate::runner::RunOutcome, u8> {
    let env = |k: &str| std::env::var(k).ok().filter(|_| k != "BASE_URL");
    let opts = stampede_plan::LoadOptions {
        vars: vec![("BASE_URL".into(), url.to_string())],
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
            return Err(EXIT_INVALID);
        }
    };
    let mut notes = vec![format!(
        "demo: run against the built-in `voice-gateway` target at {url}"
    )];
    notes.extend(stampede_plan::adjust::compress(&mut plan, a.phase_length));
    if let Err(e) = add_demo_monitors(&mut plan, url) {
        eprintln!("error: {e}");
        return Err(EXIT_FAILED);
    }
    let opts = RunnerOptions {
        plan_file: "examples/voice-gateway.yaml".into(),
        phases: (0..plan.phases.len()).collect(),
        out: out.to_path_buf(),
        workers: host::cores(),
        segment: crate::rundir::Segment::WHOLE,
        start_at: None,
        plan_sha256: None,
        share_dir: None,
        seed: 1,
        progress: !a.quiet,
        notes,
        http_debug: None,
        note: Some(note.to_string()),
        remote: Vec::new(),
    };
    execute_outcome(Arc::new(plan), opts, a.lang)
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
