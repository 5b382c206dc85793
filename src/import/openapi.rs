//! `stampede import openapi FILE`: an API description (OpenAPI 3.0 or 3.1, JSON or YAML) as a
//! flow of one step per operation. Values come from what the document says — `example`,
//! `examples`, schema `default`/`enum`/`example` — and a request body without one is a minimal
//! instance of its schema (required properties only), so the plan runs as written; a path
//! parameter with no value at all becomes a `${VAR}` the plan declares, never a made-up id.
//! Only local `$ref`s (`#/…`) are followed: a plan must not depend on fetching other files.

use serde_json::{Map, Value};

use super::{curl::encode, Body, ImportError, Imported, Request};

/// Methods in the order the steps of one path are written (OpenAPI's own order); `trace` is not
/// a method a plan sends.
const METHODS: &[&str] = &["get", "put", "post", "delete", "options", "head", "patch"];

/// How deep a schema is expanded: a recursive schema (a tree node) ends here.
const MAX_DEPTH: usize = 8;

fn err(msg: impl Into<String>) -> ImportError {
    ImportError::Input(msg.into())
}

/// The document as JSON values: JSON when it starts with `{`, YAML otherwise.
fn parse(text: &str) -> Result<Value, ImportError> {
    let t = text.trim_start();
    let doc: Value = if t.starts_with('{') {
        serde_json::from_str(t).map_err(|e| err(format!("not an OpenAPI document: JSON: {e}")))?
    } else {
        serde_saphyr::from_str(text).map_err(|e| err(format!("not an OpenAPI document: YAML: {e}")))?
    };
    match doc.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.") => Ok(doc),
        Some(v) => Err(err(format!("OpenAPI {v} is not read: only 3.0 and 3.1"))),
        None if doc.get("swagger").is_some() => Err(err(
            "a Swagger 2.0 document: only OpenAPI 3.0 and 3.1 are read (convert it first, e.g. with swagger2openapi)",
        )),
        None => Err(err("not an OpenAPI document: no `openapi: 3.x` field at its top")),
    }
}

/// `v`, or what its `$ref` points to (followed through chains of refs). `at` says where the
/// value was, for the error.
fn deref<'a>(doc: &'a Value, v: &'a Value, at: &str) -> Result<&'a Value, ImportError> {
    let mut cur = v;
    for _ in 0..32 {
        let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
            return Ok(cur);
        };
        let Some(pointer) = r.strip_prefix('#') else {
            return Err(err(format!(
                "{at}: `$ref: {r}` points outside the document; only local references (`#/components/…`) are read"
            )));
        };
        // JSON pointer escapes (`~1` is `/`, `~0` is `~`) are what `Value::pointer` reads; a
        // percent-encoded fragment is decoded first.
        let decoded = super::curl::decode(pointer).unwrap_or_else(|| pointer.to_string());
        cur = doc
            .pointer(&decoded)
            .ok_or_else(|| err(format!("{at}: `$ref: {r}` points to nothing in the document")))?;
    }
    Err(err(format!("{at}: a `$ref` cycle")))
}

/// The value an `example` or `examples` (first entry's `value`; in 3.1 schemas a list) gives.
fn example_of(doc: &Value, v: &Value, at: &str) -> Result<Option<Value>, ImportError> {
    if let Some(x) = v.get("example") {
        return Ok(Some(x.clone()));
    }
    match v.get("examples") {
        Some(Value::Object(m)) => {
            if let Some(first) = m.values().next() {
                let first = deref(doc, first, at)?;
                if let Some(x) = first.get("value") {
                    return Ok(Some(x.clone()));
                }
            }
        }
        Some(Value::Array(a)) if !a.is_empty() => return Ok(Some(a[0].clone())),
        _ => {}
    }
    Ok(None)
}

/// A value the schema itself names: its example(s), default, const or first enum value.
fn schema_value(doc: &Value, s: &Value, at: &str) -> Result<Option<Value>, ImportError> {
    if let Some(x) = example_of(doc, s, at)? {
        return Ok(Some(x));
    }
    for k in ["default", "const"] {
        if let Some(x) = s.get(k) {
            return Ok(Some(x.clone()));
        }
    }
    Ok(s.get("enum").and_then(Value::as_array).and_then(|a| a.first()).cloned())
}

/// The schema's type (3.1 writes a list, `[string, "null"]`: the first that is not null).
fn type_of(s: &Value) -> Option<&str> {
    match s.get("type") {
        Some(Value::String(t)) => Some(t),
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).find(|t| *t != "null"),
        _ if s.get("properties").is_some() => Some("object"),
        _ if s.get("items").is_some() => Some("array"),
        _ => None,
    }
}

/// A minimal instance of a schema: the values it names, else required properties only,
/// `minItems` items, numbers at their minimum, strings of their format or `minLength`.
fn instance(doc: &Value, s: &Value, at: &str, depth: usize) -> Result<Value, ImportError> {
    let s = deref(doc, s, at)?;
    if let Some(x) = schema_value(doc, s, at)? {
        return Ok(x);
    }
    if depth >= MAX_DEPTH {
        return Ok(Value::Null);
    }
    if let Some(all) = s.get("allOf").and_then(Value::as_array) {
        let mut out = Map::new();
        for part in all {
            match instance(doc, part, at, depth + 1)? {
                Value::Object(m) => out.extend(m),
                other if all.len() == 1 => return Ok(other),
                _ => {}
            }
        }
        return Ok(Value::Object(out));
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(first) = s.get(k).and_then(Value::as_array).and_then(|a| a.first()) {
            return instance(doc, first, at, depth + 1);
        }
    }
    Ok(match type_of(s) {
        Some("object") => {
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut out = Map::new();
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (k, p) in props {
                    if required.contains(&k.as_str()) {
                        out.insert(k.clone(), instance(doc, p, &format!("{at}.{k}"), depth + 1)?);
                    }
                }
            }
            Value::Object(out)
        }
        Some("array") => {
            let n = s.get("minItems").and_then(Value::as_u64).unwrap_or(0).min(16);
            let item = match s.get("items") {
                Some(i) if n > 0 => instance(doc, i, &format!("{at}[]"), depth + 1)?,
                _ => Value::Null,
            };
            Value::Array(vec![item; n as usize])
        }
        Some("integer") => Value::from(s.get("minimum").and_then(Value::as_i64).unwrap_or(0)),
        Some("number") => s.get("minimum").cloned().unwrap_or(Value::from(0)),
        Some("boolean") => Value::Bool(false),
        Some("string") => Value::String(string_of(s)),
        _ => Value::Null,
    })
}

/// A string a server's validation accepts for this schema's format, padded to `minLength`.
fn string_of(s: &Value) -> String {
    let mut v = match s.get("format").and_then(Value::as_str) {
        Some("date-time") => "2026-01-01T00:00:00Z",
        Some("date") => "2026-01-01",
        Some("time") => "00:00:00Z",
        Some("email") => "user@example.com",
        Some("uuid") => "00000000-0000-4000-8000-000000000000",
        Some("uri" | "url") => "https://example.com/",
        Some("hostname") => "example.com",
        Some("ipv4") => "192.0.2.1",
        Some("ipv6") => "2001:db8::1",
        _ => "string",
    }
    .to_string();
    let min = s.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    while v.chars().count() < min {
        v.push('x');
    }
    v
}

/// A parameter value as URL text: scalars as they read, arrays joined by commas (OpenAPI's
/// default `simple` style for paths).
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(v.to_string()),
        Value::Array(a) => a.iter().map(as_text).collect::<Option<Vec<_>>>().map(|x| x.join(",")),
        _ => None,
    }
}

/// The value a parameter's own fields or its schema give, if any.
fn param_value(doc: &Value, p: &Value, at: &str) -> Result<Option<Value>, ImportError> {
    if let Some(x) = example_of(doc, p, at)? {
        return Ok(Some(x));
    }
    match p.get("schema") {
        Some(s) => schema_value(doc, deref(doc, s, at)?, at),
        None => Ok(None),
    }
}

/// A `vars` name from a parameter name (`pet-id` → `pet_id`), and its environment variable.
fn var_names(param: &str) -> (String, String) {
    let mut name: String = param
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        name.insert_str(0, "p_");
    }
    let env = name.to_ascii_uppercase();
    (name, env)
}

/// What the writer needs from the whole document while operations are read.
struct Ctx<'a> {
    doc: &'a Value,
    base: String,
    vars: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Ctx<'_> {
    /// One operation as a request.
    fn operation(&mut self, path: &str, method: &str, op: &Value, shared: &[Value]) -> Result<Request, ImportError> {
        let doc = self.doc;
        let at = format!("{} {path}", method.to_ascii_uppercase());
        // Path-level parameters, overridden by the operation's own of the same name and place.
        let mut params: Vec<&Value> = Vec::new();
        let own: Vec<&Value> = match op.get("parameters").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .map(|p| deref(doc, p, &format!("{at}: a parameter")))
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        let key = |p: &Value| (p.get("name").cloned(), p.get("in").cloned());
        for p in shared {
            if !own.iter().any(|o| key(o) == key(p)) {
                params.push(p);
            }
        }
        params.extend(own);
        let mut url_path = String::new();
        let mut templated = false;
        let mut rest = path;
        // Path template `{name}` segments, each replaced by its value or a placeholder.
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .map(|c| open + c)
                .ok_or_else(|| err(format!("{at}: the path has an unclosed `{{`")))?;
            url_path.push_str(&rest[..open]);
            let name = &rest[open + 1..close];
            let p = params.iter().find(|p| {
                p.get("in").and_then(Value::as_str) == Some("path")
                    && p.get("name").and_then(Value::as_str) == Some(name)
            });
            let value = match p {
                Some(p) => param_value(doc, p, &format!("{at}: parameter `{name}`"))?,
                None => None,
            };
            match value.as_ref().and_then(as_text) {
                Some(v) => url_path.push_str(&encode(&v)),
                None => {
                    let (var, env) = var_names(name);
                    if !self.vars.iter().any(|(n, _)| *n == var) {
                        self.vars.push((var.clone(), env));
                    }
                    url_path.push_str(&format!("{{{{ {var} }}}}"));
                    templated = true;
                }
            }
            rest = &rest[close + 1..];
        }
        url_path.push_str(rest);
        let mut query: Vec<String> = Vec::new();
        let mut headers: Vec<(String, String)> = Vec::new();
        for p in &params {
            let (Some(name), Some(place)) = (
                p.get("name").and_then(Value::as_str),
                p.get("in").and_then(Value::as_str),
            ) else {
                return Err(err(format!("{at}: a parameter without `name` or `in`")));
            };
            let pat = format!("{at}: parameter `{name}`");
            let value = match place {
                // Optional ones only with an example: a default is what the server does anyway.
                "query" | "header" if p.get("required") == Some(&Value::Bool(true)) => param_value(doc, p, &pat)?,
                "query" | "header" => example_of(doc, p, &pat)?.or(match p.get("schema") {
                    Some(s) => example_of(doc, deref(doc, s, &pat)?, &pat)?,
                    None => None,
                }),
                _ => None,
            };
            let Some(value) = value else {
                if p.get("required") == Some(&Value::Bool(true)) && place != "path" {
                    self.notes.push(format!(
                        "{pat} ({place}) is required but has no example: add it by hand"
                    ));
                }
                continue;
            };
            match (place, &value) {
                ("query", Value::Array(items)) => {
                    for i in items {
                        if let Some(t) = as_text(i) {
                            query.push(format!("{}={}", encode(name), encode(&t)));
                        }
                    }
                }
                ("query", v) => match as_text(v) {
                    Some(t) => query.push(format!("{}={}", encode(name), encode(&t))),
                    None => self.notes.push(format!("{pat}: an object value is not imported")),
                },
                ("header", v) => {
                    if let Some(t) = as_text(v) {
                        headers.push((name.to_string(), t));
                    }
                }
                _ => {}
            }
        }
        let mut url = format!("{}{url_path}", self.base);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let mut r = Request::new(method, &url);
        r.name = Some(at.clone());
        r.templated = templated;
        r.headers = headers;
        if let Some(b) = op.get("requestBody") {
            let b = deref(doc, b, &format!("{at}: requestBody"))?;
            r.body = self.body(b, &at)?;
        }
        if let Some(responses) = op.get("responses").and_then(Value::as_object) {
            // The first 2xx the document lists, as an exact code; a `2XX` range is what the
            // default already accepts.
            r.expect = responses
                .keys()
                .filter_map(|k| k.parse::<u16>().ok())
                .find(|c| (200..300).contains(c));
            for (code, resp) in responses {
                deref(doc, resp, &format!("{at}: response {code}"))?;
            }
        }
        Ok(r)
    }

    /// A request body: JSON when the operation takes it (its example, else a schema
    /// instance), a URL-encoded form from an object, else a text example with its type.
    fn body(&mut self, b: &Value, at: &str) -> Result<Option<Body>, ImportError> {
        let doc = self.doc;
        let Some(content) = b.get("content").and_then(Value::as_object) else {
            return Ok(None);
        };
        let pick = |f: &dyn Fn(&str) -> bool| content.iter().find(|(ct, _)| f(&ct.to_ascii_lowercase()));
        let at = format!("{at}: requestBody");
        let value = |media: &Value| -> Result<Value, ImportError> {
            match example_of(doc, media, &at)? {
                Some(x) => Ok(x),
                None => match media.get("schema") {
                    Some(s) => instance(doc, s, &at, 0),
                    None => Ok(Value::Object(Map::new())),
                },
            }
        };
        if let Some((_, media)) = pick(&|ct| ct == "application/json" || ct.contains("+json") || ct.ends_with("/json"))
        {
            return Ok(Some(Body::Json(value(media)?)));
        }
        if let Some((_, media)) = pick(&|ct| ct == "application/x-www-form-urlencoded") {
            if let Value::Object(m) = value(media)? {
                let fields = m.iter().filter_map(|(k, v)| Some((k.clone(), as_text(v)?))).collect();
                return Ok(Some(Body::Form(fields)));
            }
        }
        for (ct, media) in content {
            if let Some(Value::String(s)) = example_of(doc, media, &at)? {
                return Ok(Some(Body::Text {
                    text: s,
                    content_type: Some(ct.clone()),
                }));
            }
        }
        self.notes.push(format!(
            "{at}: no JSON, form or text example among {}: left out",
            content.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        Ok(None)
    }
}

/// The first server's URL, its `{variables}` at their defaults; without one, loopback.
fn server_url(doc: &Value) -> Result<(String, Option<String>), ImportError> {
    let Some(s) = doc.get("servers").and_then(Value::as_array).and_then(|a| a.first()) else {
        return Ok((
            "http://127.0.0.1:8080".into(),
            Some("the document names no server: the target defaults to http://127.0.0.1:8080".into()),
        ));
    };
    let mut url = s
        .get("url")
        .and_then(Value::as_str)
        .ok_or_else(|| err("servers[0] has no `url`"))?
        .to_string();
    if let Some(vars) = s.get("variables").and_then(Value::as_object) {
        for (k, v) in vars {
            let d = v.get("default").and_then(as_text).unwrap_or_default();
            url = url.replace(&format!("{{{k}}}"), &d);
        }
    }
    if url.contains('{') {
        return Err(err(format!("servers[0].url `{url}` has a variable without a default")));
    }
    if url.starts_with('/') {
        let u = format!("http://127.0.0.1:8080{url}");
        let note = format!("the server URL `{url}` is relative: the target defaults to {u}");
        return Ok((u, Some(note)));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(err(format!("servers[0].url `{url}` is not an http:// or https:// URL")));
    }
    Ok((url.trim_end_matches('/').to_string(), None))
}

/// The operations of an OpenAPI document, one request each, in path order.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    let doc = parse(text)?;
    let (base, note) = server_url(&doc)?;
    let name = doc
        .pointer("/info/title")
        .and_then(Value::as_str)
        .unwrap_or("openapi")
        .to_string();
    let mut cx = Ctx {
        doc: &doc,
        base: base.clone(),
        vars: Vec::new(),
        notes: Vec::new(),
    };
    let paths = doc
        .get("paths")
        .and_then(Value::as_object)
        .ok_or_else(|| err("the document has no `paths`"))?;
    let mut requests = Vec::new();
    let mut secured = 0;
    for (path, item) in paths {
        if !path.starts_with('/') {
            return Err(err(format!("paths: `{path}` does not start with `/`")));
        }
        let item = deref(&doc, item, &format!("paths: `{path}`"))?;
        let shared: Vec<Value> = match item.get("parameters").and_then(Value::as_array) {
            Some(a) => a
                .iter()
                .map(|p| deref(&doc, p, &format!("{path}: a parameter")).cloned())
                .collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        for m in METHODS {
            if let Some(op) = item.get(*m) {
                if op
                    .get("security")
                    .or(doc.get("security"))
                    .and_then(Value::as_array)
                    .is_some_and(|a| !a.is_empty())
                {
                    secured += 1;
                }
                requests.push(cx.operation(path, m, op, &shared)?);
            }
        }
    }
    let mut notes = vec![format!(
        "from an OpenAPI {} document: {} operations, one step each, in path order",
        doc.get("openapi").and_then(Value::as_str).unwrap_or("3"),
        requests.len()
    )];
    notes.extend(note);
    if secured > 0 {
        notes.push(format!(
            "{secured} operations name security requirements: add `auth:` or headers by hand"
        ));
    }
    notes.append(&mut cx.notes);
    Ok(Imported {
        name,
        requests,
        insecure: false,
        notes,
        base: Some(base),
        vars: cx.vars,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(paths: &str) -> String {
        format!("{{\"openapi\": \"3.1.0\", \"servers\": [{{\"url\": \"http://h/api\"}}], \"paths\": {paths}, \"components\": {{\"schemas\": {{\"Pet\": {{\"type\": \"object\", \"required\": [\"name\", \"tags\"], \"properties\": {{\"name\": {{\"type\": \"string\", \"minLength\": 8}}, \"age\": {{\"type\": \"integer\"}}, \"tags\": {{\"type\": \"array\", \"minItems\": 1, \"items\": {{\"type\": \"string\", \"format\": \"uuid\"}}}}}}}}}}}}}}")
    }

    #[test]
    fn a_body_without_an_example_is_a_minimal_instance_of_its_schema() {
        let d = doc(
            r##"{"/pets": {"post": {"requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}}}, "responses": {"default": {}, "201": {}}}}}"##,
        );
        let imp = import(&d).unwrap();
        let r = &imp.requests[0];
        assert_eq!(r.url, "http://h/api/pets");
        assert_eq!(r.expect, Some(201));
        assert_eq!(
            r.body,
            Some(Body::Json(
                serde_json::json!({"name": "stringxx", "tags": ["00000000-0000-4000-8000-000000000000"]})
            ))
        );
    }

    #[test]
    fn path_parameters_take_examples_or_become_variables() {
        let d = doc(
            r#"{"/pets/{id}/{kind}": {"parameters": [{"name": "kind", "in": "path", "schema": {"enum": ["cat dog"]}}],
               "get": {"parameters": [{"name": "id", "in": "path", "required": true}, {"name": "q", "in": "query", "example": ["a", "b"]}]}}}"#,
        );
        let imp = import(&d).unwrap();
        assert_eq!(imp.requests[0].url, "http://h/api/pets/{{ id }}/cat%20dog?q=a&q=b");
        assert!(imp.requests[0].templated);
        assert_eq!(imp.vars, [("id".to_string(), "ID".to_string())]);
    }

    #[test]
    fn bad_documents_are_refused() {
        assert!(import("{\"swagger\": \"2.0\"}").is_err());
        assert!(import("title: x\n").is_err());
        let bad = doc(r##"{"/a": {"get": {"parameters": [{"$ref": "#/components/parameters/Nope"}]}}}"##);
        let e = import(&bad).unwrap_err().to_string();
        assert!(e.contains("#/components/parameters/Nope"), "{e}");
    }
}
