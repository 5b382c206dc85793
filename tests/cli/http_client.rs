//! The HTTP client's behaviour where an in-process server makes the case sharper than httpbin
//! can: redirect loops, the method and body after a 303 or a 307, credentials on a hop to
//! another origin, a compressed body larger than `max_body`, over HTTP/1.1 and HTTP/2 (h2c);
//! and the verdict rules for what thresholds leave unjudged.

use crate::*;

fn one_step_plan(url: &str, step: &str, http: &str, iterations: u32) -> String {
    format!(
        "name: client\ntarget: {url}\nhttp: {{ h2c: {h2c}{http} }}\nscenarios:\n  s:\n    steps:\n      - {step}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: {iterations}, max_duration: 20s }}\n",
        h2c = false,
    )
}

fn with_h2c(plan: String, h2: bool) -> String {
    plan.replacen("h2c: false", &format!("h2c: {h2}"), 1)
}

#[test]
fn a_redirect_loop_is_too_many_redirects_on_both_protocols() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let plan = with_h2c(
            one_step_plan(&srv.url(), "{ name: loop, request: GET /loop }", "", 2),
            h2,
        );
        let (out, run) = run_plan(d.path(), &plan, &[]);
        assert_eq!(out.status.code(), Some(0), "h2 {h2}: {}", text(&out));
        let s = summary_json(&run);
        let st = step0(&s);
        assert_eq!(st["errors_by_kind"]["too_many_redirects"], 2, "h2 {h2}: {st}");
        assert_eq!(srv.count("/loop"), 22, "the request and 10 redirects, twice (h2 {h2})");
        assert_eq!(st["redirects"], 20, "h2 {h2}: {st}");
    }
}

#[test]
fn see_other_turns_a_post_into_a_get_and_307_keeps_both() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let plan = format!(
            "name: m\ntarget: {url}\nhttp: {{ h2c: {h2} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: see, request: POST /see-other, body: hello, checks: [ {{ body_contains: landed }} ] }}\n      - {{ name: temp, request: POST /temporary, json: {{ a: 1 }}, checks: [ {{ status: 200 }} ] }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2, max_duration: 20s }}\n",
            url = srv.url()
        );
        let (out, run) = run_plan(d.path(), &plan, &[]);
        assert_eq!(out.status.code(), Some(0), "h2 {h2}: {}", text(&out));
        assert_eq!(
            srv.count("landing:GET:0"),
            2,
            "303: GET, no body (h2 {h2}): {:?}",
            srv.state.counts.lock().unwrap()
        );
        assert_eq!(srv.count("landing:POST:7"), 2, "307: POST with its body (h2 {h2})");
        let s = summary_json(&run);
        assert_eq!(s["phases"][0]["errors"], 0, "h2 {h2}");
    }
}

#[test]
fn a_hop_to_another_origin_uses_its_own_session_without_the_credentials() {
    let a = TestServer::start(false);
    let b = TestServer::start(false);
    let d = tmp();
    let step = format!(
        "{{ name: away, request: \"GET /away?to={}/landing\", auth: {{ bearer: t0ken }}, checks: [ {{ body_contains: landed }} ] }}",
        b.url()
    );
    let (out, run) = run_plan(d.path(), &one_step_plan(&a.url(), &step, "", 3), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(a.count("auth:/away"), 3, "the step's own origin gets its credentials");
    assert_eq!(b.count("landing:GET:0"), 3, "the hop reached the other origin");
    assert_eq!(b.count("auth:/landing"), 0, "no Authorization across origins");
    let s = summary_json(&run);
    assert_eq!(step0(&s)["redirects"], 3, "{}", step0(&s));
}

#[test]
fn cookies_and_http_debug_on_both_protocols() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let plan = format!(
            "name: c\ntarget: {url}\nhttp: {{ h2c: {h2} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: set, request: GET /cookie/set }}\n      - {{ name: get, request: GET /cookie/get, checks: [ {{ body_contains: k=v }}, {{ body_contains: s=1 }} ] }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2, max_duration: 20s }}\n",
            url = srv.url()
        );
        let (out, run) = run_plan(d.path(), &plan, &["--http-debug"]);
        assert_eq!(out.status.code(), Some(0), "h2 {h2}: {}", text(&out));
        let s = summary_json(&run);
        // The Secure cookie goes too: loopback counts as secure, as browsers count it.
        assert_eq!(s["phases"][0]["errors"], 0, "h2 {h2}: {s}");
        let err = String::from_utf8_lossy(&out.stderr);
        let version = if h2 { "HTTP/2" } else { "HTTP/1.1" };
        assert!(
            err.contains(&format!(
                "> GET {}/cookie/get {version}",
                if h2 { srv.url() } else { String::new() }
            )),
            "h2 {h2}: {err}"
        );
        // Both cookies, masked, in the order the jar keeps them.
        let sent = err.lines().find(|l| l.starts_with("> cookie: ")).unwrap_or_default();
        assert!(sent.contains("k=***") && sent.contains("s=***"), "h2 {h2}: {err}");
        assert!(
            err.to_ascii_lowercase().contains("< set-cookie: k=***; path=/"),
            "h2 {h2}: {err}"
        );
        assert!(
            err.contains("(--http-debug=full shows it)"),
            "heads only without =full (h2 {h2}): {err}"
        );
    }
}

#[test]
fn zstd_bodies_are_decoded_on_both_protocols() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let step = "{ name: z, request: GET /zstd, checks: [ { json: { path: \"$.coding\", equals: zstd } } ] }";
        let (out, run) = run_plan(d.path(), &with_h2c(one_step_plan(&srv.url(), step, "", 2), h2), &[]);
        assert_eq!(out.status.code(), Some(0), "h2 {h2}: {}", text(&out));
        let s = summary_json(&run);
        assert_eq!(step0(&s)["errors"], 0, "h2 {h2}: {}", step0(&s));
    }
}

#[test]
fn a_compressed_body_larger_than_max_body_is_decoded_up_to_it() {
    for h2 in [false, true] {
        let srv = TestServer::start(h2);
        let d = tmp();
        let step = "{ name: big, request: GET /gzip/200000, checks: [ { body_contains: \"BEGIN:\" }, { body_not_contains: \"nothing like this\" } ] }";
        let plan = with_h2c(one_step_plan(&srv.url(), step, ", max_body: 4KiB", 2), h2);
        let (out, run) = run_plan(d.path(), &plan, &[]);
        assert_eq!(out.status.code(), Some(0), "h2 {h2}: {}", text(&out));
        let s = summary_json(&run);
        let st = step0(&s);
        assert_eq!(st["errors"], 0, "h2 {h2}: {st}");
        let wire = st["bytes_in"].as_u64().unwrap();
        assert!(wire > 2 * 100_000, "bytes_in stays the bytes received (h2 {h2}): {st}");
        let decoded = st["bytes_decoded"].as_u64().unwrap();
        assert!(
            decoded >= 2 * 4096,
            "the kept bytes decode to at least max_body each (h2 {h2}): {st}"
        );
    }
}

#[test]
fn no_thresholds_and_most_requests_failing_is_not_a_pass() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (out, run) = run_plan(
        d.path(),
        &one_step_plan(&srv.url(), "{ name: bad, request: GET /status/503 }", "", 5),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "a condition, not a failure: {}", text(&out));
    let s = summary_json(&run);
    assert_eq!(s["verdict"], "passed_with_conditions", "{s}");
    let why = s["conditions"].to_string();
    assert!(
        why.contains("100.0% of requests failed and the plan has no thresholds"),
        "{why}"
    );
}

#[test]
fn a_threshold_with_no_data_to_judge_is_a_condition() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: nodata\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: ok, request: GET /fast }}\n  unused:\n    steps:\n      - {{ name: never, request: GET /fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 3, max_duration: 10s }}\nthresholds:\n  - {{ step: never, check: p95 < 1s }}\n  - p95 < 5s\n",
        url = srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(s["verdict"], "passed_with_conditions", "{s}");
    let why = s["conditions"].to_string();
    assert!(
        why.contains("threshold `p95 < 1s` (step never) had no data to judge"),
        "{why}"
    );
    assert!(!why.contains("`p95 < 5s`"), "a threshold with data is judged: {why}");
}

#[test]
fn an_empty_plan_is_refused_at_validate() {
    let d = tmp();
    for (name, src) in [
        ("empty.yaml", ""),
        ("comments.yaml", "# a plan, one day\n\n# nothing yet\n"),
    ] {
        let p = write(d.path(), name, src);
        let out = stampede(&["validate", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("{name}:1:1: the plan is empty")), "{err}");
    }
}

#[test]
fn each_connection_to_a_name_resolves_it_once_and_the_time_is_reported_apart() {
    let srv = TestServer::start(false);
    let port = srv.url().rsplit(':').next().unwrap().to_string();
    let d = tmp();
    // Three VUs, one connection each (kept alive over their iterations), to `localhost`; a step
    // to the IP literal resolves nothing.
    let plan = format!(
        "name: dns\ntarget: http://localhost:{port}\nscenarios:\n  s:\n    steps:\n      - {{ name: by-name, request: GET /fast }}\n      - {{ name: by-ip, request: GET http://127.0.0.1:{port}/fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 3, iterations: 9, max_duration: 20s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    let by_name = steps.iter().find(|x| x["name"] == "by-name").unwrap();
    let by_ip = steps.iter().find(|x| x["name"] == "by-ip").unwrap();
    println!("dns: {}", by_name["dns"]);
    assert_eq!(by_name["requests"], 9, "{s}");
    assert_eq!(by_name["dns"]["connections"], 3, "{s}");
    // The check before the run looked the name up; the connects are answered by the cache.
    assert_eq!(by_name["dns"]["lookups"], 0, "{s}");
    let avg = by_name["dns"]["avg_ms"].as_f64().unwrap();
    assert!((0.0..1000.0).contains(&avg), "{s}");
    assert!(by_ip.get("dns").is_none(), "{s}");
    let human = stampede(&["summary", run.to_str().unwrap()]);
    let h = String::from_utf8_lossy(&human.stdout);
    assert!(
        h.contains("by-name: DNS: ") && h.contains("(3 connections, 0 lookups"),
        "{h}"
    );
}
