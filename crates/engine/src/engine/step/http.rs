//! One HTTP step: build the request from prepared parts, send it on the VU's connection to the
//! step's origin, read the body (bounded), judge status and checks, capture variables.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use http_body_util::BodyExt;
use stampede_plan::HttpStep;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::request::{self, Built};
use super::view::{Headers, View};
use super::{bounded, error_sample, excerpt, micros};
use crate::engine::vu::Vu;
use crate::engine::worker::Worker;
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
}

/// Runs HTTP step `id` (prepared as `prep`) for `vu`.
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
    let mut bytes_out = 0;
    let outcome = bounded(kill, timeout, exchange_or_retry(worker, vu, prep, &mut bytes_out)).await;
    let end = Instant::now();
    let mut sample = Sample {
        step: id,
        latency_us: micros(end.saturating_duration_since(started)),
        service_us: micros(end.saturating_duration_since(send_at)),
        code: 0,
        error: None,
        bytes_in: 0,
        bytes_out,
    };
    let conns = &mut vu.sessions.http;
    match outcome {
        Err(kind) => {
            // The connection's state is unknown after an error: never reuse it; but a request
            // that could not be built never went out, and leaves it as it was.
            let mut malformed = None;
            if !matches!(kind, ErrorKind::InvalidRequest | ErrorKind::InvalidHeader) {
                match &conns[prep.origin] {
                    Some(Connection::H1(c)) => {
                        sample.bytes_in = c.received();
                        malformed = c.malformed();
                    }
                    Some(Connection::H2(c)) => sample.bytes_in = c.received,
                    None => {}
                }
                conns[prep.origin] = None;
            }
            sample.error = Some(kind);
            error_sample(worker, id, kind, || match malformed {
                Some(m) => format!("the response is not valid HTTP: {}", m.describe()),
                None => kind.describe(&program.origins[prep.origin].authority, timeout),
            });
        }
        Ok(resp) => {
            sample.code = resp.status;
            sample.bytes_in = resp.bytes_in;
            if !step.expect_status.iter().any(|r| r.contains(resp.status)) {
                sample.error = Some(ErrorKind::Status(resp.status));
            }
            let headers = match (&resp.h2_headers, &conns[prep.origin]) {
                (Some(map), _) => Headers::H2(map),
                (None, Some(Connection::H1(c))) => Headers::H1(c.headers()),
                (None, _) => Headers::None,
            };
            let mut view = View::new(resp.status, headers, &vu.body);
            if sample.error.is_none() {
                sample.error = view.check(&step.checks);
            }
            view.capture(&step.captures, &mut vu.slots);
            // A response that ends the connection (`Connection: close`): let it go now rather
            // than hold the socket through the think time.
            if let Some(Connection::H1(c)) = &conns[prep.origin] {
                if !c.is_reusable() {
                    conns[prep.origin] = None;
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
    bytes_in: u64,
    /// HTTP/2 headers; an HTTP/1.1 response's stay in its connection's buffer.
    h2_headers: Option<HeaderMap>,
}

/// [`exchange`], sent once more on a new connection when it was lost to a keep-alive race (the
/// server closed the reused connection as the request went out, before answering) and the
/// method is idempotent, so sending it again cannot do anything twice.
async fn exchange_or_retry(
    worker: &Worker,
    vu: &mut Vu,
    prep: &Prepared,
    bytes_out: &mut u64,
) -> Result<Response, ErrorKind> {
    let first = exchange(worker, vu, prep, bytes_out).await;
    let lost = matches!(first, Err(ErrorKind::Reset))
        && idempotent(&prep.step.method)
        && matches!(&vu.sessions.http[prep.origin], Some(Connection::H1(c)) if c.lost_to_idle_close());
    if !lost {
        return first;
    }
    // The failed connection no longer counts as open: `exchange` connects anew.
    exchange(worker, vu, prep, bytes_out).await
}

/// RFC 9110 §9.2.2: methods whose repetition has the effect of one request.
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS | Method::TRACE
    )
}

/// Connects if needed, builds and sends the request, and reads the body into `vu.body` (up to
/// `max_body` bytes kept). `bytes_out` is set once the request is built.
async fn exchange(worker: &Worker, vu: &mut Vu, prep: &Prepared, bytes_out: &mut u64) -> Result<Response, ErrorKind> {
    let program = &worker.program;
    let step = &prep.step;
    let origin = prep.origin;
    if !vu.sessions.http[origin].as_mut().is_some_and(Connection::is_open) {
        // A connect that fails must not leave the closed connection (and its last exchange's
        // byte count) in the slot.
        vu.sessions.http[origin] = None;
        // Boxed: the TLS handshake future is large, and inlining it would make every VU's
        // future (and so every VU) that large for the whole run.
        let connect = Box::pin(worker.connector.connect(&program.origins[origin]));
        vu.sessions.http[origin] = Some(connect.await?);
    }
    let h2 = vu.sessions.http[origin].as_ref().is_some_and(Connection::is_h2);
    let built = request::build(prep, vu, h2)?;
    let max = program.plan.http.max_body;
    let head = step.method == Method::HEAD;
    match (built, vu.sessions.http[origin].as_mut()) {
        (Built::H1 { bytes_out: n }, Some(Connection::H1(conn))) => {
            *bytes_out = n;
            let (status, bytes_in) = conn.exchange(&vu.wire, head, max, &mut vu.body).await?;
            Ok(Response {
                status,
                bytes_in,
                h2_headers: None,
            })
        }
        (Built::Prepared { bytes_out: n }, Some(Connection::H1(conn))) => {
            *bytes_out = n;
            let wire = prep.wire.as_deref().unwrap_or_default();
            let (status, bytes_in) = conn.exchange(wire, head, max, &mut vu.body).await?;
            Ok(Response {
                status,
                bytes_in,
                h2_headers: None,
            })
        }
        (Built::H2(req, n), Some(Connection::H2(conn))) => {
            *bytes_out = n;
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
            Ok(Response {
                status: parts.status.as_u16(),
                bytes_in: conn.received,
                h2_headers: Some(parts.headers),
            })
        }
        // `build` follows the connection's protocol, so the pairs above are the only ones.
        _ => Err(ErrorKind::ConnectError),
    }
}
