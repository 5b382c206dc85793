use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::analysis::{summarize_dir, Verdict};
use crate::report::terminal::render_summary;

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A run directory written by `stampede run`.
    run_dir: PathBuf,
    /// Print the `stampede.summary/v1` JSON instead of tables.
    #[arg(long)]
    json: bool,
}

/// Rebuilds the summary from the run directory alone. Exit code as for the run: 1 when a
/// threshold failed.
pub fn summary(a: SummaryArgs) -> u8 {
    let s = match summarize_dir(&a.run_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&s).unwrap_or_default());
    } else {
        out!("{}", render_summary(&s));
    }
    if s.verdict == Verdict::Failed {
        EXIT_FAILED
    } else {
        EXIT_OK
    }
}
