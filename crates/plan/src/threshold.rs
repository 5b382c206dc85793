//! Threshold expressions: `p95 < 500ms`, `error_rate < 5%`, `rps >= 250`, `p(99.9) < 2s`.

use std::time::Duration;

use crate::model::{CmpOp, Metric, Scope, Threshold};

/// Parses one expression into a threshold with the whole-plan scope.
pub fn parse_expr(expr: &str) -> Result<Threshold, String> {
    let e = expr.trim();
    let (op_pos, op, op_len) = ["<=", ">=", "<", ">"]
        .iter()
        .filter_map(|o| e.find(o).map(|p| (p, *o, o.len())))
        .min_by_key(|(p, o, _)| (*p, std::cmp::Reverse(o.len())))
        .ok_or_else(|| format!("`{e}` has no comparison (expected e.g. `p95 < 500ms`)"))?;
    let metric_s = e[..op_pos].trim();
    let value_s = e[op_pos + op_len..].trim();
    let op = match op {
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    };
    let metric = parse_metric(metric_s)?;
    let value = match metric {
        Metric::ErrorRate | Metric::WsLostRate | Metric::ConnectFailed => {
            let v = value_s
                .strip_suffix('%')
                .ok_or_else(|| format!("{metric_s} takes a percentage, e.g. `{metric_s} < 5%` (got `{value_s}`)"))?;
            let v: f64 = v
                .trim()
                .parse()
                .map_err(|_| format!("`{value_s}` is not a percentage"))?;
            if !(0.0..=100.0).contains(&v) {
                return Err(format!("`{value_s}` is not between 0% and 100%"));
            }
            v / 100.0
        }
        Metric::Rps => {
            let v = value_s.trim_end_matches("/s").trim();
            v.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(|| {
                    format!("rps takes a finite number per second, 0 or more, e.g. `rps >= 250` (got `{value_s}`)")
                })?
        }
        _ => {
            if value_s.ends_with('%') {
                return Err(format!(
                    "{metric_s} is a latency: give it a time (e.g. 500ms), not `{value_s}`"
                ));
            }
            crate::units::parse_duration(value_s)
                .map_err(|e| format!("{metric_s}: {e}"))?
                .as_secs_f64()
                * 1000.0
        }
    };
    Ok(Threshold {
        expr: e.to_string(),
        metric,
        op,
        value,
        scope: Scope {
            phase: None,
            step: None,
        },
        abort_on_fail: false,
        delay: Duration::from_secs(10),
    })
}

pub const METRICS: &[&str] = &[
    "avg",
    "min",
    "max",
    "p50",
    "p90",
    "p95",
    "p99",
    "p(99.9)",
    "error_rate",
    "rps",
    "ws_lost_rate",
    "connect_failed",
];

fn parse_metric(m: &str) -> Result<Metric, String> {
    Ok(match m {
        "avg" => Metric::Avg,
        "min" => Metric::Min,
        "max" => Metric::Max,
        "error_rate" => Metric::ErrorRate,
        "rps" => Metric::Rps,
        "ws_lost_rate" => Metric::WsLostRate,
        "connect_failed" => Metric::ConnectFailed,
        _ => {
            let q = m
                .strip_prefix("p(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| m.strip_prefix('p'))
                .and_then(|q| q.parse::<f64>().ok())
                .filter(|q| *q > 0.0 && *q < 100.0);
            match q {
                Some(q) => Metric::Percentile(q),
                None => {
                    let hint = crate::error::did_you_mean(m, METRICS.iter().copied())
                        .map(|h| format!(" ({h})"))
                        .unwrap_or_default();
                    return Err(format!(
                        "`{m}` is not a metric{hint}; use avg, min, max, p50, p90, p95, p99, p(99.9), error_rate, rps, ws_lost_rate or connect_failed"
                    ));
                }
            }
        }
    })
}

/// Parses a comma-separated list (`"p95 < 500ms, error_rate < 5%"`), as `--slo` takes it.
pub fn parse_list(list: &str) -> Result<Vec<Threshold>, String> {
    let v: Result<Vec<_>, _> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(parse_expr)
        .collect();
    let v = v?;
    if v.is_empty() {
        return Err("no thresholds given".into());
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        let t = parse_expr("p95 < 500ms").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::Percentile(95.0), CmpOp::Lt, 500.0));
        let t = parse_expr("error_rate < 5%").unwrap();
        assert_eq!((t.metric, t.value), (Metric::ErrorRate, 0.05));
        let t = parse_expr("rps >= 250").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::Rps, CmpOp::Ge, 250.0));
        let t = parse_expr("p(99.9) <= 2s").unwrap();
        assert_eq!((t.metric, t.op, t.value), (Metric::Percentile(99.9), CmpOp::Le, 2000.0));
        assert_eq!(parse_expr("avg<300ms").unwrap().value, 300.0);
        assert!(parse_expr("p95 < 5%").unwrap_err().contains("latency"));
        assert!(parse_expr("error_rate < 5ms").is_err());
        assert!(parse_expr("p959 < 5ms").is_err());
        assert!(parse_expr("latency < 5ms").is_err());
        assert!(parse_expr("p95 500ms").is_err());
        assert_eq!(parse_list("p95 < 500ms, error_rate < 5%").unwrap().len(), 2);
        let t = parse_expr("ws_lost_rate < 0.1%").unwrap();
        assert_eq!((t.metric, t.value), (Metric::WsLostRate, 0.001));
        assert_eq!(parse_expr("connect_failed < 1%").unwrap().metric, Metric::ConnectFailed);
        assert!(parse_expr("ws_lost_rate < 5ms").is_err());
        assert!(parse_list("").is_err());
    }
}
