//! Bad input exits 2 with a location and writes nothing; a misbehaving target is data.

use crate::*;

/// Runs a broken plan; asserts exit 2, the `plan.yaml:LINE:COL` prefix, a hint or message
/// fragment, and that no run directory was written.
fn rejects(plan: &str, location: &str, fragment: &str) {
    let d = tmp();
    let (out, run) = run_plan(d.path(), plan, &[]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        err.contains(&format!("plan.yaml:{location}")),
        "want location {location}: {err}"
    );
    assert!(err.contains(fragment), "want `{fragment}`: {err}");
    assert!(!run.exists(), "a run directory was written for a bad plan");
    assert!(!err.contains("panicked"), "{err}");
    // validate agrees.
    let v = stampede(&["validate", d.path().join("plan.yaml").to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(2));
}

const HEAD: &str =
    "name: bad\ntarget: http://127.0.0.1:9\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET /a }\n";

#[test]
fn broken_yaml() {
    rejects(&format!("{HEAD}phases: [ {{ name: p, scenario: s\n"), "", "");
}

#[test]
fn unknown_key_with_did_you_mean() {
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duraton: 1s }}\n"),
        "8:",
        "duration",
    );
}

#[test]
fn bad_duration() {
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 5 parsecs }}\n"),
        "8:",
        "duration",
    );
}

#[test]
fn bad_method() {
    rejects(
        "name: bad\ntarget: http://127.0.0.1:9\nscenarios:\n  s:\n    steps:\n      - { name: a, request: FETCH /a }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n",
        "6:",
        "FETCH",
    );
}

#[test]
fn undefined_scenario() {
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: t, vus: 1, duration: 1s }}\n"),
        "8:",
        "t",
    );
}

#[test]
fn undefined_variable() {
    rejects(
        "name: bad\ntarget: http://127.0.0.1:9\nscenarios:\n  s:\n    steps:\n      - { name: a, request: \"GET /a/{{ nope }}\" }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n",
        "6:",
        "nope",
    );
}

#[test]
fn impossible_numbers() {
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 0, duration: 1s }}\n"),
        "8:",
        "vus",
    );
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, rate: -5, max_vus: 2, duration: 1s }}\n"),
        "8:",
        "rate",
    );
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 50000000, duration: 1s }}\n"),
        "8:",
        "vus",
    );
}

#[test]
fn bad_threshold() {
    rejects(
        &format!(
            "{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\nthresholds:\n  - p95 < 500 parsecs\n"
        ),
        "10:",
        "",
    );
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let mut plan = String::from("a: &a [\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\",\"x\"]\n");
    for i in 1..12 {
        let prev = (b'a' + i - 1) as char;
        let cur = (b'a' + i) as char;
        plan.push_str(&format!(
            "{cur}: &{cur} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    let t = std::time::Instant::now();
    let d = tmp();
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(t.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn a_plan_without_phases_cannot_run() {
    let d = tmp();
    let (out, run) = run_plan(d.path(), HEAD, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no `phases`"));
    assert!(!run.exists());
}

#[test]
fn bad_arguments_exit_2() {
    assert_eq!(stampede(&["run"]).status.code(), Some(2));
    assert_eq!(stampede(&["run", "/nonexistent/plan.yaml"]).status.code(), Some(2));
    assert_eq!(stampede(&["summary", "/nonexistent/run"]).status.code(), Some(2));
    assert_eq!(stampede(&["frobnicate"]).status.code(), Some(2));
    let d = tmp();
    let p = write(
        d.path(),
        "plan.yaml",
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\n"),
    );
    assert_eq!(
        stampede(&["run", p.to_str().unwrap(), "--var", "novalue"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        stampede(&["run", p.to_str().unwrap(), "--segment", "3/2"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn misbehaving_targets_are_counted_and_classified() {
    let srv = TestServer::start(false);
    let reset = start_bad("reset");
    let malformed = start_bad("malformed");
    let refused = closed_port();
    let d = tmp();
    let plan = format!(
        "name: bad-target\ntarget: {url}\nhttp: {{ max_body: 64KiB }}\nscenarios:\n  s:\n    steps:\n      - {{ name: refused, request: GET http://{refused}/x }}\n      - {{ name: reset, request: GET http://{reset}/x }}\n      - {{ name: malformed, request: GET http://{malformed}/x }}\n      - {{ name: slow, request: GET /delay/2000, timeout: 100ms }}\n      - {{ name: huge, request: GET /bytes/20000000 }}\n      - {{ name: missing, request: GET /nope }}\n      - {{ name: ok, request: GET /fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 6, max_duration: 20s }}\n",
        url = srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    let kind = |name: &str| -> serde_json::Value {
        steps.iter().find(|s| s["name"] == name).unwrap()["errors_by_kind"].clone()
    };
    assert_eq!(kind("refused")["connect_refused"], 6, "{s}");
    assert_eq!(kind("reset")["reset"], 6);
    assert_eq!(kind("malformed")["protocol"], 6);
    assert_eq!(kind("slow")["timeout"], 6);
    assert_eq!(kind("missing")["status_404"], 6);
    let huge = steps.iter().find(|s| s["name"] == "huge").unwrap();
    assert_eq!(huge["errors"], 0);
    assert_eq!(huge["bytes_in"], 6 * 20_000_000u64);
    let ok = steps.iter().find(|s| s["name"] == "ok").unwrap();
    assert_eq!(ok["requests"], 6);
    assert_eq!(ok["errors"], 0);
    // Each error kind comes with what actually happened, in words.
    let sample = |name: &str| -> String {
        steps.iter().find(|s| s["name"] == name).unwrap()["error_samples"][0]
            .as_str()
            .unwrap_or("")
            .to_string()
    };
    assert!(sample("refused").starts_with("connection refused by 127.0.0.1:"), "{s}");
    assert_eq!(sample("slow"), "no complete response within 100 ms");
    assert_eq!(sample("missing"), "HTTP 404: not found");
    assert_eq!(sample("reset"), "connection closed before the response was complete");
    assert_eq!(sample("ok"), "");
    let classes = &s["phases"][0]["errors_by_class"];
    assert_eq!(classes["configuration"], 12, "refused and 404: {classes}");
    assert_eq!(classes["load"], 12, "reset and timeout: {classes}");
}

#[test]
fn non_finite_numbers_are_refused_before_the_run() {
    // `rate: NaN` loaded, then the executor panicked converting NaN seconds to a Duration.
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, rate: NaN, max_vus: 2, duration: 1s }}\n"),
        "8:35:",
        "finite",
    );
    // `rps >= NaN` loaded and was written to meta.json as `"value": null`.
    rejects(
        &format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\nthresholds:\n  - rps >= NaN\n"),
        "10:5:",
        "finite",
    );
    let d = tmp();
    let plan = write(d.path(), "plan.yaml", HEAD);
    let out = stampede(&[
        "capacity",
        plan.to_str().unwrap(),
        "--scenario",
        "s",
        "--slo",
        "p95 < 1s, rps >= inf",
        "--out",
        d.path().join("run").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--slo: rps takes a finite number"), "{err}");
    assert!(!d.path().join("run").exists());
}

#[test]
fn header_values_that_would_split_the_request_are_refused_at_load() {
    let plan = "name: bad\ntarget: http://127.0.0.1:9\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET /a, headers: { Authorization: \"Bearer {{ tok }}\" } }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n";
    let d = tmp();
    let (out, run) = run_plan(d.path(), plan, &["--var", "tok=x\r\nX-Injected: 1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plan.yaml:6:63: header Authorization: the value contains a line break"),
        "{err}"
    );
    assert!(!run.exists());
    // The same from the environment.
    let p = write(d.path(), "env.yaml", &plan.replace("{{ tok }}", "${TOK}"));
    let v = bin()
        .args(["validate", p.to_str().unwrap()])
        .env("TOK", "x\ny")
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    let err = String::from_utf8_lossy(&v.stderr);
    assert!(
        err.contains("env.yaml:6:63: header Authorization: the value contains a line break (LF)"),
        "{err}"
    );
}

/// A header rendered from a capture that holds CR LF fails its request as `invalid_header`:
/// nothing is sent, neither the injected header nor a request without its `Host`.
#[test]
fn rendered_header_values_with_line_breaks_are_not_sent() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let plan = format!(
            "name: inject\ntarget: {url}\nhttp: {{ h2c: {h2} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: cap, request: POST /echo, json: {{ v: \"a\\r\\nX-Injected: 1\" }}, capture: {{ v: {{ json: \"$.v\" }} }} }}\n      - {{ name: host, request: GET /fast, headers: {{ Host: \"{{{{ v }}}}\" }} }}\n      - {{ name: other, request: GET /delay/0, headers: {{ X-Val: \"{{{{ v }}}}\" }} }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 3 }}\n",
            url = srv.url()
        );
        let (out, run) = run_plan(d.path(), &plan, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let s = summary_json(&run);
        let steps = &s["phases"][0]["steps"];
        for i in [1, 2] {
            assert_eq!(steps[i]["errors_by_kind"]["invalid_header"], 3, "h2 {h2}: {s}");
            assert_eq!(steps[i]["errors"], 3, "h2 {h2}: {s}");
            let sample = steps[i]["error_samples"][0].as_str().unwrap_or("");
            assert!(sample.contains("line break"), "{sample}");
        }
        assert_eq!(s["phases"][0]["errors_by_class"]["configuration"], 6, "{s}");
        assert_eq!(
            (srv.count("/fast"), srv.count("/delay/0")),
            (0, 0),
            "h2 {h2}: sent anyway"
        );
        let seen = srv.state.headers_seen.lock().unwrap();
        assert!(seen.iter().all(|(k, _)| k != "x-injected" && k != "x-val"), "{seen:?}");
    }
}

#[test]
fn endless_plan_files_are_cut_off_at_the_limit() {
    let t = std::time::Instant::now();
    let out = stampede(&["validate", "/dev/zero"]);
    assert!(t.elapsed() < std::time::Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/dev/zero:1:1: the plan is over 4194304 bytes; plans are limited to 4194304 bytes"),
        "{err}"
    );
}
