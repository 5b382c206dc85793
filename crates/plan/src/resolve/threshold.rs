//! Thresholds, as expressions or scoped maps.

use serde_json::Value;

use super::*;
use crate::error::did_you_mean;
use crate::model::*;
use crate::raw::*;

pub(super) fn resolve_threshold(rs: &Resolver, t: &Any, steps: &NameSet, phases: &NameSet) -> R<Threshold> {
    let errs = &rs.errs;
    let parse = |s: &str| {
        crate::threshold::parse_expr(s).map_err(|e| {
            errs.hint(
                &t.referenced,
                e,
                "thresholds look like `p95 < 500ms`, `error_rate < 5%`, `rps >= 250`",
            )
        })
    };
    match &t.value {
        Value::String(s) => parse(&rs.sub(s, &t.referenced)?),
        Value::Object(m) => {
            let expr = m
                .get("check")
                .or_else(|| m.get("expr"))
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    errs.hint(
                        &t.referenced,
                        "a threshold map needs `check:`",
                        "e.g. `{ step: login, check: p99 < 800ms }`",
                    )
                })?;
            let mut th = parse(&rs.sub(expr, &t.referenced)?)?;
            for (k, v) in m {
                match k.as_str() {
                    "check" | "expr" => {}
                    "step" | "phase" => {
                        let n = v
                            .as_str()
                            .ok_or_else(|| errs.at(&t.referenced, format!("threshold `{k}` must be a name")))?;
                        let known = if k == "step" { steps } else { phases };
                        if known.position(n).is_none() {
                            let hint = known.hint(n, &format!("{k}s"));
                            return Err(errs.hint(
                                &t.referenced,
                                format!("threshold scoped to unknown {k} `{n}`"),
                                hint,
                            ));
                        }
                        if k == "step" {
                            th.scope.step = Some(n.to_string());
                        } else {
                            th.scope.phase = Some(n.to_string());
                        }
                    }
                    "abort_on_fail" => {
                        th.abort_on_fail = v
                            .as_bool()
                            .ok_or_else(|| errs.at(&t.referenced, "abort_on_fail must be true or false"))?
                    }
                    "delay" => th.delay = rs.duration(&spanned(v.clone(), t), "delay")?,
                    other => {
                        let hint = did_you_mean(other, ["check", "step", "phase", "abort_on_fail", "delay"])
                            .unwrap_or_else(|| "keys: check, step, phase, abort_on_fail, delay".into());
                        return Err(errs.hint(&t.referenced, format!("unknown threshold key `{other}`"), hint));
                    }
                }
            }
            Ok(th)
        }
        _ => Err(errs.hint(
            &t.referenced,
            "a threshold is an expression or a map",
            "e.g. `- p95 < 500ms`",
        )),
    }
}
