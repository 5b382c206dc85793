//! Reports: the Markdown structure against a golden file, JUnit through a real XML parser,
//! escaping of hostile names and bodies, the run-history index, and the HTML in a real headless
//! Chromium.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::*;

/// Two endpoints, one failing with a configuration error (404); thresholds: one passes, one fails.
fn plain_plan(url: &str) -> String {
    format!(
        "name: golden\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: ok, request: GET /fast }}\n      - {{ name: missing, request: GET /status/404 }}\nphases:\n  - {{ name: steady, scenario: s, vus: 2, duration: 1s }}\nthresholds:\n  - p95 < 10s\n  - error_rate < 1%\n"
    )
}

/// A step named like an HTML injection, hitting a target that answers 500 with a `<script>`
/// body, and a failing check whose name is a script tag.
fn hostile_plan(url: &str) -> String {
    format!(
        "name: hostile\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: \"<img src=x onerror=alert(1)>\", request: GET /xss }}\n      - name: echo\n        request: GET /fast\n        checks:\n          - {{ name: \"<script>alert(1)</script>\", body_contains: nope }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\nthresholds:\n  - p95 < 10s\n"
    )
}

fn report_to(run: &Path, format: &str, out: &Path) -> String {
    let o = stampede(&[
        "report",
        run.to_str().unwrap(),
        "--format",
        format,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    std::fs::read_to_string(out).unwrap()
}

/// Replaces what differs between runs (numbers, durations, dates, ports, the host) by fixed
/// tokens, so the golden file pins the structure: sections, tables, columns, rows, wording.
fn normalize(md: &str) -> String {
    let mut out = String::new();
    for line in md.lines() {
        // Observations say what the numbers showed (a long tail or not): not structure.
        if line.starts_with("- **Observations**") {
            continue;
        }
        if line.starts_with("- **Environment**") {
            out.push_str("- **Environment**: (host facts)\n");
            continue;
        }
        if let Some(rest) = line.strip_prefix("- **Plan**: ") {
            // The plan file lives in a fresh temporary directory.
            let name = rest.split(" (").next().unwrap_or(rest);
            out.push_str(&format!("- **Plan**: {name} (plan file)\n"));
            continue;
        }
        let chars: Vec<char> = line.chars().collect();
        let mut l = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || ((chars[i] == '.' || chars[i] == ',' || chars[i] == ':')
                            && chars.get(i + 1).is_some_and(|c| c.is_ascii_digit())))
                {
                    i += 1;
                }
                l.push('N');
            } else {
                l.push(chars[i]);
                i += 1;
            }
        }
        // Durations print in the unit that suits them: µs, ms or s.
        let l = l.replace("Nµs", "T").replace("Nms", "T").replace("Ns", "T");
        out.push_str(&l);
        out.push('\n');
    }
    out
}

fn diff(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = String::new();
    for i in 0..e.len().max(a.len()) {
        let (x, y) = (e.get(i).copied(), a.get(i).copied());
        if x != y {
            out.push_str(&format!(
                "line {}:\n  - expected: {}\n  + actual:   {}\n",
                i + 1,
                x.unwrap_or("<none>"),
                y.unwrap_or("<none>")
            ));
        }
    }
    out
}

#[test]
fn markdown_structure_matches_the_golden_file() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (o, run) = run_plan(d.path(), &plain_plan(&srv.url()), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // The run itself wrote both reports and said where.
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.contains("report.md") && stdout.contains("report.html"),
        "{stdout}"
    );
    assert!(run.join("report.md").is_file() && run.join("report.html").is_file());
    let md = report_to(&run, "md", &d.path().join("out/r.md"));
    for chart in ["latency.svg", "throughput.svg", "distribution-1-steady.svg"] {
        let p = d.path().join("out/charts").join(chart);
        let svg = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(svg.starts_with("<svg") && svg.contains("<path"), "{chart}: {svg}");
        assert!(md.contains(&format!("(charts/{chart})")), "{chart} is not linked");
    }
    let actual = normalize(&md);
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/cli/golden/report.md");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == actual,
        "the Markdown report's structure changed (rerun with UPDATE_GOLDEN=1 to accept):\n{}\n--- actual (normalized) ---\n{actual}",
        diff(&expected, &actual)
    );
}

#[test]
fn junit_parses_and_a_failing_threshold_is_a_failure() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (o, run) = run_plan(d.path(), &plain_plan(&srv.url()), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let xml = report_to(&run, "junit", &d.path().join("junit.xml"));
    let doc = roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let suites: Vec<_> = root.children().filter(|n| n.has_tag_name("testsuite")).collect();
    assert_eq!(suites.len(), 1);
    assert_eq!(suites[0].attribute("name"), Some("steady"));
    assert_eq!(suites[0].attribute("tests"), Some("2"));
    assert_eq!(suites[0].attribute("failures"), Some("1"));
    let cases: Vec<_> = suites[0].children().filter(|n| n.has_tag_name("testcase")).collect();
    assert_eq!(cases.len(), 2);
    let failing = cases
        .iter()
        .find(|c| c.attribute("name") == Some("error_rate < 1%"))
        .expect("a testcase for error_rate < 1%");
    let failure = failing
        .children()
        .find(|n| n.has_tag_name("failure"))
        .expect("<failure> on the failing threshold");
    let msg = failure.attribute("message").unwrap_or("");
    assert!(msg.contains("measured 50") && msg.contains("limit < 1.00%"), "{msg}");
    let passing = cases.iter().find(|c| c.attribute("name") == Some("p95 < 10s")).unwrap();
    assert!(!passing.children().any(|n| n.has_tag_name("failure")));
}

/// The first occurrence of `tag` not preceded by a backslash (which makes it literal text).
fn unescaped_in_markdown(md: &str, tag: &str) -> Option<usize> {
    md.match_indices(tag)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || md.as_bytes()[i - 1] != b'\\')
}

/// Runs the hostile plan and renders Markdown and HTML into `d`.
fn hostile_reports(d: &Path) -> (PathBuf, String, String) {
    let srv = TestServer::start(false);
    let (o, run) = run_plan(d, &hostile_plan(&srv.url()), &[]);
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", text(&o));
    let md = report_to(&run, "md", &d.join("out/r.md"));
    let html = report_to(&run, "html", &d.join("out/r.html"));
    (run, md, html)
}

#[test]
fn hostile_names_and_bodies_are_escaped_in_html_markdown_and_charts() {
    let d = tmp();
    let (run, md, html) = hostile_reports(d.path());
    let s = summary_json(&run);
    // The hostile names did reach the run (so the test tests something).
    assert!(s.to_string().contains("onerror=alert(1)"), "{s}");
    assert!(s.to_string().contains("check:<script>alert(1)</script>"), "{s}");
    // The target's hostile body reached the run as an error sample, raw.
    let samples = &s["phases"][0]["steps"][0]["error_samples"];
    assert_eq!(samples[0], "HTTP 500: <script>alert(1)</script>", "{s}");
    assert!(
        html.contains("HTTP 500: &lt;script&gt;alert(1)&lt;/script&gt;"),
        "sample not shown escaped"
    );
    assert!(md.contains("HTTP 500: \\<script>alert(1)\\</script>"), "{md}");
    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "raw <script in HTML");
    assert!(!lower.contains("<img"), "raw <img in HTML");
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
    assert!(html.contains("check:&lt;script&gt;alert(1)&lt;/script&gt;"));
    for tag in ["<img", "<script", "</script"] {
        assert!(
            unescaped_in_markdown(&md, tag).is_none(),
            "raw `{tag}` in Markdown:\n{md}"
        );
    }
    assert!(md.contains("\\<img src=x onerror=alert(1)>"), "{md}");
    assert!(md.contains("\\<script>alert(1)\\</script>"), "{md}");
    for e in std::fs::read_dir(d.path().join("out/charts")).unwrap() {
        let svg = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!svg.contains("<img") && !svg.contains("<script"), "{svg}");
    }
    let json = report_to(&run, "json", &d.path().join("r.json"));
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["schema"], "stampede.report/v1");
    assert_eq!(v["summary"]["schema"], "stampede.summary/v1");
    let xml = report_to(&run, "junit", &d.path().join("j.xml"));
    roxmltree::Document::parse(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
}

#[test]
fn bad_run_dir_or_format_exits_2() {
    let d = tmp();
    let o = stampede(&["report", d.path().to_str().unwrap(), "--format", "html"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = stampede(&["report", d.path().to_str().unwrap(), "--format", "pdf"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = stampede(&["report", d.path().to_str().unwrap(), "--lang", "fr"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("unknown report language `fr` (known: en, de)"),
        "{}",
        text(&o)
    );
}

#[test]
fn runs_index_lists_runs_and_is_rebuilt_from_the_directories() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = write(d.path(), "plan.yaml", &plain_plan(&srv.url()));
    for name in ["first", "second"] {
        let o = bin()
            .current_dir(d.path())
            .args([
                "run",
                plan.to_str().unwrap(),
                "--out",
                &format!("runs/{name}"),
                "--quiet",
                "--workers",
                "1",
            ])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    }
    let index = d.path().join("runs/index.sqlite");
    assert!(index.is_file(), "the run registered itself in the index");
    let runs_dir = d.path().join("runs");
    let list = || {
        let o = stampede(&["runs", "--dir", runs_dir.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let out = list();
    for want in ["first", "second", "golden", "FAILED", "steady", "50.00%"] {
        assert!(out.contains(want), "`{want}` missing from:\n{out}");
    }
    assert_eq!(out.lines().filter(|l| l.contains("golden")).count(), 2, "{out}");
    std::fs::remove_file(&index).unwrap();
    let again = list();
    assert_eq!(again.lines().filter(|l| l.contains("golden")).count(), 2, "{again}");
    assert!(index.is_file(), "rebuilt");
    // Before → after, per phase and step, of two runs of the index named by id.
    let o = stampede(&[
        "compare",
        "--dir",
        runs_dir.to_str().unwrap(),
        "first",
        "second",
        "--format",
        "md",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let cmp = String::from_utf8_lossy(&o.stdout);
    for want in ["## Phase steady", "| p95 latency |", "| missing |", "→", "| Endpoint |"] {
        assert!(cmp.contains(want), "`{want}` missing from:\n{cmp}");
    }
    // A removed directory leaves the index on the next listing.
    std::fs::remove_dir_all(runs_dir.join("first")).unwrap();
    assert_eq!(list().lines().filter(|l| l.contains("golden")).count(), 1);
    let o = stampede(&["runs", "--dir", runs_dir.to_str().unwrap(), "show", "second"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(
        shown.contains("verdict: FAILED") && shown.contains("error_rate < 1%"),
        "{shown}"
    );
    let o = stampede(&["runs", "--dir", runs_dir.to_str().unwrap(), "show", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

fn chromium() -> PathBuf {
    for c in ["chromium", "chromium-browser"] {
        for dir in std::env::var("PATH").unwrap_or_default().split(':') {
            let p = Path::new(dir).join(c);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!(
        "chromium is not installed, so the HTML report cannot be tested in a real browser: run scripts/test.sh (it installs Debian's `chromium`) or `apt-get install chromium`"
    );
}

pub fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--enable-logging=stderr",
        "--window-size=1200,2000",
    ])
    .arg(format!("--user-data-dir={}", profile.display()));
    c
}

fn screenshot(profile: &Path, page: &Path, png: &Path) -> (u64, String) {
    let o = headless(profile)
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    let len = std::fs::metadata(png)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}\n{}", png.display(), text(&o)))
        .len();
    (len, String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn html_report_in_headless_chromium_renders_and_runs_no_injected_script() {
    let d = tmp();
    let (_run, _md, _html) = hostile_reports(d.path());
    let page = d.path().join("out/r.html");
    let profile = d.path().join("chromium-profile");
    // A blank page of the same size is the baseline: a uniform PNG compresses to almost nothing.
    let blank = write(d.path(), "blank.html", "<!DOCTYPE html><html><body></body></html>");
    let (blank_len, _) = screenshot(&profile, &blank, &d.path().join("blank.png"));
    let (len, log) = screenshot(&profile, &page, &d.path().join("report.png"));
    let png = std::fs::read(d.path().join("report.png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        len > 10 * blank_len && len > 20_000,
        "the screenshot looks blank: {len} bytes against {blank_len} for a blank page"
    );
    // No script ran or was blocked, and nothing was fetched (the CSP would log a refusal).
    for bad in ["CONSOLE", "Uncaught", "Refused to", "ERR_FILE_NOT_FOUND"] {
        assert!(!log.contains(bad), "chromium logged `{bad}`:\n{log}");
    }
    let o = headless(&profile)
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    let dom = String::from_utf8_lossy(&o.stdout);
    assert!(
        dom.contains("Executive summary"),
        "the DOM was not dumped:\n{}",
        text(&o)
    );
    assert!(
        !dom.to_lowercase().contains("<script"),
        "a <script> element exists in the DOM"
    );
    assert!(
        !dom.to_lowercase().contains("<img"),
        "an <img> element exists in the DOM"
    );
    assert!(
        dom.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "the step name is not shown as text"
    );
    assert!(dom.contains("<svg"), "no inline chart in the DOM");
}

#[test]
fn capacity_findings_and_server_metrics_render_when_present_only() {
    let srv = TestServer::start(false);
    let d = tmp();
    // No errors, no monitors, no search: nothing for those sections to say. (The plain plan's
    // 404s are a finding of their own: configuration errors.)
    let clean = plain_plan(&srv.url()).replace("      - { name: missing, request: GET /status/404 }\n", "");
    let (_, run) = run_plan(d.path(), &clean, &[]);
    let md = report_to(&run, "md", &d.path().join("a/r.md"));
    for absent in ["## Capacity", "## Bottlenecks", "Server metrics"] {
        assert!(!md.contains(absent), "`{absent}` rendered without data");
    }
    // Capacity results, findings and server metrics reach a report through the run's analysis
    // (capacity.json, monitors.jsonl): give it some, and build the report from it.
    let mut a = stampede::analysis::analyze_dir(&run).unwrap();
    a.summary.findings = serde_json::from_value(serde_json::json!([
        { "priority": "medium", "title": "Cache cold", "evidence": ["hit rate 40%"], "recommendation": "warm it" },
        { "priority": "critical", "title": "Pool <db> saturated", "evidence": ["db_pool_in_use 100/100 from t=42s"], "recommendation": "raise the pool" }
    ]))
    .unwrap();
    a.summary.capacity = serde_json::from_value(serde_json::json!({
        "model": "closed", "scenario": "s", "slo": ["p95 < 500ms"], "slo_capacity": 60.0, "saturation": 80.0,
        "peak_throughput_rps": 120.5, "recommended": 48.0, "margin": 0.2,
        "steps": [{ "load": 10.0, "phase": "c1", "throughput_rps": 40.0, "avg_ms": 50.0, "p50_ms": 45.0,
                    "p95_ms": 90.0, "p99_ms": 120.0, "error_rate": 0.0, "slo_passed": true }],
        "usl": null, "statement": "holds 60 concurrent users with p95 < 500ms", "projections": []
    }))
    .unwrap();
    a.summary.phases[0].server = serde_json::from_value(serde_json::json!([
        { "name": "host.cpu_percent", "unit": "%", "min": 25.0, "avg": 30.0, "max": 35.0 }
    ]))
    .unwrap();
    let report = stampede::report::build(a);
    let md_path = d.path().join("b/r.md");
    std::fs::create_dir_all(d.path().join("b")).unwrap();
    stampede::report::write_format(&report, stampede::report::Format::Markdown, &md_path).unwrap();
    let md = std::fs::read_to_string(&md_path).unwrap();
    let html = stampede::report::render(&report, stampede::report::Format::Html).unwrap();
    for doc in [&md, &html] {
        for want in [
            "Capacity",
            "holds 60 concurrent users",
            "Bottlenecks and recommendations",
            "host.cpu_percent",
            "25.0% – 35.0%",
        ] {
            assert!(doc.contains(want), "`{want}` missing:\n{doc}");
        }
        // By priority: critical before medium.
        let (c, m) = (doc.find("saturated").unwrap(), doc.find("Cache cold").unwrap());
        assert!(c < m, "findings are not ordered by priority");
    }
    assert!(html.contains("Pool &lt;db&gt; saturated") && md.contains("Pool \\<db> saturated"));
}

#[test]
fn in_ci_the_run_appends_its_compact_summary_to_github_step_summary() {
    let srv = TestServer::start(false);
    let d = tmp();
    let step_summary = d.path().join("step_summary.md");
    std::fs::write(&step_summary, "## An earlier step\n").unwrap();
    let (o, run) = run_plan_env(
        d.path(),
        &plain_plan(&srv.url()),
        &[],
        &[("GITHUB_STEP_SUMMARY", step_summary.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let md = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        md.starts_with("## An earlier step\n"),
        "appended, not overwritten:\n{md}"
    );
    assert!(md.contains("### Verdict: FAILED"), "{md}");
    assert!(md.contains("❌ steady: error_rate < 1% failed"), "{md}");
    assert!(md.contains("| steady | error_rate < 1% |"), "the SLA table:\n{md}");
    assert!(md.contains("| steady | p95 < 10s |") && md.contains("✅ pass"), "{md}");
    // The top findings, by priority, as the report has them.
    let s = summary_json(&run);
    let findings = s["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "the 404s are a finding: {s}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    for f in findings.iter().take(3) {
        let title = f["title"].as_str().unwrap();
        assert!(md.contains(title) && report.contains(title), "{title} in:\n{md}");
    }
    // Compact: the phases and charts stay in report.md.
    assert!(!md.contains("Executive summary") && !md.contains("charts/"), "{md}");
    assert!(report.contains("Executive summary"));
    // Without the variable nothing is written anywhere but the run directory.
    let again = d.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let (o, _) = run_plan(&again, &plain_plan(&srv.url()), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&step_summary).unwrap(), md);
}
