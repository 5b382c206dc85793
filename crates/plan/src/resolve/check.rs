//! Checks and expected statuses.

use bytes::Bytes;
use serde_json::Value;
use serde_saphyr::Location;

use super::*;
use crate::error::did_you_mean;
use crate::model::*;
use crate::raw::*;

pub(super) fn status_one(rs: &Resolver, v: &Value, loc: &Location) -> R<StatusRange> {
    let bad = || {
        rs.errs
            .hint(loc, format!("`{v}` is not a status"), "use 200, \"2xx\" or \"200-299\"")
    };
    let in_range = |s: u16| (100..=599).contains(&s);
    match v {
        Value::Number(n) => {
            let s = n.as_u64().filter(|s| *s <= 999).ok_or_else(bad)? as u16;
            in_range(s).then_some(StatusRange { lo: s, hi: s }).ok_or_else(bad)
        }
        Value::String(s) => {
            let s = s.trim();
            if let Some(c) = s
                .strip_suffix("xx")
                .and_then(|c| c.parse::<u16>().ok())
                .filter(|c| (1..=5).contains(c))
            {
                return Ok(StatusRange {
                    lo: c * 100,
                    hi: c * 100 + 99,
                });
            }
            if let Some((a, b)) = s.split_once('-') {
                let (a, b) = (
                    a.trim().parse::<u16>().map_err(|_| bad())?,
                    b.trim().parse::<u16>().map_err(|_| bad())?,
                );
                return (in_range(a) && in_range(b) && a <= b)
                    .then_some(StatusRange { lo: a, hi: b })
                    .ok_or_else(bad);
            }
            let c = s.parse::<u16>().map_err(|_| bad())?;
            in_range(c).then_some(StatusRange { lo: c, hi: c }).ok_or_else(bad)
        }
        _ => Err(bad()),
    }
}

pub(super) fn statuses(rs: &Resolver, v: &Any) -> R<Vec<StatusRange>> {
    match &v.value {
        Value::Array(a) if !a.is_empty() => a.iter().map(|x| status_one(rs, x, &v.referenced)).collect(),
        Value::Array(_) => Err(rs.errs.at(&v.referenced, "an empty status list accepts nothing")),
        x => Ok(vec![status_one(rs, x, &v.referenced)?]),
    }
}

pub(super) fn check(rs: &Resolver, c: &Any) -> R<Check> {
    let errs = &rs.errs;
    let hint = "checks: `status: 200`, `header: { name: X, equals|contains: v | exists: true }`, `body_contains: text`, `body_not_contains: text`, `json: { path: $.a, equals: v | exists: true }`, optionally with `name:`";
    let Value::Object(m) = &c.value else {
        return Err(errs.hint(&c.referenced, "a check must be a map", hint));
    };
    let mut name = None;
    let mut kind = None;
    for (k, v) in m {
        let sub = |s: &str| rs.sub(s, &c.referenced);
        let k_ = match k.as_str() {
            "name" => {
                name = Some(v.as_str().map(String::from).unwrap_or_else(|| v.to_string()));
                continue;
            }
            "status" => {
                let r = statuses(rs, &spanned(v.clone(), c))?;
                let label = format!(
                    "status {}",
                    match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    }
                );
                (CheckKind::Status(r), label)
            }
            "body_contains" | "body_not_contains" => {
                let s = v.as_str().map(String::from).unwrap_or_else(|| v.to_string());
                let s = sub(&s)?;
                let label = format!(
                    "{} {s}",
                    if k == "body_contains" {
                        "body contains"
                    } else {
                        "body lacks"
                    }
                );
                if k == "body_contains" {
                    (CheckKind::BodyContains(Bytes::from(s)), label)
                } else {
                    (CheckKind::BodyNotContains(Bytes::from(s)), label)
                }
            }
            "header" => {
                let Value::Object(h) = v else {
                    return Err(errs.hint(&c.referenced, "header check: not understood", hint));
                };
                let hname = h
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| errs.hint(&c.referenced, "header check needs `name:`", hint))?;
                let hn = header_name(rs, hname, &c.referenced)?;
                if let Some(x) = h.get("equals") {
                    let x = sub(&x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))?;
                    (CheckKind::HeaderEquals(hn, x.clone()), format!("header {hname} == {x}"))
                } else if let Some(x) = h.get("contains") {
                    let x = sub(&x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))?;
                    (
                        CheckKind::HeaderContains(hn, x.clone()),
                        format!("header {hname} contains {x}"),
                    )
                } else if h.get("exists") == Some(&Value::Bool(true)) {
                    (CheckKind::HeaderExists(hn), format!("header {hname} exists"))
                } else {
                    return Err(errs.hint(
                        &c.referenced,
                        "header check needs `equals:`, `contains:` or `exists: true`",
                        hint,
                    ));
                }
            }
            "json" => {
                let Value::Object(j) = v else {
                    return Err(errs.hint(&c.referenced, "json check: not understood", hint));
                };
                let p = j
                    .get("path")
                    .or_else(|| j.get("pointer"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| errs.hint(&c.referenced, "json check needs `path:` (or `pointer:`)", hint))?;
                let path = crate::jsonpath::parse(p).map_err(|e| errs.at(&c.referenced, e))?;
                if let Some(x) = j.get("equals") {
                    let x = subst_value(rs, x, &c.referenced)?;
                    let label = format!(
                        "json {p} == {}",
                        x.as_str().map(String::from).unwrap_or_else(|| x.to_string())
                    );
                    (CheckKind::JsonEquals(path, x), label)
                } else if j.get("exists") == Some(&Value::Bool(true)) {
                    (CheckKind::JsonExists(path), format!("json {p} exists"))
                } else {
                    return Err(errs.hint(&c.referenced, "json check needs `equals:` or `exists: true`", hint));
                }
            }
            other => {
                let known = ["name", "status", "header", "body_contains", "body_not_contains", "json"];
                let dym = did_you_mean(other, known).unwrap_or_else(|| hint.to_string());
                return Err(errs.hint(&c.referenced, format!("`{other}` is not a check"), dym));
            }
        };
        if kind.is_some() {
            return Err(errs.hint(
                &c.referenced,
                "one check per list item",
                "split it into two `- …` items",
            ));
        }
        kind = Some(k_);
    }
    let (kind, label) = kind.ok_or_else(|| errs.hint(&c.referenced, "the check says nothing to check", hint))?;
    Ok(Check {
        name: name.unwrap_or(label),
        kind,
    })
}
