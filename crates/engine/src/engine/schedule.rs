//! When things should happen: VU targets over ramping stages, arrival times for open models,
//! and the deterministic share of VUs and arrivals each worker (and each `--segment`) owns.

use std::time::Duration;

use stampede_plan::Stage;

/// Which items (VU numbers, arrival numbers, from 0) this worker runs. Items are dealt round
/// robin, first across segments (processes), then across this process's workers, so N copies
/// with `--segment i/N` together run exactly what one copy would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    pub segment: u64,
    pub segments: u64,
    pub worker: u64,
    pub workers: u64,
}

impl Share {
    pub fn whole() -> Share {
        Share {
            segment: 0,
            segments: 1,
            worker: 0,
            workers: 1,
        }
    }

    pub fn first(&self) -> u64 {
        self.segment + self.segments * self.worker
    }

    pub fn stride(&self) -> u64 {
        self.segments * self.workers
    }

    pub fn owns(&self, item: u64) -> bool {
        item % self.segments == self.segment && (item / self.segments) % self.workers == self.worker
    }

    /// How many of the items `0..n` this share owns.
    pub fn count_below(&self, n: u64) -> u64 {
        let first = self.first();
        if n <= first {
            0
        } else {
            (n - first).div_ceil(self.stride())
        }
    }

    /// This share re-dealt among only the workers that own some of the items `0..n`, or `None`
    /// if this worker owns none. An open-model phase with fewer VUs than workers deals its
    /// arrivals only to workers that have a VU to run them; the split across segments stays.
    /// A segment that owns none keeps its split, so that its arrivals are still dealt, and
    /// counted as dropped.
    pub fn among_owners_of(&self, n: u64) -> Option<Share> {
        let in_segment = n.saturating_sub(self.segment).div_ceil(self.segments);
        if in_segment == 0 {
            return Some(*self);
        }
        let workers = self.workers.min(in_segment);
        (self.worker < workers).then_some(Share { workers, ..*self })
    }

    /// Items `0..n` this share owns, in order.
    pub fn items_below(&self, n: u64) -> impl Iterator<Item = u64> {
        (self.first()..n).step_by(self.stride() as usize)
    }
}

/// A value (VUs or rate) that moves linearly from `start` through the stage targets.
#[derive(Debug, Clone)]
pub struct Ramp {
    start: f64,
    stages: Vec<Stage>,
}

impl Ramp {
    pub fn new(start: f64, stages: &[Stage]) -> Ramp {
        Ramp {
            start,
            stages: stages.to_vec(),
        }
    }

    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The value at `t` since the phase start (the last target after the end).
    pub fn at(&self, t: Duration) -> f64 {
        let mut from = self.start;
        let mut t0 = Duration::ZERO;
        for s in &self.stages {
            let t1 = t0 + s.duration;
            if t < t1 {
                let f = if s.duration.is_zero() {
                    1.0
                } else {
                    (t - t0).as_secs_f64() / s.duration.as_secs_f64()
                };
                return from + (s.target - from) * f;
            }
            from = s.target;
            t0 = t1;
        }
        from
    }

    /// The largest value anywhere on the ramp.
    pub fn peak(&self) -> f64 {
        self.stages.iter().map(|s| s.target).fold(self.start, f64::max)
    }
}

/// Arrival times of an open model whose rate follows a ramp: arrival `k` (from 0) happens when
/// the integral of the rate reaches `k`. Computed exactly per linear segment.
#[derive(Debug, Clone)]
pub struct Arrivals {
    /// (segment start in s, duration in s, rate at start, rate at end, arrivals before it)
    segments: Vec<(f64, f64, f64, f64, f64)>,
    total: f64,
}

impl Arrivals {
    pub fn constant(rate: f64, duration: Duration) -> Arrivals {
        Arrivals::ramp(rate, &[Stage { target: rate, duration }])
    }

    pub fn ramp(start: f64, stages: &[Stage]) -> Arrivals {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut t, mut r0, mut cum) = (0.0, start, 0.0);
        for s in stages {
            let d = s.duration.as_secs_f64();
            segments.push((t, d, r0, s.target, cum));
            cum += (r0 + s.target) / 2.0 * d;
            t += d;
            r0 = s.target;
        }
        Arrivals { segments, total: t }
    }

    /// The ramp's length in seconds.
    pub fn duration_s(&self) -> f64 {
        self.total
    }

    /// Total number of arrivals over the whole ramp.
    pub fn count(&self) -> u64 {
        self.segments
            .last()
            .map(|&(_, d, r0, r1, c)| (c + (r0 + r1) / 2.0 * d + 1e-9).floor() as u64)
            .unwrap_or(0)
    }

    /// Seconds from the phase start at which arrival `k` is due; `None` past the end.
    pub fn time_of(&self, k: u64) -> Option<f64> {
        let k = k as f64;
        for &(t0, d, r0, r1, c) in &self.segments {
            let n = k - c;
            let in_seg = (r0 + r1) / 2.0 * d;
            if n > in_seg + 1e-9 {
                continue;
            }
            let tau = if (r1 - r0).abs() < 1e-12 {
                if r0 <= 0.0 {
                    continue;
                }
                n / r0
            } else {
                // r0·τ + (r1−r0)/(2d)·τ² = n
                let a = (r1 - r0) / (2.0 * d);
                let disc = (r0 * r0 + 4.0 * a * n).max(0.0);
                (disc.sqrt() - r0) / (2.0 * a)
            };
            let tau = tau.clamp(0.0, d);
            if t0 + tau >= self.total && k > 0.0 {
                return None;
            }
            return Some(t0 + tau);
        }
        None
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(target: f64, secs: u64) -> Stage {
        Stage {
            target,
            duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn owners_of_few_items_share_them_and_all_arrivals() {
        // 2 VUs, 4 workers, 1 segment: workers 0 and 1 own one VU each and split the arrivals.
        let of = |worker, workers, segment, segments| Share {
            segment,
            segments,
            worker,
            workers,
        };
        assert_eq!(of(0, 4, 0, 1).among_owners_of(2), Some(of(0, 2, 0, 1)));
        assert_eq!(of(1, 4, 0, 1).among_owners_of(2), Some(of(1, 2, 0, 1)));
        assert_eq!(of(2, 4, 0, 1).among_owners_of(2), None);
        // Enough VUs: nothing changes.
        assert_eq!(of(3, 4, 0, 1).among_owners_of(100), Some(of(3, 4, 0, 1)));
        // Segment 1 of 2 owns VU 1 of 0..3 (VUs 0 and 2 are segment 0's): one worker of its 2.
        assert_eq!(of(0, 2, 1, 2).among_owners_of(3), Some(of(0, 1, 1, 2)));
        assert_eq!(of(1, 2, 1, 2).among_owners_of(3), None);
        // Segment 2 of 3 owns none of 0..2: unchanged, so its arrivals are counted as dropped.
        assert_eq!(of(1, 2, 2, 3).among_owners_of(2), Some(of(1, 2, 2, 3)));
        // The owners together own every VU, and their arrivals partition the stream.
        for (workers, n) in [(4u64, 3u64), (3, 7), (2, 1)] {
            let owners: Vec<Share> = (0..workers)
                .filter_map(|w| of(w, workers, 0, 1).among_owners_of(n))
                .collect();
            assert_eq!(owners.iter().map(|s| s.count_below(n)).sum::<u64>(), n);
            for item in 0..50 {
                assert_eq!(owners.iter().filter(|s| s.owns(item)).count(), 1, "item {item}");
            }
        }
    }

    #[test]
    fn shares_partition_items_exactly() {
        for segments in 1..4 {
            for workers in 1..4 {
                let mut seen = vec![0u32; 100];
                for segment in 0..segments {
                    for worker in 0..workers {
                        let sh = Share {
                            segment,
                            segments,
                            worker,
                            workers,
                        };
                        assert_eq!(sh.items_below(100).count() as u64, sh.count_below(100));
                        for i in sh.items_below(100) {
                            assert!(sh.owns(i));
                            seen[i as usize] += 1;
                        }
                    }
                }
                assert!(seen.iter().all(|&n| n == 1), "{segments}/{workers}");
            }
        }
    }

    #[test]
    fn ramp_interpolates() {
        let r = Ramp::new(0.0, &[st(10.0, 10), st(100.0, 10), st(0.0, 10)]);
        assert_eq!(r.at(Duration::from_secs(5)), 5.0);
        assert_eq!(r.at(Duration::from_secs(15)), 55.0);
        assert_eq!(r.at(Duration::from_secs(40)), 0.0);
        assert_eq!(r.peak(), 100.0);
        assert_eq!(r.total(), Duration::from_secs(30));
    }

    #[test]
    fn constant_arrivals_are_evenly_spaced() {
        let a = Arrivals::constant(100.0, Duration::from_secs(2));
        assert_eq!(a.count(), 200);
        assert_eq!(a.time_of(0), Some(0.0));
        assert!((a.time_of(50).unwrap() - 0.5).abs() < 1e-9);
        assert!((a.time_of(199).unwrap() - 1.99).abs() < 1e-9);
        assert_eq!(a.time_of(200), None);
    }

    #[test]
    fn ramping_arrivals_follow_the_integral() {
        // 0 → 100/s over 10 s: 500 arrivals, the k-th at sqrt(k/5).
        let a = Arrivals::ramp(0.0, &[st(100.0, 10)]);
        assert_eq!(a.count(), 500);
        assert!((a.time_of(125).unwrap() - 5.0).abs() < 1e-6);
        let mut last = 0.0;
        for k in 0..500 {
            let t = a.time_of(k).unwrap();
            assert!(t >= last);
            last = t;
        }
    }
}
