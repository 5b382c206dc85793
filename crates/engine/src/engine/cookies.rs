//! A VU's cookie jar: RFC 6265 storage and matching (domain, host-only, path, expiry, Secure,
//! HttpOnly) by `cookie_store`, the store reqwest uses. The store is made on the first
//! `Set-Cookie` a VU receives, so VUs of a plan whose responses set no cookie carry an empty
//! `Option` and requests never look at it; emptied (keeping its memory) at each iteration
//! unless the plan says `cookies: keep`.

use cookie_store::CookieStore;
use url::Url;

#[derive(Default)]
pub struct Jar {
    store: Option<Box<CookieStore>>,
    /// Whether the store holds anything (cheaper to ask than the store's nested maps).
    filled: bool,
}

impl Jar {
    /// Nothing stored: requests need no `Cookie` header.
    pub fn is_empty(&self) -> bool {
        !self.filled
    }

    /// Forgets every cookie (a new visitor), keeping the store's memory for the next ones.
    pub fn clear(&mut self) {
        if self.filled {
            if let Some(s) = &mut self.store {
                s.clear();
            }
            self.filled = false;
        }
    }

    /// Stores the cookies of `Set-Cookie` values received from `url`. Values that are not
    /// cookies, or that the rules refuse (a `Domain` that does not match the host), are ignored,
    /// as browsers do.
    pub fn store<'a>(&mut self, set_cookies: impl Iterator<Item = &'a [u8]>, url: &Url) {
        for raw in set_cookies {
            let Ok(text) = std::str::from_utf8(raw) else {
                continue;
            };
            let store = self.store.get_or_insert_with(Default::default);
            if store.parse(text, url).is_ok() {
                self.filled = true;
            }
        }
    }

    /// Appends the `Cookie` header value for a request to `url` (`a=1; b=2`) to `out`; false
    /// when no stored cookie matches it.
    pub fn header_into(&self, url: &Url, out: &mut Vec<u8>) -> bool {
        let Some(store) = self.store.as_ref().filter(|_| self.filled) else {
            return false;
        };
        let mut any = false;
        for (name, value) in store.get_request_values(url) {
            if any {
                out.extend_from_slice(b"; ");
            }
            out.extend_from_slice(name.as_bytes());
            out.push(b'=');
            out.extend_from_slice(value.as_bytes());
            any = true;
        }
        any
    }

    /// The value of an unexpired cookie named `name`, whatever its domain and path (the first
    /// found), for `{{ cookie("name") }}`. HttpOnly cookies count: the plan is the user agent
    /// itself, not a page's script.
    pub fn value(&self, name: &[u8]) -> Option<&str> {
        let store = self.store.as_ref().filter(|_| self.filled)?;
        store
            .iter_unexpired()
            .find(|c| c.name().as_bytes() == name)
            .map(|c| c.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
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
}
