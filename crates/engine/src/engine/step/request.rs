//! Building a step's request from its prepared parts: as HTTP/1.1 bytes for our own client,
//! or as an `http::Request` for hyper's HTTP/2. One sequence of parts feeds both, so the two
//! protocols always send the same headers and body.

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, COOKIE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use sha2::Sha256;
use stampede_plan::{Compression, Origin, SignEncoding};

use super::http::Prepared;
use super::redirect::Hop;
use crate::engine::render::{push_int, unix_now, Env};
use crate::engine::vu::Vu;
use crate::http::ReqBody;
use crate::outcome::ErrorKind;

/// A built request. HTTP/1.1 bytes are in `vu.wire`, or in `Prepared::wire` when the whole
/// request is literal (built once at start-up, sent as is).
pub enum Built {
    H1 {
        bytes_out: u64,
    },
    Prepared {
        bytes_out: u64,
    },
    /// Boxed: an `http::Request` is large, and this is returned on every request. The body
    /// beside it (a reference count) is for `--http-debug`.
    H2(Box<Request<ReqBody>>, u64, Bytes),
}

/// Where headers go.
enum HeaderSink<'a> {
    Wire(&'a mut Vec<u8>),
    Map(&'a mut HeaderMap),
}

impl HeaderSink<'_> {
    /// Adds a header whose value is already known to be valid.
    fn header(&mut self, name: &HeaderName, value: &HeaderValue) {
        match self {
            HeaderSink::Wire(w) => put_header(w, name, value.as_bytes()),
            HeaderSink::Map(m) => {
                m.append(name.clone(), value.clone());
            }
        }
    }

    /// Adds a rendered header. A value with a line break, NUL or another control character
    /// (a capture or a data column can hold any byte) fails the request as `InvalidHeader`:
    /// it is never sent, neither whole (it would inject headers) nor left out (a request
    /// without its `Host` or `Authorization` is not the request the plan describes).
    fn rendered(&mut self, name: &HeaderName, value: &[u8]) -> Result<(), ErrorKind> {
        match self {
            HeaderSink::Wire(w) => {
                if !value.iter().all(|&b| b >= 0x20 && b != 0x7f || b == b'\t') {
                    return Err(ErrorKind::InvalidHeader);
                }
                put_header(w, name, value);
            }
            HeaderSink::Map(m) => {
                let v = HeaderValue::from_bytes(value).map_err(|_| ErrorKind::InvalidHeader)?;
                m.append(name.clone(), v);
            }
        }
        Ok(())
    }
}

fn put_header(w: &mut Vec<u8>, name: &HeaderName, value: &[u8]) {
    w.extend_from_slice(name.as_str().as_bytes());
    w.extend_from_slice(b": ");
    w.extend_from_slice(value);
    w.extend_from_slice(b"\r\n");
}

fn request_line(w: &mut Vec<u8>, method: &Method, target: &[u8]) {
    w.clear();
    w.extend_from_slice(method.as_str().as_bytes());
    w.push(b' ');
    w.extend_from_slice(target);
    w.extend_from_slice(b" HTTP/1.1\r\n");
}

/// Which of the step's own headers a request carries: all of them for the step's request; after
/// a redirect not its `Host`, nor its body's headers when the body is dropped, nor its
/// credentials once the chain left the step's origin (as browsers do).
#[derive(Clone, Copy)]
struct Keep {
    own_host: bool,
    body: bool,
    credentials: bool,
}

impl Keep {
    const ALL: Keep = Keep {
        own_host: true,
        body: true,
        credentials: true,
    };

    fn of(hop: Option<&Hop>) -> Keep {
        match hop {
            None => Keep::ALL,
            Some(h) => Keep {
                own_host: false,
                body: h.body,
                credentials: !h.cross_origin,
            },
        }
    }

    fn header(self, name: &HeaderName) -> bool {
        (self.own_host || name != HOST)
            && (self.body || (name != CONTENT_TYPE && name != CONTENT_ENCODING))
            && (self.credentials || name != AUTHORIZATION)
    }
}

/// The literal headers: Host (unless the step sets its own; HTTP/2 carries it in the URI),
/// Content-Type, static headers.
fn static_headers(prep: &Prepared, host: Option<&HeaderValue>, keep: Keep, sink: &mut HeaderSink) {
    if let Some(host) = host.filter(|_| !(prep.sets_host && keep.own_host)) {
        sink.header(&HOST, host);
    }
    if let Some(ct) = prep.content_type.as_ref().filter(|_| keep.body) {
        sink.header(&CONTENT_TYPE, ct);
    }
    for (name, value) in prep.static_headers.iter().filter(|(n, _)| keep.header(n)) {
        if host.is_some() || name != HOST {
            sink.header(name, value);
        }
    }
}

/// Ends an HTTP/1.1 request: the body's length, the blank line, the body.
fn finish_h1(w: &mut Vec<u8>, method: &Method, body: &[u8]) {
    if !body.is_empty() || matches!(*method, Method::POST | Method::PUT | Method::PATCH) {
        w.extend_from_slice(b"content-length: ");
        w.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        w.extend_from_slice(b"\r\n");
    }
    w.extend_from_slice(b"\r\n");
    w.extend_from_slice(body);
}

/// The whole HTTP/1.1 request, when nothing in it changes between requests.
pub fn prepared_wire(prep: &Prepared) -> Option<Bytes> {
    let step = &prep.step;
    let literal = prep.uri_h1.is_some()
        && prep.dynamic_headers.is_empty()
        && prep.basic_auth.is_none()
        && step.sign.is_none()
        && (step.body.is_none() || prep.literal_body.is_some());
    if !literal {
        return None;
    }
    let target = prep.uri_h1.as_ref()?.path_and_query()?.as_str().as_bytes();
    let mut w = Vec::new();
    request_line(&mut w, &step.method, target);
    static_headers(prep, Some(&prep.host), Keep::ALL, &mut HeaderSink::Wire(&mut w));
    finish_h1(&mut w, &step.method, prep.literal_body.as_deref().unwrap_or_default());
    Some(Bytes::from(w))
}

/// A rendered origin-form target is valid for HTTP/1.1: it starts with `/` and has only
/// visible ASCII (a space or line break would split the request line). A fragment is cut.
fn origin_form(target: &[u8]) -> Option<&[u8]> {
    let target = match target.iter().position(|&b| b == b'#') {
        Some(i) => &target[..i],
        None => target,
    };
    (target.first() == Some(&b'/') && target.iter().all(|&b| (0x21..0x7f).contains(&b))).then_some(target)
}

/// The origin-form target (`/path?query`) of the step's request as last built for `vu`, or of
/// redirect `hop`: the base a relative `Location` is resolved against.
pub fn current_target<'a>(prep: &'a Prepared, vu: &'a Vu, hop: Option<&'a Hop>) -> &'a [u8] {
    match (hop, &prep.uri_h1) {
        (Some(h), _) => &h.path,
        (None, Some(u)) => u.path_and_query().map_or(b"/", |p| p.as_str().as_bytes()),
        (None, None) => &vu.path,
    }
}

/// `scheme://authority/path` as a URL, for the cookie jar and for resolving `Location`.
pub fn url_of(origin: &Origin, target: &[u8]) -> Option<url::Url> {
    let scheme = if origin.tls { "https" } else { "http" };
    let target = std::str::from_utf8(target).ok()?;
    url::Url::parse(&format!("{scheme}://{}{target}", origin.authority)).ok()
}

/// Builds the request of the step prepared as `prep` for `vu` (or, after a redirect, the
/// request `hop` describes), in the form the connection speaks. `InvalidRequest` when the
/// rendered path is not a valid request target, `InvalidHeader` when a rendered header value is
/// not a valid header value. The VU's cookies for the URL go in a `Cookie` header.
pub fn build(prep: &Prepared, vu: &mut Vu, h2: bool, hop: Option<&Hop>) -> Result<Built, ErrorKind> {
    let step = &prep.step;
    if !h2 && hop.is_none() && prep.wire.is_some() && vu.jar.is_empty() {
        return Ok(Built::Prepared {
            bytes_out: prep.literal_body.as_ref().map_or(0, |b| b.len() as u64),
        });
    }
    let method = hop.map_or(&step.method, |h| &h.method);
    let origin = hop.map_or(&step.origin, |h| &h.origin);
    let keep = Keep::of(hop);
    let mut env = Env {
        slots: &vu.slots,
        rng: &mut vu.rng,
        vu: vu.id,
        iteration: vu.iteration,
        jar: Some(&vu.jar),
    };
    // The target first: a templated one is rendered into `vu.path`, where it stays as the base
    // of a redirect's relative `Location`.
    let mut h2_uri = None;
    let target: &[u8] = match (hop, &prep.uri_h1) {
        (Some(h), _) => {
            if h2 {
                h2_uri = Some(absolute(&h.prefix, &h.path)?);
            }
            &h.path
        }
        (None, Some(u)) => {
            if h2 {
                h2_uri = prep.uri_h2.clone();
            }
            u.path_and_query().map_or(b"/", |p| p.as_str().as_bytes())
        }
        (None, None) => {
            vu.path.clear();
            step.path_and_query
                .render_into(&mut vu.path, &mut vu.scratch, |e, b| env.eval(e, b));
            if h2 {
                h2_uri = Some(absolute(&prep.absolute_prefix, &vu.path)?);
                &vu.path
            } else {
                origin_form(&vu.path).ok_or(ErrorKind::InvalidRequest)?
            }
        }
    };
    if !h2 {
        request_line(&mut vu.wire, method, target);
    }
    let cookies = !vu.jar.is_empty() && {
        vu.cookie.clear();
        url_of(origin, target).is_some_and(|u| vu.jar.header_into(&u, &mut vu.cookie))
    };
    let body = match (&prep.literal_body, &step.body) {
        _ if !keep.body => Bytes::new(),
        (Some(b), _) => b.clone(),
        (None, Some(b)) => {
            vu.out.clear();
            b.template
                .render_into(&mut vu.out, &mut vu.scratch, |e, buf| env.eval(e, buf));
            match step.compress {
                Some(Compression::Gzip) => Bytes::from(gzip(&vu.out)),
                None => Bytes::copy_from_slice(&vu.out),
            }
        }
        (None, None) => Bytes::new(),
    };
    let mut map = HeaderMap::new();
    let mut sink = if h2 {
        HeaderSink::Map(&mut map)
    } else {
        HeaderSink::Wire(&mut vu.wire)
    };
    // HTTP/2 carries the authority in the URI, not a Host header.
    let host = match hop {
        _ if h2 => None,
        Some(h) => Some(&h.host),
        None => Some(&prep.host),
    };
    static_headers(prep, host, keep, &mut sink);
    for (name, t) in prep.dynamic_headers.iter().filter(|(n, _)| keep.header(n)) {
        vu.out.clear();
        t.render_into(&mut vu.out, &mut vu.scratch, |e, b| env.eval(e, b));
        sink.rendered(name, &vu.out)?;
    }
    if let Some((user, password)) = prep.basic_auth.as_ref().filter(|_| keep.credentials) {
        vu.out.clear();
        user.render_into(&mut vu.out, &mut vu.scratch, |e, b| env.eval(e, b));
        vu.out.push(b':');
        password.render_into(&mut vu.out, &mut vu.scratch, |e, b| env.eval(e, b));
        let value = basic_auth(&vu.out);
        sink.rendered(&AUTHORIZATION, value.as_bytes())?;
    }
    if cookies {
        sink.rendered(&COOKIE, &vu.cookie)?;
    }
    if let Some(sign) = step.sign.as_ref().filter(|_| keep.body) {
        sign_request(sign, &body, &mut sink)?;
    }
    let bytes_out = body.len() as u64;
    if h2 {
        let mut req = Request::new(Full::new(body.clone()));
        *req.method_mut() = method.clone();
        if let Some(u) = h2_uri {
            *req.uri_mut() = u;
        }
        *req.headers_mut() = map;
        Ok(Built::H2(Box::new(req), bytes_out, body))
    } else {
        finish_h1(&mut vu.wire, method, &body);
        Ok(Built::H1 { bytes_out })
    }
}

/// `scheme://authority` + an origin-form target, as HTTP/2's URI.
fn absolute(prefix: &[u8], target: &[u8]) -> Result<Uri, ErrorKind> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(target);
    Uri::from_maybe_shared(Bytes::from(v)).map_err(|_| ErrorKind::InvalidRequest)
}

/// `Basic base64(user:password)` (RFC 7617).
pub fn basic_auth(user_password: &[u8]) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(user_password)
    )
}

/// A body compressed for `compress: gzip`.
pub fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 2 + 64), flate2::Compression::fast());
    // Writing to a Vec cannot fail.
    let _ = e.write_all(body);
    e.finish().unwrap_or_default()
}

/// Adds the HMAC-SHA256 signature header (and its timestamp header, when the plan asks).
fn sign_request(sign: &stampede_plan::Sign, body: &[u8], sink: &mut HeaderSink) -> Result<(), ErrorKind> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&sign.secret) else {
        return Ok(());
    };
    if let Some(ts_header) = &sign.timestamp_header {
        let mut ts = Vec::new();
        push_int(&mut ts, unix_now().as_secs() as i64);
        mac.update(&ts);
        mac.update(b".");
        sink.rendered(ts_header, &ts)?;
    }
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut value = sign.prefix.clone();
    match sign.encoding {
        SignEncoding::Hex => {
            for b in digest.iter() {
                value.push_str(&format!("{b:02x}"));
            }
        }
        SignEncoding::Base64 => value.push_str(&base64::engine::general_purpose::STANDARD.encode(digest)),
    }
    sink.rendered(&sign.header, value.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::origin_form;

    #[test]
    fn rendered_targets_must_be_origin_form_visible_ascii() {
        assert_eq!(origin_form(b"/a?b=1#frag"), Some(&b"/a?b=1"[..]));
        assert_eq!(origin_form(b"/a%20b"), Some(&b"/a%20b"[..]));
        for bad in [&b"/a b"[..], b"/a\r\nX: y", b"a", b"", b"/caf\xc3\xa9"] {
            assert_eq!(origin_form(bad), None, "{bad:?}");
        }
    }
}
