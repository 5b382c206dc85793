//! The load generator's own health: folded from `generator.jsonl` (CPU of its cores, RSS,
//! sockets, threads) and the intervals' `late` histograms (how late the load threads' timers
//! fired), judged against two bounds. When the generator was the limit, latency includes its
//! own queueing: the verdict carries a condition and a finding says what to do.

use super::findings::fmt_t;
use super::summary::{r3, Generator};
use crate::monitor::MonitorRecord;
use crate::recorder::{new_growable, Hist, Interval};

/// CPU of its cores above which the generator counts as busy …
pub const CPU_LIMIT_PERCENT: f64 = 80.0;
/// … for at least this many 1 s samples (a burst at start-up is not a limit).
const CPU_LIMIT_SAMPLES: usize = 3;
/// Timers firing later than this at p99 in a second: arrivals and iterations started late …
/// An ordinary debug-build run on a busy 2-core machine measured 8 ms at p99 (the OS running
/// other work), one thread pinned to a core with 400 VUs 55 ms: the bound sits between.
pub const LATE_LIMIT_MS: f64 = 25.0;
/// … in at least this many seconds and this share of them: the OS parking the process for a
/// moment on a busy machine is not a generator too small for its load.
const LATE_LIMIT_SECONDS: usize = 3;
const LATE_LIMIT_SHARE: f64 = 0.10;

/// The fold over one run.
#[derive(Default)]
pub struct GeneratorFold {
    late: Option<Hist>,
    /// The first second whose own p99 lateness broke the bound, how many did, of how many.
    late_from: Option<f64>,
    late_seconds: usize,
    seconds: usize,
    dropped: u64,
    cpu: Vec<(f64, f64)>,
    rss_max: Option<f64>,
    sockets_max: Option<f64>,
    threads_max: Option<f64>,
    cores: Option<f64>,
}

fn max(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

impl GeneratorFold {
    pub fn interval(&mut self, iv: &Interval) {
        self.dropped += iv.dropped;
        if iv.late.is_empty() {
            return;
        }
        self.seconds += 1;
        if iv.late.value_at_quantile(0.99) as f64 / 1000.0 > LATE_LIMIT_MS {
            self.late_seconds += 1;
            self.late_from = self.late_from.or(Some(iv.t));
        }
        let _ = self.late.get_or_insert_with(new_growable).add(&iv.late);
    }

    pub fn record(&mut self, r: &MonitorRecord) {
        let v = |k: &str| r.series.get(k).copied().filter(|v| v.is_finite());
        if let Some(c) = v("cpu_percent") {
            self.cpu.push((r.t, c));
        }
        self.rss_max = max(self.rss_max, v("rss_bytes"));
        self.sockets_max = max(self.sockets_max, v("open_sockets"));
        self.threads_max = max(self.threads_max, v("threads"));
        self.cores = v("cores").or(self.cores);
    }

    /// None when nothing was recorded (a run directory from before the generator's health).
    pub fn finish(mut self) -> Option<Generator> {
        if self.late.is_none() && self.cpu.is_empty() && self.rss_max.is_none() {
            return None;
        }
        self.cpu.sort_by(|a, b| a.0.total_cmp(&b.0));
        let ms = |h: &Hist, q: f64| r3(h.value_at_quantile(q) as f64 / 1000.0);
        let late_p99 = self.late.as_ref().map(|h| ms(h, 0.99));
        let late_max = self.late.as_ref().map(|h| ms(h, 1.0));
        let cpu_max = self.cpu.iter().map(|c| c.1).reduce(f64::max);
        let busy: Vec<&(f64, f64)> = self.cpu.iter().filter(|c| c.1 > CPU_LIMIT_PERCENT).collect();
        let mut reasons = Vec::new();
        let mut from: Option<f64> = None;
        let cores = self.cores.map_or(String::new(), |c| {
            format!(" of its {c:.0} core{}", if c == 1.0 { "" } else { "s" })
        });
        if busy.len() >= CPU_LIMIT_SAMPLES {
            from = Some(busy[0].0);
            reasons.push(format!(
                "the load generator ran at up to {:.0}% CPU{cores} from {} ({} s over {CPU_LIMIT_PERCENT:.0}%)",
                cpu_max.unwrap_or(0.0),
                fmt_t(busy[0].0),
                busy.len()
            ));
        }
        let sustained = self.late_seconds >= LATE_LIMIT_SECONDS
            && self.late_seconds as f64 >= LATE_LIMIT_SHARE * self.seconds as f64;
        if let Some(p) = late_p99.filter(|_| sustained) {
            from = match (from, self.late_from) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            reasons.push(format!(
                "its load threads started arrivals and iterations late: {p:.1} ms at p99, up to {:.0} ms, over {LATE_LIMIT_MS:.0} ms at p99 in {} of {} s",
                late_max.unwrap_or(p),
                self.late_seconds,
                self.seconds
            ));
        }
        Some(Generator {
            cpu_percent_max: cpu_max,
            rss_max_bytes: self.rss_max,
            late_ms_p99: late_p99,
            late_ms_max: late_max,
            cores: self.cores,
            open_sockets_max: self.sockets_max,
            threads_max: self.threads_max,
            dropped_arrivals: self.dropped,
            limited: !reasons.is_empty(),
            limited_from_s: from.map(r3),
            reasons,
        })
    }
}

/// The verdict's condition when the generator was the limit.
pub fn condition(g: &Generator) -> Option<String> {
    g.limited.then(|| {
        format!(
            "{}: latency figures include the generator's own queueing; use more `--workers`, fewer VUs per process, or `--segment` over several machines",
            g.reasons.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::series::tests::interval;

    fn rec(t: f64, cpu: f64) -> MonitorRecord {
        MonitorRecord {
            t,
            monitor: "stampede".into(),
            series: [
                ("cpu_percent".to_string(), cpu),
                ("cores".into(), 1.0),
                ("rss_bytes".into(), 1e7 + t),
            ]
            .into_iter()
            .collect(),
            error: None,
        }
    }

    fn with_late(t: f64, ms: u64) -> Interval {
        let mut iv = interval("p", t);
        iv.late = crate::recorder::new_hist();
        iv.late.record_n(ms * 1000, 100).unwrap();
        iv
    }

    #[test]
    fn busy_cpu_for_three_seconds_or_late_timers_limit_the_generator() {
        let mut f = GeneratorFold::default();
        for t in 0..10 {
            f.interval(&with_late(t as f64, 1));
            f.record(&rec(t as f64 + 0.5, if (4..8).contains(&t) { 97.0 } else { 30.0 }));
        }
        let g = f.finish().unwrap();
        assert!(g.limited, "{g:?}");
        assert_eq!((g.cpu_percent_max, g.limited_from_s), (Some(97.0), Some(4.5)));
        assert_eq!(g.rss_max_bytes, Some(1e7 + 9.5));
        assert!(
            g.reasons[0].contains("97% CPU of its 1 core from t=4s"),
            "{:?}",
            g.reasons
        );
        assert!(condition(&g).unwrap().contains("--workers"));

        // Two busy seconds are a burst; 1 ms late is on time; two late seconds are the OS.
        let mut f = GeneratorFold::default();
        for t in 0..10 {
            f.interval(&with_late(t as f64, if t < 2 { 40 } else { 1 }));
        }
        assert!(!f.finish().unwrap().limited);
        let mut f = GeneratorFold::default();
        for t in 0..10 {
            f.interval(&with_late(t as f64, 1));
            f.record(&rec(t as f64, if t < 2 { 99.0 } else { 20.0 }));
        }
        let g = f.finish().unwrap();
        assert!(!g.limited, "{g:?}");
        assert_eq!(condition(&g), None);
        assert!((g.late_ms_p99.unwrap() - 1.0).abs() < 0.01);

        // Late timers alone limit it, from their first late second.
        let mut f = GeneratorFold::default();
        for t in 0..10 {
            f.interval(&with_late(t as f64, if t >= 6 { 40 } else { 1 }));
        }
        let g = f.finish().unwrap();
        assert!(g.limited && g.limited_from_s == Some(6.0), "{g:?}");
        assert!(g.reasons[0].contains("late"), "{:?}", g.reasons);
        assert!(GeneratorFold::default().finish().is_none());
    }
}
