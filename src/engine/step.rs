//! Running one HTTP step: build the request from prepared parts, send it on the VU's connection,
//! read the body (bounded), judge status and checks, capture variables, and return one sample.

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use sha2::Sha256;
use stampede_plan::{CaptureSource, CheckKind, HttpStep, JsonPath, JsonSeg, SignEncoding};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::render::{push_int, unix_now, Env};
use super::vu::Vu;
use super::worker::Worker;
use crate::http::{classify_hyper, Sender};
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
    let (req, bytes_out) = match build_request(worker, vu, id, step) {
        Some(r) => r,
        None => {
            return Sample {
                step: id,
                latency_us: micros(send_at.saturating_duration_since(started)),
                service_us: 0,
                status: 0,
                error: Some(ErrorKind::InvalidRequest),
                bytes_in: 0,
                bytes_out: 0,
            }
        }
    };

    let outcome = tokio::select! {
        biased;
        _ = hard.cancelled() => Err(ErrorKind::Interrupted),
        r = tokio::time::timeout(timeout, exchange(worker, vu, id, req)) => match r {
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
            // The connection's state is unknown after an error: never reuse it.
            vu.conns[prep.origin] = None;
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
            if sample.error.is_none() {
                sample.error = run_checks(step, &resp.headers, &vu.body, resp.status, &mut json);
            }
            capture(step, &resp.headers, &vu.body, &mut json, &mut vu.slots);
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
    headers: http::HeaderMap,
    bytes_in: u64,
}

/// Connects if needed, sends, and reads the body into `vu.body` (up to `max_body` bytes kept).
async fn exchange(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    mut req: Request<Full<Bytes>>,
) -> Result<Response, ErrorKind> {
    let prep = &worker.program.prepared[id];
    let origin = prep.origin;
    if !vu.conns[origin].as_ref().is_some_and(Sender::is_open) {
        // Boxed: the TLS handshake future is large, and inlining it would make every VU's
        // future (and so every VU) that large for the whole run.
        let connect = Box::pin(worker.connector.connect(&worker.program.origins[origin]));
        vu.conns[origin] = Some(connect.await?);
    }
    let Some(sender) = vu.conns[origin].as_mut() else {
        return Err(ErrorKind::ConnectError);
    };
    if sender.is_h2() {
        req.headers_mut().remove(HOST);
        if let Some(u) = &prep.uri_h2 {
            *req.uri_mut() = u.clone();
        } else {
            let mut v = prep.absolute_prefix.to_vec();
            v.extend_from_slice(req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/").as_bytes());
            *req.uri_mut() = Uri::from_maybe_shared(Bytes::from(v)).map_err(|_| ErrorKind::Protocol)?;
        }
    }
    let resp = sender.send(req).await.map_err(|e| classify_hyper(&e))?;
    let (parts, mut body) = resp.into_parts();
    let max = worker.program.plan.http.max_body;
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
        headers: parts.headers,
        bytes_in,
    })
}

/// The request, or `None` when the rendered path is not a valid URI.
fn build_request(worker: &Worker, vu: &mut Vu, id: usize, step: &HttpStep) -> Option<(Request<Full<Bytes>>, u64)> {
    let prep = &worker.program.prepared[id];
    let mut env = Env {
        slots: &vu.slots,
        rng: &mut vu.rng,
        vu: vu.id,
        iteration: vu.iteration,
    };
    let uri = match &prep.uri_h1 {
        Some(u) => u.clone(),
        None => {
            vu.out.clear();
            step.path_and_query
                .render_into(&mut vu.out, &mut vu.scratch, |e, b| env.eval(e, b));
            Uri::from_maybe_shared(Bytes::copy_from_slice(&vu.out)).ok()?
        }
    };
    let body = match (&prep.literal_body, &step.body) {
        (Some(b), _) => b.clone(),
        (None, Some(b)) => {
            vu.out.clear();
            b.template
                .render_into(&mut vu.out, &mut vu.scratch, |e, buf| env.eval(e, buf));
            Bytes::copy_from_slice(&vu.out)
        }
        (None, None) => Bytes::new(),
    };
    let bytes_out = body.len() as u64;
    let mut req = Request::new(Full::new(body.clone()));
    *req.method_mut() = step.method.clone();
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.insert(HOST, prep.host.clone());
    if let Some(ct) = &prep.content_type {
        headers.insert(CONTENT_TYPE, ct.clone());
    }
    for (name, value) in &prep.static_headers {
        headers.insert(name.clone(), value.clone());
    }
    for (name, t) in &prep.dynamic_headers {
        vu.out.clear();
        t.render_into(&mut vu.out, &mut vu.scratch, |e, b| env.eval(e, b));
        if let Ok(v) = HeaderValue::from_bytes(&vu.out) {
            headers.insert(name.clone(), v);
        }
    }
    if let Some(sign) = &step.sign {
        let mut mac = match Hmac::<Sha256>::new_from_slice(&sign.secret) {
            Ok(m) => m,
            Err(_) => return Some((req, bytes_out)),
        };
        if let Some(ts_header) = &sign.timestamp_header {
            let mut ts = Vec::new();
            push_int(&mut ts, unix_now().as_secs() as i64);
            mac.update(&ts);
            mac.update(b".");
            if let Ok(v) = HeaderValue::from_bytes(&ts) {
                headers.insert(ts_header.clone(), v);
            }
        }
        mac.update(&body);
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
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(sign.header.clone(), v);
        }
    }
    Some((req, bytes_out))
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
    headers: &http::HeaderMap,
    body: &[u8],
    status: u16,
    json: &mut Option<Option<serde_json::Value>>,
) -> Option<ErrorKind> {
    for (n, check) in step.checks.iter().enumerate() {
        let ok = match &check.kind {
            CheckKind::Status(ranges) => ranges.iter().any(|r| r.contains(status)),
            CheckKind::HeaderExists(name) => headers.contains_key(name),
            CheckKind::HeaderEquals(name, v) => headers.get(name).is_some_and(|h| h.as_bytes() == v.as_bytes()),
            CheckKind::HeaderContains(name, v) => {
                headers.get(name).is_some_and(|h| contains(h.as_bytes(), v.as_bytes()))
            }
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
    headers: &http::HeaderMap,
    body: &[u8],
    json: &mut Option<Option<serde_json::Value>>,
    slots: &mut [Bytes],
) {
    for c in &step.captures {
        let value = match &c.source {
            CaptureSource::Header(name) => headers.get(name).map(|v| Bytes::copy_from_slice(v.as_bytes())),
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
