//! The command line: arguments in, exit code out. Thin on purpose: each command calls library
//! code, so tests can drive the same paths in-process.

/// `print!` without the panic: a closed pipe (`stampede run … | head`) or a full device must
/// not cost a run its reports or its exit code, so stdout errors are ignored.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// `println!` without the panic (see `out!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

mod alerts;
mod capacity;
mod compare;
mod dashboard;
mod demo;
mod export;
mod host;
mod import;
mod k8s;
mod live;
mod merge;
mod pick;
mod report;
pub mod run;
mod runs;
mod start_at;
mod summary;
mod target;
mod validate;

use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit codes (docs/cli.md): 0 passed, 1 a threshold failed, 2 bad input, 130 interrupted.
pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_INVALID: u8 = 2;
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Debug, Parser)]
#[command(
    name = "stampede",
    version,
    about = "Load tests that end in an answer: capacity, bottlenecks, and what changed."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a plan's phases in order, write the run directory, print the summary.
    Run(run::RunArgs),
    /// Check a plan without running it.
    Validate(validate::ValidateArgs),
    /// Print the summary of a run directory (also of one whose process was killed).
    Summary(summary::SummaryArgs),
    /// Serve the built-in simulated system (first line: `listening on http://ADDR`).
    Target(target::TargetArgs),
    /// Start the built-in target, run the demo suite against it, write the reports.
    Demo(demo::DemoArgs),
    /// Search the load level where the SLO breaks: how many users the system holds.
    Capacity(capacity::CapacityArgs),
    /// Render a report (md, html, json, junit) from a run directory.
    Report(report::ReportArgs),
    /// List the runs under a runs directory (indexed in its index.sqlite), or show one.
    Runs(runs::RunsArgs),
    /// Compare two runs per phase and step: avg, p50, p95, p99, throughput, error rate before →
    /// after, with whether each change is statistically significant.
    Compare(compare::CompareArgs),
    /// Merge the shares of a distributed run (`run --segment I/N`) into one run directory,
    /// judged as one run: histograms added second by second, thresholds on the merged data.
    Merge(merge::MergeArgs),
    /// Print the Kubernetes manifests of a distributed run: the plan in a ConfigMap, an Indexed
    /// Job of generators (one segment each, one start), and a Job merging their runs.
    K8s(k8s::K8sArgs),
    /// Write a plan from a HAR recording or a curl command line.
    Import(import::ImportArgs),
    /// Send a finished run to Prometheus (remote write) or an OTLP receiver, each second with
    /// the time it was measured.
    Export(export::ExportArgs),
    /// Print Prometheus alerting rules from a plan's thresholds and monitors, or from a run
    /// directory (warning levels from what it measured).
    Alerts(alerts::AlertsArgs),
    /// Serve the live dashboard of a finished run (a replay of its seconds) until Ctrl-C.
    Dashboard(dashboard::DashboardArgs),
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_INVALID } else { EXIT_OK };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let code = match cli.command {
        Command::Run(a) => run::run(a),
        Command::Validate(a) => validate::validate(a),
        Command::Summary(a) => summary::summary(a),
        Command::Target(a) => target::target(a),
        Command::Demo(a) => demo::demo(a),
        Command::Capacity(a) => capacity::capacity(a),
        Command::Report(a) => report::report(a),
        Command::Runs(a) => runs::runs(a),
        Command::Compare(a) => compare::compare(a),
        Command::Merge(a) => merge::merge(a),
        Command::K8s(a) => k8s::k8s(a),
        Command::Import(a) => import::run(a),
        Command::Export(a) => export::export_run(a),
        Command::Alerts(a) => alerts::alerts(a),
        Command::Dashboard(a) => dashboard::dashboard(a),
    };
    ExitCode::from(code)
}

/// `--var K=V`.
pub(crate) fn parse_var(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected K=V, got `{s}`")),
    }
}

/// Loads a plan for a command; prints the located error and gives exit code 2 on failure.
pub(crate) fn load_plan(path: &Path, vars: &[(String, String)]) -> Result<stampede_plan::Plan, u8> {
    let env = |k: &str| std::env::var(k).ok();
    let opts = stampede_plan::LoadOptions {
        vars: vars.to_vec(),
        env: &env,
    };
    stampede_plan::load_file(path, &opts).map_err(|e| {
        eprintln!("error: {e}");
        EXIT_INVALID
    })
}
