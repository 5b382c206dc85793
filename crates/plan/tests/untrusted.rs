//! Plans are untrusted input: numbers that are not finite, header values that would split a
//! request, names that make suggestions slow and files without an end are refused at load, with
//! their location, and quickly.

use std::path::Path;
use std::time::{Duration, Instant};

use stampede_plan::template::Part;
use stampede_plan::*;

mod common;
use common::load_with;

/// Asserts that `src` is refused at `line:column` with a message containing `fragment`.
fn refused_at(src: &str, vars: &[(&str, &str)], env: &[(&str, &str)], at: (usize, usize), fragment: &str) {
    let e = load_with(src, vars, env).expect_err(src);
    assert_eq!((e.line, e.column), at, "{e}\n--- plan:\n{src}");
    assert!(e.to_string().contains(fragment), "want `{fragment}`: {e}");
}

const HEAD: &str = "target: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET /a }\n";

fn phase(keys: &str) -> String {
    format!("{HEAD}phases:\n  - {{ name: p, scenario: s, {keys} }}\n")
}

fn threshold(expr: &str) -> String {
    format!("{HEAD}thresholds:\n  - {expr}\n")
}

#[test]
fn rates_must_be_finite() {
    // `rate: NaN` used to load (NaN arrivals per second) and panic the executor.
    for rate in ["NaN", "nan", "\"NaN/m\"", "inf/h", "-NaN"] {
        refused_at(
            &phase(&format!("rate: {rate}, duration: 1s")),
            &[],
            &[],
            (7, 35),
            "finite",
        );
    }
    refused_at(
        &phase("rate: \"${R}\", duration: 1s"),
        &[],
        &[("R", "NaN")],
        (7, 35),
        "finite",
    );
    refused_at(
        &phase("start_rate: NaN, stages: [ { target: 5, duration: 1s } ]"),
        &[],
        &[],
        (7, 41),
        "finite",
    );
    // YAML's own non-finite floats, and numbers too large for a float, were already refused.
    for rate in [".nan", ".inf", "1e400"] {
        refused_at(
            &phase(&format!("rate: {rate}, duration: 1s")),
            &[],
            &[],
            (7, 35),
            "non-finite",
        );
    }
    // Every other number of a phase goes through the same finite check.
    refused_at(
        &phase("stages: [ { target: NaN, duration: 1s } ]"),
        &[],
        &[],
        (7, 49),
        "number",
    );
    refused_at(&phase("vus: inf, duration: 1s"), &[], &[], (7, 34), "number");
    let weighted =
        format!("{HEAD}phases:\n  - {{ name: p, scenarios: [ {{ name: s, weight: NaN }} ], vus: 1, duration: 1s }}\n");
    refused_at(&weighted, &[], &[], (7, 48), "number");
    refused_at(&phase("vus: 1, duration: \"1e400s\""), &[], &[], (7, 47), "duration");
    let long = format!("1{}s", "0".repeat(400));
    refused_at(
        &phase(&format!("vus: 1, duration: {long}")),
        &[],
        &[],
        (7, 47),
        "too long",
    );
    let max_body = format!("{HEAD}http: {{ max_body: \"1{}\" }}\n", "0".repeat(400));
    refused_at(&max_body, &[], &[], (6, 19), "out of range");
    let think = "target: http://h\nscenarios:\n  s:\n    think: { uniform: [1s, NaNs] }\n    steps:\n      - { request: GET /a }\n";
    refused_at(think, &[], &[], (4, 12), "duration");
}

#[test]
fn threshold_values_must_be_finite_and_in_range() {
    // `rps >= NaN` loaded, and was written to meta.json as `"value": null`.
    for expr in [
        "rps >= NaN",
        "rps >= inf",
        "rps > -infinity",
        "rps >= 1e400",
        "rps >= -5",
    ] {
        refused_at(&threshold(expr), &[], &[], (7, 5), "rps");
    }
    refused_at(&threshold("\"rps >= ${R}\""), &[], &[("R", "NaN")], (7, 5), "rps");
    for expr in ["p95 < inf", "p95 < NaNms", "avg < 1e400ms"] {
        refused_at(&threshold(expr), &[], &[], (7, 5), "p95");
    }
    refused_at(&threshold("error_rate < NaN%"), &[], &[], (7, 5), "error_rate");
    refused_at(&threshold("\"p(NaN) < 1s\""), &[], &[], (7, 5), "metric");
    // `--slo` takes the same expressions.
    for slo in ["rps >= NaN", "p95 < 1s, rps >= inf", "rps > -1"] {
        let e = parse_thresholds(slo).expect_err(slo);
        assert!(e.contains("rps"), "{slo}: {e}");
    }
    assert_eq!(parse_thresholds("rps >= 0").unwrap()[0].value, 0.0);
    assert_eq!(parse_thresholds("rps >= 2.5/s").unwrap()[0].value, 2.5);
}

#[test]
fn parse_rate_refuses_what_is_not_a_finite_rate() {
    for bad in ["NaN", "inf", "-inf", "infinity/m", "NaN/s", "1e999"] {
        let e = parse_rate(bad).expect_err(bad);
        assert!(e.contains("finite"), "{bad}: {e}");
    }
    assert_eq!(parse_rate("1e3/m").unwrap(), 1e3 / 60.0);
}

/// A step whose header `X-T` is `value` (YAML, double-quoted so escapes work).
fn with_header(value: &str) -> String {
    format!("target: http://h\nvars: {{ lit: \"a\\r\\nb\" }}\nscenarios:\n  s:\n    steps:\n      - request: GET /a\n        headers: {{ X-T: \"{value}\" }}\n")
}

#[test]
fn header_values_with_line_breaks_or_nul_are_refused() {
    for (value, vars, env) in [
        ("a\\r\\nInjected: 1", &[][..], &[][..]),
        ("a\\nb", &[], &[]),
        ("a\\rb", &[], &[]),
        ("a\\0b", &[], &[]),
        ("{{ lit }}", &[], &[]),
        ("Bearer {{ tok }}", &[("tok", "x\r\nHost: evil")], &[]),
        ("${TOKEN}", &[], &[("TOKEN", "t\n")]),
    ] {
        refused_at(&with_header(value), vars, env, (7, 25), "line break");
    }
    // Plan-wide headers, the content type and the signature prefix are headers too.
    let http = "target: http://h\nhttp:\n  headers: { X-A: \"a\\nb\" }\nscenarios:\n  s:\n    steps:\n      - { request: GET /a }\n";
    refused_at(http, &[], &[], (3, 19), "line break");
    let ct = "target: http://h\nscenarios:\n  s:\n    steps:\n      - { request: POST /a, body: x, content_type: \"text/plain\\r\\nX: 1\" }\n";
    refused_at(ct, &[], &[], (5, 52), "line break");
    let prefix = "target: http://h\nscenarios:\n  s:\n    steps:\n      - { request: POST /a, body: x, sign: { secret: s, prefix: \"a\\nb\" } }\n";
    refused_at(prefix, &[], &[], (5, 65), "line break");
    // A tab is allowed in a header value, and a template stays a template.
    let p = load_with(&with_header("a\\tb {{ vu }}"), &[], &[]).unwrap();
    let StepKind::Http(h) = &p.scenarios[0].steps[0].kind else {
        panic!()
    };
    assert!(matches!(&h.headers[0].1.parts[0], Part::Lit(b) if b == "a\tb "));
}

/// `f()`, which must take less than `limit` of CPU time. Measured on its own thread, so that a
/// loaded machine does not make it fail; it is left behind (and the test fails) if it has not
/// finished after 12 × `limit` of wall time.
fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let r = f();
        let _ = tx.send((r, thread_cpu_time()));
    });
    let (r, cpu) = rx
        .recv_timeout(limit * 12)
        .unwrap_or_else(|_| panic!("not done after {:?}", t.elapsed()));
    assert!(cpu < limit, "took {cpu:?} of CPU time");
    r
}

/// The CPU time (user and system) the calling thread has used, from `/proc/thread-self/stat`
/// (fields 14 and 15, in clock ticks of 10 ms).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // The fields after the command name, which is in parentheses, start at field 3.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..].split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

#[test]
fn unknown_names_in_a_large_plan_are_reported_quickly() {
    // 3,400 steps with names of a thousand characters (3.5 MB), and a threshold scoped to a
    // step that is not there: "did you mean" compared the name with every step's, character
    // by character (7 s in release).
    let pad = "m".repeat(1000);
    let mut src = String::from("target: http://h\nscenarios:\n  s:\n    steps:\n");
    for i in 0..3_400 {
        src.push_str(&format!("      - {{ name: step-{i:05}-{pad}, request: GET /a }}\n"));
    }
    src.push_str(&format!(
        "thresholds:\n  - {{ step: step-1234x-{pad}, check: p95 < 1s }}\n"
    ));
    assert!(src.len() > 3_400_000 && src.len() < MAX_PLAN_BYTES, "{}", src.len());
    let line = src.lines().count();
    let e = within(Duration::from_secs(5), move || load_with(&src, &[], &[])).unwrap_err();
    assert_eq!(e.line, line, "{}", e.message);
    assert!(e.message.contains("unknown step"), "{e}");
    assert_eq!(
        e.hint.as_deref(),
        Some(format!("did you mean `step-01234-{pad}`?").as_str())
    );

    // One name as long as the plan allows, against a few as long.
    let long = "x".repeat(1_000_000);
    let src = format!("target: http://h\nscenarios:\n  s:\n    steps:\n      - {{ name: a{long}, request: GET /a }}\n      - {{ name: b{long}, request: GET /a }}\nthresholds:\n  - {{ step: c{long}, check: p95 < 1s }}\n");
    let e = within(Duration::from_secs(5), move || load_with(&src, &[], &[])).unwrap_err();
    assert!(e.message.contains("unknown step"), "{}", &e.message[..60]);
}

/// A scratch directory named after `tag`.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("stampede-untrusted-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn load_file_in(path: &Path) -> Result<Plan, PlanError> {
    let lookup = |_: &str| None;
    load_file(
        path,
        &LoadOptions {
            vars: vec![],
            env: &lookup,
        },
    )
}

#[test]
fn plans_and_data_files_are_read_up_to_their_limit() {
    // /dev/zero has no length: it was read until memory ran out.
    let e = within(Duration::from_secs(5), || load_file_in(Path::new("/dev/zero"))).unwrap_err();
    assert!(e.message.contains("limited to 4194304 bytes"), "{e}");

    let dir = scratch("data");
    let plan = dir.join("p.yaml");
    let write_plan = |file: &str| {
        std::fs::write(
            &plan,
            format!("target: http://h\ndata:\n  d: {{ file: {file} }}\nscenarios:\n  s:\n    steps:\n      - {{ request: \"GET /{{{{ d.a }}}}\" }}\n"),
        )
        .unwrap();
    };
    // A data file over the limit, sparse so that it takes no disk.
    let big = dir.join("big.csv");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(MAX_DATA_BYTES as u64 + 1).unwrap();
    drop(f);
    write_plan("big.csv");
    let e = load_file_in(&plan).unwrap_err();
    assert_eq!((e.line, e.column), (3, 14), "{e}");
    assert!(e.message.contains(&format!("limited to {MAX_DATA_BYTES} bytes")), "{e}");
    // A data file with no length is cut off at the limit too.
    write_plan("/dev/zero");
    let p = plan.clone();
    let e = within(Duration::from_secs(20), move || load_file_in(&p)).unwrap_err();
    assert!(e.message.contains(&format!("limited to {MAX_DATA_BYTES} bytes")), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}
