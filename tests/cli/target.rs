//! The built-in target's ground truth, measured through stampede itself: `stampede target`
//! serves it, `stampede run` measures it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::*;

/// A `stampede target` process, killed on drop.
pub struct Target {
    child: Child,
    pub url: String,
}

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_target(profile: &str) -> Target {
    spawn_target(&["--profile", profile])
}

/// Starts `stampede target ARGS --listen 127.0.0.1:0` and reads its URL from the first line.
pub fn spawn_target(args: &[&str]) -> Target {
    let mut c = bin();
    c.arg("target").args(args).args(["--listen", "127.0.0.1:0"]);
    let t = target_from(c);
    assert!(t.url.starts_with("http://127.0.0.1:"), "{}", t.url);
    t
}

/// Starts a command that runs `stampede target` (perhaps inside something, e.g. `ip netns
/// exec`) and reads its URL from the first line.
pub fn target_from(mut c: std::process::Command) -> Target {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line: {first:?}"))
        .to_string();
    Target { child, url }
}

fn closed(url: &str, path: &str, vus: u32, secs: u32) -> String {
    format!(
        "name: truth\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET {path} }}\nphases:\n  - {{ name: p, scenario: s, vus: {vus}, duration: {secs}s }}\n"
    )
}

#[test]
fn below_capacity_latency_is_the_configured_service_time() {
    let t = start_target("test");
    let d = tmp();
    // 4 VUs on 8 workers × 50 ms: no queueing.
    let (out, run) = run_plan(d.path(), &closed(&t.url, "/work", 4, 2), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let l = &step0(&s)["latency_ms"];
    let p50 = l["p50"].as_f64().unwrap();
    assert!((50.0..58.0).contains(&p50), "p50 {p50}");
    assert!(l["min"].as_f64().unwrap() >= 50.0);
}

#[test]
fn above_capacity_throughput_plateaus_and_latency_follows_littles_law() {
    let t = start_target("test");
    let d = tmp();
    // 32 VUs on a pool of 8 × 50 ms: throughput X = 160/s, so by Little's law R = N / X = 200 ms.
    let (out, run) = run_plan(d.path(), &closed(&t.url, "/work", 32, 3), &["--workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let rps = s["phases"][0]["rps"].as_f64().unwrap();
    assert!((144.0..=176.0).contains(&rps), "throughput {rps}/s, capacity 160/s");
    let avg = step0(&s)["latency_ms"]["avg"].as_f64().unwrap();
    let little = 32.0 / rps * 1000.0;
    assert!(
        (avg - little).abs() / little < 0.15,
        "avg {avg} ms, Little's law {little} ms"
    );
}

#[test]
fn the_webhook_rejects_missing_and_bad_signatures() {
    let t = start_target("test");
    let d = tmp();
    let plan = format!(
        "name: hook\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: signed, request: POST /webhook, json: {{ a: 1 }}, sign: {{ secret: test-secret }} }}\n      - {{ name: wrong, request: POST /webhook, json: {{ a: 1 }}, sign: {{ secret: nope }} }}\n      - {{ name: unsigned, request: POST /webhook, json: {{ a: 1 }} }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 5 }}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let steps = s["phases"][0]["steps"].as_array().unwrap();
    assert_eq!(steps[0]["errors"], 0, "{}", steps[0]);
    assert_eq!(steps[1]["errors_by_kind"]["status_401"], 5);
    assert_eq!(steps[2]["errors_by_kind"]["status_401"], 5);
    assert_eq!(s["phases"][0]["errors_by_class"]["configuration"], 10);
}

#[test]
fn metrics_are_prometheus_text() {
    let t = start_target("voice-gateway");
    let d = tmp();
    let plan = format!(
        "name: m\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - name: metrics\n        request: GET /metrics\n        checks:\n          - body_contains: \"# TYPE\"\n          - header: {{ name: content-type, contains: text/plain }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2 }}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(summary_json(&run)["phases"][0]["errors"], 0);
    // Every line is a comment or `name{labels} value`.
    let body = fetch(&t.url, "/metrics");
    assert!(body.lines().count() > 10);
    for line in body.lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "value in {line}");
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "name in {line}"
        );
    }
}

/// A plain HTTP/1.1 GET over a TcpStream: the body.
pub fn fetch(url: &str, path: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// Runs `stampede demo` into `dir/demo` with phases of `phase_length`; asserts exit 0.
fn demo(dir: &std::path::Path, phase_length: &str) -> (std::process::Output, serde_json::Value) {
    let out_dir = dir.join("demo");
    let out = stampede(&[
        "demo",
        "--out",
        out_dir.to_str().unwrap(),
        "--phase-length",
        phase_length,
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&out_dir);
    (out, s)
}

#[test]
fn the_demo_runs_the_voice_suite_end_to_end() {
    let d = tmp();
    let (out, s) = demo(d.path(), "2s");
    let names = phase_names(&s);
    assert_eq!(names, ["baseline", "voice-hotpath", "peak"]);
    // check-availability answers 424 "not configured" for company 1: a configuration error.
    let avail = s["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "check-availability")
        .unwrap()
        .clone();
    assert_eq!(avail["errors"], avail["requests"]);
    assert!(s["phases"][0]["errors_by_class"]["configuration"].as_u64().unwrap() > 0);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("listening on http://127.0.0.1:"), "{stdout}");
    // The demo monitors the target's /metrics and the host: every phase has server metrics.
    for p in s["phases"].as_array().unwrap() {
        let names: Vec<&str> = p["server"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap())
            .collect();
        assert!(
            names.contains(&"target.stampede_target_service_busy_workers{service=\"php-fpm\"}")
                && names.contains(&"host.cpu_percent"),
            "{names:?}"
        );
    }
}

#[test]
fn the_demo_finds_the_saturated_worker_pool() {
    let d = tmp();
    let (out, s) = demo(d.path(), "8s");
    let f = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Worker pool `php-fpm` saturated")
        .unwrap_or_else(|| panic!("no worker pool finding in {}", s["findings"]));
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("8/8") && evidence.contains("from t="), "{evidence}");
    assert!(f["at_s"].as_f64().is_some());
    // The 424s of check-availability are configuration, not load.
    assert!(s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["title"] == "Errors from configuration, not load"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Worker pool `php-fpm` saturated"));
}

/// The demo tells the voice seed's whole story: the suite as found, after the quick wins, after
/// the server upgrade, each run noted; the first run's report ends with two Update sections
/// (before/after tables, findings, the new capacity estimate), its outline pinned by a golden
/// file, and its HTML renders in Chromium.
#[test]
fn the_demo_tells_the_whole_story_in_one_report() {
    let d = tmp();
    let (_out, s) = demo(d.path(), "4s");
    assert_eq!(s["note"], "Initial suite: PHP-FPM 8 workers");
    assert!(
        s["capacity_estimate"]["statement"].as_str().is_some(),
        "{}",
        s["capacity_estimate"]
    );
    let first = d.path().join("demo");
    for (suffix, note) in [("-quick-wins", "Quick wins"), ("-upgrade", "Server upgrade")] {
        let later = summary_json(&d.path().join(format!("demo{suffix}")));
        assert!(later["note"].as_str().unwrap().starts_with(note), "{}", later["note"]);
    }
    let md = std::fs::read_to_string(first.join("report.md")).unwrap();
    let updates: Vec<&str> = md.split("\n## Update ").skip(1).collect();
    assert_eq!(updates.len(), 2, "{md}");
    assert!(updates[0].starts_with("1: Quick wins") && updates[1].starts_with("2: Server upgrade"));
    for u in &updates {
        assert!(
            u.contains("| Metric |") && u.contains("### Findings") && u.contains("### Capacity"),
            "{u}"
        );
    }
    // Section by section, the report reads like the seed: its outline is pinned.
    let outline: String = md
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| {
            let l = l.split(" (20").next().unwrap_or(l);
            format!("{l}\n")
        })
        .collect();
    let golden = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/golden/demo-outline.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &outline).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert_eq!(
        expected, outline,
        "the demo report's outline changed (rerun with UPDATE_GOLDEN=1 to accept)"
    );
    let profile = d.path().join("chromium-profile");
    let dom = crate::report::headless(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", first.join("report.html").display()))
        .output()
        .expect("start chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("Update 2: Server upgrade") && dom.contains("Update 1: Quick wins"),
        "{}",
        &dom[..dom.len().min(2000)]
    );
    the_story_reads_in_german(d.path());
}

/// Words that only an English sentence has: a piece of the English report with one of them
/// must not be left in the German one.
const ENGLISH: &[&str] = &[
    "the",
    "of",
    "and",
    "with",
    "is",
    "are",
    "not",
    "from",
    "at",
    "to",
    "than",
    "while",
    "over",
    "in",
    "on",
    "no",
    "every",
    "each",
    "this",
    "its",
    "by",
    "for",
    "as",
    "was",
    "were",
    "found",
    "still",
    "run",
    "holds",
    "peaks",
    "saturated",
    "errors",
    "requests",
    "latency",
];

/// `stampede report --lang de` of the demo's three runs: German headings, labels and generated
/// sentences, numbers with a decimal comma; no piece of the English report that reads as an
/// English sentence is left, except text the plan or a run's note wrote (objectives, notes,
/// the target's own error bodies).
fn the_story_reads_in_german(dir: &std::path::Path) {
    let first = dir.join("demo");
    let render = |lang: &str, format: &str, file: &str| {
        let out_file = dir.join(lang).join(file);
        std::fs::create_dir_all(out_file.parent().unwrap()).unwrap();
        let out = stampede(&[
            "report",
            first.to_str().unwrap(),
            "--update",
            dir.join("demo-quick-wins").to_str().unwrap(),
            "--update",
            dir.join("demo-upgrade").to_str().unwrap(),
            "--lang",
            lang,
            "--format",
            format,
            "-o",
            out_file.to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        std::fs::read_to_string(out_file).unwrap()
    };
    let (en, de) = (render("en", "md", "report.md"), render("de", "md", "report.md"));
    assert_eq!(
        en,
        std::fs::read_to_string(first.join("report.md")).unwrap(),
        "English is the default"
    );
    for heading in [
        "# Lasttest-Bericht: voice-gateway",
        "## Ergebnis: NICHT BESTANDEN",
        "## Test-Szenarien",
        "## Kapazitäts-Berechnung",
        "## Engpässe und Empfehlungen",
        "## Optimierungs-Empfehlungen",
        "## Fazit",
        "### Nächste Schritte",
        "### Befunde",
        "- **Bewertung**: ",
        "| Metrik |",
    ] {
        assert!(de.contains(heading), "no `{heading}` in\n{de}");
    }
    assert!(
        de.contains("Worker-Pool `php-fpm` gesättigt") || de.contains("Worker-Pool \\`php-fpm\\` gesättigt"),
        "{de}"
    );
    // Numbers in the German format: a decimal comma (req/s with one decimal everywhere).
    let decimal_comma = de
        .split(" req/s")
        .filter(|p| p.rsplit(' ').next().is_some_and(|n| n.contains(',')))
        .count();
    assert!(decimal_comma >= 3, "{de}");
    assert!(!de.contains(".0 req/s") && !de.contains(".5 GiB"), "{de}");
    // What the user wrote stays as written.
    let plan =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/voice-gateway.yaml"))
            .unwrap();
    let notes: Vec<String> = ["demo", "demo-quick-wins", "demo-upgrade"]
        .iter()
        .map(|r| summary_json(&dir.join(r))["note"].as_str().unwrap_or("").to_string())
        .collect();
    // Commands in code spans (`stampede compare --previous RUN`) are commands, not prose.
    let theirs = |piece: &str| {
        piece.starts_with("stampede ")
            || plan.contains(piece)
            || notes.iter().any(|n| n.contains(piece))
            || piece.contains("HTTP ")
            || piece.contains('{')
    };
    let mut left = Vec::new();
    for line in en.lines().filter(|l| !l.starts_with("![") && !l.starts_with("| ---")) {
        let mut pieces = vec![line.to_string()];
        for sep in ["|", "**", ": ", "; ", " — ", "(", ")", ", ", "- ", "`"] {
            pieces = pieces
                .iter()
                .flat_map(|p| p.split(sep).map(str::to_string).collect::<Vec<_>>())
                .collect();
        }
        for p in pieces {
            let p = p.trim().trim_end_matches('.').replace('\\', "");
            let words: Vec<&str> = p.split_whitespace().collect();
            let english = words.len() >= 2 && words.iter().any(|w| ENGLISH.contains(&w.to_lowercase().as_str()));
            if english && de.replace('\\', "").contains(p.as_str()) && !theirs(&p) && !left.contains(&p) {
                left.push(p);
            }
        }
    }
    assert!(left.is_empty(), "English left in the German report: {left:#?}");
    let html = render("de", "html", "report.html");
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("Fazit"),
        "{}",
        &html[..html.len().min(500)]
    );
    assert!(render("en", "html", "report.html").contains("<html lang=\"en\">"));
}

/// An IPv6 target (`http://[::1]:PORT`): resolved, connected and sent with its bracketed host;
/// every request answered.
#[test]
fn an_ipv6_literal_target_is_reached() {
    let mut c = bin();
    c.args(["target", "--profile", "test", "--listen", "[::1]:0"]);
    let t = target_from(c);
    assert!(t.url.starts_with("http://[::1]:"), "{}", t.url);
    let d = tmp();
    let plan = format!(
        "name: v6\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET /work }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, iterations: 20, max_duration: 10s }}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(
        (step0(&s)["requests"].as_u64(), step0(&s)["errors"].as_u64()),
        (Some(20), Some(0)),
        "{s}"
    );
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("meta.json")).unwrap()).unwrap();
    assert!(meta["resolved"].to_string().contains("::1"), "{}", meta["resolved"]);
}
