//! `stampede import har|curl|openapi FILE [-o PLAN]`: a plan from a browser recording, a curl
//! command or an API description.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::{EXIT_INVALID, EXIT_OK};
use crate::import::{self, ImportError};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    /// A HAR recording (Chromium's devtools "Save all as HAR", Playwright's `recordHar`).
    Har,
    /// A curl command line: the command itself (`'curl https://…'`), a file holding it, or `-`.
    Curl,
    /// An OpenAPI 3.0/3.1 document (JSON or YAML): one step per operation.
    Openapi,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    kind: Kind,
    /// The file to import (for curl also the command itself, or `-` for standard input).
    input: String,
    /// Write the plan here (refused if it exists) instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

fn read(input: &str) -> Result<String, String> {
    if input == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s).map_err(|e| format!("standard input: {e}"))?;
        return Ok(s);
    }
    std::fs::read_to_string(input).map_err(|e| format!("{input}: {e}"))
}

pub fn run(a: ImportArgs) -> u8 {
    let imported = match a.kind {
        Kind::Curl if a.input.trim_start().starts_with("curl ") => import::curl::import(&a.input),
        Kind::Curl => read(&a.input)
            .map_err(ImportError::Input)
            .and_then(|t| import::curl::import(&t)),
        Kind::Har => {
            let name = std::path::Path::new(&a.input)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "recording".into());
            read(&a.input)
                .map_err(ImportError::Input)
                .and_then(|t| import::har::import(&t, &name))
        }
        Kind::Openapi => read(&a.input)
            .map_err(ImportError::Input)
            .and_then(|t| import::openapi::import(&t)),
    };
    let plan = match imported.and_then(|i| import::plan(&i)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
    };
    match a.output {
        None => {
            out!("{plan}");
            EXIT_OK
        }
        Some(path) => {
            if path.exists() {
                eprintln!("error: {} exists: choose another file or remove it", path.display());
                return EXIT_INVALID;
            }
            match crate::rundir::write_atomic(&path, plan.as_bytes()) {
                Ok(()) => {
                    outln!("{}", path.display());
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", path.display());
                    EXIT_INVALID
                }
            }
        }
    }
}
