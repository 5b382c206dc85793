//! `stampede alerts`: the rules pass Debian's `promtool check rules`, and `promtool test rules`
//! fires the critical p95 rule on series above the SLO and not on series below it.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

use crate::target::spawn_target;
use crate::*;

/// Debian's `prometheus` package (scripts/test.sh installs it).
const PROMTOOL: &str = "promtool";

fn promtool(args: &[&str]) -> std::process::Output {
    Command::new(PROMTOOL)
        .args(args)
        .output()
        .expect("promtool (Debian's `prometheus` package, installed by scripts/test.sh)")
}

/// `stampede alerts SOURCE -o DIR/rules.yaml`; returns the file and its rules as JSON.
fn alerts(source: &Path, dir: &Path) -> (PathBuf, Value) {
    let file = dir.join("rules.yaml");
    let out = stampede(&["alerts", source.to_str().unwrap(), "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let check = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(
        check.status.success(),
        "promtool check rules refused it: {}",
        text(&check)
    );
    let yaml = std::fs::read_to_string(&file).unwrap();
    (file, serde_saphyr::from_str(&yaml).unwrap())
}

fn all_rules(v: &Value) -> Vec<&Value> {
    v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect()
}

fn find<'a>(v: &'a Value, alert: &str, severity: &str) -> &'a Value {
    all_rules(v)
        .into_iter()
        .find(|r| r["alert"] == alert && r["labels"]["severity"] == severity && r["labels"].get("step").is_none())
        .unwrap_or_else(|| panic!("no {alert} {severity} in {v}"))
}

/// A classic histogram of one minute's 600 requests a minute, all within `(lo, hi]` seconds.
fn histogram(lo: f64, hi: f64) -> Vec<Value> {
    ["0.05", "0.1", "0.25", "0.5", "1", "+Inf"]
        .iter()
        .map(|le| {
            let bound: f64 = le.parse().unwrap_or(f64::INFINITY);
            let per_min = if bound >= hi {
                600
            } else if bound <= lo {
                0
            } else {
                300
            };
            json!({
                "series": format!("stampede_latency_seconds_bucket{{phase=\"peak\",step=\"GET /leads\",le=\"{le}\"}}"),
                "values": format!("0+{per_min}x20"),
            })
        })
        .collect()
}

/// A `promtool test rules` case: the `alert`'s firing instances at 10 min are `expect`
/// (severity, slo label).
fn case(series: Vec<Value>, alert: &str, expect: &[(&str, &str)]) -> Value {
    let samples: Vec<Value> = expect
        .iter()
        .map(|(sev, slo)| {
            json!({
                "labels": format!("ALERTS{{alertname=\"{alert}\",alertstate=\"firing\",severity=\"{sev}\",slo=\"{slo}\"}}"),
                "value": 1,
            })
        })
        .collect();
    json!({
        "interval": "1m",
        "input_series": series,
        "promql_expr_test": [{
            "expr": format!("ALERTS{{alertname=\"{alert}\",alertstate=\"firing\"}}"),
            "eval_time": "10m",
            "exp_samples": samples,
        }],
    })
}

/// Runs `promtool test rules` on these cases (JSON is YAML); `true` when every case held.
fn promtool_test(dir: &Path, rules: &Path, cases: Vec<Value>) -> (bool, String) {
    let file = dir.join("tests.yaml");
    let doc = json!({ "rule_files": [rules], "evaluation_interval": "1m", "tests": cases });
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = promtool(&["test", "rules", file.to_str().unwrap()]);
    (out.status.success(), text(&out))
}

#[test]
fn the_insurance_plan_gives_rules_promtool_accepts_and_the_critical_p95_fires_above_the_slo_only() {
    let d = tmp();
    let plan = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/insurance-leads.yaml");
    let (file, rules) = alerts(&plan, d.path());
    // The seed's levels: p95 < 300 ms → warning at 180 ms (60%), critical at 300 ms.
    let warn = find(&rules, "LatencyP95High", "warning");
    let crit = find(&rules, "LatencyP95High", "critical");
    assert!(warn["expr"].as_str().unwrap().ends_with("> 0.18"), "{warn}");
    assert!(crit["expr"].as_str().unwrap().ends_with("> 0.3"), "{crit}");
    assert_eq!(crit["for"], "2m");
    assert!(
        crit["annotations"]["plan"]
            .as_str()
            .unwrap()
            .contains("insurance-leads"),
        "{crit}"
    );
    assert!(find(&rules, "ErrorRateHigh", "critical")["expr"]
        .as_str()
        .unwrap()
        .ends_with("> 0.005"));
    // The step-scoped threshold is its own rule, on its step's series only.
    assert!(all_rules(&rules)
        .iter()
        .any(|r| r["labels"]["step"] == "GET /health" && r["expr"].as_str().unwrap().contains("step=\"GET /health\"")));

    let slo = "p95 < 300ms";
    // p95 of requests between 0.5 s and 1 s: both levels fire; under 0.1 s: neither.
    let above = case(
        histogram(0.5, 1.0),
        "LatencyP95High",
        &[("critical", slo), ("warning", slo)],
    );
    let below = case(histogram(0.0, 0.1), "LatencyP95High", &[]);
    let (ok, out) = promtool_test(d.path(), &file, vec![above, below]);
    assert!(ok, "{out}");
    // The check can fail: below the SLO, the critical rule is not firing.
    let wrong = case(histogram(0.0, 0.1), "LatencyP95High", &[("critical", slo)]);
    let (ok, out) = promtool_test(d.path(), &file, vec![wrong]);
    assert!(!ok, "the critical rule fired below the SLO: {out}");
}

#[test]
fn a_run_directory_gives_warning_levels_from_what_it_measured_and_rules_for_its_monitors() {
    let d = tmp();
    let cfg = write(
        d.path(),
        "target.yaml",
        "services:\n  db: { workers: 4, queue: 100, queue_timeout: 30s, connection_pool: true }\nendpoints:\n  - { name: q, method: GET, path: /q, service: db, service_time: { fixed: 20ms }, cache: { hit_ratio: 0.5 } }\n",
    );
    let t = spawn_target(&["--config", cfg.to_str().unwrap()]);
    let plan = format!(
        "name: alerting\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: q, request: GET /q }}\nphases:\n  - {{ name: load, scenario: s, vus: 4, duration: 3s }}\nthresholds:\n  - p95 < 2s\n  - error_rate < 5%\nmonitors:\n  - {{ name: app, prometheus: {url}/metrics, include: [\"/^stampede_target_(connection_pool|cache)_.*/\"] }}\n  - {{ host: true }}\n",
        url = t.url
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let p95_ms = s["phases"][0]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["expr"] == "p95 < 2s")
        .unwrap()["value"]
        .as_f64()
        .unwrap();
    let (_, rules) = alerts(&run, d.path());
    let warn = find(&rules, "LatencyP95High", "warning");
    let level: f64 = warn["expr"]
        .as_str()
        .unwrap()
        .rsplit("> ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    // Measured + 20%, within 10% and 90% of the 2 s limit, in seconds.
    let expected = (p95_ms * 1.2).clamp(200.0, 1800.0) / 1000.0;
    assert!(
        (level - expected).abs() < 1e-5,
        "warning {level} s, measured p95 {p95_ms} ms: {warn}"
    );
    let run_id = run.file_name().unwrap().to_str().unwrap();
    assert!(
        warn["annotations"]["run"].as_str().unwrap().starts_with(run_id),
        "{warn}"
    );
    assert!(
        warn["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("measured"),
        "{warn}"
    );
    assert!(find(&rules, "LatencyP95High", "critical")["expr"]
        .as_str()
        .unwrap()
        .ends_with("> 2"));
    // The families the monitor scraped: the pool and the cache of the target.
    let pool = find(&rules, "PoolHigh", "critical");
    assert_eq!(
        pool["expr"],
        "stampede_target_connection_pool_in_use / stampede_target_connection_pool_max > 0.95"
    );
    assert!(
        pool["annotations"]["measured"].as_str().unwrap().contains("%"),
        "{pool}"
    );
    let cache = find(&rules, "CacheHitRatioLow", "warning");
    assert!(
        cache["expr"]
            .as_str()
            .unwrap()
            .contains("rate(stampede_target_cache_hits_total[5m])"),
        "{cache}"
    );
    // The host monitor: node_exporter's names, the seed's 70% / 85% for 5 minutes.
    let cpu = find(&rules, "HostCpuHigh", "warning");
    assert!(
        cpu["expr"].as_str().unwrap().contains("node_cpu_seconds_total"),
        "{cpu}"
    );
    assert!(cpu["expr"].as_str().unwrap().ends_with("> 0.7"), "{cpu}");
    assert_eq!(cpu["for"], "5m");
    assert!(find(&rules, "HostMemoryHigh", "critical")["expr"]
        .as_str()
        .unwrap()
        .ends_with("> 0.9"));
}

#[test]
fn bad_input_exits_2_and_writes_nothing() {
    let d = tmp();
    let out_file = d.path().join("rules.yaml");
    let o = out_file.to_str().unwrap();
    // No plan there.
    let missing = d.path().join("nope.yaml");
    let r = stampede(&["alerts", missing.to_str().unwrap(), "-o", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    // A plan with nothing to alert on.
    let bare = write(
        d.path(),
        "bare.yaml",
        "name: bare\ntarget: http://127.0.0.1:1\nscenarios:\n  s:\n    steps:\n      - { name: a, request: GET / }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n",
    );
    let r = stampede(&["alerts", bare.to_str().unwrap(), "-o", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("nothing to alert on"),
        "{}",
        text(&r)
    );
    // A directory that is not a run.
    let r = stampede(&["alerts", d.path().to_str().unwrap(), "-o", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("not a run directory"),
        "{}",
        text(&r)
    );
    // A plan error says where.
    let broken = write(d.path(), "broken.yaml", "name: x\nthresholds:\n  - p95 <\n");
    let r = stampede(&["alerts", broken.to_str().unwrap(), "-o", o]);
    assert_eq!(r.status.code(), Some(2), "{}", text(&r));
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("broken.yaml:3:"),
        "{}",
        text(&r)
    );
    assert!(!out_file.exists(), "nothing is written on bad input");
    assert_eq!(
        std::fs::read_dir(d.path()).unwrap().count(),
        2,
        "only the two plans: no temp file left"
    );
}

#[test]
fn monitors_get_the_seeds_levels_on_the_exporters_names_and_the_pool_rule_fires_between_them() {
    let d = tmp();
    let plan = write(
        d.path(),
        "plan.yaml",
        "name: stack\nmonitors:\n  - { postgres: \"postgres://app:${PGPASSWORD:-x}@127.0.0.1:5432/app\" }\n  - { redis: \"redis://127.0.0.1:6379\" }\n  - { process: nginx }\n  - { name: app, prometheus: \"http://127.0.0.1:9/metrics\", include: [\"/^app_/\"] }\n",
    );
    let file = d.path().join("rules.yaml");
    let out = stampede(&["alerts", plan.to_str().unwrap(), "-o", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("monitor `nginx` (process): no alert rule"), "{err}");
    assert!(
        err.contains("monitor `app` (prometheus): its families are known once"),
        "{err}"
    );
    let check = promtool(&["check", "rules", file.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check));
    let rules: Value = serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(
        rules["groups"].as_array().unwrap().len(),
        1,
        "no thresholds: no SLO group"
    );
    let pool = find(&rules, "PostgresPoolHigh", "warning");
    assert!(
        pool["expr"].as_str().unwrap().contains("pg_settings_max_connections"),
        "{pool}"
    );
    assert!(
        pool["annotations"]["description"]
            .as_str()
            .unwrap()
            .contains("postgres_exporter"),
        "{pool}"
    );
    assert!(find(&rules, "RedisCacheHitRatioLow", "warning")["expr"]
        .as_str()
        .unwrap()
        .contains("redis_keyspace_misses_total"));
    assert!(!err.contains("password") && !std::fs::read_to_string(&file).unwrap().contains("postgres://"));

    // 90 of 100 connections: the 80% warning fires, the 95% critical does not; 97: both.
    let pg = |in_use: u32| {
        let firing: Vec<Value> = ["warning", "critical"]
            .iter()
            .take(if in_use > 95 { 2 } else { 1 })
            .map(|sev| {
                json!({
                    "labels": format!("ALERTS{{alertname=\"PostgresPoolHigh\",alertstate=\"firing\",instance=\"db:9187\",monitor=\"postgres\",severity=\"{sev}\"}}"),
                    "value": 1,
                })
            })
            .collect();
        json!({
            "interval": "1m",
            "input_series": [
                { "series": "pg_stat_activity_count{instance=\"db:9187\",datname=\"app\",state=\"active\"}", "values": format!("{}x10", in_use - 10) },
                { "series": "pg_stat_activity_count{instance=\"db:9187\",datname=\"app\",state=\"idle\"}", "values": "10x10" },
                { "series": "pg_settings_max_connections{instance=\"db:9187\"}", "values": "100x10" },
            ],
            "promql_expr_test": [{
                "expr": "ALERTS{alertname=\"PostgresPoolHigh\",alertstate=\"firing\"}",
                "eval_time": "5m",
                "exp_samples": firing,
            }],
        })
    };
    let (ok, out) = promtool_test(d.path(), &file, vec![pg(90), pg(97)]);
    assert!(ok, "{out}");
}
