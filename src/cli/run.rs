use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use super::dashboard::LiveDashboard;
use super::host;
use super::{load_plan, parse_var, EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK};
use crate::analysis::Verdict;
use crate::report::terminal::render_summary;
use crate::rundir::{RunStatus, Segment};
use crate::runner::{run_plan_with, RunOutcome, RunnerOptions};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The plan file (YAML).
    plan: PathBuf,
    /// Run only this phase (repeatable; plan order is kept).
    #[arg(long = "phase", value_name = "NAME")]
    phases: Vec<String>,
    /// Set a plan variable (overrides `vars:` and `${K}` from the environment).
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    vars: Vec<(String, String)>,
    /// The run directory to write (default: runs/<timestamp>-<plan name>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Load-generating threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Run share I of N of every phase (0-based), for distributed runs.
    #[arg(long, value_name = "I/N", value_parser = Segment::parse)]
    segment: Option<Segment>,
    /// Start at this instant (RFC 3339, e.g. 2026-12-02T07:00:00Z, or +DURATION, e.g. +30s)
    /// after every check: give every share of a distributed run the same time.
    #[arg(long, value_name = "TIME|+DURATION", value_parser = parse_start)]
    start_at: Option<std::time::SystemTime>,
    /// With --segment: write this share's run to DIR/share-I, and judge `abort_on_fail`
    /// thresholds on every share's numbers under DIR together (a directory all shares see).
    #[arg(long, value_name = "DIR", requires = "segment", conflicts_with = "out")]
    share_dir: Option<PathBuf>,
    /// Seed for the random choices of templates, think times and scenario mixes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Rehearse: compress every phase to at most this long (default 15s), keeping its shape.
    #[arg(long, value_name = "DURATION", num_args = 0..=1, default_missing_value = "15s", value_parser = parse_duration_arg)]
    quick: Option<std::time::Duration>,
    /// Multiply VU counts and arrival rates by this factor.
    #[arg(long, value_name = "FACTOR", value_parser = parse_factor)]
    load_scale: Option<f64>,
    /// Why this run exists, e.g. "Quick wins: workers 2→6" (stored in meta.json; shown in the
    /// summary, the report and `stampede runs`; the title of its section in `report --update`).
    #[arg(long, value_name = "TEXT", value_parser = parse_note)]
    note: Option<String>,
    /// No live progress line.
    #[arg(long, short)]
    quiet: bool,
    /// The language of the reports the run writes (`report.md`, `report.html`): en or de.
    #[arg(long, default_value = "en", value_parser = super::report::parse_lang)]
    lang: crate::report::lang::Lang,
    /// Print the first 10 requests and responses on stderr (heads; `=full`: bodies too, up to
    /// 2 KiB), with credentials, cookies and secret values masked.
    #[arg(long, value_name = "full", num_args = 0..=1, require_equals = true, default_missing_value = "heads", value_parser = ["heads", "full"])]
    http_debug: Option<String>,
    #[command(flatten)]
    live: super::dashboard::LiveArgs,
}

/// How many exchanges `--http-debug` prints.
const HTTP_DEBUG_EXCHANGES: usize = 10;
/// A note is one line of text: a report title and a column of `stampede runs`.
fn parse_note(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("the note is empty".into());
    }
    if t.chars().any(char::is_control) {
        return Err("the note must be one line of text (no line breaks or control characters)".into());
    }
    if t.chars().count() > 200 {
        return Err("the note is longer than 200 characters".into());
    }
    Ok(t.to_string())
}

pub(crate) fn parse_duration_arg(s: &str) -> Result<std::time::Duration, String> {
    let d = stampede_plan::parse_duration(s)?;
    if d.is_zero() {
        return Err("must be longer than 0".into());
    }
    Ok(d)
}

fn parse_factor(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f > 0.0 && f <= 1000.0 => Ok(f),
        _ => Err(format!("`{s}` is not a factor between 0 and 1000")),
    }
}

fn parse_start(s: &str) -> Result<std::time::SystemTime, String> {
    super::start_at::parse_start_at(s, std::time::SystemTime::now())
}

/// SHA-256 of the plan file (hex), which `stampede merge` compares across shares.
pub(crate) fn plan_sha256(path: &std::path::Path) -> Option<String> {
    use sha2::Digest as _;
    let bytes = std::fs::read(path).ok()?;
    Some(
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    )
}

fn slug(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "run".into()
    } else {
        s
    }
}

/// Picks `runs/<timestamp>-<name>`, adding `-2`, `-3`… if it exists.
pub fn default_out(name: &str) -> PathBuf {
    let base = PathBuf::from("runs").join(format!("{}-{}", host::now_compact(), slug(name)));
    let mut out = base.clone();
    let mut n = 2;
    while out.exists() {
        out = PathBuf::from(format!("{}-{n}", base.display()));
        n += 1;
    }
    out
}

pub fn run(a: RunArgs) -> u8 {
    let mut plan = match load_plan(&a.plan, &a.vars) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let mut notes = Vec::new();
    if let Some(max) = a.quick {
        notes.extend(stampede_plan::adjust::compress(&mut plan, max));
    }
    if let Some(f) = a.load_scale {
        notes.extend(stampede_plan::adjust::scale_load(&mut plan, f));
    }
    if plan.phases.is_empty() {
        eprintln!(
            "error: {}: the plan has no `phases`, so there is nothing to run\n  hint: add a phase (e.g. `phases: [{{ name: smoke, scenario: NAME, vus: 1, duration: 10s }}]`), or use `stampede capacity`",
            a.plan.display()
        );
        return EXIT_INVALID;
    }
    let mut phases = Vec::new();
    for want in &a.phases {
        match plan.phases.iter().position(|p| &p.name == want) {
            Some(i) => phases.push(i),
            None => {
                let names: Vec<_> = plan.phases.iter().map(|p| p.name.as_str()).collect();
                eprintln!(
                    "error: --phase {want}: the plan has no such phase (it has: {})",
                    names.join(", ")
                );
                return EXIT_INVALID;
            }
        }
    }
    phases.sort_unstable();
    phases.dedup();
    if phases.is_empty() {
        phases = (0..plan.phases.len()).collect();
    }
    let segment = a.segment.unwrap_or(Segment::WHOLE);
    let out = match (&a.out, &a.share_dir) {
        (Some(out), _) => out.clone(),
        (None, Some(dir)) => crate::output::peers::share_dir(dir, segment.index),
        (None, None) => default_out(&plan.name),
    };
    let opts = RunnerOptions {
        plan_file: a.plan.display().to_string(),
        phases,
        out,
        workers: a.workers.unwrap_or_else(host::cores).max(1),
        segment,
        start_at: a.start_at,
        plan_sha256: plan_sha256(&a.plan),
        share_dir: a.share_dir.clone(),
        seed: a.seed,
        progress: !a.quiet,
        notes,
        http_debug: a.http_debug.as_deref().map(|mode| {
            Arc::new(crate::http::debug::HttpDebug::new(
                mode == "full",
                HTTP_DEBUG_EXCHANGES,
                plan.secrets.clone(),
                Box::new(std::io::stderr()),
            ))
        }),
        note: a.note.clone(),
        remote: a.live.outputs.clone(),
    };
    let dash = match a.live.open_dashboard() {
        Ok(d) => d,
        Err(code) => return code,
    };
    if let Some(at) = a.start_at {
        let wait = at.duration_since(std::time::SystemTime::now()).unwrap_or_default();
        eprintln!(
            "segment {}: starting at {} (in {:.1} s)",
            opts.segment,
            crate::runner::rfc3339(at),
            wait.as_secs_f64()
        );
    }
    execute(Arc::new(plan), opts, dash, a.lang)
}

/// Runs with Ctrl-C handling and prints the outcome; returns the exit code.
fn execute(
    plan: Arc<stampede_plan::Plan>,
    opts: RunnerOptions,
    dash: Option<LiveDashboard>,
    lang: crate::report::lang::Lang,
) -> u8 {
    match execute_outcome_with(plan, opts, dash, lang) {
        Err(code) => code,
        Ok(outcome) => match (outcome.status, outcome.summary.verdict) {
            (RunStatus::Interrupted, _) => EXIT_INTERRUPTED,
            (_, Verdict::Failed) => EXIT_FAILED,
            _ => EXIT_OK,
        },
    }
}

/// The runs directory `stampede runs` lists by default.
pub const RUNS_DIR: &str = "runs";

/// Adds the run to `runs/index.sqlite` when its directory is directly under `runs/` (a run
/// written elsewhere with `--out` is not part of that history). Failures only warn: the index
/// is a cache that `stampede runs` rebuilds from the directories.
pub(crate) fn register(dir: &std::path::Path) {
    let runs = std::path::Path::new(RUNS_DIR);
    let (Ok(runs), Some(Ok(parent))) = (runs.canonicalize(), dir.parent().map(|p| p.canonicalize())) else {
        return;
    };
    if parent != runs {
        return;
    }
    if let Err(e) = crate::history::Index::open(&runs).and_then(|i| i.register(dir)) {
        eprintln!("warning: the run was not added to the run history: {e}");
    }
}

/// Runs with Ctrl-C handling, prints the summary and the paths, and returns the outcome (or
/// the exit code of a run that could not be made).
pub fn execute_outcome(
    plan: Arc<stampede_plan::Plan>,
    opts: RunnerOptions,
    lang: crate::report::lang::Lang,
) -> Result<RunOutcome, u8> {
    execute_outcome_with(plan, opts, None, lang)
}

/// [`execute_outcome`] with a live dashboard: served on the run's runtime from before the
/// first second to the end of the run (or, with `linger`, until Ctrl-C after it).
fn execute_outcome_with(
    plan: Arc<stampede_plan::Plan>,
    opts: RunnerOptions,
    dash: Option<LiveDashboard>,
    lang: crate::report::lang::Lang,
) -> Result<RunOutcome, u8> {
    let last_phase = opts.phases.last().copied();
    super::live::with_run_runtime_then(
        "finishing requests in flight",
        |controls, host| async move {
            let serving = dash.and_then(LiveDashboard::serve);
            let result = run_plan_with(plan, opts, host, controls, host::now_rfc3339, |session| {
                if let Some(s) = &serving {
                    s.attach(session, last_phase);
                }
            })
            .await;
            (result, serving)
        },
        |(result, serving)| async move {
            if let (Some(s), Ok(outcome)) = (&serving, &result) {
                s.publish_final(&outcome.summary);
            }
            let shown = show(result, lang);
            if let Some(s) = serving {
                s.end(shown.is_ok()).await;
            }
            shown
        },
    )?
}

/// Prints a run's outcome: the summary, the paths, the reports; registers it in the history.
fn show(
    result: Result<RunOutcome, crate::runner::RunError>,
    lang: crate::report::lang::Lang,
) -> Result<RunOutcome, u8> {
    match result {
        // The environment (an `--out` that exists, is read-only or full; no TLS set-up; no
        // thread): nothing was measured, and it is not a failed threshold.
        Err(e) => {
            eprintln!("error: {e}");
            Err(EXIT_INVALID)
        }
        Ok(outcome) => {
            out!("{}", render_summary(&outcome.summary));
            outln!("run directory: {}", outcome.dir.display());
            outln!("summary: {}", outcome.dir.join("summary.json").display());
            if let Some((md, html)) = super::live::write_reports(&outcome, lang) {
                outln!("report: {}", md.display());
                outln!("report: {}", html.display());
            }
            for shortfall in outcome
                .analysis
                .meta
                .outputs
                .iter()
                .filter_map(crate::output::remote::shortfall)
            {
                eprintln!("warning: {shortfall}");
            }
            register(&outcome.dir);
            if super::live::incomplete(&outcome) {
                return Err(EXIT_INVALID);
            }
            Ok(outcome)
        }
    }
}
