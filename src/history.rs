//! Run history: an embedded SQLite index (`<runs dir>/index.sqlite`) of the run directories
//! under a runs directory. The directories stay the source of truth: the index only caches each
//! run's headline numbers so `stampede runs` is fast, is refreshed from the directories on every
//! listing (new, changed and removed runs), and can be deleted at any time and rebuilt.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use rusqlite::{params, Connection, OptionalExtension};

use crate::analysis::{summarize_dir, Summary};
use crate::rundir::RunStatus;

/// Bumped when the table layout changes; an index of another version is dropped and rebuilt.
const SCHEMA_VERSION: i32 = 2;
pub const INDEX_FILE: &str = "index.sqlite";

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Db {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no run `{0}` in the index (see `stampede runs`)")]
    NotFound(String),
}

/// One run as listed: its headline numbers come from its busiest phase (most requests).
#[derive(Debug, Clone)]
pub struct RunEntry {
    /// The directory name under the runs directory: stable across index rebuilds.
    pub id: String,
    pub name: String,
    pub started_at: String,
    pub status: String,
    pub verdict: String,
    pub phases: String,
    pub busiest_phase: String,
    pub p95_ms: Option<f64>,
    pub rps: f64,
    pub error_rate: f64,
    /// Why the run exists (`stampede run --note`).
    pub note: Option<String>,
}

/// Which runs a listing shows.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only runs of the plan of this name.
    pub plan: Option<String>,
    /// Only runs whose note contains this (case-insensitive).
    pub note: Option<String>,
    /// Only the newest N (after the other filters).
    pub last: Option<usize>,
}

impl Filter {
    fn keeps(&self, e: &RunEntry) -> bool {
        self.plan.as_ref().is_none_or(|p| &e.name == p)
            && self.note.as_ref().is_none_or(|n| {
                e.note
                    .as_ref()
                    .is_some_and(|x| x.to_lowercase().contains(&n.to_lowercase()))
            })
    }
}

pub struct Index {
    conn: Connection,
    runs_dir: PathBuf,
    path: String,
}

fn stamp(dir: &Path) -> i64 {
    // Changes whenever the run is rewritten (meta.json at the end, intervals while it runs).
    ["meta.json", "intervals.jsonl", "summary.json"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0);
            t.wrapping_mul(31).wrapping_add(m.len() as i64)
        })
        .fold(17i64, |a, b| a.wrapping_mul(1_000_003).wrapping_add(b))
}

/// The name a run status is stored under in `meta.json` (its serde name), so the index and
/// the run directory spell it alike.
fn status_name(s: RunStatus) -> String {
    match serde_json::to_value(s) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

impl Index {
    /// Opens (creating if needed) the index of `runs_dir`.
    pub fn open(runs_dir: &Path) -> Result<Index, HistoryError> {
        std::fs::create_dir_all(runs_dir).map_err(|source| HistoryError::Io {
            path: runs_dir.display().to_string(),
            source,
        })?;
        let file = runs_dir.join(INDEX_FILE);
        let path = file.display().to_string();
        let db = |source| HistoryError::Db {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&file).map_err(db)?;
        let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
        if version != SCHEMA_VERSION {
            conn.execute_batch(&format!(
                "DROP TABLE IF EXISTS runs;
                 CREATE TABLE runs (
                   id TEXT PRIMARY KEY,
                   name TEXT NOT NULL,
                   started_at TEXT NOT NULL,
                   status TEXT NOT NULL,
                   verdict TEXT NOT NULL,
                   phases TEXT NOT NULL,
                   busiest_phase TEXT NOT NULL,
                   p95_ms REAL,
                   rps REAL NOT NULL,
                   error_rate REAL NOT NULL,
                   stamp INTEGER NOT NULL,
                   summary TEXT NOT NULL,
                   note TEXT
                 );
                 PRAGMA user_version = {SCHEMA_VERSION};"
            ))
            .map_err(db)?;
        }
        Ok(Index {
            conn,
            runs_dir: runs_dir.to_path_buf(),
            path,
        })
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> HistoryError + '_ {
        move |source| HistoryError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Indexes (or re-indexes) the run in `dir`, which must be directly under the runs dir.
    /// Returns false when `dir` is not a readable run directory.
    pub fn register(&self, dir: &Path) -> Result<bool, HistoryError> {
        let Some(id) = dir.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            return Ok(false);
        };
        // A finished run's summary.json is what `stampede run` printed; otherwise (a run still
        // going, killed, or written by an older version) the summary is rebuilt from the files.
        let stored = std::fs::read_to_string(dir.join("summary.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Summary>(&t).ok())
            .filter(|s| s.status != RunStatus::Running);
        let summary = match stored {
            Some(s) => s,
            None => match summarize_dir(dir) {
                Ok(s) => s,
                Err(_) => return Ok(false),
            },
        };
        self.upsert(&id, &summary, stamp(dir))?;
        Ok(true)
    }

    fn upsert(&self, id: &str, s: &Summary, stamp: i64) -> Result<(), HistoryError> {
        let busiest = s.phases.iter().max_by_key(|p| p.requests);
        let phases: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
        let json = serde_json::to_string(s).unwrap_or_default();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO runs (id, name, started_at, status, verdict, phases, busiest_phase, p95_ms, rps, error_rate, stamp, summary, note)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    id,
                    s.name,
                    s.started_at,
                    status_name(s.status),
                    s.verdict.label(),
                    phases.join(", "),
                    busiest.map(|p| p.name.clone()).unwrap_or_default(),
                    busiest.and_then(|p| p.latency_ms.as_ref().map(|l| l.p95)),
                    busiest.map(|p| p.rps).unwrap_or(0.0),
                    busiest.map(|p| p.error_rate).unwrap_or(0.0),
                    stamp,
                    json,
                    s.note
                ],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// Brings the index in line with the directories: adds new runs, re-reads changed ones,
    /// forgets removed ones. Unreadable directories are skipped (they are not runs).
    pub fn refresh(&self) -> Result<(), HistoryError> {
        let entries = std::fs::read_dir(&self.runs_dir).map_err(|source| HistoryError::Io {
            path: self.runs_dir.display().to_string(),
            source,
        })?;
        let mut seen = Vec::new();
        for e in entries.flatten() {
            let dir = e.path();
            if !dir.join("meta.json").is_file() {
                continue;
            }
            let id = e.file_name().to_string_lossy().into_owned();
            let current = stamp(&dir);
            let stored: Option<i64> = self
                .conn
                .query_row("SELECT stamp FROM runs WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(self.db())?;
            if stored != Some(current) && !self.register(&dir)? {
                continue;
            }
            seen.push(id);
        }
        let ids: Vec<String> = {
            let mut st = self.conn.prepare("SELECT id FROM runs").map_err(self.db())?;
            let rows = st.query_map([], |r| r.get::<_, String>(0)).map_err(self.db())?;
            rows.filter_map(Result::ok).collect()
        };
        for id in ids.iter().filter(|id| !seen.contains(id)) {
            self.conn
                .execute("DELETE FROM runs WHERE id = ?1", [id])
                .map_err(self.db())?;
        }
        Ok(())
    }

    /// All indexed runs, newest first.
    pub fn list(&self) -> Result<Vec<RunEntry>, HistoryError> {
        let mut st = self
            .conn
            .prepare(
                "SELECT id, name, started_at, status, verdict, phases, busiest_phase, p95_ms, rps, error_rate, note
                 FROM runs ORDER BY started_at DESC, id DESC",
            )
            .map_err(self.db())?;
        let rows = st
            .query_map([], |r| {
                Ok(RunEntry {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    started_at: r.get(2)?,
                    status: r.get(3)?,
                    verdict: r.get(4)?,
                    phases: r.get(5)?,
                    busiest_phase: r.get(6)?,
                    p95_ms: r.get(7)?,
                    rps: r.get(8)?,
                    error_rate: r.get(9)?,
                    note: r.get(10)?,
                })
            })
            .map_err(self.db())?;
        rows.collect::<Result<Vec<_>, _>>().map_err(self.db())
    }

    /// The runs `filter` keeps, newest first.
    pub fn select(&self, filter: &Filter) -> Result<Vec<RunEntry>, HistoryError> {
        let mut runs: Vec<RunEntry> = self.list()?.into_iter().filter(|e| filter.keeps(e)).collect();
        if let Some(n) = filter.last {
            runs.truncate(n);
        }
        Ok(runs)
    }

    /// The run id `id` names: itself, or the one run whose id starts with it.
    pub fn resolve(&self, id: &str) -> Result<String, HistoryError> {
        let ids: Vec<String> = self
            .list()?
            .into_iter()
            .map(|e| e.id)
            .filter(|x| x == id || x.starts_with(id))
            .collect();
        if ids.iter().any(|x| x == id) {
            Ok(id.to_string())
        } else if ids.len() == 1 {
            Ok(ids[0].clone())
        } else {
            Err(HistoryError::NotFound(id.into()))
        }
    }

    /// The completed run of the same plan that started last before run `id`: what `compare
    /// --previous` compares it with. None when `id` is the plan's first.
    pub fn previous(&self, id: &str) -> Result<Option<RunEntry>, HistoryError> {
        let runs = self.list()?;
        let Some(this) = runs.iter().find(|e| e.id == id) else {
            return Err(HistoryError::NotFound(id.into()));
        };
        let completed = RunStatus::Completed.as_str();
        Ok(runs
            .iter()
            .filter(|e| e.name == this.name && e.status == completed)
            .find(|e| (e.started_at.as_str(), e.id.as_str()) < (this.started_at.as_str(), this.id.as_str()))
            .cloned())
    }

    /// The directory of run `id`.
    pub fn dir_of(&self, id: &str) -> PathBuf {
        self.runs_dir.join(id)
    }

    /// The stored summary of run `id` (its directory name, or a unique prefix of it).
    pub fn summary(&self, id: &str) -> Result<(String, Summary), HistoryError> {
        let chosen = self.resolve(id)?;
        let json: String = self
            .conn
            .query_row("SELECT summary FROM runs WHERE id = ?1", [&chosen], |r| r.get(0))
            .map_err(self.db())?;
        match serde_json::from_str(&json) {
            Ok(s) => Ok((chosen, s)),
            // A stale cache entry: the directory is the truth, read it again.
            Err(_) => {
                let s =
                    summarize_dir(&self.runs_dir.join(&chosen)).map_err(|_| HistoryError::NotFound(chosen.clone()))?;
                Ok((chosen, s))
            }
        }
    }
}
