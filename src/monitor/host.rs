//! This machine, from `/proc`: CPU busy %, 1-minute load average (and the core count to judge
//! it by), memory used/total, network bytes/s (all interfaces but loopback). Linux only; where
//! `/proc` is missing the monitor fails once and says so.

use tokio::time::Instant;

use super::{rate, round3, MonitorError, Series};

pub struct Host {
    /// (busy ticks, total ticks) at the previous sample.
    cpu: Option<(u64, u64)>,
    rx: Option<(f64, Instant)>,
    tx: Option<(f64, Instant)>,
}

impl Host {
    pub fn new() -> Host {
        Host {
            cpu: None,
            rx: None,
            tx: None,
        }
    }

    pub fn sample(&mut self) -> Result<Series, MonitorError> {
        let read = |p: &str| {
            std::fs::read_to_string(p).map_err(|e| MonitorError::Failed {
                what: "host".into(),
                reason: format!("{p}: {e}"),
            })
        };
        let now = Instant::now();
        let mut s = Series::new();
        let stat = read("/proc/stat")?;
        if let Some((busy, total, cores)) = parse_stat(&stat) {
            if let Some((pb, pt)) = self.cpu {
                let (db, dt) = (busy.saturating_sub(pb), total.saturating_sub(pt));
                if dt > 0 {
                    s.insert("cpu_percent".into(), round3(db as f64 * 100.0 / dt as f64));
                }
            }
            self.cpu = Some((busy, total));
            s.insert("cores".into(), cores as f64);
        }
        if let Some(l) = read("/proc/loadavg")?
            .split_whitespace()
            .next()
            .and_then(|x| x.parse::<f64>().ok())
        {
            s.insert("load1".into(), l);
        }
        let mem = read("/proc/meminfo")?;
        if let (Some(total), Some(avail)) = (meminfo(&mem, "MemTotal:"), meminfo(&mem, "MemAvailable:")) {
            s.insert("mem_total_bytes".into(), total);
            s.insert("mem_used_bytes".into(), (total - avail).max(0.0));
        }
        if let Ok(net) = std::fs::read_to_string("/proc/net/dev") {
            let (rx, tx) = net_bytes(&net);
            if let Some(r) = rate(self.rx, (rx, now)) {
                s.insert("net_rx_bytes_per_s".into(), round3(r));
            }
            if let Some(r) = rate(self.tx, (tx, now)) {
                s.insert("net_tx_bytes_per_s".into(), round3(r));
            }
            self.rx = Some((rx, now));
            self.tx = Some((tx, now));
        }
        Ok(s)
    }
}

/// (busy ticks, total ticks, cores) from `/proc/stat`. Idle and iowait count as not busy.
fn parse_stat(text: &str) -> Option<(u64, u64, usize)> {
    let cpu = text.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = cpu.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    if v.len() < 4 {
        return None;
    }
    // user nice system idle iowait irq softirq steal [guest guest_nice: already in user/nice]
    let total: u64 = v.iter().take(8).sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    let cores = text
        .lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .count();
    Some((total.saturating_sub(idle), total, cores.max(1)))
}

fn meminfo(text: &str, key: &str) -> Option<f64> {
    let kb: f64 = text
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb * 1024.0)
}

/// Received and sent bytes over all interfaces but `lo`.
fn net_bytes(text: &str) -> (f64, f64) {
    let mut rx = 0.0;
    let mut tx = 0.0;
    for line in text.lines().skip(2) {
        let Some((iface, rest)) = line.split_once(':') else {
            continue;
        };
        if iface.trim() == "lo" {
            continue;
        }
        let f: Vec<f64> = rest.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        if f.len() >= 9 {
            rx += f[0];
            tx += f[8];
        }
    }
    (rx, tx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files() {
        let stat =
            "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\ncpu1 50 0 25 400 25 0 0 0 0 0\nintr 1\n";
        assert_eq!(parse_stat(stat), Some((150, 1000, 2)));
        assert_eq!(parse_stat("garbage"), None);
        let net = "Inter-|   Receive\n face |bytes\n    lo: 999 1 0 0 0 0 0 0 999 1 0 0 0 0 0 0\n  eth0: 100 1 0 0 0 0 0 0 200 1 0 0 0 0 0 0\n";
        assert_eq!(net_bytes(net), (100.0, 200.0));
        assert_eq!(meminfo("MemTotal:  1000 kB\n", "MemTotal:"), Some(1_024_000.0));
    }

    #[test]
    fn samples_this_machine() {
        let mut h = Host::new();
        let a = h.sample().unwrap();
        assert!(a["cores"] >= 1.0 && a["mem_total_bytes"] > 0.0 && a.contains_key("load1"));
        std::thread::sleep(std::time::Duration::from_millis(50));
        let b = h.sample().unwrap();
        let cpu = b["cpu_percent"];
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    }
}
