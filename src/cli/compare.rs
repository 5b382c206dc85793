use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::pick::{distinct, load_finished, locate, parse_tolerance};
use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::analysis::compare::{compare as compare_runs, Comparison};
use crate::history::Index;
use crate::report::compare::document;
use crate::report::{html, markdown, plain};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CompareFormat {
    Terminal,
    Md,
    Html,
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run before the change: a run directory, or a run id under --dir.
    run_a: Option<String>,
    /// The run after the change.
    run_b: Option<String>,
    /// Compare this run with the previous completed run of the same plan (in --dir, or else
    /// in the directory that holds RUN).
    #[arg(long, value_name = "RUN", conflicts_with_all = ["run_a", "run_b"])]
    previous: Option<String>,
    /// The runs directory that run ids and --previous look in (default: runs).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// terminal (aligned text), md, html (one self-contained page) or json (`stampede.compare/v1`).
    #[arg(long, short, value_enum, default_value = "terminal")]
    format: CompareFormat,
    /// The comparison as JSON (`stampede.compare/v1`); the same as --format json.
    #[arg(long)]
    json: bool,
    /// Write here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Exit 1 when any metric regressed significantly (beyond --tolerance): a CI gate.
    #[arg(long)]
    fail_on_regression: bool,
    /// Significant changes smaller than this are counted as unchanged: the noise between two
    /// runs of one system on a shared machine (docs/compare.md). 0% trusts the test alone.
    #[arg(long, value_name = "PERCENT", default_value = crate::analysis::compare::DEFAULT_TOLERANCE, value_parser = parse_tolerance)]
    tolerance: f64,
}

/// The two run directories to compare: as given, or a run and the one before it.
fn pick(a: &CompareArgs) -> Result<(PathBuf, PathBuf), String> {
    let default_dir = || PathBuf::from(super::run::RUNS_DIR);
    if let Some(run) = &a.previous {
        let runs_dir = match &a.dir {
            Some(d) => d.clone(),
            None if Path::new(run).is_dir() => Path::new(run)
                .canonicalize()
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .unwrap_or_else(default_dir),
            None => default_dir(),
        };
        let after = locate(run, &runs_dir)?;
        let id = after
            .canonicalize()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        let index = Index::open(&runs_dir).map_err(|e| e.to_string())?;
        index.refresh().map_err(|e| e.to_string())?;
        let previous = index.previous(&id).map_err(|_| {
            format!(
                "{run}: not a run in the history of {} (give --dir the runs directory that holds it)",
                runs_dir.display()
            )
        })?;
        return match previous {
            Some(p) => Ok((index.dir_of(&p.id), after)),
            None => Err(format!(
                "{run}: no earlier completed run of the same plan in {}, so nothing to compare it with",
                runs_dir.display()
            )),
        };
    }
    let runs_dir = a.dir.clone().unwrap_or_else(default_dir);
    match (&a.run_a, &a.run_b) {
        (Some(x), Some(y)) => Ok((locate(x, &runs_dir)?, locate(y, &runs_dir)?)),
        _ => Err("compare needs two runs (`stampede compare RUN_A RUN_B`) or one with --previous (`stampede compare --previous RUN`)".into()),
    }
}

/// What the comparison cannot show as a table, said on stderr when the output is not the
/// terminal text (which says it itself).
fn warn_unmatched(c: &Comparison) {
    let u = &c.unmatched;
    let mut parts = Vec::new();
    if !u.phases_only_before.is_empty() {
        parts.push(format!("phases only before: {}", u.phases_only_before.join(", ")));
    }
    if !u.phases_only_after.is_empty() {
        parts.push(format!("phases only after: {}", u.phases_only_after.join(", ")));
    }
    let steps = |v: &[crate::analysis::compare::PhaseStep]| {
        v.iter()
            .map(|s| format!("{}/{}", s.phase, s.step))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !u.steps_only_before.is_empty() {
        parts.push(format!("steps only before: {}", steps(&u.steps_only_before)));
    }
    if !u.steps_only_after.is_empty() {
        parts.push(format!("steps only after: {}", steps(&u.steps_only_after)));
    }
    if !parts.is_empty() {
        eprintln!("note: without a counterpart in the other run: {}", parts.join("; "));
    }
}

/// Compares two finished runs. Exit 2 on bad input (nothing written), 1 with
/// `--fail-on-regression` when a metric regressed significantly, else 0.
pub fn compare(a: CompareArgs) -> u8 {
    let fail = |e: String| {
        eprintln!("error: {e}");
        EXIT_INVALID
    };
    let (dir_a, dir_b) = match pick(&a) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let (before, after) = match (load_finished(&dir_a), load_finished(&dir_b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(e), _) | (_, Err(e)) => return fail(e),
    };
    if let Err(e) = distinct(&[(&dir_a, &before), (&dir_b, &after)]) {
        return fail(e);
    }
    let c = compare_runs(&before, &after, a.tolerance);
    if c.phases.is_empty() {
        let names = |x: &crate::analysis::Analysis| {
            let n: Vec<&str> = x.summary.phases.iter().map(|p| p.name.as_str()).collect();
            if n.is_empty() {
                "none measured".to_string()
            } else {
                n.join(", ")
            }
        };
        return fail(format!(
            "{} and {} have no phase in common, so nothing to compare (phases: {}; {})",
            dir_a.display(),
            dir_b.display(),
            names(&before),
            names(&after)
        ));
    }
    let format = if a.json { CompareFormat::Json } else { a.format };
    let text = match format {
        CompareFormat::Terminal => plain::render_document(&document(&c)),
        CompareFormat::Md => markdown::render_document(&document(&c), None),
        CompareFormat::Html => html::render_document(&document(&c)),
        CompareFormat::Json => match serde_json::to_string_pretty(&c) {
            Ok(j) => j + "\n",
            Err(e) => return fail(format!("the comparison cannot be written as JSON: {e}")),
        },
    };
    if format != CompareFormat::Terminal {
        warn_unmatched(&c);
    }
    match &a.output {
        Some(path) => {
            if let Err(e) = crate::rundir::write_atomic(path, text.as_bytes()) {
                return fail(e.to_string());
            }
            outln!("{}", path.display());
        }
        None => out!("{text}"),
    }
    if a.fail_on_regression && !c.regressions.is_empty() {
        eprintln!(
            "{} significant regression{} (--fail-on-regression)",
            c.regressions.len(),
            if c.regressions.len() == 1 { "" } else { "s" }
        );
        return EXIT_FAILED;
    }
    EXIT_OK
}
