//! Reading a run directory back, including one whose process was killed mid-run.

use std::fs;
use std::path::Path;

use super::meta::RunMeta;
use super::RunDirError;
use crate::recorder::Interval;

#[derive(Debug)]
pub struct Run {
    pub meta: RunMeta,
    pub intervals: Vec<Interval>,
    /// Lines that could not be read (a torn last line after `kill -9`), with their numbers.
    pub skipped: Vec<(usize, String)>,
    /// `capacity.json` of a `stampede capacity` run, as written (analysis gives it its type).
    pub capacity: Option<serde_json::Value>,
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
    // Optional: only capacity searches write it; an unreadable one is left out, not fatal.
    let capacity = fs::read_to_string(dir.join("capacity.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    Ok(Run {
        meta,
        intervals,
        skipped,
        capacity,
    })
}
