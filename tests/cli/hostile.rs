//! Against servers that misbehave on purpose, on raw sockets: each test pins a way stampede used
//! to misreport a healthy or a broken server, and names what it reported before.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::*;

/// What a hostile server does with each request: given the request's number on its connection
/// (from 1) and its head, write an answer and say whether to keep the connection.
type Behaviour = fn(u64, &str) -> Answer;

pub enum Answer {
    /// Write these bytes, keep reading requests.
    Reply(&'static [u8]),
    /// Close the connection without a word.
    Close,
    /// Write these bytes without reading the request body, then close.
    ReplyAndClose(&'static [u8]),
    /// Write nothing and hold the connection until the client goes.
    Silent,
}

/// Connections accepted, requests read.
#[derive(Default)]
pub struct Log {
    pub connections: AtomicU64,
    pub requests: AtomicU64,
}

/// Starts a raw-socket HTTP/1.1 server on 127.0.0.1:0 that answers as `behaviour` says.
pub fn start_hostile(behaviour: Behaviour) -> (SocketAddr, Arc<Log>) {
    start_hostile_with(behaviour, None)
}

/// The same with a small receive buffer, so that a large request cannot be taken by the
/// kernel's buffers alone and the client sees the server stop reading.
pub fn start_hostile_with(behaviour: Behaviour, recv_buffer: Option<u32>) -> (SocketAddr, Arc<Log>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size).unwrap();
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let log = Arc::new(Log::default());
    let seen = log.clone();
    on_own_runtime(move || async move {
        let listener = socket.listen(128).unwrap();
        loop {
            let Ok((s, _)) = listener.accept().await else {
                continue;
            };
            seen.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(s, behaviour, seen.clone()));
        }
    });
    (addr, log)
}

async fn serve(mut s: TcpStream, behaviour: Behaviour, log: Arc<Log>) {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match s.read(&mut chunk).await {
                Ok(k) if k > 0 => buf.extend_from_slice(&chunk[..k]),
                _ => return,
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_string();
        n += 1;
        log.requests.fetch_add(1, Ordering::SeqCst);
        match behaviour(n, &head) {
            Answer::Reply(bytes) => {
                // Skip a request body (Content-Length only) before the next request.
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(0);
                while buf.len() < end + len {
                    let mut chunk = [0u8; 4096];
                    match s.read(&mut chunk).await {
                        Ok(k) if k > 0 => buf.extend_from_slice(&chunk[..k]),
                        _ => return,
                    }
                }
                buf.drain(..end + len);
                if s.write_all(bytes).await.is_err() {
                    return;
                }
            }
            Answer::Close => return,
            Answer::Silent => {
                let mut sink = [0u8; 4096];
                while matches!(s.read(&mut sink).await, Ok(k) if k > 0) {}
                return;
            }
            Answer::ReplyAndClose(bytes) => {
                let _ = s.write_all(bytes).await;
                let _ = s.shutdown().await;
                // Closing with the body unread: the kernel answers the rest with a reset.
                tokio::time::sleep(Duration::from_millis(50)).await;
                return;
            }
        }
    }
}

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Keep-alive race: the server answers the first request on a connection, and closes the
/// connection when the second arrives (as a server whose idle timeout fires just as the VU
/// sends). Before, every such request failed as `reset` (57 of 200 with a 1 s think time
/// against a 1 s idle timeout); an idempotent request is now sent again on a new connection.
#[test]
fn a_request_lost_to_an_idle_close_is_retried_once_when_idempotent() {
    let (addr, log) = start_hostile(|n, _| if n == 1 { Answer::Reply(OK) } else { Answer::Close });
    let d = tmp();
    let plan = format!(
        "name: race\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: first, request: GET /a }}\n      - {{ name: get, request: GET /b }}\n      - {{ name: post, request: POST /c, body: x }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 20, max_duration: 20s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|st| st["name"] == name).unwrap().clone();
    // Each iteration: `first` opens a connection; `get` is its second request, which the
    // server drops, so it goes again on a new connection; `post` is that one's second request.
    assert_eq!(step("first")["errors"], 0, "{}", text(&out));
    assert_eq!(step("get")["requests"], 20);
    assert_eq!(step("get")["errors"], 0, "GET is sent again: {}", step("get"));
    // POST is not idempotent: not sent again, it counts as reset.
    assert_eq!(step("post")["errors"], 20, "{}", step("post"));
    assert_eq!(step("post")["errors_by_kind"]["reset"], 20, "{}", step("post"));
    assert_eq!(log.connections.load(Ordering::SeqCst), 40);
    assert_eq!(log.requests.load(Ordering::SeqCst), 80);
}

/// An early answer: the server refuses a large upload with a 413 as soon as it has read the
/// head, without reading the body, and closes. Before, the failed write was all that counted
/// (`reset`: 2,710 of them beside 2 `status_413`); the 413 that was readable is the outcome.
#[test]
fn an_early_413_is_counted_as_413_not_as_a_reset() {
    let (addr, _) = start_hostile_with(
        |_, _| {
            Answer::ReplyAndClose(
                b"HTTP/1.1 413 Content Too Large\r\nConnection: close\r\nContent-Length: 9\r\n\r\ntoo large",
            )
        },
        Some(4096),
    );
    let d = tmp();
    let body = "x".repeat(3 << 20);
    let plan = format!(
        "name: upload\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: up, request: POST /upload, body: {body} }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 20, max_duration: 20s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = &step0(&s);
    assert_eq!(st["requests"], 20, "{}", text(&out));
    assert_eq!(st["errors_by_kind"]["status_413"], 20, "{st}");
}

/// A response that stalls part-way: the head and 64 KiB of a 100 MB body, then nothing until
/// the step's timeout. The bytes that did arrive are counted (they were 0 for any failed
/// request).
#[test]
fn bytes_received_before_a_timeout_are_counted() {
    static HEAD_AND_SOME: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let (addr, _) = start_hostile(|_, _| {
        let bytes = HEAD_AND_SOME.get_or_init(|| {
            let mut v = b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n".to_vec();
            v.extend(std::iter::repeat_n(b'y', 64 << 10));
            v
        });
        Answer::Reply(bytes)
    });
    let d = tmp();
    let plan = format!(
        "name: stall\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: big, request: GET /big, timeout: 500ms }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2, max_duration: 10s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = &step0(&s);
    assert_eq!(st["errors_by_kind"]["timeout"], 2, "{}", text(&out));
    let bytes_in = st["bytes_in"].as_u64().unwrap();
    assert!(bytes_in >= 2 * (64 << 10), "bytes_in {bytes_in}");
}

/// The same over HTTP/2 (h2c): 128 KiB of a body that then never ends. Before, a failed
/// HTTP/2 request counted 0 bytes in.
#[test]
fn bytes_received_before_a_timeout_are_counted_over_http2() {
    let srv = TestServer::start(true);
    let d = tmp();
    let plan = format!(
        "name: stall2\ntarget: {}\nhttp: {{ h2c: true }}\nscenarios:\n  s:\n    steps:\n      - {{ name: big, request: GET /stall/131072, timeout: 500ms }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2, max_duration: 10s }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = &step0(&s);
    assert_eq!(st["errors_by_kind"]["timeout"], 2, "{}", text(&out));
    assert_eq!(st["bytes_in"], 2 * 131072, "{st}");
}

/// Every malformed response read "the response is not valid HTTP", whatever was wrong; the
/// sample now says which rule the response broke. Leading zeros in a chunk size are legal in
/// any number (they were refused beyond 16 digits).
#[test]
fn protocol_errors_say_what_was_wrong_and_long_zero_padded_chunk_sizes_are_legal() {
    let (addr, _) = start_hostile(|_, head| {
        let path = head.split(' ').nth(1).unwrap_or("");
        Answer::Reply(match path {
            "/chunk" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "/status" => b"HTTP/1.1 TWO HUNDRED\r\n\r\n",
            "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
            _ => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0000000000000000000002\r\nok\r\n0\r\n\r\n",
        })
    });
    let d = tmp();
    let plan = format!(
        "name: bad\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: chunk, request: GET /chunk }}\n      - {{ name: status, request: GET /status }}\n      - {{ name: length, request: GET /length }}\n      - {{ name: zeros, request: GET /zeros, checks: [{{ body_contains: ok }}] }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 3, max_duration: 10s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|st| st["name"] == name).unwrap().clone();
    for (name, why) in [
        ("chunk", "bad chunk size"),
        ("status", "bad status line"),
        ("length", "Content-Length values that disagree"),
    ] {
        let st = step(name);
        assert_eq!(st["errors_by_kind"]["protocol"], 3, "{name}: {st} {}", text(&out));
        let samples = st["error_samples"].to_string();
        assert!(samples.contains(why), "{name}: {samples}");
    }
    assert_eq!(step("zeros")["errors"], 0, "{}", step("zeros"));
}

/// A server that resets connections as it accepts them (too busy to take them): the TLS
/// handshake fails with a reset. That is a load symptom, counted as `reset`; it was `tls`, a
/// configuration error, and raised a high-priority "errors from configuration" finding.
#[test]
fn a_reset_during_the_handshake_is_a_reset_not_a_configuration_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in listener.incoming().flatten() {
            // SO_LINGER 0: closing sends RST instead of FIN.
            let s = tokio_linger_zero(s);
            drop(s);
        }
    });
    let d = tmp();
    let plan = format!(
        "name: rst\ntarget: https://localhost:{}\nscenarios:\n  s:\n    steps:\n      - {{ name: j, request: GET / }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 5, max_duration: 10s }}\n",
        addr.port()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    assert_eq!(step0(&s)["errors_by_kind"]["reset"], 5, "{} {}", step0(&s), text(&out));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(!report.to_lowercase().contains("errors from configuration"), "{report}");
}

fn tokio_linger_zero(s: std::net::TcpStream) -> std::net::TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    s.set_nonblocking(true).unwrap();
    let t = tokio::net::TcpStream::from_std(s).unwrap();
    #[allow(deprecated)] // SO_LINGER blocks on drop only with a non-zero timeout
    t.set_linger(Some(Duration::ZERO)).unwrap();
    t.into_std().unwrap()
}

/// `h2c: true` against a server that speaks only HTTP/1.1: a configuration mistake of its own
/// kind, `h2c_unsupported` (it read as thousands of `reset` load errors).
#[test]
fn h2c_against_an_http1_only_server_is_a_configuration_error_of_its_own() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: h2c\ntarget: {}\nhttp: {{ h2c: true }}\nscenarios:\n  s:\n    steps:\n      - {{ name: f, request: GET /fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 5, max_duration: 10s }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = step0(&s);
    assert_eq!(st["errors_by_kind"]["h2c_unsupported"], 5, "{st} {}", text(&out));
    assert!(st["error_samples"].to_string().contains("does not speak h2c"), "{st}");
}

/// A target that is down: nothing listens, every connect is refused at once. A VU used to
/// retry at full speed (148,949 connects in 3 s from 5 VUs, a core busy); it now waits 10 ms
/// after a failed connect, doubling to at most 1 s, and every failure is still counted.
#[test]
fn connects_back_off_per_vu_while_the_target_refuses_them() {
    let refused = closed_port();
    let d = tmp();
    let plan = format!(
        "name: down\ntarget: http://{refused}\nscenarios:\n  s:\n    steps:\n      - {{ name: x, request: GET /x }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, duration: 2s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = step0(&s);
    let n = st["errors_by_kind"]["connect_refused"].as_u64().unwrap_or(0);
    assert_eq!(st["requests"].as_u64(), Some(n), "{st} {}", text(&out));
    // Per VU in 2 s: 10+20+40+...+640 ms then 1 s waits: about 8 connects.
    assert!((4..=30).contains(&n), "{n} connects from 2 VUs in 2 s: {st}");
    // The waits are counted: one per failed connect, and about the phase's length per VU.
    let p = &s["phases"][0];
    let backoffs = p["connect_backoffs"].as_u64().unwrap();
    assert!(
        backoffs + 2 >= n && backoffs <= n,
        "{backoffs} back-offs for {n} failed connects"
    );
    let waited = p["connect_backoff_s"].as_f64().unwrap();
    assert!(
        (2.0..=6.0).contains(&waited),
        "{waited} s of back-off from 2 VUs in 2 s"
    );
    assert!(text(&out).contains("back-offs after failed connects"), "{}", text(&out));
}

/// A name that does not resolve is refused before any traffic, with exit 2 and no run
/// directory (5 VUs made 8,640 lookups in 3 s and the run "completed" with connect errors).
/// `a..b` fails inside the C library, without asking any name server. A name that resolves is
/// looked up once, before the run, and its lookup recorded in `meta.json`.
#[test]
fn an_unresolvable_origin_is_refused_before_the_run_and_lookups_are_recorded() {
    let d = tmp();
    let plan = "name: dns\ntarget: http://a..b:8080\nscenarios:\n  s:\n    steps:\n      - { name: x, request: GET /x }\nphases:\n  - { name: p, scenario: s, vus: 5, duration: 3s }\n";
    let t = std::time::Instant::now();
    let (out, run) = run_plan(d.path(), plan, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "refused before the run: {:?}",
        t.elapsed()
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot resolve `a..b`"),
        "{}",
        text(&out)
    );
    assert!(!run.exists(), "no run directory");

    let srv = TestServer::start(false);
    let plan = format!(
        "name: dns\ntarget: http://localhost:{}\nscenarios:\n  s:\n    steps:\n      - {{ name: f, request: GET /fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 20, max_duration: 10s }}\n",
        srv.addr.port()
    );
    let d = tmp();
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let resolved = &meta["resolved"][0];
    assert_eq!(resolved["origin"], format!("localhost:{}", srv.addr.port()), "{meta}");
    assert!(resolved["lookup_ms"].as_f64().is_some(), "{meta}");
    assert!(
        resolved["addrs"].to_string().contains(&srv.addr.port().to_string()),
        "{meta}"
    );
}

/// Open model against a stalled target: every request takes 10 s, 5 VUs at most, 40 arrivals a
/// second for 2 s, grace 1 s. The waiting arrivals used to get a grace period of their own and
/// in-flight work another (a 5 s phase lasted 10.5 s with 0 dropped); now arrivals still waiting
/// at the end are dropped and only in-flight work gets the grace: the phase ends by 2 s + 3 s
/// (it took 8 s).
#[test]
fn a_stalled_target_cannot_stretch_an_open_phase_past_its_duration_plus_grace() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: stall\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: slow, request: GET /delay/10000 }}\nphases:\n  - {{ name: p, scenario: s, rate: 40, pre_vus: 5, max_vus: 5, duration: 2s, grace: 3s }}\n",
        srv.url()
    );
    let t = std::time::Instant::now();
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let took = t.elapsed();
    assert!(
        took < Duration::from_millis(6500),
        "the phase took {took:?}: {}",
        text(&out)
    );
    let s = summary_json(&run);
    let p = &s["phases"][0];
    assert_eq!(step0(&s)["errors_by_kind"]["interrupted"], 5, "{p}");
    let dropped = p["dropped_iterations"].as_u64().unwrap();
    assert!(
        (70..=80).contains(&dropped),
        "80 arrivals, 5 started: {dropped} dropped; {p}"
    );
}

/// A rare error kind beside a frequent one: one request in 40 fails with a 500 while every
/// other gets one of four different 503 pages. Before, the first three messages of each second
/// filled the samples and the rare kind, although counted, had no message to show; now every
/// kind counted has at least one.
#[test]
fn a_rare_error_kind_keeps_a_sample_beside_a_frequent_one() {
    let (addr, _) = start_hostile(|n, head| {
        if head.starts_with("GET /x/7 ") {
            return Answer::Reply(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\nrare");
        }
        Answer::Reply(match n % 4 {
            0 => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\n\r\nbusy 0",
            1 => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\n\r\nbusy 1",
            2 => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\n\r\nbusy 2",
            _ => b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 6\r\n\r\nbusy 3",
        })
    });
    let d = tmp();
    let plan = format!(
        "name: rare\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: get, request: \"GET /x/{{{{ random_int(1, 40) }}}}\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 1200, max_duration: 20s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let step = &s["phases"][0]["steps"][0];
    assert!(
        step["errors_by_kind"]["status_500"].as_u64().unwrap_or(0) > 0,
        "{}",
        text(&out)
    );
    let samples: Vec<&str> = step["error_samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(samples.iter().any(|m| m.starts_with("HTTP 500")), "{samples:?}");
    assert!(samples.iter().any(|m| m.starts_with("HTTP 503")), "{samples:?}");
    let intervals = std::fs::read_to_string(run.join("intervals.jsonl")).unwrap();
    assert!(
        intervals.contains(r#"{"kind":"status_500","message":"HTTP 500: rare"}"#),
        "the kind is stored with it"
    );
}

/// `stampede run PLAN --out RUN --quiet` in a private mount namespace (`unshare -m`) where
/// `file` is bind-mounted over `over` (a resolver's `/etc/resolv.conf`, an `/etc/hosts`); `None`
/// where mount namespaces cannot be made (not root).
fn run_with_private(
    file: &std::path::Path,
    over: &str,
    plan: &std::path::Path,
    run: &std::path::Path,
) -> Option<std::process::Output> {
    let script = format!(
        "mount --bind {} {over} && exec {} run {} --out {} --quiet",
        file.display(),
        env!("CARGO_BIN_EXE_stampede"),
        plan.display(),
        run.display()
    );
    std::process::Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .ok()
        .filter(|o| !String::from_utf8_lossy(&o.stderr).contains("unshare:"))
}

/// A resolver that never answers: a UDP socket on 127.0.0.77:53 that reads and stays silent,
/// made the process's only name server by a private mount of `/etc/resolv.conf` (`unshare
/// -m`). Before, lookups were not bounded by `connect_timeout` and a 3 s run ended at 12 s; the
/// lookup before the run now gives up within `connect_timeout` and the run is refused (exit 2)
/// before any traffic, with no run directory. Needs root for port 53 and the mount namespace:
/// skipped, saying so, without them.
#[test]
fn a_resolver_that_never_answers_is_bounded_by_the_connect_timeout() {
    let Ok(silent) = std::net::UdpSocket::bind("127.0.0.77:53") else {
        eprintln!("skipped: cannot bind 127.0.0.77:53 (not root?)");
        return;
    };
    let d = tmp();
    let resolv = write(
        d.path(),
        "resolv.conf",
        "nameserver 127.0.0.77\noptions timeout:30 attempts:3\n",
    );
    let plan = write(
        d.path(),
        "plan.yaml",
        "name: silent-dns\ntarget: http://never-answers.invalid-tld-for-stampede:8080\nhttp: { connect_timeout: 1s }\nscenarios:\n  s:\n    steps:\n      - { name: x, request: GET /x }\nphases:\n  - { name: p, scenario: s, vus: 5, duration: 3s }\n",
    );
    let run = d.path().join("run");
    let t = std::time::Instant::now();
    let out = run_with_private(&resolv, "/etc/resolv.conf", &plan, &run);
    let elapsed = t.elapsed();
    drop(silent);
    let Some(out) = out else {
        eprintln!("skipped: no mount namespace here");
        return;
    };
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no answer from the resolver"), "{}", text(&out));
    assert!(
        elapsed < Duration::from_secs(4),
        "bounded by the 1 s connect timeout: {elapsed:?}"
    );
    assert!(!run.exists(), "refused before the run: nothing written");
}

/// A name with several addresses, the first one dead: `multi.stampede.test` is 127.0.0.1
/// (nothing listens on the port there) and 127.0.0.3 (the target), by a private `/etc/hosts`
/// (`unshare -m`, as above). Every connect tries each address in turn, so every request is answered, and
/// the run directory records both addresses. Skipped, saying so, without a mount namespace.
#[test]
fn a_name_with_several_addresses_is_tried_address_by_address() {
    // The target on 127.0.0.3; the same port on 127.0.0.1 is closed. The resolver puts
    // 127.0.0.1 first (RFC 6724's longest-prefix rule), so every connect meets the dead one first.
    let mut c = bin();
    c.args(["target", "--profile", "test", "--listen", "127.0.0.3:0"]);
    let t = crate::target::target_from(c);
    let port = t.url.rsplit(':').next().unwrap().to_string();
    let d = tmp();
    let hosts = write(
        d.path(),
        "hosts",
        "127.0.0.3 multi.stampede.test\n127.0.0.1 multi.stampede.test\n127.0.0.1 localhost\n",
    );
    let plan = write(
        d.path(),
        "plan.yaml",
        &format!("name: multi\ntarget: http://multi.stampede.test:{port}\nhttp: {{ connect_timeout: 2s }}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET /work, headers: {{ Connection: close }} }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 10, max_duration: 10s }}\n"),
    );
    let run = d.path().join("run");
    let Some(out) = run_with_private(&hosts, "/etc/hosts", &plan, &run) else {
        eprintln!("skipped: no mount namespace here");
        return;
    };
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        (step0(&s)["requests"].as_u64(), step0(&s)["errors"].as_u64()),
        (Some(10), Some(0)),
        "{s}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    let addrs = &meta["resolved"][0]["addrs"];
    // The dead address first: every connect had to move on to the second.
    assert!(
        addrs[0].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")) && addrs.to_string().contains("127.0.0.3"),
        "{addrs}"
    );
}
