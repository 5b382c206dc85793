//! Scenarios and their steps: request line, URL, query, headers, body, signing, captures.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::{HeaderName, Method};
use serde_json::Value;
use serde_saphyr::Location;

use super::*;
use crate::compile::{compile_json, Names};
use crate::error::did_you_mean;
use crate::model::*;
use crate::raw::*;
use crate::template::Escape;

pub(super) fn resolve_scenario(
    rs: &Resolver,
    name: &str,
    sc: &S<RawScenario>,
    names: &Names,
    target: Option<&Origin>,
    target_path: &str,
    slots: &BTreeMap<String, usize>,
) -> R<Scenario> {
    if sc.value.steps.is_empty() {
        return Err(rs.errs.hint(
            &sc.referenced,
            format!("scenario `{name}` has no steps"),
            "add `steps:` with at least one `request:`",
        ));
    }
    let think = sc.value.think.as_ref().map(|t| rs.think(t)).transpose()?;
    let mut steps: Vec<Step> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for st in &sc.value.steps {
        let step = resolve_step(rs, st, names, target, target_path, slots, steps.len())?;
        if !seen.insert(step.name.clone()) {
            let loc = st.value.name.as_ref().map(|n| n.referenced).unwrap_or(st.referenced);
            return Err(rs.errs.hint(
                &loc,
                format!("step `{}` appears twice in scenario `{name}`", step.name),
                "give each step a distinct `name:`",
            ));
        }
        steps.push(step);
    }
    Ok(Scenario {
        name: name.to_string(),
        steps,
        think,
    })
}

pub(super) fn resolve_step(
    rs: &Resolver,
    st: &S<RawStep>,
    names: &Names,
    target: Option<&Origin>,
    target_path: &str,
    slots: &BTreeMap<String, usize>,
    index: usize,
) -> R<Step> {
    let errs = &rs.errs;
    let s = &st.value;
    let think = s.think.as_ref().map(|t| rs.think(t)).transpose()?;
    if let Some(url) = &s.ws {
        if let Some(r) = &s.request {
            return Err(errs.hint(
                &r.referenced,
                "a step takes `request:` or `ws:`, not both",
                "split it into an HTTP step and a WebSocket step",
            ));
        }
        return super::ws::resolve_ws_step(rs, st, url, names, target, target_path, slots, think);
    }
    if let Some(db) = &s.sql {
        for (other, set) in [("request", s.request.is_some()), ("ws", s.ws.is_some())] {
            if set {
                return Err(errs.hint(
                    &db.referenced,
                    format!("a step takes `sql:` or `{other}:`, not both"),
                    "split it into two steps",
                ));
            }
        }
        return super::sql::resolve_sql_step(rs, st, db, names, slots, think);
    }
    if let Some(k) = first_set(&[
        ("params", !s.params.is_empty()),
        ("transaction", !s.transaction.is_empty()),
        ("explain", s.explain.is_some()),
    ]) {
        return Err(errs.hint(
            &st.referenced,
            format!("`{k}:` belongs to an SQL step"),
            "add `sql: <database>` (a name under `databases:`) to the step",
        ));
    }
    if let Some(k) = ws_only_key(s) {
        return Err(errs.hint(
            &st.referenced,
            format!("`{k}:` belongs to a WebSocket step"),
            "add `ws: /path` (or a ws:// URL) to the step",
        ));
    }
    let Some(req) = &s.request else {
        // A pause step: `- think: 1s`.
        return match think {
            Some(t)
                if s.json.is_none()
                    && s.body.is_none()
                    && s.form.is_none()
                    && s.multipart.is_none()
                    && s.checks.is_empty() =>
            {
                Ok(Step {
                    name: s
                        .name
                        .as_ref()
                        .map(|n| rs.string(n))
                        .transpose()?
                        .unwrap_or_else(|| format!("pause-{}", index + 1)),
                    kind: StepKind::Pause(t),
                    think: None,
                })
            }
            _ => Err(errs.hint(
                &st.referenced,
                "a step needs `request:`",
                "e.g. `request: GET /api/items` (or `think: 1s` alone for a pause)",
            )),
        };
    };
    let text = rs.string(req)?;
    let mut parts = text.trim().splitn(2, char::is_whitespace);
    let method_s = parts.next().unwrap_or("");
    let url = parts.next().unwrap_or("").trim();
    if !METHODS.contains(&method_s) {
        let hint = did_you_mean(&method_s.to_ascii_uppercase(), METHODS.iter().copied())
            .unwrap_or_else(|| format!("methods: {}", METHODS.join(", ")));
        return Err(errs.hint(&req.referenced, format!("`{method_s}` is not an HTTP method"), hint));
    }
    let method = Method::from_bytes(method_s.as_bytes()).map_err(|_| errs.at(&req.referenced, "bad method"))?;
    if url.is_empty() {
        return Err(errs.hint(
            &req.referenced,
            "the request has no path",
            "write `request: METHOD /path` or `request: METHOD https://host/path`",
        ));
    }
    let (origin, path) = if url.starts_with('/') {
        let o = target.ok_or_else(|| {
            errs.hint(
                &req.referenced,
                format!("`{url}` is relative, but the plan has no `target:`"),
                "add `target: http://host:port` or use a full URL",
            )
        })?;
        (o.clone(), format!("{target_path}{url}"))
    } else if url.starts_with("http://") || url.starts_with("https://") {
        parse_url(url).map_err(|e| errs.at(&req.referenced, e))?
    } else {
        return Err(errs.hint(
            &req.referenced,
            format!("`{url}` is neither a path nor an http(s) URL"),
            "paths start with `/`",
        ));
    };
    if without_templates(&path).chars().any(char::is_whitespace) {
        return Err(errs.hint(
            &req.referenced,
            format!("`{path}` contains white space"),
            "encode spaces as %20",
        ));
    }
    let name = match &s.name {
        Some(n) => rs.string(n)?,
        None => format!("{method_s} {}", path.split('?').next().unwrap_or(&path)),
    };
    let mut pq = crate::compile::Builder::default();
    pq.template(&path, Escape::None, names)
        .map_err(|e| errs.at(&req.referenced, e))?;
    let mut sep = if path.contains('?') { b'&' } else { b'?' };
    let query: Vec<(String, Any)> = match &s.query {
        None => Vec::new(),
        Some(q) => match &q.value {
            Value::Object(m) => m.iter().map(|(k, v)| (k.clone(), spanned(v.clone(), q))).collect(),
            _ => {
                return Err(errs.hint(
                    &q.referenced,
                    "`query:` of an HTTP step is a map of parameters",
                    "e.g. `query: { page: 2, q: \"{{ term }}\" }` (an SQL statement goes on an `sql:` step)",
                ))
            }
        },
    };
    for (k, v) in &query {
        pq.lit(&[sep]);
        let mut key = Vec::new();
        crate::template::url_escape_into(k.as_bytes(), &mut key);
        pq.lit(&key);
        pq.lit(b"=");
        let val = rs.scalar(v, &format!("query {k}"))?;
        pq.template(&val, Escape::Url, names)
            .map_err(|e| errs.at(&v.referenced, e))?;
        sep = b'&';
    }
    let path_and_query = pq.finish();
    if let Some(lit) = path_and_query.as_literal() {
        if http::uri::PathAndQuery::from_maybe_shared(lit.clone()).is_err() {
            return Err(errs.hint(
                &req.referenced,
                format!("`{path}` is not a valid request path"),
                "non-ASCII and special characters must be percent-encoded",
            ));
        }
    }

    let given: Vec<(&str, &Any)> = [
        ("json", &s.json),
        ("body", &s.body),
        ("form", &s.form),
        ("multipart", &s.multipart),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.as_ref().map(|v| (k, v)))
    .collect();
    if let [(first, _), (second, v), ..] = given.as_slice() {
        return Err(errs.hint(
            &v.referenced,
            format!("a step takes one body: `{first}:` or `{second}:`, not both"),
            "json:, body:, form: and multipart: each set the whole body",
        ));
    }
    let content_type = |default: &str| {
        Some(Bytes::from(
            s.content_type
                .as_ref()
                .map(|c| c.value.clone())
                .unwrap_or_else(|| default.to_string()),
        ))
    };
    let body = match given.first() {
        Some(("json", j)) => {
            let v = subst_value(rs, &j.value, &j.referenced)?;
            Some(Body {
                template: compile_json(&v, names).map_err(|e| errs.at(&j.referenced, format!("json: {e}")))?,
                content_type: content_type("application/json"),
            })
        }
        Some(("form", f)) => Some(Body {
            template: super::body::form(rs, f, names)?,
            content_type: content_type("application/x-www-form-urlencoded"),
        }),
        Some(("multipart", m)) => {
            let (template, ct) = super::body::multipart(rs, m, names)?;
            if let Some(c) = &s.content_type {
                return Err(errs.hint(
                    &c.referenced,
                    "content_type: a multipart body sets its own (with its boundary)",
                    "leave `content_type:` out; each file part takes a `content_type:` of its own",
                ));
            }
            Some(Body {
                template,
                content_type: Some(Bytes::from(ct)),
            })
        }
        Some((_, b)) => Some(Body {
            template: template(rs, b, "body", Escape::None, names)?,
            content_type: s.content_type.as_ref().map(|c| Bytes::from(c.value.clone())),
        }),
        None => None,
    };
    let compress = s
        .compress
        .as_ref()
        .map(|c| super::body::compression(rs, c))
        .transpose()?;
    if let (Some(_), None, Some(c)) = (compress, &body, &s.compress) {
        return Err(errs.hint(
            &c.referenced,
            "compress: the step has no body to compress",
            "add `json:`, `body:`, `form:` or `multipart:`, or leave `compress:` out",
        ));
    }
    let follow_redirects = s
        .follow_redirects
        .as_ref()
        .map(|n| super::body::redirects(rs, n, "follow_redirects"))
        .transpose()?;
    let auth = s.auth.as_ref().map(|a| super::body::auth(rs, a, names)).transpose()?;
    if let Some(a) = &s.auth {
        if s.headers.keys().any(|k| k.eq_ignore_ascii_case("authorization")) {
            return Err(errs.hint(
                &a.referenced,
                "auth: the step also sets an `Authorization` header",
                "keep one: `auth:` builds that header",
            ));
        }
    }
    if let Some(c) = &s.content_type {
        header_value(rs, c.value.as_bytes(), &c.referenced, "content_type")?;
    }
    let timeout = s
        .timeout
        .as_ref()
        .map(|t| rs.positive_duration(t, "timeout"))
        .transpose()?;
    let expect_status = match &s.expect {
        Some(e) => statuses(rs, e)?,
        None => vec![StatusRange { lo: 200, hi: 399 }],
    };
    let checks = s.checks.iter().map(|c| check(rs, c)).collect::<R<Vec<_>>>()?;
    let captures = captures(rs, &s.capture, slots)?;
    let sign = match &s.sign {
        Some(sg) => {
            let g = &sg.value;
            let secret = rs.scalar(&g.secret, "sign.secret")?;
            if secret.is_empty() {
                return Err(errs.at(&g.secret.referenced, "sign.secret is empty"));
            }
            let encoding = match g.encoding.as_ref().map(|e| e.value.as_str()) {
                None | Some("hex") => SignEncoding::Hex,
                Some("base64") => SignEncoding::Base64,
                Some(e) => {
                    return Err(errs.hint(
                        &g.encoding.as_ref().map(|e| e.referenced).unwrap_or(sg.referenced),
                        format!("sign.encoding: `{e}`"),
                        "use hex or base64",
                    ))
                }
            };
            let header = match &g.header {
                Some(h) => header_name(rs, &h.value, &h.referenced)?,
                None => HeaderName::from_static("x-signature"),
            };
            let timestamp_header = g
                .timestamp_header
                .as_ref()
                .map(|h| header_name(rs, &h.value, &h.referenced))
                .transpose()?;
            Some(Sign {
                secret: Bytes::from(secret),
                header,
                encoding,
                prefix: match &g.prefix {
                    Some(p) => {
                        header_value(rs, p.value.as_bytes(), &p.referenced, "sign.prefix")?;
                        p.value.clone()
                    }
                    None => String::new(),
                },
                timestamp_header,
            })
        }
        None => None,
    };
    Ok(Step {
        name,
        kind: StepKind::Http(HttpStep {
            method,
            origin,
            path_and_query,
            headers: headers(rs, &s.headers, names)?,
            body,
            timeout,
            expect_status,
            checks,
            captures,
            sign,
            follow_redirects,
            compress,
            auth,
        }),
        think,
    })
}

/// `capture:` of a step or a WebSocket reply: each name to its slot, from a JSON path or a
/// header.
pub(super) fn captures(rs: &Resolver, raw: &BTreeMap<String, Any>, slots: &BTreeMap<String, usize>) -> R<Vec<Capture>> {
    let errs = &rs.errs;
    let mut captures = Vec::new();
    for (cname, c) in raw {
        let source = match &c.value {
            Value::Object(m) if m.len() == 1 => match m.iter().next() {
                Some((k, Value::String(p))) if k == "json" => CaptureSource::Json(
                    crate::jsonpath::parse(p).map_err(|e| errs.at(&c.referenced, format!("capture {cname}: {e}")))?,
                ),
                Some((k, Value::String(h))) if k == "header" => {
                    CaptureSource::Header(header_name(rs, h, &c.referenced)?)
                }
                _ => {
                    return Err(errs.hint(
                        &c.referenced,
                        format!("capture {cname}: not understood"),
                        "use `{ json: \"$.path\" }` or `{ header: Name }`",
                    ))
                }
            },
            _ => {
                return Err(errs.hint(
                    &c.referenced,
                    format!("capture {cname}: not understood"),
                    "use `{ json: \"$.path\" }` or `{ header: Name }`",
                ))
            }
        };
        captures.push(Capture {
            slot: slots.get(cname).copied().unwrap_or(0),
            source,
        });
    }
    Ok(captures)
}

/// A key only a WebSocket step takes, set on a step without `ws:`.
fn ws_only_key(s: &RawStep) -> Option<&'static str> {
    first_set(&[
        ("session", !s.session.is_empty()),
        ("subprotocols", !s.subprotocols.is_empty()),
        ("reconnect", s.reconnect.is_some()),
        ("sequence", s.sequence.is_some()),
    ])
}

/// The keys only an HTTP step takes (a request's body, its judging and its client options), set
/// or not: refused on WebSocket and SQL steps.
pub(super) fn http_only_keys(s: &RawStep) -> [(&'static str, bool); 10] {
    [
        ("json", s.json.is_some()),
        ("body", s.body.is_some()),
        ("content_type", s.content_type.is_some()),
        ("expect", s.expect.is_some()),
        ("sign", s.sign.is_some()),
        ("follow_redirects", s.follow_redirects.is_some()),
        ("compress", s.compress.is_some()),
        ("auth", s.auth.is_some()),
        ("form", s.form.is_some()),
        ("multipart", s.multipart.is_some()),
    ]
}

/// The first of `keys` that is set: the keys a step of one kind does not take, checked in one
/// place per kind.
pub(super) fn first_set<'k>(keys: &[(&'k str, bool)]) -> Option<&'k str> {
    keys.iter().find(|(_, set)| *set).map(|(k, _)| *k)
}

/// The text outside `{{ … }}` (white space inside an expression is fine).
pub(super) fn without_templates(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        match rest[i..].find("}}") {
            Some(j) => rest = &rest[i + j + 2..],
            None => return out + &rest[i..],
        }
    }
    out + rest
}

/// `${…}` in every string of a JSON body.
pub(super) fn subst_value(rs: &Resolver, v: &Value, loc: &Location) -> R<Value> {
    Ok(match v {
        Value::String(s) => Value::String(rs.sub(s, loc)?),
        Value::Array(a) => Value::Array(a.iter().map(|x| subst_value(rs, x, loc)).collect::<R<_>>()?),
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| Ok((k.clone(), subst_value(rs, x, loc)?)))
                .collect::<R<_>>()?,
        ),
        other => other.clone(),
    })
}
