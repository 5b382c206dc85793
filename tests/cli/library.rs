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
            follow_redirects: None,
            compress: None,
            auth: None,
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
            follow_redirects: 10,
            cookies: CookieMode::Clear,
            tls: Default::default(),
            on_429: Default::default(),
            local_addrs: Vec::new(),
        },
        scenarios: vec![Scenario {
            name: "s".into(),
            steps: vec![get("fast", addr, "/fast"), get("delay", addr, "/delay/5")],
            think: None,
        }],
        phases: vec![Phase {
            name: "p".into(),
            mix: vec![Weighted::new(0, 1)],
            load,
            grace: Duration::from_secs(5),
            variant: None,
        }],
        thresholds: vec![],
        monitors: vec![],
        databases: vec![],
        slots: vec![],
        feeders: vec![],
        redacted: serde_json::json!({}),
        secrets: vec![],
        source_name: "lib.yaml".into(),
        about: Default::default(),
    }
}

/// Runner options for an in-process run into `out` on `workers` workers, without progress.
pub fn options(out: std::path::PathBuf, workers: usize) -> RunnerOptions {
    RunnerOptions {
        plan_file: "lib.yaml".into(),
        phases: vec![],
        out,
        workers,
        segment: stampede::rundir::Segment::WHOLE,
        start_at: None,
        plan_sha256: None,
        share_dir: None,
        seed: 1,
        progress: false,
        notes: vec![],
        http_debug: None,
        note: None,
        remote: Vec::new(),
    }
}

/// Host facts for `meta.json` in tests.
pub fn host() -> HostFacts {
    HostFacts {
        host: "test".into(),
        cores: 2,
        memory_bytes: 0,
        now: "2026-01-01T00:00:00Z".into(),
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
                phases: vec![0],
                ..options(d.path().join("run"), 2)
            },
            host(),
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

/// An output added to a run sees every interval the run writes, each with its phase, and the
/// phase's start and end: the seam a dashboard or an exporter plugs into.
#[test]
fn an_added_output_sees_every_interval() {
    use std::sync::Mutex;

    use stampede::output::{Flow, Output, PhaseView};
    use stampede::recorder::Interval;
    use stampede::runner::Session;

    #[derive(Default)]
    struct Seen {
        starts: Vec<String>,
        intervals: Vec<(String, u64, u64)>,
        ends: usize,
    }
    struct Count(Arc<Mutex<Seen>>);
    impl Output for Count {
        fn phase_start(&mut self, phase: &PhaseView) {
            self.0.lock().unwrap().starts.push(phase.name.to_string());
        }
        fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
            let requests = iv.steps.iter().map(|s| s.requests).sum();
            self.0
                .lock()
                .unwrap()
                .intervals
                .push((phase.name.to_string(), iv.seq, requests));
            Flow::Continue
        }
        fn phase_end(&mut self, _phase: &PhaseView) {
            self.0.lock().unwrap().ends += 1;
        }
    }

    let srv = TestServer::start(false);
    let d = tmp();
    let mut p = plan(
        srv.addr,
        Load::Closed {
            vus: 2,
            duration: Duration::from_secs(2),
        },
    );
    p.scenarios[0].steps.truncate(1);
    let phase = p.phases[0].clone();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcome = rt.block_on(async {
        let opts = options(d.path().join("run"), 1);
        let mut s = Session::create(p, &opts, host(), Controls::default(), || "2026-01-01T00:00:03Z".into()).unwrap();
        s.add_output(Box::new(Count(seen.clone())));
        s.run_phase(phase, |_, _| false).await.unwrap();
        s.finish().await.unwrap()
    });
    let seen = seen.lock().unwrap();
    assert_eq!(seen.starts, ["p"]);
    assert_eq!(seen.ends, 1);
    let written: Vec<serde_json::Value> = std::fs::read_to_string(d.path().join("run/intervals.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(written.len() >= 2, "{} intervals", written.len());
    assert_eq!(seen.intervals.len(), written.len(), "one call per interval written");
    for ((phase, seq, _), w) in seen.intervals.iter().zip(&written) {
        assert_eq!(phase, "p");
        assert_eq!(*seq, w["seq"].as_u64().unwrap());
    }
    let total: u64 = seen.intervals.iter().map(|(_, _, n)| n).sum();
    assert_eq!(total, outcome.summary.phases[0].requests);
    assert!(total > 0);
}
