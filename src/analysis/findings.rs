//! Findings: rules over the joint timeline of client seconds (`intervals.jsonl`) and server
//! samples (`monitors.jsonl`), each with its evidence (numbers and times), a priority and a
//! recommendation in plain words. Pure functions of the run directory, like the rest of
//! `analysis`, so `stampede summary` finds what `stampede run` found.
//!
//! The rules (docs/monitors.md has them in words):
//! - a pool at its limit (`*_in_use` = `*_max`, `*_busy_workers` = `*_max_workers`, PostgreSQL
//!   connections = `max_connections`), rated by what the client saw meanwhile (latency over its
//!   threshold or doubled, throughput flat while users grew);
//! - errors whose kind matches a saturated pool (timeouts, 503, 504 while it was full);
//! - CPU ≥ 90 % or load average ≥ cores while latency degraded → CPU-bound;
//! - process restarts → worker instability;
//! - a cache hit ratio lower in the busier seconds than in the quieter ones;
//! - memory or latency drifting upward over a long phase (slope per hour) → possible leak;
//! - errors that come from configuration, not load.

use std::collections::BTreeMap;

use super::summary::{Finding, ServerMetric};
use crate::outcome::{classify, ErrorClass};
use crate::recorder::{new_hist, Hist};
use crate::rundir::Run;

const CPU_SATURATED: f64 = 90.0;
/// A phase at least this long is watched for drift.
const LONG_PHASE_S: f64 = 300.0;
/// A drop of the hit ratio worth a finding (percentage points / 100).
const HIT_RATIO_DROP: f64 = 0.03;
/// Saturated for at least this many samples, so one busy scrape is not a finding.
const MIN_SATURATED_SAMPLES: usize = 2;

/// One second of the client side, all steps merged.
pub struct Sec {
    pub(crate) t: f64,
    dur: f64,
    phase: String,
    vus: u64,
    requests: u64,
    kinds: BTreeMap<String, u64>,
    latency: Hist,
}

/// A server series over the run: `monitor.series` → (t, value), in time order.
type Timeline = BTreeMap<String, Vec<(f64, f64)>>;

fn timeline(run: &Run) -> Timeline {
    let mut out: Timeline = BTreeMap::new();
    for r in &run.monitors {
        for (k, v) in &r.series {
            if v.is_finite() {
                out.entry(format!("{}.{k}", r.monitor)).or_default().push((r.t, *v));
            }
        }
    }
    for v in out.values_mut() {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// One client second: the steps of an interval merged (the findings' timeline).
pub fn sec_of(iv: &crate::recorder::Interval) -> Sec {
    let mut latency = crate::recorder::new_growable();
    let mut kinds = BTreeMap::new();
    let mut requests = 0;
    for s in &iv.steps {
        s.add_latency_to(&mut latency);
        requests += s.requests;
        for (k, n) in &s.kinds {
            *kinds.entry(k.clone()).or_default() += n;
        }
    }
    Sec {
        t: iv.t,
        dur: iv.dur,
        phase: iv.phase.clone(),
        vus: iv.vus,
        requests,
        kinds,
        latency,
    }
}

/// The client seconds of a run, in time order.
pub fn seconds_of(intervals: &[crate::recorder::Interval]) -> Vec<Sec> {
    let mut out: Vec<Sec> = intervals.iter().map(sec_of).collect();
    out.sort_by(|a, b| a.t.total_cmp(&b.t));
    out
}

/// The index of the client second a server sample at `t` falls in (seconds are sorted and do
/// not overlap: phases run one after the other). A binary search, so a 4-hour soak stays quick.
fn sec_index(secs: &[Sec], t: f64) -> Option<usize> {
    let i = secs.partition_point(|s| s.t <= t).checked_sub(1)?;
    (t < secs[i].t + secs[i].dur.max(1e-9)).then_some(i)
}

fn sec_at(secs: &[Sec], t: f64) -> Option<&Sec> {
    sec_index(secs, t).map(|i| &secs[i])
}

/// The client seconds the times fall in, each once, in time order.
fn secs_at(secs: &[Sec], times: impl Iterator<Item = f64>) -> Vec<&Sec> {
    let idx: std::collections::BTreeSet<usize> = times.filter_map(|t| sec_index(secs, t)).collect();
    idx.into_iter().map(|i| &secs[i]).collect()
}

/// The value of a time-sorted series sampled within half a second of `t`.
fn value_near(pts: &[(f64, f64)], t: f64) -> Option<f64> {
    let i = pts.partition_point(|p| p.0 < t);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|j| pts.get(j))
        .filter(|p| (p.0 - t).abs() < 0.5)
        .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
        .map(|p| p.1)
}

/// Phase time ranges: name → (first t, last t + dur).
fn phase_ranges(secs: &[Sec]) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for s in secs {
        match out.iter_mut().find(|p| p.0 == s.phase) {
            Some(p) => {
                p.1 = p.1.min(s.t);
                p.2 = p.2.max(s.t + s.dur);
            }
            None => out.push((s.phase.clone(), s.t, s.t + s.dur)),
        }
    }
    out
}

fn unit(series: &str) -> &'static str {
    let name = series.split('{').next().unwrap_or(series);
    if name.ends_with("_percent") {
        "%"
    } else if name.ends_with("_bytes") {
        "bytes"
    } else if name.ends_with("_per_s") {
        "/s"
    } else if name.ends_with("ratio") {
        "ratio"
    } else if name.ends_with("_s") || name.ends_with("_seconds") {
        "s"
    } else if name.contains("connection") || name.contains("clients") {
        "connections"
    } else if name.contains("workers") {
        "workers"
    } else {
        ""
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per phase, min/avg/max of every server series sampled during it.
pub fn server_metrics(run: &Run, secs: &[Sec]) -> BTreeMap<String, Vec<ServerMetric>> {
    let tl = timeline(run);
    let mut out: BTreeMap<String, Vec<ServerMetric>> = BTreeMap::new();
    for (phase, from, to) in phase_ranges(secs) {
        let mut list = Vec::new();
        for (name, pts) in &tl {
            let vals: Vec<f64> = pts.iter().filter(|(t, _)| *t >= from && *t < to).map(|p| p.1).collect();
            if vals.is_empty() {
                continue;
            }
            let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = vals.iter().sum::<f64>() / vals.len() as f64;
            list.push(ServerMetric {
                name: name.clone(),
                unit: unit(name).into(),
                min: r3(min),
                avg: r3(avg),
                max: r3(max),
            });
        }
        out.insert(phase, list);
    }
    out
}

fn fmt_t(t: f64) -> String {
    format!("t={t:.0}s")
}

fn ms(us: f64) -> String {
    format!("{:.0} ms", us / 1000.0)
}

/// A `*_in_use`-like series and the `*_max`-like series it is judged against, with a label for
/// the pool ("`db`") and the kind of pool.
struct Pair {
    used: String,
    max: String,
    pool: String,
    kind: PoolKind,
}

#[derive(Clone, Copy, PartialEq)]
enum PoolKind {
    Connections,
    Workers,
    Postgres,
}

fn label_value(key: &str, label: &str) -> Option<String> {
    let labels = key.split_once('{')?.1;
    let start = labels.find(&format!("{label}=\""))? + label.len() + 2;
    let rest = &labels[start..];
    Some(rest[..rest.find('"')?].to_string())
}

fn pairs(tl: &Timeline) -> Vec<Pair> {
    let mut out = Vec::new();
    for key in tl.keys() {
        let (monitor, series) = key.split_once('.').unwrap_or(("", key));
        let (name, labels) = match series.split_once('{') {
            Some((n, l)) => (n, format!("{{{l}")),
            None => (series, String::new()),
        };
        let (max_name, kind) = if let Some(base) = name.strip_suffix("_in_use") {
            if base.ends_with("connections") && labels.is_empty() && name == "connections_in_use" {
                ("max_connections".to_string(), PoolKind::Postgres)
            } else {
                (format!("{base}_max"), PoolKind::Connections)
            }
        } else if let Some(base) = name.strip_suffix("_busy_workers") {
            (format!("{base}_max_workers"), PoolKind::Workers)
        } else {
            continue;
        };
        let max = format!("{monitor}.{max_name}{labels}");
        if !tl.contains_key(&max) {
            continue;
        }
        let pool = label_value(series, "pool")
            .or_else(|| label_value(series, "service"))
            .unwrap_or_else(|| monitor.to_string());
        out.push(Pair {
            used: key.clone(),
            max,
            pool,
            kind,
        });
    }
    // A service exported both as a worker pool and as a connection pool (the built-in target's
    // `connection_pool: true`) is one resource: report it once, as the connection pool.
    let conn_pools: Vec<(String, String)> = out
        .iter()
        .filter(|p| p.kind == PoolKind::Connections)
        .map(|p| (monitor_of(&p.used).to_string(), p.pool.clone()))
        .collect();
    out.retain(|p| {
        p.kind != PoolKind::Workers || !conn_pools.contains(&(monitor_of(&p.used).to_string(), p.pool.clone()))
    });
    out
}

fn monitor_of(key: &str) -> &str {
    key.split_once('.').map(|x| x.0).unwrap_or("")
}

/// Latency context for a set of client seconds versus the others.
struct Impact {
    p95_during_us: f64,
    p95_before_us: f64,
    /// A p95/p99/avg threshold limit crossed during, in ms.
    threshold: Option<(String, f64)>,
    rps_flat: Option<(f64, u64, u64)>,
}

fn p95(secs: &[&Sec]) -> f64 {
    let mut h = new_hist();
    for s in secs {
        let _ = h.add(&s.latency);
    }
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.95) as f64
    }
}

fn impact(run: &Run, secs: &[Sec], during: &[&Sec]) -> Impact {
    let mine: std::collections::HashSet<usize> = during.iter().map(|s| *s as *const Sec as usize).collect();
    let others: Vec<&Sec> = secs
        .iter()
        .filter(|s| s.requests > 0 && !mine.contains(&(*s as *const Sec as usize)))
        .collect();
    let p95_during_us = p95(during);
    let p95_before_us = p95(&others);
    let threshold = run
        .meta
        .thresholds
        .iter()
        .filter(|t| t.step.is_none() && (t.metric == "p95" || t.metric == "p99" || t.metric == "avg"))
        .filter(|t| t.op.starts_with('<'))
        .find(|t| p95_during_us / 1000.0 > t.value)
        .map(|t| (t.expr.clone(), t.value));
    // Throughput flat while users grew: the busiest seconds' rate compared between the first
    // and the last third of the saturated seconds.
    let rps_flat = (during.len() >= 6).then(|| {
        let n = during.len() / 3;
        let rate = |xs: &[&Sec]| xs.iter().map(|s| s.requests as f64 / s.dur.max(0.001)).sum::<f64>() / xs.len() as f64;
        let vus = |xs: &[&Sec]| xs.iter().map(|s| s.vus).sum::<u64>() / xs.len() as u64;
        let (a, b) = (&during[..n], &during[during.len() - n..]);
        (rate(a), rate(b), vus(a), vus(b))
    });
    let rps_flat = rps_flat
        .and_then(|(ra, rb, va, vb)| (vb as f64 >= va as f64 * 1.3 && rb <= ra * 1.1).then_some((rb.max(ra), va, vb)));
    Impact {
        p95_during_us,
        p95_before_us,
        threshold,
        rps_flat,
    }
}

fn phase_of(secs: &[Sec], t: f64) -> Option<String> {
    sec_at(secs, t).map(|s| s.phase.clone())
}

fn saturation(run: &Run, secs: &[Sec], tl: &Timeline, out: &mut Vec<Finding>) {
    for p in pairs(tl) {
        let (Some(used), Some(max)) = (tl.get(&p.used), tl.get(&p.max)) else {
            continue;
        };
        let full: Vec<(f64, f64, f64)> = used
            .iter()
            .filter_map(|(t, u)| {
                let m = value_near(max, *t)?;
                (m > 0.0 && *u >= m).then_some((*t, *u, m))
            })
            .collect();
        if full.len() < MIN_SATURATED_SAMPLES {
            continue;
        }
        let (first, last) = (full[0].0, full[full.len() - 1].0);
        let during = secs_at(secs, full.iter().map(|x| x.0));
        let im = impact(run, secs, &during);
        let degraded = im.threshold.is_some()
            || (im.p95_before_us > 0.0 && im.p95_during_us >= 2.0 * im.p95_before_us)
            || im.rps_flat.is_some();
        let load_errors: BTreeMap<String, u64> = during
            .iter()
            .flat_map(|s| s.kinds.iter())
            .filter(|(k, _)| {
                matches!(
                    k.as_str(),
                    "timeout" | "connect_timeout" | "status_503" | "status_504" | "status_502"
                )
            })
            .fold(BTreeMap::new(), |mut m, (k, n)| {
                *m.entry(k.clone()).or_default() += n;
                m
            });
        let phases: Vec<String> = {
            let mut v: Vec<String> = full.iter().filter_map(|(t, _, _)| phase_of(secs, *t)).collect();
            v.dedup();
            v
        };
        let in_phase = if phases.is_empty() {
            String::new()
        } else {
            format!(" (phase {})", phases.join(", "))
        };
        let m = full[0].2;
        let (title, what, rec) = match p.kind {
            PoolKind::Connections => (
                format!("Connection pool `{}` saturated", p.pool),
                "connections in use",
                format!(
                    "Raise the size of pool `{}` (and the database's max_connections with it), or hold connections for less time: keep slow work such as calls to external APIs outside the connection, add a cache for hot reads. Then run again to find the next limit.",
                    p.pool
                ),
            ),
            PoolKind::Workers => (
                format!("Worker pool `{}` saturated", p.pool),
                "workers busy",
                format!(
                    "Add workers to `{}` (or instances behind the load balancer) if CPU and memory allow, or cut the time each request holds a worker; its capacity is workers / service time. Queue and time out early rather than letting requests wait.",
                    p.pool
                ),
            ),
            PoolKind::Postgres => (
                "PostgreSQL connections exhausted".to_string(),
                "connections in use",
                "Put a connection pooler (PgBouncer) in front of PostgreSQL or size the application pools so their sum stays below max_connections; raise max_connections only with the memory to back it.".to_string(),
            ),
        };
        let mut evidence = vec![format!(
            "{what} {}/{} ({}) in {} samples from {} to {}{in_phase}",
            full[0].1,
            m,
            p.used,
            full.len(),
            fmt_t(first),
            fmt_t(last)
        )];
        if im.p95_during_us > 0.0 {
            let mut line = format!("p95 latency {} while saturated", ms(im.p95_during_us));
            if im.p95_before_us > 0.0 {
                line.push_str(&format!(" vs {} otherwise", ms(im.p95_before_us)));
            }
            if let Some((expr, _)) = &im.threshold {
                line.push_str(&format!(" (threshold `{expr}` crossed)"));
            }
            evidence.push(line);
        }
        if let Some((rps, va, vb)) = im.rps_flat {
            evidence.push(format!(
                "throughput flat at {rps:.0} req/s while VUs grew from {va} to {vb}: the knee"
            ));
        }
        let priority = if im.threshold.is_some() || !load_errors.is_empty() {
            "critical"
        } else if degraded {
            "high"
        } else {
            evidence.push("no client-visible effect yet: the pool is at its limit with no headroom".into());
            "medium"
        };
        out.push(Finding {
            priority: priority.into(),
            title,
            evidence,
            recommendation: rec,
            phase: phases.first().cloned(),
            at_s: Some(r3(first)),
        });
        if !load_errors.is_empty() {
            let total: u64 = load_errors.values().sum();
            let kinds: Vec<String> = load_errors.iter().map(|(k, n)| format!("{n} × {k}")).collect();
            out.push(Finding {
                priority: "high".into(),
                title: format!("Errors from the saturated pool `{}`", p.pool),
                evidence: vec![format!(
                    "{total} errors ({}) between {} and {} while {what} stood at {}/{}",
                    kinds.join(", "),
                    fmt_t(first),
                    fmt_t(last),
                    full[0].1,
                    m
                )],
                recommendation: format!(
                    "These timeouts and 5xx are the pool `{}` running out, not a bug of their own: fix the saturation and they go; until then, fail fast (short queue timeout) and tell clients to retry with backoff.",
                    p.pool
                ),
                phase: phases.first().cloned(),
                at_s: Some(r3(first)),
            });
        }
    }
}

fn cpu(run: &Run, secs: &[Sec], tl: &Timeline, out: &mut Vec<Finding>) {
    let hosts: Vec<&str> = tl.keys().filter_map(|k| k.strip_suffix(".load1")).collect();
    for monitor in hosts {
        let cores = tl
            .get(&format!("{monitor}.cores"))
            .and_then(|v| v.last())
            .map(|x| x.1)
            .unwrap_or(run.meta.cores.max(1) as f64);
        let mut hot: Vec<f64> = Vec::new();
        let mut evidence = Vec::new();
        for (series, limit, label, suffix) in [
            ("cpu_percent", CPU_SATURATED, "CPU", " %"),
            ("load1", cores, "load average (1 min)", ""),
        ] {
            let Some(pts) = tl.get(&format!("{monitor}.{series}")) else {
                continue;
            };
            let over: Vec<(f64, f64)> = pts.iter().copied().filter(|(_, v)| *v >= limit).collect();
            if over.len() <= MIN_SATURATED_SAMPLES {
                continue;
            }
            let peak = over.iter().map(|x| x.1).fold(0.0, f64::max);
            evidence.push(format!(
                "{label} ≥ {limit:.0}{suffix} in {} of {} samples from {} to {}, peak {peak:.1}{suffix}",
                over.len(),
                pts.len(),
                fmt_t(over[0].0),
                fmt_t(over[over.len() - 1].0),
            ));
            hot.extend(over.iter().map(|x| x.0));
        }
        if hot.is_empty() {
            continue;
        }
        hot.sort_by(f64::total_cmp);
        let during = secs_at(secs, hot.iter().copied());
        let im = impact(run, secs, &during);
        let degraded = im.threshold.is_some() || (im.p95_before_us > 0.0 && im.p95_during_us >= 2.0 * im.p95_before_us);
        if im.p95_during_us > 0.0 {
            let mut line = format!("p95 latency {} meanwhile", ms(im.p95_during_us));
            if im.p95_before_us > 0.0 {
                line.push_str(&format!(" vs {} otherwise", ms(im.p95_before_us)));
            }
            if let Some((expr, _)) = &im.threshold {
                line.push_str(&format!(" (threshold `{expr}` crossed)"));
            }
            evidence.push(line);
        }
        out.push(Finding {
            priority: if degraded { "high" } else { "medium" }.into(),
            title: if degraded {
                format!("CPU-bound: `{monitor}`")
            } else {
                format!("CPU at saturation on `{monitor}`")
            },
            evidence,
            recommendation: format!(
                "Profile the hottest endpoints (a flame graph under this load), cache or batch the expensive work, or add cores or instances ({cores:.0} cores here). If the load generator runs on the same machine, move it off: it competes for the same CPU."
            ),
            phase: phase_of(secs, hot[0]),
            at_s: Some(r3(hot[0])),
        });
    }
}

fn restarts(secs: &[Sec], tl: &Timeline, out: &mut Vec<Finding>) {
    for (key, pts) in tl {
        let Some(monitor) = key.strip_suffix(".restarts") else {
            continue;
        };
        let mut times = Vec::new();
        let mut prev = pts.first().map(|p| p.1).unwrap_or(0.0);
        for (t, v) in pts.iter().skip(1) {
            if *v > prev {
                times.push((*t, *v - prev));
            }
            prev = *v;
        }
        let total: f64 = times.iter().map(|x| x.1).sum();
        if total <= 0.0 {
            continue;
        }
        let phase = phase_of(secs, times[0].0);
        let when: Vec<String> = times.iter().take(10).map(|(t, _)| fmt_t(*t)).collect();
        let errors: u64 = secs
            .iter()
            .filter(|s| times.iter().any(|(t, _)| (s.t - t).abs() <= 2.0))
            .flat_map(|s| s.kinds.iter())
            .filter(|(k, _)| classify(k) == ErrorClass::Load)
            .map(|(_, n)| n)
            .sum();
        let mut evidence = vec![format!(
            "`{monitor}` restarted {total:.0} time(s) during the run: {}{}",
            when.join(", "),
            phase.as_ref().map(|p| format!(" (phase {p})")).unwrap_or_default()
        )];
        if errors > 0 {
            evidence.push(format!("{errors} load errors within 2 s of a restart"));
        }
        out.push(Finding {
            priority: if errors > 0 { "critical" } else { "high" }.into(),
            title: format!("Worker instability: `{monitor}` restarted"),
            evidence,
            recommendation: "Find why the process died (its logs, the kernel's OOM killer in dmesg, crash dumps); check memory limits and max_requests-style recycling settings. Requests in flight on a dying worker fail.".into(),
            phase,
            at_s: Some(r3(times[0].0)),
        });
    }
}

fn hit_ratio(secs: &[Sec], tl: &Timeline, out: &mut Vec<Finding>) {
    for (key, pts) in tl {
        let series = key.split_once('.').map(|x| x.1).unwrap_or(key);
        if !series.split('{').next().unwrap_or("").ends_with("hit_ratio") {
            continue;
        }
        // Pair every sample with the client's request rate at that second.
        let mut with_load: Vec<(f64, f64, f64)> = pts
            .iter()
            .filter_map(|(t, v)| sec_at(secs, *t).map(|s| (s.requests as f64 / s.dur.max(0.001), *v, *t)))
            .filter(|x| x.0 > 0.0)
            .collect();
        if with_load.len() < 6 {
            continue;
        }
        with_load.sort_by(|a, b| a.0.total_cmp(&b.0));
        let third = with_load.len() / 3;
        let low = &with_load[..third];
        let high = &with_load[with_load.len() - third..];
        let avg = |xs: &[(f64, f64, f64)], i: usize| {
            xs.iter().map(|x| if i == 0 { x.0 } else { x.1 }).sum::<f64>() / xs.len() as f64
        };
        let (ratio_low, ratio_high) = (avg(low, 1), avg(high, 1));
        if ratio_low - ratio_high < HIT_RATIO_DROP {
            continue;
        }
        let first_high = high.iter().map(|x| x.2).fold(f64::INFINITY, f64::min);
        out.push(Finding {
            priority: "medium".into(),
            title: format!("Cache hit ratio falls under load ({key})"),
            evidence: vec![format!(
                "{:.1}% at ~{:.0} req/s vs {:.1}% at ~{:.0} req/s (busiest third of the samples, from {})",
                ratio_low * 100.0,
                avg(low, 0),
                ratio_high * 100.0,
                avg(high, 0),
                fmt_t(first_high)
            )],
            recommendation: "Under load more requests miss the cache and hit the backend, which is already the busiest part: check evictions and the cache's memory, warm it before peaks, and look for keys that expire together.".into(),
            phase: phase_of(secs, first_high),
            at_s: Some(r3(first_high)),
        });
    }
}

/// Least-squares slope (per second) and r² of `pts`.
fn slope(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.len() < 10 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((b, sxy * sxy / (sxx * syy)))
}

/// A series watched for drift: name, points, whether it is memory (else latency).
type Candidate = (String, Vec<(f64, f64)>, bool);

fn drift(secs: &[Sec], tl: &Timeline, out: &mut Vec<Finding>) {
    for (phase, from, to) in phase_ranges(secs) {
        if to - from < LONG_PHASE_S {
            continue;
        }
        let mut candidates: Vec<Candidate> = tl
            .iter()
            .filter(|(k, _)| {
                let name = k.split('{').next().unwrap_or(k);
                name.ends_with("mem_used_bytes")
                    || name.ends_with("rss_bytes")
                    || name.ends_with("used_memory_bytes")
                    || name.ends_with("resident_memory_bytes")
            })
            .map(|(k, v)| {
                (
                    k.clone(),
                    v.iter().copied().filter(|(t, _)| *t >= from && *t < to).collect(),
                    true,
                )
            })
            .collect();
        let lat: Vec<(f64, f64)> = secs
            .iter()
            .filter(|s| s.phase == phase && !s.latency.is_empty())
            .map(|s| (s.t, s.latency.value_at_quantile(0.5) as f64 / 1000.0))
            .collect();
        candidates.push(("p50 latency (ms)".into(), lat, false));
        for (name, pts, is_mem) in candidates {
            let Some((b, r2)) = slope(&pts) else { continue };
            let start = pts.iter().take(pts.len() / 10 + 1).map(|p| p.1).sum::<f64>() / (pts.len() / 10 + 1) as f64;
            let grown = b * (to - from);
            if b <= 0.0 || r2 < 0.5 || start <= 0.0 || grown < 0.10 * start {
                continue;
            }
            let per_hour = b * 3600.0;
            let shown = if is_mem {
                format!("{:.1} MiB/h", per_hour / (1024.0 * 1024.0))
            } else {
                format!("{per_hour:.1} ms/h")
            };
            out.push(Finding {
                priority: if grown >= 0.5 * start { "high" } else { "medium" }.into(),
                title: format!("Possible leak: {name} drifts upward"),
                evidence: vec![format!(
                    "{name} grows {shown} over phase {phase} ({} to {}, +{:.0}% of its start, r² {r2:.2})",
                    fmt_t(from),
                    fmt_t(to),
                    grown / start * 100.0
                )],
                recommendation: if is_mem {
                    "Memory grows steadily at constant load: take heap snapshots at the start and the end of a soak and compare them; look for caches without bounds and connections or listeners that are never released.".into()
                } else {
                    "Latency grows at constant load: something accumulates (table bloat, an unbounded queue or cache, lock contention, memory pressure). Compare the server's metrics at the start and the end of the phase.".into()
                },
                phase: Some(phase.clone()),
                at_s: Some(r3(from)),
            });
        }
    }
}

fn configuration(secs: &[Sec], out: &mut Vec<Finding>) {
    let mut by_kind: BTreeMap<String, (u64, f64)> = BTreeMap::new();
    let mut total = 0u64;
    let mut requests = 0u64;
    for s in secs {
        requests += s.requests;
        for (k, n) in &s.kinds {
            if classify(k) == ErrorClass::Configuration && *n > 0 {
                let e = by_kind.entry(k.clone()).or_insert((0, s.t));
                e.0 += n;
                total += n;
            }
        }
    }
    if total == 0 {
        return;
    }
    let first = by_kind.values().map(|v| v.1).fold(f64::INFINITY, f64::min);
    let evidence = by_kind
        .iter()
        .map(|(k, (n, t))| format!("{n} × {k} from {} on", fmt_t(*t)))
        .chain(std::iter::once(format!(
            "{total} of {requests} requests ({:.1}%) fail at any load",
            total as f64 * 100.0 / requests.max(1) as f64
        )))
        .collect();
    out.push(Finding {
        priority: "high".into(),
        title: "Errors from configuration, not load".into(),
        evidence,
        recommendation: "Fix these before reading the load results: an unsigned or wrongly signed request (401), a missing route (404), a dependency that is not set up (424), a refused connection or a certificate problem. They fail the same at one user as at a thousand and distort the error rate.".into(),
        phase: phase_of(secs, first),
        at_s: Some(r3(first)),
    });
}

fn monitor_failures(run: &Run, out: &mut Vec<String>) {
    for r in &run.monitors {
        if let Some(e) = &r.error {
            out.push(format!("monitor `{}` failed at {}: {e}", r.monitor, fmt_t(r.t)));
        }
    }
}

/// Every finding of a run, most urgent first, then by time.
pub fn findings(run: &Run, secs: &[Sec]) -> Vec<Finding> {
    let tl = timeline(run);
    let mut out = Vec::new();
    saturation(run, secs, &tl, &mut out);
    cpu(run, secs, &tl, &mut out);
    restarts(secs, &tl, &mut out);
    hit_ratio(secs, &tl, &mut out);
    drift(secs, &tl, &mut out);
    configuration(secs, &mut out);
    let rank = |p: &str| match p {
        "critical" => 0,
        "high" => 1,
        _ => 2,
    };
    out.sort_by(|a, b| {
        rank(&a.priority)
            .cmp(&rank(&b.priority))
            .then(a.at_s.unwrap_or(0.0).total_cmp(&b.at_s.unwrap_or(0.0)))
    });
    out
}

/// Warnings about the monitors themselves (failures, unreadable lines).
pub fn monitor_warnings(run: &Run) -> Vec<String> {
    let mut out = Vec::new();
    monitor_failures(run, &mut out);
    for (line, e) in &run.monitors_skipped {
        out.push(format!("monitors.jsonl:{line}: skipped an unreadable record ({e})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client second with `requests` requests of `lat_ms` each and these error kinds.
    fn sec(t: f64, phase: &str, requests: u64, lat_ms: u64, kinds: &[(&str, u64)]) -> Sec {
        let mut latency = new_hist();
        latency.record_n(lat_ms * 1000, requests.max(1)).unwrap();
        Sec {
            t,
            dur: 1.0,
            phase: phase.into(),
            vus: 10,
            requests,
            kinds: kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            latency,
        }
    }

    #[test]
    fn restarts_are_worker_instability_with_times() {
        let secs: Vec<Sec> = (0..10).map(|i| sec(i as f64, "peak", 50, 100, &[])).collect();
        let mut tl = Timeline::new();
        tl.insert(
            "fpm.restarts".into(),
            vec![(0.5, 0.0), (1.5, 0.0), (2.5, 1.0), (3.5, 1.0), (6.5, 3.0)],
        );
        let mut out = Vec::new();
        restarts(&secs, &tl, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].title, "Worker instability: `fpm` restarted");
        assert_eq!(out[0].at_s, Some(2.5));
        assert_eq!(out[0].phase.as_deref(), Some("peak"));
        assert!(out[0].evidence[0].contains("restarted 3 time(s)") && out[0].evidence[0].contains("t=2s, t=6s"));
    }

    #[test]
    fn a_hit_ratio_lower_when_busier_is_a_finding() {
        // Quiet seconds at 10 req/s hit 92%, busy ones at 100 req/s hit 85%.
        let mut secs = Vec::new();
        let mut pts = Vec::new();
        for i in 0..12 {
            let busy = i >= 6;
            secs.push(sec(i as f64, "p", if busy { 100 } else { 10 }, 10, &[]));
            pts.push((i as f64 + 0.5, if busy { 0.85 } else { 0.92 }));
        }
        let mut tl = Timeline::new();
        tl.insert("redis.hit_ratio".into(), pts.clone());
        let mut out = Vec::new();
        hit_ratio(&secs, &tl, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].evidence[0].starts_with("92.0% at ~10 req/s vs 85.0% at ~100 req/s"),
            "{:?}",
            out[0].evidence
        );
        // A steady ratio is no finding.
        tl.insert("redis.hit_ratio".into(), pts.iter().map(|(t, _)| (*t, 0.9)).collect());
        let mut out = Vec::new();
        hit_ratio(&secs, &tl, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn memory_growing_over_a_long_phase_is_a_possible_leak() {
        let secs: Vec<Sec> = (0..600).map(|i| sec(i as f64, "soak", 20, 100, &[])).collect();
        let mut tl = Timeline::new();
        // 400 MiB growing by 1 MiB every 10 s: 360 MiB/h.
        let mib = 1024.0 * 1024.0;
        tl.insert(
            "app.process_resident_memory_bytes".into(),
            (0..600)
                .map(|i| (i as f64 + 0.5, 400.0 * mib + (i / 10) as f64 * mib))
                .collect(),
        );
        tl.insert(
            "host.mem_total_bytes".into(),
            (0..600).map(|i| (i as f64, 8e9)).collect(),
        );
        let mut out = Vec::new();
        drift(&secs, &tl, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].title.contains("process_resident_memory_bytes"));
        assert!(out[0].evidence[0].contains("MiB/h"), "{:?}", out[0].evidence);
        let per_hour: f64 = out[0].evidence[0]
            .split(" grows ")
            .nth(1)
            .and_then(|x| x.split(' ').next())
            .and_then(|x| x.parse().ok())
            .unwrap();
        assert!((per_hour - 360.0).abs() < 10.0, "{per_hour}");
        // A short phase is not watched.
        let short: Vec<Sec> = (0..60).map(|i| sec(i as f64, "p", 20, 100, &[])).collect();
        let mut out = Vec::new();
        drift(&short, &tl, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn configuration_errors_are_told_apart_from_load_errors() {
        let secs = vec![
            sec(0.0, "a", 10, 5, &[("status_424", 3), ("status_503", 2)]),
            sec(1.0, "a", 10, 5, &[("status_401", 1), ("timeout", 4)]),
        ];
        let mut out = Vec::new();
        configuration(&secs, &mut out);
        assert_eq!(out.len(), 1);
        let e = out[0].evidence.join(" | ");
        assert!(
            e.contains("3 × status_424 from t=0s") && e.contains("1 × status_401 from t=1s"),
            "{e}"
        );
        assert!(!e.contains("503") && !e.contains("timeout"), "{e}");
        assert!(e.contains("4 of 20 requests"), "{e}");
    }

    #[test]
    fn a_pool_pair_is_found_by_its_names() {
        let mut tl = Timeline::new();
        for k in [
            "t.x_connection_pool_in_use{pool=\"db\"}",
            "t.x_connection_pool_max{pool=\"db\"}",
            "t.svc_busy_workers{service=\"fpm\"}",
            "t.svc_max_workers{service=\"fpm\"}",
            "pg.connections_in_use",
            "pg.max_connections",
            "t.orphan_in_use",
            "t.svc_busy_workers{service=\"db\"}",
            "t.svc_max_workers{service=\"db\"}",
        ] {
            tl.insert(k.into(), vec![(0.0, 1.0)]);
        }
        let p = pairs(&tl);
        let names: Vec<&str> = p.iter().map(|x| x.pool.as_str()).collect();
        // `db` is both a worker pool and a connection pool: one resource, reported once.
        assert_eq!(names, ["pg", "fpm", "db"]);
        assert!(p[2].kind == PoolKind::Connections);
    }

    #[test]
    fn slopes_and_labels() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 100.0 + 2.0 * i as f64)).collect();
        let (b, r2) = slope(&pts).unwrap();
        assert!((b - 2.0).abs() < 1e-9 && (r2 - 1.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..3]), None);
        assert_eq!(label_value("x{pool=\"db\",a=\"b\"}", "pool").as_deref(), Some("db"));
        assert_eq!(label_value("x", "pool"), None);
        assert_eq!(unit("host.cpu_percent"), "%");
        assert_eq!(unit("t.a_total_per_s{x=\"1\"}"), "/s");
    }
}
