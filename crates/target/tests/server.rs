//! End-to-end tests: a real server on 127.0.0.1:0, driven by a tiny raw hyper client.
//! Every loop is bounded and every test takes at most a couple of seconds.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use stampede_target::{parse_config, profile, start, Server};
use tokio::net::TcpStream;

/// One HTTP/1.1 keep-alive connection.
struct Client {
    tx: http1::SendRequest<Full<Bytes>>,
}

struct Resp {
    status: u16,
    headers: http::HeaderMap,
    body: Bytes,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.unwrap();
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await.unwrap();
        tokio::spawn(conn);
        Client { tx }
    }

    async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "target");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b.body(Full::new(Bytes::from(body.to_string()))).unwrap();
        self.tx.ready().await.unwrap();
        let resp = self.tx.send_request(req).await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Resp { status, headers, body }
    }

    async fn get(&mut self, path: &str) -> Resp {
        self.send("GET", path, &[], "").await
    }
}

async fn serve(yaml: &str) -> Server {
    let cfg = parse_config(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"));
    start(cfg, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

async fn serve_profile(name: &str) -> Server {
    start(profile(name).unwrap(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_endpoint_latency_matches_config() {
    let server = serve_profile("test").await;
    assert!(server.url().starts_with("http://127.0.0.1:"));
    let mut c = Client::connect(server.local_addr()).await;
    c.get("/fixed?ms=1").await; // warm-up
    for _ in 0..5 {
        let t = Instant::now();
        let r = c.get("/fixed?ms=40").await;
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(r.status, 200);
        assert!((40.0..60.0).contains(&ms), "latency {ms} ms");
    }
    let st = server.stats();
    assert_eq!(st.endpoints["fixed"].requests, 6);
    assert_eq!(st.total, 6);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_saturates_at_workers_over_service_time() {
    // 4 workers x 50 ms => 80 req/s. 16 closed-loop clients => by Little's law the mean latency
    // is N / X = 16 / 80 = 200 ms (150 ms of it queueing).
    let server = serve(
        "services: { s: { workers: 4, queue: 100 } }\n\
         endpoints: [ { name: w, method: GET, path: /w, service: s, service_time: { fixed: 50ms } } ]\n",
    )
    .await;
    let addr = server.local_addr();
    let (clients, per_client) = (16, 8);
    let mut conns = Vec::new();
    for _ in 0..clients {
        conns.push(Client::connect(addr).await);
    }
    let start = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let mut lat = Vec::new();
                for _ in 0..per_client {
                    let t = Instant::now();
                    let r = c.get("/w").await;
                    assert_eq!(r.status, 200);
                    lat.push(t.elapsed().as_secs_f64());
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    let n = (clients * per_client) as f64;
    let rps = n / elapsed;
    let mean = lat.iter().sum::<f64>() / lat.len() as f64;
    assert!((72.0..=88.0).contains(&rps), "throughput {rps:.1} req/s");
    assert!((0.17..=0.23).contains(&mean), "mean latency {mean:.3} s");
    assert_eq!(server.stats().total, n as u64);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queue_is_503_at_once_and_long_wait_is_504() {
    let server = serve(
        "services:\n  s: { workers: 1, queue: 1, queue_timeout: 2s }\n  t: { workers: 1, queue: 5, queue_timeout: 50ms }\n\
         endpoints:\n  - { name: a, method: GET, path: /a, service: s, service_time: { fixed: 200ms } }\n  - { name: b, method: GET, path: /b, service: t, service_time: { fixed: 200ms } }\n",
    )
    .await;
    let addr = server.local_addr();
    // 1 worker + 1 queue slot: the third concurrent request is refused immediately.
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut c = Client::connect(addr).await;
        busy.push(tokio::spawn(async move { c.get("/a").await.status }));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut c = Client::connect(addr).await;
    let t = Instant::now();
    let r = c.get("/a").await;
    assert_eq!(r.status, 503);
    assert!(t.elapsed() < Duration::from_millis(100), "503 must not wait");
    for b in busy {
        assert_eq!(b.await.unwrap(), 200);
    }
    // Queue timeout 50 ms behind a 200 ms request: 504.
    let mut c1 = Client::connect(addr).await;
    let first = tokio::spawn(async move { c1.get("/b").await.status });
    tokio::time::sleep(Duration::from_millis(20)).await;
    let t = Instant::now();
    assert_eq!(c.get("/b").await.status, 504);
    assert!(t.elapsed() < Duration::from_millis(150));
    assert_eq!(first.await.unwrap(), 200);
    let st = server.stats();
    assert_eq!(st.rejected_queue_full, 1);
    assert_eq!(st.rejected_queue_timeout, 1);
    assert_eq!(st.by_status[&503], 1);
    assert_eq!(st.by_status[&504], 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_signature_is_checked() {
    let server = serve_profile("test").await;
    let mut c = Client::connect(server.local_addr()).await;
    let body = r#"{"event":"call_ended","call_id":"abc"}"#;
    let sig = stampede_target::webhook::sign("test-secret", None, body.as_bytes());
    let prefixed = format!("sha256={sig}");
    assert_eq!(
        c.send("POST", "/webhook", &[("X-Signature", &sig)], body).await.status,
        200
    );
    assert_eq!(
        c.send("POST", "/webhook", &[("x-signature", &prefixed)], body)
            .await
            .status,
        200
    );
    assert_eq!(c.send("POST", "/webhook", &[], body).await.status, 401);
    let wrong = stampede_target::webhook::sign("other-secret", None, body.as_bytes());
    let r = c.send("POST", "/webhook", &[("X-Signature", &wrong)], body).await;
    assert_eq!(r.status, 401);
    assert!(String::from_utf8_lossy(&r.body).contains("invalid_signature"));
    server.shutdown().await;

    // With a timestamp header the signed message is "{timestamp}.{body}".
    let server = serve(
        "endpoints:\n  - name: hook\n    method: POST\n    path: /hook\n    webhook: { secret: k, header: X-Retell-Signature, timestamp_header: X-Timestamp }\n",
    )
    .await;
    let mut c = Client::connect(server.local_addr()).await;
    let sig = stampede_target::webhook::sign("k", Some("1767225600"), body.as_bytes());
    let ok = [("X-Retell-Signature", sig.as_str()), ("X-Timestamp", "1767225600")];
    assert_eq!(c.send("POST", "/hook", &ok, body).await.status, 200);
    let stale = [("X-Retell-Signature", sig.as_str()), ("X-Timestamp", "1767225601")];
    assert_eq!(c.send("POST", "/hook", &stale, body).await.status, 401);
    let st = server.stats();
    assert_eq!(st.endpoints["hook"].by_status[&401], 1);
    server.shutdown().await;
}

/// Checks that every line is a comment or `name{labels} value`; returns the samples.
fn parse_exposition(text: &str) -> Vec<(String, String, f64)> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix("# ") {
            assert!(c.starts_with("HELP ") || c.starts_with("TYPE "), "bad comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        let (name, labels) = match series.split_once('{') {
            Some((n, rest)) => {
                let labels = rest.strip_suffix('}').unwrap_or_else(|| panic!("bad labels: {line}"));
                for pair in labels.split("\",").filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once("=\"").unwrap_or_else(|| panic!("bad label: {line}"));
                    assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "{line}");
                    assert!(!v.is_empty() || pair.ends_with('"'), "{line}");
                }
                (n, labels)
            }
            None => (series, ""),
        };
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad name: {line}"
        );
        out.push((name.to_string(), labels.to_string(), v));
    }
    out
}

fn value(samples: &[(String, String, f64)], name: &str, labels: &str) -> Option<f64> {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .map(|(_, _, v)| *v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_show_busy_workers() {
    let server = serve(
        "services: { db: { workers: 3, queue: 10, connection_pool: true } }\n\
         endpoints: [ { name: q, method: GET, path: /q, service: db, service_time: { fixed: 300ms } } ]\n",
    )
    .await;
    let addr = server.local_addr();
    let mut inflight = Vec::new();
    for _ in 0..4 {
        let mut c = Client::connect(addr).await;
        inflight.push(tokio::spawn(async move { c.get("/q").await.status }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut m = Client::connect(addr).await;
    let r = m.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let s = parse_exposition(std::str::from_utf8(&r.body).unwrap());
    let svc = r#"service="db""#;
    assert_eq!(value(&s, "stampede_target_service_busy_workers", svc), Some(3.0));
    assert_eq!(value(&s, "stampede_target_service_max_workers", svc), Some(3.0));
    assert_eq!(value(&s, "stampede_target_service_queue_depth", svc), Some(1.0));
    assert_eq!(
        value(&s, "stampede_target_connection_pool_in_use", r#"pool="db""#),
        Some(3.0)
    );
    assert_eq!(
        value(&s, "stampede_target_connection_pool_max", r#"pool="db""#),
        Some(3.0)
    );
    assert_eq!(value(&s, "stampede_target_in_flight_requests", ""), Some(4.0));
    assert!(value(&s, "process_cpu_seconds_total", "").is_some());
    assert!(value(&s, "process_resident_memory_bytes", "").unwrap() > 0.0);
    for t in inflight {
        assert_eq!(t.await.unwrap(), 200);
    }
    let r = m.get("/metrics").await;
    let s = parse_exposition(std::str::from_utf8(&r.body).unwrap());
    assert_eq!(value(&s, "stampede_target_service_busy_workers", svc), Some(0.0));
    assert_eq!(
        value(&s, "stampede_target_requests_total", r#"endpoint="q",status="200""#),
        Some(4.0)
    );
    // /metrics itself is not counted as load.
    assert_eq!(server.stats().total, 4);
    server.shutdown().await;
}

#[tokio::test]
async fn config_errors_carry_line_and_column() {
    let unknown_key = "endpoints:\n  - method: GET\n    path: /a\n    servce: x\n";
    let e = parse_config(unknown_key, "t.yaml").unwrap_err();
    assert_eq!((e.line, e.column), (4, 5), "{e}");
    assert!(e.to_string().starts_with("t.yaml:4:5: "), "{e}");
    assert!(e.message.contains("servce"), "{e}");

    let unknown_service = "services:\n  php: { workers: 2 }\nendpoints:\n  - { method: GET, path: /a, service: db }\n";
    let e = parse_config(unknown_service, "t.yaml").unwrap_err();
    assert_eq!(e.line, 4, "{e}");
    assert!(e.message.contains("unknown service \"db\""), "{e}");

    let bad_duration = "endpoints:\n  - { method: GET, path: /a, service_time: { fixed: 5 parsecs } }\n";
    let e = parse_config(bad_duration, "t.yaml").unwrap_err();
    assert_eq!(e.line, 2, "{e}");

    let top_level = "endpoints: []\nworkers: 3\n";
    let e = parse_config(top_level, "t.yaml").unwrap_err();
    assert_eq!(e.line, 2, "{e}");

    let bad_ratio = "endpoints:\n  - method: GET\n    path: /a\n    errors: { rate: 1.5 }\n";
    assert!(parse_config(bad_ratio, "t.yaml").is_err());
    assert!(parse_config("", "t.yaml").is_err());
    assert!(parse_config("endpoints: [", "t.yaml").is_err());
    assert!(parse_config("endpoints: []\n", "t.yaml").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_on_off_changes_latency() {
    let server = serve_profile("test").await;
    let mut c = Client::connect(server.local_addr()).await;
    async fn mean_latency(c: &mut Client, n: u32) -> f64 {
        let t = Instant::now();
        for _ in 0..n {
            assert_eq!(c.get("/cached").await.status, 200);
        }
        t.elapsed().as_secs_f64() / n as f64
    }
    let on = mean_latency(&mut c, 20).await;
    let r = c.send("POST", "/_admin/cache?enabled=false", &[], "").await;
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[..], br#"{"cache_enabled":false}"#);
    let off = mean_latency(&mut c, 20).await;
    assert!(on < 0.025, "with cache {on}");
    assert!(off > 0.045, "without cache {off}");
    let st = server.stats();
    let e = &st.endpoints["cached"];
    assert_eq!(e.cache_hits + e.cache_misses, 20, "misses only counted while on");
    assert!(e.cache_hits >= 12);
    // A cache hit says so.
    c.send("POST", "/_admin/cache?enabled=true", &[], "").await;
    server.set_cache_enabled(true);
    let mut saw_hit = false;
    for _ in 0..10 {
        saw_hit |= c.get("/cached").await.headers.get("x-cache").is_some();
    }
    assert!(saw_hit);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voice_gateway_answers_not_configured_for_company_1() {
    let server = serve_profile("voice-gateway").await;
    let mut c = Client::connect(server.local_addr()).await;
    let json = [("content-type", "application/json")];
    let r = c
        .send("POST", "/api/check-availability", &json, r#"{"company_id":"1"}"#)
        .await;
    assert_eq!(r.status, 424);
    assert!(String::from_utf8_lossy(&r.body).contains("not_configured"));
    let r = c
        .send("POST", "/api/check-availability", &json, r#"{"company_id":2}"#)
        .await;
    assert_eq!(r.status, 200);
    let r = c
        .send("POST", "/api/check-customer", &json, r#"{"company_id":1}"#)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(c.send("POST", "/webhooks/retell", &json, "{}").await.status, 401);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_profile_helpers_routing_and_h2c() {
    let server = serve_profile("test").await;
    let addr = server.local_addr();
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/status/418").await.status, 418);
    assert_eq!(c.get("/status/abc").await.status, 400);
    let r = c.get("/bytes/1234").await;
    assert_eq!((r.status, r.body.len()), (200, 1234));
    assert_eq!(c.get("/nope").await.status, 404);
    assert_eq!(c.send("DELETE", "/work", &[], "").await.status, 405);
    let st = server.stats();
    assert_eq!(st.endpoints["_unmatched"].requests, 2);
    let admin = c.get("/_admin/stats").await;
    let v: serde_json::Value = serde_json::from_slice(&admin.body).unwrap();
    assert_eq!(v["total"], st.total);
    assert_eq!(v["endpoints"]["status"]["by_status"]["418"], 1);

    // HTTP/2 with prior knowledge (h2c) on the same port.
    let stream = TcpStream::connect(addr).await.unwrap();
    let (mut tx, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .uri(format!("http://{addr}/status/201"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tx.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.version(), http::Version::HTTP_2);

    server.shutdown().await;
    // After shutdown nothing listens.
    assert!(TcpStream::connect(addr).await.is_err());
}

#[test]
fn profiles_are_listed() {
    assert_eq!(
        stampede_target::profile_names(),
        &["voice-gateway", "insurance-leads", "test"]
    );
    for n in stampede_target::profile_names() {
        assert!(profile(n).is_some(), "{n}");
    }
}

/// Minimal WebSocket client: handshake, masked frames out, unmasked frames in.
mod wsc {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::TcpStream;

    pub struct Ws(pub BufReader<TcpStream>);

    pub async fn connect(addr: std::net::SocketAddr, path: &str) -> (Ws, String) {
        let s = TcpStream::connect(addr).await.unwrap();
        let mut s = BufReader::new(s);
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        s.get_mut().write_all(req.as_bytes()).await.unwrap();
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(s.read_line(&mut line).await.unwrap() > 0, "eof in handshake");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        (Ws(s), head)
    }

    impl Ws {
        pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
            assert!(payload.len() < 126);
            let mask = [1u8, 2, 3, 4];
            let mut f = vec![0x80 | opcode, 0x80 | payload.len() as u8];
            f.extend_from_slice(&mask);
            f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
            self.0.get_mut().write_all(&f).await.unwrap();
        }

        pub async fn recv(&mut self) -> (u8, Vec<u8>) {
            let mut h = [0u8; 2];
            self.0.read_exact(&mut h).await.unwrap();
            assert_eq!(h[1] & 0x80, 0, "server frames are unmasked");
            let len = match h[1] & 0x7F {
                126 => self.0.read_u16().await.unwrap() as usize,
                127 => self.0.read_u64().await.unwrap() as usize,
                n => n as usize,
            };
            let mut p = vec![0u8; len];
            self.0.read_exact(&mut p).await.unwrap();
            (h[0] & 0x0F, p)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_echo_and_push() {
    let server = serve_profile("test").await;
    let addr = server.local_addr();
    let (mut ws, head) = wsc::connect(addr, "/ws/echo").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for msg in ["hello", "world"] {
        let t = Instant::now();
        ws.send(0x1, msg.as_bytes()).await;
        assert_eq!(ws.recv().await, (0x1, msg.as_bytes().to_vec()));
        assert!(t.elapsed() >= Duration::from_millis(5));
    }
    ws.send(0x9, b"p").await;
    assert_eq!(ws.recv().await, (0xA, b"p".to_vec()));
    ws.send(0x8, &1000u16.to_be_bytes()).await;
    assert_eq!(ws.recv().await.0, 0x8);

    // Push at 50 ms: 3 messages arrive within about 150 ms.
    let (mut ws, head) = wsc::connect(addr, "/ws/push").await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let t = Instant::now();
    for seq in 1..=3 {
        let (op, p) = ws.recv().await;
        assert_eq!(op, 0x1);
        assert!(String::from_utf8(p).unwrap().contains(&format!("\"seq\":{seq}")));
    }
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(140) && e < Duration::from_millis(400),
        "{e:?}"
    );

    // A plain GET on a WebSocket endpoint asks for an upgrade.
    let mut c = Client::connect(addr).await;
    assert_eq!(c.get("/ws/echo").await.status, 426);
    let mut m = Client::connect(addr).await;
    let body = m.get("/metrics").await.body;
    let s = parse_exposition(std::str::from_utf8(&body).unwrap());
    assert_eq!(value(&s, "stampede_target_websocket_connections", ""), Some(1.0));
    assert_eq!(
        value(&s, "stampede_target_websocket_messages_received_total", ""),
        Some(2.0)
    );
    assert_eq!(server.stats().endpoints["ws-echo"].by_status[&101], 1);
    // Shutdown closes the open push connection with 1001 (going away).
    server.shutdown().await;
    let mut closed = false;
    for _ in 0..10 {
        let (op, p) = ws.recv().await;
        if op == 0x8 {
            assert_eq!(p, 1001u16.to_be_bytes());
            closed = true;
            break;
        }
    }
    assert!(closed);
}
