//! The library API without the CLI or the YAML parser: a hand-built plan run in-process.

use std::sync::Arc;
use std::time::Duration;

use stampede::engine::Controls;
use stampede::runner::{run_plan, HostFacts, RunnerOptions};
use stampede_plan::template::Template;
use stampede_plan::*;

use crate::*;

fn origin(addr: std::net::SocketAddr) -> Origin {
    Origin {
        tls: false,
        host: addr.ip().to_string(),
        port: addr.port(),
        authority: addr.to_string(),
    }
}

fn get(name: &str, addr: std::net::SocketAddr, path: &str) -> Step {
    Step {
        name: name.into(),
        kind: StepKind::Http(HttpStep {
            method: http::Method::GET,
            origin: origin(addr),
            path_and_query: Template::literal(path.to_string()),
            headers: vec![],
            body: None,
            timeout: None,
            expect_status: vec![StatusRange { lo: 200, hi: 399 }],
            checks: vec![],
            captures: vec![],
            sign: None,
        }),
        think: None,
    }
}

pub fn plan(addr: std::net::SocketAddr, load: Load) -> Plan {
    Plan {
        name: "lib".into(),
        target: Some(origin(addr)),
        target_path: String::new(),
        http: HttpOptions {
            http2: true,
            h2c: false,
            insecure: false,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            headers: vec![],
            max_body: 1 << 20,
        },
        scenarios: vec![Scenario {
            name: "s".into(),
            steps: vec![get("fast", addr, "/fast"), get("delay", addr, "/delay/5")],
            think: None,
        }],
        phases: vec![Phase {
            name: "p".into(),
            mix: vec![Weighted { scenario: 0, weight: 1 }],
            load,
            grace: Duration::from_secs(5),
        }],
        thresholds: vec![],
        monitors: vec![],
        slots: vec![],
        feeders: vec![],
        redacted: serde_json::json!({}),
        source_name: "lib.yaml".into(),
    }
}

#[test]
fn a_hand_built_plan_runs_in_process() {
    let srv = TestServer::start(false);
    let d = tmp();
    let p = plan(
        srv.addr,
        Load::Iterations {
            vus: 3,
            iterations: 120,
            max_duration: Duration::from_secs(10),
        },
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let out = rt
        .block_on(run_plan(
            Arc::new(p),
            RunnerOptions {
                plan_file: "lib.yaml".into(),
                phases: vec![0],
                out: d.path().join("run"),
                workers: 2,
                segment: (0, 1),
                seed: 1,
                progress: false,
                notes: vec![],
            },
            HostFacts {
                host: "test".into(),
                cores: 2,
                memory_bytes: 0,
                now: "2026-01-01T00:00:00Z".into(),
            },
            Controls::default(),
            || "2026-01-01T00:00:01Z".into(),
        ))
        .unwrap();
    let ph = &out.summary.phases[0];
    assert_eq!(ph.iterations, 120);
    assert_eq!(ph.requests, 240);
    assert_eq!(ph.errors, 0);
    assert_eq!(srv.count("/fast"), 120);
    assert_eq!(srv.count("/delay/5"), 120);
    let delay = ph.steps.iter().find(|s| s.name == "delay").unwrap();
    assert!(delay.latency_ms.as_ref().unwrap().min >= 5.0);
}
