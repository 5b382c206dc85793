//! A small, real HTTP server for the CLI tests, run in-process on 127.0.0.1:0.
//!
//! Endpoints: `/fast`, `/delay/MS`, `/status/CODE`, `/json`, `/echo` (POST: echoes body and
//! the headers `x-*`), `/bytes/N` (N bytes, streamed), `/items/ID`, `/xss` (500 with a `<script>` body),
//! redirects (`/loop` to itself, `/see-other` 303 and `/temporary` 307 to `/landing`, `/away?to=URL`
//! 302 to URL; `/landing` counts `landing:METHOD:BODY_LENGTH`), `/gzip/N` (N bytes of hex digits
//! after `BEGIN:`, gzipped), `/zstd` (the `/json` document, zstd-compressed), `/cookie/set` (sets `k=v` and a `Secure` `s=1`) and `/cookie/get`
//! (answers the `Cookie` header it got). Requests with an `Authorization` header count as
//! `auth:PATH`. `freeze_for` makes every
//! request that arrives wait until the freeze ends. A second listener misbehaves on purpose:
//! `reset` (closes mid-response) or `malformed` (garbage status line).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
pub struct State {
    pub counts: Mutex<HashMap<String, u64>>,
    pub frozen_until: Mutex<Option<Instant>>,
    pub headers_seen: Mutex<Vec<(String, String)>>,
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<State>,
    _rt: Option<tokio::runtime::Runtime>,
}

impl TestServer {
    /// Starts the server on its own runtime thread (HTTP/1.1, or h2c when `h2`).
    pub fn start(h2: bool) -> TestServer {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State::default());
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let st = st.clone();
                tokio::spawn(serve_conn(stream, h2, st));
            }
        });
        TestServer {
            addr,
            state,
            _rt: Some(rt),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn count(&self, path: &str) -> u64 {
        self.state.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Requests served (paths only, not the per-version tallies).
    pub fn total(&self) -> u64 {
        self.state
            .counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with('/'))
            .map(|(_, v)| v)
            .sum()
    }

    /// HTTPS with the given PEM certificate and key; h2 or HTTP/1.1 by ALPN.
    pub fn start_tls(cert_pem: &std::path::Path, key_pem: &std::path::Path) -> TestServer {
        Self::start_tls_with(cert_pem, key_pem, None)
    }

    /// A TLS server that, with `client_ca`, requires a client certificate signed by it (mTLS).
    pub fn start_tls_with(
        cert_pem: &std::path::Path,
        key_pem: &std::path::Path,
        client_ca: Option<&std::path::Path>,
    ) -> TestServer {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_pem)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(key_pem).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_file_iter(ca).unwrap() {
                    roots.add(c.unwrap()).unwrap();
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder.with_single_cert(certs, key).unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(State::default());
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let st = state.clone();
        rt.spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (st, acceptor) = (st.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    serve_conn(tls, h2, st).await;
                });
            }
        });
        TestServer {
            addr,
            state,
            _rt: Some(rt),
        }
    }

    /// From `after` from now, every request waits until `after + dur` from now.
    pub fn freeze(&self, after: Duration, dur: Duration) {
        let state = self.state.clone();
        std::thread::spawn(move || {
            std::thread::sleep(after);
            *state.frozen_until.lock().unwrap() = Some(Instant::now() + dur);
        });
    }
}

/// Serves one connection, HTTP/2 or HTTP/1.1, plain or TLS.
async fn serve_conn<I>(io: I, h2: bool, st: Arc<State>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| handle(st.clone(), req));
    if h2 {
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), svc)
            .await;
    } else {
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(TokioIo::new(io), svc)
            .await;
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn full(s: impl Into<Bytes>) -> Body {
    Full::new(s.into()).boxed()
}

async fn handle(st: Arc<State>, req: Request<hyper::body::Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    // Wait out a freeze that is on when the request arrives.
    let until = *st.frozen_until.lock().unwrap();
    if let Some(u) = until {
        if Instant::now() < u {
            tokio::time::sleep_until(u.into()).await;
        }
    }
    *st.counts.lock().unwrap().entry(path.clone()).or_default() += 1;
    *st.counts
        .lock()
        .unwrap()
        .entry(format!("version:{:?}", req.version()))
        .or_default() += 1;
    if req.headers().contains_key("authorization") {
        *st.counts.lock().unwrap().entry(format!("auth:{path}")).or_default() += 1;
    }
    for (k, v) in req.headers() {
        if k.as_str().starts_with("x-") {
            st.headers_seen
                .lock()
                .unwrap()
                .push((k.to_string(), v.to_str().unwrap_or("").to_string()));
        }
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resp = match parts.as_slice() {
        ["fast"] => Response::new(full("ok")),
        // A page as a browser loads it: its script and image, and the script's two API calls
        // (a JSON read, a JSON post); the title says when both have answered.
        ["page"] => typed(
            "text/html",
            r#"<!doctype html><html><head><link rel="icon" href="data:,"><title>loading</title><script src="/app.js"></script></head><body><img src="/pixel.png"></body></html>"#,
        ),
        ["app.js"] => typed(
            "application/javascript",
            r#"fetch('/json').then(r => r.json()).then(j => fetch('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id: j.id }) })).then(r => r.text()).then(() => { document.title = 'done'; });"#,
        ),
        ["pixel.png"] => typed("image/png", &b"\x89PNG\r\n\x1a\n"[..]),
        ["delay", ms] => {
            tokio::time::sleep(Duration::from_millis(ms.parse().unwrap_or(0))).await;
            Response::new(full("ok"))
        }
        ["status", code] => {
            let mut r = Response::new(full("status"));
            *r.status_mut() = hyper::StatusCode::from_u16(code.parse().unwrap_or(500)).unwrap();
            r
        }
        ["json"] => {
            let mut r = Response::new(full(r#"{"id":42,"name":"ada","items":[{"k":"v"}],"ok":true}"#));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            r.headers_mut().insert("etag", "\"abc\"".parse().unwrap());
            r
        }
        ["echo"] => Response::new(full(body_of(req).await)),
        ["items", _id] => Response::new(full("item")),
        ["zstd"] => {
            let doc = br#"{"id":42,"name":"ada","coding":"zstd"}"#;
            let z = ruzstd::encoding::compress_to_vec(&doc[..], ruzstd::encoding::CompressionLevel::Fastest);
            let mut r = Response::new(full(z));
            r.headers_mut().insert("content-encoding", "zstd".parse().unwrap());
            r
        }
        ["cookie", "set"] => {
            let mut r = Response::new(full("set"));
            r.headers_mut().append("set-cookie", "k=v; Path=/".parse().unwrap());
            r.headers_mut()
                .append("set-cookie", "s=1; Path=/; Secure".parse().unwrap());
            r
        }
        ["cookie", "get"] => {
            let cookie = req
                .headers()
                .get("cookie")
                .map(|v| v.as_bytes().to_vec())
                .unwrap_or_default();
            Response::new(full(cookie))
        }
        ["loop"] => redirect(302, "/loop"),
        ["see-other"] => redirect(303, "/landing"),
        ["temporary"] => redirect(307, "/landing"),
        ["away"] => {
            let to = req
                .uri()
                .query()
                .and_then(|q| q.strip_prefix("to="))
                .unwrap_or("/")
                .to_string();
            redirect(302, &to)
        }
        ["landing"] => {
            let method = req.method().to_string();
            let body = body_of(req).await;
            *st.counts
                .lock()
                .unwrap()
                .entry(format!("landing:{method}:{}", body.len()))
                .or_default() += 1;
            Response::new(full("landed"))
        }
        ["gzip", n] => {
            use std::io::Write as _;
            let mut text = b"BEGIN:".to_vec();
            let mut x: u64 = 1;
            while text.len() < n.parse().unwrap_or(0) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                text.extend_from_slice(format!("{:016x}", x).as_bytes());
            }
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&text).unwrap();
            let mut r = Response::new(full(e.finish().unwrap()));
            r.headers_mut().insert("content-encoding", "gzip".parse().unwrap());
            r
        }
        ["xss"] => {
            // A hostile target: markup in the body and the reason phrase's place.
            let mut r = Response::new(full("<script>alert(1)</script>"));
            *r.status_mut() = hyper::StatusCode::INTERNAL_SERVER_ERROR;
            r.headers_mut().insert("content-type", "text/html".parse().unwrap());
            r
        }
        ["bytes", n] => Response::new(
            Chunks {
                left: n.parse().unwrap_or(0),
                chunk: Bytes::from(vec![b'x'; 64 * 1024]),
                stall: false,
            }
            .boxed(),
        ),
        ["stall", n] => Response::new(
            Chunks {
                left: n.parse().unwrap_or(0),
                chunk: Bytes::from(vec![b'x'; 64 * 1024]),
                stall: true,
            }
            .boxed(),
        ),
        _ => {
            let mut r = Response::new(full("not found"));
            *r.status_mut() = hyper::StatusCode::NOT_FOUND;
            r
        }
    };
    Ok(resp)
}

async fn body_of(req: Request<hyper::body::Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default()
}

fn typed(content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    r.headers_mut()
        .insert("content-type", hyper::header::HeaderValue::from_static(content_type));
    r
}

fn redirect(status: u16, location: &str) -> Response<Body> {
    let mut r = Response::new(full("moved"));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    r.headers_mut().insert("location", location.parse().unwrap());
    r
}

/// A body of `left` bytes, sent in 64 KiB frames; with `stall`, the body then never ends.
struct Chunks {
    left: usize,
    chunk: Bytes,
    stall: bool,
}

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return if self.stall {
                std::task::Poll::Pending
            } else {
                std::task::Poll::Ready(None)
            };
        }
        let n = self.left.min(self.chunk.len());
        self.left -= n;
        std::task::Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }
}

/// Runs `serve` on a runtime of its own, on a thread of its own, for the rest of the test.
pub fn on_own_runtime<F>(serve: impl FnOnce() -> F + Send + 'static)
where
    F: std::future::Future<Output = ()>,
{
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve());
    });
}

/// A listener that misbehaves: `reset` closes the connection after reading the request,
/// `malformed` answers with a status line that is not HTTP.
pub fn start_bad(mode: &'static str) -> SocketAddr {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    on_own_runtime(move || async move {
        std_listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                match mode {
                    "malformed" => {
                        let _ = s.write_all(b"HTTP/1.1 TWO HUNDRED\r\nbogus\r\n\r\n").await;
                    }
                    _ => {
                        let _ = s
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                            .await;
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    addr
}

/// What a hand-written HTTP/1.1 server saw: connections accepted and request lines, in order.
#[derive(Default)]
pub struct WireLog {
    pub connections: std::sync::atomic::AtomicU64,
    pub requests: Mutex<Vec<String>>,
}

/// A hand-written HTTP/1.1 server whose answers exercise response framing the way real
/// servers vary it, and that closes any connection idle for 100 ms (a short keep-alive
/// timeout). By path:
/// `/interim` a 100 Continue before the 200; `/chunked` a chunked body with an extension and
/// a trailer, written in pieces; `/head` (HEAD) a Content-Length with no body; `/header` a
/// mixed-case `X-Token` header; `/close` `Connection: close`; `/eof` a body delimited by
/// closing the connection; anything else `ok`.
pub fn start_wire() -> (SocketAddr, Arc<WireLog>) {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_listener.local_addr().unwrap();
    let log = Arc::new(WireLog::default());
    let seen = log.clone();
    on_own_runtime(move || async move {
        std_listener.set_nonblocking(true).unwrap();
        let listener = TcpListener::from_std(std_listener).unwrap();
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            seen.connections.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(wire_conn(s, seen.clone()));
        }
    });
    (addr, log)
}

async fn wire_conn(mut s: tokio::net::TcpStream, log: Arc<WireLog>) {
    let mut buf = Vec::new();
    loop {
        // The next request head, or close after 100 ms of idleness.
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tokio::time::timeout(Duration::from_millis(100), s.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        buf.drain(..end);
        let line = head.lines().next().unwrap_or("").to_string();
        log.requests.lock().unwrap().push(line.clone());
        let path = line.split(' ').nth(1).unwrap_or("/");
        let pieces: Vec<&[u8]> = match path {
            "/interim" => vec![b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
            "/chunked" => vec![
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;note=1\r\nhel",
                b"lo\r\n6\r\n world\r",
                b"\n0\r\nX-Trailer: t\r\n\r\n",
            ],
            "/head" => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"],
            "/header" => vec![b"HTTP/1.1 200 OK\r\nX-TOKEN: tok-7\r\nContent-Length: 2\r\n\r\nok"],
            "/close" => vec![b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"],
            "/eof" => vec![b"HTTP/1.1 200 OK\r\n\r\nuntil-close"],
            _ => vec![b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"],
        };
        for (i, piece) in pieces.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if s.write_all(piece).await.is_err() {
                return;
            }
        }
        if path == "/close" || path == "/eof" {
            let _ = s.shutdown().await;
            return;
        }
    }
}
