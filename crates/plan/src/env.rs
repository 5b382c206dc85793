//! `${NAME}` and `${NAME:-default}` in string values, from `--var`s and the environment.
//! `$${` is a literal `${`.

/// Names whose values are secrets: redacted from everything stampede writes.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    ["SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "AUTH", "CREDENTIAL"]
        .iter()
        .any(|s| n.contains(s))
}

#[derive(Debug)]
pub struct Substituted {
    pub text: String,
    /// A secret-named variable contributed to the text.
    pub secret: bool,
}

/// Substitutes every `${…}` in `s`. `lookup` answers `--var`s first, then the environment.
pub fn substitute(s: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Substituted, String> {
    if !s.contains('$') {
        return Ok(Substituted {
            text: s.to_string(),
            secret: false,
        });
    }
    let mut out = String::with_capacity(s.len());
    let mut secret = false;
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix("${") {
            out.push_str("${");
            rest = r;
            continue;
        }
        let Some(body) = after.strip_prefix('{') else {
            out.push('$');
            rest = after;
            continue;
        };
        let end = body
            .find('}')
            .ok_or_else(|| format!("`${{` without a closing `}}` in `{s}`"))?;
        let inner = &body[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n.trim(), Some(d)),
            None => (inner.trim(), None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "`${{{inner}}}`: `{name}` is not a variable name (letters, digits, _)"
            ));
        }
        match lookup(name) {
            Some(v) => {
                secret |= is_secret_name(name);
                out.push_str(&v);
            }
            None => match default {
                Some(d) => out.push_str(d),
                None => {
                    return Err(format!(
                        "`${{{name}}}` is not set: set the environment variable {name}, pass `--var {name}=…`, or give a default: `${{{name}:-value}}`"
                    ))
                }
            },
        }
        rest = &body[end + 1..];
    }
    out.push_str(rest);
    Ok(Substituted { text: out, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(k: &str) -> Option<String> {
        match k {
            "HOST" => Some("example.com".into()),
            "API_TOKEN" => Some("t0k".into()),
            _ => None,
        }
    }

    #[test]
    fn substitution() {
        let r = substitute("http://${HOST}:${PORT:-8080}/x", &look).unwrap();
        assert_eq!(r.text, "http://example.com:8080/x");
        assert!(!r.secret);
        let r = substitute("Bearer ${API_TOKEN}", &look).unwrap();
        assert_eq!(r.text, "Bearer t0k");
        assert!(r.secret);
        assert_eq!(substitute("cost $5 $${HOST}", &look).unwrap().text, "cost $5 ${HOST}");
        assert!(substitute("${MISSING}", &look).unwrap_err().contains("MISSING"));
        assert!(substitute("${HOST", &look).is_err());
        assert!(substitute("${A B}", &look).is_err());
        assert_eq!(substitute("${EMPTY:-}", &look).unwrap().text, "");
    }
}
