use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::report::{load, render, write_format, Format, ReportError};

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
    let report = match load(&a.run_dir) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                ReportError::RunDir(_) => EXIT_INVALID,
                ReportError::Io { .. } | ReportError::Json(_) => EXIT_FAILED,
            };
        }
    };
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
