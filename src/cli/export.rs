//! `stampede export RUN_DIR --to prometheus-rw=URL|otlp=URL`: a finished run sent to a
//! receiver after the fact, second by second with the times it was measured, through the same
//! encoders as a live `--output`.

use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::output::remote::{export, Endpoint, ExportError};

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The run directory to send.
    run_dir: PathBuf,
    /// The receiver: `prometheus-rw=URL` or `otlp=URL`, with the options of `run --output`.
    #[arg(long, value_name = "KIND=URL[,OPTION]...", value_parser = Endpoint::parse)]
    to: Endpoint,
}

/// 0: every second delivered; 1: the receiver failed or refused them (what was sent before
/// is said); 2: not a run directory.
pub fn export_run(a: ExportArgs) -> u8 {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_INVALID;
        }
    };
    let url = a.to.url.clone();
    match rt.block_on(export(&a.run_dir, a.to)) {
        Ok(seconds) => {
            outln!("exported {seconds} seconds of {} to {url}", a.run_dir.display());
            EXIT_OK
        }
        Err(ExportError::RunDir(e)) => {
            eprintln!("error: {}: {e}", a.run_dir.display());
            EXIT_INVALID
        }
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_FAILED
        }
    }
}
