//! One HTTP step: build the request from prepared parts, send it on the VU's connection to the
//! step's origin, read the body (bounded), judge status and checks, capture variables.

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;
use stampede_plan::{CookieMode, HttpStep};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::redirect::{is_redirect, next_hop, resolve, Hop};
use super::request::{self, current_target, url_of, Built};
use super::view::{Headers, View};
use super::{bounded, error_sample, excerpt, micros, session_origin};
use crate::engine::vu::Vu;
use crate::engine::worker::Worker;
use crate::http::debug::Exchange;
use crate::http::decode::{decode, Coding};
use crate::http::{classify_hyper, Connection};
use crate::outcome::ErrorKind;
use crate::recorder::Sample;
use stampede_plan::template::Template;

/// An HTTP step prepared for running: its plan step, its origin's number, and the request
/// parts that do not change between requests, built at start-up.
#[derive(Debug)]
pub struct Prepared {
    pub step: HttpStep,
    pub origin: usize,
    /// Origin-form (`/path?q`) and absolute-form URIs when the path is literal.
    pub uri_h1: Option<Uri>,
    pub uri_h2: Option<Uri>,
    /// `scheme://authority`, prefixed to a rendered path for HTTP/2.
    pub absolute_prefix: Bytes,
    /// Literal headers as ready values; templated ones are rendered per request.
    pub static_headers: Vec<(HeaderName, HeaderValue)>,
    pub dynamic_headers: Vec<(HeaderName, Template)>,
    pub host: HeaderValue,
    pub literal_body: Option<Bytes>,
    pub content_type: Option<HeaderValue>,
    /// The step sets its own `Host` header (virtual-host tests): ours is left out.
    pub sets_host: bool,
    /// The whole HTTP/1.1 request, when it is literal: sent as is, nothing built per request.
    pub wire: Option<Bytes>,
    /// Redirects followed: the step's `follow_redirects`, else the plan's.
    pub follow: u32,
    /// `auth: { basic: … }` with a templated user or password, rendered and encoded per
    /// request (a literal one is among the static headers).
    pub basic_auth: Option<(Template, Template)>,
}

/// What a step's chain of requests has done so far. It lives outside the timed future, so a
/// chain that fails, times out or is cancelled part-way still reports what it sent, received
/// and followed.
#[derive(Default)]
struct Progress {
    /// The session of the request in flight (or last sent).
    session: usize,
    /// Redirects followed.
    hops: u16,
    /// A request was sent and its response not read yet: its connection's count of bytes
    /// received is the failed exchange's.
    in_flight: bool,
    /// Body bytes of the responses read, as received and as decoded.
    bytes_in: u64,
    bytes_decoded: u64,
    /// Body bytes of the requests whose responses were read, and of the request in flight.
    bytes_out: u64,
    hop_out: u64,
    /// A body that did not decode as its `Content-Encoding` said.
    undecodable: Option<Coding>,
}

/// Runs HTTP step `id` (prepared as `prep`) for `vu`: its request, and the redirects it leads
/// to, as one sample.
/// The longest `Retry-After` honoured: a VU parked for an hour would end the test for it.
const MAX_RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);

/// A `Retry-After` in seconds (RFC 9110 §10.2.3; an HTTP date, or none, waits 1 s), capped.
fn retry_after(value: Option<&[u8]>) -> std::time::Duration {
    let secs = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(1);
    std::time::Duration::from_secs(secs).min(MAX_RETRY_AFTER)
}

#[cfg(test)]
#[test]
fn retry_after_values() {
    use std::time::Duration;
    assert_eq!(retry_after(Some(b"2")), Duration::from_secs(2));
    assert_eq!(retry_after(Some(b" 0 ")), Duration::ZERO);
    assert_eq!(
        retry_after(Some(b"Wed, 21 Oct 2015 07:28:00 GMT")),
        Duration::from_secs(1)
    );
    assert_eq!(retry_after(None), Duration::from_secs(1));
    assert_eq!(retry_after(Some(b"86400")), MAX_RETRY_AFTER);
}

pub async fn run(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    prep: &Prepared,
    started: Instant,
    kill: &CancellationToken,
) -> Sample {
    let program = &worker.program;
    let step = &prep.step;
    let timeout = step.timeout.unwrap_or(program.plan.http.timeout);
    let send_at = Instant::now();
    let mut p = Progress {
        session: prep.origin,
        ..Progress::default()
    };
    let outcome = bounded(kill, timeout, follow(worker, vu, id, prep, &mut p)).await;
    let end = Instant::now();
    let mut sample = Sample {
        step: id,
        latency_us: micros(end.saturating_duration_since(started)),
        service_us: micros(end.saturating_duration_since(send_at)),
        code: 0,
        error: None,
        bytes_in: p.bytes_in,
        bytes_out: p.bytes_out + p.hop_out,
        bytes_decoded: p.bytes_decoded,
        redirects: p.hops,
    };
    let session = p.session;
    let conns = &mut vu.sessions.http;
    match outcome {
        Err(kind) => {
            // The connection's state is unknown after an error: never reuse it; but a request
            // that could not be built never went out, and leaves it as it was.
            let mut malformed = None;
            if !matches!(kind, ErrorKind::InvalidRequest | ErrorKind::InvalidHeader) {
                match &conns[session] {
                    Some(Connection::H1(c)) => {
                        if p.in_flight {
                            sample.bytes_in += c.received();
                        }
                        malformed = c.malformed();
                    }
                    Some(Connection::H2(c)) if p.in_flight => sample.bytes_in += c.received,
                    _ => {}
                }
                conns[session] = None;
            }
            sample.error = Some(kind);
            error_sample(worker, id, kind, || match (malformed, p.undecodable) {
                (Some(m), _) => format!("the response is not valid HTTP: {}", m.describe()),
                (None, Some(c)) => format!(
                    "the response body is not valid {} data (its Content-Encoding)",
                    c.name()
                ),
                (None, None) => {
                    let origin = session_origin(&program.origins, &vu.sessions.extra, session);
                    kind.describe(&origin.authority, timeout)
                }
            });
        }
        Ok(resp) => {
            sample.code = resp.status;
            if !step.expect_status.iter().any(|r| r.contains(resp.status)) {
                sample.error = Some(ErrorKind::Status(resp.status));
            }
            if resp.status == 429 && program.plan.http.on_429 == stampede_plan::On429::Wait {
                let headers = headers_of(&resp, &conns[session]);
                vu.hold = Some(retry_after(headers.get(&http::header::RETRY_AFTER)));
            }
            let mut view = View::new(resp.status, headers_of(&resp, &conns[session]), &vu.body);
            if sample.error.is_none() {
                sample.error = view.check(&step.checks);
            }
            view.capture(&step.captures, &mut vu.slots);
            // A response that ends the connection (`Connection: close`): let it go now rather
            // than hold the socket through the think time.
            if let Some(Connection::H1(c)) = &conns[session] {
                if !c.is_reusable() {
                    conns[session] = None;
                }
            }
            if let Some(kind) = sample.error {
                error_sample(worker, id, kind, || {
                    let what = match kind {
                        ErrorKind::Check(n) => {
                            format!("check `{}` failed, HTTP {}", program.check_name(id, n), resp.status)
                        }
                        _ => format!("HTTP {}", resp.status),
                    };
                    format!("{what}: {}", excerpt(&vu.body))
                });
            }
        }
    }
    sample
}

struct Response {
    status: u16,
    /// HTTP/2 headers; an HTTP/1.1 response's stay in its connection's buffer.
    /// Boxed: a response is moved through every layer of the chain on every request, and an
    /// HTTP/1.1 one (the common case) should not carry a `HeaderMap`'s room.
    h2_headers: Option<Box<HeaderMap>>,
}

/// The `Content-Encoding` of `resp` (for HTTP/1.1 noted as its head was parsed).
#[inline]
fn content_encoding<'a>(resp: &'a Response, conn: &'a Option<Connection>) -> Option<&'a [u8]> {
    match (&resp.h2_headers, conn) {
        (Some(map), _) => map.get(CONTENT_ENCODING).map(|v| v.as_bytes()),
        (None, Some(Connection::H1(c))) => c.content_encoding(),
        (None, _) => None,
    }
}

/// Whether `resp` has a `Set-Cookie` header (for HTTP/1.1 noted as its head was parsed).
#[inline]
fn sets_cookie(resp: &Response, conn: &Option<Connection>) -> bool {
    match (&resp.h2_headers, conn) {
        (Some(map), _) => map.contains_key(SET_COOKIE),
        (None, Some(Connection::H1(c))) => c.sets_cookie(),
        (None, _) => false,
    }
}

/// The headers of `resp`, wherever they are kept.
fn headers_of<'a>(resp: &'a Response, conn: &'a Option<Connection>) -> Headers<'a> {
    match (&resp.h2_headers, conn) {
        (Some(map), _) => Headers::H2(map),
        (None, Some(Connection::H1(c))) => Headers::H1(c.headers()),
        (None, _) => Headers::None,
    }
}

/// The step's request, then the redirects it leads to (up to `prep.follow`), storing the
/// cookies every response sets. Returns the last response.
async fn follow(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    prep: &Prepared,
    p: &mut Progress,
) -> Result<Response, ErrorKind> {
    let program = &worker.program;
    let cookies = program.plan.http.cookies != CookieMode::Off;
    let call = Call { worker, id, prep };
    // Boxed: a hop is rare, and the future that holds it is moved on every request.
    let mut hop: Option<Box<Hop>> = None;
    loop {
        // Sent once more on a new connection when it was lost to a keep-alive race (the
        // server closed the reused connection as the request went out, before answering) and
        // the method is idempotent, so sending it again cannot do anything twice. (Here rather
        // than in a function of its own: one async layer less on every request.)
        let mut sent = exchange(&call, vu, hop.as_deref(), p).await;
        let method = hop.as_ref().map_or(&prep.step.method, |h| &h.method);
        if matches!(sent, Err(ErrorKind::Reset))
            && idempotent(method)
            && matches!(&vu.sessions.http[p.session], Some(Connection::H1(c)) if c.lost_to_idle_close())
        {
            // The failed connection no longer counts as open: `exchange` connects anew.
            sent = exchange(&call, vu, hop.as_deref(), p).await;
        }
        let resp = sent?;
        let redirect = prep.follow > 0 && is_redirect(resp.status);
        let set_cookie = cookies && sets_cookie(&resp, &vu.sessions.http[p.session]);
        if !redirect && !set_cookie {
            return Ok(resp);
        }
        let headers = headers_of(&resp, &vu.sessions.http[p.session]);
        let location = headers.get(&LOCATION).filter(|_| redirect);
        if !set_cookie && location.is_none() {
            return Ok(resp);
        }
        let origin = hop.as_ref().map_or(&prep.step.origin, |h| &h.origin);
        let Some(base) = url_of(origin, current_target(prep, vu, hop.as_deref())) else {
            return Ok(resp);
        };
        if set_cookie {
            vu.jar.store(headers.all(&SET_COOKIE), &base);
        }
        let Some(next) = location.and_then(|l| resolve(&base, l)) else {
            return Ok(resp);
        };
        let method = method.clone();
        let cross_origin = hop.as_ref().is_some_and(|h| h.cross_origin) || next.0 != prep.step.origin;
        if let Some(Connection::H1(c)) = &vu.sessions.http[p.session] {
            if !c.is_reusable() {
                vu.sessions.http[p.session] = None;
            }
        }
        let session = vu.sessions.index_of(&program.origins, &next.0);
        hop = Some(Box::new(next_hop(
            p.hops,
            prep.follow,
            resp.status,
            &method,
            next,
            session,
            cross_origin,
        )?));
        p.hops += 1;
    }
}

/// The step a chain's requests belong to.
struct Call<'a> {
    worker: &'a Worker,
    /// The step's id (for its name in `--http-debug`).
    id: usize,
    prep: &'a Prepared,
}

/// RFC 9110 §9.2.2: methods whose repetition has the effect of one request.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Connects if needed, builds and sends one request of the step (its own, or redirect `hop`),
/// and reads the body into `vu.body` (up to `max_body` bytes kept), decoded when it came
/// compressed. With `--http-debug`, prints the exchange while the first ones are printed.
async fn exchange(call: &Call<'_>, vu: &mut Vu, hop: Option<&Hop>, p: &mut Progress) -> Result<Response, ErrorKind> {
    let Call { worker, id, prep } = *call;
    let program = &worker.program;
    let session = hop.map_or(prep.origin, |h| h.session);
    p.session = session;
    p.in_flight = true;
    if !vu.sessions.http[session].as_mut().is_some_and(Connection::is_open) {
        // A connect that fails must not leave the closed connection (and its last exchange's
        // byte count) in the slot.
        vu.sessions.http[session] = None;
        let origin = session_origin(&program.origins, &vu.sessions.extra, session);
        // Boxed: the TLS handshake future is large, and inlining it would make every VU's
        // future (and so every VU) that large for the whole run.
        let connect = Box::pin(worker.connector.connect(origin));
        let (conn, resumed, lookup) = connect.await?;
        if let Some(l) = lookup {
            // Only for names: a connection to an IP literal resolves nothing.
            let mut shard = worker.shard.borrow_mut();
            shard.count(id, crate::recorder::Count::DnsResolves, 1);
            shard.count(id, crate::recorder::Count::DnsUs, l.waited.as_micros() as u64);
            if l.asked_resolver {
                shard.count(id, crate::recorder::Count::DnsLookups, 1);
            }
        }
        if let Some(resumed) = resumed {
            let c = if resumed {
                crate::recorder::Count::TlsResumed
            } else {
                crate::recorder::Count::TlsFull
            };
            worker.shard.borrow_mut().count(id, c, 1);
        }
        vu.sessions.http[session] = Some(conn);
    }
    let h2 = vu.sessions.http[session].as_ref().is_some_and(Connection::is_h2);
    let built = request::build(prep, vu, h2, hop)?;
    let max = program.plan.http.max_body;
    let head = *hop.map_or(&prep.step.method, |h| &h.method) == Method::HEAD;
    let debug = worker.shared.http_debug.as_deref().filter(|d| d.take());
    let mut shown: Vec<u8> = Vec::new();
    let (status, bytes_in, h2_headers) = match (built, vu.sessions.http[session].as_mut()) {
        (Built::H1 { bytes_out }, Some(Connection::H1(conn))) => {
            p.hop_out = bytes_out;
            if debug.is_some() {
                shown.extend_from_slice(&vu.wire);
            }
            let (status, bytes_in) = conn.exchange(&vu.wire, head, max, &mut vu.body).await?;
            (status, bytes_in, None)
        }
        (Built::Prepared { bytes_out }, Some(Connection::H1(conn))) => {
            p.hop_out = bytes_out;
            let wire = prep.wire.as_deref().unwrap_or_default();
            if debug.is_some() {
                shown.extend_from_slice(wire);
            }
            let (status, bytes_in) = conn.exchange(wire, head, max, &mut vu.body).await?;
            (status, bytes_in, None)
        }
        (Built::H2(req, bytes_out, body), Some(Connection::H2(conn))) => {
            p.hop_out = bytes_out;
            if debug.is_some() {
                h2_request_text(&req, &body, &mut shown);
            }
            conn.received = 0;
            // An h2c connection the server answered in HTTP/1.1 fails its first request:
            // that is `h2c: true` against a server without h2c, not a reset.
            let h2_error = |conn: &crate::http::H2Conn, e: hyper::Error| {
                if conn.answered_http1() {
                    ErrorKind::H2cUnsupported
                } else {
                    classify_hyper(&e)
                }
            };
            if let Err(e) = conn.sender.ready().await {
                return Err(h2_error(conn, e));
            }
            let resp = match conn.sender.send_request(*req).await {
                Ok(r) => r,
                Err(e) => return Err(h2_error(conn, e)),
            };
            let (parts, mut body) = resp.into_parts();
            vu.body.clear();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| classify_hyper(&e))?;
                if let Ok(data) = frame.into_data() {
                    conn.received += data.len() as u64;
                    let room = max.saturating_sub(vu.body.len());
                    vu.body.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            (parts.status.as_u16(), conn.received, Some(Box::new(parts.headers)))
        }
        // `build` follows the connection's protocol, so the pairs above are the only ones.
        _ => return Err(ErrorKind::ConnectError),
    };
    p.in_flight = false;
    p.bytes_in += bytes_in;
    p.bytes_out += std::mem::take(&mut p.hop_out);
    let resp = Response { status, h2_headers };
    let mut decoded = bytes_in;
    if !vu.body.is_empty() {
        let coding = content_encoding(&resp, &vu.sessions.http[session]).and_then(Coding::from_header);
        if let Some(coding) = coding {
            // Only the first `max_body` bytes were kept: their decoded start is what checks see.
            let complete = bytes_in <= vu.body.len() as u64;
            match decode(coding, &vu.body, complete, max, &mut vu.decoded) {
                Ok(n) => {
                    std::mem::swap(&mut vu.body, &mut vu.decoded);
                    decoded = n;
                }
                Err(_) => {
                    p.undecodable = Some(coding);
                    return Err(ErrorKind::Protocol);
                }
            }
        }
    }
    p.bytes_decoded += decoded;
    if let Some(d) = debug {
        let mut response_head = Vec::new();
        match (&resp.h2_headers, &vu.sessions.http[session]) {
            (Some(map), _) => h2_head_text(&format!("HTTP/2 {status}"), map, &mut response_head),
            (None, Some(Connection::H1(c))) => response_head.extend_from_slice(c.head()),
            (None, _) => {}
        }
        let split = shown
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(shown.len(), |i| i + 4);
        d.print(&Exchange {
            step: &program.steps[id].name,
            vu: vu.id,
            hop: p.hops,
            request_head: &shown[..split],
            request_body: &shown[split..],
            response_head: &response_head,
            response_body: &vu.body,
            bytes_in,
        });
    }
    Ok(resp)
}

/// An HTTP/2 request as HTTP/1.1-style text (request line, headers, blank line, body), for
/// `--http-debug`.
fn h2_request_text(req: &http::Request<crate::http::ReqBody>, body: &[u8], out: &mut Vec<u8>) {
    h2_head_text(&format!("{} {} HTTP/2", req.method(), req.uri()), req.headers(), out);
    out.extend_from_slice(body);
}

fn h2_head_text(first: &str, headers: &HeaderMap, out: &mut Vec<u8>) {
    out.extend_from_slice(first.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}
