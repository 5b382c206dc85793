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

/// Streams the intervals to `f` one at a time, in file order, and returns the unreadable lines.
/// A decoded interval holds every step's buckets, so a long run with many steps does not fit in
/// memory at once: folds (summaries, reports) use this.
///
/// Decoding (JSON, base64, DEFLATE: 40 histograms a second at 20 steps) is most of reading a
/// long run, so it runs on [`decoders`] threads of its own: one thread reads lines in batches
/// and deals them round robin, each decoder decodes its batches, and `f` takes the batches back
/// in the order they were dealt. Bounded channels keep a few batches in flight, never the run.
pub fn for_each_interval(dir: &Path, mut f: impl FnMut(Interval)) -> Result<Vec<(usize, String)>, RunDirError> {
    let path = dir.join("intervals.jsonl");
    let file = match fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RunDirError::Io {
                path: path.display().to_string(),
                source: e,
            })
        }
    };
    let n = decoders();
    let mut skipped = Vec::new();
    std::thread::scope(|scope| {
        let mut inputs = Vec::with_capacity(n);
        let mut outputs = Vec::with_capacity(n);
        for _ in 0..n {
            let (to_decoder, batches) = std::sync::mpsc::sync_channel::<Vec<Line>>(2);
            let (to_fold, decoded) = std::sync::mpsc::sync_channel::<Vec<Decoded>>(2);
            scope.spawn(move || {
                for batch in batches {
                    if to_fold.send(batch.into_iter().map(decode_line).collect()).is_err() {
                        return;
                    }
                }
            });
            inputs.push(to_decoder);
            outputs.push(decoded);
        }
        let path = &path;
        let reader = scope.spawn(move || deal(file, path, inputs));
        // The batches come back in the order they were dealt: decoder 0, 1, …, 0, 1, …
        'fold: for k in 0.. {
            let Ok(batch) = outputs[k % n].recv() else { break 'fold };
            for d in batch {
                match d {
                    Decoded::Interval(iv) => f(*iv),
                    Decoded::Skipped(line, e) => skipped.push((line, e)),
                    Decoded::Blank => {}
                }
            }
        }
        drop(outputs);
        reader.join().unwrap_or(Ok(()))
    })?;
    Ok(skipped)
}

/// How many threads decode intervals: the cores this process may use, at most 4 (beyond that
/// the fold on the calling thread is the limit), at least 1.
fn decoders() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4)
}

/// Lines per batch: enough that a channel hand-over is rare beside decoding them.
const BATCH: usize = 32;

/// A line of `intervals.jsonl` and its number; `Err` for one that is not UTF-8.
type Line = (usize, Result<String, String>);

enum Decoded {
    Interval(Box<Interval>),
    Skipped(usize, String),
    Blank,
}

fn decode_line((n, line): Line) -> Decoded {
    match line {
        Err(e) => Decoded::Skipped(n, e),
        Ok(l) if l.trim().is_empty() => Decoded::Blank,
        Ok(l) => match Interval::from_json_line(l.trim_end()) {
            Ok(iv) => Decoded::Interval(Box::new(iv)),
            Err(e) => Decoded::Skipped(n, e),
        },
    }
}

/// Reads the file's lines in batches and deals them to the decoders in turn; stops early when
/// the fold has stopped taking them.
fn deal(file: fs::File, path: &Path, inputs: Vec<std::sync::mpsc::SyncSender<Vec<Line>>>) -> Result<(), RunDirError> {
    let mut reader = BufReader::new(file);
    let (mut n, mut k) = (0usize, 0usize);
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line);
        let eof = matches!(read, Ok(0));
        match read {
            Ok(0) => {}
            Ok(_) => {
                n += 1;
                batch.push((n, Ok(line)));
            }
            // Not UTF-8: a damaged line; count it and go on.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                n += 1;
                batch.push((n, Err(e.to_string())));
            }
            Err(e) => {
                return Err(RunDirError::Io {
                    path: path.display().to_string(),
                    source: e,
                })
            }
        }
        if batch.len() == BATCH || (eof && !batch.is_empty()) {
            if inputs[k % inputs.len()].send(std::mem::take(&mut batch)).is_err() {
                return Ok(());
            }
            k += 1;
        }
        if eof {
            return Ok(());
        }
    }
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
