//! JSON pointers (`/a/0/b`) and a simple JSONPath subset (`$.a[0].b`, `$['a b']`).

use crate::model::{JsonPath, JsonSeg};

pub fn parse(src: &str) -> Result<JsonPath, String> {
    let s = src.trim();
    let segments = if s.starts_with('/') || s.is_empty() {
        s.split('/')
            .skip(1)
            .map(|p| {
                let p = p.replace("~1", "/").replace("~0", "~");
                match p.parse::<usize>() {
                    Ok(i) if !p.starts_with('+') => JsonSeg::Index(i),
                    _ => JsonSeg::Key(p),
                }
            })
            .collect()
    } else if let Some(rest) = s.strip_prefix('$') {
        parse_path(rest).map_err(|e| format!("`{s}`: {e}"))?
    } else {
        return Err(format!(
            "`{s}` is neither a JSON pointer (`/a/0`) nor a JSONPath (`$.a[0]`)"
        ));
    };
    Ok(JsonPath {
        source: s.to_string(),
        segments,
    })
}

fn parse_path(mut s: &str) -> Result<Vec<JsonSeg>, String> {
    let mut out = Vec::new();
    while !s.is_empty() {
        if let Some(r) = s.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end == 0 {
                return Err("empty key after `.`".into());
            }
            out.push(JsonSeg::Key(r[..end].to_string()));
            s = &r[end..];
        } else if let Some(r) = s.strip_prefix('[') {
            let end = r.find(']').ok_or("`[` without `]`")?;
            let inner = r[..end].trim();
            if let Some(q) = inner.strip_prefix('\'').and_then(|q| q.strip_suffix('\'')) {
                out.push(JsonSeg::Key(q.to_string()));
            } else if let Some(q) = inner.strip_prefix('"').and_then(|q| q.strip_suffix('"')) {
                out.push(JsonSeg::Key(q.to_string()));
            } else {
                let i: usize = inner
                    .parse()
                    .map_err(|_| format!("`[{inner}]` is not an index or a quoted key"))?;
                out.push(JsonSeg::Index(i));
            }
            s = &r[end + 1..];
        } else {
            return Err(format!("unexpected `{s}` (use .key, ['key'] or [index])"));
        }
    }
    Ok(out)
}

impl JsonPath {
    /// The value the path selects, if any.
    pub fn select<'a>(&self, v: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        self.segments.iter().try_fold(v, |v, seg| match seg {
            JsonSeg::Key(k) => v.get(k.as_str()),
            JsonSeg::Index(i) => v.get(*i),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_and_paths_select_the_same() {
        let v: serde_json::Value = serde_json::json!({"a": {"b c": [10, {"d": 42}]}});
        assert_eq!(parse("/a/b c/1/d").unwrap().select(&v), Some(&serde_json::json!(42)));
        assert_eq!(
            parse("$.a['b c'][1].d").unwrap().select(&v),
            Some(&serde_json::json!(42))
        );
        assert_eq!(parse("$").unwrap().select(&v), Some(&v));
        assert_eq!(parse("$.x").unwrap().select(&v), None);
        assert!(parse("a.b").is_err());
        assert!(parse("$.a[").is_err());
        assert!(parse("$..a").is_err());
    }
}
