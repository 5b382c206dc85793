//! `stampede import`: a plan from what users already have — a curl command line (`curl.rs`,
//! "Copy as cURL" from a browser's devtools included) or a browser recording (`har.rs`, HAR
//! from Chromium's devtools or Playwright) or an API description (`openapi.rs`, OpenAPI 3.0/3.1).
//! Each importer turns its input into [`Request`]s;
//! [`plan`] writes them as one scenario of a plan that `stampede validate` accepts, with a
//! smoke phase (one VU, one iteration) to run it at once and a `${BASE_URL}` target to point it
//! elsewhere. One place writes YAML, so every importer's plan reads the same.

pub mod curl;
pub mod har;
pub mod openapi;

use std::fmt::Write as _;

/// What cannot be imported: the input is not what it says, or holds what a plan cannot say.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Input(String),
}

/// A request body as the plan will send it.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// Parsed JSON: written as `json:`.
    Json(serde_json::Value),
    /// URL-encoded form fields: written as `form:`.
    Form(Vec<(String, String)>),
    /// Anything else, with its content type: written as `body:` and `content_type:`.
    Text { text: String, content_type: Option<String> },
}

/// One recorded or written request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: String,
    /// Absolute `http://` or `https://` URL, query included.
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Body>,
    /// `auth: { basic: [user, password] }`.
    pub basic_auth: Option<(String, String)>,
    /// The status the input names: a recording's when it is not a success, an API
    /// description's first 2xx (written as `expect:`).
    pub expect: Option<u16>,
    /// Pause after this request (the gap to the next one in a recording).
    pub think_ms: u64,
    /// The step's name, when the input has a better one than `METHOD /path` (an OpenAPI
    /// operation's path template).
    pub name: Option<String>,
    /// The URL holds `{{ var }}` placeholders the importer wrote on purpose (each one a plan
    /// `vars` entry); any other `{{` is still refused.
    pub templated: bool,
}

impl Request {
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_ascii_uppercase(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            basic_auth: None,
            expect: None,
            think_ms: 0,
            name: None,
            templated: false,
        }
    }
}

/// What an importer found: the requests, whether TLS checks were off, and what it left out.
#[derive(Debug, Default)]
pub struct Imported {
    pub name: String,
    pub requests: Vec<Request>,
    pub insecure: bool,
    /// Said as comments at the top of the plan (what was dropped and why).
    pub notes: Vec<String>,
    /// The target's default when the input names one (an OpenAPI server URL, which may end in
    /// a path); requests under it are written relative to it. Otherwise the most frequent origin.
    pub base: Option<String>,
    /// `vars:` entries, each `name: "${ENV}"`: values the input does not give (a path
    /// parameter without an example), which the user sets with `ENV=…` or `--var name=…`.
    pub vars: Vec<(String, String)>,
}

/// Headers a plan does not carry: the client sets them itself (framing, compression it
/// decodes, the connection), HTTP/2 pseudo-headers, and cookies (the jar collects them as the
/// flow runs; a recorded session cookie is stale).
const DROPPED_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "accept-encoding",
    "cookie",
    "te",
    "upgrade",
    "proxy-connection",
];

/// `scheme://host[:port]` of an absolute URL, and the rest (path and query, at least `/`).
pub fn split_url(url: &str) -> Result<(String, String), ImportError> {
    let bad = || ImportError::Input(format!("`{url}` is not an http:// or https:// URL"));
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err(bad());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let host = &rest[..end];
    if host.is_empty() || host.contains('@') {
        return Err(ImportError::Input(format!(
            "`{url}`: no host, or credentials in the URL (use -u / auth: instead)"
        )));
    }
    let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok((format!("{}://{host}", scheme.to_ascii_lowercase()), path))
}

/// A YAML double-quoted scalar holding `s` literally: JSON string syntax (valid YAML), `${`
/// written `$${` so it is not read as a variable. A `{{` cannot be written literally (a plan
/// reads it as a template), so it is refused.
fn quote(s: &str, what: &str) -> Result<String, ImportError> {
    if s.contains("{{") {
        return Err(ImportError::Input(format!(
            "{what} contains `{{{{`, which a plan reads as a template: edit the input or the plan by hand"
        )));
    }
    let json = serde_json::to_string(&s.replace("${", "$${")).unwrap_or_default();
    Ok(json)
}

/// [`quote`] for a string whose `{{ … }}` the importer wrote as templates.
fn quote_template(s: &str) -> String {
    serde_json::to_string(&s.replace("${", "$${")).unwrap_or_default()
}

/// A JSON value as a YAML flow value (JSON is YAML), its strings quoted like [`quote`].
fn flow(v: &serde_json::Value, what: &str) -> Result<String, ImportError> {
    Ok(match v {
        serde_json::Value::String(s) => quote(s, what)?,
        serde_json::Value::Array(a) => {
            let items: Result<Vec<String>, _> = a.iter().map(|x| flow(x, what)).collect();
            format!("[{}]", items?.join(", "))
        }
        serde_json::Value::Object(m) => {
            let items: Result<Vec<String>, _> = m
                .iter()
                .map(|(k, x)| Ok(format!("{}: {}", quote(k, what)?, flow(x, what)?)))
                .collect();
            format!("{{ {} }}", items?.join(", "))
        }
        other => other.to_string(),
    })
}

/// Step names from method and path, unique within the scenario (`GET /a`, `GET /a #2`).
fn step_names(requests: &[Request]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in requests {
        let path = split_url(&r.url).map(|(_, p)| p).unwrap_or_default();
        let path = path.split('?').next().unwrap_or("/");
        let base = r.name.clone().unwrap_or_else(|| format!("{} {path}", r.method));
        let mut name = base.clone();
        let mut n = 2;
        while out.contains(&name) {
            name = format!("{base} #{n}");
            n += 1;
        }
        out.push(name);
    }
    out
}

/// The plan: the most frequent origin is the target (`${BASE_URL:-origin}`), its requests are
/// relative to it and the others absolute; one scenario `flow` with a step per request; a smoke
/// phase of one VU and one iteration; an error-rate threshold.
pub fn plan(imp: &Imported) -> Result<String, ImportError> {
    if imp.requests.is_empty() {
        return Err(ImportError::Input("nothing to import: no request found".into()));
    }
    let mut origins: Vec<(String, usize)> = Vec::new();
    for r in &imp.requests {
        let (o, _) = split_url(&r.url)?;
        match origins.iter_mut().find(|x| x.0 == o) {
            Some(x) => x.1 += 1,
            None => origins.push((o, 1)),
        }
    }
    let target = match &imp.base {
        Some(b) => b.trim_end_matches('/').to_string(),
        None => origins
            .iter()
            .max_by_key(|x| x.1)
            .map(|x| x.0.clone())
            .unwrap_or_default(),
    };
    let target_quoted = quote(&target, "the server URL")?;
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Imported by `stampede import`. Check it, then: stampede run THIS_FILE"
    );
    for n in &imp.notes {
        let _ = writeln!(y, "# {}", n.replace('\n', " "));
    }
    let _ = writeln!(y, "name: {}", quote(&imp.name, "the name")?);
    // A quoted URL is JSON string syntax: `${BASE_URL:-` goes in front of its content.
    let _ = writeln!(
        y,
        "target: \"${{BASE_URL:-{}}}\"",
        &target_quoted[1..target_quoted.len() - 1]
    );
    if imp.insecure {
        let _ = writeln!(y, "http:\n  insecure: true");
    }
    if !imp.vars.is_empty() {
        let _ = writeln!(y, "vars:");
        for (name, env) in &imp.vars {
            // Names and variables are `[a-z0-9_]` and `[A-Z0-9_]` (the importer makes them so).
            let _ = writeln!(y, "  {name}: \"${{{env}}}\"   # set {env}=… or --var {name}=…");
        }
    }
    let _ = writeln!(y, "scenarios:\n  flow:\n    steps:");
    for (r, name) in imp.requests.iter().zip(step_names(&imp.requests)) {
        let (origin, path) = split_url(&r.url)?;
        let url = match r.url.strip_prefix(&target) {
            Some(rest) if rest.is_empty() || rest.starts_with(['/', '?']) => {
                if rest.starts_with('/') {
                    rest.to_string()
                } else {
                    format!("/{rest}")
                }
            }
            _ if origin == target => path,
            _ => r.url.clone(),
        };
        let what = format!("request `{name}`");
        let _ = writeln!(y, "      - name: {}", quote(&name, &what)?);
        let request = format!("{} {url}", r.method);
        let request = if r.templated {
            quote_template(&request)
        } else {
            quote(&request, &what)?
        };
        let _ = writeln!(y, "        request: {request}");
        let headers: Vec<&(String, String)> = r
            .headers
            .iter()
            .filter(|(k, _)| !k.starts_with(':') && !DROPPED_HEADERS.contains(&k.to_ascii_lowercase().as_str()))
            // The body's own content type is written with the body.
            .filter(|(k, _)| !(r.body.is_some() && k.eq_ignore_ascii_case("content-type")))
            .collect();
        if !headers.is_empty() {
            let _ = writeln!(y, "        headers:");
            for (k, v) in headers {
                let _ = writeln!(y, "          {}: {}", quote(k, &what)?, quote(v, &what)?);
            }
        }
        if let Some((u, p)) = &r.basic_auth {
            let _ = writeln!(
                y,
                "        auth: {{ basic: [{}, {}] }}",
                quote(u, &what)?,
                quote(p, &what)?
            );
        }
        match &r.body {
            Some(Body::Json(v)) => {
                let _ = writeln!(y, "        json: {}", flow(v, &what)?);
            }
            Some(Body::Form(fields)) => {
                let _ = writeln!(y, "        form:");
                for (k, v) in fields {
                    let _ = writeln!(y, "          {}: {}", quote(k, &what)?, quote(v, &what)?);
                }
            }
            Some(Body::Text { text, content_type }) => {
                let _ = writeln!(y, "        body: {}", quote(text, &what)?);
                if let Some(ct) = content_type {
                    let _ = writeln!(y, "        content_type: {}", quote(ct, &what)?);
                }
            }
            None => {}
        }
        if let Some(s) = r.expect {
            let _ = writeln!(y, "        expect: [{s}]");
        }
        if r.think_ms > 0 {
            let _ = writeln!(y, "        think: {}ms", r.think_ms);
        }
    }
    let _ = writeln!(
        y,
        "phases:\n  # One VU, one pass through the flow: a smoke test. Raise `vus`, or use `duration`/`stages`, for load.\n  - {{ name: smoke, scenario: flow, vus: 1, iterations: 1, max_duration: 1m }}\nthresholds:\n  - error_rate < 1%"
    );
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_at_the_authority() {
        assert_eq!(
            split_url("https://a.example:8443/x?y=1#f").unwrap(),
            ("https://a.example:8443".into(), "/x?y=1".into())
        );
        assert_eq!(split_url("http://h").unwrap(), ("http://h".into(), "/".into()));
        assert!(split_url("ftp://h/").is_err() && split_url("http://u:p@h/").is_err());
    }

    #[test]
    fn values_are_written_literally_or_refused() {
        assert_eq!(quote("a \"b\" ${HOME}", "x").unwrap(), r#""a \"b\" $${HOME}""#);
        assert!(quote("{{ x }}", "x").is_err());
    }
}
