//! Compiling `{{ expr }}` templates against the plan's names.

use std::collections::BTreeMap;

use bytes::Bytes;

use crate::error::did_you_mean;
use crate::template::{json_escape_into, url_escape_into, Escape, Expr, Part, Template};

/// The names a template may use.
pub struct Names<'a> {
    /// Plan `vars` (and `--var`s): inlined as literals.
    pub consts: &'a BTreeMap<String, String>,
    /// Captures and data columns (`feeder.column`): runtime slots.
    pub slots: &'a BTreeMap<String, usize>,
}

const BUILTINS: &[&str] = &[
    "vu",
    "iteration",
    "uuid()",
    "random_int(lo, hi)",
    "random_choice(…)",
    "timestamp()",
    "timestamp_ms()",
    "now_iso()",
    "cookie(\"name\")",
];

/// Appends parts, merging adjacent literals.
#[derive(Default)]
pub struct Builder {
    parts: Vec<Part>,
    lit: Vec<u8>,
}

impl Builder {
    pub fn lit(&mut self, b: &[u8]) {
        self.lit.extend_from_slice(b);
    }

    fn flush(&mut self) {
        if !self.lit.is_empty() {
            self.parts.push(Part::Lit(Bytes::from(std::mem::take(&mut self.lit))));
        }
    }

    pub(crate) fn expr(&mut self, e: Expr, esc: Escape) {
        self.flush();
        self.parts.push(Part::Expr(e, esc));
    }

    pub fn finish(mut self) -> Template {
        self.flush();
        Template { parts: self.parts }
    }

    /// Compiles `src` into this builder, escaping expression output with `esc`.
    pub fn template(&mut self, src: &str, esc: Escape, names: &Names) -> Result<(), String> {
        let mut rest = src;
        // Literal text is escaped like expression output: a query value `a b` must be sent as
        // `a%20b`, a JSON string's quote as `\"`.
        while let Some(i) = rest.find("{{") {
            self.push_escaped_lit(&rest[..i], esc);
            let body = &rest[i + 2..];
            let end = body
                .find("}}")
                .ok_or_else(|| format!("`{{{{` without a closing `}}}}` in `{src}`"))?;
            let expr = body[..end].trim();
            match resolve(expr, names)? {
                Resolved::Const(v) => self.push_escaped_lit(&v, esc),
                Resolved::Expr(e) => self.expr(e, esc),
            }
            rest = &body[end + 2..];
        }
        self.push_escaped_lit(rest, esc);
        Ok(())
    }

    fn push_escaped_lit(&mut self, s: &str, esc: Escape) {
        match esc {
            Escape::None => self.lit.extend_from_slice(s.as_bytes()),
            Escape::Json => json_escape_into(s.as_bytes(), &mut self.lit),
            Escape::Url => url_escape_into(s.as_bytes(), &mut self.lit),
        }
    }
}

/// Compiles a string template.
pub fn compile(src: &str, esc: Escape, names: &Names) -> Result<Template, String> {
    let mut b = Builder::default();
    b.template(src, esc, names)?;
    Ok(b.finish())
}

/// Compiles a JSON body: the value is written as JSON; strings with `{{ }}` become templates
/// whose output is JSON-escaped inside the quotes.
pub fn compile_json(v: &serde_json::Value, names: &Names) -> Result<Template, String> {
    let mut b = Builder::default();
    json_into(v, &mut b, names)?;
    Ok(b.finish())
}

fn json_into(v: &serde_json::Value, b: &mut Builder, names: &Names) -> Result<(), String> {
    match v {
        serde_json::Value::String(s) if s.contains("{{") => {
            b.lit(b"\"");
            b.template(s, Escape::Json, names)?;
            b.lit(b"\"");
        }
        serde_json::Value::Array(items) => {
            b.lit(b"[");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    b.lit(b",");
                }
                json_into(item, b, names)?;
            }
            b.lit(b"]");
        }
        serde_json::Value::Object(map) => {
            b.lit(b"{");
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    b.lit(b",");
                }
                b.lit(serde_json::to_string(k).unwrap_or_default().as_bytes());
                b.lit(b":");
                json_into(item, b, names)?;
            }
            b.lit(b"}");
        }
        other => b.lit(serde_json::to_string(other).unwrap_or_default().as_bytes()),
    }
    Ok(())
}

enum Resolved {
    Const(String),
    Expr(Expr),
}

fn resolve(expr: &str, names: &Names) -> Result<Resolved, String> {
    if expr.is_empty() {
        return Err("empty `{{ }}`".into());
    }
    if let Some(open) = expr.find('(') {
        let name = expr[..open].trim();
        let args_s = expr[open + 1..]
            .strip_suffix(')')
            .ok_or_else(|| format!("`{{{{ {expr} }}}}`: missing `)`"))?;
        let args = parse_args(args_s).map_err(|e| format!("`{{{{ {expr} }}}}`: {e}"))?;
        let want = |n: usize| -> Result<(), String> {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!("`{name}` takes {n} argument(s), got {}", args.len()))
            }
        };
        let e = match name {
            "uuid" => want(0).map(|_| Expr::Uuid)?,
            "timestamp" => want(0).map(|_| Expr::Timestamp)?,
            "timestamp_ms" => want(0).map(|_| Expr::TimestampMs)?,
            "now_iso" => want(0).map(|_| Expr::NowIso)?,
            "random_int" => {
                want(2)?;
                let lo = args[0]
                    .parse::<i64>()
                    .map_err(|_| format!("random_int: `{}` is not an integer", args[0]))?;
                let hi = args[1]
                    .parse::<i64>()
                    .map_err(|_| format!("random_int: `{}` is not an integer", args[1]))?;
                if lo > hi {
                    return Err(format!("random_int({lo}, {hi}): the low bound is above the high one"));
                }
                Expr::RandomInt(lo, hi)
            }
            "cookie" => {
                want(1)?;
                if args[0].is_empty() {
                    return Err("cookie(\"name\"): the name is empty".into());
                }
                Expr::Cookie(Bytes::from(args[0].clone()))
            }
            "random_choice" => {
                if args.is_empty() {
                    return Err("random_choice needs at least one option".into());
                }
                Expr::RandomChoice(args.into_iter().map(Bytes::from).collect())
            }
            _ => {
                let fns = [
                    "uuid",
                    "timestamp",
                    "timestamp_ms",
                    "now_iso",
                    "random_int",
                    "random_choice",
                    "cookie",
                ];
                let hint = did_you_mean(name, fns).map(|h| format!(" ({h})")).unwrap_or_default();
                return Err(format!("`{name}()` is not a template function{hint}"));
            }
        };
        return Ok(Resolved::Expr(e));
    }
    match expr {
        "vu" => return Ok(Resolved::Expr(Expr::Vu)),
        "iteration" => return Ok(Resolved::Expr(Expr::Iteration)),
        _ => {}
    }
    if let Some(v) = names.consts.get(expr) {
        return Ok(Resolved::Const(v.clone()));
    }
    if let Some(&slot) = names.slots.get(expr) {
        return Ok(Resolved::Expr(Expr::Slot(slot)));
    }
    let candidates = names
        .consts
        .keys()
        .chain(names.slots.keys())
        .map(String::as_str)
        .chain(["vu", "iteration"]);
    let hint = did_you_mean(expr, candidates)
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
    Err(format!(
        "`{{{{ {expr} }}}}`: `{expr}` is not defined{hint}; define it under `vars:`, capture it, or use a data column; built-ins: {}",
        BUILTINS.join(", ")
    ))
}

/// Arguments: integers or quoted strings, comma-separated.
fn parse_args(s: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        if let Some(q) = rest.chars().next().filter(|c| *c == '"' || *c == '\'') {
            let r = &rest[1..];
            let end = r.find(q).ok_or("unterminated string")?;
            out.push(r[..end].to_string());
            rest = r[end + 1..].trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let a = rest[..end].trim();
            if a.is_empty() {
                return Err("empty argument".into());
            }
            out.push(a.to_string());
            rest = &rest[end..];
        }
        rest = rest.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
            if rest.is_empty() {
                return Err("trailing comma".into());
            }
        } else if !rest.is_empty() {
            return Err(format!("unexpected `{rest}`"));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> (BTreeMap<String, String>, BTreeMap<String, usize>) {
        let consts = [("company_id".to_string(), "1\"x".to_string())].into_iter().collect();
        let slots = [("token".to_string(), 0), ("users.email".to_string(), 1)]
            .into_iter()
            .collect();
        (consts, slots)
    }

    #[test]
    fn constants_inline_and_slots_stay() {
        let (c, s) = names();
        let n = Names { consts: &c, slots: &s };
        let t = compile("/c/{{ company_id }}/{{token}}?e={{ users.email }}", Escape::None, &n).unwrap();
        assert_eq!(
            t.parts,
            vec![
                Part::Lit(Bytes::from_static(b"/c/1\"x/")),
                Part::Expr(Expr::Slot(0), Escape::None),
                Part::Lit(Bytes::from_static(b"?e=")),
                Part::Expr(Expr::Slot(1), Escape::None),
            ]
        );
        assert_eq!(
            compile("plain", Escape::None, &n).unwrap().as_literal().unwrap(),
            "plain"
        );
    }

    #[test]
    fn json_bodies_escape_inside_strings() {
        let (c, s) = names();
        let n = Names { consts: &c, slots: &s };
        let v = serde_json::json!({"a": "{{ company_id }}", "b": 3, "c": ["x{{ token }}"]});
        let t = compile_json(&v, &n).unwrap();
        let mut out = Vec::new();
        t.render_into(&mut out, &mut Vec::new(), |_, b| b.extend_from_slice(b"q\"z"));
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":"1\"x","b":3,"c":["xq\"z"]}"#);
    }

    #[test]
    fn literal_text_is_escaped_like_expressions() {
        let (c, s) = names();
        let n = Names { consts: &c, slots: &s };
        let t = compile("a b&{{ token }}", Escape::Url, &n).unwrap();
        assert_eq!(t.parts[0], Part::Lit(Bytes::from_static(b"a%20b%26")));
        let t = compile("a b", Escape::None, &n).unwrap();
        assert_eq!(t.as_literal().unwrap(), "a b");
    }

    #[test]
    fn functions_and_errors() {
        let (c, s) = names();
        let n = Names { consts: &c, slots: &s };
        let t = compile(
            "{{ random_int(1, 5) }}{{ random_choice(\"a\", 'b,c') }}{{uuid()}}",
            Escape::None,
            &n,
        )
        .unwrap();
        assert_eq!(t.parts[0], Part::Expr(Expr::RandomInt(1, 5), Escape::None));
        assert_eq!(
            t.parts[1],
            Part::Expr(
                Expr::RandomChoice(vec![Bytes::from("a"), Bytes::from("b,c")]),
                Escape::None
            )
        );
        let e = compile("{{ compnay_id }}", Escape::None, &n).unwrap_err();
        assert!(e.contains("did you mean `company_id`"), "{e}");
        assert!(compile("{{ uuidd() }}", Escape::None, &n).unwrap_err().contains("uuid"));
        assert!(compile("{{ random_int(5, 1) }}", Escape::None, &n).is_err());
        assert!(compile("{{ x", Escape::None, &n).is_err());
        assert!(compile("{{ }}", Escape::None, &n).is_err());
    }
}
