//! `stampede merge`: the shares of a distributed run (`run --segment I/N`) joined into one
//! ordinary run directory, second by second, without loss.
//!
//! Nothing in a run directory is unmergeable: a second of the merged run is the same second of
//! every share with histograms added (bucket by bucket, so percentiles are those of every
//! sample together, never an average of the shares' percentiles), counters and gauges (VUs,
//! waiting arrivals, open WebSocket connections) summed, and error messages kept by the one
//! per-kind rule ([`crate::admits`]). Monitor records are kept per share, their monitor named
//! after the generator's host, since two generators sampling "the host" sampled two hosts.
//!
//! [`check`] refuses, before anything is written, inputs that are not one run: different
//! plans (`plan_sha256`), tool versions, phases or thresholds, or segments that do not cover
//! `0..N` exactly once. [`merge`] writes into a [`Staging`] directory that becomes `OUT` only
//! when complete, so a failed merge leaves nothing behind and an existing `OUT` is never
//! touched.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::interval::Interval;
use crate::meta::{RunMeta, Segment};
use crate::reader::Intervals;
use crate::writer::RunWriter;
use crate::RunDirError;

mod check;
mod meta;
mod monitors;
mod second;
mod staging;

pub use check::check;
pub use second::merge_second;
pub use staging::Staging;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error("nothing to merge: give the run directories of every share")]
    NoInput,
    #[error("{dir}: meta.json has no plan_sha256 (written before stampede recorded it): cannot check that it ran the same plan")]
    NoPlanHash { dir: String },
    #[error(
        "{dir} ran another plan than {first} (plan_sha256 {sha} vs {first_sha}): merge only the shares of one run"
    )]
    PlanDiffers {
        dir: String,
        sha: String,
        first: String,
        first_sha: String,
    },
    #[error("{dir} was written by stampede {version}, {first} by {first_version}: merge shares run by one version")]
    VersionDiffers {
        dir: String,
        version: String,
        first: String,
        first_version: String,
    },
    #[error("{dir} ran its plan otherwise than {first} ({what} differ, e.g. --quick, --load-scale or --phase): merge only the shares of one run")]
    RunDiffers {
        dir: String,
        first: String,
        what: &'static str,
    },
    #[error("{dir} is segment {segment} but {first} is of {first_count}: every share must be of the same N")]
    CountDiffers {
        dir: String,
        segment: Segment,
        first: String,
        first_count: u64,
    },
    #[error("segment {segment} is given twice ({a} and {b}): each share once")]
    Duplicate { segment: Segment, a: String, b: String },
    #[error("segment{} {} of {count} missing: merge needs every share of 0..{count}", if .missing.len() > 1 { "s" } else { "" }, join(.missing))]
    Missing { missing: Vec<u64>, count: u64 },
    #[error("{dir}: phase `{phase}` in intervals.jsonl is not one of the run's phases")]
    UnknownPhase { dir: String, phase: String },
    #[error("{path}: is one of the shares being merged; choose another --out directory")]
    OutIsInput { path: String },
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

/// One share as given: its directory and `meta.json`.
#[derive(Debug, Clone)]
pub struct Share {
    pub dir: PathBuf,
    pub meta: RunMeta,
}

/// What a merge wrote, beyond the run directory itself.
#[derive(Debug, Default)]
pub struct Merged {
    /// Things the user should know (unreadable lines passed over, shares that did not finish,
    /// shares that were not given one common start).
    pub warnings: Vec<String>,
}

/// Merges checked `shares` (from [`check`]) into `dir`, an empty directory (a [`Staging`]'s):
/// `meta.json` (with the generators), `plan.json`, `intervals.jsonl`, `monitors.jsonl` and
/// `explain.json` when the shares have them. Streams: each share's intervals are read once, one
/// at a time, in step with the others, so merging a long run holds one second per share.
pub fn merge(shares: &[Share], dir: &Path) -> Result<Merged, MergeError> {
    let canon = |p: &Path| p.canonicalize().ok();
    if let Some(out) = canon(dir) {
        if let Some(s) = shares.iter().find(|s| canon(&s.dir) == Some(out.clone())) {
            return Err(MergeError::OutIsInput {
                path: s.dir.display().to_string(),
            });
        }
    }
    let mut merged = Merged::default();
    let first = &shares[0];
    let plan_json = read_json(&first.dir.join("plan.json"))?;
    let mut meta = meta::merged_meta(shares, &mut merged.warnings);
    let mut writer = RunWriter::create(dir, &meta, &plan_json)?;
    let mut log = writer.take_interval_log().ok_or_else(|| RunDirError::Invalid {
        path: dir.display().to_string(),
        reason: "no interval log".into(),
    })?;

    let phase_index: BTreeMap<&str, usize> = first
        .meta
        .phases
        .iter()
        .enumerate()
        .map(|(i, p)| (p.name.as_str(), i))
        .collect();
    let key = |share: &Share, iv: &Interval| -> Result<(usize, u64), MergeError> {
        match phase_index.get(iv.phase.as_str()) {
            Some(&i) => Ok((i, iv.seq)),
            None => Err(MergeError::UnknownPhase {
                dir: share.dir.display().to_string(),
                phase: iv.phase.clone(),
            }),
        }
    };
    // Each share is read and decoded on a thread of its own (decoding is most of the work),
    // a few seconds ahead of the merge, which takes them in order.
    std::thread::scope(|scope| -> Result<(), MergeError> {
        let mut feeds = Vec::with_capacity(shares.len());
        for s in shares {
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Interval, RunDirError>>(16);
            let handle = scope.spawn(move || read_ahead(&s.dir, tx));
            feeds.push((rx, handle));
        }
        let next = |i: usize, feeds: &[Feed<'_>]| -> Result<Option<Keyed>, MergeError> {
            match feeds[i].0.recv() {
                Ok(Ok(iv)) => Ok(Some((key(&shares[i], &iv)?, iv))),
                Ok(Err(e)) => Err(e.into()),
                Err(_) => Ok(None),
            }
        };
        let mut heads = Vec::with_capacity(shares.len());
        for i in 0..shares.len() {
            heads.push(next(i, &feeds)?);
        }
        // A k-way merge on (phase, second): every share writes its intervals in that order.
        while let Some(least) = heads.iter().flatten().map(|(k, _)| *k).min() {
            let mut same = Vec::new();
            for (i, head) in heads.iter_mut().enumerate() {
                if head.as_ref().is_some_and(|(k, _)| *k == least) {
                    if let Some((_, iv)) = head.take() {
                        let g = &mut meta.generators[i];
                        g.seconds += 1;
                        g.dropped += iv.dropped;
                        for st in &iv.steps {
                            g.requests += st.requests;
                            g.errors += st.errors;
                        }
                        same.push(iv);
                    }
                    *head = next(i, &feeds)?;
                }
            }
            log.append(&second::merge_second(&same))?;
        }
        for (s, (rx, handle)) in shares.iter().zip(feeds) {
            drop(rx);
            for (line, e) in handle.join().unwrap_or_default() {
                merged.warnings.push(format!(
                    "{}: intervals.jsonl:{line}: skipped an unreadable record ({e})",
                    s.dir.display()
                ));
            }
        }
        Ok(())
    })?;
    drop(log);
    monitors::merge_monitors(shares, &meta.generators, dir)?;
    let explain = first.dir.join("explain.json");
    if explain.exists() {
        let bytes = fs::read(&explain).map_err(io(&explain))?;
        crate::write_atomic(&dir.join("explain.json"), &bytes)?;
    }
    writer.write_meta(&meta)?;
    Ok(merged)
}

/// An interval and its place in the merge: (phase index, second).
type Keyed = ((usize, u64), Interval);

/// A share's intervals as its reading thread sends them, and the thread (which returns the
/// lines it could not read).
type Feed<'s> = (
    std::sync::mpsc::Receiver<Result<Interval, RunDirError>>,
    std::thread::ScopedJoinHandle<'s, Vec<(usize, String)>>,
);

/// Reads `dir`'s intervals into `tx` until the end, an error (sent too) or a receiver that is
/// gone (the merge failed elsewhere); returns the unreadable lines.
fn read_ahead(dir: &Path, tx: std::sync::mpsc::SyncSender<Result<Interval, RunDirError>>) -> Vec<(usize, String)> {
    let mut r = match Intervals::open(dir) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.send(Err(e));
            return Vec::new();
        }
    };
    loop {
        match r.next_interval() {
            Ok(Some(iv)) => {
                if tx.send(Ok(iv)).is_err() {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let _ = tx.send(Err(e));
                break;
            }
        }
    }
    r.skipped
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
    move |source| RunDirError::Io {
        path: path.display().to_string(),
        source,
    }
}

fn read_json(path: &Path) -> Result<serde_json::Value, RunDirError> {
    let text = fs::read_to_string(path).map_err(io(path))?;
    serde_json::from_str(&text).map_err(|e| RunDirError::Invalid {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}
