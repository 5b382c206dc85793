//! A VU's cookie jar: RFC 6265 §5.3 storage and §5.4 matching (domain and host-only, path,
//! expiry by `Max-Age` or `Expires`, Secure, HttpOnly). `Set-Cookie` values are parsed by the
//! `cookie` crate; the jar itself is a small `Vec` kept in the order its `Cookie` header lists
//! cookies (longer paths first, then older first), one allocation per cookie. Ten thousand VUs
//! each hold a jar, so it is a list rather than nested maps by domain, path and name (the
//! `cookie_store` crate's, which cost ~1 KiB a VU holding one cookie; this costs a few hundred
//! bytes): a VU holds a few cookies, and a look through a few is faster than hashing. Emptied
//! (keeping the list's room) at each iteration unless the plan says `cookies: keep`.
//!
//! As `cookie_store` did (without its public-suffix feature), no public-suffix list is applied;
//! as in browsers, a loopback or `localhost` origin counts as secure (Secure cookies are sent to
//! it over plain HTTP).

use std::time::{SystemTime, UNIX_EPOCH};

use url::{Host, Url};

/// At most this many cookies a VU (RFC 6265 §6.1's minimum a user agent should store): past
/// it, expired ones are dropped, and then new ones refused, so a server cannot grow a VU
/// without bound.
const MAX_COOKIES: usize = 3000;

/// A session cookie's expiry: never, within the run.
const SESSION: i64 = i64::MAX;

/// One stored cookie.
struct Stored {
    /// `name=value`, then the domain, then the path: one allocation.
    text: Box<str>,
    /// Where the name, the value and the domain end in `text`.
    name_end: u32,
    value_end: u32,
    domain_end: u32,
    /// Unix seconds after which the cookie is gone ([`SESSION`]: at the end of the session).
    expires: i64,
    /// No `Domain` attribute: sent to the host that set it only, not to its subdomains.
    host_only: bool,
    secure: bool,
}

impl Stored {
    fn name(&self) -> &str {
        &self.text[..self.name_end as usize]
    }

    fn value(&self) -> &str {
        &self.text[self.name_end as usize + 1..self.value_end as usize]
    }

    fn name_value(&self) -> &str {
        &self.text[..self.value_end as usize]
    }

    fn domain(&self) -> &str {
        &self.text[self.value_end as usize..self.domain_end as usize]
    }

    fn path(&self) -> &str {
        &self.text[self.domain_end as usize..]
    }

    fn expired(&self, now: &mut Option<i64>) -> bool {
        self.expires != SESSION && self.expires <= *now.get_or_insert_with(unix_now)
    }

    /// Whether the cookie goes with a request to `to` (expiry aside).
    fn matches(&self, to: &Target) -> bool {
        let domain = self.domain();
        let host_ok = if self.host_only {
            to.host == domain
        } else {
            domain_match(to.host, to.is_name, domain)
        };
        host_ok && path_match(to.path, self.path()) && (!self.secure || to.secure)
    }
}

/// What matching needs of a request's URL.
struct Target<'a> {
    host: &'a str,
    /// The host is a name (not an IP address): only names domain-match a parent domain.
    is_name: bool,
    path: &'a str,
    /// HTTPS, or a loopback or `localhost` host.
    secure: bool,
}

impl<'a> Target<'a> {
    fn of(url: &'a Url) -> Option<Target<'a>> {
        let host = url.host_str()?;
        let (is_name, local) = match url.host()? {
            Host::Domain(d) => (true, d.eq_ignore_ascii_case("localhost")),
            Host::Ipv4(ip) => (false, ip.is_loopback()),
            Host::Ipv6(ip) => (false, ip.is_loopback()),
        };
        Some(Target {
            host,
            is_name,
            path: url.path(),
            secure: url.scheme() == "https" || url.scheme() == "wss" || local,
        })
    }
}

#[derive(Default)]
pub struct Jar {
    /// In `Cookie` header order: longer paths first, among equal paths the older first.
    cookies: Vec<Stored>,
}

impl Jar {
    /// Nothing stored: requests need no `Cookie` header.
    pub fn is_empty(&self) -> bool {
        self.cookies.is_empty()
    }

    /// Forgets every cookie (a new visitor), keeping the list's room for the next ones.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }

    /// Stores the cookies of `Set-Cookie` values received from `url`. Values that are not
    /// cookies, or that the rules refuse (a `Domain` that does not match the host), are ignored,
    /// as browsers do.
    pub fn store<'a>(&mut self, set_cookies: impl Iterator<Item = &'a [u8]>, url: &Url) {
        let Some(from) = Target::of(url) else {
            return;
        };
        for raw in set_cookies {
            if let Some(c) = std::str::from_utf8(raw).ok().and_then(|t| parse(t, url, &from)) {
                self.insert(c);
            }
        }
    }

    /// RFC 6265 §5.3 steps 11–12: a cookie replaces the one of the same name, domain and path
    /// (keeping its place: its creation time), and an expired one only removes it.
    fn insert(&mut self, c: Stored) {
        let same = self
            .cookies
            .iter()
            .position(|o| o.name() == c.name() && o.domain() == c.domain() && o.path() == c.path());
        let mut now = None;
        if c.expired(&mut now) {
            if let Some(i) = same {
                self.cookies.remove(i);
            }
            return;
        }
        if let Some(i) = same {
            self.cookies[i] = c;
            return;
        }
        if self.cookies.len() >= MAX_COOKIES {
            self.cookies.retain(|o| !o.expired(&mut now));
            if self.cookies.len() >= MAX_COOKIES {
                return;
            }
        }
        // After every cookie with a path at least as long: header order without a sort.
        let len = c.path().len();
        let at = self.cookies.partition_point(|o| o.path().len() >= len);
        self.cookies.insert(at, c);
    }

    /// Appends the `Cookie` header value for a request to `url` (`a=1; b=2`) to `out`; false
    /// when no stored cookie matches it.
    pub fn header_into(&self, url: &Url, out: &mut Vec<u8>) -> bool {
        let Some(to) = Target::of(url) else {
            return false;
        };
        let mut now = None;
        let mut any = false;
        for c in &self.cookies {
            if !c.matches(&to) || c.expired(&mut now) {
                continue;
            }
            if any {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(c.name_value().as_bytes());
            any = true;
        }
        any
    }

    /// The value of an unexpired cookie named `name`, whatever its domain and path (the first
    /// found), for `{{ cookie("name") }}`. HttpOnly cookies count: the plan is the user agent
    /// itself, not a page's script.
    pub fn value(&self, name: &[u8]) -> Option<&str> {
        let mut now = None;
        self.cookies
            .iter()
            .find(|c| c.name().as_bytes() == name && !c.expired(&mut now))
            .map(Stored::value)
    }
}

/// A `Set-Cookie` value received from `url` as the jar stores it (RFC 6265 §5.3), or `None`
/// when it is not a cookie or the rules refuse it.
fn parse(text: &str, url: &Url, from: &Target) -> Option<Stored> {
    let c = cookie::Cookie::parse(text).ok()?;
    if c.name().is_empty() {
        return None;
    }
    // Step 10: an HttpOnly cookie from anything but HTTP is ignored.
    if c.http_only() == Some(true) && !url.scheme().starts_with("http") {
        return None;
    }
    // Step 3: Max-Age wins over Expires; a Max-Age of zero or less expires it at once.
    let expires = match (c.max_age(), c.expires_datetime()) {
        (Some(age), _) if age.whole_seconds() <= 0 => i64::MIN,
        (Some(age), _) => unix_now().saturating_add(age.whole_seconds()),
        (None, Some(at)) => at.unix_timestamp(),
        (None, None) => SESSION,
    };
    // Steps 5–6: a Domain the host does not domain-match refuses the cookie; none (or an
    // empty one) makes it host-only.
    let attr = c.domain().map(|d| d.trim_start_matches('.').to_ascii_lowercase());
    let (domain, host_only) = match attr.filter(|d| !d.is_empty()) {
        Some(d) if domain_match(from.host, from.is_name, &d) => (d, false),
        Some(_) => return None,
        None => (from.host.to_string(), true),
    };
    // Step 7: a Path that does not start with `/` (or none) is the request's default path.
    let path = match c.path() {
        Some(p) if p.starts_with('/') => p,
        _ => default_path(from.path),
    };
    let mut text = String::with_capacity(c.name().len() + 1 + c.value().len() + domain.len() + path.len());
    text.push_str(c.name());
    let name_end = text.len() as u32;
    text.push('=');
    text.push_str(c.value());
    let value_end = text.len() as u32;
    text.push_str(&domain);
    let domain_end = text.len() as u32;
    text.push_str(path);
    Some(Stored {
        text: text.into_boxed_str(),
        name_end,
        value_end,
        domain_end,
        expires,
        host_only,
        secure: c.secure() == Some(true),
    })
}

/// RFC 6265 §5.1.3: `host` is `domain` or, when it is a name, a subdomain of it.
fn domain_match(host: &str, is_name: bool, domain: &str) -> bool {
    host == domain
        || (is_name
            && host.len() > domain.len()
            && host.ends_with(domain)
            && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
}

/// RFC 6265 §5.1.4: the request path `path` is within the cookie path `cookie`.
fn path_match(path: &str, cookie: &str) -> bool {
    path == cookie
        || (path.starts_with(cookie) && (cookie.ends_with('/') || path.as_bytes().get(cookie.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.4: the directory of a request path (up to its last `/`, excluded), or `/`.
fn default_path(path: &str) -> &str {
    match path.rfind('/') {
        Some(i) if i > 0 && path.starts_with('/') => &path[..i],
        _ => "/",
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    /// A jar holding what `set` sets, received from `from`.
    fn stored(from: &str, set: &[&[u8]]) -> Jar {
        let mut jar = Jar::default();
        jar.store(set.iter().copied(), &url(from));
        jar
    }

    fn header(jar: &Jar, u: &str) -> String {
        let mut out = Vec::new();
        jar.header_into(&url(u), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn domain_path_secure_and_expiry_rules() {
        let mut jar = Jar::default();
        assert!(jar.is_empty());
        let from = url("http://app.example.test/login");
        let set: [&[u8]; 6] = [
            b"session=abc; Path=/; HttpOnly",
            b"wide=1; Domain=example.test; Path=/",
            b"admin=2; Path=/admin",
            b"sec=3; Secure; Path=/",
            b"gone=4; Path=/; Max-Age=0",
            b"other=5; Domain=elsewhere.test",
        ];
        jar.store(set.into_iter(), &from);
        assert!(!jar.is_empty());
        let h = header(&jar, "http://app.example.test/");
        assert!(h.contains("session=abc") && h.contains("wide=1"), "{h}");
        assert!(
            !h.contains("admin") && !h.contains("sec=") && !h.contains("gone") && !h.contains("other"),
            "{h}"
        );
        assert!(header(&jar, "http://app.example.test/admin/x").contains("admin=2"));
        assert!(!header(&jar, "http://app.example.test/administrator").contains("admin=2"));
        assert!(header(&jar, "https://app.example.test/").contains("sec=3"));
        // Host-only: not sent to a sibling; the Domain cookie is.
        assert_eq!(header(&jar, "http://api.example.test/"), "wide=1");
        assert_eq!(jar.value(b"session"), Some("abc"));
        assert_eq!(jar.value(b"gone"), None);
        jar.clear();
        assert!(jar.is_empty());
        assert_eq!(header(&jar, "http://app.example.test/"), "");
        assert_eq!(jar.value(b"session"), None);
    }

    #[test]
    fn longer_paths_first_replacement_keeps_its_place_and_expiry_removes() {
        let from = url("http://h.test/a/b/page");
        let mut jar = stored(
            from.as_str(),
            &[b"a=1; Path=/", b"b=2; Path=/a/b", b"c=3", b"d=4; Path=/a"],
        );
        // `c` has the default path /a/b (the request's directory), after the older `b`.
        assert_eq!(header(&jar, "http://h.test/a/b/x"), "b=2; c=3; d=4; a=1");
        jar.store([&b"a=9; Path=/"[..], b"b=7; Path=/a/b"].into_iter(), &from);
        assert_eq!(header(&jar, "http://h.test/a/b/x"), "b=7; c=3; d=4; a=9");
        jar.store(
            [&b"b=x; Path=/a/b; Expires=Thu, 01 Jan 1970 00:00:01 GMT"[..]].into_iter(),
            &from,
        );
        assert_eq!(header(&jar, "http://h.test/a/b/x"), "c=3; d=4; a=9");
        // A cookie set for a path elsewhere is stored but not sent here; a future expiry is kept.
        jar.store(
            [&b"e=5; Path=/z; Expires=Fri, 01 Jan 2100 00:00:00 GMT"[..]].into_iter(),
            &from,
        );
        assert_eq!(header(&jar, "http://h.test/z"), "e=5; a=9");
        assert_eq!(jar.value(b"e"), Some("5"));
    }

    #[test]
    fn ip_hosts_are_host_only_and_loopback_counts_as_secure() {
        let jar = stored(
            "http://127.0.0.1:8080/",
            &[b"s=1; Secure", b"d=2; Domain=0.0.1", b"ok=3; Domain=127.0.0.1"],
        );
        assert_eq!(header(&jar, "http://127.0.0.1:9090/"), "s=1; ok=3");
        assert_eq!(header(&jar, "http://127.0.0.2/"), "");
        assert_eq!(jar.value(b"d"), None);
    }

    #[test]
    fn a_jar_holds_a_bounded_number_of_cookies() {
        let many: Vec<String> = (0..MAX_COOKIES + 10).map(|i| format!("c{i}=v")).collect();
        let many: Vec<&[u8]> = many.iter().map(|s| s.as_bytes()).collect();
        let jar = stored("http://h.test/", &many);
        assert_eq!(jar.cookies.len(), MAX_COOKIES);
        assert_eq!(jar.value(b"c0"), Some("v"));
        assert_eq!(jar.value(format!("c{MAX_COOKIES}").as_bytes()), None);
    }
}
