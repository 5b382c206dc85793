//! Reading a run directory back, including one whose process was killed mid-run.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use super::meta::RunMeta;
use super::RunDirError;
use crate::interval::Interval;
use crate::monitor::{parse_records, MonitorRecord};

#[derive(Debug)]
pub struct Run {
    pub meta: RunMeta,
    pub intervals: Vec<Interval>,
    /// Lines that could not be read (a torn last line after `kill -9`), with their numbers.
    pub skipped: Vec<(usize, String)>,
    /// `capacity.json` of a `stampede capacity` run, as written (analysis gives it its type).
    pub capacity: Option<serde_json::Value>,
    /// Server-side samples and monitor failures (`monitors.jsonl`; empty when there is none).
    pub monitors: Vec<MonitorRecord>,
    /// Lines of `monitors.jsonl` that could not be read, with their numbers.
    pub monitors_skipped: Vec<(usize, String)>,
}

pub fn read_run(dir: &Path) -> Result<Run, RunDirError> {
    let meta = read_meta(dir)?;
    let mut intervals = Vec::new();
    let skipped = for_each_interval(dir, |iv| intervals.push(iv))?;
    let (monitors, monitors_skipped) = read_monitors(dir)?;
    Ok(Run {
        meta,
        intervals,
        skipped,
        capacity: read_capacity(dir),
        monitors,
        monitors_skipped,
    })
}

/// `monitors.jsonl`: server samples and monitor failures, and the lines that could not be read.
#[allow(clippy::type_complexity)]
pub fn read_monitors(dir: &Path) -> Result<(Vec<MonitorRecord>, Vec<(usize, String)>), RunDirError> {
    let mon_path = dir.join("monitors.jsonl");
    match fs::read_to_string(&mon_path) {
        Ok(t) => Ok(parse_records(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((Vec::new(), Vec::new())),
        Err(e) => Err(RunDirError::Io {
            path: mon_path.display().to_string(),
            source: e,
        }),
    }
}

/// `capacity.json`: only capacity searches write it; an unreadable one is left out, not fatal.
pub fn read_capacity(dir: &Path) -> Option<serde_json::Value> {
    fs::read_to_string(dir.join("capacity.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
}

/// Reads `meta.json` alone.
pub fn read_meta(dir: &Path) -> Result<RunMeta, RunDirError> {
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
    serde_json::from_str(&text).map_err(|e| RunDirError::Invalid {
        path: meta_path.display().to_string(),
        reason: format!("meta.json: {e}"),
    })
}

/// Streams the intervals to `f` one at a time and returns the unreadable lines. A decoded
/// interval holds full-size histograms (~180 KB each), so a long run with many steps does not
/// fit in memory at once (1 hour × 20 steps ≈ 25 GB): folds (summaries, reports) use this.
pub fn for_each_interval(dir: &Path, mut f: impl FnMut(Interval)) -> Result<Vec<(usize, String)>, RunDirError> {
    let mut intervals = Intervals::open(dir)?;
    while let Some(iv) = intervals.next_interval()? {
        f(iv);
    }
    Ok(intervals.skipped)
}

/// `intervals.jsonl` read one interval at a time, for readers that walk several runs side by
/// side (`stampede merge`). No file is no intervals.
pub struct Intervals {
    path: PathBuf,
    reader: Option<BufReader<fs::File>>,
    line: String,
    n: usize,
    /// Lines that could not be read (a torn last line after `kill -9`), with their numbers.
    pub skipped: Vec<(usize, String)>,
}

impl Intervals {
    pub fn open(dir: &Path) -> Result<Intervals, RunDirError> {
        let path = dir.join("intervals.jsonl");
        let reader = match fs::File::open(&path) {
            Ok(f) => Some(BufReader::new(f)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                return Err(RunDirError::Io {
                    path: path.display().to_string(),
                    source: e,
                })
            }
        };
        Ok(Intervals {
            path,
            reader,
            line: String::new(),
            n: 0,
            skipped: Vec::new(),
        })
    }

    /// The next readable interval; unreadable lines are noted in `skipped` and passed over.
    pub fn next_interval(&mut self) -> Result<Option<Interval>, RunDirError> {
        let Some(reader) = self.reader.as_mut() else {
            return Ok(None);
        };
        loop {
            self.line.clear();
            match reader.read_line(&mut self.line) {
                Ok(0) => return Ok(None),
                Ok(_) => {}
                // Not UTF-8: a damaged line; count it and go on.
                Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                    self.n += 1;
                    self.skipped.push((self.n, e.to_string()));
                    continue;
                }
                Err(e) => {
                    return Err(RunDirError::Io {
                        path: self.path.display().to_string(),
                        source: e,
                    })
                }
            }
            self.n += 1;
            if self.line.trim().is_empty() {
                continue;
            }
            match Interval::from_json_line(self.line.trim_end()) {
                Ok(iv) => return Ok(Some(iv)),
                Err(e) => self.skipped.push((self.n, e)),
            }
        }
    }
}
