//! A/B variants end to end against the built-in target: back to back (one phase per variant)
//! and interleaved (one phase, iterations taking the variants in turn: `interleave: true`, or
//! `variants:` on a scenario); the summary's `variants` table and the report's A/B section.

use std::path::Path;

use serde_json::Value;

use crate::target::{spawn_target, Target};
use crate::*;

/// The built-in target's cached endpoint (`GET /leads/:id`: 30 ms, or 2 ms for the 90% of
/// requests its cache answers; `Cache-Control: no-cache` skips the cache), and `more` endpoints.
fn cache_target(dir: &Path, more: &str) -> Target {
    let cfg = write(
        dir,
        "cache.yaml",
        &format!("endpoints:\n  - {{ name: lead, method: GET, path: /leads/:id, service_time: {{ fixed: 30ms }}, cache: {{ hit_ratio: 0.9, hit_time: {{ fixed: 2ms }} }} }}\n{more}"),
    );
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

/// The seed's cache test as an A/B plan: one phase in two variants, back to back, against the
/// built-in target's cached endpoint (`Cache-Control: no-cache` skips its cache). The with-cache
/// variant is faster, and the table shows the improvement with its significance.
#[test]
fn cache_ab_variants_show_the_improvement_with_its_significance() {
    let d = tmp();
    let t = cache_target(d.path(), "");
    let p = format!(
        "name: cache-ab\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: lead, request: GET /leads/7 }}\nphases:\n  - name: cache\n    scenario: s\n    vus: 4\n    duration: 8s\n    variants:\n      without-cache: {{ headers: {{ Cache-Control: no-cache }} }}\n      with-cache: {{}}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(phase_names(&s), ["cache[without-cache]", "cache[with-cache]"]);
    let v = &s["variants"][0];
    assert_eq!(
        (v["phase"].as_str(), v["baseline"].as_str(), v["variant"].as_str()),
        (Some("cache"), Some("without-cache"), Some("with-cache")),
        "{v}"
    );
    assert_eq!(v["interleaved"], false, "{v}");
    let lead = row(v, "s/lead");
    let (without, with) = (
        lead["baseline_avg_ms"].as_f64().unwrap(),
        lead["variant_avg_ms"].as_f64().unwrap(),
    );
    assert!(without > 25.0 && with < without / 2.0, "without {without} with {with}");
    let imp = lead["improvement_pct"].as_f64().unwrap();
    eprintln!(
        "cache A/B: without {without} ms, with {with} ms, improvement {imp}%, p {}",
        lead["p_value"]
    );
    assert!((60.0..95.0).contains(&imp), "{lead}");
    assert_eq!(lead["significant"], true, "{lead}");
    assert!(lead["p_value"].as_f64().unwrap() < 0.05, "{lead}");
    assert_eq!(v["rows"][0]["step"], "all");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        report.contains("## A/B variants") && report.contains("without-cache (avg)"),
        "{report}"
    );
}

/// The built-in target with one `delay_query` endpoint (`GET /fixed?ms=N` sleeps N ms).
fn delay_target(dir: &Path) -> Target {
    let cfg = write(
        dir,
        "delay.yaml",
        "endpoints:\n  - { name: slow, method: GET, path: /fixed, kind: delay_query }\n",
    );
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

/// The A/B table's row for `step` of the first variant comparison: (baseline average ms,
/// variant average ms, the row).
fn ab_row(s: &Value, step: &str) -> (f64, f64, Value) {
    let row = row(&s["variants"][0], step);
    (
        row["baseline_avg_ms"].as_f64().unwrap(),
        row["variant_avg_ms"].as_f64().unwrap(),
        row.clone(),
    )
}

/// Variants differing in a query parameter: appended after the step's own query, so the
/// built-in target's `delay_query` endpoint sleeps what each variant asks for.
#[test]
fn query_variants_reach_the_target_with_their_parameters() {
    let d = tmp();
    let t = delay_target(d.path());
    let p = format!(
        "name: query-ab\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: d, request: GET /fixed?x=1 }}\nphases:\n  - name: q\n    scenario: s\n    vus: 2\n    duration: 8s\n    variants:\n      slow: {{ query: {{ ms: 40 }} }}\n      fast: {{ query: {{ ms: 2 }} }}\n",
        t.url
    );
    slow_then_fast(d.path(), &p);
}

/// Runs `plan`, whose phase `q` has variants `slow` then `fast` of step `s/d`: they run back to
/// back, the slow one at 40 ms or more, the fast one under 20, significantly apart.
fn slow_then_fast(dir: &std::path::Path, plan: &str) {
    let (out, run) = run_plan(dir, plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(phase_names(&s), ["q[slow]", "q[fast]"]);
    let (slow, fast, row) = ab_row(&s, "s/d");
    eprintln!("variants: slow {slow} ms, fast {fast} ms, p {}", row["p_value"]);
    assert!(slow >= 40.0 && fast < 20.0, "slow {slow} fast {fast}");
    assert_eq!(row["significant"], true, "{row}");
}

/// Variants differing in a plan variable: the scenario is resolved again with the variant's
/// value, so a `{{ ms }}` in the path is 40 in one and 2 in the other; a variable the plan does
/// not declare is refused where the variant names it.
#[test]
fn vars_variants_resolve_the_scenario_with_their_values() {
    let d = tmp();
    let t = delay_target(d.path());
    let p = format!(
        "name: vars-ab\ntarget: {}\nvars:\n  ms: 40\nscenarios:\n  s:\n    steps:\n      - {{ name: d, request: \"GET /fixed?ms={{{{ ms }}}}\" }}\nphases:\n  - name: q\n    scenario: s\n    vus: 2\n    duration: 8s\n    variants:\n      slow: {{}}\n      fast: {{ vars: {{ ms: 2 }} }}\n",
        t.url
    );
    slow_then_fast(d.path(), &p);

    let bad = p.replace("vars: { ms: 2 }", "vars: { msec: 2 }");
    let bad_dir = d.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let (out, run) = run_plan(&bad_dir, &bad, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plan.yaml:16:") && err.contains("`msec` is not one of the plan's vars"),
        "{err}"
    );
    assert!(!run.exists());
}

/// Variants differing in the target: each variant's requests go to its own origin (two
/// built-in targets, one 30 ms slower), so the table compares the two systems.
#[test]
fn target_variants_send_each_variant_to_its_own_origin() {
    let d = tmp();
    let slow_cfg = write(
        d.path(),
        "slow.yaml",
        "endpoints:\n  - { name: x, method: GET, path: /x, service_time: { fixed: 30ms } }\n",
    );
    let fast_cfg = write(
        d.path(),
        "fast.yaml",
        "endpoints:\n  - { name: x, method: GET, path: /x, service_time: { fixed: 1ms } }\n",
    );
    let slow = spawn_target(&["--config", slow_cfg.to_str().unwrap()]);
    let fast = spawn_target(&["--config", fast_cfg.to_str().unwrap()]);
    let p = format!(
        "name: target-ab\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: x, request: GET /x }}\nphases:\n  - name: t\n    scenario: s\n    vus: 2\n    duration: 8s\n    variants:\n      old: {{}}\n      new: {{ target: \"{}\" }}\n",
        slow.url, fast.url
    );
    let (out, run) = run_plan(d.path(), &p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let (old, new, row) = ab_row(&s, "s/x");
    assert!(old >= 30.0 && new < 15.0, "old {old} new {new}");
    assert_eq!(row["significant"], true, "{row}");
}

#[test]
fn a_variant_target_with_a_path_points_at_its_line() {
    let err = refused(
        "name: x\ntarget: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    variants:\n      a: { target: \"http://127.0.0.1:2/api\" }\n      b: {}\n",
    );
    assert!(err.contains("plan.yaml:13:") && err.contains("origin only"), "{err}");
}

#[test]
fn a_variant_query_that_is_not_a_scalar_points_at_its_line() {
    let err = refused(
        "name: x\ntarget: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    variants:\n      a: { query: { ms: [1, 2] } }\n      b: {}\n",
    );
    assert!(err.contains("plan.yaml:13:") && err.contains("query ms"), "{err}");
}

#[test]
fn a_single_variant_points_at_its_line() {
    let err = refused(
        "name: x\ntarget: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    variants:\n      only: {}\n",
    );
    assert!(err.contains("plan.yaml:13:") && err.contains("at least two"), "{err}");
}

/// The table comparing `baseline` with `variant`.
fn ab_table<'a>(s: &'a Value, baseline: &str, variant: &str) -> &'a Value {
    s["variants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["baseline"] == baseline && t["variant"] == variant)
        .unwrap_or_else(|| panic!("no table {baseline} vs {variant}: {}", s["variants"]))
}

fn row<'a>(t: &'a Value, step: &str) -> &'a Value {
    t["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["step"] == step)
        .unwrap_or_else(|| panic!("no row {step}: {t}"))
}

fn requests(s: &Value, step: &str) -> i64 {
    step_named(s, step)["requests"].as_i64().unwrap()
}

/// The cache test interleaved: one phase in which each VU's iterations alternate between the
/// variants, so both run in every second (equal shares: within one iteration per VU) and are
/// compared within it. The with-cache variant is faster, significantly, step by step and
/// over all the variants' steps, and the report's table says the variants were interleaved.
#[test]
fn interleaved_cache_variants_share_every_second_and_with_cache_is_faster() {
    let d = tmp();
    let t = cache_target(d.path(), "");
    let p = format!(
        "name: cache-ab\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: lead, request: GET /leads/7 }}\nphases:\n  - name: cache\n    scenario: s\n    vus: 4\n    duration: 8s\n    interleave: true\n    variants:\n      without-cache: {{ headers: {{ Cache-Control: no-cache }} }}\n      with-cache: {{}}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &p, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(phase_names(&s), ["cache"]);
    let meta: Value = serde_json::from_slice(&std::fs::read(run.join("meta.json")).unwrap()).unwrap();
    assert_eq!(
        meta["phases"][0]["interleaved"],
        serde_json::json!([{ "scenario": "s", "variants": ["without-cache", "with-cache"] }])
    );
    let (a, b) = (
        requests(&s, "s[without-cache]/lead"),
        requests(&s, "s[with-cache]/lead"),
    );
    eprintln!("interleaved cache A/B: {a} requests without the cache, {b} with");
    assert!(a > 100 && (a - b).abs() <= 4, "equal shares: {a} vs {b}");
    let v = ab_table(&s, "without-cache", "with-cache");
    assert_eq!(
        (v["phase"].as_str(), v["interleaved"].as_bool()),
        (Some("cache"), Some(true)),
        "{v}"
    );
    assert_eq!(v["scenarios"], serde_json::json!(["s"]));
    assert_eq!(v["rows"][0]["step"], "all");
    let lead = row(v, "s/lead");
    let (without, with) = (
        lead["baseline_avg_ms"].as_f64().unwrap(),
        lead["variant_avg_ms"].as_f64().unwrap(),
    );
    let imp = lead["improvement_pct"].as_f64().unwrap();
    eprintln!(
        "interleaved cache A/B: without {without} ms, with {with} ms, improvement {imp}%, p {} over {} seconds",
        lead["p_value"], lead["seconds"]
    );
    assert!(without > 25.0 && with < without / 2.0, "without {without} with {with}");
    assert!((60.0..95.0).contains(&imp), "{lead}");
    assert!(lead["seconds"].as_u64().unwrap() >= 6, "paired in every second: {lead}");
    for r in [lead, row(v, "all")] {
        assert_eq!(r["significant"], true, "{r}");
        assert!(r["p_value"].as_f64().unwrap() < 0.05, "{r}");
    }
    // The whole-variant row is the step's: the scenario has one step.
    assert_eq!(row(v, "all")["baseline_avg_ms"], lead["baseline_avg_ms"]);
    for file in ["report.md", "report.html"] {
        let report = std::fs::read_to_string(run.join(file)).unwrap();
        assert!(
            report.contains("without-cache vs with-cache (interleaved)") && report.contains("all steps"),
            "{file}: {report}"
        );
    }
}

/// `variants:` on scenarios: every phase that runs them interleaves them, here an open phase
/// mixing two scenarios with variants of their own, on two load threads. Each gets its own
/// table within the one phase: the cache makes a significant difference; two identical
/// variants make none. A worker's arrivals take each scenario's variants in turn, so the
/// shares are equal within one arrival per load thread.
#[test]
fn scenario_variants_interleave_in_an_open_phase_and_identical_ones_differ_insignificantly() {
    let d = tmp();
    let t = cache_target(
        d.path(),
        "  - { name: flat, method: GET, path: /flat, service_time: { uniform: { min: 2ms, max: 4ms } } }\n",
    );
    let p = format!(
        "name: scenario-ab\ntarget: {}\nscenarios:\n  c:\n    variants:\n      without-cache: {{ headers: {{ Cache-Control: no-cache }} }}\n      with-cache: {{}}\n    steps:\n      - {{ name: lead, request: GET /leads/7 }}\n  f:\n    variants: {{ a: {{}}, b: {{}} }}\n    steps:\n      - {{ name: x, request: GET /flat }}\nphases:\n  - name: mixed\n    scenarios: [ {{ name: c }}, {{ name: f }} ]\n    rate: 80\n    max_vus: 40\n    duration: 8s\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &p, &["--workers", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(phase_names(&s), ["mixed"]);
    for (x, y) in [("c[without-cache]/lead", "c[with-cache]/lead"), ("f[a]/x", "f[b]/x")] {
        let (a, b) = (requests(&s, x), requests(&s, y));
        eprintln!("scenario variants: {x} {a} requests, {y} {b}");
        assert!(a > 100 && (a - b).abs() <= 4, "equal shares: {x} {a} vs {y} {b}");
    }
    assert_eq!(s["variants"].as_array().unwrap().len(), 2, "{}", s["variants"]);
    let cache = ab_table(&s, "without-cache", "with-cache");
    assert_eq!(
        (
            cache["phase"].as_str(),
            cache["interleaved"].as_bool(),
            &cache["scenarios"]
        ),
        (Some("mixed"), Some(true), &serde_json::json!(["c"]))
    );
    let lead = row(cache, "c/lead");
    eprintln!(
        "scenario cache A/B: without {} ms, with {} ms, p {}",
        lead["baseline_avg_ms"], lead["variant_avg_ms"], lead["p_value"]
    );
    assert_eq!(lead["significant"], true, "{lead}");
    assert!(lead["improvement_pct"].as_f64().unwrap() > 50.0, "{lead}");
    let same = ab_table(&s, "a", "b");
    assert_eq!(same["scenarios"], serde_json::json!(["f"]));
    for step in ["all", "f/x"] {
        let r = row(same, step);
        eprintln!(
            "identical variants, {step}: a {} ms, b {} ms, p {}",
            r["baseline_avg_ms"], r["variant_avg_ms"], r["p_value"]
        );
        assert_eq!(r["significant"], false, "{r}");
        assert!(r["seconds"].as_u64().unwrap() >= 6, "{r}");
    }
    // The cached scenario's steps are not in the identical variants' table, nor the reverse.
    assert!(same["rows"].as_array().unwrap().iter().all(|r| r["step"] != "c/lead"));
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("mixed: a vs b (interleaved)"), "{report}");
}

/// Bad interleaving is refused before anything runs, at its line and column: `interleave:`
/// without `variants:`, and a variant whose copy of a scenario would be named like another of
/// the plan's scenarios (their steps would share names).
#[test]
fn bad_interleaving_exits_2_at_its_line_and_column() {
    let base = "name: x\ntarget: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    interleave: true\n";
    let err = refused(base);
    assert!(
        err.contains("plan.yaml:12:17") && err.contains("`interleave:` without `variants:`"),
        "{err}"
    );
    let clash = base.replace(
        "phases:",
        "  \"s[new]\":\n    steps:\n      - { name: a, request: GET /new }\nphases:",
    ) + "    variants:\n      old: {}\n      new: { headers: { X-New: \"1\" } }\n";
    let err = refused(&clash);
    assert!(
        err.contains("plan.yaml:18:7") && err.contains("would be `s[new]`, a scenario of the plan"),
        "{err}"
    );
    // `run` refuses it the same way and writes nothing.
    let d = tmp();
    let (out, run) = run_plan(d.path(), &clash, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!run.exists());
}
