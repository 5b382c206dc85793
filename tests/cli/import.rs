//! `stampede import`: plans from a curl command line and from a HAR recording, validated and
//! run against httpbin (a real server, started by scripts/test-services.sh); bad input refused
//! with exit 2 and nothing written.

use serde_json::Value;

use crate::*;

fn httpbin() -> String {
    env_url("STAMPEDE_TEST_HTTPBIN_URL")
}

/// Imports, validates, runs; returns the run's summary (every step without error).
fn import_and_run(d: &std::path::Path, args: &[&str]) -> (String, Value) {
    let plan = d.join("imported.yaml");
    let mut a = vec!["import"];
    a.extend_from_slice(args);
    a.extend(["-o", plan.to_str().unwrap()]);
    let out = stampede(&a);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let yaml = std::fs::read_to_string(&plan).unwrap();
    let v = stampede(&["validate", plan.to_str().unwrap()]);
    assert_eq!(v.status.code(), Some(0), "{}\n{yaml}", text(&v));
    let run = d.join("run");
    let out = stampede(&["run", plan.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{yaml}", text(&out));
    (yaml, summary_json(&run))
}

#[test]
fn a_curl_command_becomes_a_plan_that_runs() {
    let d = tmp();
    let url = httpbin();
    // Basic auth (httpbin answers 401 without it), a JSON body, a header, options curl only
    // prints with: the plan sends what curl would.
    let cmd = format!("curl -s --compressed -u alice:s3cret '{url}/basic-auth/alice/s3cret' -H 'X-Trace: t1'");
    let (yaml, s) = import_and_run(d.path(), &["curl", &cmd]);
    assert!(yaml.contains("auth: { basic: [\"alice\", \"s3cret\"] }"), "{yaml}");
    assert_eq!(s["phases"][0]["requests"], 1);
    assert_eq!(s["phases"][0]["errors"], 0);
    let d2 = tmp();
    let cmd = format!("curl '{url}/anything/x' \\\n  -H 'Content-Type: application/json' \\\n  --data-raw $'{{\"name\":\"l\\u00e4\",\"n\":[1,2]}}'");
    let file = write(d2.path(), "cmd.sh", &cmd);
    let (yaml, s) = import_and_run(d2.path(), &["curl", file.to_str().unwrap()]);
    assert!(
        yaml.contains("request: \"POST /anything/x\"") && yaml.contains("json: {"),
        "{yaml}"
    );
    assert_eq!(s["phases"][0]["errors"], 0);
}

/// A recording as Chromium writes it: a page, its stylesheet and image, two API calls (one
/// answered 404 when recorded), on one origin.
fn har(url: &str) -> String {
    let entry = |t: &str, method: &str, path: &str, kind: &str, status: u16, post: Value| {
        serde_json::json!({
            "startedDateTime": t, "time": 50.0, "_resourceType": kind,
            "request": { "method": method, "url": format!("{url}{path}"), "httpVersion": "HTTP/1.1",
                         "headers": [ { "name": "Accept", "value": "*/*" }, { "name": "Cookie", "value": "sid=stale" },
                                      { "name": ":authority", "value": "x" } ],
                         "queryString": [], "cookies": [], "headersSize": -1, "bodySize": 0, "postData": post },
            "response": { "status": status, "statusText": "", "httpVersion": "HTTP/1.1", "headers": [], "cookies": [],
                          "content": { "size": 0, "mimeType": "text/html" }, "redirectURL": "", "headersSize": -1, "bodySize": 0 },
            "cache": {}, "timings": { "send": 0, "wait": 50, "receive": 0 }
        })
    };
    serde_json::json!({ "log": { "version": "1.2", "creator": { "name": "WebInspector", "version": "537.36" }, "pages": [],
        "entries": [
            entry("2026-12-02T10:00:00.000Z", "GET", "/html", "document", 200, Value::Null),
            entry("2026-12-02T10:00:00.100Z", "GET", "/image/png", "image", 200, Value::Null),
            entry("2026-12-02T10:00:00.120Z", "GET", "/style.css", "stylesheet", 200, Value::Null),
            entry("2026-12-02T10:00:01.050Z", "POST", "/post", "fetch", 200,
                  serde_json::json!({ "mimeType": "application/json", "text": "{\"lead\":42}" })),
            entry("2026-12-02T10:00:01.300Z", "GET", "/status/404", "xhr", 404, Value::Null),
        ] } })
    .to_string()
}

#[test]
fn a_har_recording_becomes_a_flow_without_its_static_files() {
    let d = tmp();
    let file = write(d.path(), "checkout.har", &har(&httpbin()));
    let (yaml, s) = import_and_run(d.path(), &["har", file.to_str().unwrap()]);
    let steps: Vec<&str> = s["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["GET /html", "POST /post", "GET /status/404"], "{yaml}");
    assert!(yaml.contains("2 static or non-HTTP requests"), "{yaml}");
    // The 404 the recording saw is what the plan expects; the pause before the API call is kept.
    assert!(
        yaml.contains("expect: [404]") && yaml.contains("think: 1000ms"),
        "{yaml}"
    );
    assert!(!yaml.contains("sid=stale") && !yaml.contains(":authority"), "{yaml}");
    assert!(yaml.contains("json: { \"lead\": 42 }"), "{yaml}");
    assert_eq!(s["phases"][0]["errors"], 0);
}

#[test]
fn bad_input_is_refused_with_exit_2_and_nothing_written() {
    let d = tmp();
    let not_har = write(d.path(), "x.har", "{\"log\": 3}");
    let out_plan = d.path().join("p.yaml");
    for args in [
        vec![
            "import",
            "har",
            not_har.to_str().unwrap(),
            "-o",
            out_plan.to_str().unwrap(),
        ],
        vec!["import", "curl", "curl -s -H 'X: 1'", "-o", out_plan.to_str().unwrap()],
        vec![
            "import",
            "curl",
            "curl 'http://h/{{ x }}'",
            "-o",
            out_plan.to_str().unwrap(),
        ],
        vec!["import", "har", "/nonexistent.har"],
    ] {
        let out = stampede(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("error: "),
            "{}",
            text(&out)
        );
        assert!(!out_plan.exists(), "{args:?} wrote a plan");
    }
    let existing = write(d.path(), "keep.yaml", "mine");
    let out = stampede(&[
        "import",
        "curl",
        "curl http://127.0.0.1:1/",
        "-o",
        existing.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "mine");
}

/// `tests/fixtures/openapi/<name>`.
fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/openapi/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn an_openapi_document_becomes_a_step_per_operation_that_runs_against_httpbin() {
    let d = tmp();
    let plan = d.path().join("api.yaml");
    let out = stampede(&[
        "import",
        "openapi",
        &fixture("httpbin.yaml"),
        "-o",
        plan.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let yaml = std::fs::read_to_string(&plan).unwrap();
    // The first server (variables at their defaults) behind ${BASE_URL}; a path parameter
    // without any value declared as a variable; examples, defaults and enums filled in; a body
    // with only a schema as its minimal instance; the first 2xx as the status check.
    for want in [
        "target: \"${BASE_URL:-http://127.0.0.1:1}\"",
        "item: \"${ITEM}\"",
        "request: \"GET /anything/{{ item }}\"",
        "request: \"GET /get?page=2&tag=a&tag=b\"",
        "\"X-Request-Id\": \"req-1\"",
        "request: \"GET /status/201\"\n        expect: [201]",
        "json: { \"lines\": [{ \"at\": \"2026-01-01T00:00:00Z\", \"price\": 9.5 }], \"quantity\": 1, \"sku\": \"string\" }",
        "json: { \"id\": 7, \"note\": \"from examples\" }",
    ] {
        assert!(yaml.contains(want), "missing {want}:\n{yaml}");
    }
    assert!(
        !yaml.contains("ignored="),
        "an optional query parameter without an example: {yaml}"
    );
    // Without ITEM the plan says what is missing; with it, it validates and runs.
    let v = bin().args(["validate", plan.to_str().unwrap()]).output().unwrap();
    assert_eq!(v.status.code(), Some(2), "{}", text(&v));
    assert!(text(&v).contains("ITEM"), "{}", text(&v));
    let env = [("BASE_URL", httpbin()), ("ITEM", "sku-1".to_string())];
    let v = bin()
        .args(["validate", plan.to_str().unwrap()])
        .envs(env.clone())
        .output()
        .unwrap();
    assert_eq!(v.status.code(), Some(0), "{}\n{yaml}", text(&v));
    let run = d.path().join("run");
    let out = bin()
        .args(["run", plan.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"])
        .envs(env)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{yaml}", text(&out));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 8, "{s}");
    assert_eq!(s["phases"][0]["requests"], 8, "{s}");
    assert_eq!(s["phases"][0]["errors"], 0, "{s}");
}

#[test]
fn a_bad_openapi_document_is_refused_with_exit_2_and_nothing_written() {
    let d = tmp();
    let out_plan = d.path().join("p.yaml");
    let cases = [
        ("not.yaml", "title: just yaml\n", "no `openapi: 3.x`"),
        ("swagger.json", "{\"swagger\": \"2.0\", \"paths\": {}}", "Swagger 2.0"),
        (
            "ref.json",
            r##"{"openapi": "3.1.0", "paths": {"/a": {"post": {"requestBody": {"$ref": "#/components/requestBodies/Missing"}}}}}"##,
            "POST /a: requestBody: `$ref: #/components/requestBodies/Missing` points to nothing",
        ),
        (
            "far.yaml",
            "openapi: 3.0.0\npaths:\n  /a:\n    get:\n      parameters: [{ $ref: 'other.yaml#/P' }]\n",
            "points outside the document",
        ),
    ];
    for (name, body, want) in cases {
        let f = write(d.path(), name, body);
        let out = stampede(&[
            "import",
            "openapi",
            f.to_str().unwrap(),
            "-o",
            out_plan.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.starts_with("error: ") && err.contains(want), "{name}: {err}");
        assert!(!out_plan.exists(), "{name} wrote a plan");
    }
}

/// Loads `url` in headless Chromium (Debian's, driven by playwright-core) with Playwright's
/// `recordHar`, waits for the page's script to set its title to `done`, writes the HAR to `har`.
const RECORD_HAR: &str = r#"
const { chromium } = require('playwright-core');
const [url, har] = process.argv.slice(2);
(async () => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'], timeout: 20000 });
  const context = await browser.newContext({ recordHar: { path: har } });
  const page = await context.newPage();
  await page.goto(url, { timeout: 15000 });
  await page.waitForFunction(() => document.title === 'done', null, { timeout: 15000 });
  await context.close();
  await browser.close();
})().catch(e => { console.error(e); process.exit(1); });
"#;

#[test]
fn a_har_recorded_by_headless_chromium_imports_into_a_plan_that_runs() {
    let server = TestServer::start(false);
    let d = tmp();
    let script = write(d.path(), "record.js", RECORD_HAR);
    let har = d.path().join("page.har");
    let page = format!("{}/page", server.url());
    let out = std::process::Command::new("node")
        .arg(&script)
        .args([page.as_str(), har.to_str().unwrap()])
        .env("NODE_PATH", node_path())
        .output()
        .expect("run node");
    assert!(out.status.success(), "playwright: {}", text(&out));
    // The browser fetched the page, its script and image, and the script's two calls.
    let seen: Vec<u64> = ["/page", "/app.js", "/pixel.png", "/json", "/echo"]
        .iter()
        .map(|p| server.count(p))
        .collect();
    assert!(seen.iter().all(|n| *n >= 1), "requests while recording: {seen:?}");
    let (yaml, s) = import_and_run(d.path(), &["har", har.to_str().unwrap()]);
    let steps: Vec<&str> = s["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["GET /page", "GET /json", "POST /echo"], "{yaml}");
    assert!(yaml.contains("json: { \"id\": 42 }"), "{yaml}");
    assert!(yaml.contains("2 static or non-HTTP requests"), "{yaml}");
    assert_eq!(s["phases"][0]["requests"], 3, "{s}");
    assert_eq!(s["phases"][0]["errors"], 0, "{s}");
    // The plan ran against the same server: the page and each API call once more, the static
    // files not.
    let after: Vec<u64> = ["/page", "/app.js", "/pixel.png", "/json", "/echo"]
        .iter()
        .map(|p| server.count(p))
        .collect();
    assert_eq!(after, [seen[0] + 1, seen[1], seen[2], seen[3] + 1, seen[4] + 1]);
}
