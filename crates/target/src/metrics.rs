//! Ground-truth counters and the Prometheus `/metrics` exposition.
//!
//! Counters are plain atomics indexed by (endpoint, status), so counting costs no lock and no
//! allocation per request. They serve two readers: [`crate::Server::stats`] (tests and the demo
//! compare the client's view with what the server really did) and `/metrics` (stampede's
//! Prometheus monitor samples it like it would a real system's exporter).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::Shared;

const FIRST_STATUS: u16 = 100;
const STATUS_SLOTS: usize = 500; // 100..=599

/// Name under which requests that matched no endpoint are counted.
pub const UNMATCHED: &str = "_unmatched";

/// Per-endpoint counters.
#[derive(Debug)]
pub struct EndpointCounters {
    by_status: Box<[AtomicU64]>,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) cache_misses: AtomicU64,
    /// When the endpoint answered its first request: the clock of `slowdown`.
    pub(crate) first: std::sync::OnceLock<std::time::Instant>,
    /// `rate_limit`: the current 1 s window (seconds since `first`) and requests in it, packed
    /// as window << 32 | count so one compare-and-swap keeps them consistent.
    pub(crate) window: AtomicU64,
}

impl EndpointCounters {
    pub fn new() -> Self {
        EndpointCounters {
            by_status: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            first: std::sync::OnceLock::new(),
            window: AtomicU64::new(0),
        }
    }

    /// Counts one answered request.
    pub fn record(&self, status: u16) {
        let i = usize::from(status.saturating_sub(FIRST_STATUS)).min(STATUS_SLOTS - 1);
        self.by_status[i].fetch_add(1, Ordering::Relaxed);
    }

    fn statuses(&self) -> BTreeMap<u16, u64> {
        self.by_status
            .iter()
            .enumerate()
            .filter_map(|(i, c)| {
                let n = c.load(Ordering::Relaxed);
                (n > 0).then_some((FIRST_STATUS + i as u16, n))
            })
            .collect()
    }
}

impl Default for EndpointCounters {
    fn default() -> Self {
        Self::new()
    }
}

/// What the server really did, from its own counters (`/metrics` and `/_admin` excluded).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// All answered requests.
    pub total: u64,
    /// Answered requests by HTTP status.
    pub by_status: BTreeMap<u16, u64>,
    /// Per endpoint name (plus `_unmatched` for requests no endpoint matched).
    pub endpoints: BTreeMap<String, EndpointStats>,
    /// Requests answered 503 because a service's queue was full.
    pub rejected_queue_full: u64,
    /// Requests answered 504 because they waited longer than a service's queue timeout.
    pub rejected_queue_timeout: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct EndpointStats {
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

pub(crate) fn stats(s: &Shared) -> Stats {
    let mut out = Stats::default();
    let named = s
        .config
        .endpoints
        .iter()
        .map(|e| e.name.as_str())
        .zip(s.counters.iter())
        .chain(std::iter::once((UNMATCHED, &s.unmatched)));
    for (name, c) in named {
        let by_status = c.statuses();
        let requests = by_status.values().sum();
        if requests == 0 && name == UNMATCHED {
            continue;
        }
        for (st, n) in &by_status {
            *out.by_status.entry(*st).or_default() += n;
        }
        out.total += requests;
        out.endpoints.insert(
            name.to_string(),
            EndpointStats {
                requests,
                by_status,
                cache_hits: c.cache_hits.load(Ordering::Relaxed),
                cache_misses: c.cache_misses.load(Ordering::Relaxed),
            },
        );
    }
    for p in &s.pools {
        out.rejected_queue_full += p.rejected_full.load(Ordering::Relaxed);
        out.rejected_queue_timeout += p.rejected_timeout.load(Ordering::Relaxed);
    }
    out
}

/// Renders the Prometheus text exposition format, version 0.0.4.
pub(crate) fn render(s: &Shared) -> String {
    let mut o = String::with_capacity(4096);
    let family = |o: &mut String, name: &str, kind: &str, help: &str| {
        let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
    };
    let pools = &s.pools;

    family(
        &mut o,
        "stampede_target_service_busy_workers",
        "gauge",
        "Workers currently serving a request.",
    );
    for p in pools {
        sample(
            &mut o,
            "stampede_target_service_busy_workers",
            &[("service", &p.config.name)],
            p.busy() as f64,
        );
    }
    family(
        &mut o,
        "stampede_target_service_max_workers",
        "gauge",
        "Configured workers (pool size).",
    );
    for p in pools {
        sample(
            &mut o,
            "stampede_target_service_max_workers",
            &[("service", &p.config.name)],
            p.config.workers as f64,
        );
    }
    family(
        &mut o,
        "stampede_target_service_queue_depth",
        "gauge",
        "Requests waiting for a worker.",
    );
    for p in pools {
        sample(
            &mut o,
            "stampede_target_service_queue_depth",
            &[("service", &p.config.name)],
            p.queued() as f64,
        );
    }
    family(
        &mut o,
        "stampede_target_service_queue_max",
        "gauge",
        "Configured queue length.",
    );
    for p in pools {
        sample(
            &mut o,
            "stampede_target_service_queue_max",
            &[("service", &p.config.name)],
            p.config.queue as f64,
        );
    }
    family(
        &mut o,
        "stampede_target_service_rejected_total",
        "counter",
        "Requests refused by a service: queue full (503) or queue timeout (504).",
    );
    for p in pools {
        let n = &p.config.name;
        sample(
            &mut o,
            "stampede_target_service_rejected_total",
            &[("service", n), ("reason", "queue_full")],
            p.rejected_full.load(Ordering::Relaxed) as f64,
        );
        sample(
            &mut o,
            "stampede_target_service_rejected_total",
            &[("service", n), ("reason", "queue_timeout")],
            p.rejected_timeout.load(Ordering::Relaxed) as f64,
        );
    }
    let conn_pools: Vec<_> = pools.iter().filter(|p| p.config.connection_pool).collect();
    if !conn_pools.is_empty() {
        family(
            &mut o,
            "stampede_target_connection_pool_in_use",
            "gauge",
            "Connections of a connection pool in use.",
        );
        for p in &conn_pools {
            sample(
                &mut o,
                "stampede_target_connection_pool_in_use",
                &[("pool", &p.config.name)],
                p.busy() as f64,
            );
        }
        family(
            &mut o,
            "stampede_target_connection_pool_max",
            "gauge",
            "Connection pool size.",
        );
        for p in &conn_pools {
            sample(
                &mut o,
                "stampede_target_connection_pool_max",
                &[("pool", &p.config.name)],
                p.config.workers as f64,
            );
        }
    }

    family(
        &mut o,
        "stampede_target_in_flight_requests",
        "gauge",
        "Requests being handled (queued or served).",
    );
    sample(&mut o, "stampede_target_in_flight_requests", &[], s.in_flight() as f64);
    family(
        &mut o,
        "stampede_target_cache_enabled",
        "gauge",
        "1 when the response cache is switched on.",
    );
    sample(
        &mut o,
        "stampede_target_cache_enabled",
        &[],
        if s.cache_enabled() { 1.0 } else { 0.0 },
    );

    let cached: Vec<_> = s
        .config
        .endpoints
        .iter()
        .zip(s.counters.iter())
        .filter(|(e, _)| e.cache.is_some())
        .collect();
    family(
        &mut o,
        "stampede_target_cache_hits_total",
        "counter",
        "Requests served from the cache.",
    );
    for (e, c) in &cached {
        sample(
            &mut o,
            "stampede_target_cache_hits_total",
            &[("endpoint", &e.name)],
            c.cache_hits.load(Ordering::Relaxed) as f64,
        );
    }
    family(
        &mut o,
        "stampede_target_cache_misses_total",
        "counter",
        "Cacheable requests that went to the service.",
    );
    for (e, c) in &cached {
        sample(
            &mut o,
            "stampede_target_cache_misses_total",
            &[("endpoint", &e.name)],
            c.cache_misses.load(Ordering::Relaxed) as f64,
        );
    }

    let st = stats(s);
    family(
        &mut o,
        "stampede_target_requests_total",
        "counter",
        "Answered requests by endpoint and status.",
    );
    for (name, e) in &st.endpoints {
        for (code, n) in &e.by_status {
            sample(
                &mut o,
                "stampede_target_requests_total",
                &[("endpoint", name), ("status", &code.to_string())],
                *n as f64,
            );
        }
    }
    family(
        &mut o,
        "stampede_target_errors_total",
        "counter",
        "Answered requests with a status >= 400, by endpoint and status.",
    );
    for (name, e) in &st.endpoints {
        for (code, n) in e.by_status.iter().filter(|(c, _)| **c >= 400) {
            sample(
                &mut o,
                "stampede_target_errors_total",
                &[("endpoint", name), ("status", &code.to_string())],
                *n as f64,
            );
        }
    }

    family(
        &mut o,
        "stampede_target_websocket_connections",
        "gauge",
        "Open WebSocket connections.",
    );
    sample(
        &mut o,
        "stampede_target_websocket_connections",
        &[],
        s.ws.open.load(Ordering::Relaxed) as f64,
    );
    family(
        &mut o,
        "stampede_target_websocket_messages_received_total",
        "counter",
        "WebSocket data frames received.",
    );
    sample(
        &mut o,
        "stampede_target_websocket_messages_received_total",
        &[],
        s.ws.received.load(Ordering::Relaxed) as f64,
    );
    family(
        &mut o,
        "stampede_target_websocket_messages_sent_total",
        "counter",
        "WebSocket data frames sent.",
    );
    sample(
        &mut o,
        "stampede_target_websocket_messages_sent_total",
        &[],
        s.ws.sent.load(Ordering::Relaxed) as f64,
    );

    let (cpu, rss) = process_usage();
    if let Some(cpu) = cpu {
        family(
            &mut o,
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        sample(&mut o, "process_cpu_seconds_total", &[], cpu);
    }
    if let Some(rss) = rss {
        family(
            &mut o,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        sample(&mut o, "process_resident_memory_bytes", &[], rss);
    }
    o
}

fn sample(o: &mut String, name: &str, labels: &[(&str, &str)], v: f64) {
    o.push_str(name);
    if !labels.is_empty() {
        o.push('{');
        for (i, (k, val)) in labels.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            let _ = write!(o, "{k}=\"{}\"", escape(val));
        }
        o.push('}');
    }
    let _ = writeln!(o, " {v}");
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Process CPU seconds (utime + stime from `/proc/self/stat`) and resident memory (`VmRSS` from
/// `/proc/self/status`). `None` where `/proc` is not available (not Linux). Assumes the usual
/// 100 clock ticks per second (`getconf CLK_TCK`), which avoids a libc dependency.
pub fn process_usage() -> (Option<f64>, Option<f64>) {
    const TICKS_PER_SEC: f64 = 100.0;
    let cpu = std::fs::read_to_string("/proc/self/stat").ok().and_then(|s| {
        // Fields after the `(comm)`, which may itself contain spaces and parentheses.
        let rest = &s[s.rfind(')')? + 1..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state); utime is field 14, stime field 15.
        let ut: f64 = f.get(11)?.parse().ok()?;
        let st: f64 = f.get(12)?.parse().ok()?;
        Some((ut + st) / TICKS_PER_SEC)
    });
    let rss = std::fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024.0)
    });
    (cpu, rss)
}
