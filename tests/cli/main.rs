//! End-to-end tests of the `stampede` binary against real servers on loopback.
//! One test binary (fast to link), a module per feature.

mod server;
mod sql;

mod ab;
mod alerts;
mod bad_input;
mod capacity;
mod compare;
mod dashboard;
mod features;
mod hostile;
mod http_client;
mod httpbin;
mod import;
mod k8s;
mod library;
mod lifecycle;
mod local_addrs;
mod long_runs;
mod measurement;
mod merge;
mod monitors;
mod outputs;
mod report;
mod target;
mod tls;
mod wire;
mod ws;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub use server::{on_own_runtime, start_bad, start_wire, TestServer};

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_stampede"));
    c.env_remove("BASE_URL");
    // The tests run in CI too: only the test that sets it writes a job summary.
    c.env_remove("GITHUB_STEP_SUMMARY");
    c
}

/// Runs `stampede ARGS` to completion.
pub fn stampede(args: &[&str]) -> Output {
    bin().args(args).output().expect("run stampede")
}

/// The URL of a real server that `scripts/test-services.sh` started on loopback and exported in
/// `var`. Tests that need one fail without it, as the README says, rather than pass unseen.
pub fn env_url(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!("{var} is not set: run the tests through scripts/test.sh, which starts the real server on loopback and exports it (or `eval \"$(scripts/test-services.sh)\"` first)")
    })
}

/// Where scripts/node-deps.sh installed playwright-core (exported by it as
/// STAMPEDE_TEST_NODE_PATH, for `node`'s NODE_PATH); a test fails without it rather than pass
/// unseen.
pub fn node_path() -> String {
    std::env::var("STAMPEDE_TEST_NODE_PATH").unwrap_or_else(|_| {
        panic!("STAMPEDE_TEST_NODE_PATH is not set: run the tests through scripts/test.sh, or `eval \"$(scripts/node-deps.sh)\"` first")
    })
}

/// A loopback port nothing listens on: bound, noted, closed.
pub fn closed_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs a plan (quietly, one worker) into `dir/run`; returns the output and the run dir.
pub fn run_plan(dir: &Path, plan: &str, extra: &[&str]) -> (Output, PathBuf) {
    run_plan_env(dir, plan, extra, &[])
}

/// [`run_plan`] with these environment variables set.
pub fn run_plan_env(dir: &Path, plan: &str, extra: &[&str], env: &[(&str, &str)]) -> (Output, PathBuf) {
    let plan_path = write(dir, "plan.yaml", plan);
    let out = dir.join("run");
    let mut args = vec![
        "run",
        plan_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    if !extra.contains(&"--workers") {
        args.extend_from_slice(&["--workers", "1"]);
    }
    args.extend_from_slice(extra);
    let output = bin()
        .args(&args)
        .envs(env.iter().copied())
        .output()
        .expect("run stampede");
    (output, out)
}

pub fn summary_json(run_dir: &Path) -> serde_json::Value {
    let out = stampede(&["summary", run_dir.to_str().unwrap(), "--json"]);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "summary failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

pub fn text(o: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The phase names of a summary, in order.
pub fn phase_names(s: &serde_json::Value) -> Vec<String> {
    s["phases"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| p["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The single step of the first phase.
pub fn step0(s: &serde_json::Value) -> &serde_json::Value {
    &s["phases"][0]["steps"][0]
}

/// The first phase's step called `name` in a summary.
pub fn step_named<'a>(s: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    s["phases"][0]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|st| st["name"] == name)
        .unwrap_or_else(|| panic!("no step {name}: {s}"))
}

/// `stampede validate` on `plan`: exit 2, and its message.
pub fn refused(plan: &str) -> String {
    let d = tmp();
    let p = write(d.path(), "plan.yaml", plan);
    let out = stampede(&["validate", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}
