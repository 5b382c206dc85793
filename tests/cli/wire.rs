//! HTTP/1.1 on the wire: stampede's own client against a hand-written server whose responses
//! vary framing the way real servers do, and which closes idle keep-alive connections.

use std::sync::atomic::Ordering;

use crate::*;

#[test]
fn response_framing_and_connection_reuse_follow_http_1_1() {
    let (addr, log) = start_wire();
    let d = tmp();
    let plan = format!(
        r#"name: wire
target: http://{addr}
scenarios:
  s:
    think: 300ms
    steps:
      - {{ name: eof, request: GET /eof, checks: [{{ body_contains: until-close }}] }}
      - {{ name: close, request: GET /close }}
      - {{ name: interim, request: GET /interim, checks: [{{ body_contains: ok }}] }}
      - {{ name: chunked, request: GET /chunked, checks: [{{ body_contains: hello world }}] }}
      - {{ name: head, request: HEAD /head }}
      - name: header
        request: GET /header
        checks: [{{ header: {{ name: x-token, equals: tok-7 }} }}]
        capture: {{ token: {{ header: X-Token }} }}
      - {{ name: echo, request: "GET /echo/{{{{ token }}}}" }}
phases:
  - {{ name: p, scenario: s, vus: 1, iterations: 3, max_duration: 20s }}
"#
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    let step = |name: &str| steps.iter().find(|s| s["name"] == name).unwrap().clone();
    for name in ["eof", "close", "interim", "chunked", "head", "header", "echo"] {
        let st = step(name);
        assert_eq!(
            (st["requests"].as_u64(), st["errors"].as_u64()),
            (Some(3), Some(0)),
            "{name}: {st}"
        );
    }
    // Body bytes as decoded: chunk framing and the HEAD response's Content-Length not counted.
    assert_eq!(step("chunked")["bytes_in"], 3 * 11);
    assert_eq!(step("eof")["bytes_in"], 3 * 11);
    assert_eq!(step("head")["bytes_in"], 0);
    let requests = log.requests.lock().unwrap().clone();
    assert_eq!(
        requests.iter().filter(|r| *r == "GET /echo/tok-7 HTTP/1.1").count(),
        3,
        "{requests:?}"
    );
    assert_eq!(requests.iter().filter(|r| *r == "HEAD /head HTTP/1.1").count(), 3);
    // Per iteration: one connection ended by /eof, one by /close, and one carrying the other
    // five requests. The server closed that one while the VU thought; it was not reused.
    assert_eq!(log.connections.load(Ordering::SeqCst), 9, "{requests:?}");
}

/// Open model: an arrival goes to the VU that was idle last, so a pool of 40 that one VU can
/// serve keeps one warm connection. (Waking idle VUs first-in-first-out rotated through all 40;
/// as this server closes a connection idle for 100 ms and each VU's turn came every 400 ms,
/// that made a connection per arrival: 100 here.)
#[test]
fn open_model_reuses_the_warm_vu() {
    let (addr, log) = start_wire();
    let d = tmp();
    let plan = format!(
        "name: lifo\ntarget: http://{addr}\nscenarios:\n  s:\n    steps:\n      - {{ name: f, request: GET /f }}\nphases:\n  - {{ name: p, scenario: s, rate: 100, pre_vus: 40, max_vus: 40, duration: 1s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &["--workers", "1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        (s["phases"][0]["requests"].as_u64(), s["phases"][0]["errors"].as_u64()),
        (Some(100), Some(0))
    );
    let connections = log.connections.load(Ordering::SeqCst);
    assert!(
        connections <= 10,
        "{connections} connections for 100 arrivals 10 ms apart"
    );
}
