//! Pools at their limit (connections, workers, PostgreSQL's max_connections), and the errors
//! a full pool causes.

use std::collections::BTreeMap;

use super::statements;
use super::{fmt_t, impact, phase_of, r3, secs_at, value_near, Input, Rule, Samples, MIN_SATURATED_SAMPLES};
use crate::analysis::{Finding, Priority};

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

fn pairs(tl: &Samples) -> Vec<Pair> {
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

/// What PostgreSQL answers when its connections run out, or a statement waits too long for
/// one: errors a saturated PostgreSQL causes.
const POSTGRES_FULL: &[&str] = &["sql_53300", "sql_57014", "sql_08006", "sql_08001"];

fn monitor_of(key: &str) -> &str {
    key.split_once('.').map(|x| x.0).unwrap_or("")
}

/// A pool at its limit for at least [`MIN_SATURATED_SAMPLES`] samples, rated by what the client
/// saw meanwhile; and the errors that pool caused, as a finding of their own.
pub struct PoolSaturation;

impl Rule for PoolSaturation {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let (secs, tl) = (input.secs, input.server);
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
            let im = impact(input, &during);
            // Which SQL statements slowed meanwhile (none for a run without SQL steps).
            let changes = statements::changes(input, &during);
            let degraded = im.latency_degraded()
                || im.rps_flat.is_some()
                || changes.iter().any(|c| c.ratio() >= statements::SLOWED);
            let load_errors: BTreeMap<String, u64> = during
                .iter()
                .flat_map(|s| s.kinds.iter())
                .filter(|(k, _)| {
                    matches!(
                        k.as_str(),
                        "timeout" | "connect_timeout" | "status_503" | "status_504" | "status_502"
                    ) || (p.kind == PoolKind::Postgres && POSTGRES_FULL.contains(&k.as_str()))
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
            evidence.extend(im.latency_line("while saturated"));
            evidence.extend(statements::lines(&changes, "while saturated", 6));
            if let Some((rps, va, vb)) = im.rps_flat {
                evidence.push(format!(
                    "throughput flat at {rps:.0} req/s while VUs grew from {va} to {vb}: the knee"
                ));
            }
            let priority = if im.threshold.is_some() || !load_errors.is_empty() {
                Priority::Critical
            } else if degraded {
                Priority::High
            } else {
                evidence.push("no client-visible effect yet: the pool is at its limit with no headroom".into());
                Priority::Medium
            };
            out.push(Finding {
                priority,
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
                    priority: Priority::High,
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_pair_is_found_by_its_names() {
        let mut tl = Samples::new();
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
    fn labels() {
        assert_eq!(label_value("x{pool=\"db\",a=\"b\"}", "pool").as_deref(), Some("db"));
        assert_eq!(label_value("x", "pool"), None);
    }
}
