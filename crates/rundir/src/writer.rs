//! Writing a run directory while the run goes on.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::meta::RunMeta;
use super::RunDirError;
use crate::interval::Interval;
use crate::monitor::MonitorRecord;

/// The run directory while the run goes on: its JSON files, and (until taken by the output
/// that appends to it) the interval log.
pub struct RunWriter {
    dir: PathBuf,
    intervals: Option<IntervalLog>,
}

/// `intervals.jsonl`, appended one interval at a time.
pub struct IntervalLog {
    path: PathBuf,
    file: BufWriter<File>,
}

impl IntervalLog {
    /// Appends one interval and flushes it to the OS, so a killed process loses nothing before it.
    pub fn append(&mut self, iv: &Interval) -> Result<(), RunDirError> {
        let mut line = iv.to_json_line().map_err(|source| RunDirError::Serialize {
            path: self.path.display().to_string(),
            source,
        })?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(io_err(&self.path))?;
        self.file.flush().map_err(io_err(&self.path))
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl RunWriter {
    /// Creates `dir` (and parents). Refuses a directory that already holds a run, so nothing
    /// is ever overwritten.
    pub fn create(dir: &Path, meta: &RunMeta, plan_json: &serde_json::Value) -> Result<RunWriter, RunDirError> {
        if dir.join("intervals.jsonl").exists() || dir.join("meta.json").exists() {
            return Err(RunDirError::Exists {
                path: dir.display().to_string(),
            });
        }
        let created = !dir.exists();
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let started = RunWriter::start(dir, meta, plan_json);
        if started.is_err() {
            // A start that failed (read-only or full disk) leaves nothing behind: an empty
            // `intervals.jsonl` would block the same `--out` next time and read as no run.
            for name in [
                "intervals.jsonl",
                "plan.json",
                "meta.json",
                "plan.json.tmp",
                "meta.json.tmp",
            ] {
                let _ = fs::remove_file(dir.join(name));
            }
            if created {
                let _ = fs::remove_dir(dir);
            }
        }
        started
    }

    fn start(dir: &Path, meta: &RunMeta, plan_json: &serde_json::Value) -> Result<RunWriter, RunDirError> {
        let path = dir.join("intervals.jsonl");
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let w = RunWriter {
            dir: dir.to_path_buf(),
            intervals: Some(IntervalLog {
                path,
                file: BufWriter::new(file),
            }),
        };
        w.write_json("plan.json", plan_json)?;
        w.write_meta(meta)?;
        Ok(w)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The interval log, for the output that appends to it (once: later calls get `None`).
    pub fn take_interval_log(&mut self) -> Option<IntervalLog> {
        self.intervals.take()
    }

    /// Opens `monitors.jsonl` for the monitors' records (only when the plan has monitors, so a
    /// run without them keeps the layout it had).
    pub fn monitor_log(&self) -> Result<MonitorLog, RunDirError> {
        self.record_log("monitors.jsonl")
    }

    /// `generator.jsonl`: the load generator's own samples, in the monitors' record form.
    pub fn generator_log(&self) -> Result<MonitorLog, RunDirError> {
        self.record_log("generator.jsonl")
    }

    fn record_log(&self, name: &str) -> Result<MonitorLog, RunDirError> {
        let path = self.dir.join(name);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(MonitorLog {
            path,
            file: BufWriter::new(file),
            failed: false,
        })
    }

    pub fn write_meta(&self, meta: &RunMeta) -> Result<(), RunDirError> {
        self.write_json("meta.json", meta)
    }

    /// Writes `name` atomically (temporary file, then rename): a reader never sees half a file.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<(), RunDirError> {
        write_json_atomic(&self.dir.join(name), value)
    }
}

pub fn write_json_atomic(path: &Path, value: &impl serde::Serialize) -> Result<(), RunDirError> {
    let text = serde_json::to_string_pretty(value).map_err(|source| RunDirError::Serialize {
        path: path.display().to_string(),
        source,
    })?;
    write_atomic(path, (text + "\n").as_bytes())
}

/// Writes `path` through a temporary file and a rename: a reader never sees half a file, and a
/// write that fails (a full disk) leaves the previous version, and no temporary file, behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), RunDirError> {
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    if let Err(e) = fs::write(&tmp, bytes) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp)(e));
    }
    fs::rename(&tmp, path).map_err(io_err(path))
}

/// `monitors.jsonl`: one record per line, appended and flushed as each arrives (every monitor
/// samples about once a second), so a killed run keeps everything up to its last second.
pub struct MonitorLog {
    path: PathBuf,
    file: BufWriter<File>,
    failed: bool,
}

impl MonitorLog {
    /// Appends one record and flushes it; a failed write is reported once on stderr.
    pub fn write(&mut self, rec: &MonitorRecord) {
        // A record is plain numbers and strings: it always serializes.
        let Ok(mut line) = serde_json::to_string(rec) else {
            return;
        };
        line.push('\n');
        let r = self.file.write_all(line.as_bytes()).and_then(|_| self.file.flush());
        if let Err(e) = r {
            // Reported once: the interval writer stops the run on a full disk; monitors only lose
            // their records.
            if !self.failed {
                eprintln!(
                    "warning: {}: {e}; server-side samples are lost from here on",
                    self.path.display()
                );
                self.failed = true;
            }
        }
    }
}
