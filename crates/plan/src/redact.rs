//! The resolved plan as JSON, for the run directory, with secrets replaced by `***`.

use serde_json::Value;

use crate::env::{is_secret_name, substitute};

/// The plan with `${…}` substituted; a string that took its value from a secret-named variable,
/// or that sits under a secret-named key (`secret:`, `api_token:`…), becomes `***`.
pub fn redacted(src: &str, lookup: &dyn Fn(&str) -> Option<String>, vars: &[(String, String)]) -> Value {
    let v: Value = serde_saphyr::from_str(src).unwrap_or(Value::Null);
    let mut out = walk(v, lookup, false);
    // --var values of secret-named variables, wherever they were inlined.
    let secrets: Vec<&str> = vars
        .iter()
        .filter(|(k, v)| is_secret_name(k) && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .collect();
    if !secrets.is_empty() {
        scrub(&mut out, &secrets);
    }
    out
}

fn walk(v: Value, lookup: &dyn Fn(&str) -> Option<String>, secret_key: bool) -> Value {
    match v {
        Value::String(s) => match substitute(&s, lookup) {
            _ if secret_key => Value::String("***".into()),
            Ok(r) if r.secret => Value::String("***".into()),
            Ok(r) => Value::String(r.text),
            Err(_) => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(|x| walk(x, lookup, secret_key)).collect()),
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, x)| {
                    let sk = secret_key || is_secret_name(&k);
                    (k, walk(x, lookup, sk))
                })
                .collect(),
        ),
        other if secret_key => {
            let _ = other;
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
