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
use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::interval::{keep_sample, Interval, StepInterval, SAMPLES_PER_INTERVAL};
use crate::meta::{Generator, RunMeta, RunStatus, Segment};
use crate::monitor::MonitorRecord;
use crate::reader::{read_meta, Intervals};
use crate::writer::RunWriter;
use crate::RunDirError;

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

/// Reads every share's `meta.json` and checks that together they are one run: one plan, one
/// tool version, the same phases and thresholds, and segments `0..N` once each. Returns the
/// shares in segment order.
pub fn check(dirs: &[PathBuf]) -> Result<Vec<Share>, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::NoInput);
    }
    let mut shares = Vec::with_capacity(dirs.len());
    for d in dirs {
        shares.push(Share {
            dir: d.clone(),
            meta: read_meta(d)?,
        });
    }
    let shown = |s: &Share| s.dir.display().to_string();
    let first = &shares[0];
    let first_sha = first
        .meta
        .plan_sha256
        .clone()
        .ok_or_else(|| MergeError::NoPlanHash { dir: shown(first) })?;
    for s in &shares[1..] {
        let sha = s
            .meta
            .plan_sha256
            .clone()
            .ok_or_else(|| MergeError::NoPlanHash { dir: shown(s) })?;
        if sha != first_sha {
            return Err(MergeError::PlanDiffers {
                dir: shown(s),
                sha,
                first: shown(first),
                first_sha,
            });
        }
        if s.meta.tool_version != first.meta.tool_version {
            return Err(MergeError::VersionDiffers {
                dir: shown(s),
                version: s.meta.tool_version.clone(),
                first: shown(first),
                first_version: first.meta.tool_version.clone(),
            });
        }
        let phases = |m: &RunMeta| {
            m.phases
                .iter()
                .map(|p| (p.name.clone(), p.model, p.planned_s.to_bits(), p.peak.to_bits()))
                .collect::<Vec<_>>()
        };
        let differs = |what| MergeError::RunDiffers {
            dir: shown(s),
            first: shown(first),
            what,
        };
        if phases(&s.meta) != phases(&first.meta) {
            return Err(differs("the phases"));
        }
        if s.meta.thresholds != first.meta.thresholds {
            return Err(differs("the thresholds"));
        }
        if s.meta.segment.count != first.meta.segment.count {
            return Err(MergeError::CountDiffers {
                dir: shown(s),
                segment: s.meta.segment,
                first: shown(first),
                first_count: first.meta.segment.count,
            });
        }
    }
    shares.sort_by_key(|s| s.meta.segment.index);
    for w in shares.windows(2) {
        if w[0].meta.segment == w[1].meta.segment {
            return Err(MergeError::Duplicate {
                segment: w[0].meta.segment,
                a: shown(&w[0]),
                b: shown(&w[1]),
            });
        }
    }
    let count = first_count(&shares);
    let have: Vec<u64> = shares.iter().map(|s| s.meta.segment.index).collect();
    let missing: Vec<u64> = (0..count).filter(|i| have.binary_search(i).is_err()).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    Ok(shares)
}

fn first_count(shares: &[Share]) -> u64 {
    shares.first().map_or(1, |s| s.meta.segment.count)
}

/// A directory being written beside its final place: it becomes `out` by one rename when
/// complete ([`Staging::commit`]) and is removed if dropped before, so `out` holds a complete
/// run or nothing. Refuses an `out` that exists.
pub struct Staging {
    tmp: PathBuf,
    out: PathBuf,
    committed: bool,
}

impl Staging {
    pub fn create(out: &Path) -> Result<Staging, RunDirError> {
        let exists = || RunDirError::Exists {
            path: out.display().to_string(),
        };
        if out.exists() {
            return Err(exists());
        }
        let name = out.file_name().ok_or_else(|| RunDirError::Invalid {
            path: out.display().to_string(),
            reason: "not a directory name".into(),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".merging-{}", std::process::id()));
        let tmp = out.with_file_name(tmp_name);
        if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent).map_err(|source| RunDirError::Io {
                path: parent.display().to_string(),
                source,
            })?;
        }
        fs::create_dir(&tmp).map_err(|source| RunDirError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
        Ok(Staging {
            tmp,
            out: out.to_path_buf(),
            committed: false,
        })
    }

    /// Where to write until [`Staging::commit`].
    pub fn dir(&self) -> &Path {
        &self.tmp
    }

    /// Renames the staged directory to `out`. An `out` made meanwhile is not replaced.
    pub fn commit(mut self) -> Result<PathBuf, RunDirError> {
        if self.out.exists() {
            return Err(RunDirError::Exists {
                path: self.out.display().to_string(),
            });
        }
        fs::rename(&self.tmp, &self.out).map_err(|source| RunDirError::Io {
            path: self.out.display().to_string(),
            source,
        })?;
        self.committed = true;
        Ok(self.out.clone())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
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
    let mut meta = merged_meta(shares, &mut merged.warnings);
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
            log.append(&merge_second(&same))?;
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
    merge_monitors(shares, &meta.generators, dir)?;
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunDirError + '_ {
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

/// One second of every share that recorded it, as one interval.
pub fn merge_second(ivs: &[Interval]) -> Interval {
    let mut out = Interval {
        phase: ivs.first().map(|i| i.phase.clone()).unwrap_or_default(),
        seq: ivs.first().map_or(0, |i| i.seq),
        t: ivs.iter().map(|i| i.t).fold(f64::INFINITY, f64::min),
        dur: ivs.iter().map(|i| i.dur).fold(0.0, f64::max),
        vus: 0,
        waiting: 0,
        iterations: 0,
        dropped: 0,
        backoffs: 0,
        backoff_ms: 0,
        ws_open: 0,
        steps: Vec::new(),
    };
    if !out.t.is_finite() {
        out.t = 0.0;
    }
    for iv in ivs {
        out.vus += iv.vus;
        out.waiting += iv.waiting;
        out.iterations += iv.iterations;
        out.dropped += iv.dropped;
        out.backoffs += iv.backoffs;
        out.backoff_ms += iv.backoff_ms;
        out.ws_open += iv.ws_open;
        for st in &iv.steps {
            match out.steps.iter_mut().find(|s| s.name == st.name) {
                Some(m) => add_step(m, st),
                None => {
                    let mut m = StepInterval::empty(&st.name);
                    add_step(&mut m, st);
                    out.steps.push(m);
                }
            }
        }
    }
    out
}

/// Adds a share's step second into the merged one, keeping error messages as an interval does
/// (not as an aggregate, which keeps more).
fn add_step(into: &mut StepInterval, st: &StepInterval) {
    let mut samples = std::mem::take(&mut into.samples);
    for s in &st.samples {
        keep_sample(&mut samples, s, SAMPLES_PER_INTERVAL);
    }
    into.add(st);
    into.samples = samples;
}

/// The merged run's `meta.json`: the plan's facts from the first share, the hosts and
/// resources summed over all, the earliest start, the latest end, the worst status, and one
/// [`Generator`] per share (its counts filled in as the intervals are read).
fn merged_meta(shares: &[Share], warnings: &mut Vec<String>) -> RunMeta {
    let first = &shares[0].meta;
    let metas: Vec<&RunMeta> = shares.iter().map(|s| &s.meta).collect();
    let mut hosts: Vec<&str> = Vec::new();
    for m in &metas {
        if !hosts.contains(&m.host.as_str()) {
            hosts.push(&m.host);
        }
    }
    let status = [RunStatus::Aborted, RunStatus::Interrupted, RunStatus::Running]
        .into_iter()
        .find(|st| metas.iter().any(|m| m.status == *st))
        .unwrap_or(RunStatus::Completed);
    for s in shares {
        if s.meta.status != RunStatus::Completed {
            warnings.push(format!(
                "segment {} ({}) is {}: the merged run is {}",
                s.meta.segment,
                s.dir.display(),
                s.meta.status.as_str(),
                status.as_str()
            ));
        }
    }
    // Shares given `+DURATION` each, or a time written twice, may differ by a few
    // milliseconds; more than a second apart, their seconds do not line up.
    let starts: Option<Vec<i64>> = metas
        .iter()
        .map(|m| m.start_at.as_deref().and_then(crate::time::parse_rfc3339_ms))
        .collect();
    let spread = starts.map(|v| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0));
    if spread.is_none_or(|ms| ms > 1000) {
        warnings.push(
            "the shares were not given one common --start-at: their seconds are merged by their own clocks (second n of each share together)"
                .into(),
        );
    }
    let mut notes: Vec<String> = Vec::new();
    for m in &metas {
        for n in &m.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let mut steps: Vec<String> = Vec::new();
    let mut resolved = Vec::new();
    for m in &metas {
        for s in &m.steps {
            if !steps.contains(s) {
                steps.push(s.clone());
            }
        }
        for r in &m.resolved {
            if !resolved.iter().any(|x: &crate::Resolved| x.origin == r.origin) {
                resolved.push(r.clone());
            }
        }
    }
    RunMeta {
        host: hosts.join(", "),
        cores: metas.iter().map(|m| m.cores).sum(),
        memory_bytes: metas.iter().map(|m| m.memory_bytes).sum(),
        started_at: metas.iter().map(|m| m.started_at.clone()).min().unwrap_or_default(),
        ended_at: metas
            .iter()
            .map(|m| m.ended_at.clone())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        status,
        workers: metas.iter().map(|m| m.workers).sum(),
        segment: Segment::WHOLE,
        steps,
        notes,
        resolved,
        generators: shares
            .iter()
            .map(|s| Generator {
                segment: s.meta.segment,
                host: s.meta.host.clone(),
                dir: s.dir.display().to_string(),
                started_at: s.meta.started_at.clone(),
                ended_at: s.meta.ended_at.clone(),
                status: s.meta.status,
                workers: s.meta.workers,
                cores: s.meta.cores,
                requests: 0,
                errors: 0,
                dropped: 0,
                seconds: 0,
            })
            .collect(),
        ..first.clone()
    }
}

/// The name a generator's monitors go by in the merged run: `MONITOR@HOST`, with `#I` (its
/// segment) when one host ran several shares.
fn monitor_label(generators: &[Generator], i: usize) -> String {
    let g = &generators[i];
    if generators.iter().filter(|x| x.host == g.host).count() > 1 {
        format!("{}#{}", g.host, g.segment.index)
    } else {
        g.host.clone()
    }
}

/// Every share's `monitors.jsonl` records, one after another, each monitor renamed after its
/// generator (analysis puts records in time order itself). Unreadable lines are left out.
fn merge_monitors(shares: &[Share], generators: &[Generator], dir: &Path) -> Result<(), RunDirError> {
    let mut out: Option<BufWriter<File>> = None;
    let path = dir.join("monitors.jsonl");
    for (i, s) in shares.iter().enumerate() {
        let src = s.dir.join("monitors.jsonl");
        let file = match File::open(&src) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&src)(e)),
        };
        let w = match &mut out {
            Some(w) => w,
            None => out.insert(BufWriter::new(File::create_new(&path).map_err(io(&path))?)),
        };
        let label = monitor_label(generators, i);
        for line in BufReader::new(file).lines() {
            let line = line.map_err(io(&src))?;
            let Ok(mut rec) = serde_json::from_str::<MonitorRecord>(&line) else {
                continue;
            };
            rec.monitor = format!("{}@{label}", rec.monitor);
            let text = serde_json::to_string(&rec).map_err(|source| RunDirError::Serialize {
                path: path.display().to_string(),
                source,
            })?;
            writeln!(w, "{text}").map_err(io(&path))?;
        }
    }
    if let Some(mut w) = out {
        w.flush().map_err(io(&path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::new_hist;

    fn step(name: &str, values: &[u64], samples: &[(&str, &str)]) -> StepInterval {
        let mut s = StepInterval::empty(name);
        let mut h = new_hist();
        for v in values {
            h.saturating_record(*v);
        }
        s.requests = values.len() as u64;
        s.latency = h.clone();
        s.service = h;
        s.samples = samples
            .iter()
            .map(|(k, m)| crate::ErrorSample {
                kind: k.to_string(),
                message: m.to_string(),
            })
            .collect();
        s
    }

    fn second(t: f64, vus: u64, steps: Vec<StepInterval>) -> Interval {
        // Through the disk form, as merge reads them.
        let iv = Interval {
            phase: "p".into(),
            seq: 0,
            t,
            dur: 1.0,
            vus,
            waiting: 1,
            iterations: 2,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            steps,
        };
        Interval::from_json_line(&iv.to_json_line().unwrap()).unwrap()
    }

    /// Percentiles of the merged second are those of all samples together: here one share at
    /// 1 ms and one at 100 ms give a p50 of one of the two, never their average.
    #[test]
    fn a_merged_second_adds_histograms_and_sums_gauges() {
        let a = second(3.02, 2, vec![step("s", &[1000; 30], &[("timeout", "slow 1")])]);
        let b = second(
            3.01,
            5,
            vec![
                step(
                    "s",
                    &[100_000; 10],
                    &[("timeout", "slow 2"), ("timeout", "slow 3"), ("reset", "r")],
                ),
                step("t", &[7], &[]),
            ],
        );
        let m = merge_second(&[a, b]);
        assert_eq!((m.t, m.vus, m.waiting, m.iterations), (3.01, 7, 2, 4));
        let back = Interval::from_json_line(&m.to_json_line().unwrap()).unwrap();
        let s = back.steps[0].to_aggregate();
        assert_eq!(s.requests, 40);
        assert_eq!(s.latency.len(), 40);
        assert!((999..=1001).contains(&s.latency.value_at_quantile(0.5)));
        assert!(s.latency.value_at_quantile(0.95) >= 99_900, "p95 is a 100 ms sample");
        let kinds: Vec<&str> = m.steps[0].samples.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["timeout", "timeout", "timeout", "reset"],
            "3 per interval, then one per new kind"
        );
        assert_eq!(m.steps[1].name, "t");
    }
}
