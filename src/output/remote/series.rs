//! What a remote output sends: the run's running totals, as a Prometheus scrape of stampede
//! would show them. Counters are cumulative from the phase's start (so `rate()` and `increase()`
//! work, and a receiver that missed a push loses no count), latency is a cumulative exponential
//! histogram per phase and step (so generators and steps aggregate: never a percentile), and
//! every series seen so far is sent with each push, as an exporter keeps exposing its counters.
//!
//! Latency buckets are exponential at [`SCALE`] 4: 16 per doubling, each 4.4% wide, so a
//! quantile read back from them (`histogram_quantile`) is within 4.4% of the run's own. The
//! OTLP exponential histogram and Prometheus' native histogram use them as they are; the
//! classic `le` buckets are their upper bounds from [`CLASSIC_LOW`] to [`CLASSIC_HIGH`].

use std::collections::BTreeMap;

use crate::recorder::Interval;

/// The exponential histograms' scale (OTLP) or schema (Prometheus native): base 2^(2^-4).
pub const SCALE: i32 = 4;
const PER_OCTAVE: f64 = 16.0;
/// Classic buckets' range, as OTLP bucket indices: 2^-14 s (61 µs) to 2^7 s (128 s); below
/// and above fall into the first bucket and `+Inf`.
pub const CLASSIC_LOW: i32 = -14 * 16;
pub const CLASSIC_HIGH: i32 = 7 * 16;

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
    /// Adds one latency bucket (value in µs, count).
    fn add(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.count += n;
        if us == 0 {
            self.zero += n;
            return;
        }
        let s = us as f64 / 1e6;
        self.sum_s += s * n as f64;
        *self.buckets.entry(bucket_index(s)).or_default() += n;
    }

    /// The classic buckets' cumulative counts into `out` (cleared), in the order of
    /// [`Latency::classic`]'s bounds, `+Inf` last: the per-second part, without the bounds.
    pub fn classic_counts(&self, out: &mut Vec<u64>) {
        out.clear();
        let mut cum = self.zero;
        let mut it = self.buckets.iter().peekable();
        for i in CLASSIC_LOW..=CLASSIC_HIGH {
            while let Some((_, n)) = it.next_if(|(&b, _)| b <= i) {
                cum += n;
            }
            out.push(cum);
        }
        out.push(self.count);
    }

    /// The classic buckets: (`le` upper bound in seconds, cumulative count), ending with +Inf.
    pub fn classic(&self) -> Vec<(f64, u64)> {
        let mut counts = Vec::new();
        self.classic_counts(&mut counts);
        (CLASSIC_LOW..=CLASSIC_HIGH)
            .map(upper_bound)
            .chain([f64::INFINITY])
            .zip(counts)
            .collect()
    }
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
            s.each_latency_bucket(|us, n| latency.add(us, n));
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
    fn classic_buckets_are_cumulative_and_end_with_every_count() {
        let mut l = Latency::default();
        // 1 ms ×3, 10 ms ×1, 200 s ×1 (above the last finite bucket), 0 ×1.
        for (us, n) in [(1000, 3), (10_000, 1), (200_000_000, 1), (0, 1)] {
            l.add(us, n);
        }
        let c = l.classic();
        assert_eq!(c.last(), Some(&(f64::INFINITY, 6)));
        assert!(c.windows(2).all(|w| w[0].1 <= w[1].1 && w[0].0 < w[1].0));
        let at = |s: f64| c.iter().find(|(le, _)| *le >= s).map(|x| x.1);
        assert_eq!(at(0.001), Some(4), "zero and the three 1 ms");
        assert_eq!(at(0.0105), Some(5));
        assert_eq!(c[c.len() - 2].1, 5, "200 s only in +Inf");
        assert!((l.sum_s - (0.003 + 0.01 + 200.0)).abs() < 1e-9);
    }
}
