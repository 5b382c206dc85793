//! Rules for the monitors the plan names, written for the metric names the system's own
//! exporters give (docs/alerts.md), with the insurance seed's levels:
//!
//! - `postgres`: pool in use / max > 80% warning, > 95% critical (postgres_exporter's
//!   `pg_stat_activity_count` / `pg_settings_max_connections`); buffer cache hit ratio < 85%
//!   (`pg_stat_database_blks_hit` / `_blks_read`).
//! - `redis`: cache hit ratio < 85% (redis_exporter's `redis_keyspace_hits_total` /
//!   `_misses_total`).
//! - `host`: CPU > 70% / 85% for 5 min, memory > 80% / 90% (node_exporter's
//!   `node_cpu_seconds_total`, `node_memory_MemAvailable_bytes` / `_MemTotal_bytes`).
//! - `prometheus`: the families stampede scraped (from a run) or the plan's `include:` names:
//!   each `F_in_use` with an `F_max` is a pool, each `X_hits_total` with `X_misses_total` (or
//!   the `X_hit_ratio` the monitor derived) a cache.
//! - `process`: no rule (process exporters name their series differently; say so).

use stampede_plan::{MonitorKind, SeriesFilter};

use super::{num, rule, selector, Rule, Severity, Source};

pub const POOL: (f64, f64) = (0.80, 0.95);
pub const CACHE_MIN: f64 = 0.85;
pub const CPU: (f64, f64) = (0.70, 0.85);
pub const MEMORY: (f64, f64) = (0.80, 0.90);

pub fn rules(src: &Source, notes: &mut Vec<String>) -> Vec<Rule> {
    let mut out = Vec::new();
    for m in &src.monitors {
        let name = m.name.as_str();
        match &m.kind {
            MonitorKind::Postgres { .. } => {
                let pool = "sum by (instance) (pg_stat_activity_count) / on (instance) max by (instance) (pg_settings_max_connections)";
                out.extend(pair(
                    src,
                    "PostgresPoolHigh",
                    name,
                    pool,
                    POOL,
                    "2m",
                    "PostgreSQL connections in use",
                    "postgres_exporter's pg_stat_activity_count over pg_settings_max_connections",
                    ratio(src, &format!("{name}.connections_in_use"), &format!("{name}.max_connections")),
                ));
                let hit = "sum by (instance) (rate(pg_stat_database_blks_hit[5m]))";
                let read = "sum by (instance) (rate(pg_stat_database_blks_read[5m]))";
                out.push(cache(
                    src,
                    "PostgresCacheHitRatioLow",
                    name,
                    &format!("{hit} / ({hit} + {read})"),
                    "PostgreSQL buffer cache hit ratio",
                    "postgres_exporter's pg_stat_database_blks_hit and pg_stat_database_blks_read",
                    observed(src, &format!("{name}.cache_hit_ratio"), 1.0),
                ));
            }
            MonitorKind::Redis { .. } => {
                let hits = "sum by (instance) (rate(redis_keyspace_hits_total[5m]))";
                let misses = "sum by (instance) (rate(redis_keyspace_misses_total[5m]))";
                out.push(cache(
                    src,
                    "RedisCacheHitRatioLow",
                    name,
                    &format!("{hits} / ({hits} + {misses})"),
                    "Redis cache hit ratio",
                    "redis_exporter's redis_keyspace_hits_total and redis_keyspace_misses_total",
                    observed(src, &format!("{name}.hit_ratio"), 1.0),
                ));
            }
            MonitorKind::Host => {
                let cpu = "1 - sum by (instance) (rate(node_cpu_seconds_total{mode=~\"idle|iowait\"}[5m])) / sum by (instance) (rate(node_cpu_seconds_total[5m]))";
                out.extend(pair(
                    src,
                    "HostCpuHigh",
                    name,
                    cpu,
                    CPU,
                    "5m",
                    "CPU utilization",
                    "node_exporter's node_cpu_seconds_total (idle and iowait count as idle, as stampede's host monitor counts them)",
                    observed(src, &format!("{name}.cpu_percent"), 0.01),
                ));
                out.extend(pair(
                    src,
                    "HostMemoryHigh",
                    name,
                    "1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                    MEMORY,
                    "5m",
                    "Memory utilization",
                    "node_exporter's node_memory_MemAvailable_bytes over node_memory_MemTotal_bytes",
                    ratio(src, &format!("{name}.mem_used_bytes"), &format!("{name}.mem_total_bytes")),
                ));
            }
            MonitorKind::Process(_) => notes.push(format!(
                "monitor `{name}` (process): no alert rule (process exporters name their series in different ways); the host's CPU and memory rules cover the machine"
            )),
            MonitorKind::Prometheus { include, labels, .. } => {
                let families = match &src.run {
                    Some(r) => r.series_of(name).iter().map(|s| family(s)).collect::<Vec<_>>(),
                    None => {
                        if include.is_empty() || include.iter().any(|f| matches!(f, SeriesFilter::Regex(_))) {
                            notes.push(format!(
                                "monitor `{name}` (prometheus): its families are known once it has scraped them; families named in `include:` get rules, for the rest give `stampede alerts` a run directory of this plan"
                            ));
                        }
                        include
                            .iter()
                            .filter_map(|f| match f {
                                SeriesFilter::Name(n) => Some(n.clone()),
                                SeriesFilter::Regex(_) => None,
                            })
                            .collect()
                    }
                };
                let before = out.len();
                out.extend(scraped(src, name, &families, &selector(labels)));
                if out.len() == before {
                    notes.push(format!(
                        "monitor `{name}` (prometheus): no pool (`F_in_use` with `F_max`) or cache (`X_hits_total` with `X_misses_total`) families, so no rule"
                    ));
                }
            }
        }
    }
    out
}

/// A series name as the monitor stored it, back to its family: labels dropped, the `_per_s`
/// the monitor gives counters removed.
fn family(series: &str) -> String {
    let bare = series.split('{').next().unwrap_or(series);
    bare.strip_suffix("_per_s").unwrap_or(bare).to_string()
}

/// Pools and caches among a Prometheus monitor's families.
fn scraped(src: &Source, monitor: &str, families: &[String], sel: &str) -> Vec<Rule> {
    let has = |f: &str| families.iter().any(|x| x == f);
    let mut out = Vec::new();
    let mut pools: Vec<&str> = families.iter().filter_map(|f| f.strip_suffix("_in_use")).collect();
    pools.sort();
    pools.dedup();
    for p in pools.into_iter().filter(|p| has(&format!("{p}_max"))) {
        out.extend(pair(
            src,
            "PoolHigh",
            monitor,
            &format!("{p}_in_use{sel} / {p}_max{sel}"),
            POOL,
            "2m",
            &format!("Pool {p} in use"),
            &format!("{p}_in_use over {p}_max, as stampede scraped them from monitor `{monitor}`"),
            match (
                observed_prefix(src, &format!("{monitor}.{p}_in_use")),
                observed_prefix(src, &format!("{monitor}.{p}_max")),
            ) {
                (Some((_, used)), Some((_, max))) if max > 0.0 => Some((used / max, used / max)),
                _ => None,
            },
        ));
    }
    let mut caches: Vec<&str> = families
        .iter()
        .filter_map(|f| f.strip_suffix("_hit_ratio").or_else(|| f.strip_suffix("_hits_total")))
        .collect();
    caches.sort();
    caches.dedup();
    for c in caches {
        if !has(&format!("{c}_hit_ratio")) && !has(&format!("{c}_misses_total")) {
            continue;
        }
        let hits = format!("rate({c}_hits_total{sel}[5m])");
        let misses = format!("rate({c}_misses_total{sel}[5m])");
        out.push(cache(
            src,
            "CacheHitRatioLow",
            monitor,
            &format!("{hits} / ({hits} + {misses})"),
            &format!("Cache {c} hit ratio"),
            &format!("{c}_hits_total and {c}_misses_total, as stampede scraped them from monitor `{monitor}`"),
            observed_prefix(src, &format!("{monitor}.{c}_hit_ratio")).map(|(lo, _)| (lo, lo)),
        ));
    }
    out
}

/// A warning and a critical rule on a ratio going above its levels.
#[allow(clippy::too_many_arguments)]
fn pair(
    src: &Source,
    alert: &str,
    monitor: &str,
    expr: &str,
    (warn, crit): (f64, f64),
    for_: &str,
    what: &str,
    metrics: &str,
    seen: Option<(f64, f64)>,
) -> Vec<Rule> {
    [(Severity::Warning, warn), (Severity::Critical, crit)]
        .into_iter()
        .map(|(sev, level)| {
            let mut r = rule(
                src,
                alert,
                sev,
                format!("{expr} > {}", num(level)),
                for_,
                &[("monitor", monitor)],
                format!("{what} above {}% for {for_} ({})", num(level * 100.0), sev.as_str()),
                format!(
                    "{what} over {}% for {for_}: the insurance seed's levels ({}% warning, {}% critical) for the plan's monitor `{monitor}`. Metric names assumed: {metrics}. Now {{{{ $value | humanizePercentage }}}}.",
                    num(level * 100.0),
                    num(warn * 100.0),
                    num(crit * 100.0)
                ),
            );
            seen_annotation(src, &mut r, seen, true);
            r
        })
        .collect()
}

/// A warning rule on a hit ratio falling below 85%.
fn cache(
    src: &Source,
    alert: &str,
    monitor: &str,
    ratio: &str,
    what: &str,
    metrics: &str,
    seen: Option<(f64, f64)>,
) -> Rule {
    let mut r = rule(
        src,
        alert,
        Severity::Warning,
        format!("{ratio} < {}", num(CACHE_MIN)),
        "10m",
        &[("monitor", monitor)],
        format!("{what} below {}% for 10m (warning)", num(CACHE_MIN * 100.0)),
        format!(
            "{what} under {}% for 10 minutes: the insurance seed's level for the plan's monitor `{monitor}`. Metric names assumed: {metrics}. Now {{{{ $value | humanizePercentage }}}}.",
            num(CACHE_MIN * 100.0)
        ),
    );
    seen_annotation(src, &mut r, seen, false);
    r
}

/// Adds `measured`: the highest (or lowest) value the run saw of the series.
fn seen_annotation(src: &Source, r: &mut Rule, seen: Option<(f64, f64)>, highest: bool) {
    if let (Some(run), Some((lo, hi))) = (&src.run, seen) {
        let text = if highest {
            format!(
                "run {} saw at most {}% (stampede's own samples)",
                run.id,
                num(hi * 100.0)
            )
        } else {
            format!(
                "run {} saw at least {}% (stampede's own samples)",
                run.id,
                num(lo * 100.0)
            )
        };
        r.annotations.insert("measured".to_string(), text);
    }
}

/// The min and max over the run of series `name`, times `scale` (to a fraction).
fn observed(src: &Source, name: &str, scale: f64) -> Option<(f64, f64)> {
    let (lo, hi) = src.run.as_ref()?.server(name)?;
    Some((lo * scale, hi * scale))
}

/// The highest `used` over the run as a share of the highest `total`.
fn ratio(src: &Source, used: &str, total: &str) -> Option<(f64, f64)> {
    let run = src.run.as_ref()?;
    let (_, u) = run.server(used)?;
    let (_, t) = run.server(total)?;
    (t > 0.0).then_some((u / t, u / t))
}

/// The min and max over the run of every series of a family (`monitor.family{…}`).
fn observed_prefix(src: &Source, family: &str) -> Option<(f64, f64)> {
    let run = src.run.as_ref()?;
    let monitor = family.split('.').next()?;
    let fam = family.split_once('.')?.1;
    let seen: Vec<(f64, f64)> = run
        .series_of(monitor)
        .iter()
        .filter(|s| s.split('{').next() == Some(fam))
        .filter_map(|s| run.server(&format!("{monitor}.{s}")))
        .collect();
    if seen.is_empty() {
        return None;
    }
    Some((
        seen.iter().map(|s| s.0).fold(f64::INFINITY, f64::min),
        seen.iter().map(|s| s.1).fold(f64::NEG_INFINITY, f64::max),
    ))
}
