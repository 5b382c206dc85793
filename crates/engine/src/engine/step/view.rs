//! One view of a response, whatever the protocol: an outcome code (an HTTP status today), a
//! header lookup, the kept body and its JSON parsed at most once. Checks and captures read only
//! this view, so every protocol gets all of them by building one.

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use stampede_plan::{Capture, CaptureSource, Check, CheckKind, JsonPath, JsonSeg};

use crate::http::RawHeaders;
use crate::outcome::ErrorKind;

/// A response's headers, wherever the protocol keeps them.
pub enum Headers<'a> {
    /// In the HTTP/1.1 connection's read buffer, not copied.
    H1(RawHeaders<'a>),
    H2(&'a HeaderMap),
    None,
}

impl Headers<'_> {
    pub fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        match self {
            Headers::H1(h) => h.get(name.as_str()),
            Headers::H2(m) => m.get(name).map(|v| v.as_bytes()),
            Headers::None => None,
        }
    }

    /// Every value of a header that may repeat (`Set-Cookie`).
    pub fn all<'s>(&'s self, name: &'s HeaderName) -> Box<dyn Iterator<Item = &'s [u8]> + 's> {
        match self {
            Headers::H1(h) => Box::new(h.all(name.as_str())),
            Headers::H2(m) => Box::new(m.get_all(name).iter().map(|v| v.as_bytes())),
            Headers::None => Box::new(std::iter::empty()),
        }
    }
}

/// What checks and captures see of one response.
pub struct View<'a> {
    /// The protocol's outcome code: the HTTP status.
    pub code: u16,
    pub headers: Headers<'a>,
    /// The kept part of the body (up to `max_body`).
    pub body: &'a [u8],
    /// The body parsed as JSON, on first use: `Some(None)` when it is not JSON.
    json: Option<Option<serde_json::Value>>,
}

impl<'a> View<'a> {
    pub fn new(code: u16, headers: Headers<'a>, body: &'a [u8]) -> View<'a> {
        View {
            code,
            headers,
            body,
            json: None,
        }
    }

    /// The value at `path` of the body parsed as JSON (parsed once per view).
    pub fn select(&mut self, path: &JsonPath) -> Option<&serde_json::Value> {
        let body = self.body;
        let root = self
            .json
            .get_or_insert_with(|| serde_json::from_slice(body).ok())
            .as_ref()?;
        path.segments.iter().try_fold(root, |v, seg| match seg {
            JsonSeg::Key(k) => v.get(k.as_str()),
            JsonSeg::Index(i) => v.get(*i),
        })
    }

    /// The first failing check, as an error kind.
    pub fn check(&mut self, checks: &[Check]) -> Option<ErrorKind> {
        for (n, check) in checks.iter().enumerate() {
            let ok = match &check.kind {
                CheckKind::Status(ranges) => ranges.iter().any(|r| r.contains(self.code)),
                CheckKind::HeaderExists(name) => self.headers.get(name).is_some(),
                CheckKind::HeaderEquals(name, v) => self.headers.get(name).is_some_and(|h| h == v.as_bytes()),
                CheckKind::HeaderContains(name, v) => self.headers.get(name).is_some_and(|h| contains(h, v.as_bytes())),
                CheckKind::BodyContains(needle) => contains(self.body, needle),
                CheckKind::BodyNotContains(needle) => !contains(self.body, needle),
                CheckKind::JsonEquals(path, want) => self.select(path).is_some_and(|v| json_eq(v, want)),
                CheckKind::JsonExists(path) => self.select(path).is_some_and(|v| !v.is_null()),
            };
            if !ok {
                return Some(ErrorKind::Check(n.min(u16::MAX as usize) as u16));
            }
        }
        None
    }

    /// Stores each capture's value in its slot (a capture that finds nothing leaves its slot).
    pub fn capture(&mut self, captures: &[Capture], slots: &mut [Bytes]) {
        for c in captures {
            let value = match &c.source {
                CaptureSource::Header(name) => self.headers.get(name).map(Bytes::copy_from_slice),
                CaptureSource::Json(path) => self.select(path).map(|v| match v {
                    serde_json::Value::String(s) => Bytes::copy_from_slice(s.as_bytes()),
                    other => Bytes::from(other.to_string()),
                }),
            };
            if let (Some(v), Some(slot)) = (value, slots.get_mut(c.slot)) {
                *slot = v;
            }
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// JSON equality where numbers compare by value (`42` equals `42.0`).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: CheckKind) -> Check {
        Check { name: "c".into(), kind }
    }

    #[test]
    fn checks_read_the_code_headers_and_body_of_the_view() {
        let mut map = HeaderMap::new();
        map.insert("x-id", "42".parse().unwrap());
        let body = br#"{"id": 42, "name": "a"}"#;
        let mut view = View::new(201, Headers::H2(&map), body);
        let path = |s: &str| JsonPath {
            source: format!("$.{s}"),
            segments: vec![JsonSeg::Key(s.into())],
        };
        let ok = [
            check(CheckKind::Status(vec![stampede_plan::StatusRange { lo: 200, hi: 299 }])),
            check(CheckKind::HeaderEquals(HeaderName::from_static("x-id"), "42".into())),
            check(CheckKind::BodyContains(Bytes::from_static(b"name"))),
            check(CheckKind::JsonEquals(path("id"), serde_json::json!(42.0))),
        ];
        assert_eq!(view.check(&ok), None);
        let failing = [check(CheckKind::JsonExists(path("missing")))];
        assert_eq!(view.check(&failing), Some(ErrorKind::Check(0)));
    }
}
