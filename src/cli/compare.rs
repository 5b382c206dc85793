use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK};
use crate::analysis::compare::compare as compare_runs;
use crate::analysis::summarize_dir;
use crate::report::compare::markdown;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run before the change.
    run_a: PathBuf,
    /// The run after the change.
    run_b: PathBuf,
}

/// Prints the comparison as Markdown. Exit 2 when either directory is not a run.
pub fn compare(a: CompareArgs) -> u8 {
    let load = |p: &PathBuf| {
        summarize_dir(p).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_INVALID
        })
    };
    let (sa, sb) = match (load(&a.run_a), load(&a.run_b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    out!("{}", markdown(&compare_runs(&sa, &sb)));
    EXIT_OK
}
