use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use crate::history::{Filter, HistoryError, Index};
use crate::report::terminal::{ms, pct, render_summary};

#[derive(Debug, Args)]
pub struct RunsArgs {
    /// The runs directory (holds one directory per run and `index.sqlite`).
    #[arg(long, global = true, default_value = "runs")]
    dir: PathBuf,
    /// Only runs of the plan of this name.
    #[arg(long, value_name = "NAME")]
    plan: Option<String>,
    /// Only runs whose note (`stampede run --note`) contains this text (any case).
    #[arg(long, value_name = "TEXT")]
    note: Option<String>,
    /// Only the newest N runs (after --plan and --note).
    #[arg(long, value_name = "N")]
    last: Option<usize>,
    #[command(subcommand)]
    command: Option<RunsCommand>,
}

#[derive(Debug, Subcommand)]
enum RunsCommand {
    /// Print one run's summary (ID: its directory name, or a unique prefix).
    Show { id: String },
}

fn fail(e: HistoryError) -> u8 {
    eprintln!("error: {e}");
    match e {
        HistoryError::NotFound(_) => EXIT_INVALID,
        _ => EXIT_FAILED,
    }
}

/// Lists the runs under `--dir` (refreshing the index from the directories first), or shows one.
pub fn runs(a: RunsArgs) -> u8 {
    if !a.dir.is_dir() {
        eprintln!("error: {}: no such runs directory", a.dir.display());
        return EXIT_INVALID;
    }
    let index = match Index::open(&a.dir) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    if let Err(e) = index.refresh() {
        return fail(e);
    }
    match a.command {
        Some(RunsCommand::Show { id }) => match index.summary(&id) {
            Ok((id, s)) => {
                outln!("run {id}: {} started {}", s.name, s.started_at);
                out!("{}", render_summary(&s));
                EXIT_OK
            }
            Err(e) => fail(e),
        },
        None => {
            let filter = Filter {
                plan: a.plan,
                note: a.note,
                last: a.last,
            };
            let filtered = filter.plan.is_some() || filter.note.is_some() || filter.last.is_some();
            let runs = match index.select(&filter) {
                Ok(r) => r,
                Err(e) => return fail(e),
            };
            if runs.is_empty() {
                if filtered {
                    outln!("no runs in {} match", a.dir.display());
                } else {
                    outln!("no runs in {}", a.dir.display());
                }
                return EXIT_OK;
            }
            let mut rows = vec![[
                "ID", "name", "date", "phases", "verdict", "busiest", "p95", "req/s", "errors", "note",
            ]
            .map(String::from)
            .to_vec()];
            for r in runs {
                rows.push(vec![
                    r.id,
                    r.name,
                    r.started_at,
                    r.phases,
                    if r.status == crate::rundir::RunStatus::Completed.as_str() {
                        r.verdict
                    } else {
                        format!("{} ({})", r.verdict, r.status)
                    },
                    r.busiest_phase,
                    r.p95_ms.map(ms).unwrap_or_else(|| "-".into()),
                    format!("{:.1}", r.rps),
                    pct(r.error_rate),
                    r.note.unwrap_or_default(),
                ]);
            }
            out!(
                "{}",
                crate::report::terminal::table(
                    &rows,
                    &[false, false, false, false, false, false, true, true, true, false]
                )
            );
            EXIT_OK
        }
    }
}
