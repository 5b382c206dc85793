//! From the plan as written (`raw`) to the plan that runs (`model`): substitute `${…}`, check
//! every value, compile templates. Every error points at the value that caused it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method};
use serde_json::Value;
use serde_saphyr::Location;

use crate::compile::{compile, compile_json, Names};
use crate::error::{did_you_mean, Errs};
use crate::model::*;
use crate::raw::*;
use crate::template::{Escape, Template};
use crate::units::{parse_duration, parse_rate, parse_size};
use crate::PlanError;

/// Upper bound for VU counts and rates: more is a typo, not a test.
const ABSURD: f64 = 1_000_000.0;
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

type R<T> = Result<T, PlanError>;

pub struct Resolver<'a> {
    pub errs: Errs,
    pub lookup: &'a dyn Fn(&str) -> Option<String>,
    pub base_dir: &'a Path,
}

impl Resolver<'_> {
    fn sub(&self, s: &str, loc: &Location) -> R<String> {
        crate::env::substitute(s, self.lookup)
            .map(|r| r.text)
            .map_err(|e| self.errs.at(loc, e))
    }

    fn string(&self, v: &S<String>) -> R<String> {
        self.sub(&v.value, &v.referenced)
    }

    /// A scalar (string, number or bool) as text, after `${…}` substitution.
    fn scalar(&self, v: &Any, what: &str) -> R<String> {
        match &v.value {
            Value::String(s) => self.sub(s, &v.referenced),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            _ => Err(self.errs.at(
                &v.referenced,
                format!("{what} must be a single value, not a list or a map"),
            )),
        }
    }

    fn duration(&self, v: &Any, what: &str) -> R<Duration> {
        let s = self.scalar(v, what)?;
        let d = parse_duration(&s).map_err(|e| {
            self.errs.hint(
                &v.referenced,
                format!("{what}: {e}"),
                "durations look like 500ms, 30s, 2m, 1h30m",
            )
        })?;
        Ok(d)
    }

    fn positive_duration(&self, v: &Any, what: &str) -> R<Duration> {
        let d = self.duration(v, what)?;
        if d.is_zero() {
            return Err(self.errs.at(&v.referenced, format!("{what} must be longer than 0")));
        }
        Ok(d)
    }

    fn number(&self, v: &Any, what: &str) -> R<f64> {
        let s = self.scalar(v, what)?;
        s.trim().parse::<f64>().ok().filter(|x| x.is_finite()).ok_or_else(|| {
            self.errs
                .at(&v.referenced, format!("{what} must be a number, got `{s}`"))
        })
    }

    /// A whole number in `min..=ABSURD`.
    fn count(&self, v: &Any, what: &str, min: u64) -> R<u64> {
        let x = self.number(v, what)?;
        if x.fract() != 0.0 {
            return Err(self
                .errs
                .at(&v.referenced, format!("{what} must be a whole number, got {x}")));
        }
        if x < min as f64 {
            return Err(self
                .errs
                .at(&v.referenced, format!("{what} must be at least {min}, got {x}")));
        }
        if x > ABSURD {
            return Err(self.errs.hint(
                &v.referenced,
                format!("{what} = {x} is absurd"),
                "more than 1,000,000 is a typo, not a test; use `--segment` to spread a large test over machines",
            ));
        }
        Ok(x as u64)
    }

    fn rate(&self, v: &Any, what: &str) -> R<f64> {
        let s = self.scalar(v, what)?;
        let r = parse_rate(&s).map_err(|e| self.errs.at(&v.referenced, format!("{what}: {e}")))?;
        if r <= 0.0 {
            return Err(self.errs.hint(
                &v.referenced,
                format!("{what} must be above 0, got {s}"),
                "an arrival rate is per second, e.g. `rate: 50` or `rate: 3000/m`",
            ));
        }
        if r > ABSURD {
            return Err(self.errs.at(
                &v.referenced,
                format!("{what} = {s} is absurd (more than 1,000,000 arrivals per second)"),
            ));
        }
        Ok(r)
    }

    pub fn think(&self, v: &Any) -> R<Think> {
        match &v.value {
            Value::Object(m) if m.len() == 1 => {
                let (k, x) = m
                    .iter()
                    .next()
                    .map(|(k, x)| (k.as_str(), x))
                    .unwrap_or(("", &Value::Null));
                let d = |x: &Value| -> R<Duration> { self.duration(&spanned(x.clone(), v), "think") };
                match (k, x) {
                    ("fixed", x) => Ok(Think::Fixed(d(x)?)),
                    ("exponential", x) => Ok(Think::Exponential(d(x)?)),
                    ("uniform", Value::Array(a)) if a.len() == 2 => Ok(Think::Uniform(d(&a[0])?, d(&a[1])?)),
                    _ => Err(self.errs.hint(
                        &v.referenced,
                        "think: not understood",
                        "use `think: 2s`, `think: { uniform: [1s, 3s] }` or `think: { exponential: 2s }`",
                    )),
                }
            }
            Value::String(_) => Ok(Think::Fixed(self.duration(v, "think")?)),
            _ => Err(self.errs.hint(
                &v.referenced,
                "think: not understood",
                "use `think: 2s`, `think: { uniform: [1s, 3s] }` or `think: { exponential: 2s }`",
            )),
        }
    }
}

/// Wraps a nested value with its parent's span, for messages about the parent.
fn spanned(value: Value, parent: &Any) -> Any {
    serde_saphyr::Spanned {
        value,
        referenced: parent.referenced,
        defined: parent.defined,
    }
}

/// Parses `http(s)://host[:port][/path]` into an origin and a path prefix.
pub fn parse_origin(url: &str) -> Result<(Origin, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if authority.contains("{{") || authority.contains('@') {
        return Err(format!("`{url}`: the host cannot be templated or carry credentials"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let end = r.find(']').ok_or_else(|| format!("`{url}`: unclosed `[`"))?;
        let host = &r[..end];
        let port = match &r[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("`{url}`: bad port"))?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no valid host"));
    }
    Ok((
        Origin {
            tls,
            host,
            port,
            authority: authority.to_string(),
        },
        path.trim_end_matches('/').to_string(),
    ))
}

pub fn resolve(raw: RawPlan, rs: &Resolver, vars: &[(String, String)], source_name: &str) -> R<Plan> {
    let errs = &rs.errs;
    let name = match &raw.name {
        Some(n) => rs.string(n)?,
        None => Path::new(source_name)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "plan".into()),
    };

    // Constants: plan vars, then --var overrides.
    let mut consts: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in &raw.vars {
        consts.insert(k.clone(), rs.scalar(v, &format!("vars.{k}"))?);
    }
    for (k, v) in vars {
        consts.insert(k.clone(), v.clone());
    }

    let (target, target_path) = match &raw.target {
        Some(t) => {
            let url = rs.string(t)?;
            let (o, p) = parse_origin(url.trim()).map_err(|e| {
                errs.hint(
                    &t.referenced,
                    format!("target: {e}"),
                    "e.g. `target: http://127.0.0.1:8080` or `https://api.example.com/v1`",
                )
            })?;
            (Some(o), p)
        }
        None => (None, String::new()),
    };

    // Data feeders and their column slots.
    let mut slots_by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut slots: Vec<SlotDef> = Vec::new();
    let mut feeders = Vec::new();
    for (fname, f) in &raw.data {
        let file = rs.string(&f.value.file)?;
        let path = rs.base_dir.join(&file);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            errs.at(
                &f.value.file.referenced,
                format!("data.{fname}: cannot read `{}`: {e}", path.display()),
            )
        })?;
        let (columns, rows) = crate::csv::parse(&text)
            .map_err(|e| errs.at(&f.value.file.referenced, format!("data.{fname}: `{file}`: {e}")))?;
        let mode = match f.value.mode.as_ref().map(|m| m.value.as_str()) {
            None | Some("sequential") => FeedMode::Sequential,
            Some("per_vu") => FeedMode::PerVu,
            Some("random") => FeedMode::Random,
            Some(m) => {
                let loc = &f.value.mode.as_ref().map(|m| m.referenced).unwrap_or(f.referenced);
                return Err(errs.hint(
                    loc,
                    format!("data.{fname}.mode: `{m}` is not a mode"),
                    "use sequential, per_vu or random",
                ));
            }
        };
        let fi = feeders.len();
        for (ci, c) in columns.iter().enumerate() {
            let key = format!("{fname}.{c}");
            slots_by_name.insert(key.clone(), slots.len());
            slots.push(SlotDef {
                name: key,
                kind: SlotKind::Data { feeder: fi, column: ci },
            });
        }
        feeders.push(Feeder {
            name: fname.clone(),
            columns,
            rows,
            mode,
        });
    }
    // Capture slots, before any template is compiled (a later step may use an earlier capture).
    for sc in raw.scenarios.values() {
        for st in &sc.value.steps {
            for cname in st.value.capture.keys() {
                if !slots_by_name.contains_key(cname) {
                    slots_by_name.insert(cname.clone(), slots.len());
                    slots.push(SlotDef {
                        name: cname.clone(),
                        kind: SlotKind::Capture,
                    });
                }
            }
        }
    }
    let names = Names {
        consts: &consts,
        slots: &slots_by_name,
    };

    let http = resolve_http(rs, raw.http.as_ref(), &names)?;

    let mut scenarios = Vec::new();
    for (sname, sc) in &raw.scenarios {
        scenarios.push(resolve_scenario(
            rs,
            sname,
            sc,
            &names,
            target.as_ref(),
            &target_path,
            &slots_by_name,
        )?);
    }
    let scenario_names: Vec<&str> = scenarios.iter().map(|s: &Scenario| s.name.as_str()).collect();

    let mut phases: Vec<Phase> = Vec::new();
    for (i, p) in raw.phases.iter().enumerate() {
        let phase = resolve_phase(rs, i, p, &scenario_names)?;
        if phases.iter().any(|q| q.name == phase.name) {
            let loc = p.value.name.as_ref().map(|n| n.referenced).unwrap_or(p.referenced);
            return Err(errs.at(
                &loc,
                format!("phase `{}` is defined twice; phase names must be unique", phase.name),
            ));
        }
        phases.push(phase);
    }

    let step_names: Vec<&str> = scenarios
        .iter()
        .flat_map(|s| s.steps.iter().map(|st| st.name.as_str()))
        .collect();
    let phase_names: Vec<&str> = phases.iter().map(|p| p.name.as_str()).collect();
    let mut thresholds = Vec::new();
    for t in &raw.thresholds {
        thresholds.push(resolve_threshold(rs, t, &step_names, &phase_names)?);
    }

    Ok(Plan {
        name,
        target,
        target_path,
        http,
        scenarios,
        phases,
        thresholds,
        slots,
        feeders,
        redacted: Value::Null,
        source_name: source_name.to_string(),
    })
}

fn header_name(rs: &Resolver, name: &str, loc: &Location) -> R<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).map_err(|_| rs.errs.at(loc, format!("`{name}` is not a valid header name")))
}

fn template(rs: &Resolver, v: &Any, what: &str, esc: Escape, names: &Names) -> R<Template> {
    let s = rs.scalar(v, what)?;
    compile(&s, esc, names).map_err(|e| rs.errs.at(&v.referenced, format!("{what}: {e}")))
}

fn headers(rs: &Resolver, raw: &BTreeMap<String, Any>, names: &Names) -> R<Vec<(HeaderName, Template)>> {
    raw.iter()
        .map(|(k, v)| {
            Ok((
                header_name(rs, k, &v.referenced)?,
                template(rs, v, &format!("header {k}"), Escape::None, names)?,
            ))
        })
        .collect()
}

fn resolve_http(rs: &Resolver, raw: Option<&RawHttp>, names: &Names) -> R<HttpOptions> {
    let mut o = HttpOptions {
        http2: true,
        h2c: false,
        insecure: false,
        timeout: Duration::from_secs(30),
        connect_timeout: Duration::from_secs(10),
        headers: Vec::new(),
        max_body: 1 << 20,
    };
    let Some(h) = raw else { return Ok(o) };
    o.http2 = h.http2.unwrap_or(true);
    o.h2c = h.h2c.unwrap_or(false);
    o.insecure = h.insecure.unwrap_or(false);
    if let Some(t) = &h.timeout {
        o.timeout = rs.positive_duration(t, "http.timeout")?;
    }
    if let Some(t) = &h.connect_timeout {
        o.connect_timeout = rs.positive_duration(t, "http.connect_timeout")?;
    }
    if let Some(m) = &h.max_body {
        let s = rs.scalar(m, "http.max_body")?;
        o.max_body = parse_size(&s).map_err(|e| rs.errs.at(&m.referenced, format!("http.max_body: {e}")))?;
    }
    o.headers = headers(rs, &h.headers, names)?;
    Ok(o)
}

fn resolve_scenario(
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
    for st in &sc.value.steps {
        let step = resolve_step(rs, st, names, target, target_path, slots, steps.len())?;
        if steps.iter().any(|s| s.name == step.name) {
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

fn resolve_step(
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
    let Some(req) = &s.request else {
        // A pause step: `- think: 1s`.
        return match think {
            Some(t) if s.json.is_none() && s.body.is_none() && s.checks.is_empty() => Ok(Step {
                name: s
                    .name
                    .as_ref()
                    .map(|n| rs.string(n))
                    .transpose()?
                    .unwrap_or_else(|| format!("pause-{}", index + 1)),
                kind: StepKind::Pause(t),
                think: None,
            }),
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
        let (o, p) = parse_origin(url).map_err(|e| errs.at(&req.referenced, e))?;
        let p = if p.is_empty() { "/".to_string() } else { p };
        // parse_origin trims a trailing '/', which is part of this path: keep it.
        let p = if url.ends_with('/') && !p.ends_with('/') {
            format!("{p}/")
        } else {
            p
        };
        (o, p)
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
    for (k, v) in &s.query {
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

    let body = match (&s.json, &s.body) {
        (Some(_), Some(b)) => return Err(errs.at(&b.referenced, "a step takes `json:` or `body:`, not both")),
        (Some(j), None) => {
            let v = subst_value(rs, &j.value, &j.referenced)?;
            Some(Body {
                template: compile_json(&v, names).map_err(|e| errs.at(&j.referenced, format!("json: {e}")))?,
                content_type: Some(Bytes::from(
                    s.content_type
                        .as_ref()
                        .map(|c| c.value.clone())
                        .unwrap_or_else(|| "application/json".into()),
                )),
            })
        }
        (None, Some(b)) => Some(Body {
            template: template(rs, b, "body", Escape::None, names)?,
            content_type: s.content_type.as_ref().map(|c| Bytes::from(c.value.clone())),
        }),
        (None, None) => None,
    };
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
    let mut captures = Vec::new();
    for (cname, c) in &s.capture {
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
                prefix: g.prefix.as_ref().map(|p| p.value.clone()).unwrap_or_default(),
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
        }),
        think,
    })
}

/// The text outside `{{ … }}` (white space inside an expression is fine).
fn without_templates(s: &str) -> String {
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
fn subst_value(rs: &Resolver, v: &Value, loc: &Location) -> R<Value> {
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

fn status_one(rs: &Resolver, v: &Value, loc: &Location) -> R<StatusRange> {
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

fn statuses(rs: &Resolver, v: &Any) -> R<Vec<StatusRange>> {
    match &v.value {
        Value::Array(a) if !a.is_empty() => a.iter().map(|x| status_one(rs, x, &v.referenced)).collect(),
        Value::Array(_) => Err(rs.errs.at(&v.referenced, "an empty status list accepts nothing")),
        x => Ok(vec![status_one(rs, x, &v.referenced)?]),
    }
}

fn check(rs: &Resolver, c: &Any) -> R<Check> {
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

fn resolve_phase(rs: &Resolver, index: usize, p: &S<RawPhase>, scenarios: &[&str]) -> R<Phase> {
    let errs = &rs.errs;
    let r = &p.value;
    let name = match &r.name {
        Some(n) => rs.string(n)?,
        None => format!("phase-{}", index + 1),
    };
    let find = |n: &S<String>| -> R<usize> {
        scenarios.iter().position(|s| *s == n.value).ok_or_else(|| {
            let hint = did_you_mean(&n.value, scenarios.iter().copied())
                .unwrap_or_else(|| format!("scenarios: {}", scenarios.join(", ")));
            errs.hint(
                &n.referenced,
                format!("phase `{name}`: no scenario named `{}`", n.value),
                hint,
            )
        })
    };
    let mix = match (&r.scenario, &r.scenarios) {
        (Some(s), None) => vec![Weighted {
            scenario: find(s)?,
            weight: 1,
        }],
        (None, Some(list)) if !list.is_empty() => {
            let mut mix = Vec::new();
            for w in list {
                let weight = match &w.value.weight {
                    Some(x) => rs.count(x, "weight", 1)? as u32,
                    None => 1,
                };
                mix.push(Weighted {
                    scenario: find(&w.value.name)?,
                    weight,
                });
            }
            mix
        }
        (Some(_), Some(_)) => {
            return Err(errs.at(
                &p.referenced,
                format!("phase `{name}`: give `scenario:` or `scenarios:`, not both"),
            ))
        }
        _ => {
            return Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` has no scenario"),
                "add `scenario: NAME` (or a weighted `scenarios:` list)",
            ))
        }
    };
    let stages = |start_key: &str| -> R<Vec<Stage>> {
        let list = r.stages.as_deref().unwrap_or(&[]);
        if list.is_empty() {
            return Err(errs.at(&p.referenced, format!("phase `{name}`: `stages:` is empty")));
        }
        list.iter()
            .map(|s| {
                let target = rs.number(&s.value.target, "stage target")?;
                if !(0.0..=ABSURD).contains(&target) {
                    return Err(errs.at(
                        &s.value.target.referenced,
                        format!("stage target {target} is out of range (0 to 1,000,000)"),
                    ));
                }
                let _ = start_key;
                Ok(Stage {
                    target,
                    duration: rs.duration(&s.value.duration, "stage duration")?,
                })
            })
            .collect()
    };
    let dur = |v: &Option<Any>, key: &str| -> R<Duration> {
        match v {
            Some(d) => rs.positive_duration(d, key),
            None => Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` needs `{key}:`"),
                "e.g. `duration: 2m`",
            )),
        }
    };
    let max_vus_of = |default: u64| -> R<u32> {
        Ok(match &r.max_vus {
            Some(m) => rs.count(m, "max_vus", 1)? as u32,
            None => default.clamp(1, ABSURD as u64) as u32,
        })
    };
    let pre_vus_of = |max_vus: u32, rate: f64| -> R<u32> {
        let pre = match &r.pre_vus {
            Some(x) => rs.count(x, "pre_vus", 0)? as u32,
            None => (rate.ceil() as u32).min(max_vus),
        };
        if pre > max_vus {
            let loc = r.pre_vus.as_ref().map(|x| x.referenced).unwrap_or(p.referenced);
            return Err(errs.at(&loc, format!("pre_vus ({pre}) is above max_vus ({max_vus})")));
        }
        Ok(pre)
    };
    let executor = r.executor.as_ref().map(|e| e.value.replace('_', "-"));
    let kind = match executor.as_deref() {
        Some(k @ ("closed" | "ramping-vus" | "open" | "ramping-rate" | "iterations")) => k.to_string(),
        Some(other) => {
            let loc = r.executor.as_ref().map(|e| e.referenced).unwrap_or(p.referenced);
            return Err(errs.hint(
                &loc,
                format!("`{other}` is not an executor"),
                "use closed, ramping-vus, open, ramping-rate or iterations (or leave it out: it is inferred)",
            ));
        }
        None if r.iterations.is_some() => "iterations".into(),
        None if r.stages.is_some() && (r.start_rate.is_some() || r.rate.is_some() || r.max_vus.is_some()) => {
            "ramping-rate".into()
        }
        None if r.stages.is_some() => "ramping-vus".into(),
        None if r.rate.is_some() => "open".into(),
        None if r.vus.is_some() || r.duration.is_some() => "closed".into(),
        None => {
            return Err(errs.hint(
                &p.referenced,
                format!("phase `{name}` has no load"),
                "give `vus` + `duration` (closed), `rate` + `duration` (open), `stages`, or `iterations`",
            ))
        }
    };
    let load = match kind.as_str() {
        "closed" => {
            if let Some(rt) = &r.rate {
                return Err(errs.hint(
                    &rt.referenced,
                    format!("phase `{name}`: `rate` and `vus` do not mix"),
                    "an open phase has `rate` + `max_vus`; a closed one `vus`",
                ));
            }
            let vus = match &r.vus {
                Some(v) => rs.count(v, "vus", 1)? as u32,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `vus:`"))),
            };
            Load::Closed {
                vus,
                duration: dur(&r.duration, "duration")?,
            }
        }
        "ramping-vus" => Load::RampingVus {
            start_vus: r
                .start_vus
                .as_ref()
                .map(|v| rs.count(v, "start_vus", 0))
                .transpose()?
                .unwrap_or(0) as u32,
            stages: stages("start_vus")?,
        },
        "open" => {
            let rate = match &r.rate {
                Some(x) => rs.rate(x, "rate")?,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `rate:`"))),
            };
            let max_vus = max_vus_of(((rate.ceil() as u64) * 10).max(100))?;
            Load::Open {
                rate,
                duration: dur(&r.duration, "duration")?,
                max_vus,
                pre_vus: pre_vus_of(max_vus, rate)?,
            }
        }
        "ramping-rate" => {
            let start_rate = match r.start_rate.as_ref().or(r.rate.as_ref()) {
                Some(x) => {
                    let s = rs.scalar(x, "start_rate")?;
                    let v = parse_rate(&s).map_err(|e| errs.at(&x.referenced, format!("start_rate: {e}")))?;
                    if !(0.0..=ABSURD).contains(&v) {
                        return Err(errs.at(&x.referenced, format!("start_rate {v} is out of range")));
                    }
                    v
                }
                None => 0.0,
            };
            let st = stages("start_rate")?;
            let peak = st.iter().map(|s| s.target).fold(start_rate, f64::max);
            if peak <= 0.0 {
                return Err(errs.at(&p.referenced, format!("phase `{name}`: the rate never rises above 0")));
            }
            let max_vus = max_vus_of(((peak.ceil() as u64) * 10).max(100))?;
            Load::RampingRate {
                start_rate,
                stages: st,
                max_vus,
                pre_vus: pre_vus_of(max_vus, start_rate)?,
            }
        }
        _ => {
            let iterations = match &r.iterations {
                Some(x) => rs.count(x, "iterations", 1)?,
                None => return Err(errs.at(&p.referenced, format!("phase `{name}` needs `iterations:`"))),
            };
            let vus = r.vus.as_ref().map(|v| rs.count(v, "vus", 1)).transpose()?.unwrap_or(1) as u32;
            let max_duration = match &r.max_duration {
                Some(d) => rs.positive_duration(d, "max_duration")?,
                None => Duration::from_secs(600),
            };
            Load::Iterations {
                vus,
                iterations,
                max_duration,
            }
        }
    };
    let grace = match &r.grace {
        Some(g) => rs.duration(g, "grace")?,
        None => Duration::from_secs(30),
    };
    Ok(Phase { name, mix, load, grace })
}

fn resolve_threshold(rs: &Resolver, t: &Any, steps: &[&str], phases: &[&str]) -> R<Threshold> {
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
                        if !known.contains(&n) {
                            let hint = did_you_mean(n, known.iter().copied())
                                .unwrap_or_else(|| format!("{k}s: {}", known.join(", ")));
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
