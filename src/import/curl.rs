//! `stampede import curl 'curl …'`: one request from a curl command line, as a shell would
//! split it (single and double quotes, backslashes, `$'…'` as browsers' "Copy as cURL" writes
//! it, line continuations). The options that shape the request are read; the ones that only
//! change what curl prints are ignored; anything else is named in the plan's notes.

use super::{Body, ImportError, Imported, Request};

/// Splits a command line into words as a POSIX shell would (no expansion).
pub fn words(line: &str) -> Result<Vec<String>, ImportError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut it = line.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\\' => match it.next() {
                Some('\n') => {}
                Some('\r') if it.peek() == Some(&'\n') => {
                    it.next();
                }
                Some(x) => {
                    cur.push(x);
                    in_word = true;
                }
                None => {}
            },
            '\'' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('\'') => break,
                        Some(x) => cur.push(x),
                        None => return Err(ImportError::Input("a single quote is not closed".into())),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match it.next() {
                        Some('"') => break,
                        Some('\\') => match it.next() {
                            Some(x @ ('"' | '\\' | '$' | '`')) => cur.push(x),
                            Some('\n') => {}
                            Some(x) => {
                                cur.push('\\');
                                cur.push(x);
                            }
                            None => return Err(ImportError::Input("a double quote is not closed".into())),
                        },
                        Some(x) => cur.push(x),
                        None => return Err(ImportError::Input("a double quote is not closed".into())),
                    }
                }
            }
            '$' if it.peek() == Some(&'\'') => {
                it.next();
                in_word = true;
                ansi_c(&mut it, &mut cur)?;
            }
            c if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// The rest of a `$'…'` word: backslash escapes as bash reads them.
fn ansi_c(it: &mut std::iter::Peekable<std::str::Chars<'_>>, cur: &mut String) -> Result<(), ImportError> {
    loop {
        match it.next() {
            Some('\'') => return Ok(()),
            Some('\\') => match it.next() {
                Some('n') => cur.push('\n'),
                Some('t') => cur.push('\t'),
                Some('r') => cur.push('\r'),
                Some('0') => cur.push('\0'),
                Some('u') | Some('x') => {
                    let hex: String = std::iter::from_fn(|| it.next_if(|c| c.is_ascii_hexdigit()))
                        .take(4)
                        .collect();
                    let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                    cur.push(ch.ok_or_else(|| ImportError::Input(format!("bad escape `\\u{hex}` in $'…'")))?);
                }
                Some(x) => cur.push(x),
                None => return Err(ImportError::Input("a $'…' quote is not closed".into())),
            },
            Some(x) => cur.push(x),
            None => return Err(ImportError::Input("a $'…' quote is not closed".into())),
        }
    }
}

/// Options that only change what curl prints or how it retries: nothing for a plan.
const IGNORED: &[&str] = &[
    "-s",
    "--silent",
    "-S",
    "--show-error",
    "-v",
    "--verbose",
    "-i",
    "--include",
    "--compressed",
    "-L",
    "--location",
    "-f",
    "--fail",
    "-#",
    "--progress-bar",
    "-N",
    "--no-buffer",
];
/// Ignored options that take a value.
const IGNORED_WITH_VALUE: &[&str] = &[
    "-o",
    "--output",
    "-w",
    "--write-out",
    "-m",
    "--max-time",
    "--connect-timeout",
    "--retry",
];

/// The request a curl command line sends.
pub fn import(line: &str) -> Result<Imported, ImportError> {
    let w = words(line.trim())?;
    let mut args = w.iter().map(String::as_str).peekable();
    if args.peek().is_some_and(|a| *a == "curl" || a.ends_with("/curl")) {
        args.next();
    }
    let (mut method, mut url, mut headers) = (None::<String>, None::<String>, Vec::new());
    let (mut data, mut get, mut head, mut json, mut insecure) = (Vec::<String>::new(), false, false, false, false);
    let (mut user, mut notes, mut form) = (None, Vec::new(), Vec::<(String, String)>::new());
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .map(str::to_string)
                .ok_or_else(|| ImportError::Input(format!("`{name}` needs a value")))
        };
        match a {
            "-X" | "--request" => method = Some(value(a)?),
            "-H" | "--header" => {
                let h = value(a)?;
                match h.split_once(':') {
                    Some((k, v)) => headers.push((k.trim().to_string(), v.trim().to_string())),
                    None => return Err(ImportError::Input(format!("header `{h}` has no `:`"))),
                }
            }
            "-d" | "--data" | "--data-raw" | "--data-binary" | "--data-ascii" => data.push(value(a)?),
            "--data-urlencode" => {
                let v = value(a)?;
                data.push(match v.split_once('=') {
                    Some((k, x)) => format!("{k}={}", encode(x)),
                    None => encode(&v),
                });
            }
            "--json" => {
                data.push(value(a)?);
                json = true;
            }
            "-F" | "--form" => {
                let v = value(a)?;
                match v.split_once('=') {
                    Some((k, x)) if !x.starts_with('@') && !x.starts_with('<') => form.push((k.into(), x.into())),
                    _ => notes.push(format!(
                        "`-F {v}` (a file upload) is not imported: add it as `multipart:` by hand"
                    )),
                }
            }
            "-u" | "--user" => {
                let v = value(a)?;
                let (u, p) = v.split_once(':').unwrap_or((v.as_str(), ""));
                user = Some((u.to_string(), p.to_string()));
            }
            "-A" | "--user-agent" => headers.push(("User-Agent".into(), value(a)?)),
            "-e" | "--referer" => headers.push(("Referer".into(), value(a)?)),
            "-b" | "--cookie" => {
                value(a)?;
                notes.push(
                    "the cookies given with -b are not imported: the cookie jar collects them as the flow runs".into(),
                );
            }
            "-G" | "--get" => get = true,
            "-I" | "--head" => head = true,
            "-k" | "--insecure" => insecure = true,
            "--url" => url = Some(value(a)?),
            a if IGNORED.contains(&a) => {}
            a if IGNORED_WITH_VALUE.contains(&a) => {
                value(a)?;
            }
            a if a.starts_with('-') => notes.push(format!("curl option `{a}` is not imported")),
            a => {
                if url.is_some() {
                    return Err(ImportError::Input(format!(
                        "two URLs (`{}` and `{a}`): import one request at a time",
                        url.unwrap_or_default()
                    )));
                }
                url = Some(a.to_string());
            }
        }
    }
    let url = url.ok_or_else(|| ImportError::Input("no URL in the curl command".into()))?;
    let url = if url.contains("://") {
        url
    } else {
        format!("http://{url}")
    };
    let joined = data.join("&");
    let (url, body) = if get && !data.is_empty() {
        let sep = if url.contains('?') { '&' } else { '?' };
        (format!("{url}{sep}{joined}"), None)
    } else if !form.is_empty() {
        notes.push(
            "-F fields are sent as a URL-encoded form (`form:`); make it `multipart:` if the server needs that".into(),
        );
        (url, Some(Body::Form(form)))
    } else if data.is_empty() {
        (url, None)
    } else {
        let content_type = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone())
            .or_else(|| {
                Some(
                    if json {
                        "application/json"
                    } else {
                        "application/x-www-form-urlencoded"
                    }
                    .into(),
                )
            });
        (url, Some(body_of(&joined, content_type)))
    };
    if json && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("accept")) {
        headers.push(("Accept".into(), "application/json".into()));
    }
    let method = method.unwrap_or_else(|| {
        if head {
            "HEAD".into()
        } else if body.is_some() {
            "POST".into()
        } else {
            "GET".into()
        }
    });
    let mut r = Request::new(&method, &url);
    r.headers = headers;
    r.body = body;
    r.basic_auth = user;
    let (_, path) = super::split_url(&r.url)?;
    Ok(Imported {
        name: format!("curl {}", path.split('?').next().unwrap_or("/")),
        requests: vec![r],
        insecure,
        notes,
        ..Default::default()
    })
}

/// A body by its content type: JSON that parses as `json:`, a URL-encoded form as `form:`,
/// anything else as text.
pub fn body_of(text: &str, content_type: Option<String>) -> Body {
    let ct = content_type.as_deref().unwrap_or("").to_ascii_lowercase();
    if ct.contains("json") {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
            return Body::Json(v);
        }
    }
    if ct.starts_with("application/x-www-form-urlencoded") {
        let fields: Option<Vec<(String, String)>> = text
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                Some((decode(k)?, decode(v)?))
            })
            .collect();
        if let Some(f) = fields.filter(|f| !f.is_empty()) {
            return Body::Form(f);
        }
    }
    Body::Text {
        text: text.to_string(),
        content_type,
    }
}

pub(crate) fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-decoding (`+` is a space, as forms write it); `None` for bad escapes or bytes that
/// are not UTF-8.
pub(crate) fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            x => out.push(x),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shell_splits_words_as_bash_does() {
        let w = words("curl 'http://h/a b' -H \"X: \\\"q\\\"\" \\\n  --data-raw $'{\"k\":\"l\\u00e4\"}'").unwrap();
        assert_eq!(
            w,
            ["curl", "http://h/a b", "-H", "X: \"q\"", "--data-raw", "{\"k\":\"lä\"}"]
        );
        assert!(words("curl 'open").is_err());
    }

    #[test]
    fn options_become_the_request() {
        let i = import("curl -X PUT https://api.example/items/1 -H 'Content-Type: application/json' -d '{\"a\":1}' -u alice:pw -k -s").unwrap();
        let r = &i.requests[0];
        assert_eq!(
            (r.method.as_str(), r.url.as_str()),
            ("PUT", "https://api.example/items/1")
        );
        assert_eq!(r.body, Some(Body::Json(serde_json::json!({"a": 1}))));
        assert_eq!(r.basic_auth, Some(("alice".into(), "pw".into())));
        assert!(i.insecure && i.notes.is_empty());
        let g = import("curl -G http://h/s -d q=a+b -d n=1").unwrap();
        assert_eq!(g.requests[0].url, "http://h/s?q=a+b&n=1");
        let f = import("curl http://h/f -d 'a=x%20y&b=2'").unwrap();
        assert_eq!(f.requests[0].method, "POST");
        assert_eq!(
            f.requests[0].body,
            Some(Body::Form(vec![("a".into(), "x y".into()), ("b".into(), "2".into())]))
        );
        assert!(import("curl -H").is_err() && import("curl -s").is_err());
    }
}
