//! `stampede alerts PLAN|RUN_DIR [-o FILE]`: Prometheus alerting rules from a plan's thresholds
//! and monitors, or from a run directory with the warning levels from what it measured
//! (`crate::alerts`, docs/alerts.md).

use std::path::PathBuf;

use clap::Args;

use super::{load_plan, EXIT_INVALID, EXIT_OK};
use crate::alerts;

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// A plan file, or a run directory (its plan and what it measured).
    source: PathBuf,
    /// Write the rules to FILE (atomically) instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,
    /// K=V: a plan variable, as for `run` (plans only).
    #[arg(long = "var", value_name = "K=V", value_parser = super::parse_var)]
    vars: Vec<(String, String)>,
}

pub fn alerts(a: AlertsArgs) -> u8 {
    let src = if a.source.is_dir() {
        match alerts::from_run(&a.source) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return EXIT_INVALID;
            }
        }
    } else {
        match load_plan(&a.source, &a.vars) {
            Ok(p) => alerts::from_plan(&p, &a.source),
            Err(code) => return code,
        }
    };
    let yaml = match alerts::rules(&src).and_then(|(file, notes)| Ok((alerts::to_yaml(&file)?, notes))) {
        Ok((y, notes)) => {
            for n in notes {
                eprintln!("note: {n}");
            }
            y
        }
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    match &a.output {
        None => out!("{yaml}"),
        Some(path) => {
            if let Err(e) = crate::rundir::write_atomic(path, yaml.as_bytes()) {
                eprintln!("error: {}: {e}", path.display());
                return EXIT_INVALID;
            }
            outln!("alert rules: {}", path.display());
        }
    }
    EXIT_OK
}
