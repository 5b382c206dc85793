//! The HTTP server: accept loop, routing, and the per-request pipeline.
//!
//! One pipeline for every endpoint, in the order a real stack applies it:
//! route → read body → verify webhook signature (401) → cache (hit: fast, no worker) →
//! get a worker (503 queue full / 504 queue timeout) → service time (sleep + CPU) →
//! injected error (load-dependent) → "not configured" answer → configured response.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use crate::cache::{self, CacheSwitch};
use crate::config::{Config, EndpointConfig, EndpointKind, Segment};
use crate::metrics::{self, EndpointCounters, Stats};
use crate::pool::{burn_cpu, Pool, Rejection};
use crate::webhook;
use crate::ws::{self, WsCounters};

/// Largest request body read; bigger ones are answered 413.
const MAX_BODY: usize = 1 << 20;
/// Cap for `bytes_from_path` bodies.
const MAX_BYTES: usize = 16 << 20;
/// Cap for `delay_query` delays.
const MAX_DELAY_MS: u64 = 60_000;
/// How long shutdown waits for in-flight requests before dropping connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

type Body = Full<Bytes>;

/// State shared by every connection.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub pools: Vec<Pool>,
    /// One per endpoint, same order as `config.endpoints`.
    pub counters: Vec<EndpointCounters>,
    pub unmatched: EndpointCounters,
    in_flight: AtomicUsize,
    cache: CacheSwitch,
    /// One seeded generator: draws are a few nanoseconds, so a short lock is cheaper than
    /// per-connection state, and a `seed:` makes a single-client run reproducible.
    rng: Mutex<SmallRng>,
    pub ws: Arc<WsCounters>,
    /// Flipped to `true` on shutdown so upgraded WebSocket connections (which hyper no longer
    /// tracks) close too.
    shutdown: watch::Sender<bool>,
}

impl Shared {
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
    pub fn cache_enabled(&self) -> bool {
        self.cache.enabled()
    }
    fn with_rng<T>(&self, f: impl FnOnce(&mut SmallRng) -> T) -> T {
        let mut g = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut g)
    }
}

/// Counts a request as in flight until dropped (also when the client disconnects mid-request).
struct InFlight<'a>(&'a AtomicUsize);

impl<'a> InFlight<'a> {
    fn enter(c: &'a AtomicUsize) -> (Self, usize) {
        let now = c.fetch_add(1, Ordering::Relaxed) + 1;
        (InFlight(c), now)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A running target. Dropping it stops the accept loop too; [`Server::shutdown`] also waits.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// The bound address (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Ground truth: what the server answered, per endpoint and status.
    pub fn stats(&self) -> Stats {
        metrics::stats(&self.shared)
    }

    /// Switches the cache on or off (same as `POST /_admin/cache?enabled=`).
    pub fn set_cache_enabled(&self, enabled: bool) {
        self.shared.cache.set(enabled);
    }

    /// Stops accepting, lets in-flight requests finish (up to 2 s), then closes everything.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Binds `addr` (port 0 picks a free port), spawns the accept loop on the current tokio runtime
/// and returns at once.
pub async fn start(config: Config, addr: SocketAddr) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let rng = match config.seed {
        Some(s) => SmallRng::seed_from_u64(s),
        None => SmallRng::from_os_rng(),
    };
    let shared = Arc::new(Shared {
        pools: config.services.iter().cloned().map(Pool::new).collect(),
        counters: config.endpoints.iter().map(|_| EndpointCounters::new()).collect(),
        unmatched: EndpointCounters::new(),
        in_flight: AtomicUsize::new(0),
        cache: CacheSwitch::new(config.cache_enabled),
        rng: Mutex::new(rng),
        ws: Arc::new(WsCounters::default()),
        shutdown: watch::channel(false).0,
        config,
    });
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
    Ok(Server {
        addr,
        shared,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stop => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let svc = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req).await) }
                });
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                    .into_owned();
                let conn = graceful.watch(conn);
                conns.spawn(async move {
                    let _ = conn.await;
                });
            }
        }
    }
    drop(listener);
    let _ = shared.shutdown.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    conns.shutdown().await;
}

/// Answers one request. Never fails: every problem is an HTTP status.
async fn handle(s: &Arc<Shared>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/metrics" {
        return text(StatusCode::OK, metrics::render(s));
    }
    if path == "/_admin" || path.starts_with("/_admin/") {
        return admin(s, &req, &path);
    }
    let Some((idx, params)) = route(&s.config.endpoints, req.method(), &path) else {
        let (status, msg) = if s
            .config
            .endpoints
            .iter()
            .any(|e| match_path(&e.segments, &path).is_some())
        {
            (StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        } else {
            (StatusCode::NOT_FOUND, "no such endpoint")
        };
        s.unmatched.record(status.as_u16());
        return json(status, serde_json::json!({ "error": msg, "path": path }));
    };
    let ep = &s.config.endpoints[idx];
    if matches!(ep.kind, EndpointKind::WsEcho | EndpointKind::WsPush) {
        let resp = ws_upgrade(s, ep, req);
        s.counters[idx].record(resp.status().as_u16());
        return resp;
    }
    let (_guard, in_flight) = InFlight::enter(&s.in_flight);
    let resp = endpoint(s, idx, ep, params, req, in_flight).await;
    s.counters[idx].record(resp.status().as_u16());
    resp
}

/// Whether a request fits in the endpoint's rate limit: at most `per_second` per 1 s window
/// (counted from the endpoint's first request).
fn admit(r: &crate::config::RateLimit, c: &crate::metrics::EndpointCounters) -> bool {
    let window = c.first.get_or_init(std::time::Instant::now).elapsed().as_secs() & 0xffff_ffff;
    let mut cur = c.window.load(Ordering::Relaxed);
    loop {
        let (w, n) = (cur >> 32, cur & 0xffff_ffff);
        let next = if w == window { n + 1 } else { 1 };
        if w == window && n >= r.per_second {
            return false;
        }
        match c
            .window
            .compare_exchange_weak(cur, window << 32 | next, Ordering::Relaxed, Ordering::Relaxed)
        {
            Ok(_) => return true,
            Err(now) => cur = now,
        }
    }
}

/// The service time `slowdown` adds by now: its rate times the seconds since the endpoint's
/// first request (so a test's latency starts from the configured service time however long the
/// target waited for it), capped with the longest delay a query may ask for.
fn slowdown(ep: &EndpointConfig, c: &crate::metrics::EndpointCounters) -> Duration {
    if ep.slowdown.is_zero() {
        return Duration::ZERO;
    }
    let since = c.first.get_or_init(std::time::Instant::now).elapsed();
    ep.slowdown
        .mul_f64(since.as_secs_f64())
        .min(Duration::from_millis(MAX_DELAY_MS))
}

async fn endpoint(
    s: &Shared,
    idx: usize,
    ep: &EndpointConfig,
    params: Vec<String>,
    req: Request<Incoming>,
    in_flight: usize,
) -> Response<Body> {
    let query = req.uri().query().unwrap_or("").to_string();
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return json(
                StatusCode::PAYLOAD_TOO_LARGE,
                serde_json::json!({ "error": "body unreadable or larger than 1 MiB" }),
            )
        }
    };

    if let Some(w) = &ep.webhook {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        if let Err(e) = webhook::verify(w, header, &body) {
            return json(
                StatusCode::UNAUTHORIZED,
                serde_json::json!({ "error": "invalid_signature", "detail": e.to_string() }),
            );
        }
    }

    if let Some(r) = &ep.rate_limit {
        if !admit(r, &s.counters[idx]) {
            let secs = r.retry_after.as_secs() + u64::from(r.retry_after.subsec_nanos() > 0);
            let mut resp = json(
                StatusCode::TOO_MANY_REQUESTS,
                serde_json::json!({ "error": "rate limited", "limit_per_second": r.per_second }),
            );
            resp.headers_mut()
                .insert(http::header::RETRY_AFTER, http::HeaderValue::from(secs));
            return resp;
        }
    }

    // All random draws for this request at once: one short lock.
    let (service_time, u_cache, u_err) =
        s.with_rng(|r| (ep.service_time.sample(r), r.random::<f64>(), r.random::<f64>()));

    // `Cache-Control: no-cache` asks for a fresh answer, as a CDN or a cache-aside layer honours it.
    let no_cache = parts
        .headers
        .get(http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains("no-cache"));
    if let Some(c) = &ep.cache {
        if s.cache.enabled() && !no_cache {
            let counters = &s.counters[idx];
            if cache::is_hit(c, in_flight, u_cache) {
                counters.cache_hits.fetch_add(1, Ordering::Relaxed);
                let t = s.with_rng(|r| c.hit_time.sample(r));
                tokio::time::sleep(t).await;
                let mut resp = respond(ep, &params);
                resp.headers_mut()
                    .insert("x-cache", http::HeaderValue::from_static("HIT"));
                return resp;
            }
            counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        }
    }

    let service_time = match ep.kind {
        EndpointKind::DelayQuery => Duration::from_millis(
            query_param(&query, "ms")
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                .min(MAX_DELAY_MS),
        ),
        _ => service_time,
    };
    let service_time = service_time + slowdown(ep, &s.counters[idx]);

    let pool = ep.service.and_then(|i| s.pools.get(i));
    let _worker = match pool {
        None => None,
        Some(p) => match p.acquire().await {
            Ok(w) => Some(w),
            Err(r) => {
                let (status, reason) = match r {
                    Rejection::QueueFull => (StatusCode::SERVICE_UNAVAILABLE, "queue full"),
                    Rejection::QueueTimeout => (StatusCode::GATEWAY_TIMEOUT, "queue timeout"),
                };
                return json(status, serde_json::json!({ "error": reason, "service": p.config.name }));
            }
        },
    };
    tokio::time::sleep(service_time).await;
    if !ep.cpu.is_zero() {
        let d = ep.cpu;
        let _ = tokio::task::spawn_blocking(move || burn_cpu(d)).await;
    }

    if let Some(e) = &ep.errors {
        let busy_enough = e.when_busy_above.is_none_or(|n| in_flight > n);
        if busy_enough && u_err < e.rate {
            return json(
                status_code(e.status),
                serde_json::json!({ "error": "injected", "status": e.status }),
            );
        }
    }

    if let Some(nc) = &ep.not_configured {
        if not_configured_applies(nc.when.as_ref(), &body) {
            return json(
                status_code(nc.status),
                serde_json::json!({ "error": "not_configured", "message": nc.message }),
            );
        }
    }
    respond(ep, &params)
}

/// Answers a WebSocket handshake with 101 and serves the upgraded connection on its own task.
fn ws_upgrade(s: &Arc<Shared>, ep: &EndpointConfig, mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = ws::upgrade_key(req.headers()) else {
        let mut r = json(
            StatusCode::UPGRADE_REQUIRED,
            serde_json::json!({ "error": "this is a WebSocket endpoint: send an upgrade request" }),
        );
        r.headers_mut()
            .insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
        return r;
    };
    let accept = ws::accept_key(key);
    let mode = match ep.kind {
        EndpointKind::WsEcho => ws::Mode::Echo(ep.service_time.clone()),
        _ => {
            let rate = query_param(req.uri().query().unwrap_or(""), "rate")
                .and_then(|r| r.parse::<f64>().ok())
                .filter(|r| r.is_finite() && *r > 0.0);
            ws::Mode::Push(match rate {
                Some(r) => Duration::from_secs_f64((1.0 / r).clamp(0.001, 3600.0)),
                None => ep.push_interval,
            })
        }
    };
    let query = req.uri().query().unwrap_or("");
    let mut faults = ep.ws_faults;
    if let Some(n) = query_param(query, "lose_every")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        faults.lose_every = Some(n);
    }
    if let Some(ms) = query_param(query, "close_after_ms")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|n| *n > 0)
    {
        faults.close_after = Some(Duration::from_millis(ms));
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    let shared = s.clone();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let rng = shared.clone();
            ws::serve(
                TokioIo::new(upgraded),
                mode,
                faults,
                move |d| rng.with_rng(|r| d.sample(r)),
                shared.ws.clone(),
                shared.shutdown.subscribe(),
            )
            .await;
        }
    });
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, http::HeaderValue::from_static("Upgrade"));
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// The endpoint's normal answer (after the service time).
fn respond(ep: &EndpointConfig, params: &[String]) -> Response<Body> {
    match ep.kind {
        EndpointKind::StatusFromPath => match params.first().and_then(|p| p.parse::<u16>().ok()) {
            Some(code @ 200..=599) => json(status_code(code), serde_json::json!({ "status": code })),
            _ => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": "status must be 200-599" }),
            ),
        },
        EndpointKind::BytesFromPath => match params.first().and_then(|p| p.parse::<usize>().ok()) {
            Some(n) if n <= MAX_BYTES => {
                let mut r = Response::new(Full::new(Bytes::from(vec![b'x'; n])));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    http::HeaderValue::from_static("application/octet-stream"),
                );
                r
            }
            _ => json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": "n must be a number up to 16 MiB" }),
            ),
        },
        EndpointKind::Standard | EndpointKind::DelayQuery | EndpointKind::WsEcho | EndpointKind::WsPush => {
            let mut r = Response::new(Full::new(ep.body.clone()));
            *r.status_mut() = status_code(ep.status);
            r.headers_mut()
                .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            r
        }
    }
}

fn not_configured_applies(when: Option<&(String, serde_json::Value)>, body: &[u8]) -> bool {
    let Some((field, want)) = when else {
        return true;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    v.get(field).is_some_and(|got| text(got) == text(want))
}

/// `/_admin/cache` (GET: state; POST `?enabled=true|false`: switch) and `/_admin/stats`.
fn admin(s: &Shared, req: &Request<Incoming>, path: &str) -> Response<Body> {
    match (req.method(), path) {
        (&Method::POST, "/_admin/cache") => {
            let q = req.uri().query().unwrap_or("");
            match query_param(q, "enabled").as_deref() {
                Some("true" | "1" | "on") => s.cache.set(true),
                Some("false" | "0" | "off") => s.cache.set(false),
                _ => {
                    return json(
                        StatusCode::BAD_REQUEST,
                        serde_json::json!({ "error": "use ?enabled=true or ?enabled=false" }),
                    )
                }
            }
            json(
                StatusCode::OK,
                serde_json::json!({ "cache_enabled": s.cache.enabled() }),
            )
        }
        (&Method::GET, "/_admin/cache") => json(
            StatusCode::OK,
            serde_json::json!({ "cache_enabled": s.cache.enabled() }),
        ),
        (&Method::GET, "/_admin/stats") => json(
            StatusCode::OK,
            serde_json::to_value(metrics::stats(s)).unwrap_or_default(),
        ),
        _ => json(
            StatusCode::NOT_FOUND,
            serde_json::json!({ "error": "admin endpoints: GET|POST /_admin/cache, GET /_admin/stats" }),
        ),
    }
}

/// Finds the endpoint for `method path` and its path parameter values.
fn route(eps: &[EndpointConfig], method: &Method, path: &str) -> Option<(usize, Vec<String>)> {
    eps.iter().enumerate().find_map(|(i, e)| {
        if e.method != *method {
            return None;
        }
        match_path(&e.segments, path).map(|p| (i, p))
    })
}

fn match_path(segs: &[Segment], path: &str) -> Option<Vec<String>> {
    let mut parts = path.split('/').filter(|s| !s.is_empty());
    let mut params = Vec::new();
    for seg in segs {
        let part = parts.next()?;
        match seg {
            Segment::Lit(l) if l == part => {}
            Segment::Lit(_) => return None,
            Segment::Param(_) => params.push(part.to_string()),
        }
    }
    parts.next().is_none().then_some(params)
}

fn query_param(query: &str, key: &str) -> Option<String> {
    let pairs: HashMap<&str, &str> = query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .collect();
    pairs.get(key).map(|v| v.to_string())
}

fn status_code(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn json(status: StatusCode, v: serde_json::Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(serde_json::to_vec(&v).unwrap_or_default())));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    r
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_queries() {
        let segs = vec![Segment::Lit("leads".into()), Segment::Param("id".into())];
        assert_eq!(match_path(&segs, "/leads/42"), Some(vec!["42".to_string()]));
        assert_eq!(match_path(&segs, "/leads"), None);
        assert_eq!(match_path(&segs, "/leads/42/x"), None);
        assert_eq!(query_param("a=1&ms=25", "ms").as_deref(), Some("25"));
        assert_eq!(query_param("", "ms"), None);
    }

    #[test]
    fn not_configured_matching() {
        let when = ("company_id".to_string(), serde_json::json!("1"));
        assert!(not_configured_applies(Some(&when), br#"{"company_id": 1}"#));
        assert!(not_configured_applies(Some(&when), br#"{"company_id": "1"}"#));
        assert!(!not_configured_applies(Some(&when), br#"{"company_id": 2}"#));
        assert!(!not_configured_applies(Some(&when), b"not json"));
        assert!(not_configured_applies(None, b""));
    }
}
