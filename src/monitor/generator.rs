//! The load generator's own health, sampled every second of every run into `generator.jsonl`
//! (the monitors' record form, monitor `stampede`): CPU of the cores it may use, resident
//! memory, open sockets and threads, from `/proc/self`. Kept out of `monitors.jsonl` so the
//! system's findings, charts and drift never mistake the generator for the system under test.

use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::process::{read_stat, PAGE_SIZE, TICKS_PER_SEC};
use super::{round3, MonitorRecord, RecordSink, Series};

/// The `monitor` of every record.
pub const NAME: &str = "stampede";
const INTERVAL: Duration = Duration::from_secs(1);

/// Samples `/proc/self`; CPU is a rate, so the first sample has none.
pub struct SelfProbe {
    prev: Option<(u64, Instant)>,
    cores: f64,
}

impl SelfProbe {
    pub fn new() -> SelfProbe {
        SelfProbe {
            prev: None,
            cores: allowed_cores().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
                as f64,
        }
    }

    pub fn sample(&mut self) -> Series {
        let mut s = Series::new();
        let now = Instant::now();
        let Some(p) = read_stat(std::process::id()) else {
            return s;
        };
        if let Some((ticks, at)) = self.prev {
            let dt = now.saturating_duration_since(at).as_secs_f64();
            if dt > 0.0 {
                let busy = p.cpu_ticks.saturating_sub(ticks) as f64 / TICKS_PER_SEC / dt;
                s.insert("cpu_percent".into(), round3((busy / self.cores * 100.0).min(100.0)));
            }
        }
        self.prev = Some((p.cpu_ticks, now));
        s.insert("cores".into(), self.cores);
        s.insert("rss_bytes".into(), p.rss_pages as f64 * PAGE_SIZE);
        let (sockets, threads) = (open_sockets(), threads());
        if let Some(n) = sockets {
            s.insert("open_sockets".into(), n as f64);
        }
        if let Some(n) = threads {
            s.insert("threads".into(), n as f64);
        }
        s
    }
}

impl Default for SelfProbe {
    fn default() -> Self {
        SelfProbe::new()
    }
}

/// The cores this process may run on (`taskset`, a cgroup cpuset): `Cpus_allowed_list`.
fn allowed_cores() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:"))?;
    parse_cpu_list(list.trim())
}

/// `0-3,6,8-9` → 7.
fn parse_cpu_list(list: &str) -> Option<usize> {
    let mut n = 0;
    for part in list.split(',').filter(|p| !p.is_empty()) {
        n += match part.split_once('-') {
            Some((a, b)) => {
                b.trim()
                    .parse::<usize>()
                    .ok()?
                    .checked_sub(a.trim().parse::<usize>().ok()?)?
                    + 1
            }
            None => part.trim().parse::<usize>().map(|_| 1).ok()?,
        };
    }
    (n > 0).then_some(n)
}

fn open_sockets() -> Option<usize> {
    let dir = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(
        dir.flatten()
            .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
            .count(),
    )
}

fn threads() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))?
        .trim()
        .parse()
        .ok()
}

/// The running probe; [`Generator::stop`] takes a last sample and returns once it is written.
pub struct Generator {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Generator {
    /// Starts sampling on the current runtime; `clock` is the run's start.
    pub fn start(clock: Instant, mut sink: impl RecordSink) -> Generator {
        let stop = CancellationToken::new();
        let token = stop.clone();
        let task = tokio::spawn(async move {
            let mut probe = SelfProbe::new();
            let mut tick = tokio::time::interval(INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let last = tokio::select! {
                    _ = token.cancelled() => true,
                    _ = tick.tick() => false,
                };
                let series = probe.sample();
                if !series.is_empty() {
                    sink.write(&MonitorRecord {
                        t: round3(Instant::now().saturating_duration_since(clock).as_secs_f64()),
                        monitor: NAME.into(),
                        series,
                        error: None,
                    });
                }
                if last {
                    break;
                }
            }
        });
        Generator { stop, task }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1"), Some(2));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("x"), None);
    }

    #[test]
    fn samples_this_process() {
        let mut p = SelfProbe::new();
        let first = p.sample();
        assert!(first["rss_bytes"] > 0.0 && first["cores"] >= 1.0, "{first:?}");
        assert!(!first.contains_key("cpu_percent"), "a rate needs two samples");
        let t = std::time::Instant::now();
        while t.elapsed() < Duration::from_millis(50) {
            std::hint::black_box(0u64);
        }
        let second = p.sample();
        assert!((0.0..=100.0).contains(&second["cpu_percent"]), "{second:?}");
        assert!(second["threads"] >= 1.0);
    }
}
