//! Reading a run directory back, including one whose process was killed mid-run.

use std::fs;
use std::path::Path;

use super::meta::RunMeta;
use super::RunDirError;
use crate::monitor::{parse_records, MonitorRecord};
use crate::recorder::Interval;

#[derive(Debug)]
pub struct Run {
    pub meta: RunMeta,
    pub intervals: Vec<Interval>,
    /// Lines that could not be read (a torn last line after `kill -9`), with their numbers.
    pub skipped: Vec<(usize, String)>,
    /// Server-side samples and monitor failures (`monitors.jsonl`; empty when there is none).
    pub monitors: Vec<MonitorRecord>,
    /// Lines of `monitors.jsonl` that could not be read, with their numbers.
    pub monitors_skipped: Vec<(usize, String)>,
}

pub fn read_run(dir: &Path) -> Result<Run, RunDirError> {
    let meta_path = dir.join("meta.json");
    let text = fs::read_to_string(&meta_path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RunDirError::Invalid {
                path: dir.display().to_string(),
                reason: "no meta.json".into(),
            }
        } else {
            RunDirError::Io {
                path: meta_path.display().to_string(),
                source: e,
            }
        }
    })?;
    let meta: RunMeta = serde_json::from_str(&text).map_err(|e| RunDirError::Invalid {
        path: meta_path.display().to_string(),
        reason: format!("meta.json: {e}"),
    })?;
    let iv_path = dir.join("intervals.jsonl");
    let text = match fs::read_to_string(&iv_path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(RunDirError::Io {
                path: iv_path.display().to_string(),
                source: e,
            })
        }
    };
    let mut intervals = Vec::new();
    let mut skipped = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match Interval::from_json_line(line) {
            Ok(iv) => intervals.push(iv),
            Err(e) => skipped.push((i + 1, e)),
        }
    }
    let mon_path = dir.join("monitors.jsonl");
    let (monitors, monitors_skipped) = match fs::read_to_string(&mon_path) {
        Ok(t) => parse_records(&t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Vec::new(), Vec::new()),
        Err(e) => {
            return Err(RunDirError::Io {
                path: mon_path.display().to_string(),
                source: e,
            })
        }
    };
    Ok(Run {
        meta,
        intervals,
        skipped,
        monitors,
        monitors_skipped,
    })
}
