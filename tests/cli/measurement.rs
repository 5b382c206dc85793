//! Measurement honesty: exact counts, latency accuracy, coordinated omission, open-model rate.

use crate::*;

#[test]
fn request_counts_match_the_server_exactly() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: counts\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: fast, request: GET /fast }}\n      - {{ name: json, request: GET /json }}\nphases:\n  - {{ name: p, scenario: s, vus: 4, iterations: 300, max_duration: 20s }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let p = &s["phases"][0];
    assert_eq!(p["iterations"], 300);
    assert_eq!(p["requests"], 600);
    assert_eq!(srv.count("/fast"), 300);
    assert_eq!(srv.count("/json"), 300);
    assert_eq!(p["errors"], 0);
}

#[test]
fn latency_of_a_fixed_delay_endpoint_is_measured_accurately() {
    let srv = TestServer::start(false);
    let s = run_one_phase(&srv, "GET /delay/40", "vus: 3, duration: 2s", &[]);
    let l = &step0(&s)["latency_ms"];
    let (min, p50, p95) = (
        l["min"].as_f64().unwrap(),
        l["p50"].as_f64().unwrap(),
        l["p95"].as_f64().unwrap(),
    );
    assert!(min >= 40.0, "min {min} below the server's fixed delay");
    assert!((40.0..55.0).contains(&p50), "p50 {p50}");
    assert!(p95 < 80.0, "p95 {p95}");
    // 3 VUs back to back on a 40 ms endpoint for ~2 s: about 150 requests.
    let n = step0(&s)["requests"].as_u64().unwrap();
    assert!((110..=156).contains(&n), "{n} requests");
}

#[test]
fn coordinated_omission_a_frozen_server_shows_in_latency_not_only_service_time() {
    let srv = TestServer::start(false);
    // 50 arrivals/s, at most 5 VUs; the server freezes for 1 s in the middle. Arrivals during
    // the freeze wait for a VU, and that wait is latency (from the intended start).
    srv.freeze(
        std::time::Duration::from_millis(1300),
        std::time::Duration::from_secs(1),
    );
    let s = run_one_phase(&srv, "GET /fast", "rate: 50, max_vus: 5, duration: 4s", &[]);
    let st = step0(&s);
    let lat_p90 = st["latency_ms"]["p90"].as_f64().unwrap();
    let svc_p90 = st["service_ms"]["p90"].as_f64().unwrap();
    assert_eq!(st["requests"], 200, "every arrival is run: {st}");
    assert!(lat_p90 > 250.0, "latency p90 {lat_p90} hides the freeze");
    assert!(svc_p90 < 50.0, "service p90 {svc_p90}");
    assert!(st["latency_ms"]["max"].as_f64().unwrap() > 800.0);
}

#[test]
fn open_model_runs_the_exact_number_of_arrivals() {
    let srv = TestServer::start(false);
    let s = run_one_phase(
        &srv,
        "GET /fast",
        "rate: 200, max_vus: 50, duration: 3s",
        &["--workers", "2"],
    );
    assert_eq!(s["phases"][0]["requests"], 600);
    assert_eq!(s["phases"][0]["dropped_iterations"], 0);
    assert_eq!(srv.count("/fast"), 600);
    let rps = s["phases"][0]["rps"].as_f64().unwrap();
    assert!((185.0..=205.0).contains(&rps), "rps {rps}");
}

#[test]
fn ramping_vus_reach_the_stage_target_and_come_back() {
    let srv = TestServer::start(false);
    // The plateau lasts 2 s, so that at least one second's end (where VUs are sampled) falls on
    // it however late a loaded machine closes the seconds.
    let stages = "stages: [ { target: 6, duration: 1s }, { target: 6, duration: 2s }, { target: 0, duration: 1s } ]";
    let s = run_one_phase(&srv, "GET /delay/10", stages, &["--workers", "2"]);
    assert_eq!(s["phases"][0]["vus_max"], 6);
    let d = s["phases"][0]["duration_s"].as_f64().unwrap();
    assert!((3.9..5.0).contains(&d), "duration {d}");
}

/// Open model against a slow endpoint: the working set grows from one VU to what Little's law
/// asks (100/s × 50 ms ≈ 5), promptly enough that no arrival waits long for it.
#[test]
fn open_model_grows_the_working_set_for_a_slow_server() {
    let srv = TestServer::start(false);
    let s = run_one_phase(
        &srv,
        "GET /delay/50",
        "rate: 100, pre_vus: 1, max_vus: 30, duration: 2s",
        &["--workers", "1"],
    );
    let p = &s["phases"][0];
    assert_eq!(
        (p["requests"].as_u64(), p["dropped_iterations"].as_u64()),
        (Some(200), Some(0))
    );
    let p90 = p["latency_ms"]["p90"].as_f64().unwrap();
    assert!(
        p90 < 100.0,
        "latency p90 {p90} ms for a 50 ms endpoint: the pool grew too slowly"
    );
    let vus = p["vus_max"].as_u64().unwrap();
    assert!((4..=30).contains(&vus), "vus_max {vus}");
}

/// The first arrival is due the moment the phase starts, before any pre-started VU's task has
/// run: it must still be served then, not left for the next arrival (here there is none).
#[test]
fn open_model_serves_the_first_arrival_with_a_pre_started_vu() {
    let srv = TestServer::start(false);
    let s = run_one_phase(
        &srv,
        "GET /fast",
        "rate: 1, pre_vus: 1, max_vus: 1, duration: 1s",
        &["--workers", "1"],
    );
    let p = &s["phases"][0];
    assert_eq!(
        (p["requests"].as_u64(), p["dropped_iterations"].as_u64()),
        (Some(1), Some(0)),
        "{p}"
    );
}

/// Fewer VUs than workers: the arrivals go only to workers that have a VU, so none is dropped.
#[test]
fn open_model_with_fewer_vus_than_workers_runs_every_arrival() {
    let srv = TestServer::start(false);
    let s = run_one_phase(
        &srv,
        "GET /fast",
        "rate: 10, max_vus: 1, duration: 1s",
        &["--workers", "2"],
    );
    let p = &s["phases"][0];
    assert_eq!(
        (p["requests"].as_u64(), p["dropped_iterations"].as_u64()),
        (Some(10), Some(0)),
        "{p}"
    );
}

/// Runs one phase, `{ name: p, scenario: s, PHASE }`, whose one step sends `request` to `srv`,
/// with `extra` arguments; asserts a clean exit and returns the summary.
fn run_one_phase(srv: &TestServer, request: &str, phase: &str, extra: &[&str]) -> serde_json::Value {
    let d = tmp();
    let plan = format!(
        "name: m\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: f, request: {request} }}\nphases:\n  - {{ name: p, scenario: s, {phase} }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, extra);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    summary_json(&run)
}
