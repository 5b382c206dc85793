//! Plan features end to end: templates, captures, checks, signing, data feeders, weighted
//! mixes, think time, HTTP/2 (h2c), variables from the environment and `--var`.

use crate::*;

#[test]
fn captures_feed_later_steps_and_checks_are_classified() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        r#"name: flow
target: {url}
vars: {{ tenant: acme }}
scenarios:
  s:
    steps:
      - name: get
        request: GET /json
        checks:
          - status: 200
          - json: {{ path: "$.name", equals: ada }}
          - header: {{ name: content-type, contains: json }}
        capture:
          id: {{ json: "$.id" }}
          tag: {{ header: ETag }}
      - name: item
        request: "GET /items/{{{{ id }}}}"
        headers: {{ X-Tag: "{{{{ tag }}}}", X-Tenant: "{{{{ tenant }}}}", X-Vu: "{{{{ vu }}}}" }}
      - name: wrong
        request: GET /json
        checks:
          - {{ name: name-is-bob, json: {{ path: "$.name", equals: bob }} }}
phases:
  - {{ name: p, scenario: s, vus: 1, iterations: 5, max_duration: 10s }}
"#,
        url = srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        srv.count("/items/42"),
        5,
        "capture not used: {:?}",
        srv.state.counts.lock().unwrap()
    );
    let seen = srv.state.headers_seen.lock().unwrap().clone();
    assert!(seen.contains(&("x-tag".into(), "\"abc\"".into())));
    assert!(seen.contains(&("x-tenant".into(), "acme".into())));
    assert!(seen.contains(&("x-vu".into(), "1".into())));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["errors"], 0, "{}", steps[0]);
    assert_eq!(steps[2]["errors_by_kind"]["check:name-is-bob"], 5);
    assert_eq!(s["phases"][0]["errors_by_class"]["check"], 5);
}

#[test]
fn json_bodies_are_templated_and_signed() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        r#"name: sign
target: {url}
scenarios:
  s:
    steps:
      - name: hook
        request: POST /echo
        json: {{ company_id: "{{{{ company }}}}", n: 3, quote: "a\"b" }}
        sign: {{ secret: "${{HOOK_SECRET}}", header: X-Signature, encoding: hex, prefix: "sha256=" }}
        checks:
          - body_contains: '"company_id":"7"'
          - body_contains: '"n":3'
phases:
  - {{ name: p, scenario: s, vus: 1, iterations: 2, max_duration: 10s }}
"#,
        url = srv.url()
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let out_dir = d.path().join("run");
    let out = bin()
        .env("HOOK_SECRET", "s3cr3t-value")
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
            "--quiet",
            "--var",
            "company=7",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out_dir);
    assert_eq!(s["phases"][0]["errors"], 0, "{s}");
    // The server saw a valid HMAC-SHA256 of the exact body.
    let seen = srv.state.headers_seen.lock().unwrap().clone();
    let sig = seen
        .iter()
        .find(|(k, _)| k == "x-signature")
        .expect("signature header")
        .1
        .clone();
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
    // The secret from the environment is not in the run directory.
    for f in ["plan.json", "meta.json", "intervals.jsonl", "summary.json"] {
        let t = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert!(!t.contains("s3cr3t-value"), "secret leaked into {f}");
    }
}

#[test]
fn csv_feeder_rows_reach_the_requests() {
    let srv = TestServer::start(false);
    let d = tmp();
    write(d.path(), "users.csv", "id,name\n11,ann\n12,bo\n13,cy\n");
    let plan = format!(
        "name: feed\ntarget: {}\ndata:\n  users: {{ file: users.csv, mode: sequential }}\nscenarios:\n  s:\n    steps:\n      - {{ name: u, request: \"GET /items/{{{{ users.id }}}}\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 6, max_duration: 10s }}\n",
        srv.url()
    );
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    for id in [11, 12, 13] {
        assert_eq!(
            srv.count(&format!("/items/{id}")),
            2,
            "{:?}",
            srv.state.counts.lock().unwrap()
        );
    }
}

/// Columns read from one feeder in one iteration come from one row, however many feeders the
/// plan has (the row cache held 16; beyond that, `a` and `b` came from different rows).
#[test]
fn columns_of_one_feeder_stay_together_beyond_sixteen_feeders() {
    let srv = TestServer::start(false);
    let d = tmp();
    let rows: String = (1..=9).map(|i| format!("{i},{i}\n")).collect();
    let mut data = String::new();
    let mut headers = String::new();
    // Feeders are numbered in name order: d00..d16 take 0..16, `pair` is the 18th.
    for name in (0..17).map(|f| format!("d{f:02}")).chain(["pair".to_string()]) {
        write(d.path(), &format!("{name}.csv"), &format!("a,b\n{rows}"));
        data.push_str(&format!("  {name}: {{ file: {name}.csv, mode: random }}\n"));
        headers.push_str(&format!("X-{name}: \"{{{{ {name}.a }}}}\", "));
    }
    let plan = format!(
        "name: feeds\ntarget: {}\ndata:\n{data}scenarios:\n  s:\n    steps:\n      - {{ name: u, request: \"GET /pair/{{{{ pair.a }}}}/{{{{ pair.b }}}}\", headers: {{ {headers} }} }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 60, max_duration: 10s }}\n",
        srv.url()
    );
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let counts = srv.state.counts.lock().unwrap();
    let pairs: u64 = (1..=9)
        .map(|i| counts.get(&format!("/pair/{i}/{i}")).copied().unwrap_or(0))
        .sum();
    assert_eq!(pairs, 60, "{counts:?}");
}

#[test]
fn weighted_mix_follows_the_weights() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: mix\ntarget: {}\nscenarios:\n  heavy:\n    steps:\n      - {{ name: h, request: GET /fast }}\n  light:\n    steps:\n      - {{ name: l, request: GET /json }}\nphases:\n  - name: p\n    scenarios: [ {{ name: heavy, weight: 3 }}, {{ name: light, weight: 1 }} ]\n    vus: 2\n    iterations: 2000\n    max_duration: 20s\n",
        srv.url()
    );
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let (h, l) = (srv.count("/fast") as f64, srv.count("/json") as f64);
    assert_eq!(h + l, 2000.0);
    assert!((2.6..3.4).contains(&(h / l)), "ratio {}", h / l);
}

#[test]
fn think_time_paces_a_closed_vu() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: think\ntarget: {}\nscenarios:\n  s:\n    think: 200ms\n    steps:\n      - {{ name: f, request: GET /fast }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, duration: 2s }}\n",
        srv.url()
    );
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // 2 VUs, one request per ~200 ms each, for 2 s: about 20.
    let n = srv.count("/fast");
    assert!((16..=24).contains(&n), "{n}");
}

#[test]
fn h2c_speaks_http2_with_prior_knowledge() {
    let srv = TestServer::start(true);
    let d = tmp();
    let plan = format!(
        "name: h2\ntarget: {}\nhttp: {{ h2c: true }}\nscenarios:\n  s:\n    steps:\n      - {{ name: j, request: GET /json, checks: [ {{ json: {{ path: \"$.id\", equals: 42 }} }} ] }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 50, max_duration: 10s }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(s["phases"][0]["requests"], 50);
    assert_eq!(s["phases"][0]["errors"], 0, "{s}");
    assert_eq!(srv.count("/json"), 50);
}

#[test]
fn query_values_are_url_encoded_and_bad_rendered_paths_are_counted() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = format!(
        "name: q\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: q, request: GET /echo, query: {{ q: \"a b&c\" }} }}\n      - {{ name: cap, request: GET /json, capture: {{ name: {{ json: \"$.name\" }} }} }}\n      - {{ name: bad, request: \"GET /items/{{{{ name }}}} x\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2 }}\n",
        srv.url()
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    // A literal space in a path is refused when the plan loads…
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let plan = plan.replace("}} x\"", "}}\"").replace("/json", "/json?x=1");
    let d = tmp();
    let (out, run2) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run2);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["errors"], 0);
    assert_eq!(srv.count("/echo"), 2);
    assert_eq!(srv.count("/items/ada"), 2);
    assert!(!run.exists());

    // …and a captured value that puts a space in the path is counted as invalid_request.
    let plan = format!(
        "name: q2\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: cap, request: POST /echo, json: {{ v: \"a b\" }}, capture: {{ v: {{ json: \"$.v\" }} }} }}\n      - {{ name: bad, request: \"GET /items/{{{{ v }}}}\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 3 }}\n",
        srv.url()
    );
    let d = tmp();
    let (out, run3) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run3);
    assert_eq!(
        s["phases"][0]["steps"][1]["errors_by_kind"]["invalid_request"], 3,
        "{s}"
    );
}
