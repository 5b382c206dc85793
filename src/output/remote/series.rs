//! What a remote output sends: the run's running totals, as a Prometheus scrape of stampede
//! would show them. Counters are cumulative from the phase's start (so `rate()` and `increase()`
//! work, and a receiver that missed a push loses no count), latency is a cumulative exponential
//! histogram per phase and step (so generators and steps aggregate: never a percentile), and
//! every series seen so far is sent with each push, as an exporter keeps exposing its counters.
//!
//! Latency buckets are exponential at [`SCALE`] 4: 16 per doubling, each 4.4% wide, so a
//! quantile read back from them (`histogram_quantile`) is within 4.4% of the run's own. The
//! OTLP exponential histogram and Prometheus' native histogram use them as they are; the
//! classic `le` buckets are their upper bounds from [`CLASSIC_LOW`] to [`CLASSIC_HIGH`] (as
//! far as the run's latencies reach: `prom.rs`).

use std::collections::BTreeMap;

use crate::recorder::Interval;
use crate::rundir::hist::Hist;

/// The exponential histograms' scale (OTLP) or schema (Prometheus native): base 2^(2^-4).
pub const SCALE: i32 = 4;
const PER_OCTAVE: f64 = 16.0;
/// Classic buckets' range, as OTLP bucket indices: 2^-14 s (61 µs) to 2^7 s (128 s); below
/// and above fall into the first bucket and `+Inf`.
pub const CLASSIC_LOW: i32 = -14 * 16;
pub const CLASSIC_HIGH: i32 = 7 * 16;

/// Parts of a non-empty bucket summed on their own for `sum_s` (see [`Latency::add_hist`]).
const SUM_SPLIT: u32 = 8;

/// The last whole µs at or below `bound_s` seconds, and not below `from` (float rounding at a
/// bucket's edge must not end a range before it starts).
fn last_us(bound_s: f64, from: u64) -> u64 {
    ((bound_s * 1e6).floor() as u64).max(from)
}

/// The last whole µs of bucket `i` (its upper bound, rounded down), from a table over every
/// bucket a recorder value (1 µs to an hour) can fall in.
fn upper_us(i: i32) -> u64 {
    const LOW: i32 = -336;
    const HIGH: i32 = 208;
    static TABLE: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| (LOW..=HIGH).map(|i| (upper_bound(i) * 1e6).floor() as u64).collect());
    usize::try_from(i - LOW)
        .ok()
        .and_then(|k| table.get(k).copied())
        .unwrap_or_else(|| (upper_bound(i) * 1e6).floor() as u64)
}

/// The OTLP bucket index of `seconds` (> 0): bucket `i` holds (base^i, base^(i+1)].
pub fn bucket_index(seconds: f64) -> i32 {
    ((seconds.log2() * PER_OCTAVE).ceil() as i32) - 1
}

/// The upper bound of OTLP bucket `i`, in seconds.
pub fn upper_bound(i: i32) -> f64 {
    ((i + 1) as f64 / PER_OCTAVE).exp2()
}

/// A cumulative latency histogram in exponential buckets.
#[derive(Debug, Default, Clone)]
pub struct Latency {
    pub count: u64,
    pub sum_s: f64,
    /// Latencies of 0 (below the recorder's 1 µs).
    pub zero: u64,
    /// OTLP bucket index → count.
    pub buckets: BTreeMap<i32, u64>,
}

impl Latency {
    /// Adds one latency bucket (value in µs, count); the sum is the caller's.
    fn add(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.count += n;
        if us == 0 {
            self.zero += n;
            return;
        }
        *self.buckets.entry(bucket_index(us as f64 / 1e6)).or_default() += n;
    }

    /// Adds a recorder histogram without visiting each of its buckets: the recorder's buckets
    /// are 0.1% wide, so a walk of them (`iter_recorded`) scans thousands of slots a second per
    /// step, most of them empty. Instead each of this histogram's buckets is summed over its
    /// range (`count_between`, a tight loop). A recorder bucket belongs to the bucket that holds
    /// its lowest value, as in [`Latency::add`]. `sum_us` is the latencies' exact sum when the
    /// recorder kept it; without it each non-empty bucket is split in [`SUM_SPLIT`] parts, whose
    /// midpoints give the sum within 0.3%.
    pub fn add_hist(&mut self, h: &Hist, sum_us: Option<u64>) {
        if h.is_empty() {
            return;
        }
        let zeros = h.count_at(0);
        self.count += zeros;
        self.zero += zeros;
        if let Some(us) = sum_us {
            self.sum_s += us as f64 / 1e6;
        }
        let max = h.max();
        let mut v = h.min_nz();
        let mut i = bucket_index(v as f64 / 1e6);
        while v <= max && v > 0 {
            // The walk goes up: the next bucket holding `v` is found from the table, not a log.
            while upper_us(i) < v {
                i += 1;
            }
            let end = upper_us(i).max(v);
            let n = h.count_between(v, end);
            if n > 0 {
                self.count += n;
                *self.buckets.entry(i).or_default() += n;
                if sum_us.is_none() {
                    self.sum_s += split_sum(h, i, v, end, n);
                }
            }
            v = h.next_non_equivalent(end);
        }
    }
}

/// The sum of bucket `i`'s `n` latencies (µs range `v..=end`), in seconds: each of
/// [`SUM_SPLIT`] parts of equal ratio counted on its own, at its midpoint.
fn split_sum(h: &Hist, i: i32, v: u64, end: u64, n: u64) -> f64 {
    let (mut sum, mut w, mut left) = (0.0, v, n);
    for k in 1..=SUM_SPLIT {
        if w > end || left == 0 {
            break;
        }
        let bound = ((i as f64 + k as f64 / SUM_SPLIT as f64) / PER_OCTAVE).exp2();
        let part_end = if k == SUM_SPLIT {
            end
        } else {
            last_us(bound, w).min(end)
        };
        let m = h.count_between(w, part_end);
        sum += m as f64 * (w + part_end) as f64 / 2e6;
        left -= m.min(left);
        w = h.next_non_equivalent(part_end);
    }
    sum
}

/// One step of one phase, since the phase started.
#[derive(Debug, Clone)]
pub struct StepTotals {
    pub phase: String,
    pub step: String,
    /// Requests by HTTP status (or a protocol's code: 101 for a WebSocket); 0: no response.
    pub by_status: BTreeMap<u16, u64>,
    pub errors_by_kind: BTreeMap<String, u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency: Latency,
}

/// One phase, since it started.
#[derive(Debug, Clone)]
pub struct PhaseTotals {
    pub phase: String,
    /// When its first second started (Unix ms): a cumulative series' start time (OTLP).
    pub start_ms: i64,
    /// VUs at its latest second; 0 once it ended.
    pub vus: u64,
    pub iterations: u64,
    pub dropped: u64,
}

/// The run's totals so far, fed one interval at a time.
#[derive(Debug, Default)]
pub struct Totals {
    pub phases: Vec<PhaseTotals>,
    pub steps: Vec<StepTotals>,
    /// (phase, step) → index into `steps`.
    index: BTreeMap<(String, String), usize>,
}

impl Totals {
    /// Adds one second of a phase; `start_ms` is when that second started (Unix ms).
    pub fn add(&mut self, iv: &Interval, start_ms: i64) {
        let p = match self.phases.iter().position(|p| p.phase == iv.phase) {
            Some(p) => p,
            None => {
                self.phases.push(PhaseTotals {
                    phase: iv.phase.clone(),
                    start_ms,
                    vus: 0,
                    iterations: 0,
                    dropped: 0,
                });
                self.phases.len() - 1
            }
        };
        let phase = &mut self.phases[p];
        phase.vus = iv.vus;
        phase.iterations += iv.iterations;
        phase.dropped += iv.dropped;
        for s in &iv.steps {
            let key = (iv.phase.clone(), s.name.clone());
            let i = *self.index.entry(key).or_insert_with(|| {
                self.steps.push(StepTotals {
                    phase: iv.phase.clone(),
                    step: s.name.clone(),
                    by_status: BTreeMap::new(),
                    errors_by_kind: BTreeMap::new(),
                    bytes_in: 0,
                    bytes_out: 0,
                    latency: Latency::default(),
                });
                self.steps.len() - 1
            });
            let t = &mut self.steps[i];
            let mut answered = 0;
            for (&code, &n) in &s.statuses {
                *t.by_status.entry(code).or_default() += n;
                answered += n;
            }
            // Every request is counted once: those with no status (refused, timed out) as 0.
            let unanswered = s.requests.saturating_sub(answered);
            if unanswered > 0 {
                *t.by_status.entry(0).or_default() += unanswered;
            }
            for (kind, &n) in &s.kinds {
                *t.errors_by_kind.entry(kind.clone()).or_default() += n;
            }
            t.bytes_in += s.bytes_in;
            t.bytes_out += s.bytes_out;
            let latency = &mut t.latency;
            match s.stored_latency_buckets() {
                Some(b) => {
                    b.iter().for_each(|&(us, n)| latency.add(us, n));
                    // Exact when the run kept it; else the buckets' values, as before it did.
                    latency.sum_s += match s.latency_sum_us {
                        Some(us) => us as f64 / 1e6,
                        None => b.iter().map(|&(us, n)| us as f64 * n as f64).sum::<f64>() / 1e6,
                    };
                }
                None => latency.add_hist(&s.latency, s.latency_sum_us),
            }
        }
    }

    /// The phase ended: its VU gauge falls to 0 from the next push on.
    pub fn end_phase(&mut self, phase: &str) {
        if let Some(p) = self.phases.iter_mut().find(|p| p.phase == phase) {
            p.vus = 0;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.phases.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_16_per_doubling_and_hold_their_upper_bound() {
        assert_eq!(bucket_index(1.0), -1, "1 s is the upper bound of bucket -1");
        assert_eq!(bucket_index(1.0001), 0);
        assert_eq!(bucket_index(2.0), 15);
        assert!((upper_bound(15) - 2.0).abs() < 1e-12);
        for x in [0.0001, 0.0123, 0.5, 3.7] {
            let i = bucket_index(x);
            assert!(
                upper_bound(i - 1) < x && x <= upper_bound(i) * (1.0 + 1e-12),
                "{x} in {i}"
            );
            assert!(upper_bound(i) / upper_bound(i - 1) < 1.045);
        }
    }

    #[test]
    fn a_recorder_histogram_folds_into_the_same_buckets_as_a_walk_of_it() {
        // Values spread from 0 and 1 µs to 20 s, some in the recorder's wide buckets.
        let mut h = crate::rundir::hist::new_growable();
        let mut x: u64 = 7;
        for k in 0..20_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let v = match k % 4 {
                0 => (x >> 33) % 3,
                1 => 50 + (x >> 33) % 5_000,
                2 => 2_000 + (x >> 33) % 200_000,
                _ => (x >> 33) % 20_000_000,
            };
            h.record(v).unwrap();
        }
        let (mut walked, mut folded) = (Latency::default(), Latency::default());
        for v in h.iter_recorded() {
            walked.add(h.lowest_equivalent(v.value_iterated_to()), v.count_at_value());
        }
        walked.sum_s = h
            .iter_recorded()
            .map(|v| v.value_iterated_to() as f64 * v.count_at_value() as f64)
            .sum::<f64>()
            / 1e6;
        folded.add_hist(&h, None);
        assert_eq!(folded.count, 20_000);
        assert_eq!((folded.count, folded.zero), (walked.count, walked.zero));
        assert_eq!(folded.buckets, walked.buckets);
        let rel = (folded.sum_s - walked.sum_s).abs() / walked.sum_s;
        assert!(rel < 0.003, "sum {} vs {} ({rel})", folded.sum_s, walked.sum_s);
        let mut exact = Latency::default();
        exact.add_hist(&h, Some(1_234_567));
        assert_eq!(
            (exact.buckets, exact.sum_s),
            (folded.buckets, 1.234567),
            "the recorder's sum when it has one"
        );
    }
}
