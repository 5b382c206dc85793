//! Running one HTTP step: build the request from prepared parts, send it on the VU's connection,
//! read the body (bounded), judge status and checks, capture variables, and return one sample.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, Method};
use http_body_util::BodyExt;
use stampede_plan::{CaptureSource, CheckKind, HttpStep, JsonPath, JsonSeg};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::request::{self, Built};
use super::vu::Vu;
use super::worker::Worker;
use crate::http::{classify_hyper, Connection, RawHeaders};
use crate::outcome::ErrorKind;
use crate::recorder::Sample;

/// Runs step `id` for `vu`. `started` is when the step is deemed to start: the arrival's
/// intended time for the first step of an open-model iteration, otherwise now.
pub async fn run_http(worker: &Worker, vu: &mut Vu, id: usize, started: Instant, hard: &CancellationToken) -> Sample {
    let program = &worker.program;
    let step = program.http_step(id);
    let prep = &program.prepared[id];
    let timeout = step.timeout.unwrap_or(program.plan.http.timeout);
    let send_at = Instant::now();
    let mut bytes_out = 0;
    let outcome = tokio::select! {
        biased;
        _ = hard.cancelled() => Err(ErrorKind::Interrupted),
        r = tokio::time::timeout(timeout, exchange(worker, vu, id, &mut bytes_out)) => match r {
            Ok(r) => r,
            Err(_) => Err(ErrorKind::Timeout),
        },
    };
    let end = Instant::now();
    let mut sample = Sample {
        step: id,
        latency_us: micros(end.saturating_duration_since(started)),
        service_us: micros(end.saturating_duration_since(send_at)),
        status: 0,
        error: None,
        bytes_in: 0,
        bytes_out,
    };
    match outcome {
        Err(kind) => {
            // The connection's state is unknown after an error (except a request that could
            // not be built, which never went out): never reuse it.
            if kind != ErrorKind::InvalidRequest {
                vu.conns[prep.origin] = None;
            }
            sample.error = Some(kind);
            if worker.shard.borrow().wants_sample(id) {
                let origin = &program.origins[prep.origin];
                let msg = transport_message(kind, &origin.authority, timeout);
                worker.shard.borrow_mut().add_sample(id, msg);
            }
        }
        Ok(resp) => {
            sample.status = resp.status;
            sample.bytes_in = resp.bytes_in;
            if !step.expect_status.iter().any(|r| r.contains(resp.status)) {
                sample.error = Some(ErrorKind::Status(resp.status));
            }
            let mut json: Option<Option<serde_json::Value>> = None;
            let headers = match (&resp.h2_headers, &vu.conns[prep.origin]) {
                (Some(map), _) => Headers::H2(map),
                (None, Some(Connection::H1(c))) => Headers::H1(c.headers()),
                (None, _) => Headers::None,
            };
            if sample.error.is_none() {
                sample.error = run_checks(step, &headers, &vu.body, resp.status, &mut json);
            }
            capture(step, &headers, &vu.body, &mut json, &mut vu.slots);
            // A response that ends the connection (`Connection: close`): let it go now rather
            // than hold the socket through the think time.
            if let Some(Connection::H1(c)) = &vu.conns[prep.origin] {
                if !c.is_reusable() {
                    vu.conns[prep.origin] = None;
                }
            }
            if let Some(kind) = sample.error {
                if worker.shard.borrow().wants_sample(id) {
                    let what = match kind {
                        ErrorKind::Check(n) => {
                            format!("check `{}` failed, HTTP {}", program.check_name(id, n), resp.status)
                        }
                        _ => format!("HTTP {}", resp.status),
                    };
                    let msg = format!("{what}: {}", excerpt(&vu.body));
                    worker.shard.borrow_mut().add_sample(id, msg);
                }
            }
        }
    }
    sample
}

/// The start of a response body, on one line, for an error sample (raw: reports escape it).
fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > MAX {
        one_line.push('…');
    }
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

/// What a transport error means, for an error sample.
fn transport_message(kind: ErrorKind, authority: &str, timeout: Duration) -> String {
    match kind {
        ErrorKind::ConnectRefused => format!("connection refused by {authority}"),
        ErrorKind::ConnectTimeout => format!("no connection to {authority} within the connect timeout"),
        ErrorKind::ConnectError => format!("cannot connect to {authority} (name or network)"),
        ErrorKind::Tls => format!("TLS handshake with {authority} failed (certificate not trusted, or no TLS)"),
        ErrorKind::Timeout => format!("no complete response within {} ms", timeout.as_millis()),
        ErrorKind::Reset => "connection closed before the response was complete".into(),
        ErrorKind::Protocol => "the response is not valid HTTP".into(),
        ErrorKind::Interrupted => "cancelled in flight when the phase's grace period ran out".into(),
        ErrorKind::InvalidRequest => "the rendered request is not valid HTTP (e.g. a space in the path)".into(),
        ErrorKind::Status(s) => format!("HTTP {s}"),
        ErrorKind::Check(n) => format!("check #{n} failed"),
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

struct Response {
    status: u16,
    bytes_in: u64,
    /// HTTP/2 headers; an HTTP/1.1 response's stay in its connection's buffer.
    h2_headers: Option<HeaderMap>,
}

/// A response's headers, wherever they are.
enum Headers<'a> {
    H1(RawHeaders<'a>),
    H2(&'a HeaderMap),
    None,
}

impl Headers<'_> {
    fn get(&self, name: &HeaderName) -> Option<&[u8]> {
        match self {
            Headers::H1(h) => h.get(name.as_str()),
            Headers::H2(m) => m.get(name).map(|v| v.as_bytes()),
            Headers::None => None,
        }
    }
}

/// Connects if needed, builds and sends the request, and reads the body into `vu.body` (up to
/// `max_body` bytes kept). `bytes_out` is set once the request is built.
async fn exchange(worker: &Worker, vu: &mut Vu, id: usize, bytes_out: &mut u64) -> Result<Response, ErrorKind> {
    let program = &worker.program;
    let prep = &program.prepared[id];
    let step = program.http_step(id);
    let origin = prep.origin;
    if !vu.conns[origin].as_mut().is_some_and(Connection::is_open) {
        // Boxed: the TLS handshake future is large, and inlining it would make every VU's
        // future (and so every VU) that large for the whole run.
        let connect = Box::pin(worker.connector.connect(&program.origins[origin]));
        vu.conns[origin] = Some(connect.await?);
    }
    let h2 = vu.conns[origin].as_ref().is_some_and(Connection::is_h2);
    let built = request::build(prep, step, vu, h2)?;
    let max = program.plan.http.max_body;
    let head = step.method == Method::HEAD;
    match (built, vu.conns[origin].as_mut()) {
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
        (Built::H2(req, n), Some(Connection::H2(sender))) => {
            *bytes_out = n;
            sender.ready().await.map_err(|e| classify_hyper(&e))?;
            let resp = sender.send_request(*req).await.map_err(|e| classify_hyper(&e))?;
            let (parts, mut body) = resp.into_parts();
            vu.body.clear();
            let mut bytes_in: u64 = 0;
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| classify_hyper(&e))?;
                if let Ok(data) = frame.into_data() {
                    bytes_in += data.len() as u64;
                    let room = max.saturating_sub(vu.body.len());
                    vu.body.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Ok(Response {
                status: parts.status.as_u16(),
                bytes_in,
                h2_headers: Some(parts.headers),
            })
        }
        // `build` follows the connection's protocol, so the pairs above are the only ones.
        _ => Err(ErrorKind::ConnectError),
    }
}

fn parsed<'a>(body: &[u8], json: &'a mut Option<Option<serde_json::Value>>) -> Option<&'a serde_json::Value> {
    json.get_or_insert_with(|| serde_json::from_slice(body).ok()).as_ref()
}

fn select<'a>(
    path: &JsonPath,
    body: &[u8],
    json: &'a mut Option<Option<serde_json::Value>>,
) -> Option<&'a serde_json::Value> {
    parsed(body, json).and_then(|v| {
        path.segments.iter().try_fold(v, |v, seg| match seg {
            JsonSeg::Key(k) => v.get(k.as_str()),
            JsonSeg::Index(i) => v.get(*i),
        })
    })
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// The first failing check, as an error kind.
fn run_checks(
    step: &HttpStep,
    headers: &Headers,
    body: &[u8],
    status: u16,
    json: &mut Option<Option<serde_json::Value>>,
) -> Option<ErrorKind> {
    for (n, check) in step.checks.iter().enumerate() {
        let ok = match &check.kind {
            CheckKind::Status(ranges) => ranges.iter().any(|r| r.contains(status)),
            CheckKind::HeaderExists(name) => headers.get(name).is_some(),
            CheckKind::HeaderEquals(name, v) => headers.get(name).is_some_and(|h| h == v.as_bytes()),
            CheckKind::HeaderContains(name, v) => headers.get(name).is_some_and(|h| contains(h, v.as_bytes())),
            CheckKind::BodyContains(needle) => contains(body, needle),
            CheckKind::BodyNotContains(needle) => !contains(body, needle),
            CheckKind::JsonEquals(path, want) => select(path, body, json).is_some_and(|v| json_eq(v, want)),
            CheckKind::JsonExists(path) => select(path, body, json).is_some_and(|v| !v.is_null()),
        };
        if !ok {
            return Some(ErrorKind::Check(n.min(u16::MAX as usize) as u16));
        }
    }
    None
}

/// JSON equality where numbers compare by value (`42` equals `42.0`).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    match (a, b) {
        (serde_json::Value::Number(x), serde_json::Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn capture(
    step: &HttpStep,
    headers: &Headers,
    body: &[u8],
    json: &mut Option<Option<serde_json::Value>>,
    slots: &mut [Bytes],
) {
    for c in &step.captures {
        let value = match &c.source {
            CaptureSource::Header(name) => headers.get(name).map(Bytes::copy_from_slice),
            CaptureSource::Json(path) => select(path, body, json).map(|v| match v {
                serde_json::Value::String(s) => Bytes::copy_from_slice(s.as_bytes()),
                other => Bytes::from(other.to_string()),
            }),
        };
        if let (Some(v), Some(slot)) = (value, slots.get_mut(c.slot)) {
            *slot = v;
        }
    }
}
