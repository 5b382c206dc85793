//! `monitors:`: what the run samples on the server side, checked like the rest of the plan.

use std::time::Duration;

use super::{parse_origin, Resolver, R};
use crate::model::*;
use crate::raw::*;

const KINDS: &str = "prometheus: URL, host: true, process: NAME, pid_file: PATH, postgres: URL or redis: URL";

/// Samples more often than this would measure the monitor, not the system.
const MIN_INTERVAL: Duration = Duration::from_millis(100);

pub fn resolve_monitors(rs: &Resolver, raw: &[S<RawMonitor>]) -> R<Vec<Monitor>> {
    let mut out: Vec<Monitor> = Vec::new();
    for m in raw {
        let mon = resolve_monitor(rs, m)?;
        if out.iter().any(|o| o.name == mon.name) {
            let loc = m.value.name.as_ref().map(|n| n.referenced).unwrap_or(m.referenced);
            return Err(rs.errs.hint(
                &loc,
                format!("monitor `{}` is defined twice", mon.name),
                "give each monitor its own `name:`",
            ));
        }
        out.push(mon);
    }
    Ok(out)
}

fn resolve_monitor(rs: &Resolver, m: &S<RawMonitor>) -> R<Monitor> {
    let errs = &rs.errs;
    let r = &m.value;
    let set: Vec<&str> = [
        ("prometheus", r.prometheus.is_some()),
        ("host", r.host.is_some()),
        ("process", r.process.is_some()),
        ("pid_file", r.pid_file.is_some()),
        ("postgres", r.postgres.is_some()),
        ("redis", r.redis.is_some()),
    ]
    .iter()
    .filter(|(_, on)| *on)
    .map(|(k, _)| *k)
    .collect();
    if set.len() != 1 {
        let what = if set.is_empty() {
            "a monitor needs a kind".to_string()
        } else {
            format!("a monitor has one kind, this one has {}", set.join(" and "))
        };
        return Err(errs.hint(&m.referenced, what, format!("use one of {KINDS}")));
    }
    if r.prometheus.is_none() {
        if let Some(i) = r.include.as_ref().and_then(|i| i.first()) {
            return Err(errs.at(&i.referenced, "`include` only applies to a `prometheus` monitor"));
        }
        if let Some((_, l)) = r.labels.as_ref().and_then(|l| l.iter().next()) {
            return Err(errs.at(&l.referenced, "`labels` only applies to a `prometheus` monitor"));
        }
    }
    let interval = match &r.interval {
        Some(v) => {
            let d = rs.positive_duration(v, "monitor interval")?;
            if d < MIN_INTERVAL {
                return Err(errs.hint(
                    &v.referenced,
                    format!("monitor interval {d:?} is too short"),
                    "sample at most every 100ms; the default is 1s",
                ));
            }
            d
        }
        None => Duration::from_secs(1),
    };
    let (default_name, kind) = if let Some(u) = &r.prometheus {
        let url = rs.string(u)?;
        let (origin, path) = parse_origin(url.trim()).map_err(|e| {
            errs.hint(
                &u.referenced,
                format!("prometheus: {e}"),
                "e.g. `prometheus: http://127.0.0.1:9100/metrics`",
            )
        })?;
        let path = if path.is_empty() { "/metrics".to_string() } else { path };
        let mut include = Vec::new();
        for f in r.include.iter().flatten() {
            let s = rs.string(f)?;
            if let Some(re) = s.strip_prefix('/').and_then(|x| x.strip_suffix('/')) {
                let re = regex_lite::Regex::new(re)
                    .map_err(|e| errs.at(&f.referenced, format!("include: `{s}` is not a valid regex: {e}")))?;
                include.push(SeriesFilter::Regex(re));
            } else if s.is_empty() {
                return Err(errs.hint(&f.referenced, "include: empty name", "a metric name, or /regex/"));
            } else {
                include.push(SeriesFilter::Name(s));
            }
        }
        let mut labels = Vec::new();
        for (k, v) in r.labels.iter().flatten() {
            labels.push((k.clone(), rs.string(v)?));
        }
        (
            origin.host.clone(),
            MonitorKind::Prometheus {
                origin,
                path,
                include,
                labels,
            },
        )
    } else if let Some(h) = &r.host {
        if !h.value {
            return Err(errs.hint(
                &h.referenced,
                "`host: false` monitors nothing",
                "remove the monitor, or write `host: true`",
            ));
        }
        ("host".to_string(), MonitorKind::Host)
    } else if let Some(p) = &r.process {
        let name = rs.string(p)?;
        let name = name.trim().to_string();
        if name.is_empty() || name.contains('/') {
            return Err(errs.hint(
                &p.referenced,
                format!("process: `{name}` is not a process name"),
                "the executable's name as `ps -o comm` shows it (e.g. `php-fpm8.2`), or use `pid_file:`",
            ));
        }
        (name.clone(), MonitorKind::Process(ProcessSelector::Name(name)))
    } else if let Some(p) = &r.pid_file {
        let file = rs.string(p)?;
        let path = rs.base_dir.join(file.trim());
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "process".into());
        (stem, MonitorKind::Process(ProcessSelector::PidFile(path)))
    } else if let Some(u) = &r.postgres {
        let url = rs.string(u)?;
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(errs.hint(
                &u.referenced,
                "postgres: not a postgres:// URL",
                "e.g. `postgres: postgres://app:${PGPASSWORD}@127.0.0.1:5432/app`",
            ));
        }
        (
            "postgres".into(),
            MonitorKind::Postgres {
                url: Secret::new(url.into()),
            },
        )
    } else if let Some(u) = &r.redis {
        let url = rs.string(u)?;
        let url = url.trim();
        if crate::redact::parse_redis_url(url).is_none() {
            return Err(errs.hint(
                &u.referenced,
                "redis: not a redis:// URL",
                "e.g. `redis: redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0`",
            ));
        }
        (
            "redis".into(),
            MonitorKind::Redis {
                url: Secret::new(url.into()),
            },
        )
    } else {
        return Err(errs.hint(&m.referenced, "a monitor needs a kind", format!("use one of {KINDS}")));
    };
    let name = match &r.name {
        Some(n) => {
            let s = rs.string(n)?;
            if s.trim().is_empty() {
                return Err(errs.at(&n.referenced, "monitor name is empty"));
            }
            s.trim().to_string()
        }
        None => default_name,
    };
    Ok(Monitor { name, interval, kind })
}
