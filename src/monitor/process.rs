//! Processes by executable name or pid file: CPU % (of one core; 200 = two cores busy), resident
//! memory, how many there are, and restarts. A restart is a pid that vanished or whose start
//! time changed between two samples (the voice seed's "workers crashed, uptime 0-20 s"): a
//! process that is killed and started again is counted whether or not it got the same pid.

use std::collections::BTreeMap;
use std::path::Path;

use stampede_plan::ProcessSelector;
use tokio::time::Instant;

use super::{round3, MonitorError, Series};

/// Linux's clock ticks per second for `/proc/<pid>/stat` times (`getconf CLK_TCK`); 100 on every
/// mainstream architecture, assumed to avoid a libc dependency.
pub(super) const TICKS_PER_SEC: f64 = 100.0;
pub(super) const PAGE_SIZE: f64 = 4096.0;
/// The kernel's `comm` keeps 15 bytes of the executable name.
const COMM_LEN: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Proc {
    /// utime + stime, in ticks.
    pub(super) cpu_ticks: u64,
    /// Start time after boot, in ticks: changes when a pid is reused by a new process.
    start: u64,
    pub(super) rss_pages: u64,
}

pub struct Processes {
    sel: ProcessSelector,
    prev: Option<(BTreeMap<u32, Proc>, Instant)>,
    restarts: u64,
}

impl Processes {
    pub fn new(sel: ProcessSelector) -> Self {
        Processes {
            sel,
            prev: None,
            restarts: 0,
        }
    }

    pub fn sample(&mut self) -> Result<Series, MonitorError> {
        let now = Instant::now();
        let procs = match &self.sel {
            ProcessSelector::Name(n) => by_name(n)?,
            ProcessSelector::PidFile(p) => by_pid_file(p),
        };
        let mut s = Series::new();
        if let Some((prev, at)) = &self.prev {
            let dt = now.saturating_duration_since(*at).as_secs_f64();
            let mut ticks = 0u64;
            for (pid, old) in prev {
                match procs.get(pid) {
                    Some(p) if p.start == old.start => ticks += p.cpu_ticks.saturating_sub(old.cpu_ticks),
                    _ => self.restarts += 1,
                }
            }
            if dt > 0.0 {
                s.insert("cpu_percent".into(), round3(ticks as f64 / TICKS_PER_SEC / dt * 100.0));
            }
        }
        s.insert("count".into(), procs.len() as f64);
        s.insert(
            "rss_bytes".into(),
            procs.values().map(|p| p.rss_pages as f64 * PAGE_SIZE).sum(),
        );
        s.insert("restarts".into(), self.restarts as f64);
        self.prev = Some((procs, now));
        Ok(s)
    }
}

pub(super) fn read_stat(pid: u32) -> Option<Proc> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Fields after `(comm)`, which may itself hold spaces and parentheses.
fn parse_stat(text: &str) -> Option<Proc> {
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // f[0] is field 3 (state): utime = 14, stime = 15, starttime = 22, rss = 24.
    let n = |field: usize| f.get(field - 3).and_then(|x| x.parse::<u64>().ok());
    Some(Proc {
        cpu_ticks: n(14)? + n(15)?,
        start: n(22)?,
        rss_pages: n(24)?,
    })
}

fn by_name(name: &str) -> Result<BTreeMap<u32, Proc>, MonitorError> {
    let dir = std::fs::read_dir("/proc").map_err(|e| MonitorError::Failed {
        what: format!("process {name}"),
        reason: format!("/proc: {e}"),
    })?;
    let short: String = name.chars().take(COMM_LEN).collect();
    let mut out = BTreeMap::new();
    let me = std::process::id();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        let comm = comm.trim_end_matches('\n');
        let matches = comm == short || (comm.len() >= COMM_LEN && exe_name(pid).as_deref() == Some(name));
        if matches {
            if let Some(p) = read_stat(pid) {
                out.insert(pid, p);
            }
        }
    }
    Ok(out)
}

/// The base name of argv[0], for names longer than `comm` keeps.
fn exe_name(pid: u32) -> Option<String> {
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let argv0 = cmd.split(|b| *b == 0).next()?;
    let s = String::from_utf8_lossy(argv0);
    Some(s.rsplit('/').next().unwrap_or(&s).to_string())
}

/// The process whose pid is in the file; none when the file is missing or the pid is gone (a
/// restart in progress).
fn by_pid_file(path: &Path) -> BTreeMap<u32, Proc> {
    let pid = std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok());
    pid.and_then(|pid| read_stat(pid).map(|p| (pid, p)))
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_comm() {
        let s = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 12345 1000000 250 18446744073709551615";
        assert_eq!(
            parse_stat(s),
            Some(Proc {
                cpu_ticks: 10,
                start: 12345,
                rss_pages: 250
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S"), None);
    }

    #[test]
    fn finds_processes_by_name_and_counts_a_vanished_one_as_a_restart() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let mut by_name = Processes::new(ProcessSelector::Name("sleep".into()));
        // Right after exec a process may not have its memory mapped yet: give it a moment.
        let mut s = by_name.sample().unwrap();
        for _ in 0..40 {
            if s["count"] >= 1.0 && s["rss_bytes"] > 0.0 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            s = by_name.sample().unwrap();
        }
        assert!(s["count"] >= 1.0 && s["rss_bytes"] > 0.0, "{s:?}");
        let dir = std::env::temp_dir().join(format!("stampede-pid-{pid}"));
        std::fs::write(&dir, pid.to_string()).unwrap();
        let mut by_file = Processes::new(ProcessSelector::PidFile(dir.clone()));
        assert_eq!(by_file.sample().unwrap()["count"], 1.0);
        let _ = child.kill();
        let _ = child.wait();
        let s = by_file.sample().unwrap();
        assert_eq!((s["count"], s["restarts"]), (0.0, 1.0), "{s:?}");
        // Still gone: counted once, not at every sample.
        assert_eq!(by_file.sample().unwrap()["restarts"], 1.0);
        let _ = std::fs::remove_file(&dir);
    }
}
