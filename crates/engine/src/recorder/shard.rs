//! A worker's recorder shard. Only its own worker thread touches it, so it needs no lock.

use super::Count;
use crate::outcome::ErrorKind;
use stampede_rundir::hist::{new_hist, Hist};

/// One finished step execution.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Global step id (see `engine::program`).
    pub step: usize,
    /// From the intended start (open model) or the send (closed model) to the last byte.
    pub latency_us: u64,
    /// From the send to the last byte.
    pub service_us: u64,
    /// The protocol's outcome code (the HTTP status), 0 when no response arrived.
    pub code: u16,
    pub error: Option<ErrorKind>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Body bytes after content decoding (`bytes_in` when nothing was compressed).
    pub bytes_decoded: u64,
    /// Redirects followed to get the response.
    pub redirects: u16,
}

/// Per-step accumulators for the current interval.
#[derive(Debug, Clone)]
pub struct StepAcc {
    pub latency: Hist,
    /// The latencies' exact sum (µs), beside the histogram's 0.1% buckets: a pushed `_sum`.
    pub latency_sum_us: u64,
    pub service: Hist,
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_decoded: u64,
    pub redirects: u64,
    /// (status, count); few distinct statuses, so a linear scan beats hashing.
    pub statuses: Vec<(u16, u64)>,
    pub kinds: Vec<(ErrorKind, u64)>,
    /// A protocol's counters (WebSocket messages, drops …): few, so a linear scan.
    pub counts: Vec<(Count, u64)>,
    /// A few error messages of this interval with the kind each was counted as (at most
    /// [`SAMPLES_PER_INTERVAL`], plus the first of every other kind), so a report can show what
    /// the target actually said, for a rare kind too. Allocation happens only while wanted.
    pub samples: Vec<(ErrorKind, String)>,
    /// Messages built this interval (kept or not): bounds the allocation to a few per second
    /// (and one per new kind) even when every request fails the same way.
    pub sample_attempts: u8,
}

/// Error messages kept per step and interval (the run directory's rule: `stampede merge` keeps
/// a merged interval's messages by it too).
pub use stampede_rundir::interval::SAMPLES_PER_INTERVAL;

impl StepAcc {
    pub fn new() -> StepAcc {
        StepAcc {
            latency: new_hist(),
            latency_sum_us: 0,
            service: new_hist(),
            requests: 0,
            errors: 0,
            bytes_in: 0,
            bytes_out: 0,
            bytes_decoded: 0,
            redirects: 0,
            statuses: Vec::with_capacity(4),
            kinds: Vec::with_capacity(4),
            counts: Vec::new(),
            samples: Vec::new(),
            sample_attempts: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.requests == 0 && self.counts.is_empty()
    }

    fn reset(&mut self) {
        self.latency.reset();
        self.latency_sum_us = 0;
        self.service.reset();
        self.requests = 0;
        self.errors = 0;
        self.bytes_in = 0;
        self.bytes_out = 0;
        self.bytes_decoded = 0;
        self.redirects = 0;
        self.statuses.clear();
        self.kinds.clear();
        self.counts.clear();
        self.samples.clear();
        self.sample_attempts = 0;
    }
}

impl Default for StepAcc {
    fn default() -> Self {
        StepAcc::new()
    }
}

fn bump<K: PartialEq + Copy>(v: &mut Vec<(K, u64)>, k: K) {
    match v.iter_mut().find(|(x, _)| *x == k) {
        Some((_, n)) => *n += 1,
        None => v.push((k, 1)),
    }
}

/// A worker's accumulators: one [`StepAcc`] per step of the plan, plus phase counters.
#[derive(Debug)]
pub struct Shard {
    steps: Vec<StepAcc>,
    pub iterations: u64,
    /// Arrivals that never ran (open model): still waiting when the phase ended.
    pub dropped: u64,
    /// Waits after failed connects (see `Vu::back_off_after`) and their planned length in ms.
    pub backoffs: u64,
    pub backoff_ms: u64,
    /// Gauges, maintained by the executor.
    pub vus: u64,
    pub waiting: u64,
    /// WebSocket connections open now (a gauge the WebSocket steps keep).
    pub ws_open: u64,
    /// How late the worker's timers fired (µs; the flush task's 10 ms probe): the delay every
    /// arrival release and iteration start on this thread saw, so the generator's own queueing
    /// is told from the system's.
    pub late: Hist,
}

/// A snapshot of one worker's interval, sent to the collector.
#[derive(Debug)]
pub struct WorkerInterval {
    pub steps: Vec<Option<StepAcc>>,
    pub iterations: u64,
    pub dropped: u64,
    pub backoffs: u64,
    pub backoff_ms: u64,
    pub vus: u64,
    pub waiting: u64,
    pub ws_open: u64,
    pub late: Hist,
}

impl Shard {
    /// Allocates all accumulators up front, so recording never allocates.
    pub fn new(step_count: usize) -> Shard {
        Shard {
            steps: (0..step_count).map(|_| StepAcc::new()).collect(),
            iterations: 0,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            vus: 0,
            waiting: 0,
            ws_open: 0,
            late: new_hist(),
        }
    }

    /// Records how late a timer of this worker fired.
    pub fn record_late(&mut self, late: std::time::Duration) {
        self.late.saturating_record(late.as_micros() as u64);
    }

    /// Adds `n` to counter `c` of step `step`.
    pub fn count(&mut self, step: usize, c: Count, n: u64) {
        if let Some(acc) = self.steps.get_mut(step) {
            match acc.counts.iter_mut().find(|(x, _)| *x == c) {
                Some((_, v)) => *v += n,
                None => acc.counts.push((c, n)),
            }
        }
    }

    /// Adds bytes that no sample carries (pushed messages) to step `step`.
    pub fn add_bytes(&mut self, step: usize, bytes_in: u64, bytes_out: u64) {
        if let Some(acc) = self.steps.get_mut(step) {
            acc.bytes_in += bytes_in;
            acc.bytes_out += bytes_out;
        }
    }

    #[inline]
    pub fn record(&mut self, s: &Sample) {
        let Some(acc) = self.steps.get_mut(s.step) else {
            return;
        };
        acc.requests += 1;
        acc.latency.saturating_record(s.latency_us.max(1));
        acc.latency_sum_us += s.latency_us.max(1);
        acc.service.saturating_record(s.service_us.max(1));
        acc.bytes_in += s.bytes_in;
        acc.bytes_out += s.bytes_out;
        acc.bytes_decoded += s.bytes_decoded;
        acc.redirects += s.redirects as u64;
        if s.code != 0 {
            bump(&mut acc.statuses, s.code);
        }
        if let Some(k) = s.error {
            acc.errors += 1;
            bump(&mut acc.kinds, k);
        }
    }

    /// Whether step `step` still wants an error message of `kind` this interval (ask before
    /// building one): while few were built, or when none of this kind is held yet.
    pub fn wants_sample(&self, step: usize, kind: ErrorKind) -> bool {
        self.steps.get(step).is_some_and(|a| {
            (a.sample_attempts as usize) < SAMPLES_PER_INTERVAL || !a.samples.iter().any(|(k, _)| *k == kind)
        })
    }

    pub fn add_sample(&mut self, step: usize, kind: ErrorKind, message: String) {
        if let Some(a) = self.steps.get_mut(step) {
            a.sample_attempts = a.sample_attempts.saturating_add(1);
            let held = a.samples.iter().map(|(k, m)| (k, m.as_str()));
            if stampede_rundir::admits(held, &kind, &message, SAMPLES_PER_INTERVAL) {
                a.samples.push((kind, message));
            }
        }
    }

    /// Takes this interval's data and resets the accumulators in place. Steps without samples
    /// are `None`, so idle steps cost nothing downstream.
    pub fn take(&mut self) -> WorkerInterval {
        let steps = self
            .steps
            .iter_mut()
            .map(|acc| {
                if acc.is_empty() {
                    None
                } else {
                    let snap = acc.clone();
                    acc.reset();
                    Some(snap)
                }
            })
            .collect();
        let out = WorkerInterval {
            steps,
            iterations: self.iterations,
            dropped: self.dropped,
            backoffs: self.backoffs,
            backoff_ms: self.backoff_ms,
            vus: self.vus,
            waiting: self.waiting,
            ws_open: self.ws_open,
            late: self.late.clone(),
        };
        self.late.reset();
        self.iterations = 0;
        self.dropped = 0;
        self.backoffs = 0;
        self.backoff_ms = 0;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(step: usize, us: u64, status: u16, error: Option<ErrorKind>) -> Sample {
        Sample {
            step,
            latency_us: us,
            service_us: us,
            code: status,
            error,
            bytes_in: 10,
            bytes_out: 5,
            bytes_decoded: 10,
            redirects: 0,
        }
    }

    #[test]
    fn records_and_takes_then_resets() {
        let mut sh = Shard::new(2);
        sh.record(&sample(0, 1000, 200, None));
        sh.record(&sample(0, 3000, 503, Some(ErrorKind::Status(503))));
        sh.iterations = 2;
        let w = sh.take();
        let s0 = w.steps[0].as_ref().unwrap();
        assert_eq!(s0.requests, 2);
        assert_eq!(s0.errors, 1);
        assert_eq!(s0.statuses, vec![(200, 1), (503, 1)]);
        assert_eq!(s0.kinds, vec![(ErrorKind::Status(503), 1)]);
        assert_eq!(s0.bytes_in, 20);
        assert!(w.steps[1].is_none());
        assert_eq!(w.iterations, 2);
        let w2 = sh.take();
        assert!(w2.steps[0].is_none());
        assert_eq!(w2.iterations, 0);
    }

    #[test]
    fn out_of_range_step_is_ignored() {
        let mut sh = Shard::new(1);
        sh.record(&sample(5, 1, 200, None));
        assert!(sh.take().steps[0].is_none());
    }
}

#[cfg(test)]
mod sample_tests {
    use super::*;

    #[test]
    fn error_samples_are_few_and_distinct() {
        let busy = ErrorKind::Status(503);
        let mut sh = Shard::new(1);
        for i in 0..10 {
            if sh.wants_sample(0, busy) {
                sh.add_sample(0, busy, format!("HTTP 503: busy {}", i % 2));
            }
        }
        let w = sh.take();
        assert_eq!(
            w.steps[0].as_ref().map_or(0, |_| 1),
            0,
            "samples alone do not make a step non-empty"
        );
        let mut sh = Shard::new(1);
        sh.record(&Sample {
            step: 0,
            latency_us: 1,
            service_us: 1,
            code: 503,
            error: Some(ErrorKind::Status(503)),
            bytes_in: 0,
            bytes_out: 0,
            bytes_decoded: 0,
            redirects: 0,
        });
        let mut built = 0;
        for _ in 0..10 {
            if sh.wants_sample(0, busy) {
                built += 1;
                sh.add_sample(0, busy, "HTTP 503: busy".into());
            }
        }
        assert_eq!(
            built, SAMPLES_PER_INTERVAL,
            "at most a few messages are built per interval"
        );
        assert!(
            sh.wants_sample(0, ErrorKind::Timeout),
            "a kind with no sample yet is wanted beyond the cap"
        );
        sh.add_sample(0, ErrorKind::Timeout, "no complete response within 1 s".into());
        assert!(!sh.wants_sample(0, ErrorKind::Timeout), "one per kind beyond the cap");
        let kinds: Vec<ErrorKind> = sh.take().steps[0]
            .as_ref()
            .unwrap()
            .samples
            .iter()
            .map(|(k, _)| *k)
            .collect();
        assert_eq!(kinds, [busy, ErrorKind::Timeout]);
        assert!(sh.wants_sample(0, busy), "a new interval wants samples again");
    }
}
