//! Absolute URLs (`target:`, full step URLs, Prometheus endpoints), split with `http::Uri`.

use http::uri::{Scheme, Uri};

use crate::model::Origin;

/// Parses an absolute `http://` or `https://` URL into its origin and the request target: the
/// path and query as written, `/` when there is no path. A `#fragment` is dropped, as a client
/// never sends it. The path may hold `{{ … }}` templates; the scheme and authority may not.
pub fn parse_url(url: &str) -> Result<(Origin, String), String> {
    // RFC 3986: the authority runs from `//` to the first `/`, `?` or `#`. Only that much goes
    // through `Uri`, so that templates in the path (which may contain spaces) are left alone.
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| after_scheme + i);
    let (head, rest) = url.split_at(end);
    if head.contains("{{") {
        return Err(format!("`{url}`: the scheme, host and port cannot be templated"));
    }
    let uri: Uri = head.parse().map_err(|e| format!("`{url}` is not a valid URL: {e}"))?;
    let tls = match uri.scheme() {
        Some(s) if *s == Scheme::HTTPS => true,
        Some(s) if *s == Scheme::HTTP => false,
        _ => return Err(format!("`{url}` is not an http:// or https:// URL")),
    };
    let authority = uri.authority().ok_or_else(|| format!("`{url}` has no host"))?;
    if authority.as_str().contains('@') {
        return Err(format!(
            "`{url}` carries credentials (`user:password@`), which are not sent; set an \
             `Authorization` header instead"
        ));
    }
    let host = authority.host();
    let host = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) if v6.parse::<std::net::Ipv6Addr>().is_ok() => v6,
        Some(_) => return Err(format!("`{url}`: `{host}` is not an IPv6 address")),
        None if host.is_empty() => return Err(format!("`{url}` has no host")),
        None => host,
    };
    // `Uri` takes any text after the host's `:` and then reports no port: check it here.
    let port = match authority.as_str()[authority.host().len()..].strip_prefix(':') {
        None | Some("") => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => match authority.port_u16() {
            Some(n) if n > 0 => n,
            _ => return Err(format!("`{url}`: `{p}` is not a port (1 to 65535)")),
        },
    };
    let target = rest.split('#').next().unwrap_or_default();
    let target = if target.starts_with('/') {
        target.to_string()
    } else {
        format!("/{target}")
    };
    let origin = Origin {
        tls,
        host: host.to_string(),
        port,
        authority: authority.as_str().to_string(),
    };
    Ok((origin, target))
}

/// Parses a base URL (`target:`, a Prometheus endpoint): its origin and path, with the path's
/// trailing `/` removed so that paths append cleanly (`""` for the root). A query stays.
pub fn parse_origin(url: &str) -> Result<(Origin, String), String> {
    let (origin, target) = parse_url(url)?;
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target.as_str(), None),
    };
    let path = path.trim_end_matches('/');
    let prefix = match query {
        Some(q) => format!("{}?{q}", if path.is_empty() { "/" } else { path }),
        None => path.to_string(),
    };
    Ok((origin, prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(u: &str) -> (bool, String, u16, String, String) {
        let (o, t) = parse_url(u).unwrap_or_else(|e| panic!("{u}: {e}"));
        (o.tls, o.host, o.port, o.authority, t)
    }

    fn refused(u: &str) -> String {
        parse_url(u).expect_err(u)
    }

    #[test]
    fn authority_ends_at_path_query_or_fragment() {
        assert_eq!(url("http://h?x=1"), (false, "h".into(), 80, "h".into(), "/?x=1".into()));
        assert_eq!(
            url("http://h/a/?x=1&y=2"),
            (false, "h".into(), 80, "h".into(), "/a/?x=1&y=2".into())
        );
        assert_eq!(url("http://h#top"), (false, "h".into(), 80, "h".into(), "/".into()));
        assert_eq!(
            url("http://h/a?b#c?d"),
            (false, "h".into(), 80, "h".into(), "/a?b".into())
        );
        assert_eq!(url("http://h"), (false, "h".into(), 80, "h".into(), "/".into()));
        assert_eq!(url("http://h/a@b"), (false, "h".into(), 80, "h".into(), "/a@b".into()));
    }

    #[test]
    fn ports_default_by_scheme() {
        assert_eq!(url("https://h/v1").2, 443);
        assert_eq!(url("http://h:").2, 80);
        assert_eq!(url("https://h:8443").2, 8443);
        assert!(url("HTTPS://H:443/").0);
        assert!(refused("http://h:99999/").contains("`99999` is not a port"));
        assert!(refused("http://h:x/").contains("`x` is not a port"));
        assert!(refused("http://h:0/").contains("`0` is not a port"));
    }

    #[test]
    fn ipv6_literals() {
        assert_eq!(
            url("http://[::1]:8080/a"),
            (false, "::1".into(), 8080, "[::1]:8080".into(), "/a".into())
        );
        assert_eq!(url("https://[2001:db8::1]").2, 443);
        assert!(refused("http://[::1/").contains("not a valid URL"));
        assert!(refused("http://[v1.x]/").contains("not an IPv6 address"));
        assert!(refused("http://[zz]:80/").contains("not an IPv6 address"));
    }

    #[test]
    fn refused_urls() {
        assert!(refused("http://user:pw@h/").contains("credentials"));
        assert!(refused("http://u@h").contains("credentials"));
        assert!(refused("ftp://h/").contains("not an http"));
        assert!(refused("h/path").contains("not an http"));
        assert!(refused("http://").contains("not a valid URL"));
        assert!(refused("http://:80/").contains("no host"));
        assert!(refused("http://h h/").contains("not a valid URL"));
        assert!(refused("http://{{ host }}/").contains("cannot be templated"));
        // Templates in the path are the step's business.
        assert_eq!(url("http://h/u/{{ users.id }}").4, "/u/{{ users.id }}");
    }

    #[test]
    fn base_urls_drop_the_trailing_slash() {
        let base = |u: &str| parse_origin(u).unwrap().1;
        assert_eq!(base("http://h"), "");
        assert_eq!(base("http://h/"), "");
        assert_eq!(base("https://h/v1/"), "/v1");
        assert_eq!(base("http://h:9100/metrics?x=1"), "/metrics?x=1");
        assert_eq!(base("http://h?x=1"), "/?x=1");
        assert_eq!(parse_origin("http://h?x=1").unwrap().0.host, "h");
    }
}
