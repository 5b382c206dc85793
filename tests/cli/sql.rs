//! SQL steps against a real PostgreSQL (started by scripts/test-services.sh): the statements
//! stampede counts are the ones PostgreSQL ran, EXPLAIN tells an index from a sequential scan,
//! errors are classified by SQLSTATE, bad SQL is refused before any load, and no password
//! shows anywhere.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::*;

fn pg_url() -> String {
    std::env::var("STAMPEDE_TEST_PG_URL").unwrap_or_else(|_| {
        panic!("STAMPEDE_TEST_PG_URL is not set: run the tests through scripts/test.sh, which starts PostgreSQL on loopback (or `eval \"$(scripts/test-services.sh)\"` first)")
    })
}

/// Runs SQL on the test database; the text of every row of the last statement's result.
pub fn psql(url: &str, sql: &str) -> Vec<Vec<String>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .expect("connect to the test database");
        let driver = tokio::spawn(conn);
        let msgs = client.simple_query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
        drop(client);
        let _ = driver.await;
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_string()).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// A table name of this test's own (tests run in parallel on one database).
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "stampede_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Index scans PostgreSQL counted on `table`, once its backends have flushed their statistics
/// (at their exit, or within a second while idle): the value once it has stopped changing.
fn idx_scans(url: &str, table: &str) -> u64 {
    let read = || {
        psql(
            url,
            &format!("SELECT coalesce(idx_scan, 0) FROM pg_stat_user_tables WHERE relname = '{table}'"),
        )[0][0]
            .parse::<u64>()
            .unwrap()
    };
    let mut last = read();
    for _ in 0..20 {
        std::thread::sleep(std::time::Duration::from_millis(300));
        let now = read();
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
    last
}

/// Exact counts: the UPDATEs stampede reports are the counter's increments in the table, and
/// its lookups by id the index scans PostgreSQL counted; EXPLAIN says which statement uses the
/// primary key's index and which scans the table.
#[test]
fn statements_counted_are_the_ones_postgresql_ran_and_explain_tells_index_from_scan() {
    let url = pg_url();
    let (t, c) = (unique("leads"), unique("counter"));
    psql(
        &url,
        &format!(
            "CREATE TABLE {t} (id int PRIMARY KEY, status text NOT NULL, n int NOT NULL);
             INSERT INTO {t} SELECT g, CASE WHEN g % 2 = 0 THEN 'new' ELSE 'won' END, g % 97 FROM generate_series(1, 2000) g;
             CREATE TABLE {c} (id int PRIMARY KEY, n int NOT NULL); INSERT INTO {c} VALUES (1, 0);
             ANALYZE {t};"
        ),
    );
    let before = idx_scans(&url, &t);
    let d = tmp();
    let plan = format!(
        r#"name: sql
databases:
  app: {{ url: "{url}" }}
scenarios:
  s:
    steps:
      - name: by-id
        sql: app
        query: SELECT id, status FROM {t} WHERE id = $1
        params: [ "{{{{ random_int(1, 199) }}}}0" ]
        checks: [ {{ rows: 1 }}, {{ column: status, equals: new }} ]
        capture: {{ status: {{ column: status }} }}
        explain: true
      - name: scan
        sql: app
        query: SELECT count(*) FROM {t} WHERE n > $1
        params: [ "{{{{ random_int(1, 90) }}}}" ]
        checks: [ {{ rows: ">= 1" }} ]
        explain: true
      - name: bump
        sql: app
        transaction:
          - {{ name: add, query: "UPDATE {c} SET n = n + 1 WHERE id = 1" }}
          - {{ name: read, query: "SELECT n FROM {c} WHERE id = $1", params: [ "1" ] }}
        checks: [ {{ rows: 1 }} ]
phases:
  - {{ name: p, scenario: s, vus: 4, iterations: 300, max_duration: 30s }}
"#
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let by_id = step_named(&s, "by-id");
    assert_eq!(by_id["requests"], 300, "{by_id}");
    assert_eq!(by_id["errors"], 0, "{by_id}");
    assert_eq!(by_id["sql"]["rows"], 300);
    assert_eq!(step_named(&s, "bump")["requests"], 300);
    assert_eq!(
        step_named(&s, "bump:add")["requests"],
        300,
        "a transaction's statements are timed too"
    );
    assert_eq!(step_named(&s, "bump:read")["requests"], 300);
    let counted = psql(&url, &format!("SELECT n FROM {c} WHERE id = 1"))[0][0].clone();
    assert_eq!(counted, "300", "every UPDATE committed once");
    // The lookups by id (and the transaction's reads go to the other table).
    assert_eq!(
        idx_scans(&url, &t) - before,
        300,
        "PostgreSQL's own count of index scans"
    );
    let e = &by_id["sql"]["explain"];
    assert_eq!(e["index_used"], true, "{e}");
    assert_eq!(e["seq_scan_tables"], serde_json::json!([]), "{e}");
    let e = &step_named(&s, "scan")["sql"]["explain"];
    assert_eq!(e["seq_scan_tables"], serde_json::json!([t.clone()]), "{e}");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Database"), "{report}");
    assert!(
        report.contains("needs optimization: scans a large table sequentially"),
        "{report}"
    );
    assert!(report.contains(&format!("✅ {t}_pkey")), "{report}");
    assert_eq!(
        e["large_seq_scans"],
        serde_json::json!([t.clone()]),
        "2,000 rows is large: {e}"
    );
    let explain = std::fs::read_to_string(run.join("explain.json")).unwrap();
    assert!(explain.contains("\"at_end\""), "EXPLAINed again at the end");
    psql(&url, &format!("DROP TABLE {t}; DROP TABLE {c}"));
}

/// PostgreSQL's refusals under load are counted by SQLSTATE and classed: a unique violation,
/// a statement cancelled at its timeout (load), a check on rows that fails.
#[test]
fn postgresql_errors_are_counted_by_sqlstate() {
    let url = pg_url();
    let t = unique("uniq");
    psql(&url, &format!("CREATE TABLE {t} (id int PRIMARY KEY)"));
    let d = tmp();
    let plan = format!(
        r#"name: sql-errors
databases:
  app: {{ url: "{url}" }}
scenarios:
  s:
    steps:
      - {{ name: insert, sql: app, query: "INSERT INTO {t} VALUES ($1)", params: [ "7" ] }}
      - {{ name: slow, sql: app, query: "SELECT pg_sleep(1)", timeout: 200ms }}
      - {{ name: none, sql: app, query: "SELECT 1 WHERE false", checks: [ {{ rows: 1, name: "one row" }} ] }}
phases:
  - {{ name: p, scenario: s, vus: 1, iterations: 3, max_duration: 30s }}
"#
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let insert = step_named(&s, "insert");
    assert_eq!(insert["errors"], 2, "the first insert wins: {insert} {}", text(&out));
    assert_eq!(insert["errors_by_kind"]["sql_23505"], 2, "{insert}");
    let samples = insert["error_samples"].to_string();
    assert!(samples.contains("duplicate key"), "{samples}");
    assert_eq!(
        step_named(&s, "slow")["errors_by_kind"]["sql_57014"],
        3,
        "{}",
        step_named(&s, "slow")
    );
    assert_eq!(step_named(&s, "none")["errors_by_kind"]["check:one row"], 3);
    assert_eq!(
        s["phases"][0]["errors_by_class"]["load"], 3,
        "statement timeouts are load"
    );
    psql(&url, &format!("DROP TABLE {t}"));
}

/// Refused before any load, with exit 2, the plan's place and PostgreSQL's words, and no run
/// directory: a parameter count that does not match, a syntax error, a missing table, an
/// unknown database name; a wrong password says so without showing it.
#[test]
fn bad_sql_is_refused_before_any_load_with_where_and_why() {
    let url = pg_url();
    let cases: &[(&str, &str, &str)] = &[
        (
            "query: SELECT $1::int + $2::int\n        params: [ \"1\" ]",
            "takes 2 parameter(s)",
            "plan.yaml:9:16",
        ),
        ("query: SELEC 1", "42601", "plan.yaml:9:16"),
        ("query: SELECT * FROM stampede_no_such_table", "42P01", "plan.yaml:9:16"),
    ];
    for (step_text, says, at) in cases {
        let d = tmp();
        let plan = format!(
            "name: bad\ndatabases:\n  app: {{ url: \"{url}\" }}\nscenarios:\n  s:\n    steps:\n      - name: q\n        sql: app\n        {step_text}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 1 }}\n"
        );
        let (out, run) = run_plan(d.path(), &plan, &[]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let msg = text(&out);
        assert!(msg.contains(says), "{step_text}: {msg}");
        assert!(msg.contains(at), "{step_text}: {msg}");
        assert!(!run.exists(), "nothing written for {step_text}");
    }
    let d = tmp();
    let plan = "name: bad\ndatabases:\n  app: { url: \"postgres://x@127.0.0.1:1/x\" }\nscenarios:\n  s:\n    steps:\n      - { name: q, sql: ap, query: SELECT 1 }\nphases:\n  - { name: p, scenario: s, vus: 1, iterations: 1 }\n";
    let (out, _) = run_plan(d.path(), plan, &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("no database `ap`"), "{}", text(&out));
    assert!(text(&out).contains("plan.yaml:7:"), "{}", text(&out));
    let wrong = url.replace("stampede-test-pw", "not-the-password-42");
    let plan = format!(
        "name: auth\ndatabases:\n  app: {{ url: \"{wrong}\" }}\nscenarios:\n  s:\n    steps:\n      - {{ name: q, sql: app, query: SELECT 1 }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 1 }}\n"
    );
    let d = tmp();
    let (out, _) = run_plan(d.path(), &plan, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("28P01"), "{}", text(&out));
    assert!(!text(&out).contains("not-the-password-42"), "{}", text(&out));
}

/// The password of the database URL (from the plan and from a variable) is in no file of the
/// run directory, no report and no output.
#[test]
fn no_password_reaches_the_run_directory_or_the_output() {
    let url = pg_url();
    let d = tmp();
    let plan = format!(
        "name: secret\ndatabases:\n  app: {{ url: \"{url}\" }}\n  other: {{ url: \"${{DB_URL}}\" }}\nscenarios:\n  s:\n    steps:\n      - {{ name: q, sql: app, query: SELECT 1, explain: true }}\n      - {{ name: r, sql: other, query: SELECT 2 }}\nphases:\n  - {{ name: p, scenario: s, vus: 1, iterations: 2 }}\n"
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let run = d.path().join("run");
    let out = bin()
        .env("DB_URL", &url)
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--workers",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(!text(&out).contains("stampede-test-pw"));
    for entry in std::fs::read_dir(&run).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            let body = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            assert!(!body.contains("stampede-test-pw"), "{} holds the password", p.display());
        }
    }
}

/// A shared pool: 4 VUs over `pool: 1` wait for the one connection in turn (the wait is part
/// of their latency), so 20 statements of 50 ms take about a second.
#[test]
fn a_pool_shares_its_connections_and_the_wait_is_latency() {
    let url = pg_url();
    let d = tmp();
    let plan = format!(
        "name: pool\ndatabases:\n  app: {{ url: \"{url}\", pool: 1 }}\nscenarios:\n  s:\n    steps:\n      - {{ name: sleep, sql: app, query: SELECT pg_sleep(0.05) }}\nphases:\n  - {{ name: p, scenario: s, vus: 4, iterations: 20, max_duration: 30s }}\n"
    );
    let (out, run) = run_plan(d.path(), &plan, &[]);
    let s = summary_json(&run);
    let st = step_named(&s, "sleep");
    assert_eq!(st["errors"], 0, "{st} {}", text(&out));
    let duration = s["phases"][0]["duration_s"].as_f64().unwrap();
    assert!(duration >= 0.95, "one connection, 20 × 50 ms: {duration} s");
    let p50 = st["latency_ms"]["p50"].as_f64().unwrap();
    assert!(p50 >= 150.0, "4 VUs queue for 1 connection: p50 {p50} ms");
}

/// A PostgreSQL of this test's own (initdb in a temporary directory, on a free port), so it
/// can be stopped and started again while stampede runs; stopped on drop.
struct PrivatePg {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
    /// Server settings beyond the port (`-c max_connections=10`).
    settings: String,
    _dir: tempfile::TempDir,
}

fn as_postgres(bin: &std::path::Path, tool: &str, args: &[&str]) -> std::process::Output {
    let exe = bin.join(tool);
    let mut c = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&exe);
        c
    } else {
        std::process::Command::new(&exe)
    };
    c.args(args).output().unwrap_or_else(|e| panic!("{tool}: {e}"))
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

impl PrivatePg {
    fn start() -> PrivatePg {
        Self::start_with("")
    }

    fn start_with(settings: &str) -> PrivatePg {
        let pgbench = std::env::var("STAMPEDE_TEST_PGBENCH").expect("STAMPEDE_TEST_PGBENCH (scripts/test-services.sh)");
        let bin = std::path::Path::new(&pgbench).parent().unwrap().to_path_buf();
        let dir = tmp();
        let data = dir.path().join("pg");
        if is_root() {
            let o = std::process::Command::new("chown")
                .args(["postgres:postgres", dir.path().to_str().unwrap()])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = as_postgres(
            &bin,
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        );
        assert!(o.status.success(), "initdb: {}", text(&o));
        let port = closed_port().port();
        let pg = PrivatePg {
            bin,
            data,
            port,
            settings: settings.to_string(),
            _dir: dir,
        };
        pg.ctl("start");
        pg
    }

    fn ctl(&self, what: &str) {
        let opts = format!(
            "-p {} -k /tmp -c listen_addresses=127.0.0.1 {}",
            self.port, self.settings
        );
        let data = self.data.to_str().unwrap();
        let o = match what {
            "start" => as_postgres(
                &self.bin,
                "pg_ctl",
                &["-D", data, "-o", &opts, "-w", "-l", &format!("{data}.log"), "start"],
            ),
            _ => as_postgres(&self.bin, "pg_ctl", &["-D", data, "-m", "fast", "-w", "stop"]),
        };
        assert!(o.status.success(), "pg_ctl {what}: {}", text(&o));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let data = self.data.to_str().unwrap_or_default().to_string();
        let _ = as_postgres(&self.bin, "pg_ctl", &["-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// The database goes down for a second in the middle of a run (`pg_ctl stop`, then `start`):
/// the failures are counted and classed as load, the run goes on, and the VUs reconnect when
/// it is back.
#[test]
fn a_database_that_goes_down_mid_run_is_counted_and_reconnected() {
    let pg = PrivatePg::start();
    let d = tmp();
    let plan = format!(
        "name: down\ndatabases:\n  app: {{ url: \"{}\" }}\nscenarios:\n  s:\n    think: 20ms\n    steps:\n      - {{ name: q, sql: app, query: SELECT 1, timeout: 500ms }}\nphases:\n  - {{ name: p, scenario: s, vus: 2, duration: 7s }}\n",
        pg.url()
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let run = d.path().join("run");
    let child = bin()
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    pg.ctl("stop");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    pg.ctl("start");
    let out = child.wait_with_output().unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
    let s = summary_json(&run);
    let q = step_named(&s, "q");
    let errors = q["errors"].as_u64().unwrap();
    assert!(errors > 0, "the outage is counted: {q}");
    let kinds: Vec<&String> = q["errors_by_kind"].as_object().unwrap().keys().collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["connect_refused", "reset", "sql_57P01", "sql_57P03", "timeout"].contains(&k.as_str())),
        "{kinds:?}"
    );
    assert!(
        s["phases"][0]["errors_by_class"]["load"].as_u64().unwrap_or(0)
            + s["phases"][0]["errors_by_class"]["configuration"].as_u64().unwrap_or(0)
            == errors
    );
    // After the restart, statements succeed again: a second after the outage's had requests
    // and no errors (how soon depends on how fast PostgreSQL starts on a busy machine).
    let intervals: Vec<Value> = std::fs::read_to_string(run.join("intervals.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|iv| iv["steps"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    let first_error = intervals
        .iter()
        .position(|iv| iv["steps"][0]["errors"].as_u64() > Some(0))
        .unwrap();
    assert!(
        intervals[first_error..]
            .iter()
            .any(|iv| iv["steps"][0]["requests"].as_u64() > Some(0) && iv["steps"][0]["errors"] == 0),
        "reconnected: {intervals:?}"
    );
}

/// The insurance example's database phases (the seed's six query kinds at two concurrency
/// levels), rehearsed small against the schema scripts/test-services.sh loads: every kind
/// runs without error, and the Database section tells the reporting query's sequential scan
/// from the indexed lookups, as the seed's table does.
#[test]
fn the_insurance_example_database_phases_run_and_report_like_the_seed() {
    let url = std::env::var("STAMPEDE_TEST_INSURANCE_DB_URL")
        .expect("STAMPEDE_TEST_INSURANCE_DB_URL (scripts/test-services.sh)");
    let d = tmp();
    let run = d.path().join("run");
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/insurance-leads.yaml");
    let out = bin()
        .env("DATABASE_URL", &url)
        .env("DB_POOL", "4")
        .args([
            "run",
            example,
            "--phase",
            "database-100",
            "--phase",
            "database-500",
            "--quick",
            "2s",
        ])
        .args([
            "--load-scale",
            "0.05",
            "--out",
            run.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
    let s = summary_json(&run);
    for p in s["phases"].as_array().unwrap() {
        assert_eq!(p["errors"], 0, "{}", p["errors_by_kind"]);
        assert_eq!(p["steps"].as_array().unwrap().len(), 6, "the six query kinds");
    }
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    let section = report.split("## Database").nth(1).expect("a Database section");
    let row = |name: &str| {
        section
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("{name}: {section}"))
            .to_string()
    };
    assert!(row("SELECT leads by ID").contains("✅ leads_pkey"), "{section}");
    assert!(
        row("SELECT leads with filters").contains("leads_status_product"),
        "{section}"
    );
    assert!(
        row("Complex reporting query").contains("⚠️ Seq Scan on leads"),
        "{section}"
    );
    assert!(
        row("Complex reporting query").contains("needs optimization"),
        "{section}"
    );
}

/// The database runs short of connections and of row locks at once: 14 VUs, each with its own
/// connection, against `max_connections = 10`, all updating one row inside a transaction that
/// holds the lock for 20 ms. The findings join the PostgreSQL monitor to the statements: the
/// connections exhausted with the refusals they caused, and the lock waits with the UPDATE's p95
/// before and meanwhile.
#[test]
fn findings_join_the_postgresql_monitor_to_each_statements_latency() {
    let pg = PrivatePg::start_with("-c max_connections=10");
    psql(
        &pg.url(),
        "CREATE TABLE hot (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO hot VALUES (1, 0)",
    );
    let d = tmp();
    let plan = format!(
        r#"name: contention
databases:
  app: {{ url: "{url}" }}
monitors:
  - {{ name: pg, postgres: "{url}", interval: 250ms }}
scenarios:
  s:
    steps:
      - name: bump
        sql: app
        timeout: 2s
        transaction:
          - {{ name: update, query: "UPDATE hot SET n = n + 1 WHERE id = 1" }}
          - {{ name: hold, query: "SELECT pg_sleep(0.02)" }}
phases:
  - {{ name: low, scenario: s, vus: 1, duration: 3s }}
  - {{ name: high, scenario: s, vus: 14, duration: 3s }}
"#,
        url = pg.url()
    );
    let plan_path = write(d.path(), "plan.yaml", &plan);
    let run = d.path().join("run");
    let out = bin()
        .args([
            "run",
            plan_path.to_str().unwrap(),
            "--out",
            run.to_str().unwrap(),
            "--quiet",
        ])
        .output()
        .unwrap();
    assert!(matches!(out.status.code(), Some(0) | Some(1)), "{}", text(&out));
    let s = summary_json(&run);
    let high = &s["phases"][1];
    let refused = high["errors_by_kind"]["sql_53300"].as_u64().unwrap_or(0);
    assert!(refused > 0, "more VUs than connections: {}", high["errors_by_kind"]);
    let findings = s["findings"].as_array().unwrap();
    let titled = |t: &str| {
        findings
            .iter()
            .find(|f| f["title"] == t)
            .unwrap_or_else(|| panic!("no finding `{t}` in {findings:#?}"))
    };
    let exhausted = titled("PostgreSQL connections exhausted");
    let evidence: Vec<&str> = exhausted["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(evidence[0].starts_with("connections in use 10/10"), "{evidence:?}");
    assert_eq!(exhausted["phase"], "high");
    assert!(
        evidence.iter().any(|e| e.starts_with("p95 of `bump:update` ")),
        "the UPDATE's latency meanwhile: {evidence:?}"
    );
    let errors = titled("Errors from the saturated pool `pg`");
    assert!(
        errors["evidence"][0].as_str().unwrap().contains("× sql_53300"),
        "{errors}"
    );
    let locks = titled("PostgreSQL lock contention");
    let evidence: Vec<&str> = locks["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        evidence[0].contains("sessions waiting on a lock (pg.waiting)"),
        "{evidence:?}"
    );
    // The UPDATE waited for the lock and slowed; the sleep that holds it did not.
    let line = evidence
        .iter()
        .find(|e| e.starts_with("p95 of `bump:update` "))
        .unwrap_or_else(|| panic!("{evidence:?}"));
    let nums: Vec<f64> = line
        .split_once("` ")
        .unwrap()
        .1
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(nums[1] >= 2.0 * nums[0], "p95 before → meanwhile: {line}");
    // The report shows the same findings.
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(
        md.contains("PostgreSQL lock contention") && md.contains("bump:update"),
        "{md}"
    );
}
