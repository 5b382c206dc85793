//! WebSocket steps against servers whose truth is known: the built-in target with a fixed echo
//! delay, a loss every Nth message and closes on a timer; Python's `websockets` (a server
//! stampede did not write); and raw-socket servers that break the protocol on purpose.

use std::sync::atomic::Ordering;

use crate::hostile::{start_hostile, Answer};
use crate::target::{spawn_target, Target};
use crate::*;

/// The built-in target with one WebSocket echo endpoint answering after exactly 20 ms.
fn echo_target(dir: &std::path::Path, faults: &str) -> Target {
    let cfg = write(
        dir,
        "target.yaml",
        &format!(
            "seed: 1\nendpoints:\n  - {{ name: echo, method: GET, path: /ws/echo, kind: ws_echo, service_time: {{ fixed: 20ms }}{faults} }}\n  - {{ name: push, method: GET, path: /ws/push, kind: ws_push, push_interval: 20ms }}\n"
        ),
    );
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

fn repeat_plan(url: &str, path: &str, vus: u32, rounds: u32, every_ms: u32, extra: &str) -> String {
    format!(
        "name: ws\ntarget: {url}\nscenarios:\n  rt:\n    steps:\n      - name: feed\n        ws: {path}\n{extra}        session:\n          - repeat: {rounds}\n            every: {every_ms}ms\n            do:\n              - send: {{ json: {{ id: \"{{{{ uuid() }}}}\", n: \"{{{{ iteration }}}}\" }} }}\n                reply: {{ match: \"$.id\", timeout: 400ms }}\nphases:\n  - {{ name: p, scenario: rt, vus: {vus}, iterations: {vus}, max_duration: 30s }}\n"
    )
}

/// The truth: a 20 ms echo that leaves every 10th message of a connection unanswered. 4
/// connections × 60 messages = 240 sent, 24 lost; the rest answered in 20 ms and a little.
#[test]
fn message_latency_and_loss_match_the_echo_servers_truth() {
    let d = tmp();
    let t = echo_target(d.path(), ", lose_every: 10");
    let (out, run) = run_plan(d.path(), &repeat_plan(&t.url, "/ws/echo", 4, 60, 50, ""), &[]);
    let s = summary_json(&run);
    let feed = step_named(&s, "feed");
    let ws = &feed["ws"];
    assert_eq!(ws["messages_sent"], 240, "{}", text(&out));
    assert_eq!(feed["requests"], 240, "every message awaited its reply: {feed}");
    let lost = ws["lost"].as_u64().unwrap();
    assert!((23..=25).contains(&lost), "lost {lost} of a truth of 24: {ws}");
    assert_eq!(feed["errors_by_kind"]["ws_lost"], lost);
    assert_eq!(ws["messages_received"], 240 - 24);
    let p50 = feed["latency_ms"]["p50"].as_f64().unwrap();
    assert!((20.0..=30.0).contains(&p50), "p50 {p50} ms for a 20 ms echo");
    assert_eq!(ws["connections"], 4);
    assert_eq!(ws["connect_failed"], 0);
    assert_eq!(ws["dropped_connections"], 0);
    let connect = step_named(&s, "feed:connect");
    assert_eq!(connect["requests"], 4);
    assert_eq!(connect["status_codes"]["101"], 4);
    assert!((0.09..=0.11).contains(&ws["lost_rate"].as_f64().unwrap()), "{ws}");
}

/// Connections the server closes every 700 ms (code 1012): every close is counted as a dropped
/// connection with its code, and every one the session still needed was reconnected.
#[test]
fn every_server_close_is_a_dropped_connection_and_a_reconnect() {
    let d = tmp();
    let t = echo_target(d.path(), ", close_after: 700ms");
    let extra = "        reconnect: { max: 20, backoff: 50ms }\n";
    let (out, run) = run_plan(d.path(), &repeat_plan(&t.url, "/ws/echo", 3, 40, 50, extra), &[]);
    let s = summary_json(&run);
    let ws = &step_named(&s, "feed")["ws"];
    let (opened, dropped, reconnects) = (
        ws["connections"].as_u64().unwrap(),
        ws["dropped_connections"].as_u64().unwrap(),
        ws["reconnects"].as_u64().unwrap(),
    );
    // 2 s per connection chain: each VU's connection is closed at 0.7 s and 1.4 s (and maybe
    // just at the end, after its last round).
    assert!(dropped >= 6, "{ws} {}", text(&out));
    assert_eq!(ws["close_codes"]["1012"], dropped, "{ws}");
    assert_eq!(
        opened,
        3 + reconnects,
        "every connection but the first per VU is a reconnect: {ws}"
    );
    assert!(reconnects + 3 >= dropped && reconnects <= dropped, "{ws}");
    assert!(
        ws["reconnect_ms_avg"].as_f64().unwrap() >= 50.0,
        "the back-off is part of it: {ws}"
    );
    assert_eq!(ws["connect_failed"], 0);
    assert!(s["phases"][0]["ws_open_max"].as_u64().unwrap() <= 3);
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## WebSocket"), "{report}");
    assert!(report.contains("**Connections dropped**"), "{report}");
    // The HTML report's WebSocket section and chart, as a real browser renders them.
    let o = crate::report::headless(&d.path().join("chromium-profile"))
        .arg("--dump-dom")
        .arg(format!("file://{}", run.join("report.html").display()))
        .output()
        .expect("start chromium");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(dom.contains("Connections dropped"), "{}", text(&o));
    assert!(
        dom.contains("WebSocket: open connections and message latency (p95)"),
        "no chart: {dom}"
    );
}

/// A long session ends with its phase: once the phase's time is up no new round starts, the
/// replies awaited are answered within the grace, and the connection closes cleanly (no
/// `interrupted`, nothing lost), where a 1,000-round repeat would otherwise take 100 s.
#[test]
fn a_long_session_ends_with_its_phase() {
    let d = tmp();
    let t = echo_target(d.path(), "");
    let plan =
        repeat_plan(&t.url, "/ws/echo", 2, 1000, 100, "").replace("iterations: 2, max_duration: 30s", "duration: 1s");
    let started = std::time::Instant::now();
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let s = summary_json(&run);
    let feed = step_named(&s, "feed");
    assert_eq!(feed["errors"], 0, "{feed} {}", text(&out));
    let n = feed["requests"].as_u64().unwrap();
    assert!((2 * 8..=2 * 12).contains(&n), "about 10 rounds per VU in 1 s: {n}");
    assert_eq!(feed["ws"]["dropped_connections"], 0, "closed by us, cleanly");
}

/// Pushes with a sequence number: the built-in target pushes every 20 ms; `receive` reads
/// them for a second and `sequence:` finds no gap.
#[test]
fn pushes_are_counted_and_sequence_numbers_checked() {
    let d = tmp();
    let t = echo_target(d.path(), "");
    let plan = format!(
        "name: push\ntarget: {}\nscenarios:\n  rt:\n    steps:\n      - name: feed\n        ws: /ws/push\n        sequence: \"$.seq\"\n        session:\n          - receive: {{ count: 10, timeout: 5s }}\n          - receive: {{ for: 500ms }}\nphases:\n  - {{ name: p, scenario: rt, vus: 2, iterations: 2, max_duration: 20s }}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let ws = &step_named(&s, "feed")["ws"];
    let pushes = ws["pushes"].as_u64().unwrap();
    assert!((2 * 20..=2 * 45).contains(&pushes), "{ws} {}", text(&out));
    assert_eq!(ws["sequence_gaps"], 0, "{ws}");
    assert_eq!(ws["duplicates"], 0, "{ws}");
    assert_eq!(step_named(&s, "feed")["requests"], 0, "nothing was awaited");
}

fn ws_url() -> String {
    std::env::var("STAMPEDE_TEST_WS_URL").unwrap_or_else(|_| {
        panic!("STAMPEDE_TEST_WS_URL is not set: run the tests through scripts/test.sh, which starts Python's `websockets` on loopback (or `eval \"$(scripts/test-services.sh)\"` first)")
    })
}

/// Python's `websockets`: an echo after 20 ms, a server that closes with 1011, a push stream
/// that skips sequence number 5.
#[test]
fn against_pythons_websockets_server() {
    let base = ws_url();
    let d = tmp();
    let plan = format!(
        "name: py\nscenarios:\n  rt:\n    steps:\n      - name: echo\n        ws: {base}/echo?delay_ms=20\n        subprotocols: [ chat ]\n        session:\n          - send: hello\n            reply: {{ timeout: 1s, checks: [ {{ body_contains: hello }} ] }}\n          - repeat: 20\n            every: 40ms\n            do:\n              - send: {{ json: {{ id: \"{{{{ uuid() }}}}\" }} }}\n                reply: {{ match: \"$.id\", timeout: 1s, name: tick }}\n          - ping: true\n      - name: closing\n        ws: {base}/close?after_ms=300\n        reconnect: {{ max: 1, backoff: 10ms }}\n        session:\n          - repeat: 10\n            every: 50ms\n            do: [ {{ send: x, reply: {{ timeout: 1s }} }} ]\n      - name: seq\n        ws: {base}/push?every_ms=10\n        sequence: \"$.seq\"\n        session: [ {{ receive: {{ count: 12, timeout: 5s }} }} ]\nphases:\n  - {{ name: p, scenario: rt, vus: 2, iterations: 2, max_duration: 30s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let echo = step_named(&s, "echo");
    assert_eq!(echo["errors"], 0, "{echo} {}", text(&out));
    assert_eq!(echo["requests"], 4, "hello + ping per VU: {echo}");
    let tick = step_named(&s, "echo:tick");
    assert_eq!(tick["requests"], 40);
    assert_eq!(tick["errors"], 0, "{tick}");
    let p50 = tick["latency_ms"]["p50"].as_f64().unwrap();
    assert!((20.0..=30.0).contains(&p50), "p50 {p50} ms for a 20 ms echo");
    let closing = &step_named(&s, "closing")["ws"];
    assert!(closing["dropped_connections"].as_u64().unwrap() >= 2, "{closing}");
    assert_eq!(
        closing["close_codes"]["1011"], closing["dropped_connections"],
        "{closing}"
    );
    let seq = &step_named(&s, "seq")["ws"];
    assert_eq!(seq["sequence_gaps"], 2, "seq 5 skipped on each of 2 connections: {seq}");
}

/// What a server does wrong is counted and classified, and the run goes on: an upgrade
/// answered with 200 (a plain page), a handshake never answered, a malformed frame, and a
/// frame announcing 100 MB (refused by its header, never buffered).
#[test]
fn broken_servers_are_counted_and_classified() {
    fn upgrade_then(head: &str, frame: &[u8]) -> Answer {
        let key = head
            .lines()
            .find_map(|l| {
                l.strip_prefix("sec-websocket-key: ")
                    .or_else(|| l.strip_prefix("Sec-WebSocket-Key: "))
            })
            .unwrap_or("")
            .trim();
        let mut v = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
            stampede_target::ws::accept_key(key)
        )
        .into_bytes();
        v.extend_from_slice(frame);
        Answer::Reply(Box::leak(v.into_boxed_slice()))
    }
    let (plain, _) = start_hostile(|_, _| Answer::Reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"));
    let (silent, _) = start_hostile(|_, _| Answer::Silent);
    // Opcode 0x3 is reserved: a protocol error.
    let (malformed, _) = start_hostile(|_, head| upgrade_then(head, &[0x83, 0x01, b'x']));
    // A text frame whose 64-bit length says 100 MB.
    let (huge, log) = start_hostile(|_, head| {
        let mut f = vec![0x81, 127];
        f.extend_from_slice(&(100u64 << 20).to_be_bytes());
        upgrade_then(head, &f)
    });
    let d = tmp();
    let one = |name: &str, addr: std::net::SocketAddr| {
        format!("      - name: {name}\n        ws: ws://{addr}/x\n        timeout: 500ms\n        session: [ {{ send: hi, reply: {{ timeout: 300ms }} }} ]\n")
    };
    let plan = format!(
        "name: broken\nscenarios:\n  rt:\n    steps:\n{}{}{}{}phases:\n  - {{ name: p, scenario: rt, vus: 1, iterations: 2, max_duration: 30s }}\n",
        one("plain", plain),
        one("silent", silent),
        one("malformed", malformed),
        one("huge", huge)
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        step_named(&s, "plain:connect")["errors_by_kind"]["ws_handshake_200"],
        2,
        "{s}"
    );
    assert_eq!(step_named(&s, "plain")["ws"]["connect_failed"], 2);
    assert_eq!(step_named(&s, "silent:connect")["errors_by_kind"]["timeout"], 2, "{s}");
    let m = step_named(&s, "malformed");
    assert_eq!(m["errors_by_kind"]["protocol"], 2, "{m}");
    assert_eq!(m["ws"]["close_codes"]["1002"], 2, "{m}");
    let h = step_named(&s, "huge");
    assert_eq!(h["errors_by_kind"]["protocol"], 2, "{h}");
    assert_eq!(h["ws"]["close_codes"]["1009"], 2, "message too big: {h}");
    assert_eq!(log.connections.load(Ordering::SeqCst), 2);
    let classes = &s["phases"][0]["errors_by_class"];
    assert_eq!(
        classes["configuration"], 2,
        "the 200 is a configuration error: {classes}"
    );
}
