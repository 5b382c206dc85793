//! Templates: `{{ expr }}` in strings, compiled once at plan load into literal byte runs and
//! expressions, so that rendering a request is a walk over a short list and a few `extend`s.
//!
//! Expressions:
//! - `name`: a capture or a data column (`feeder.column`); plan `vars` and `--var`s are constants
//!   and are inlined as literals at compile time.
//! - `vu` (VU number, from 1), `iteration` (this VU's iteration, from 0),
//!   `global_iteration` (not yet used by the engine: same as `iteration`).
//! - `uuid()`, `random_int(lo, hi)` (inclusive), `random_choice("a", "b", …)`,
//!   `timestamp()` (Unix seconds), `timestamp_ms()`, `now_iso()` (RFC 3339, UTC),
//!   `cookie("name")` (the VU's cookie of that name).
//!
//! Expression output is escaped for where it lands: inside JSON strings it is JSON-escaped, in
//! query values URL-encoded, elsewhere inserted as is.

use bytes::Bytes;

#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Part {
    Lit(Bytes),
    Expr(Expr, Escape),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escape {
    None,
    /// Inside a JSON string literal: `"` `\` and control characters escaped.
    Json,
    /// A URL query component: everything but unreserved characters percent-encoded.
    Url,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Index into `Plan::slots`.
    Slot(usize),
    Vu,
    Iteration,
    Uuid,
    RandomInt(i64, i64),
    RandomChoice(Vec<Bytes>),
    Timestamp,
    TimestampMs,
    NowIso,
    /// `cookie("name")`: the value of that cookie in the VU's jar (empty when it has none).
    Cookie(Bytes),
}

impl Template {
    /// A template without expressions.
    pub fn literal(s: impl Into<Bytes>) -> Template {
        Template {
            parts: vec![Part::Lit(s.into())],
        }
    }

    /// The bytes of a template that has no expressions, without rendering.
    pub fn as_literal(&self) -> Option<&Bytes> {
        match self.parts.as_slice() {
            [Part::Lit(b)] => Some(b),
            [] => None,
            _ => None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// Renders into `out`, asking `eval` for each expression's raw bytes (which it appends to
    /// the buffer it is given); escaping is applied here.
    pub fn render_into(&self, out: &mut Vec<u8>, scratch: &mut Vec<u8>, mut eval: impl FnMut(&Expr, &mut Vec<u8>)) {
        for part in &self.parts {
            match part {
                Part::Lit(b) => out.extend_from_slice(b),
                Part::Expr(e, Escape::None) => eval(e, out),
                Part::Expr(e, esc) => {
                    scratch.clear();
                    eval(e, scratch);
                    match esc {
                        Escape::Json => json_escape_into(scratch, out),
                        Escape::Url => url_escape_into(scratch, out),
                        Escape::None => out.extend_from_slice(scratch),
                    }
                }
            }
        }
    }
}

/// Appends `s` with JSON string escaping (no surrounding quotes).
pub fn json_escape_into(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
}

/// Appends `s` percent-encoded as a URL query component (RFC 3986 unreserved kept).
pub fn url_escape_into(s: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            out.push(b'%');
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 15) as usize]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        let mut out = Vec::new();
        json_escape_into(b"a\"b\\c\n\x01", &mut out);
        assert_eq!(out, b"a\\\"b\\\\c\\n\\u0001");
        out.clear();
        url_escape_into(b"a b&c=d/\xc3\xa9", &mut out);
        assert_eq!(out, b"a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn render_mixes_literals_and_escaped_exprs() {
        let t = Template {
            parts: vec![
                Part::Lit(Bytes::from_static(b"{\"id\":\"")),
                Part::Expr(Expr::Slot(0), Escape::Json),
                Part::Lit(Bytes::from_static(b"\"}")),
            ],
        };
        let mut out = Vec::new();
        let mut scratch = Vec::new();
        t.render_into(&mut out, &mut scratch, |_, buf| buf.extend_from_slice(b"x\"y"));
        assert_eq!(out, b"{\"id\":\"x\\\"y\"}");
    }
}
