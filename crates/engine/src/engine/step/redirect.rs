//! Following redirects within one step, as browsers do (RFC 9110 §15.4, the Fetch standard):
//! 303 turns the request into a GET without a body, so do 301 and 302 for a POST; 307 and 308
//! keep the method and the body. A relative `Location` is resolved against the URL it answered;
//! a hop to another origin goes through the VU's session for that origin, without the step's
//! credentials. The whole chain is one sample: its latency, its bytes, its hop count.

use bytes::Bytes;
use http::{HeaderValue, Method};
use stampede_plan::Origin;
use url::Url;

use crate::outcome::ErrorKind;

/// The next request of a chain, after a redirect.
#[derive(Debug)]
pub struct Hop {
    pub method: Method,
    /// Whether the step's body (and its `Content-Type`, `Content-Encoding`) is sent again.
    pub body: bool,
    /// The chain has left the step's origin: no `Authorization` from the plan (it stays off
    /// even if a later hop comes back).
    pub cross_origin: bool,
    pub origin: Origin,
    /// The VU's session for `origin` (`Sessions::index_of`).
    pub session: usize,
    pub host: HeaderValue,
    /// `scheme://authority`, for HTTP/2's URI.
    pub prefix: Bytes,
    /// Origin-form target: `/path?query`.
    pub path: Vec<u8>,
}

/// The statuses that redirect (300 and 304 do not: they carry no new URL to go to).
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The method after a redirect with `status`, and whether the body goes along.
pub fn method_after(status: u16, method: &Method) -> (Method, bool) {
    match status {
        303 if *method != Method::HEAD => (Method::GET, false),
        301 | 302 if *method == Method::POST => (Method::GET, false),
        _ => (method.clone(), true),
    }
}

/// Where `location` (a `Location` header received from `base`) leads, as an origin and an
/// origin-form target. `None` when it is not a URL we can follow (another scheme, no host):
/// the 3xx is then the step's response, as it is with following off.
pub fn resolve(base: &Url, location: &[u8]) -> Option<(Origin, Vec<u8>)> {
    let location = std::str::from_utf8(location).ok()?.trim();
    let mut next = base.join(location).ok()?;
    if !matches!(next.scheme(), "http" | "https") {
        return None;
    }
    next.set_fragment(None);
    let (origin, path) = stampede_plan::parse_url(next.as_str()).ok()?;
    Some((origin, path.into_bytes()))
}

/// The next hop, or `TooManyRedirects` when `done` redirects already reach `limit`.
pub fn next_hop(
    done: u16,
    limit: u32,
    status: u16,
    method: &Method,
    (origin, path): (Origin, Vec<u8>),
    session: usize,
    cross_origin: bool,
) -> Result<Hop, ErrorKind> {
    if u32::from(done) >= limit {
        return Err(ErrorKind::TooManyRedirects);
    }
    let (method, body) = method_after(status, method);
    let scheme = if origin.tls { "https" } else { "http" };
    Ok(Hop {
        method,
        body,
        cross_origin,
        host: HeaderValue::from_str(&origin.authority).map_err(|_| ErrorKind::InvalidRequest)?,
        prefix: Bytes::from(format!("{scheme}://{}", origin.authority)),
        origin,
        session,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_bodies_as_browsers_do() {
        assert_eq!(method_after(303, &Method::POST), (Method::GET, false));
        assert_eq!(method_after(303, &Method::PUT), (Method::GET, false));
        assert_eq!(method_after(303, &Method::HEAD), (Method::HEAD, true));
        assert_eq!(method_after(302, &Method::POST), (Method::GET, false));
        assert_eq!(method_after(301, &Method::POST), (Method::GET, false));
        assert_eq!(method_after(302, &Method::PUT), (Method::PUT, true));
        assert_eq!(method_after(307, &Method::POST), (Method::POST, true));
        assert_eq!(method_after(308, &Method::PATCH), (Method::PATCH, true));
        assert!(is_redirect(301) && is_redirect(308) && !is_redirect(304) && !is_redirect(300));
    }

    #[test]
    fn locations_resolve_against_the_url_they_answered() {
        let base = Url::parse("http://a.test:8080/x/y?q=1").unwrap();
        let (o, p) = resolve(&base, b"z?k=2#frag").unwrap();
        assert_eq!((o.authority.as_str(), p.as_slice()), ("a.test:8080", &b"/x/z?k=2"[..]));
        let (o, p) = resolve(&base, b"/top").unwrap();
        assert_eq!((o.host.as_str(), p.as_slice()), ("a.test", &b"/top"[..]));
        let (o, p) = resolve(&base, b"https://b.test/").unwrap();
        assert!(o.tls && o.port == 443 && p == b"/");
        let (o, _) = resolve(&base, b"//c.test:81/p").unwrap();
        assert_eq!(o.authority, "c.test:81");
        assert!(resolve(&base, b"ftp://f.test/").is_none());
        assert!(resolve(&base, b"mailto:a@b").is_none());
    }

    #[test]
    fn the_limit_is_an_error_of_its_own() {
        let o = stampede_plan::parse_url("http://a.test/").unwrap().0;
        assert!(next_hop(9, 10, 302, &Method::GET, (o.clone(), b"/".to_vec()), 0, false).is_ok());
        assert_eq!(
            next_hop(10, 10, 302, &Method::GET, (o, b"/".to_vec()), 0, false).unwrap_err(),
            ErrorKind::TooManyRedirects
        );
    }
}
