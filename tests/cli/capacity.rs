//! `stampede capacity` against the built-in target's `GET /work`: a pool of 8 workers × 50 ms,
//! so a capacity of exactly 160 req/s, a knee at 8 concurrent users, and (Little's law) a
//! response time of N / 160 s beyond it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::target::start_target;
use crate::*;

/// A plan without `phases`: the capacity search makes its own load levels.
fn plan(url: &str) -> String {
    format!("name: pool\ntarget: {url}\nscenarios:\n  work:\n    steps:\n      - {{ name: w, request: GET /work }}\n")
}

/// A two-level search (2 and 4 VUs, 2 s each) of `GET /fixed?ms=2` on `url`, written in
/// `dir`: the arguments of `stampede capacity` up to `--out dir/run` and the run directory,
/// for tests of what a search feeds (outputs, the dashboard) rather than what it finds.
pub fn quick_search(dir: &std::path::Path, url: &str) -> (Vec<String>, std::path::PathBuf) {
    let plan = write(
        dir,
        "plan.yaml",
        &format!("name: cap\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: fixed, request: GET /fixed?ms=2 }}\n"),
    );
    let out = dir.join("run");
    let args = [
        "capacity",
        plan.to_str().unwrap(),
        "--scenario",
        "s",
        "--slo",
        "p95 < 500ms",
        "--min",
        "2",
        "--max-vus",
        "4",
        "--step-duration",
        "2s",
        "--warmup",
        "0s",
        "--ramp-down",
        "0s",
        "--workers",
        "1",
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    (args.map(String::from).to_vec(), out)
}

fn capacity_args<'a>(plan: &'a str, out: &'a str, slo: &'a str) -> Vec<&'a str> {
    vec![
        "capacity",
        plan,
        "--scenario",
        "work",
        "--slo",
        slo,
        "--step-duration",
        "2s",
        "--warmup",
        "1s",
        "--ramp-down",
        "1s",
        "--workers",
        "2",
        "--out",
        out,
    ]
}

#[test]
fn closed_search_finds_the_pools_capacity_knee_and_littles_law_limit() {
    let t = start_target("test");
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url));
    let run = d.path().join("run");
    let started = Instant::now();
    let mut args = capacity_args(
        plan_path.to_str().unwrap(),
        run.to_str().unwrap(),
        "p95 < 150ms, error_rate < 5%",
    );
    args.extend(["--max-vus", "64", "--json"]);
    let out = stampede(&args);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(took < Duration::from_secs(150), "the search took {took:?}");
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("capacity JSON");
    eprintln!("search took {took:?}; {}", c["statement"]);

    let peak = c["peak_throughput_rps"].as_f64().unwrap();
    assert!((144.0..=176.0).contains(&peak), "peak {peak} req/s, capacity 160 req/s");
    let knee = c["saturation"].as_f64().expect("a knee");
    assert!((4.0..=12.0).contains(&knee), "knee at {knee} VUs, 8 workers");
    // Little's law: R = N / X, so p95 < 150 ms holds up to N ≈ 0.15 s × 160/s = 24 VUs.
    let cap = c["slo_capacity"].as_f64().expect("an SLO capacity");
    assert!(
        (16.0..=28.0).contains(&cap),
        "SLO capacity {cap} VUs, Little's law says ~24"
    );
    // p95 ≥ mean, so the mean's limit bounds it from above: N ≤ 0.15 s × X_peak (+ noise).
    assert!(
        cap <= 0.15 * peak * 1.1,
        "SLO capacity {cap} beyond Little's law on the mean"
    );
    let breaks = c["breaks_at"].as_f64().unwrap();
    assert!(breaks > cap && breaks <= 40.0, "breaks at {breaks}");
    assert!(c["recommended"].as_f64().unwrap() < cap);
    assert_eq!(c["slo_capacity_is_lower_bound"], false);
    let steps = c["steps"].as_array().unwrap();
    assert!((5..=12).contains(&steps.len()), "{} steps", steps.len());
    assert!(steps.iter().all(|s| s["load"].as_f64().unwrap() <= 64.0));
    // Past the knee every step obeys Little's law: mean latency = N / X.
    for s in steps.iter().filter(|s| s["load"].as_f64().unwrap() >= 16.0) {
        let (n, x, avg) = (
            s["load"].as_f64().unwrap(),
            s["throughput_rps"].as_f64().unwrap(),
            s["avg_ms"].as_f64().unwrap(),
        );
        let little = n / x * 1000.0;
        assert!(
            (avg - little).abs() / little < 0.15,
            "{n} VUs: avg {avg} ms, N/X {little} ms"
        );
    }
    for k in ["sigma", "kappa", "lambda", "r2"] {
        assert!(c["usl"][k].is_number(), "usl.{k}: {}", c["usl"]);
    }
    assert!(c["statement"].as_str().unwrap().contains("holds"));
    assert!(c["projections"][0].as_str().unwrap().contains("estimate"));

    // One run directory like any other: the steps are its phases, the summary holds the result.
    assert!(run.join("capacity.json").exists());
    // The report has the Capacity section and its two curves.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("charts/capacity-throughput.svg") && md.contains("charts/capacity-latency.svg"),
        "{md}"
    );
    let s = summary_json(&run);
    let phases: Vec<_> = s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].clone())
        .collect();
    assert_eq!(phases.len(), steps.len() + 1, "{phases:?}");
    assert_eq!(phases.last().unwrap(), "ramp-down");
    assert_eq!(s["capacity"]["slo_capacity"], c["slo_capacity"]);
    assert_eq!(s["status"], "completed");
}

#[test]
fn open_search_finds_the_pools_throughput() {
    let t = start_target("test");
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url));
    let run = d.path().join("run");
    let mut args = capacity_args(
        plan_path.to_str().unwrap(),
        run.to_str().unwrap(),
        "p95 < 250ms, error_rate < 5%",
    );
    args.extend([
        "--model",
        "open",
        "--min",
        "50",
        "--max-rate",
        "400",
        "--max-vus",
        "200",
        "--json",
    ]);
    // 50, 100, 200/s: the last one overshoots the pool, so its throughput is the pool's.
    let out = stampede(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).expect("capacity JSON");
    eprintln!("{}", c["statement"]);
    assert_eq!(c["model"], "open");
    let peak = c["peak_throughput_rps"].as_f64().unwrap();
    assert!((144.0..=176.0).contains(&peak), "peak {peak} req/s, capacity 160 req/s");
    let knee = c["saturation"].as_f64().expect("a knee");
    assert!((144.0..=176.0).contains(&knee), "knee at {knee}/s, capacity 160/s");
    // Beyond 160 arrivals/s the queue grows without bound: the SLO breaks just above it.
    let cap = c["slo_capacity"].as_f64().expect("an SLO capacity");
    assert!((120.0..=200.0).contains(&cap), "SLO capacity {cap}/s");
    assert!(c["steps"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["load"].as_f64().unwrap() <= 400.0));
}

#[test]
fn ctrl_c_keeps_the_steps_measured_and_exits_130() {
    let t = start_target("test");
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url));
    let run = d.path().join("run");
    let args = capacity_args(plan_path.to_str().unwrap(), run.to_str().unwrap(), "p95 < 10s");
    let child = bin()
        .args(&args)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the second step has started (the first is then in the table).
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(run.join("intervals.jsonl")).is_ok_and(|t| t.contains("\"vus-2\"")) {
        assert!(Instant::now() < deadline, "the second step never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rc = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(rc.success());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(s["status"], "interrupted");
    assert!(
        !s["capacity"]["steps"].as_array().unwrap().is_empty(),
        "{}",
        s["capacity"]
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("capacity of work"));
}

/// A capacity search starts the plan's monitors like any run: `monitors.jsonl` is written on
/// the run's clock, and the report shows the server series beside the levels.
#[test]
fn capacity_search_records_the_plans_monitors_and_reports_them() {
    let t = start_target("test");
    let d = tmp();
    let plan_text = format!(
        "{}monitors:\n  - {{ name: target, prometheus: {}/metrics, include: [\"/^stampede_target_service_.*/\"] }}\n",
        plan(&t.url),
        t.url
    );
    let plan_path = write(d.path(), "plan.yaml", &plan_text);
    let run = d.path().join("run");
    let mut args = capacity_args(plan_path.to_str().unwrap(), run.to_str().unwrap(), "p95 < 150ms");
    args.extend(["--max-vus", "4", "--json"]);
    let out = stampede(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let records = std::fs::read_to_string(run.join("monitors.jsonl")).expect("monitors.jsonl");
    let samples = records.lines().filter(|l| l.contains("\"target\"")).count();
    assert!(samples >= 3, "{samples} samples in {records}");
    let s = summary_json(&run);
    let server = s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["server"].as_array())
        .flatten()
        .count();
    assert!(server > 0, "no server metrics in any level: {s}");
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("Server metrics"), "{md}");
    assert!(md.contains("stampede_target_service_"), "{md}");
}

#[test]
fn bad_scenario_or_slo_exits_2_and_writes_nothing() {
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan("http://127.0.0.1:9"));
    let run = d.path().join("run");
    let p = plan_path.to_str().unwrap();
    let r = run.to_str().unwrap();
    let mut args = capacity_args(p, r, "p95 < 150ms");
    args[3] = "nope";
    let out = stampede(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no such scenario (it has: work)"), "{}", text(&out));
    let out = stampede(&capacity_args(p, r, "p95 < 5%"));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--slo"), "{}", text(&out));
    let mut args = capacity_args(p, r, "p95 < 150ms");
    args.extend(["--max-vus", "4", "--min", "8"]);
    let out = stampede(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(!run.exists());
}

#[test]
fn exploding_errors_stop_the_search_at_once() {
    let t = start_target("test");
    let d = tmp();
    let plan = format!(
        "name: broken\ntarget: {}\nscenarios:\n  work:\n    steps:\n      - {{ name: w, request: GET /status/500 }}\n",
        t.url
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let run = d.path().join("run");
    // A latency-only SLO: the explosion must still count as a breach.
    let mut args = capacity_args(plan_path.to_str().unwrap(), run.to_str().unwrap(), "p95 < 1s");
    args.push("--json");
    let started = Instant::now();
    let out = stampede(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(started.elapsed() < Duration::from_secs(20), "{:?}", started.elapsed());
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["steps"].as_array().unwrap().len(), 1, "{c}");
    assert!(c["slo_capacity"].is_null(), "{c}");
    assert!(c["stop_reason"].as_str().unwrap().contains("exploded"), "{c}");
    assert!(c["statement"].as_str().unwrap().contains("does not meet"), "{c}");
}

/// `runner::Session`, the building block of the search: phases chosen one at a time, one run
/// directory, interval times continuing across phases, a phase ended early by its watcher.
#[test]
fn a_session_runs_phases_one_at_a_time_into_one_run_directory() {
    use stampede::engine::Controls;
    use stampede::runner::Session;
    use stampede_plan::{Load, Phase, Weighted};

    let srv = TestServer::start(false);
    let d = tmp();
    let base = crate::library::plan(
        srv.addr,
        Load::Closed {
            vus: 1,
            duration: Duration::from_secs(1),
        },
    );
    let phase = |name: &str, vus: u32, secs: u64| Phase {
        name: name.into(),
        mix: vec![Weighted::new(0, 1)],
        load: Load::Closed {
            vus,
            duration: Duration::from_secs(secs),
        },
        grace: Duration::from_secs(2),
        variant: None,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let opts = crate::library::options(d.path().join("run"), 1);
    let host = crate::library::host();
    let started = Instant::now();
    let (a, b, outcome) = rt.block_on(async {
        let mut s = Session::create(base, &opts, host, Controls::default(), || "2026-01-01T00:00:09Z".into()).unwrap();
        let a = s.run_phase(phase("one", 1, 1), |_, _| false).await.unwrap();
        // Planned for 30 s, ended by the watcher after its second interval.
        let b = s.run_phase(phase("two", 2, 30), |iv, _| iv.seq >= 1).await.unwrap();
        (a, b, s.finish().await.unwrap())
    });
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(a.agg.requests() > 0 && b.agg.requests() > 0);
    assert!(!a.interrupted && !b.interrupted);
    let last_a = a.intervals.last().unwrap();
    assert!(
        b.intervals[0].t >= last_a.t + last_a.dur - 0.05,
        "times continue across phases"
    );
    let names: Vec<_> = outcome.summary.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["one", "two"]);
    assert!(outcome.summary.phases[1].duration_s < 5.0);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.path().join("run/meta.json")).unwrap()).unwrap();
    assert_eq!(meta["status"], "completed");
    // The phase ended early is recorded with the length it ran, not the 30 s planned.
    assert!(
        meta["phases"][1]["planned_s"].as_f64().unwrap() < 5.0,
        "{}",
        meta["phases"][1]
    );
}

/// An ordinary run whose phase ramps 1 → 48 VUs over the 8-worker × 50 ms pool (160 req/s,
/// knee at 8, p95 < 200 ms up to about 24 VUs) yields `capacity_estimate` from its own
/// seconds, and its report says it in the Capacity section.
#[test]
fn a_ramp_estimates_capacity_from_its_own_seconds() {
    let t = start_target("test");
    let d = tmp();
    let plan = format!(
        "{}thresholds: [\"p95 < 200ms\"]\nphases:\n  - {{ name: ramp, scenario: work, start_vus: 1, stages: [ {{ target: 48, duration: 30s }} ] }}\n",
        plan(&t.url)
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let run = d.path().join("run");
    let out = stampede(&[
        "run",
        plan_path.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--quiet",
        "--workers",
        "2",
    ]);
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
    let s = summary_json(&run);
    let e = &s["capacity_estimate"];
    assert!(e.is_object(), "no estimate: {}", text(&out));
    eprintln!("{}\n{}\n{}", e["statement"], e["basis"], e["uncertainty"]);
    let levels = e["steps"].as_array().unwrap();
    assert!(levels.len() >= 8, "{} levels", levels.len());
    let knee = e["saturation"].as_f64().expect("a knee");
    assert!((5.0..=12.0).contains(&knee), "knee at {knee} VUs, 8 workers");
    let peak = e["peak_throughput_rps"].as_f64().unwrap();
    assert!((144.0..=176.0).contains(&peak), "peak {peak} req/s, capacity 160 req/s");
    let slo = e["slo_capacity"].as_f64().expect("an SLO capacity");
    assert!((17.0..=31.0).contains(&slo), "SLO capacity {slo} VUs, truth 24");
    assert!(e["basis"].as_str().unwrap().contains("phase ramp"), "{}", e["basis"]);
    assert_eq!(e["slo"], serde_json::json!(["p95 < 200ms"]));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("## Capacity") && md.contains("estimated from this run's own seconds"),
        "{md}"
    );
}

/// A run at one constant load, or a ramp without a latency threshold, estimates nothing.
#[test]
fn one_load_level_or_no_slo_estimates_nothing() {
    let t = start_target("test");
    let d = tmp();
    for (name, tail) in [
        (
            "flat",
            "thresholds: [\"p95 < 200ms\"]\nphases:\n  - { name: flat, scenario: work, vus: 4, duration: 3s }\n",
        ),
        (
            "noslo",
            "phases:\n  - { name: ramp, scenario: work, start_vus: 1, stages: [ { target: 16, duration: 4s } ] }\n",
        ),
    ] {
        let plan_path = write(d.path(), &format!("{name}.yaml"), &format!("{}{tail}", plan(&t.url)));
        let run = d.path().join(name);
        let out = stampede(&[
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
        ]);
        assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
        let s = summary_json(&run);
        assert!(
            s.get("capacity_estimate").is_none(),
            "{name}: {}",
            s["capacity_estimate"]
        );
    }
}
