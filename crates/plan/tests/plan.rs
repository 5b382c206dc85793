//! The plan format: the plan-basics example of docs/cli.md resolves as documented; every class
//! of bad input is refused with its location.

use std::path::Path;
use std::time::Duration;

use stampede_plan::template::{Escape, Expr, Part};
use stampede_plan::*;

mod common;
use common::load_with;

fn load(src: &str) -> Result<Plan, PlanError> {
    load_with(src, &[], &[])
}

fn err(src: &str) -> PlanError {
    load(src).expect_err("the plan should be refused")
}

const BASICS_EXAMPLE: &str = r#"
name: voice-gateway
target: ${BASE_URL:-http://127.0.0.1:8080}
scenarios:
  call:
    steps:
      - name: check-customer
        request: POST /api/check-customer        # "METHOD PATH"
        json: { company_id: "{{ company_id }}" }
phases:
  - { name: baseline, scenario: call, vus: 5, duration: 2m }               # closed model
  - { name: steady,   scenario: call, rate: 50, max_vus: 200, duration: 1m } # open model, arrivals/s
  - name: peak                                                              # ramping stages
    scenario: call
    stages: [ { target: 10, duration: 30s }, { target: 100, duration: 2m }, { target: 0, duration: 1m } ]
thresholds:
  - p95 < 500ms
  - error_rate < 5%
  - { step: check-customer, check: p99 < 800ms }
"#;

#[test]
fn the_basics_example_resolves() {
    let p = load_with(BASICS_EXAMPLE, &[("company_id", "7")], &[]).unwrap();
    assert_eq!(p.name, "voice-gateway");
    let t = p.target.as_ref().unwrap();
    assert_eq!((t.host.as_str(), t.port, t.tls), ("127.0.0.1", 8080, false));
    assert_eq!(p.phases.len(), 3);
    assert_eq!(
        p.phases[0].load,
        Load::Closed {
            vus: 5,
            duration: Duration::from_secs(120)
        }
    );
    assert_eq!(
        p.phases[1].load,
        Load::Open {
            rate: 50.0,
            duration: Duration::from_secs(60),
            max_vus: 200,
            pre_vus: 50
        }
    );
    match &p.phases[2].load {
        Load::RampingVus { start_vus: 0, stages } => {
            assert_eq!(stages.len(), 3);
            assert_eq!(stages[1].target, 100.0);
            assert_eq!(stages[1].duration, Duration::from_secs(120));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(p.thresholds.len(), 3);
    assert_eq!(p.thresholds[2].scope.step.as_deref(), Some("check-customer"));
    let StepKind::Http(h) = &p.scenarios[0].steps[0].kind else {
        panic!()
    };
    assert_eq!(h.method, http::Method::POST);
    assert_eq!(h.path_and_query.as_literal().unwrap(), "/api/check-customer");
    // --var company_id is a constant: inlined into the JSON body at load time.
    assert_eq!(
        h.body.as_ref().unwrap().template.as_literal().unwrap(),
        r#"{"company_id":"7"}"#
    );
}

#[test]
fn env_defaults_and_var_precedence() {
    let src = "target: ${BASE_URL:-http://127.0.0.1:1}\nvars: { a: \"${A:-from-default}\" }\nscenarios:\n  s:\n    steps:\n      - { request: \"GET /{{ a }}\" }\n";
    let path = |p: &Plan| match &p.scenarios[0].steps[0].kind {
        StepKind::Http(h) => String::from_utf8(h.path_and_query.as_literal().unwrap().to_vec()).unwrap(),
        _ => unreachable!(),
    };
    let p = load(src).unwrap();
    assert_eq!(path(&p), "/from-default");
    assert_eq!(p.target.as_ref().unwrap().port, 1);
    let p = load_with(
        src,
        &[],
        &[("A", "from-env"), ("BASE_URL", "https://api.example.com/v1")],
    )
    .unwrap();
    assert_eq!(path(&p), "/v1/from-env");
    assert_eq!(p.target.as_ref().unwrap().port, 443);
    let p = load_with(src, &[("A", "from-var")], &[("A", "from-env")]).unwrap();
    assert_eq!(path(&p), "/from-var", "--var beats the environment");
    let p = load_with(src, &[("a", "direct")], &[("A", "from-env")]).unwrap();
    assert_eq!(path(&p), "/direct", "--var beats vars:");
    // A plan without phases is valid (capacity plans).
    assert!(p.phases.is_empty());
}

#[test]
fn urls_split_at_the_authority() {
    let step = |target: &str, request: &str| -> Result<(Origin, String), PlanError> {
        let src = format!("target: \"{target}\"\nscenarios:\n  s:\n    steps:\n      - request: \"{request}\"\n");
        let p = load(&src)?;
        match &p.scenarios[0].steps[0].kind {
            StepKind::Http(h) => {
                let pq = String::from_utf8(h.path_and_query.as_literal().unwrap().to_vec()).unwrap();
                Ok((h.origin.clone(), pq))
            }
            _ => unreachable!(),
        }
    };
    let (o, pq) = step("http://h", "GET http://h?x=1").unwrap();
    assert_eq!(
        (o.host.as_str(), o.port, o.authority.as_str(), pq.as_str()),
        ("h", 80, "h", "/?x=1")
    );
    let (o, pq) = step("http://h", "GET https://api.example.com/a/?b=1#frag").unwrap();
    assert_eq!(
        (o.host.as_str(), o.port, o.tls, pq.as_str()),
        ("api.example.com", 443, true, "/a/?b=1")
    );
    let (o, pq) = step("http://[::1]:8080/v1/", "GET /users").unwrap();
    assert_eq!(
        (o.host.as_str(), o.port, o.authority.as_str()),
        ("::1", 8080, "[::1]:8080")
    );
    assert_eq!(pq, "/v1/users");
    let (_, pq) = step("https://h", "GET http://[::1]/").unwrap();
    assert_eq!(pq, "/");

    let e = step("http://h", "GET http://u:pw@h/").unwrap_err();
    assert_eq!((e.line, e.column), (5, 18), "{e}");
    assert!(e.message.contains("credentials"), "{e}");
    let e = step("http://h?key=1", "GET /users").unwrap_err();
    assert_eq!((e.line, e.column), (1, 9), "{e}");
    assert!(e.message.contains("query"), "{e}");
    let e = step("http://h:http/", "GET /users").unwrap_err();
    assert_eq!((e.line, e.column), (1, 9), "{e}");
    assert!(e.message.contains("`http` is not a port"), "{e}");
    let e = step("http://h", "GET http://[::1/x").unwrap_err();
    assert_eq!((e.line, e.column), (5, 18), "{e}");
    assert!(
        e.to_string()
            .starts_with("plan.yaml:5:18: `http://[::1/x` is not a valid URL"),
        "{e}"
    );
}

#[test]
fn secrets_are_redacted() {
    let src = "target: http://127.0.0.1:1\nvars: { api_token: \"${API_TOKEN}\", plain: \"${HOST_NAME}\" }\nscenarios:\n  s:\n    steps:\n      - request: POST /hook\n        headers: { Authorization: \"Bearer ${API_TOKEN}\" }\n        sign: { secret: \"${HOOK_SECRET}\" }\n";
    let p = load_with(
        src,
        &[],
        &[("API_TOKEN", "tok-123"), ("HOOK_SECRET", "hush"), ("HOST_NAME", "box1")],
    )
    .unwrap();
    let text = p.redacted.to_string();
    assert!(!text.contains("tok-123") && !text.contains("hush"), "{text}");
    assert!(text.contains("box1"), "non-secret values stay: {text}");
    let p = load_with(
        src,
        &[("API_TOKEN", "tok-from-var")],
        &[("HOOK_SECRET", "hush"), ("HOST_NAME", "box1")],
    )
    .unwrap();
    assert!(!p.redacted.to_string().contains("tok-from-var"));
}

#[test]
fn templates_checks_captures_and_signing() {
    let src = r#"
target: http://127.0.0.1:1
scenarios:
  s:
    think: { uniform: [1s, 3s] }
    steps:
      - name: login
        request: GET /login
        query: { q: "{{ uuid() }}", page: "1" }
        expect: [200, "3xx", "400-404"]
        checks:
          - status: 200
          - header: { name: content-type, contains: json }
          - body_contains: ok
          - json: { path: "$.user.id", equals: 42 }
          - { name: has-token, json: { pointer: /token, exists: true } }
        capture:
          token: { json: "$.token" }
          etag: { header: ETag }
        sign: { secret: s3, header: X-Sig, encoding: base64, timestamp_header: X-Ts }
        think: { exponential: 500ms }
      - think: 1s
      - { name: use, request: "GET /me/{{ token }}", timeout: 2s }
"#;
    let p = load(src).unwrap();
    let sc = &p.scenarios[0];
    assert_eq!(
        sc.think,
        Some(Think::Uniform(Duration::from_secs(1), Duration::from_secs(3)))
    );
    let StepKind::Http(h) = &sc.steps[0].kind else { panic!() };
    assert_eq!(h.expect_status.len(), 3);
    assert_eq!(h.expect_status[1], StatusRange { lo: 300, hi: 399 });
    assert_eq!(h.checks.len(), 5);
    assert_eq!(h.checks[4].name, "has-token");
    assert_eq!(h.captures.len(), 2);
    let sign = h.sign.as_ref().unwrap();
    assert_eq!(sign.encoding, SignEncoding::Base64);
    assert!(sign.timestamp_header.is_some());
    assert!(h
        .path_and_query
        .parts
        .iter()
        .any(|p| matches!(p, Part::Expr(Expr::Uuid, Escape::Url))));
    assert!(matches!(sc.steps[1].kind, StepKind::Pause(Think::Fixed(_))));
    let StepKind::Http(u) = &sc.steps[2].kind else { panic!() };
    let token_slot = p.slots.iter().position(|s| s.name == "token").unwrap();
    assert!(u
        .path_and_query
        .parts
        .contains(&Part::Expr(Expr::Slot(token_slot), Escape::None)));
    assert_eq!(u.timeout, Some(Duration::from_secs(2)));
}

#[test]
fn load_models_are_inferred() {
    let base = "target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - request: GET /\n  t:\n    steps:\n      - request: GET /t\nphases:\n";
    let p = load(&format!(
        "{base}  - {{ name: a, scenario: s, rate: 3000/m, duration: 10s }}\n  - {{ name: b, scenario: s, start_rate: 1, stages: [{{target: 20, duration: 5s}}], max_vus: 30 }}\n  - {{ name: c, scenario: s, vus: 2, iterations: 10 }}\n  - {{ name: d, scenarios: [{{name: s, weight: 3}}, {{name: t}}], vus: 1, duration: 1s, grace: 2s }}\n"
    ))
    .unwrap();
    assert!(matches!(p.phases[0].load, Load::Open { rate, max_vus: 500, .. } if rate == 50.0));
    assert!(matches!(p.phases[1].load, Load::RampingRate { start_rate, max_vus: 30, .. } if start_rate == 1.0));
    assert!(matches!(
        p.phases[2].load,
        Load::Iterations {
            vus: 2,
            iterations: 10,
            ..
        }
    ));
    assert_eq!(p.phases[3].mix.len(), 2);
    assert_eq!(p.phases[3].mix[0].weight, 3);
    assert_eq!(p.phases[3].grace, Duration::from_secs(2));
}

/// A scratch directory named after `tag` holding `files` (name, content).
fn data_dir(tag: &str, files: &[(&str, &str)]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stampede-plan-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    dir
}

/// Loads `src` as `p.yaml` with its data files in `dir`.
fn load_in(dir: &Path, src: &str) -> Result<Plan, PlanError> {
    let lookup = |_: &str| None;
    let opts = LoadOptions {
        vars: vec![],
        env: &lookup,
    };
    load_str(src, "p.yaml", dir, &opts)
}

#[test]
fn csv_feeders_make_slots() {
    let dir = data_dir(
        "test",
        &[("u.csv", "id,email\n1,a@x\n2,b@x\n"), ("bad.csv", "id,email\n1\n")],
    );
    let src = "target: http://127.0.0.1:1\ndata:\n  users: { file: u.csv, mode: per_vu }\nscenarios:\n  s:\n    steps:\n      - request: \"GET /{{ users.email }}\"\n";
    let p = load_in(&dir, src).unwrap();
    assert_eq!(p.feeders[0].rows.len(), 2);
    assert_eq!(p.feeders[0].mode, FeedMode::PerVu);
    assert_eq!(p.slots[1].kind, SlotKind::Data { feeder: 0, column: 1 });
    let e = load_in(&dir, &src.replace("u.csv", "bad.csv")).unwrap_err();
    assert_eq!((e.line, e.column), (3, 18), "{e}");
    assert!(e.message.contains("row 2"), "{e}");
    let e = load_in(&dir, &src.replace("u.csv", "missing.csv")).unwrap_err();
    assert!(e.message.contains("cannot read"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn csv_quoting_bom_and_error_positions() {
    let csv = "\u{feff}id,note\r\n1,\"a, \"\"quoted\"\"\r\nnote\"\r\n2,plain\r\n";
    let dir = data_dir("csv", &[("u.csv", csv), ("ragged.csv", "id,note\n1,a\n2,b,c\n")]);
    let src = "target: http://127.0.0.1:1\ndata:\n  users: { file: u.csv }\nscenarios:\n  s:\n    steps:\n      - request: \"GET /{{ users.id }}\"\n";
    let p = load_in(&dir, src).unwrap();
    assert_eq!(p.feeders[0].columns, ["id", "note"]);
    assert_eq!(p.feeders[0].rows[0][1], "a, \"quoted\"\r\nnote");
    assert_eq!(p.feeders[0].rows[1][1], "plain");
    let e = load_in(&dir, &src.replace("u.csv", "ragged.csv")).unwrap_err();
    assert_eq!((e.file.as_str(), e.line, e.column), ("p.yaml", 3, 18), "{e}");
    let at = format!("{}:3:5", dir.join("ragged.csv").display());
    assert_eq!(
        e.message,
        format!("data.users: {at}: row 3 has 3 fields, the header has 2")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

const HEAD: &str = "target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET /a }\n";

#[test]
fn errors_point_at_the_problem() {
    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duraton: 1s }}\n"
    ));
    assert_eq!(e.line, 7);
    assert_eq!(e.hint.as_deref(), Some("did you mean `duration`?"));
    assert!(e.to_string().starts_with("plan.yaml:7:"), "{e}");

    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: z, vus: 1, duration: 1s }}\n"
    ));
    assert_eq!(e.line, 7);
    assert!(e.message.contains("no scenario named `z`"), "{e}");

    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 10 }}\n"
    ));
    assert!(e.message.contains("no unit"), "{e}");

    let e = err("target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { request: \"GET /{{ compnay }}\" }\nvars: { company: x }\n");
    assert_eq!(e.line, 5);
    assert!(e.message.contains("did you mean `company`"), "{e}");

    let e = err("target: ftp://x\n");
    assert!(e.message.contains("http"), "{e}");
    let e = err("scenarios:\n  s:\n    steps:\n      - request: GET /relative\n");
    assert!(e.message.contains("no `target:`"), "{e}");
    let e = err("target: http://h\nscenarios:\n  s:\n    steps:\n      - request: get /x\n");
    assert_eq!(e.hint.as_deref(), Some("did you mean `GET`?"));
    let e = err("target: http://h\nscenarios:\n  s:\n    steps: []\n");
    assert!(e.message.contains("no steps"), "{e}");
    let e = err("target: http://h\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET /a }\n      - { name: a, request: GET /b }\n");
    assert!(e.message.contains("twice"), "{e}");
    let e = err(&format!("{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\n"));
    assert!(e.message.contains("twice"), "{e}");
    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, rate: 5, max_vus: 2, pre_vus: 3, duration: 1s }}\n"
    ));
    assert!(e.message.contains("pre_vus"), "{e}");
    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, vus: 1.5, duration: 1s }}\n"
    ));
    assert!(e.message.contains("whole"), "{e}");
    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, rate: 0, duration: 1s }}\n"
    ));
    assert!(e.message.contains("above 0"), "{e}");
    let e = err(&format!(
        "{HEAD}phases:\n  - {{ name: p, scenario: s, rate: 2000000, duration: 1s }}\n"
    ));
    assert!(e.message.contains("absurd"), "{e}");
    let e = err(&format!("{HEAD}thresholds:\n  - {{ step: nope, check: p95 < 1s }}\n"));
    assert!(e.message.contains("unknown step"), "{e}");
    let e = err(&format!("{HEAD}thresholds:\n  - p959 < 1s\n"));
    assert_eq!(e.line, 7);
    let e = err(&format!("{HEAD}thresholds:\n  - error_rate < 5ms\n"));
    assert!(e.message.contains("percentage"), "{e}");
    let e = err("name: [\n");
    assert_eq!(e.file, "plan.yaml");
    let e = err("name: x\nname: y\n");
    assert!(e.line >= 1);
    let e =
        err("target: http://h\nscenarios:\n  s:\n    steps:\n      - { request: GET /a, checks: [ { bogus: 1 } ] }\n");
    assert!(e.message.contains("not a check"), "{e}");
    let e = err("target: http://h\nscenarios:\n  s:\n    steps:\n      - { request: GET /a, expect: 999 }\n");
    assert!(e.message.contains("not a status"), "{e}");
    let e = err(
        "target: http://h\nscenarios:\n  s:\n    steps:\n      - { request: GET /a, headers: { \"bad header\": x } }\n",
    );
    assert!(e.message.contains("header name"), "{e}");
    let e = err("target: ${NOPE}\n");
    assert!(e.message.contains("NOPE") && e.line == 1, "{e}");
}

#[test]
fn alias_bombs_and_huge_input_are_refused() {
    let mut bomb = String::from("a: &a [x,x,x,x,x,x,x,x,x,x]\n");
    for i in 1..10u8 {
        let (p, c) = ((b'a' + i - 1) as char, (b'a' + i) as char);
        bomb.push_str(&format!(
            "{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        ));
    }
    let t = std::time::Instant::now();
    assert!(load(&bomb).is_err());
    assert!(t.elapsed() < Duration::from_secs(2));
    let huge = format!("name: x\n# {}\n", "x".repeat(MAX_PLAN_BYTES));
    assert!(load(&huge).unwrap_err().message.contains("limited"));
}

#[test]
fn slo_lists_parse() {
    let t = parse_thresholds("p95 < 500ms, error_rate < 5%").unwrap();
    assert_eq!(t.len(), 2);
    assert!(parse_thresholds("p95 <").is_err());
}

/// Regression net for "never a panic": single-character deletions and replacements at every
/// third position of a valid plan either load or are refused with a located error.
#[test]
fn mutated_plans_never_panic() {
    let chars: Vec<char> = BASICS_EXAMPLE.chars().collect();
    let mut refused = 0;
    for i in (0..chars.len()).step_by(3) {
        for replacement in [None, Some('{'), Some('"')] {
            let mut m: Vec<char> = chars.clone();
            match replacement {
                None => {
                    m.remove(i);
                }
                Some(c) => m[i] = c,
            }
            let src: String = m.into_iter().collect();
            if let Err(e) = load_with(&src, &[("company_id", "1")], &[]) {
                assert!(e.line >= 1 && e.column >= 1, "{e}");
                refused += 1;
            }
        }
    }
    assert!(refused > 50, "mutations should mostly be refused ({refused})");
}

#[test]
fn monitors_resolve_with_defaults_and_keep_passwords_out_of_sight() {
    let src = "target: http://127.0.0.1:1\nmonitors:\n  - { prometheus: \"http://10.0.0.5:9100\", include: [node_load1, \"/^php_/\"], labels: { pool: www } }\n  - { host: true, interval: 2s }\n  - { process: php-fpm8.2 }\n  - { pid_file: run/app.pid }\n  - { postgres: \"${PG_URL}\" }\n  - { redis: \"redis://:${REDIS_PASSWORD}@127.0.0.1:6379/1\" }\n";
    let p = load_with(
        src,
        &[],
        &[
            ("PG_URL", "postgres://app:pg-pass-1@127.0.0.1:5432/app"),
            ("REDIS_PASSWORD", "redis-pass-2"),
        ],
    )
    .unwrap();
    let names: Vec<&str> = p.monitors.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["10.0.0.5", "host", "php-fpm8.2", "app", "postgres", "redis"]);
    assert_eq!(p.monitors[0].interval, Duration::from_secs(1));
    assert_eq!(p.monitors[1].interval, Duration::from_secs(2));
    match &p.monitors[0].kind {
        MonitorKind::Prometheus {
            path, include, labels, ..
        } => {
            assert_eq!(path, "/metrics", "the default path");
            assert!(include[0].matches("node_load1") && !include[0].matches("node_load5"));
            assert!(include[1].matches("php_fpm_active_processes"));
            assert_eq!(labels, &[("pool".to_string(), "www".to_string())]);
        }
        k => panic!("{k:?}"),
    }
    match &p.monitors[4].kind {
        MonitorKind::Postgres { url } => {
            assert_eq!(url.expose(), "postgres://app:pg-pass-1@127.0.0.1:5432/app");
            assert_eq!(url.shown(), "postgres://app:***@127.0.0.1:5432/app");
            assert!(!format!("{url:?}").contains("pg-pass-1"));
        }
        k => panic!("{k:?}"),
    }
    let text = p.redacted.to_string();
    assert!(!text.contains("pg-pass-1") && !text.contains("redis-pass-2"), "{text}");
    assert!(text.contains("postgres://app:***@127.0.0.1:5432/app"), "{text}");
}

#[test]
fn monitor_errors_are_located() {
    let e = err("monitors:\n  - { host: true }\n  - { proces: nginx }\n");
    assert_eq!((e.line, e.message.as_str()), (3, "unknown key `proces`"));
    assert_eq!(e.hint.as_deref(), Some("did you mean `process`?"));
    let e = err("monitors:\n  - { host: true, postgres: \"postgres://x\" }\n");
    assert_eq!(e.line, 2);
    assert!(e.message.contains("host and postgres"), "{}", e.message);
    let e = err("monitors:\n  - { redis: \"redis://h:notaport\" }\n");
    assert!(e.message.contains("redis://"), "{}", e.message);
    let e = err("monitors:\n  - { host: false }\n");
    assert!(e.message.contains("monitors nothing"), "{}", e.message);
}

/// One step `s` (YAML keys indented under `- `), with a target and a phase.
fn http_step(keys: &str) -> String {
    format!("target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - request: POST /x\n{keys}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\n")
}

fn only_http_step(p: &Plan) -> &HttpStep {
    match &p.scenarios[0].steps[0].kind {
        StepKind::Http(h) => h,
        _ => panic!("not an HTTP step"),
    }
}

#[test]
fn an_empty_or_all_comment_plan_is_refused_at_its_start() {
    for src in ["", "\n\n", "# just a comment\n  # and another\n", "---\n# c\n", "{}\n"] {
        let e = err(src);
        assert_eq!((e.line, e.column), (1, 1), "{src:?}: {e}");
        assert!(e.message.contains("the plan is empty"), "{src:?}: {e}");
    }
}

#[test]
fn redirects_cookies_and_compression_are_plan_keys() {
    let p = load(&http_step(
        "        follow_redirects: 3\n        compress: gzip\n        body: x\n",
    ))
    .unwrap();
    let h = only_http_step(&p);
    assert_eq!((h.follow_redirects, h.compress), (Some(3), Some(Compression::Gzip)));
    assert_eq!((p.http.follow_redirects, p.http.cookies), (10, CookieMode::Clear));
    let p = load(&format!(
        "http: {{ follow_redirects: 0, cookies: keep }}\n{}",
        http_step("")
    ))
    .unwrap();
    assert_eq!((p.http.follow_redirects, p.http.cookies), (0, CookieMode::Keep));
    for (keys, line, want) in [
        (
            "        compress: zstd\n        body: x\n",
            6,
            "`zstd` is not a compression",
        ),
        ("        compress: gzip\n", 6, "no body to compress"),
        ("        follow_redirects: 1000\n", 6, "at most 100 redirects"),
        ("        follow_redirects: -1\n", 6, "at least 0"),
    ] {
        let e = err(&http_step(keys));
        assert_eq!(e.line, line, "{keys}: {e}");
        assert!(e.message.contains(want), "{keys}: {e}");
    }
    let e = err(&format!("http: {{ cookies: sometimes }}\n{}", http_step("")));
    assert_eq!((e.line, e.column), (1, 18), "{e}");
    assert!(e.message.contains("not a cookie mode"), "{e}");
}

#[test]
fn auth_forms_and_multipart_compile_to_headers_and_bodies() {
    let p = load(&http_step(
        "        auth: { basic: [ada, \"{{ vu }}\"] }\n        form: { a: \"x y\", b: \"{{ vu }}\" }\n",
    ))
    .unwrap();
    let h = only_http_step(&p);
    assert!(matches!(&h.auth, Some(Auth::Basic { user, .. }) if user.as_literal().is_some()));
    let body = h.body.as_ref().unwrap();
    assert_eq!(
        body.content_type.as_deref(),
        Some(&b"application/x-www-form-urlencoded"[..])
    );
    assert_eq!(body.template.parts[0], Part::Lit("a=x%20y&b=".into()));
    assert!(matches!(body.template.parts[1], Part::Expr(Expr::Vu, Escape::Url)));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.csv"), "a,b\n1,2\n").unwrap();
    let src = http_step("        multipart: { title: hello, data: { file: up.csv } }\n");
    let p = stampede_plan::load_str(
        &src,
        "plan.yaml",
        dir.path(),
        &LoadOptions {
            vars: vec![],
            env: &|_| None,
        },
    )
    .unwrap();
    let body = only_http_step(&p).body.as_ref().unwrap();
    let ct = String::from_utf8(body.content_type.as_ref().unwrap().to_vec()).unwrap();
    let boundary = ct.strip_prefix("multipart/form-data; boundary=").expect(&ct);
    let text = String::from_utf8(
        body.template
            .as_literal()
            .expect("a literal multipart body is built once")
            .to_vec(),
    )
    .unwrap();
    assert!(text.starts_with(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"data\"; filename=\"up.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n\r\n")), "{text}");
    assert!(
        text.contains("name=\"title\"\r\n\r\nhello\r\n") && text.ends_with(&format!("--{boundary}--\r\n")),
        "{text}"
    );

    for (keys, want) in [
        ("        auth: { basic: [ada] }\n", "auth: not understood"),
        ("        auth: { bearer: \"\" }\n", "the token is empty"),
        ("        auth: { basic: [\"a:b\", c] }\n", "contains `:`"),
        (
            "        auth: { bearer: t }\n        headers: { Authorization: x }\n",
            "also sets an `Authorization`",
        ),
        ("        auth: { bearer: \"a\\nb\" }\n", "line break"),
        ("        form: { a: 1 }\n        json: { a: 1 }\n", "one body"),
        ("        multipart: { f: { file: missing.bin } }\n", "cannot read"),
        ("        multipart: { f: { path: x } }\n", "unknown key `path`"),
        ("        form: [a, b]\n", "a map of field names"),
    ] {
        let e = err(&http_step(keys));
        assert_eq!(e.line, 6, "{keys}: {e}");
        assert!(e.message.contains(want), "{keys}: {e}");
    }
}

#[test]
fn cookie_is_a_template_function() {
    let p = load(&http_step(
        "        headers: { X-Csrf: \"{{ cookie(\\\"csrftoken\\\") }}\" }\n",
    ))
    .unwrap();
    let (_, t) = &only_http_step(&p).headers[0];
    assert_eq!(
        t.parts,
        vec![Part::Expr(Expr::Cookie("csrftoken".into()), Escape::None)]
    );
    let e = err(&http_step("        headers: { X-Csrf: \"{{ cookie() }}\" }\n"));
    assert!(e.message.contains("takes 1 argument"), "{e}");
}

/// `about:` keeps its rows in plan order, substitutes `${VAR}`, and refuses a row that is not
/// one `name: value` pair, or an unknown key, at its place.
#[test]
fn about_keeps_its_rows_in_order_and_refuses_bad_ones_where_they_are() {
    let base = "target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n";
    let src = format!(
        "name: x\nabout:\n  objectives: [\"find the limit\", \"${{GOAL:-hold 100 calls}}\"]\n  environment:\n    - Server: VPS 2000\n    - Database: MySQL 8\n  software:\n    - Zebra: \"1\"\n    - PHP: 8.3\n{base}"
    );
    let plan = load_with(&src, &[], &[]).unwrap();
    assert_eq!(plan.about.objectives, ["find the limit", "hold 100 calls"]);
    let env: Vec<&str> = plan.about.environment.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(env, ["Server", "Database"], "plan order, not sorted");
    assert_eq!(
        plan.about.software,
        [("Zebra".into(), "1".into()), ("PHP".into(), "8.3".into())]
    );
    let bad = format!("name: x\nabout:\n  software:\n    - {{ a: 1, b: 2 }}\n{base}");
    let e = load_with(&bad, &[], &[]).unwrap_err();
    assert_eq!((e.line, e.column), (4, 7), "{e}");
    assert!(e.message.contains("one `name: value` pair"), "{e}");
    let typo = format!("name: x\nabout:\n  objectivs: []\n{base}");
    let e = load_with(&typo, &[], &[]).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
}
