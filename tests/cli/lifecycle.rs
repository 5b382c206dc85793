//! A run's life: thresholds and exit codes, phase selection, kill -9, Ctrl-C.

use std::time::{Duration, Instant};

use crate::*;

fn plan_with(url: &str, thresholds: &str, phases: &str) -> String {
    format!(
        "name: life\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: d, request: GET /delay/20 }}\nphases:\n{phases}thresholds:\n{thresholds}"
    )
}

const ONE_PHASE: &str = "  - { name: p, scenario: s, vus: 2, duration: 1s }\n";

#[test]
fn passing_thresholds_exit_0_failing_exit_1() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (ok, run) = run_plan(
        d.path(),
        &plan_with(&srv.url(), "  - p95 < 2s\n  - error_rate < 1%\n", ONE_PHASE),
        &[],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    let s = summary_json(&run);
    assert_eq!(s["verdict"], "passed");
    assert_eq!(s["phases"][0]["thresholds"][0]["passed"], true);

    let d = tmp();
    let (bad, run) = run_plan(
        d.path(),
        &plan_with(&srv.url(), "  - p95 < 1ms\n  - error_rate < 1%\n", ONE_PHASE),
        &[],
    );
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    let s = summary_json(&run);
    assert_eq!(s["verdict"], "failed");
    let t = &s["phases"][0]["thresholds"][0];
    assert_eq!(t["passed"], false);
    assert!(t["value"].as_f64().unwrap() >= 20.0);
    assert!(String::from_utf8_lossy(&bad.stdout).contains("✗ p95 < 1ms"));
    // The summary command agrees, from the directory alone.
    assert_eq!(stampede(&["summary", run.to_str().unwrap()]).status.code(), Some(1));
}

#[test]
fn abort_on_fail_stops_the_run_early() {
    let srv = TestServer::start(false);
    let d = tmp();
    let started = Instant::now();
    let (out, run) = run_plan(
        d.path(),
        &plan_with(&srv.url(), "  - { check: p95 < 1ms, abort_on_fail: true, delay: 1s }\n", "  - { name: p, scenario: s, vus: 2, duration: 30s }\n  - { name: q, scenario: s, vus: 2, duration: 30s }\n"),
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let s = summary_json(&run);
    assert_eq!(s["status"], "aborted");
    assert_eq!(
        s["phases"].as_array().unwrap().len(),
        1,
        "the second phase must not run"
    );
}

#[test]
fn phase_selection_runs_only_the_named_phases() {
    let srv = TestServer::start(false);
    let d = tmp();
    let phases =
        "  - { name: a, scenario: s, vus: 1, duration: 1s }\n  - { name: b, scenario: s, vus: 1, duration: 1s }\n";
    let (out, run) = run_plan(
        d.path(),
        &plan_with(&srv.url(), "  - p95 < 2s\n", phases),
        &["--phase", "b"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let s = summary_json(&run);
    let names = phase_names(&s);
    assert_eq!(names, ["b"]);
    let d = tmp();
    let (out, run) = run_plan(
        d.path(),
        &plan_with(&srv.url(), "  - p95 < 2s\n", phases),
        &["--phase", "nope"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such phase"));
    assert!(!run.exists(), "nothing may be written for bad arguments");
}

/// A worker whose runtime cannot start (here: too few file descriptors for 200 workers' event
/// loops) fails the run, with the reason, instead of leaving it waiting for that worker forever.
#[test]
fn a_worker_that_cannot_start_fails_the_run() {
    let d = tmp();
    let plan = write(
        d.path(),
        "plan.yaml",
        &plan_with("http://127.0.0.1:9", "  - p95 < 2s\n", ONE_PHASE),
    );
    let out = d.path().join("run");
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            r#"ulimit -n 64 && exec "$0" "$@""#,
            env!("CARGO_BIN_EXE_stampede"),
        ])
        .args(["run", plan.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(["--workers", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the run is still waiting for a worker that never started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("could not start a worker thread") && err.contains("its runtime did not start"),
        "{err}"
    );
}

fn spawn_run(dir: &std::path::Path, url: &str) -> (std::process::Child, std::path::PathBuf) {
    let plan = write(
        dir,
        "plan.yaml",
        &plan_with(
            url,
            "  - p95 < 2s\n",
            "  - { name: long, scenario: s, vus: 2, duration: 20s }\n",
        ),
    );
    let out = dir.join("run");
    let child = bin()
        .args([
            "run",
            plan.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--workers",
            "1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    (child, out)
}

fn wait_for_intervals(run: &std::path::Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let lines = std::fs::read_to_string(run.join("intervals.jsonl"))
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no intervals written");
}

#[test]
fn kill_9_loses_at_most_the_last_second() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (mut child, run) = spawn_run(d.path(), &srv.url());
    wait_for_intervals(&run, 2);
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    let served = srv.total();
    let s = summary_json(&run);
    assert_eq!(s["status"], "running");
    assert_eq!(s["verdict"], "passed_with_conditions");
    let recorded = s["phases"][0]["requests"].as_u64().unwrap();
    // 2 VUs × 20 ms: ~100 requests a second; at most the unwritten second (+ in flight) is lost.
    assert!(recorded >= 150, "recorded {recorded}");
    assert!(
        served >= recorded && served - recorded <= 130,
        "served {served}, recorded {recorded}"
    );
}

#[test]
fn ctrl_c_stops_gracefully_keeps_results_and_exits_130() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (child, run) = spawn_run(d.path(), &srv.url());
    wait_for_intervals(&run, 1);
    let t = Instant::now();
    let rc = sigint(child.id());
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    assert!(run.join("summary.json").exists());
    let s = summary_json(&run);
    assert_eq!(s["status"], "interrupted");
    assert!(s["phases"][0]["requests"].as_u64().unwrap() > 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("phase long"));
}

/// Sends SIGINT with kill(1), as a terminal's Ctrl-C would.
fn sigint(pid: u32) -> i32 {
    signal(pid, "INT")
}

fn signal(pid: u32, name: &str) -> i32 {
    std::process::Command::new("kill")
        .args([&format!("-{name}"), &pid.to_string()])
        .status()
        .map(|s| s.code().unwrap_or(-1))
        .unwrap_or(-1)
}

/// SIGTERM (Kubernetes, `docker stop`, systemd, `timeout`, CI cancellation) and SIGHUP (a
/// closed terminal) used to kill the run outright: exit 143/129, no summary, `meta.json` left
/// at `running`. They stop it exactly as the first Ctrl-C does.
#[test]
fn sigterm_and_sighup_stop_gracefully_like_ctrl_c() {
    let srv = TestServer::start(false);
    for name in ["TERM", "HUP"] {
        let d = tmp();
        let (child, run) = spawn_run(d.path(), &srv.url());
        wait_for_intervals(&run, 1);
        let t = Instant::now();
        assert_eq!(signal(child.id(), name), 0);
        let out = child.wait_with_output().unwrap();
        assert!(t.elapsed() < Duration::from_secs(5), "SIG{name} took {:?}", t.elapsed());
        assert_eq!(out.status.code(), Some(130), "SIG{name}: {}", text(&out));
        let s = summary_json(&run);
        assert_eq!(s["status"], "interrupted", "SIG{name}");
        assert!(s["phases"][0]["requests"].as_u64().unwrap() > 0, "SIG{name}");
        let meta = std::fs::read_to_string(run.join("meta.json")).unwrap();
        assert!(meta.contains("\"interrupted\""), "SIG{name}: {meta}");
        assert!(run.join("report.html").exists(), "SIG{name}: the report is written");
    }
}

/// Writing the summary to a closed pipe (`stampede run … | head`) or a full device (`>
/// /dev/full`) panicked: exit 101, the verdict lost, the reports never written. The verdict's
/// exit code and the reports are kept whatever stdout does; `summary` and `runs` the same.
#[test]
fn a_closed_or_full_stdout_keeps_the_exit_code_and_the_reports() {
    let srv = TestServer::start(false);
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    for (name, thresholds, code) in [("pass", "  - p95 < 2s\n", 0), ("fail", "  - p95 < 1ms\n", 1)] {
        let d = tmp();
        let plan = write(d.path(), "plan.yaml", &plan_with(&srv.url(), thresholds, ONE_PHASE));
        let run = d.path().join("run");
        let args = ["run", plan.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"];
        let out = bin().args(args).stdout(full.try_clone().unwrap()).output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{name} to /dev/full: {}", text(&out));
        assert!(run.join("report.html").exists(), "{name}: reports written");
        // A pipe whose reader is gone before anything is written.
        let mut child = bin()
            .args(["summary", run.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(code), "{name}: summary into a closed pipe");
    }
    let out = bin().args(["runs", "--help"]).stdout(full).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// An `--out` that cannot be written is the environment, not a failed threshold: exit 2 before
/// any traffic (it was exit 1), and nothing is left behind.
#[test]
fn an_unwritable_out_is_refused_with_exit_2_before_traffic() {
    let srv = TestServer::start(false);
    let d = tmp();
    let plan = write(
        d.path(),
        "plan.yaml",
        &plan_with(&srv.url(), "  - p95 < 2s\n", ONE_PHASE),
    );
    // /proc refuses new directories, even to root.
    let out = stampede(&["run", plan.to_str().unwrap(), "--out", "/proc/stampede-run", "--quiet"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(srv.total(), 0, "no request before the run directory exists");
}

/// A full disk, on a 200 KiB tmpfs: the start fails cleanly (no empty `intervals.jsonl` left to
/// block the same `--out`), and a disk that fills during the run stops it, keeps what was
/// written, prints the summary, and exits 2 (it exited 1, printed nothing, `meta.json` stayed
/// `running`). Needs root to mount, as `scripts/test.sh` runs.
#[test]
fn a_full_disk_stops_the_run_keeps_what_was_written_and_exits_2() {
    let srv = TestServer::start(false);
    let d = tmp();
    let mnt = d.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs", mnt.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(
        mounted.success(),
        "mount a tmpfs (run the tests as root, as scripts/test.sh does)"
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    // Fill the disk but for a little room: the plan's 60 steps make each interval ~10 KiB.
    let steps: String = (0..60)
        .map(|i| format!("      - {{ name: s{i}, request: GET /fast }}\n"))
        .collect();
    let plan_text = format!(
        "name: full\ntarget: {}\nscenarios:\n  s:\n    steps:\n{steps}phases:\n  - {{ name: p, scenario: s, vus: 2, duration: 30s }}\nthresholds:\n  - p95 < 2s\n",
        srv.url()
    );
    let plan = write(d.path(), "plan.yaml", &plan_text);
    let filler = mnt.join("filler");
    std::fs::write(&filler, vec![0u8; 120 << 10]).unwrap();
    let run = mnt.join("run");
    let t = std::time::Instant::now();
    let out = stampede(&["run", plan.to_str().unwrap(), "--out", run.to_str().unwrap(), "--quiet"]);
    assert!(
        t.elapsed() < Duration::from_secs(25),
        "the run stopped when the disk filled"
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("phase p"), "the summary is printed: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("incomplete"),
        "{}",
        text(&out)
    );
    let lines = std::fs::read_to_string(run.join("intervals.jsonl")).unwrap();
    assert!(lines.lines().count() >= 1, "what was written is kept");
    // No partial report or temporary file is left in the run directory.
    for e in std::fs::read_dir(&run).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        assert!(!name.ends_with(".tmp"), "{name} left behind");
        if name.starts_with("report") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            assert!(
                text.trim_end().ends_with("</html>") || name.ends_with(".md"),
                "{name} truncated"
            );
        }
    }
    // A start on a disk with no room at all fails with exit 2 and leaves no run behind.
    std::fs::remove_dir_all(&run).unwrap();
    std::fs::write(mnt.join("filler2"), vec![0u8; 200 << 10]).unwrap_err();
    let again = mnt.join("again");
    let out = stampede(&[
        "run",
        plan.to_str().unwrap(),
        "--out",
        again.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        !again.join("intervals.jsonl").exists(),
        "a failed start leaves no intervals.jsonl"
    );
}

/// No measurement is not a pass: a run killed before its first second was written has no
/// phase measured, and `summary` said PASSED WITH CONDITIONS and exited 0. It is a failure.
#[test]
fn a_run_with_nothing_measured_does_not_pass() {
    let srv = TestServer::start(false);
    let d = tmp();
    let (mut child, run) = spawn_run(d.path(), &srv.url());
    let t = Instant::now();
    while !run.join("meta.json").exists() && t.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::write(run.join("intervals.jsonl"), "");
    let out = stampede(&["summary", run.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(s["verdict"], "failed", "{s}");
    assert!(s["conditions"].to_string().contains("nothing was measured"), "{s}");
}
