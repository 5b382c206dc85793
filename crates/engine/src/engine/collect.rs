//! Merging the workers' per-second snapshots into one interval per second of each phase.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::program::Program;
use crate::recorder::{Interval, StepInterval, WorkerInterval};

/// Collects one phase's worker snapshots; yields merged intervals in order.
pub struct PhaseCollector {
    phase: String,
    workers: usize,
    start: Instant,
    /// Seconds from the run start to the phase start.
    offset: f64,
    /// Per worker: the sequence number of its final snapshot, once sent.
    last: Vec<Option<u64>>,
    /// Per worker: how many snapshots it has sent.
    sent: Vec<u64>,
    pending: BTreeMap<u64, Pending>,
    next: u64,
}

#[derive(Default)]
struct Pending {
    parts: Vec<WorkerInterval>,
    /// Whether any contributing worker was still running for the whole second.
    full: bool,
    ended: Option<Instant>,
}

impl PhaseCollector {
    pub fn new(phase: String, workers: usize, start: Instant, offset: f64) -> PhaseCollector {
        PhaseCollector {
            phase,
            workers,
            start,
            offset,
            last: vec![None; workers],
            sent: vec![0; workers],
            pending: BTreeMap::new(),
            next: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.last.iter().all(Option::is_some) && self.pending.is_empty()
    }

    pub fn add(&mut self, worker: usize, seq: u64, data: WorkerInterval, ended: Option<Instant>) {
        if worker >= self.workers {
            return;
        }
        self.sent[worker] = seq + 1;
        let p = self.pending.entry(seq).or_default();
        p.parts.push(data);
        match ended {
            Some(e) => {
                self.last[worker] = Some(seq);
                p.ended = Some(p.ended.map_or(e, |x: Instant| x.max(e)));
            }
            None => p.full = true,
        }
    }

    /// Intervals that every worker has reported (or finished before), in order.
    pub fn ready(&mut self, program: &Program) -> Vec<Interval> {
        let mut out = Vec::new();
        loop {
            let seq = self.next;
            let complete = (0..self.workers).all(|w| self.sent[w] > seq || self.last[w].is_some_and(|l| l < seq));
            if !complete {
                break;
            }
            let Some(p) = self.pending.remove(&seq) else {
                if self.last.iter().all(Option::is_some) {
                    break;
                }
                self.next += 1;
                continue;
            };
            self.next += 1;
            out.push(self.merge(program, seq, p));
        }
        out
    }

    fn merge(&self, program: &Program, seq: u64, p: Pending) -> Interval {
        let seq_start = self.start + std::time::Duration::from_secs(seq);
        let dur = if p.full {
            1.0
        } else {
            p.ended
                .map_or(1.0, |e| e.saturating_duration_since(seq_start).as_secs_f64().min(1.0))
        };
        let mut steps: BTreeMap<usize, StepInterval> = BTreeMap::new();
        let (mut vus, mut waiting, mut iterations, mut dropped) = (0, 0, 0, 0);
        let (mut backoffs, mut backoff_ms, mut ws_open) = (0, 0, 0);
        let mut late = stampede_rundir::hist::new_growable();
        for part in p.parts {
            let _ = late.add(&part.late);
            vus += part.vus;
            waiting += part.waiting;
            iterations += part.iterations;
            dropped += part.dropped;
            backoffs += part.backoffs;
            backoff_ms += part.backoff_ms;
            ws_open += part.ws_open;
            for (id, acc) in part.steps.into_iter().enumerate() {
                let Some(acc) = acc else { continue };
                let s = steps
                    .entry(id)
                    .or_insert_with(|| StepInterval::empty(program.steps.get(id).map_or("", |s| s.name.as_str())));
                s.requests += acc.requests;
                s.errors += acc.errors;
                s.bytes_in += acc.bytes_in;
                s.bytes_out += acc.bytes_out;
                s.bytes_decoded += acc.bytes_decoded;
                s.redirects += acc.redirects;
                let _ = s.latency.add(&acc.latency);
                s.latency_sum_us = s.latency_sum_us.map(|x| x + acc.latency_sum_us);
                let _ = s.service.add(&acc.service);
                for (kind, message) in acc.samples {
                    let kind = kind.name(|c| program.check_name(id, c));
                    let sample = stampede_rundir::ErrorSample { kind, message };
                    stampede_rundir::keep_sample(&mut s.samples, &sample, crate::recorder::SAMPLES_PER_INTERVAL);
                }
                for (code, n) in acc.statuses {
                    *s.statuses.entry(code).or_default() += n;
                }
                for (c, n) in acc.counts {
                    *s.counters.entry(c.name()).or_default() += n;
                }
                for (kind, n) in acc.kinds {
                    *s.kinds.entry(kind.name(|c| program.check_name(id, c))).or_default() += n;
                }
            }
        }
        Interval {
            phase: self.phase.clone(),
            seq,
            t: self.offset + seq as f64,
            dur,
            vus,
            waiting,
            iterations,
            dropped,
            backoffs,
            backoff_ms,
            ws_open,
            late,
            steps: steps.into_values().collect(),
        }
    }
}
