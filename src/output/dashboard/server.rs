//! The dashboard's HTTP server (hyper, HTTP/1.1), a task on the runner's runtime, never on the
//! load threads: `/` the page, `/events` the event stream, nothing else. The page is
//! self-contained (inline CSS and script, no CDN) under a strict Content-Security-Policy that
//! allows only those two inline blocks, by hash, and `connect-src 'self'`. On a loopback
//! address only loopback `Host` names are answered, so a web page elsewhere cannot read the
//! stream through a rebound DNS name.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use sha2::Digest as _;
use tokio::sync::mpsc;

use super::hub::Hub;

const TEMPLATE: &str = include_str!("page.html");
const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// A comment on an idle stream this often, so a browser that went away is noticed (the write
/// fails) and its slot freed, also while lingering with nothing new to send.
const KEEPALIVE: Duration = Duration::from_secs(15);

/// The page and its policy, built once.
pub struct Page {
    html: Bytes,
    csp: String,
}

fn sha256_b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()))
}

impl Page {
    pub fn new() -> Page {
        let html = TEMPLATE
            .replacen("{{style}}", STYLE, 1)
            .replacen("{{script}}", SCRIPT, 1);
        let csp = format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            sha256_b64(SCRIPT),
            sha256_b64(STYLE)
        );
        Page {
            html: Bytes::from(html),
            csp,
        }
    }
}

impl Default for Page {
    fn default() -> Page {
        Page::new()
    }
}

/// Serves until the task is dropped (with the runtime) or aborted.
pub async fn serve(listener: tokio::net::TcpListener, hub: Arc<Hub>) {
    let page = Arc::new(Page::new());
    let local = listener.local_addr().ok();
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            // Out of file descriptors and the like: wait, then accept again.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (hub, page) = (hub.clone(), page.clone());
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                let resp = route(&req, &hub, &page, local);
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                .await;
        });
    }
}

fn route(req: &Request<Incoming>, hub: &Hub, page: &Page, local: Option<SocketAddr>) -> Response<DashBody> {
    if !host_allowed(req, local) {
        return plain(
            StatusCode::MISDIRECTED_REQUEST,
            "this dashboard answers its loopback address only\n",
        );
    }
    if req.method() != hyper::Method::GET && req.method() != hyper::Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
    }
    match req.uri().path() {
        "/" => Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .header("content-security-policy", &page.csp)
            .header("cache-control", "no-store")
            .header("x-content-type-options", "nosniff")
            .header("referrer-policy", "no-referrer")
            .body(DashBody::Full(Some(page.html.clone())))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "")),
        "/events" => {
            let last = req
                .headers()
                .get("last-event-id")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            match hub.subscribe(last) {
                None => plain(StatusCode::SERVICE_UNAVAILABLE, "too many dashboard clients\n"),
                Some(sub) => {
                    let mut replay = sub.replay;
                    // Sent first, so the headers and something readable leave at once.
                    replay.push_front(Bytes::from_static(b"retry: 2000\n\n"));
                    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
                    keepalive.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    Response::builder()
                        .header("content-type", "text/event-stream")
                        .header("cache-control", "no-store")
                        .header("x-content-type-options", "nosniff")
                        .header("x-accel-buffering", "no")
                        .body(DashBody::Sse(SseBody {
                            replay,
                            rx: sub.rx,
                            keepalive,
                        }))
                        .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, ""))
                }
            }
        }
        // Browsers ask for it; an empty answer keeps a 404 out of the page's console.
        "/favicon.ico" => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(DashBody::Full(None))
            .unwrap_or_else(|_| plain(StatusCode::INTERNAL_SERVER_ERROR, "")),
        _ => plain(StatusCode::NOT_FOUND, "not found: the dashboard is / and /events\n"),
    }
}

/// On a loopback address, only loopback names in `Host` (DNS rebinding); elsewhere any.
fn host_allowed(req: &Request<Incoming>, local: Option<SocketAddr>) -> bool {
    if !local.is_some_and(|a| a.ip().is_loopback()) {
        return true;
    }
    let Some(host) = req.headers().get("host").and_then(|h| h.to_str().ok()) else {
        return true;
    };
    let name = match host.rsplit_once(':') {
        Some((n, port)) if port.chars().all(|c| c.is_ascii_digit()) => n,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn plain(status: StatusCode, text: &'static str) -> Response<DashBody> {
    let mut r = Response::new(DashBody::Full(Some(Bytes::from_static(text.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// A response body: a whole one, or the event stream.
pub enum DashBody {
    Full(Option<Bytes>),
    Sse(SseBody),
}

/// The replay, then what the hub queues, with a keep-alive comment when idle; ends when the
/// hub closes (or drops) the queue.
pub struct SseBody {
    replay: VecDeque<Bytes>,
    rx: Option<mpsc::Receiver<Bytes>>,
    keepalive: tokio::time::Interval,
}

impl Body for DashBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            DashBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            DashBody::Sse(s) => {
                if let Some(b) = s.replay.pop_front() {
                    return Poll::Ready(Some(Ok(Frame::data(b))));
                }
                let Some(rx) = s.rx.as_mut() else {
                    return Poll::Ready(None);
                };
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(b)) => return Poll::Ready(Some(Ok(Frame::data(b)))),
                    Poll::Ready(None) => return Poll::Ready(None),
                    Poll::Pending => {}
                }
                match s.keepalive.poll_tick(cx) {
                    Poll::Ready(_) => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b": keepalive\n\n"))))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, DashBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            DashBody::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            DashBody::Full(None) => SizeHint::with_exact(0),
            DashBody::Sse(_) => SizeHint::default(),
        }
    }
}
