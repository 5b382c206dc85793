//! The resolved plan as JSON, for the run directory, with secrets replaced by `***`.

use serde_json::Value;

use crate::env::{is_secret_name, substitute};

/// The plan with `${…}` substituted; a string that took its value from a secret-named variable,
/// or that sits under a secret-named key (`secret:`, `api_token:`…), becomes `***`.
pub fn redacted(src: &str, lookup: &dyn Fn(&str) -> Option<String>, vars: &[(String, String)]) -> Value {
    redacted_and_secrets(src, lookup, vars).0
}

/// [`redacted`], and the secret values it replaced (as substituted, non-empty, longest first),
/// so that anything else that shows requests (`--http-debug`) can mask them wherever they were
/// inlined.
pub fn redacted_and_secrets(
    src: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    vars: &[(String, String)],
) -> (Value, Vec<String>) {
    let v: Value = serde_saphyr::from_str(src).unwrap_or(Value::Null);
    let mut found = Vec::new();
    let mut out = walk(v, lookup, false, &mut found);
    // --var values of secret-named variables, wherever they were inlined.
    let secrets: Vec<&str> = vars
        .iter()
        .filter(|(k, v)| is_secret_name(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if !secrets.is_empty() {
        scrub(&mut out, &secrets);
    }
    found.extend(secrets.iter().map(|s| s.to_string()));
    found.retain(|s| !s.is_empty() && s != "***");
    found.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
    found.dedup();
    (out, found)
}

fn walk(v: Value, lookup: &dyn Fn(&str) -> Option<String>, secret_key: bool, found: &mut Vec<String>) -> Value {
    match v {
        Value::String(s) => match substitute(&s, lookup) {
            Ok(r) if secret_key || r.secret => {
                found.push(r.text);
                Value::String("***".into())
            }
            _ if secret_key => {
                found.push(s);
                Value::String("***".into())
            }
            Ok(r) => Value::String(redact_url(&r.text)),
            Err(_) => Value::String(redact_url(&s)),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(|x| walk(x, lookup, secret_key, found)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let sk = secret_key || is_secret_name(&k);
                    (k, walk(x, lookup, sk, found))
                })
                .collect(),
        ),
        other if secret_key => {
            found.push(other.to_string());
            Value::String("***".into())
        }
        other => other,
    }
}

fn scrub(v: &mut Value, secrets: &[&str]) {
    match v {
        Value::String(s) if secrets.iter().any(|x| s.contains(x)) => *s = "***".into(),
        Value::Array(a) => a.iter_mut().for_each(|x| scrub(x, secrets)),
        Value::Object(m) => m.values_mut().for_each(|x| scrub(x, secrets)),
        _ => {}
    }
}

/// Where the password of `scheme://user:password@host…` sits in `url`, if it has one.
fn password_span(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    // The authority ends at the first `/`, `?` or `#`; the userinfo at its last `@`.
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..end].rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some((start + colon + 1, start + at))
}

/// `url` with the password of its userinfo replaced by `***` (monitor URLs like
/// `postgres://app:hunter2@db/app` carry one even when no secret-named variable was used).
pub fn redact_url(url: &str) -> String {
    match password_span(url) {
        Some((a, b)) if a < b => format!("{}***{}", &url[..a], &url[b..]),
        _ => url.to_string(),
    }
}

/// The password in `url`'s userinfo, if any.
pub fn url_password(url: &str) -> Option<String> {
    password_span(url)
        .filter(|(a, b)| a < b)
        .map(|(a, b)| url[a..b].to_string())
}

/// A Redis URL's parts: host, port, password, database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: u32,
}

/// Parses `redis://[[user]:password@]host[:port][/db]`; `None` when it is not one.
pub fn parse_redis_url(url: &str) -> Option<RedisUrl> {
    let rest = url.strip_prefix("redis://")?;
    let (auth, rest) = match rest.rfind('@') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    let (hostport, db) = match rest.split_once('/') {
        Some((h, "")) => (h, 0),
        Some((h, d)) => (h, d.parse().ok()?),
        None => (rest, 0),
    };
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().ok()?),
        None => (hostport, 6379),
    };
    if host.is_empty() {
        return None;
    }
    let (username, password) = match auth {
        None => (None, None),
        Some(a) => match a.split_once(':') {
            Some((u, p)) => ((!u.is_empty()).then(|| u.to_string()), Some(p.to_string())),
            None => (None, Some(a.to_string())),
        },
    };
    Some(RedisUrl {
        host: host.to_string(),
        port,
        username,
        password,
        db,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/app"),
            "postgres://app:***@db:5432/app"
        );
        assert_eq!(
            redact_url("redis://:s3cr:et@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert_eq!(redact_url("postgres://app@db/app"), "postgres://app@db/app");
        assert_eq!(redact_url("http://x/a@b"), "http://x/a@b");
        assert_eq!(redact_url("plain text"), "plain text");
        assert_eq!(url_password("redis://:pw@h:1").as_deref(), Some("pw"));
        assert_eq!(url_password("redis://h:1"), None);
        let r = parse_redis_url("redis://:pw@127.0.0.1:6380/2").unwrap();
        assert_eq!(
            (r.host.as_str(), r.port, r.password.as_deref(), r.db),
            ("127.0.0.1", 6380, Some("pw"), 2)
        );
        assert_eq!(parse_redis_url("redis://h").unwrap().port, 6379);
        assert!(parse_redis_url("http://h").is_none());
        assert!(parse_redis_url("redis://h:x").is_none());
    }
}
