//! Monitors end to end: the built-in target's `/metrics`, processes, a real PostgreSQL and a
//! real Redis (started by `scripts/test.sh`), and the findings they lead to.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::target::{spawn_target, Target};
use crate::*;

/// A `db` connection pool of 4 connections held 200 ms per request: 20 req/s at most, so 12
/// closed-loop users keep it full.
const POOL_TARGET: &str = "services:\n  db: { workers: 4, queue: 100, queue_timeout: 30s, connection_pool: true }\nendpoints:\n  - { name: q, method: GET, path: /q, service: db, service_time: { fixed: 200ms } }\n  - { name: fast, method: GET, path: /fast }\n";

fn start_target(dir: &Path) -> Target {
    let cfg = write(dir, "target.yaml", POOL_TARGET);
    spawn_target(&["--config", cfg.to_str().unwrap()])
}

fn plan(url: &str, path: &str, vus: u32, secs: u32, monitors: &str) -> String {
    format!(
        "name: mon\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: GET {path} }}\nphases:\n  - {{ name: load, scenario: s, vus: {vus}, duration: {secs}s }}\nthresholds:\n  - p95 < 100ms\nmonitors:\n{monitors}"
    )
}

fn server_metric<'a>(s: &'a Value, name: &str) -> &'a Value {
    s["phases"][0]["server"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no server metric {name} in {}", s["phases"][0]["server"]))
}

/// Every file of a run directory, as text.
fn run_files(dir: &Path) -> String {
    let mut all = String::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
    }
    all
}

fn records(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("monitors.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_saturated_pool_is_a_finding_with_its_name_time_and_numbers() {
    let d = tmp();
    let t = start_target(d.path());
    let monitors = format!(
        "  - {{ name: target, prometheus: {}/metrics, include: [\"/^stampede_target_(connection_pool|service)_.*/\"] }}\n  - {{ host: true }}\n",
        t.url
    );
    let (out, run) = run_plan(d.path(), &plan(&t.url, "/q", 12, 5, &monitors), &[]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary_json(&run);
    let pool = server_metric(&s, "target.stampede_target_connection_pool_in_use{pool=\"db\"}");
    assert_eq!(pool["max"], 4.0, "{pool}");
    assert_eq!(
        server_metric(&s, "target.stampede_target_connection_pool_max{pool=\"db\"}")["min"],
        4.0
    );
    assert!(server_metric(&s, "host.cpu_percent")["unit"] == "%");
    let f = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Connection pool `db` saturated")
        .unwrap_or_else(|| panic!("no pool finding in {}", s["findings"]));
    let evidence = f["evidence"].to_string();
    assert!(evidence.contains("4/4"), "{evidence}");
    assert!(evidence.contains("from t="), "{evidence}");
    // 12 users on 20 req/s: ~600 ms p95 against the 100 ms threshold.
    assert!(evidence.contains("p95 < 100ms"), "{evidence}");
    assert_eq!(f["priority"], "critical");
    assert_eq!(f["phase"], "load");
    let at = f["at_s"].as_f64().unwrap();
    assert!((0.0..3.0).contains(&at), "{at}");
    assert!(!f["recommendation"].as_str().unwrap().is_empty());
    // The `db` service is also its connection pool: one finding, not a second "worker pool" one.
    assert!(
        !s["findings"].to_string().contains("Worker pool `db`"),
        "{}",
        s["findings"]
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("findings:") && stdout.contains("Connection pool `db` saturated"),
        "{stdout}"
    );
    // Samples share the run's clock: the first lands within the first second.
    let recs = records(&run);
    assert!(recs
        .iter()
        .any(|r| r["monitor"] == "target" && r["t"].as_f64().unwrap() < 1.0));
}

#[test]
fn a_failing_monitor_is_reported_once_and_the_load_goes_on() {
    let d = tmp();
    let t = start_target(d.path());
    // Nothing listens on port 1; the postgres URL carries a password that must not leak.
    let monitors = "  - { name: dead, prometheus: http://127.0.0.1:1/metrics }\n  - { name: db, postgres: \"postgres://app:hunter2-secret@127.0.0.1:1/app\" }\n  - { name: cache, redis: \"redis://:${REDIS_PASSWORD}@127.0.0.1:1\" }\n";
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url, "/fast", 2, 3, monitors));
    let run = d.path().join("run");
    let out = bin()
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .env("REDIS_PASSWORD", "redis-pw-secret")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("monitor dead:").count(), 1, "{stderr}");
    assert_eq!(stderr.matches("monitor db:").count(), 1, "{stderr}");
    let s = summary_json(&run);
    assert!(s["phases"][0]["requests"].as_u64().unwrap() > 10);
    let warnings = s["warnings"].to_string();
    assert!(warnings.contains("monitor `dead` failed"), "{warnings}");
    let recs = records(&run);
    assert_eq!(
        recs.iter()
            .filter(|r| r["monitor"] == "dead" && r["error"].is_string())
            .count(),
        1
    );
    let all = run_files(&run) + &stderr + &String::from_utf8_lossy(&out.stdout);
    assert!(!all.contains("hunter2-secret"), "a monitor URL's password leaked");
    assert!(!all.contains("redis-pw-secret"), "a monitor URL's password leaked");
    assert!(run_files(&run).contains("postgres://app:***@127.0.0.1:1/app"));
    // A torn last line (a killed run) is skipped with a warning; the rest still reads.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(run.join("monitors.jsonl"))
        .unwrap();
    f.write_all(b"{\"t\":9.0,\"monitor\":\"de").unwrap();
    let s = summary_json(&run);
    assert!(
        s["warnings"].to_string().contains("monitors.jsonl:"),
        "{}",
        s["warnings"]
    );
    assert!(s["warnings"].to_string().contains("monitor `dead` failed"));
}

#[test]
fn a_killed_and_restarted_process_is_reported_as_a_restart() {
    let d = tmp();
    let t = start_target(d.path());
    let pid_file = d.path().join("worker.pid");
    let spawn = || Command::new("sleep").arg("60").spawn().unwrap();
    let mut worker = spawn();
    std::fs::write(&pid_file, worker.id().to_string()).unwrap();
    let monitors = format!("  - {{ name: worker, pid_file: {} }}\n", pid_file.display());
    let p = plan(&t.url, "/fast", 1, 6, &monitors);
    let pf = pid_file.clone();
    let samples = d.path().join("run").join("monitors.jsonl");
    let killer = std::thread::spawn(move || {
        // Kill once the monitor has seen the process twice, however slowly the run started.
        let seen = || {
            std::fs::read_to_string(&samples)
                .map(|t| t.lines().count())
                .unwrap_or(0)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while seen() < 2 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = worker.kill();
        let _ = worker.wait();
        let mut again = spawn();
        std::fs::write(&pf, again.id().to_string()).unwrap();
        std::thread::sleep(Duration::from_secs(5));
        let _ = again.kill();
        let _ = again.wait();
    });
    let (out, run) = run_plan(d.path(), &p, &[]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary_json(&run);
    assert_eq!(server_metric(&s, "worker.restarts")["max"], 1.0);
    assert_eq!(server_metric(&s, "worker.count")["max"], 1.0);
    let f = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"].as_str().unwrap().starts_with("Worker instability"))
        .unwrap_or_else(|| panic!("no restart finding in {}", s["findings"]));
    let at = f["at_s"].as_f64().unwrap();
    assert!((1.0..6.0).contains(&at), "restart seen at {at}");
    assert!(
        f["evidence"].to_string().contains("restarted 1 time"),
        "{}",
        f["evidence"]
    );
    killer.join().unwrap();
}

#[test]
fn postgres_under_pgbench_load_shows_connections_and_hit_ratio() {
    let url = env_url("STAMPEDE_TEST_PG_URL");
    let pgbench = std::env::var("STAMPEDE_TEST_PGBENCH").unwrap_or_else(|_| "pgbench".into());
    let d = tmp();
    let t = start_target(d.path());
    // The URL comes from the environment, as a user's plan would take it.
    let monitors = "  - { name: pg, postgres: \"${PG_URL}\" }\n";
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url, "/fast", 1, 5, monitors));
    let run = d.path().join("run");
    let password = url
        .split(':')
        .nth(2)
        .and_then(|x| x.split('@').next())
        .unwrap_or("")
        .to_string();
    let host_port = url.rsplit('@').next().unwrap().split('/').next().unwrap().to_string();
    let (host, port) = host_port.split_once(':').unwrap();
    // 8 clients of select-only pgbench, outlasting the 5 s run.
    let mut bench = Command::new(&pgbench)
        .args([
            "-h", host, "-p", port, "-U", "postgres", "-c", "8", "-j", "2", "-S", "-T", "8", "postgres",
        ])
        .env("PGPASSWORD", &password)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {pgbench}: {e}"));
    let out = bin()
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .env("PG_URL", &url)
        .output()
        .unwrap();
    let status = bench.wait().unwrap();
    let mut err = String::new();
    let _ = bench.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "pgbench failed: {err}");
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary_json(&run);
    let conns = server_metric(&s, "pg.connections_in_use");
    assert!(conns["max"].as_f64().unwrap() >= 8.0, "pgbench's 8 clients: {conns}");
    assert_eq!(server_metric(&s, "pg.max_connections")["max"], 50.0);
    let hit = server_metric(&s, "pg.cache_hit_ratio");
    assert!(
        hit["avg"].as_f64().unwrap() > 0.5 && hit["max"].as_f64().unwrap() <= 1.0,
        "{hit}"
    );
    assert!(server_metric(&s, "pg.transactions_per_s")["max"].as_f64().unwrap() > 100.0);
    server_metric(&s, "pg.longest_query_s");
    server_metric(&s, "pg.waiting");
    server_metric(&s, "pg.deadlocks");
    assert!(
        !run_files(&run).contains(&password),
        "the PostgreSQL password leaked into the run directory"
    );
}

/// Sends RESP commands and reads one line of reply each (enough for SET/GET of short values).
fn redis_client(url: &str, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) -> std::thread::JoinHandle<()> {
    let rest = url.strip_prefix("redis://:").unwrap();
    let (password, rest) = rest.split_once('@').unwrap();
    let addr = rest.split('/').next().unwrap().to_string();
    let password = password.to_string();
    std::thread::spawn(move || {
        let mut c = TcpStream::connect(&addr).unwrap();
        let mut r = BufReader::new(c.try_clone().unwrap());
        let mut cmd = |args: &[&str]| {
            let mut s = format!("*{}\r\n", args.len());
            for a in args {
                s.push_str(&format!("${}\r\n{a}\r\n", a.len()));
            }
            c.write_all(s.as_bytes()).unwrap();
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            if line.starts_with('$') && line.trim() != "$-1" {
                let mut v = String::new();
                r.read_line(&mut v).unwrap();
            }
        };
        cmd(&["AUTH", &password]);
        cmd(&["SET", "k", "v"]);
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            cmd(&["GET", "k"]);
            cmd(&["GET", "k"]);
            cmd(&["GET", "k"]);
            cmd(&["GET", "missing"]);
        }
    })
}

#[test]
fn redis_shows_clients_hit_ratio_and_ops() {
    let url = env_url("STAMPEDE_TEST_REDIS_URL");
    let d = tmp();
    let t = start_target(d.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = redis_client(&url, stop.clone());
    let monitors = "  - { name: cache, redis: \"${REDIS_URL}\" }\n";
    let plan_path = write(d.path(), "plan.yaml", &plan(&t.url, "/fast", 1, 4, monitors));
    let run = d.path().join("run");
    let out = bin()
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .env("REDIS_URL", &url)
        .output()
        .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    client.join().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary_json(&run);
    assert!(server_metric(&s, "cache.connected_clients")["max"].as_f64().unwrap() >= 2.0);
    let hit = server_metric(&s, "cache.hit_ratio");
    // Three hits for every miss.
    assert!((hit["avg"].as_f64().unwrap() - 0.75).abs() < 0.05, "{hit}");
    assert!(server_metric(&s, "cache.ops_per_s")["max"].as_f64().unwrap() > 100.0);
    assert!(server_metric(&s, "cache.used_memory_bytes")["min"].as_f64().unwrap() > 0.0);
    assert!(!run_files(&run).contains("stampede-test-pw"));
}

#[test]
fn monitor_plan_errors_point_at_the_line() {
    let d = tmp();
    let cases = [
        ("  - { host: true, interval: 1s, labls: {} }\n", "unknown key `labls`"),
        ("  - { host: true, redis: \"redis://h\" }\n", "one kind"),
        ("  - { name: x }\n", "needs a kind"),
        ("  - { prometheus: \"ftp://x\" }\n", "prometheus:"),
        (
            "  - { prometheus: \"http://x/m\", include: [\"/(/\"] }\n",
            "not a valid regex",
        ),
        (
            "  - { host: true, include: [a] }\n",
            "only applies to a `prometheus` monitor",
        ),
        ("  - { postgres: \"mysql://x\" }\n", "not a postgres:// URL"),
        ("  - { host: true }\n  - { host: true }\n", "defined twice"),
        ("  - { host: true, interval: 10ms }\n", "too short"),
    ];
    for (monitors, want) in cases {
        let p = write(d.path(), "plan.yaml", &plan("http://127.0.0.1:1", "/", 1, 1, monitors));
        let out = stampede(&["validate", p.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{monitors}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{monitors}: {err}");
        assert!(
            err.contains("plan.yaml:12:") || err.contains("plan.yaml:13:"),
            "{monitors}: {err}"
        );
    }
}

/// A cached endpoint whose hit ratio drops from 95 % to 60 % above 15 requests in flight.
const CACHE_TARGET: &str = "endpoints:\n  - name: lead\n    method: GET\n    path: /lead\n    service_time: { fixed: 100ms }\n    cache: { hit_ratio: 0.95, hit_ratio_under_load: 0.6, when_busy_above: 15, hit_time: { fixed: 50ms } }\n";

#[test]
fn a_cache_hit_ratio_falling_under_load_is_a_finding() {
    let d = tmp();
    let cfg = write(d.path(), "target.yaml", CACHE_TARGET);
    let t = spawn_target(&["--config", cfg.to_str().unwrap()]);
    let p = format!(
        "name: cache\ntarget: {}\nscenarios:\n  s:\n    steps:\n      - {{ name: lead, request: GET /lead }}\nphases:\n  - {{ name: quiet, scenario: s, vus: 4, duration: 5s }}\n  - {{ name: busy, scenario: s, vus: 40, duration: 5s }}\nmonitors:\n  - {{ name: target, prometheus: {}/metrics, include: [\"/cache/\"] }}\n",
        t.url, t.url
    );
    let (out, run) = run_plan(d.path(), &p, &[]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{}", text(&out));
    let s = summary_json(&run);
    let f = s["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| {
            f["title"]
                .as_str()
                .unwrap()
                .starts_with("Cache hit ratio falls under load")
        })
        .unwrap_or_else(|| panic!("no cache finding in {}", s["findings"]));
    assert_eq!(f["phase"], "busy", "{f}");
    let ratio = |phase: usize| {
        s["phases"][phase]["server"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == "target.stampede_target_cache_hit_ratio{endpoint=\"lead\"}")
            .unwrap_or_else(|| panic!("no hit ratio in {}", s["phases"][phase]["server"]))["avg"]
            .as_f64()
            .unwrap()
    };
    assert!(
        ratio(0) > 0.85 && ratio(1) < 0.75,
        "quiet {} busy {}",
        ratio(0),
        ratio(1)
    );
}
