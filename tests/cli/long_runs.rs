//! Long runs end to end: the windows table and drift (latency growing on the built-in target,
//! memory leaking or warming up in helper processes watched by the process monitor).

use std::path::Path;
use std::process::{Child, Command};

use serde_json::Value;

use crate::target::{spawn_target, Target};
use crate::*;

/// `/slow` gets 1 ms slower every second; `/flat` answers in 2-4 ms throughout.
const DRIFT_TARGET: &str = "endpoints:\n  - { name: slow, method: GET, path: /slow, service_time: { fixed: 2ms }, slowdown: 1ms }\n  - { name: flat, method: GET, path: /flat, service_time: { uniform: { min: 2ms, max: 4ms } } }\n";

fn drift_target(dir: &Path) -> Target {
    let cfg = write(dir, "target.yaml", DRIFT_TARGET);
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

fn plan(url: &str, path: &str, secs: u32, monitors: &str) -> String {
    format!(
        "name: soak\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET {path} }}\nphases:\n  - {{ name: soak, scenario: s, vus: 2, duration: {secs}s }}\nthresholds:\n  - p95 < 2s\n{monitors}"
    )
}

fn drift(s: &Value) -> &Value {
    &s["phases"][0]["drift"]
}

/// The case: a system whose latency grows 1 ms per second is found degrading in a 60 s
/// phase, with its slope; the report shows the windows table and the finding.
#[test]
fn latency_growing_a_millisecond_a_second_is_degrading_in_a_60s_phase() {
    let d = tmp();
    let t = drift_target(d.path());
    let (out, run) = run_plan(d.path(), &plan(&t.url, "/slow", 60, ""), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let dr = drift(&s);
    assert_eq!(dr["verdict"], "degrading", "{dr}");
    assert_eq!(dr["latency"]["verdict"], "degrading", "{dr}");
    assert_eq!(dr["latency"]["significant"], true);
    let slope = dr["latency"]["slope_ms_per_h"].as_f64().unwrap();
    eprintln!(
        "1 ms/s: {} p50 {slope} ms/h (p {}), p95 {} ms/h",
        dr["verdict"], dr["latency"]["p_value"], dr["latency_p95"]["slope_ms_per_h"]
    );
    assert!(
        (2900.0..4300.0).contains(&slope),
        "1 ms/s is 3600 ms/h, measured {slope}"
    );
    assert_eq!(dr["test"], "mann_kendall_ar1");
    let w = s["phases"][0]["windows"].as_array().unwrap();
    assert_eq!(w.len(), 5, "{w:?}");
    assert_eq!(
        (w[0]["start_s"].as_f64(), w[4]["end_s"].as_f64().map(f64::round)),
        (Some(0.0), Some(60.0))
    );
    assert!(
        w[4]["avg_ms"].as_f64().unwrap() > w[0]["avg_ms"].as_f64().unwrap() + 30.0,
        "{w:?}"
    );
    let total: u64 = w.iter().map(|x| x["requests"].as_u64().unwrap()).sum();
    assert_eq!(
        total,
        s["phases"][0]["requests"].as_u64().unwrap(),
        "every request is in a window"
    );
    assert!(
        s["findings"].to_string().contains("Latency degrades over phase soak"),
        "{}",
        s["findings"]
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Stability over time"), "{report}");
    assert!(report.contains("| 48-6"), "five windows of 12 s: {report}");
    assert!(report.contains("**Drift**: degrading"), "{report}");
}

/// A helper whose resident memory grows by `mib_per_step` every 100 ms for `steps` steps, from
/// when the run's first second is written (at most 30 s after it started), then holds it until
/// killed (at most 60 s): a leak (steps beyond the run) or a warm-up.
fn memory_helper(dir: &Path, name: &str, steps: u32, mib_per_step: u32) -> (Child, std::path::PathBuf) {
    let started = dir.join("run").join("intervals.jsonl");
    let script = format!(
        "import os, time\nfor _ in range(300):\n    if os.path.exists({started:?}): break\n    time.sleep(0.1)\nkeep = []\nfor _ in range({steps}):\n    keep.append(b'x' * ({mib_per_step} << 20))\n    time.sleep(0.1)\ntime.sleep(60)\n"
    );
    let child = Command::new("python3").args(["-c", &script]).spawn().expect("python3");
    let pid_file = dir.join(format!("{name}.pid"));
    std::fs::write(&pid_file, child.id().to_string()).unwrap();
    (child, pid_file)
}

/// A flat system is stable; a process whose RSS grows linearly throughout is "leak suspected"
/// (with MiB/h and its projection to the machine's memory), one that grows for the first
/// seconds and then holds is "warms up", not a leak.
#[test]
fn a_flat_system_is_stable_a_linear_rss_leaks_and_a_plateau_warms_up() {
    let d = tmp();
    let t = drift_target(d.path());
    // 12 s phase: the leak grows 1 MiB every 100 ms for 20 s, the warm-up for its first 3 s.
    let (mut leak, leak_pid) = memory_helper(d.path(), "leak", 200, 1);
    let (mut warm, warm_pid) = memory_helper(d.path(), "warm", 30, 2);
    let monitors = format!(
        "monitors:\n  - {{ name: leak, pid_file: {}, interval: 250ms }}\n  - {{ name: warm, pid_file: {}, interval: 250ms }}\n",
        leak_pid.display(),
        warm_pid.display()
    );
    let (out, run) = run_plan(d.path(), &plan(&t.url, "/flat", 12, &monitors), &[]);
    let _ = (leak.kill(), warm.kill(), leak.wait(), warm.wait());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let dr = drift(&s);
    assert_eq!(dr["latency"]["verdict"], "stable", "{dr}");
    assert_eq!(dr["latency_p95"]["verdict"], "stable", "{dr}");
    assert_eq!(dr["error_rate"]["verdict"], "stable", "{dr}");
    let mem = |name: &str| {
        dr["memory"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["series"] == name)
            .unwrap_or_else(|| panic!("no {name} in {dr}"))
            .clone()
    };
    let l = mem("leak.rss_bytes");
    eprintln!(
        "flat: latency {} (p {}); leak: {} {} MiB/h, limit in {} h; warm: {} {}%",
        dr["latency"]["verdict"],
        dr["latency"]["p_value"],
        l["verdict"],
        l["slope_mib_per_h"],
        l["reaches_limit_h"],
        mem("warm.rss_bytes")["verdict"],
        mem("warm.rss_bytes")["growth_pct"]
    );
    assert_eq!(l["verdict"], "leak_suspected", "{l}");
    let mib_h = l["slope_mib_per_h"].as_f64().unwrap();
    // 10 MiB/s is 36,000 MiB/h (the interpreter's own allocations aside).
    assert!((25_000.0..45_000.0).contains(&mib_h), "{l}");
    assert!(
        l["reaches_limit_h"].as_f64().is_some(),
        "the host's memory is the limit: {l}"
    );
    let w = mem("warm.rss_bytes");
    assert_eq!(w["verdict"], "warms_up", "{w}");
    assert_eq!(dr["verdict"], "degrading", "a suspected leak degrades the phase: {dr}");
    let windows = s["phases"][0]["windows"].as_array().unwrap();
    let last = windows.last().unwrap()["memory"].to_string();
    assert!(
        last.contains("leak.rss_bytes") && last.contains("warm.rss_bytes"),
        "{last}"
    );
    let f = s["findings"].to_string();
    assert!(f.contains("Memory leak suspected: leak.rss_bytes"), "{f}");
    assert!(!f.contains("warm.rss_bytes"), "a warm-up is no finding: {f}");
    let g = &s["generator"];
    assert_eq!(g["limited"], false, "an ordinary run's generator keeps up: {g}");
    assert!(g["cpu_percent_max"].as_f64().unwrap() < 80.0, "{g}");
    assert!(g["rss_max_bytes"].as_f64().unwrap() > 1e6, "{g}");
    assert!(g["late_ms_p99"].as_f64().unwrap() < 25.0, "{g}");
    assert!(
        !s["conditions"].to_string().contains("generator"),
        "{}",
        s["conditions"]
    );
    assert!(!f.contains("load generator"), "{f}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("The generator kept up"), "{report}");
    assert!(report.contains("leak suspected"), "{report}");
    assert!(report.contains("warms up"), "{report}");
}

/// The generator pinned to one core with far too many VUs for it: its CPU and late timers say
/// it was the limit, as a condition of the verdict and a finding. (The ordinary runs above
/// check that neither appears when it kept up.)
#[test]
fn a_generator_pinned_to_one_core_with_too_many_vus_is_the_limit() {
    let d = tmp();
    // The target on the other core: sharing the generator's core, it would take half of it and
    // leave the generator waiting for the target rather than limited by its own CPU (on a quiet
    // machine the test then found the generator at 61% of its core).
    // Each answer a 300-item JSON document the generator parses for its check: the generator's
    // work per request is many times the target's, so its core is what runs out.
    let items: Vec<String> = (0..300)
        .map(|i| format!("{{ id: {i}, name: item-{i}, tags: [a, b, c] }}"))
        .collect();
    let cfg = write(
        d.path(),
        "target.yaml",
        &format!(
            "endpoints:\n  - {{ name: big, method: GET, path: /big, service_time: {{ fixed: 1ms }}, response: {{ body: {{ items: [{}] }} }} }}\n",
            items.join(", ")
        ),
    );
    let mut c = Command::new("taskset");
    c.args(["-c", "1", env!("CARGO_BIN_EXE_stampede"), "target", "--config"])
        .arg(&cfg)
        .args(["--listen", "127.0.0.1:0"]);
    let t = crate::target::target_from(c);
    let plan_path = write(
        d.path(),
        "plan.yaml",
        &format!(
            "name: pinned\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET /big, checks: [ {{ json: {{ path: \"$.items[299].id\", equals: 299 }} }} ] }}\nphases:\n  - {{ name: crowd, scenario: s, vus: 400, duration: 6s }}\n",
            t.url
        ),
    );
    let run = d.path().join("run");
    let out = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_stampede"), "run"])
        .args([
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .output()
        .expect("taskset");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let g = &s["generator"];
    eprintln!("pinned: {g}");
    assert_eq!(g["cores"], 1.0, "{g}");
    assert_eq!(g["limited"], true, "{g}");
    assert_eq!(s["verdict"], "passed_with_conditions", "{s}");
    assert!(
        s["conditions"]
            .to_string()
            .contains("latency figures include the generator's own queueing"),
        "{}",
        s["conditions"]
    );
    assert!(
        s["findings"].to_string().contains("The load generator was the limit"),
        "{}",
        s["findings"]
    );
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("The generator was the limit"), "{report}");
}

/// A second origin that allows 5 requests a second and answers 429 (`Retry-After: 1`) beyond.
const LIMITED_TARGET: &str =
    "endpoints:\n  - { name: api, method: GET, path: /api, rate_limit: { per_second: 5, retry_after: 1s } }\n";

/// How many requests the target at `url` answered with `status` on endpoint `endpoint`, from
/// its own `/metrics`: the truth the hosts table must match.
fn answered(url: &str, endpoint: &str, status: u16) -> u64 {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut body = String::new();
    s.read_to_string(&mut body).unwrap();
    let key = format!("stampede_target_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} ");
    body.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn two_hosts(d: &Path, on_429: &str) -> (Value, u64, String) {
    let a = drift_target(d);
    let cfg = write(d, "limited.yaml", LIMITED_TARGET);
    let b = spawn_target(&["--config", cfg.to_str().unwrap()]);
    let p = format!(
        "name: hosts\ntarget: {}\nhttp: {{ on_429: {on_429} }}\nscenarios:\n  s:\n    steps:\n      - {{ name: own, request: GET /flat }}\n      - {{ name: third-party, request: GET {}/api }}\nphases:\n  - {{ name: p, scenario: s, vus: 4, duration: 4s }}\n",
        a.url, b.url
    );
    let (out, run) = run_plan(d, &p, &[]);
    assert!(matches!(out.status.code(), Some(0)), "{}", text(&out));
    (summary_json(&run), answered(&b.url, "api", 429), b.url.clone())
}

/// The hosts table counts exactly the 429s the rate-limited second host answered; with
/// `on_429: wait` the VUs honour its `Retry-After` and hit the limit far less often.
#[test]
fn the_hosts_table_counts_exactly_the_429s_a_rate_limited_host_answered() {
    let d = tmp();
    let (s, truth, b) = two_hosts(d.path(), "count");
    let hosts = s["hosts"].as_array().unwrap();
    assert_eq!(hosts.len(), 2, "{hosts:?}");
    let row = hosts
        .iter()
        .find(|h| h["host"] == b.as_str())
        .unwrap_or_else(|| panic!("{hosts:?}"));
    assert!(truth > 10, "the limit was hit: {truth}");
    eprintln!("429s: target answered {truth}, table {}", row["rate_limited"]);
    assert_eq!(row["rate_limited"].as_u64(), Some(truth), "{row}");
    assert_eq!(row["steps"], serde_json::json!(["third-party"]));
    assert!(row["success_rate"].as_f64().unwrap() < 0.9, "{row}");
    let own = hosts.iter().find(|h| h["host"] != b.as_str()).unwrap();
    assert_eq!(own["rate_limited"], 0);
    assert_eq!(own["success_rate"], 1.0);
    let report = std::fs::read_to_string(d.path().join("run/report.md")).unwrap();
    assert!(
        report.contains("## Hosts") && report.contains("Not hit") && report.contains(" × 429"),
        "{report}"
    );

    let d2 = tmp();
    let (s2, truth2, b2) = two_hosts(d2.path(), "wait");
    let row2 = s2["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == b2.as_str())
        .unwrap()
        .clone();
    assert_eq!(row2["rate_limited"].as_u64(), Some(truth2), "{row2}");
    // Each VU waits 1 s after a 429: at most about one 429 per VU and second.
    assert!(
        truth2 <= 4 * 5 + 4 && truth2 * 3 < truth,
        "wait {truth2} vs count {truth}"
    );
}

#[test]
fn a_bad_on_429_points_at_its_line() {
    let err = refused(
        "name: x\ntarget: http://127.0.0.1:1\nhttp:\n  on_429: later\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n",
    );
    assert!(err.contains("plan.yaml:4:11") && err.contains("on_429"), "{err}");
}
