use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::pick::{distinct, load_finished, locate, parse_tolerance};
use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::report::lang::Lang;
use crate::report::{build, load, render, update, write_format, Format, Report, ReportError};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum FormatArg {
    Md,
    Html,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run directory written by `stampede run`.
    run_dir: PathBuf,
    /// md (with SVG charts in charts/ beside it), html (one self-contained file), json
    /// (`stampede.report/v1`) or junit (a testcase per threshold).
    #[arg(long, short, value_enum, default_value = "md")]
    format: FormatArg,
    /// Write here instead of stdout. Markdown without -o goes to RUN_DIR/report.md, since its
    /// charts need a directory.
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// A later run of the same system (repeatable, in order): the report gains an "Update"
    /// section per run, titled with its note, comparing it with the run before it. A run
    /// directory, or a run id under ./runs.
    #[arg(long = "update", value_name = "RUN")]
    updates: Vec<String>,
    /// In the update sections: significant changes smaller than this count as unchanged.
    #[arg(long, value_name = "PERCENT", default_value = crate::analysis::compare::DEFAULT_TOLERANCE, value_parser = parse_tolerance)]
    tolerance: f64,
    /// The language of Markdown and HTML: en (default) or de. JSON and JUnit stay English.
    #[arg(long, default_value = "en", value_parser = parse_lang)]
    lang: Lang,
}

/// `--lang`: a known report language, or an error naming the known ones (clap exits 2).
pub(crate) fn parse_lang(s: &str) -> Result<Lang, String> {
    Lang::parse(s).map_err(|e| e.to_string())
}

/// The report of `dir` with one update section per later run; every run must be finished and
/// none given twice.
pub(crate) fn with_updates(dir: &std::path::Path, later: &[String], tolerance: f64) -> Result<Report, String> {
    let runs_dir = std::path::Path::new(super::run::RUNS_DIR);
    let mut dirs = vec![dir.to_path_buf()];
    for u in later {
        dirs.push(locate(u, runs_dir)?);
    }
    let analyses = dirs.iter().map(|d| load_finished(d)).collect::<Result<Vec<_>, _>>()?;
    let pairs: Vec<(&std::path::Path, &crate::analysis::Analysis)> =
        dirs.iter().map(|d| d.as_path()).zip(analyses.iter()).collect();
    distinct(&pairs)?;
    let refs: Vec<&crate::analysis::Analysis> = analyses.iter().collect();
    let updates = update::updates(&refs, tolerance);
    let mut report = build(analyses.into_iter().next().expect("the report's own run"));
    report.updates = updates;
    Ok(report)
}

/// Renders a report from the run directory alone. Exit 0 when the report was written (the
/// verdict is in the report), 2 when the directory is not a run, 1 when the output cannot be
/// written.
pub fn report(a: ReportArgs) -> u8 {
    let format = match a.format {
        FormatArg::Md => Format::Markdown,
        FormatArg::Html => Format::Html,
        FormatArg::Json => Format::Json,
        FormatArg::Junit => Format::Junit,
    };
    let loaded = if a.updates.is_empty() {
        load(&a.run_dir)
    } else {
        match with_updates(&a.run_dir, &a.updates, a.tolerance) {
            Ok(r) => Ok(r),
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        }
    };
    let mut report = match loaded {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                ReportError::RunDir(_) => EXIT_INVALID,
                ReportError::Io { .. } | ReportError::Json(_) => EXIT_FAILED,
            };
        }
    };
    report.lang = a.lang;
    let out = match (a.output, format) {
        (Some(p), _) => p,
        (None, Format::Markdown) => a.run_dir.join("report.md"),
        (None, f) => {
            return match render(&report, f) {
                Ok(text) => {
                    out!("{text}");
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    EXIT_FAILED
                }
            };
        }
    };
    match write_format(&report, format, &out) {
        Ok(()) => {
            outln!("{}", out.display());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
