//! HTTP as real sites need it, against httpbin (a server nobody here wrote) under gunicorn on
//! loopback, started by `scripts/test-services.sh` (`STAMPEDE_TEST_HTTPBIN_URL`): compressed
//! bodies, redirects, cookies, authentication, forms and uploads, `--http-debug`.

use serde_json::Value;

use crate::*;

fn httpbin() -> String {
    env_url("STAMPEDE_TEST_HTTPBIN_URL")
}

/// A plan of one scenario `s` with these steps (YAML, indented as list items under `steps:`),
/// run by one VU for `iterations`.
fn plan(steps: &str, http: &str, iterations: u32) -> String {
    format!(
        "name: httpbin\ntarget: {url}\n{http}scenarios:\n  s:\n    steps:\n{steps}phases:\n  - {{ name: p, scenario: s, vus: 1, iterations: {iterations}, max_duration: 20s }}\n",
        url = httpbin()
    )
}

fn steps(s: &Value) -> &Vec<Value> {
    s["phases"][0]["steps"].as_array().expect("steps")
}

/// Every step of the run had no error; returns the summary.
fn run_clean(d: &std::path::Path, plan: &str, extra: &[&str]) -> Value {
    let (out, run) = run_plan(d, plan, extra);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    for st in steps(&s) {
        assert_eq!(st["errors"], 0, "{st}");
    }
    s
}

#[test]
fn gzip_deflate_and_brotli_bodies_are_checked_by_json_path() {
    let d = tmp();
    let s = run_clean(
        d.path(),
        &plan(
            r#"      - { name: gzip, request: GET /gzip, checks: [ { json: { path: "$.gzipped", equals: true } } ] }
      - { name: deflate, request: GET /deflate, checks: [ { json: { path: "$.deflated", equals: true } } ] }
      - { name: brotli, request: GET /brotli, checks: [ { json: { path: "$.brotli", equals: true } } ] }
      - { name: plain, request: GET /get, checks: [ { json: { path: "$.headers.Accept-Encoding", equals: "gzip, deflate, br, zstd" } } ] }
      - { name: own, request: GET /get, headers: { Accept-Encoding: identity }, checks: [ { json: { path: "$.headers.Accept-Encoding", equals: identity } } ] }
"#,
            "",
            3,
        ),
        &[],
    );
    for st in &steps(&s)[..3] {
        let (wire, decoded) = (st["bytes_in"].as_u64().unwrap(), st["bytes_decoded"].as_u64().unwrap());
        assert!(
            wire > 0 && decoded > wire,
            "the decoded size is beside the size received: {st}"
        );
    }
    let plain = &steps(&s)[3];
    assert_eq!(plain["bytes_decoded"], plain["bytes_in"], "{plain}");
}

#[test]
fn redirect_chains_reach_their_end_and_count_their_hops() {
    let d = tmp();
    let s = run_clean(
        d.path(),
        &plan(
            r#"      - { name: three, request: GET /redirect/3, checks: [ { status: 200 }, { json: { path: "$.url", exists: true } } ] }
      - { name: relative, request: GET /relative-redirect/2, checks: [ { status: 200 } ] }
      - { name: off, request: GET /redirect/1, follow_redirects: 0, expect: [302], checks: [ { status: 302 } ] }
"#,
            "",
            2,
        ),
        &[],
    );
    let st = steps(&s);
    assert_eq!(st[0]["redirects"], 6, "3 hops per request: {}", st[0]);
    assert_eq!(st[0]["requests"], 2, "a chain is one request of the step: {}", st[0]);
    assert_eq!(st[1]["redirects"], 4, "{}", st[1]);
    assert_eq!(st[2]["redirects"], 0, "{}", st[2]);
}

#[test]
fn a_chain_longer_than_allowed_is_too_many_redirects() {
    let d = tmp();
    let (out, run) = run_plan(
        d.path(),
        &plan(
            "      - { name: long, request: GET /redirect/3 }\n",
            "http: { follow_redirects: 2 }\n",
            2,
        ),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        steps(&s)[0]["errors_by_kind"]["too_many_redirects"],
        2,
        "{}",
        steps(&s)[0]
    );
    assert_eq!(s["phases"][0]["errors_by_class"]["configuration"], 2);
}

/// Step 1 reads the jar as the server sees it at the start of the iteration; step 2 sets a
/// cookie through a redirect to `/cookies`; step 3 uses it in a template.
const COOKIE_STEPS: &str = r#"      - { name: before, request: GET /cookies, checks: [ { json: { path: "$.cookies.flavor", equals: oat } } ] }
      - { name: set, request: "GET /cookies/set?flavor=oat", checks: [ { json: { path: "$.cookies.flavor", equals: oat } } ] }
      - { name: template, request: "GET /anything?c={{ cookie(\"flavor\") }}", checks: [ { json: { path: "$.args.c", equals: oat } } ] }
"#;

#[test]
fn cookies_set_are_sent_and_cleared_at_each_iteration() {
    let d = tmp();
    let (out, run) = run_plan(d.path(), &plan(COOKIE_STEPS, "", 3), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let st = steps(&s);
    assert_eq!(
        st[0]["errors"], 3,
        "every iteration starts with an empty jar: {}",
        st[0]
    );
    assert_eq!(st[1]["errors"], 0, "/cookies returns what /cookies/set set: {}", st[1]);
    assert_eq!(st[1]["redirects"], 3, "{}", st[1]);
    assert_eq!(st[2]["errors"], 0, "{{ cookie(\"flavor\") }}: {}", st[2]);
}

#[test]
fn cookies_keep_carries_the_jar_over_and_off_has_none() {
    let d = tmp();
    let (_, run) = run_plan(d.path(), &plan(COOKIE_STEPS, "http: { cookies: keep }\n", 3), &[]);
    let s = summary_json(&run);
    assert_eq!(
        steps(&s)[0]["errors"],
        1,
        "only the first iteration has no cookie: {}",
        steps(&s)[0]
    );
    let d = tmp();
    let (_, run) = run_plan(d.path(), &plan(COOKIE_STEPS, "http: { cookies: off }\n", 2), &[]);
    let s = summary_json(&run);
    for st in steps(&s) {
        assert_eq!(st["errors"], 2, "no jar: {st}");
    }
}

#[test]
fn basic_and_bearer_auth_pass() {
    let d = tmp();
    run_clean(
        d.path(),
        &plan(
            r#"      - { name: basic, request: GET /basic-auth/u/p, auth: { basic: [u, p] }, checks: [ { json: { path: "$.authenticated", equals: true } } ] }
      - { name: templated, request: "GET /basic-auth/u1/p{{ iteration }}", auth: { basic: ["u{{ vu }}", "p{{ iteration }}"] } }
      - { name: bearer, request: GET /bearer, auth: { bearer: "tok-{{ vu }}" }, checks: [ { json: { path: "$.token", equals: "tok-1" } } ] }
"#,
            "",
            2,
        ),
        &[],
    );
}

#[test]
fn form_and_multipart_fields_and_files_arrive() {
    let d = tmp();
    write(d.path(), "notes.txt", "file body\nline two\n");
    std::fs::write(d.path().join("pixel.png"), [0x89, b'P', b'N', b'G', 0, 1, 2, 3]).unwrap();
    run_clean(
        d.path(),
        &plan(
            r#"      - name: form
        request: POST /post
        form: { name: ada, note: "a b&c {{ vu }}" }
        checks:
          - json: { path: "$.form.note", equals: "a b&c 1" }
          - json: { path: "$.headers.Content-Type", equals: application/x-www-form-urlencoded }
      - name: upload
        request: POST /post
        multipart:
          title: "report {{ iteration }}"
          notes: { file: notes.txt }
          image: { file: pixel.png, content_type: image/png, filename: p.png }
        checks:
          - json: { path: "$.form.title", equals: "report 0" }
          - json: { path: "$.files.notes", equals: "file body\nline two\n" }
          - json: { path: "$.files.image", exists: true }
      - name: gzipped
        request: POST /anything
        json: { hello: world }
        compress: gzip
        checks:
          - json: { path: "$.headers.Content-Encoding", equals: gzip }
          - body_contains: H4sI
"#,
            "",
            1,
        ),
        &[],
    );
}

#[test]
fn http_debug_prints_the_exchange_with_credentials_masked() {
    let d = tmp();
    let p = plan(
        r#"      - { name: login, request: GET /basic-auth/u/hunter22, auth: { basic: [u, "${SECRET_PASS}"] } }
      - { name: bearer, request: GET /bearer, auth: { bearer: "${API_TOKEN}" } }
"#,
        "",
        3,
    );
    let (out, _) = run_plan_env(
        d.path(),
        &p,
        &["--http-debug=full"],
        &[("SECRET_PASS", "hunter22"), ("API_TOKEN", "tok-abcdef")],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("> GET /basic-auth/u/*** HTTP/1.1"), "{err}");
    assert!(err.contains("> authorization: Basic ***"), "{err}");
    assert!(err.contains("> authorization: Bearer ***"), "{err}");
    assert!(err.contains("< HTTP/1.1 200 OK"), "{err}");
    assert!(err.contains("\"authenticated\": true"), "bodies with =full: {err}");
    assert!(
        !err.contains("hunter22") && !err.contains("tok-abcdef") && !err.contains("dTpodW50ZXIy"),
        "{err}"
    );
    assert_eq!(
        err.matches("* http-debug ").count(),
        6,
        "3 iterations of 2 steps: {err}"
    );
}
