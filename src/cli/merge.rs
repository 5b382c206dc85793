//! `stampede merge DIR... --out OUT`: the shares of a distributed run as one run directory,
//! judged as one run. The merge itself is the run directory's (`stampede_rundir::merge`); here
//! are the checks' exit code, the summary and reports of the merged run, and the one rename
//! that makes `OUT` appear complete.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::analysis::{analyze_dir, Verdict};
use crate::report::terminal::render_summary;
use crate::rundir::merge::{check, merge as merge_shares, Staging};

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The run directory of every share (`stampede run --segment I/N`), in any order.
    #[arg(required = true, value_name = "DIR")]
    dirs: Vec<PathBuf>,
    /// The merged run directory to write (it must not exist).
    #[arg(long, value_name = "OUT")]
    out: PathBuf,
    /// Wait up to this long for every share to finish (its meta.json no longer `running`), e.g.
    /// when started beside the shares (the Kubernetes merge Job).
    #[arg(long, value_name = "DURATION", value_parser = super::run::parse_duration_arg)]
    wait: Option<std::time::Duration>,
}

/// Waits until every directory holds a finished run, polling every 2 s; names those that have
/// not when the time is up.
fn wait_for(dirs: &[PathBuf], limit: std::time::Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let pending: Vec<String> = dirs
            .iter()
            .filter(|d| crate::rundir::read_meta(d).map_or(true, |m| m.status == crate::rundir::RunStatus::Running))
            .map(|d| d.display().to_string())
            .collect();
        if pending.is_empty() {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(format!(
                "after waiting {} s, these shares have not finished: {}",
                limit.as_secs(),
                pending.join(", ")
            ));
        }
        std::thread::sleep(std::time::Duration::from_secs(2));
    }
}

/// Checks the shares, merges them, writes the merged run's summary and reports, and exits as
/// `run` would have for the whole: 0 passed, 1 a threshold failed on the merged numbers, 2
/// inputs that are not one complete run (nothing written).
pub fn merge(a: MergeArgs) -> u8 {
    match merged(&a) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_INVALID
        }
    }
}

fn merged(a: &MergeArgs) -> Result<u8, Box<dyn std::error::Error>> {
    if let Some(limit) = a.wait {
        wait_for(&a.dirs, limit)?;
    }
    let shares = check(&a.dirs)?;
    let staging = Staging::create(&a.out)?;
    let result = merge_shares(&shares, staging.dir())?;
    for w in &result.warnings {
        eprintln!("warning: {w}");
    }
    // The summary is read back from the merged directory, as after a run: the thresholds are
    // judged on the merged seconds.
    let analysis = analyze_dir(staging.dir())?;
    crate::rundir::write_json_atomic(&staging.dir().join("summary.json"), &analysis.summary)?;
    let report = crate::report::build(analysis.clone());
    let reports = crate::report::write_report_files(staging.dir(), &report);
    let out = staging.commit()?;
    out!("{}", render_summary(&analysis.summary));
    outln!("merged {} shares into run directory: {}", shares.len(), out.display());
    outln!("summary: {}", out.join("summary.json").display());
    match reports {
        Ok(_) => {
            outln!("report: {}", out.join("report.md").display());
            outln!("report: {}", out.join("report.html").display());
        }
        Err(e) => eprintln!("warning: the report was not written: {e}"),
    }
    crate::report::append_step_summary(&report);
    super::run::register(&out);
    Ok(if analysis.summary.verdict == Verdict::Failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}
