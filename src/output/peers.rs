//! The other shares of a distributed run, read while the run goes (`run --share-dir DIR`):
//! every share writes its run directory to `DIR/share-I`, and each reads the others'
//! `intervals.jsonl` as they grow, so `abort_on_fail` judges the merged numbers of all shares,
//! as `stampede merge` will, rather than one share's.
//!
//! A peer's seconds count as soon as its writer has flushed them (every second); one that is a
//! little behind counts a second less for a moment. A share that is not there yet (a slow
//! start) is looked for again every second.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::analysis::PhaseAgg;
use crate::recorder::Interval;
use crate::rundir::{RunStatus, Segment};

/// The run directory of share `index` under a share directory.
pub fn share_dir(dir: &Path, index: u64) -> PathBuf {
    dir.join(format!("share-{index}"))
}

/// Every share's seconds so far, per phase: this share's (added by the caller) and the
/// others' (read by [`Peers::poll`]).
pub struct Peers {
    tails: Vec<Tail>,
    phases: HashMap<String, PhaseAgg>,
}

/// One peer's `intervals.jsonl`, read from where the last read stopped.
struct Tail {
    dir: PathBuf,
    file: Option<File>,
    /// Bytes of a line not yet complete.
    partial: Vec<u8>,
}

impl Peers {
    /// The peers of share `me` under `dir`: every other segment of `me.count`.
    pub fn new(dir: &Path, me: Segment) -> Peers {
        Peers {
            tails: (0..me.count)
                .filter(|&j| j != me.index)
                .map(|j| Tail {
                    dir: share_dir(dir, j),
                    file: None,
                    partial: Vec::new(),
                })
                .collect(),
            phases: HashMap::new(),
        }
    }

    pub fn shares(&self) -> usize {
        self.tails.len() + 1
    }

    /// Adds a second of any share.
    pub fn add(&mut self, iv: &Interval) {
        self.phases
            .entry(iv.phase.clone())
            .or_insert_with(|| PhaseAgg::new(&iv.phase))
            .add(iv);
    }

    /// Reads what the peers have written since the last call.
    pub fn poll(&mut self) {
        let mut read = Vec::new();
        for t in &mut self.tails {
            t.read_new(&mut read);
        }
        for iv in read {
            self.add(&iv);
        }
    }

    /// A peer that has stopped its run as aborted (its own judgement, or one it saw first).
    pub fn aborted(&self) -> Option<&Path> {
        self.tails
            .iter()
            .find(|t| crate::rundir::read_meta(&t.dir).is_ok_and(|m| m.status == RunStatus::Aborted))
            .map(|t| t.dir.as_path())
    }

    /// Every share's numbers of phase `name` so far, judged over `duration_s` (this share's
    /// time in the phase: the shares run side by side, so their lengths do not add).
    pub fn phase(&mut self, name: &str, duration_s: f64) -> Option<&PhaseAgg> {
        let agg = self.phases.get_mut(name)?;
        agg.duration_s = duration_s;
        Some(agg)
    }
}

impl Tail {
    /// Appends the complete lines written since the last read, as intervals, to `out`
    /// (unreadable lines are passed over: the merge reports them).
    fn read_new(&mut self, out: &mut Vec<Interval>) {
        if self.file.is_none() {
            self.file = File::open(self.dir.join("intervals.jsonl")).ok();
        }
        let Some(f) = self.file.as_mut() else { return };
        if f.read_to_end(&mut self.partial).is_err() {
            return;
        }
        let Some(end) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return;
        };
        let rest = self.partial.split_off(end + 1);
        let done = std::mem::replace(&mut self.partial, rest);
        for line in done.split(|&b| b == b'\n') {
            if let Some(iv) = std::str::from_utf8(line)
                .ok()
                .filter(|l| !l.trim().is_empty())
                .and_then(|l| Interval::from_json_line(l).ok())
            {
                out.push(iv);
            }
        }
    }
}
