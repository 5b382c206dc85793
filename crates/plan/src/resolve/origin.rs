//! Base URLs.

use crate::model::Origin;

/// Parses `http(s)://host[:port][/path]` into an origin and a path prefix.
pub fn parse_origin(url: &str) -> Result<(Origin, String), String> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if authority.is_empty() {
        return Err(format!("`{url}` has no host"));
    }
    if authority.contains("{{") || authority.contains('@') {
        return Err(format!("`{url}`: the host cannot be templated or carry credentials"));
    }
    let default_port = if tls { 443 } else { 80 };
    let (host, port) = if let Some(r) = authority.strip_prefix('[') {
        let end = r.find(']').ok_or_else(|| format!("`{url}`: unclosed `[`"))?;
        let host = &r[..end];
        let port = match &r[end + 1..] {
            "" => default_port,
            p => p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("`{url}`: bad port"))?,
        };
        (host.to_string(), port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>().map_err(|_| format!("`{url}`: `{p}` is not a port"))?,
            ),
            None => (authority.to_string(), default_port),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(format!("`{url}` has no valid host"));
    }
    Ok((
        Origin {
            tls,
            host,
            port,
            authority: authority.to_string(),
        },
        path.trim_end_matches('/').to_string(),
    ))
}
