//! The live dashboard (`run --dashboard`, `stampede dashboard RUN_DIR`): the page in real
//! Chromium (driven by playwright-core, installed by scripts/test.sh), the `/events` stream
//! read directly, the replay of a finished run, and an address in use.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::target::start_target;
use crate::*;

fn chromium() -> String {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).is_file() {
            return p.to_string();
        }
    }
    panic!("chromium is not installed: run scripts/test.sh (it installs Debian's `chromium`)");
}

/// Opens `url` in Chromium, reads the page `reads` times 1.5 s apart: `{seen: [...], errors}`.
fn browse(url: &str, reads: u32) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cli/browser/dashboard.js");
    let o = Command::new("node")
        .arg(script)
        .args([url, &chromium(), &reads.to_string()])
        .env("NODE_PATH", node_path())
        .output()
        .expect("run node");
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out.lines().last().unwrap_or("");
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| panic!("browser said: {}", text(&o)));
    assert!(v.get("fatal").is_none(), "browser failed: {v}\n{}", text(&o));
    v
}

/// A `stampede` child whose stderr is read line by line; killed on drop.
struct Running {
    child: Child,
    stderr: BufReader<std::process::ChildStderr>,
}

impl Running {
    fn start(args: &[&str]) -> Running {
        let mut child = bin()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start stampede");
        let stderr = BufReader::new(child.stderr.take().unwrap());
        Running { child, stderr }
    }

    /// `stampede run plan --out out` with the dashboard on a free port (one load thread, quiet),
    /// lingering after the run when asked.
    fn run_with_dashboard(plan: &Path, out: &Path, linger: bool) -> Running {
        let mut args = vec![
            "run",
            plan.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
            "--dashboard",
            "127.0.0.1:0",
        ];
        if linger {
            args.push("--dashboard-linger");
        }
        Running::start(&args)
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.stderr.read_line(&mut l).unwrap();
        l
    }

    /// The dashboard's URL from the first line of stderr.
    fn url(&mut self) -> String {
        let first = self.line();
        first
            .trim()
            .strip_prefix("dashboard: ")
            .unwrap_or_else(|| panic!("first stderr line: {first:?}"))
            .trim_end_matches('/')
            .to_string()
    }

    /// Reads stderr until a line containing `what` (bounded by `limit`).
    fn wait_for(&mut self, what: &str, limit: Duration) -> String {
        let start = Instant::now();
        let mut all = String::new();
        while start.elapsed() < limit {
            let l = self.line();
            if l.is_empty() {
                break;
            }
            all.push_str(&l);
            if l.contains(what) {
                return all;
            }
        }
        panic!("no `{what}` on stderr within {limit:?}:\n{all}");
    }

    fn interrupt(&mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-INT", &pid]).status().unwrap();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(10) {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("stampede did not stop after SIGINT");
    }

    fn wait(&mut self) -> Option<i32> {
        self.child.wait().unwrap().code()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The SSE events of `url/events` (with `Last-Event-ID: last` when given) until the final
/// `summary` event or `limit`: `(id, event name, data)`.
fn read_events(url: &str, last: Option<u64>, limit: Duration) -> Vec<(u64, String, Value)> {
    let addr = url.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let last = last.map(|l| format!("Last-Event-ID: {l}\r\n")).unwrap_or_default();
    write!(s, "GET /events HTTP/1.0\r\nHost: {addr}\r\n{last}\r\n").unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while start.elapsed() < limit {
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => {}
        }
        let t = String::from_utf8_lossy(&buf);
        if t.contains("event: summary\ndata: {\"final\":true") && t.ends_with("\n\n") {
            break;
        }
    }
    let t = String::from_utf8_lossy(&buf).into_owned();
    let (head, body) = t.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(
        head.starts_with("HTTP/1.1 200") || head.starts_with("HTTP/1.0 200"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("content-type: text/event-stream"),
        "{head}"
    );
    body.split("\n\n")
        .filter(|b| b.contains("data: "))
        .map(|b| {
            let (mut id, mut name, mut data) = (0, "message".to_string(), Value::Null);
            for line in b.lines() {
                if let Some(v) = line.strip_prefix("id: ") {
                    id = v.parse().unwrap();
                } else if let Some(v) = line.strip_prefix("event: ") {
                    name = v.to_string();
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(v).unwrap_or_else(|e| panic!("{e}: {v}"));
                }
            }
            (id, name, data)
        })
        .collect()
}

/// The last event: the final summary, with the run's verdict.
fn final_summary<'a>(events: &'a [(u64, String, Value)], summary: &Value) -> &'a (u64, String, Value) {
    let last = events.last().unwrap();
    assert_eq!(
        (last.1.as_str(), &last.2["final"]),
        ("summary", &Value::Bool(true)),
        "{last:?}"
    );
    assert_eq!(last.2["verdict"], summary["verdict"]);
    last
}

/// The whole response to `GET path` with this `Host` (HTTP/1.0: the server closes after it).
fn raw_get(addr: &str, path: &str, host: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn status_of(response: &str) -> &str {
    response.split(' ').nth(1).unwrap_or("")
}

fn plan(url: &str, secs: u32, monitors: bool) -> String {
    let monitors = if monitors {
        format!("monitors:\n  - {{ name: target, prometheus: {url}/metrics }}\n")
    } else {
        String::new()
    };
    format!(
        "name: dash\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: work, request: GET /work }}\nphases:\n  - {{ name: steady, scenario: s, rate: 100, max_vus: 20, duration: {secs}s }}\nthresholds:\n  - p95 < 2s\n{monitors}"
    )
}

#[test]
fn the_live_page_renders_in_chromium_without_errors_and_its_numbers_move_each_second() {
    let t = start_target("test");
    let d = tmp();
    let p = write(d.path(), "plan.yaml", &plan(&t.url, 8, true));
    let out = d.path().join("run");
    let mut run = Running::run_with_dashboard(&p, &out, false);
    let url = run.url();
    let v = browse(&format!("{url}/"), 2);
    assert_eq!(v["errors"], serde_json::json!([]), "console errors: {v}");
    let (a, b) = (&v["seen"][0], &v["seen"][1]);
    let num = |x: &Value| {
        x.as_str()
            .unwrap()
            .parse::<f64>()
            .unwrap_or_else(|_| panic!("not a number: {x}"))
    };
    assert!(num(&b["requests"]) > num(&a["requests"]), "requests did not grow: {v}");
    assert!(num(&b["t"]) > num(&a["t"]), "t did not move: {v}");
    assert_eq!(a["status"], "live", "{v}");
    assert_eq!(a["phase"], "steady", "{v}");
    assert!(num(&a["rps"]) > 0.0 && num(&a["p95"]) > 0.0, "{v}");
    assert_eq!(b["steps"][0][0], "work", "{v}");
    assert!(
        b["monitors"].as_str().unwrap().contains("stampede_target"),
        "no server series: {v}"
    );
    assert!(
        b["ink_rps"].as_u64().unwrap() > 0 && b["ink_p95"].as_u64().unwrap() > 0,
        "blank charts: {v}"
    );
    assert_eq!(run.wait(), Some(0));
}

#[test]
fn events_carry_the_design_fields_and_a_late_client_gets_the_whole_run() {
    let t = start_target("test");
    let d = tmp();
    let p = write(d.path(), "plan.yaml", &plan(&t.url, 3, false));
    let out = d.path().join("run");
    let mut run = Running::run_with_dashboard(&p, &out, true);
    let url = run.url();
    // Connected only after the run: everything comes from the replay buffer.
    run.wait_for("lingering at", Duration::from_secs(30));
    let events = read_events(&url, None, Duration::from_secs(10));
    let seconds: Vec<&Value> = events.iter().filter(|e| e.1 == "message").map(|e| &e.2).collect();
    assert!(seconds.len() >= 3, "{events:?}");
    for e in &seconds {
        for field in [
            "t",
            "phase",
            "vus",
            "rps",
            "p95_ms",
            "error_rate",
            "p50_ms",
            "p99_ms",
            "steps",
            "errors_by_kind",
        ] {
            assert!(e.get(field).is_some(), "no `{field}` in {e}");
        }
        assert_eq!(e["phase"], "steady");
    }
    let ts: Vec<f64> = seconds.iter().map(|e| e["t"].as_f64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[1] > w[0]), "{ts:?}");
    let summary = summary_json(&out);
    let requests = summary["phases"][0]["requests"].as_u64().unwrap();
    let per_second: u64 = seconds.iter().map(|e| e["requests"].as_u64().unwrap()).sum();
    assert_eq!(per_second, requests);
    assert_eq!(seconds.last().unwrap()["requests_total"].as_u64().unwrap(), requests);
    assert_eq!(
        seconds.last().unwrap()["steps"][0]["requests"].as_u64().unwrap(),
        requests
    );
    let last = final_summary(&events, &summary);
    assert_eq!(last.2["thresholds"][0]["expr"], "p95 < 2s");
    assert!(last.2["findings"].is_array());
    // A browser that reconnects with Last-Event-ID gets only what it missed.
    let again = read_events(&url, Some(2), Duration::from_secs(10));
    assert_eq!(again[0].0, 3, "{again:?}");
    // A name rebound to loopback is not answered; only / and /events exist.
    let addr = url.trim_start_matches("http://");
    assert_eq!(status_of(&raw_get(addr, "/events", "evil.example")), "421");
    assert_eq!(status_of(&raw_get(addr, "/other", addr)), "404");
    assert!(raw_get(addr, "/", &format!("localhost:{}", addr.rsplit(':').next().unwrap())).starts_with("HTTP/1.0 200"));
    assert_eq!(run.interrupt(), Some(0));
}

#[test]
fn a_finished_run_is_replayed_with_the_same_events_and_page() {
    let t = start_target("test");
    let d = tmp();
    let (o, dir) = run_plan(d.path(), &plan(&t.url, 3, false), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let intervals = std::fs::read_to_string(dir.join("intervals.jsonl"))
        .unwrap()
        .lines()
        .count();
    let requests = summary_json(&dir)["phases"][0]["requests"].as_u64().unwrap();
    let mut replay = Running::start(&["dashboard", dir.to_str().unwrap(), "127.0.0.1:0"]);
    let url = replay.url();
    replay.wait_for("replayed", Duration::from_secs(20));
    let events = read_events(&url, None, Duration::from_secs(10));
    let seconds: Vec<&Value> = events.iter().filter(|e| e.1 == "message").map(|e| &e.2).collect();
    assert_eq!(seconds.len(), intervals);
    assert_eq!(seconds.last().unwrap()["requests_total"].as_u64().unwrap(), requests);
    assert_eq!(events.last().unwrap().2["final"], true);
    let v = browse(&format!("{url}/"), 1);
    assert_eq!(v["errors"], serde_json::json!([]), "console errors: {v}");
    let seen = &v["seen"][0];
    assert_eq!(seen["requests"].as_str().unwrap(), requests.to_string(), "{v}");
    assert_eq!(seen["status"], "ended", "{v}");
    assert_eq!(replay.interrupt(), Some(0));
}

#[test]
fn a_dashboard_address_in_use_is_exit_2_before_any_load() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let d = tmp();
    let target = format!("http://{}", closed_port());
    let (o, out) = run_plan(d.path(), &plan(&target, 2, false), &["--dashboard", &addr]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!("--dashboard {addr}: cannot listen there")),
        "{err}"
    );
    assert!(!out.exists(), "a run directory was left behind");
    let o = stampede(&["dashboard", d.path().to_str().unwrap(), &addr]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not a run directory"),
        "{}",
        text(&o)
    );
}

#[test]
fn findings_and_thresholds_come_after_each_phase_before_the_end() {
    let t = start_target("test");
    let d = tmp();
    let p = write(
        d.path(),
        "plan.yaml",
        &format!(
            "name: dash\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: missing, request: GET /nowhere }}\nphases:\n  - {{ name: first, scenario: s, rate: 50, max_vus: 5, duration: 2s }}\n  - {{ name: second, scenario: s, rate: 50, max_vus: 5, duration: 2s }}\nthresholds:\n  - error_rate < 1%\n",
            t.url
        ),
    );
    let out = d.path().join("run");
    let mut run = Running::run_with_dashboard(&p, &out, true);
    let url = run.url();
    // Connected before the first phase ends, so the phase's summary event is seen as it comes.
    let events = read_events(&url, None, Duration::from_secs(30));
    let summaries: Vec<&Value> = events.iter().filter(|e| e.1 == "summary").map(|e| &e.2).collect();
    assert_eq!(summaries.len(), 2, "{summaries:?}");
    let (after_first, last) = (summaries[0], summaries[1]);
    assert_eq!(
        (&after_first["final"], &after_first["phase"]),
        (&Value::Bool(false), &Value::from("first"))
    );
    assert_eq!(after_first["status"], "running");
    let first_second = events.iter().position(|e| e.1 == "message" && e.2["phase"] == "second");
    let first_summary = events.iter().position(|e| e.1 == "summary");
    assert!(first_summary < first_second.map(|i| i + 3), "{events:?}");
    let titles = |s: &Value| {
        s["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["title"].to_string())
            .collect::<Vec<_>>()
    };
    assert!(
        titles(after_first).iter().any(|t| t.contains("configuration")),
        "the 404s are a configuration finding after the first phase: {after_first}"
    );
    assert_eq!(after_first["thresholds"][0]["passed"], false, "{after_first}");
    assert_eq!(last["final"], true);
    assert_eq!(last["verdict"], "failed");
    run.wait_for("lingering at", Duration::from_secs(30));
    assert_eq!(run.interrupt(), Some(1));
}

/// `capacity --dashboard`: every load level is a phase of the live page, and the search's
/// summary is its last event; the address is checked before any load, as for `run`.
#[test]
fn a_capacity_search_is_served_live_level_by_level() {
    let t = start_target("test");
    let d = tmp();
    let (search, out) = crate::capacity::quick_search(d.path(), &t.url);
    let args = |addr: &str| {
        let mut a = search.clone();
        a.extend(["--dashboard", addr, "--dashboard-linger"].map(String::from));
        a
    };
    let mut run = Running::start(&args("127.0.0.1:0").iter().map(String::as_str).collect::<Vec<_>>());
    let url = run.url();
    let addr = url.trim_start_matches("http://").to_string();
    // While it serves, the same address is refused before anything runs.
    let busy = stampede(&args(&addr).iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(busy.status.code(), Some(2), "{}", text(&busy));
    run.wait_for("lingering at", Duration::from_secs(60));
    let events = read_events(&url, None, Duration::from_secs(10));
    let summary = summary_json(&out);
    let levels: Vec<&str> = summary["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    let mut shown: Vec<&str> = Vec::new();
    for e in events.iter().filter(|e| e.1 == "message") {
        let phase = e.2["phase"].as_str().unwrap();
        if shown.last() != Some(&phase) {
            shown.push(phase);
        }
    }
    eprintln!("capacity levels {levels:?}; the page showed {shown:?}");
    assert!(levels.len() >= 2, "{levels:?}");
    assert_eq!(shown, levels, "each level, in order");
    final_summary(&events, &summary);
    assert_eq!(run.interrupt(), Some(0));
}
