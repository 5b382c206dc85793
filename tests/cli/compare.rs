//! Across runs, against the built-in target: `compare` finds a real slowdown significant and two
//! runs of an unchanged system unchanged (A/A, repeated, with its false-positive rate), gates
//! CI with `--fail-on-regression`, refuses bad input; `run --note`, `runs --plan/--note/--last`,
//! `compare --previous` and `report --update`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::target::{spawn_target, Target};
use crate::*;

/// Held by every test of this module while it runs load, so that none loads the machine under
/// another's measurements (the A/A runs above all: a run-wide shift from a neighbour is real).
static MEASURING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn measuring() -> std::sync::MutexGuard<'static, ()> {
    MEASURING.lock().unwrap_or_else(|e| e.into_inner())
}

/// The built-in target with one endpoint `/w` whose service time is lognormal around `mean_ms`.
fn target(dir: &Path, mean_ms: u32) -> Target {
    let cfg = write(
        dir,
        &format!("target-{mean_ms}.yaml"),
        &format!(
            "endpoints:\n  - {{ name: w, method: GET, path: /w, service_time: {{ lognormal: {{ mean: {mean_ms}ms, p99: {}ms }} }} }}\n",
            mean_ms * 3 / 2
        ),
    );
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

/// One closed phase `p` of 4 VUs calling `/w` for `secs` seconds.
fn plan(url: &str, secs: u32) -> String {
    plan_of(url, secs, 4)
}

fn plan_of(url: &str, secs: u32, vus: u32) -> String {
    format!(
        "name: aa\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET /w }}\nphases:\n  - {{ name: p, scenario: s, vus: {vus}, duration: {secs}s }}\n"
    )
}

/// Runs `plan` into `dir/out` (one worker, quiet); asserts it passed.
fn run_into(dir: &Path, out: &str, plan: &str, extra: &[&str]) -> PathBuf {
    let plan_path = write(dir, &format!("{}.yaml", out.replace('/', "_")), plan);
    let out_dir = dir.join(out);
    let mut args = vec![
        "run",
        plan_path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--quiet",
        "--workers",
        "1",
    ];
    args.extend_from_slice(extra);
    let o = stampede(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    out_dir
}

fn compare(args: &[&str]) -> std::process::Output {
    let mut all = vec!["compare"];
    all.extend_from_slice(args);
    stampede(&all)
}

fn compare_json(a: &Path, b: &Path) -> Value {
    let o = compare(&[a.to_str().unwrap(), b.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)))
}

/// Every metric of every row of a comparison.
fn metrics(c: &Value) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for p in c["phases"].as_array().unwrap() {
        for (k, v) in p["metrics"].as_object().unwrap() {
            out.push((format!("{}/{k}", p["name"]), v));
        }
        for s in p["steps"].as_array().unwrap() {
            for (k, v) in s["metrics"].as_object().unwrap() {
                out.push((format!("{}/{}/{k}", p["name"], s["name"]), v));
            }
        }
    }
    out
}

/// A/A: seven runs of the same unchanged system, every pair of them compared (21 comparisons).
/// The test promises a family-wise false-positive rate of at most 5% per comparison, so at most
/// one of 21 may show any significant change; the rates are printed (`--nocapture`).
#[test]
fn an_unchanged_system_comes_out_unchanged_over_21_comparisons() {
    let _m = measuring();
    let d = tmp();
    let t = target(d.path(), 20);
    // 8 full seconds per run: enough for the test to reject (p can reach 2/2^8 before
    // correction), so a false positive is possible and the count below means something.
    let runs: Vec<PathBuf> = (0..7)
        .map(|i| run_into(d.path(), &format!("aa{i}"), &plan(&t.url, 8), &[]))
        .collect();
    let (mut comparisons, mut changed, mut any_significant, mut tests, mut significant) = (0, 0, 0, 0, 0);
    for i in 0..runs.len() {
        for j in i + 1..runs.len() {
            let c = compare_json(&runs[i], &runs[j]);
            comparisons += 1;
            let flagged = c["regressions"].as_array().unwrap().len() + c["improvements"].as_array().unwrap().len();
            changed += usize::from(flagged > 0);
            if flagged > 0 {
                eprintln!("A/A aa{i} → aa{j}: {} {}", c["regressions"], c["improvements"]);
            }
            let mut any = false;
            for (_, m) in metrics(&c) {
                if !m["p_value"].is_null() {
                    tests += 1;
                    significant += usize::from(m["significant"] == true);
                    any |= m["significant"] == true;
                }
                assert!(m["seconds"].as_u64().unwrap() <= 8, "{m}");
            }
            any_significant += usize::from(any);
            let m = &c["phases"][0]["steps"][0]["metrics"]["p50"];
            assert!(m["seconds"].as_u64().unwrap() >= 7, "seconds paired: {m}");
        }
    }
    // The CI gate lets an A/A pair through.
    let o = compare(&[
        runs[0].to_str().unwrap(),
        runs[1].to_str().unwrap(),
        "--fail-on-regression",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    eprintln!(
        "A/A: {changed} of {comparisons} comparisons flagged a change ({:.1}%, promised ≤ 5%); {any_significant} had a significant metric at any size (no tolerance); {significant} of {tests} metric tests significant",
        changed as f64 / comparisons as f64 * 100.0
    );
    assert_eq!(comparisons, 21);
    assert!(
        changed <= 1,
        "{changed} of {comparisons} A/A comparisons showed a change"
    );
}

/// A 20 → 30 ms slowdown of the only endpoint: p50 and p95 regress significantly by +35-65%,
/// throughput of the closed workload falls; `--fail-on-regression` exits 1 on it, 0 on the way
/// back and with a tolerance above the change (and on an A/A pair: the test above). Every format
/// says it.
#[test]
fn a_20_to_30_ms_slowdown_is_a_significant_regression_and_fails_the_gate() {
    let _m = measuring();
    let d = tmp();
    let (fast, slow) = (target(d.path(), 20), target(d.path(), 30));
    // The two runs go at the same time, so that whatever else loads the machine (the suite's
    // other tests) loads them alike, second by second, and the change measured is the target's;
    // 2 VUs each keep them light on the machine the suite shares.
    let (fast_plan, slow_plan) = (plan_of(&fast.url, 8, 2), plan_of(&slow.url, 8, 2));
    let (before, after) = std::thread::scope(|s| {
        let before = s.spawn(|| run_into(d.path(), "before", &fast_plan, &[]));
        let after = s.spawn(|| run_into(d.path(), "after", &slow_plan, &["--note", "slower service"]));
        (before.join().unwrap(), after.join().unwrap())
    });
    let c = compare_json(&before, &after);
    let step = &c["phases"][0]["steps"][0]["metrics"];
    eprintln!(
        "20 → 30 ms: {}",
        ["avg", "p50", "p95", "p99", "rps"]
            .map(|m| format!(
                "{m} {:+.1}% (p {:.3})",
                step[m]["change_pct"].as_f64().unwrap(),
                step[m]["p_value"].as_f64().unwrap()
            ))
            .join(", ")
    );
    assert_eq!(c["schema"], "stampede.compare/v1");
    assert_eq!(c["before"]["name"], "aa");
    assert!(c["before"]["started_at"].as_str().unwrap().contains('T'));
    assert_eq!(c["after"]["note"], "slower service");
    for row in [&c["phases"][0]["metrics"], &c["phases"][0]["steps"][0]["metrics"]] {
        for m in ["p50", "p95"] {
            let x = &row[m];
            let change = x["change_pct"].as_f64().unwrap();
            assert!((35.0..=65.0).contains(&change), "{m}: {x}");
            assert_eq!(x["significant"], true, "{m}: {x}");
            assert_eq!(x["verdict"], "regressed", "{m}: {x}");
            assert!(x["after"].as_f64().unwrap() > x["before"].as_f64().unwrap());
        }
        assert_eq!(
            row["rps"]["verdict"], "regressed",
            "fewer requests per second: {}",
            row["rps"]
        );
        assert_eq!(row["error_rate"]["verdict"], "unchanged");
        let mut keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["avg", "error_rate", "p50", "p95", "p99", "rps"]);
        for k in ["before", "after", "change_pct", "significant", "verdict"] {
            assert!(row["p95"].get(k).is_some(), "{k} missing: {}", row["p95"]);
        }
    }
    let regressions = c["regressions"].as_array().unwrap();
    assert!(
        regressions.iter().any(|r| r["metric"] == "p95" && r["step"] == "w"),
        "{regressions:?}"
    );
    assert!(c["improvements"].as_array().unwrap().is_empty());
    assert_eq!(c["phases"][0]["steps"][0]["name"], "w");
    // The gate.
    let (b, a) = (before.to_str().unwrap(), after.to_str().unwrap());
    let o = compare(&[b, a, "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("significant regression"),
        "{}",
        text(&o)
    );
    let o = compare(&[b, a, "--fail-on-regression", "--tolerance", "80%"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a change within the tolerance passes: {}",
        text(&o)
    );
    let o = compare(&[a, b, "--fail-on-regression"]);
    assert_eq!(o.status.code(), Some(0), "the way back is an improvement: {}", text(&o));
    // Terminal, Markdown and HTML say the same.
    let o = compare(&[b, a]);
    let term = String::from_utf8_lossy(&o.stdout);
    assert!(
        term.contains("regressions, 0 improvements") && term.contains("p95 latency"),
        "{term}"
    );
    assert!(term.contains("slower service"), "the note heads its column: {term}");
    let md = d.path().join("cmp.md");
    let o = compare(&[b, a, "--format", "md", "-o", md.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = std::fs::read_to_string(md).unwrap();
    assert!(md.contains("| p95 latency |") && md.contains("regressed"), "{md}");
    let o = compare(&[b, a, "--format", "html"]);
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.contains("c-regressed"),
        "{html}"
    );
}

/// Different plans: the comparison covers what matches and names what has no counterpart;
/// nothing in common, a run with itself (or its copy), a directory that is no run, a run still
/// running: one clear message, exit 2, nothing written.
#[test]
fn bad_input_is_refused_and_unmatched_phases_and_steps_are_named() {
    let _m = measuring();
    let d = tmp();
    let t = target(d.path(), 5);
    let a = run_into(d.path(), "a", &plan(&t.url, 1), &[]);
    let other = format!(
        "name: other\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET /w }}\n      - {{ name: x, request: GET /w }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, duration: 1s }}\n  - {{ name: q, scenario: s, vus: 1, duration: 1s }}\n",
        t.url
    );
    let b = run_into(d.path(), "b", &other, &[]);
    let (sa, sb) = (a.to_str().unwrap(), b.to_str().unwrap());
    let o = compare(&[sa, sb, "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["unmatched"]["phases_only_after"], serde_json::json!(["q"]));
    assert_eq!(
        c["unmatched"]["steps_only_after"],
        serde_json::json!([{ "phase": "p", "step": "x" }])
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("phases only after: q"),
        "{}",
        text(&o)
    );
    let o = compare(&[sa, sb]);
    let term = String::from_utf8_lossy(&o.stdout);
    for want in ["Different plans", "Phase q is only in", "Step x of phase p is only in"] {
        assert!(term.contains(want), "`{want}` missing: {term}");
    }
    // Nothing in common.
    let renamed = plan(&t.url, 1).replace("name: p,", "name: elsewhere,");
    let c_dir = run_into(d.path(), "c", &renamed, &[]);
    let out_file = d.path().join("never.json");
    let refused = |args: &[&str], want: &str| {
        let mut all = args.to_vec();
        all.extend(["-o", out_file.to_str().unwrap()]);
        let o = compare(&all);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(want), "{args:?}: `{want}` missing: {err}");
        assert!(o.stdout.is_empty(), "{}", text(&o));
        assert!(!out_file.exists(), "nothing written");
    };
    refused(&[sa, c_dir.to_str().unwrap()], "no phase in common");
    refused(&[sa, sa], "are the same run");
    let copy = d.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["meta.json", "intervals.jsonl", "plan.json"] {
        std::fs::copy(a.join(f), copy.join(f)).unwrap();
    }
    refused(&[sa, copy.to_str().unwrap()], "a copy");
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    refused(&[sa, empty.to_str().unwrap()], "not a stampede run directory");
    refused(
        &[sa, d.path().join("nowhere").to_str().unwrap()],
        "no such run directory",
    );
    // A run still going (or killed): its meta.json says `running`.
    let running = d.path().join("running");
    std::fs::create_dir(&running).unwrap();
    std::fs::copy(a.join("intervals.jsonl"), running.join("intervals.jsonl")).unwrap();
    let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(a.join("meta.json")).unwrap()).unwrap();
    meta["status"] = "running".into();
    meta["started_at"] = "2030-01-01T00:00:00.000Z".into();
    std::fs::write(running.join("meta.json"), meta.to_string()).unwrap();
    refused(&[sa, running.to_str().unwrap()], "has not finished");
    refused(&[sa], "needs two runs");
    refused(&["--previous", sa], "no earlier completed run");
    let o = compare(&[sa, sb, "--tolerance", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // report --update refuses the same way.
    let o = stampede(&["report", sa, "--update", sa]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("are the same run"),
        "{}",
        text(&o)
    );
    let o = stampede(&[
        "report",
        sa,
        "--update",
        running.to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!out_file.exists());
}

/// Three runs of one plan under a runs directory, each with a note: the summary, the report
/// header and `stampede runs` show the note; `runs` picks by plan, note and count; `compare
/// --previous` finds the run before; `report --update --update` writes one report with an
/// Update section per later run, in Markdown, HTML and JSON.
#[test]
fn notes_history_previous_and_report_updates() {
    let _m = measuring();
    let d = tmp();
    let (fast, slow) = (target(d.path(), 10), target(d.path(), 25));
    let first = run_into(
        d.path(),
        "runs/1-base",
        &plan(&slow.url, 3),
        &["--note", "Baseline: workers 2"],
    );
    let second = run_into(
        d.path(),
        "runs/2-quick",
        &plan(&fast.url, 3),
        &["--note", "Quick wins: workers 2→6"],
    );
    let other = plan(&fast.url, 1).replace("name: aa", "name: unrelated");
    run_into(d.path(), "runs/3-other", &other, &[]);
    let third = run_into(d.path(), "runs/4-cores", &plan(&slow.url, 3), &["--note", "More cores"]);
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(second.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["note"], "Quick wins: workers 2→6");
    assert_eq!(summary_json(&second)["note"], "Quick wins: workers 2→6");
    let o = stampede(&["summary", second.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("note: Quick wins: workers 2→6"),
        "{}",
        text(&o)
    );
    let md = std::fs::read_to_string(second.join("report.md")).unwrap();
    assert!(md.contains("- **Purpose**: Quick wins: workers 2→6"), "{md}");
    let o = stampede(&["run", "x.yaml", "--note", "two\nlines"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // The history.
    let runs_dir = d.path().join("runs");
    let runs = |extra: &[&str]| {
        let mut args = vec!["runs", "--dir", runs_dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let o = stampede(&args);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let ids: Vec<String> = ["1-base", "2-quick", "3-other", "4-cores"]
            .iter()
            .filter(|id| out.contains(*id))
            .map(|s| s.to_string())
            .collect();
        (out, ids)
    };
    let (all, ids) = runs(&[]);
    assert_eq!(ids.len(), 4, "{all}");
    assert!(all.contains("Quick wins: workers 2→6") && all.contains("note"), "{all}");
    assert_eq!(runs(&["--plan", "aa"]).1, ["1-base", "2-quick", "4-cores"]);
    assert_eq!(runs(&["--plan", "aa", "--last", "2"]).1, ["2-quick", "4-cores"]);
    assert_eq!(runs(&["--note", "QUICK"]).1, ["2-quick"]);
    let (none, _) = runs(&["--plan", "nope"]);
    assert!(none.contains("match"), "{none}");
    // --previous: the run before of the same plan (3-other is another plan), by path or by id.
    let o = compare(&["--previous", third.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let c: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["before"]["note"], "Quick wins: workers 2→6");
    assert_eq!(c["after"]["note"], "More cores");
    let o = compare(&["--previous", "4-co", "--dir", runs_dir.to_str().unwrap(), "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let by_id: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(by_id["before"]["started_at"], c["before"]["started_at"]);
    let o = compare(&["--previous", first.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "the plan's first run has none: {}", text(&o));
    // One report, two updates.
    let (f, s, th) = (
        first.to_str().unwrap(),
        second.to_str().unwrap(),
        third.to_str().unwrap(),
    );
    let out = d.path().join("story.md");
    let o = stampede(&["report", f, "--update", s, "--update", th, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let md = std::fs::read_to_string(&out).unwrap();
    let u1 = md
        .find("## Update 1: Quick wins: workers 2→6 (")
        .unwrap_or_else(|| panic!("{md}"));
    let u2 = md.find("## Update 2: More cores (").unwrap_or_else(|| panic!("{md}"));
    let own = md.find("## Executive summary").unwrap();
    assert!(own < u1 && u1 < u2, "the run's own report, then the updates in order");
    let update1 = &md[u1..u2];
    for want in [
        "| Metric | Baseline: workers 2 | Quick wins: workers 2→6 | Change | p | Verdict |",
        "| p95 latency |",
        "### Findings",
    ] {
        assert!(update1.contains(want), "`{want}` missing from:\n{update1}");
    }
    let p95 = update1.lines().find(|l| l.starts_with("| p95 latency |")).unwrap();
    assert!(p95.contains("| -"), "25 → 10 ms is faster: {p95}");
    assert!(
        update1.contains("Too short to tell"),
        "3-second runs cannot show significance: {update1}"
    );
    assert!(
        md[u2..].contains("| Metric | Quick wins: workers 2→6 | More cores |"),
        "{}",
        &md[u2..]
    );
    let o = stampede(&["report", f, "--update", s, "--update", th, "--format", "html"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let html = String::from_utf8_lossy(&o.stdout);
    assert!(
        html.contains("Update 2: More cores") && html.contains("class=\"update\""),
        "{html}"
    );
    let o = stampede(&["report", f, "--update", s, "--format", "json"]);
    let j: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["updates"][0]["note"], "Quick wins: workers 2→6");
    assert_eq!(j["updates"][0]["comparison"]["schema"], "stampede.compare/v1");
    assert!(j["updates"][0]["findings_new"].is_array());
}
