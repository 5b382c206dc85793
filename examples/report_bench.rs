//! Report rendering benchmark (not a timed test): writes a synthetic 1-hour run (3,600
//! one-second intervals, 20 endpoints, ~50 requests per endpoint per second) to a temporary run
//! directory, then times each stage of `stampede report` on it and prints the figures.
//!
//!     cargo run --example report_bench            # debug build (deps optimized, see Cargo.toml)
//!     cargo run --example report_bench -- DIR     # keep the run directory in DIR
//!     STAMPEDE_BENCH_HOURS=24 cargo run --release --example report_bench   # a 24-hour run
//!
//! `bench/long-run.sh` runs it for 1 and 24 hours under a memory cap and records the figures.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use stampede::recorder::{new_hist, Interval, StepInterval};
use stampede::report::{charts, html, junit, load, markdown};
use stampede::rundir::{PhaseMeta, RunMeta, RunStatus, ThresholdSpec, RUN_SCHEMA};

/// The run's length: `STAMPEDE_BENCH_HOURS` hours (default 1), its three phases a third each.
fn seconds() -> u64 {
    let hours: u64 = std::env::var("STAMPEDE_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(1);
    hours.max(1) * 3_600
}
const ENDPOINTS: usize = 20;
const PER_SECOND: u64 = 50;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn threshold(expr: &str, metric: &str, value: f64) -> ThresholdSpec {
    ThresholdSpec {
        expr: expr.into(),
        metric: metric.into(),
        op: "<".into(),
        value,
        phase: None,
        step: None,
        abort_on_fail: false,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep = std::env::args().nth(1).map(PathBuf::from);
    let tmp = std::env::temp_dir().join(format!("stampede-report-bench-{}", std::process::id()));
    let dir = keep.clone().unwrap_or(tmp);
    std::fs::create_dir_all(&dir)?;
    let steps: Vec<String> = (0..ENDPOINTS).map(|i| format!("endpoint-{i:02}")).collect();
    let third = seconds() / 3;
    let phases = [
        ("baseline", 0u64, third, 20u64),
        ("steady", third, 2 * third, 60),
        ("peak", 2 * third, 3 * third, 120),
    ];
    let meta = RunMeta {
        schema: RUN_SCHEMA.into(),
        name: "bench".into(),
        plan_file: "bench.yaml".into(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        host: "bench".into(),
        os: "linux".into(),
        cores: 2,
        memory_bytes: 1 << 34,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        ended_at: Some("2026-01-01T01:00:00.000Z".into()),
        status: RunStatus::Completed,
        target: Some("http://127.0.0.1:8080".into()),
        workers: 2,
        segment: "0/1".into(),
        phases: phases
            .iter()
            .map(|(n, a, b, vus)| PhaseMeta {
                name: (*n).into(),
                model: stampede::rundir::LoadModel::Closed,
                description: format!("{vus} VUs for {}m", (b - a) / 60),
                scenarios: vec!["s".into()],
                planned_s: (b - a) as f64,
                peak: *vus as f64,
                variant_of: None,
                variant: None,
            })
            .collect(),
        steps: steps.clone(),
        step_hosts: Default::default(),
        thresholds: vec![
            threshold("p95 < 500ms", "p95", 500.0),
            threshold("avg < 300ms", "avg", 300.0),
            threshold("error_rate < 5%", "error_rate", 0.05),
        ],
        notes: vec!["synthetic run written by examples/report_bench.rs".into()],
        note: None,
        resolved: vec![],
        about: Default::default(),
    };
    if dir.join("meta.json").is_file() {
        println!("reusing the run in {}", dir.display());
        return measure(&dir, keep.is_none());
    }
    let t = Instant::now();
    std::fs::write(dir.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("intervals.jsonl"))?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Past the first POOL seconds of a phase its lines repeat (with their own `seq` and `t`):
    // encoding a day of histograms would take the writer longer than the reading it measures.
    const POOL: u64 = 600;
    for (name, a, b, vus) in phases {
        let mut pool: Vec<String> = Vec::new();
        for sec in a..b {
            if sec - a >= POOL {
                let tail = &pool[((sec - a) % POOL) as usize];
                writeln!(out, "{{\"phase\":\"{name}\",\"seq\":{},\"t\":{}.0,{tail}", sec - a, sec)?;
                continue;
            }
            let mut ivs = Vec::with_capacity(ENDPOINTS);
            for (i, s) in steps.iter().enumerate() {
                let mut latency = new_hist();
                let base = 20_000 + 5_000 * i as u64 + vus * 1_000;
                let mut errors = 0;
                for _ in 0..PER_SECOND {
                    let r = rng.next();
                    latency.saturating_record(base + r % base);
                    if r % 100 == 0 {
                        errors += 1;
                    }
                }
                let mut kinds = BTreeMap::new();
                let mut statuses = BTreeMap::from([(200u16, PER_SECOND - errors)]);
                if errors > 0 {
                    kinds.insert("status_503".to_string(), errors);
                    statuses.insert(503, errors);
                }
                ivs.push(StepInterval {
                    name: s.clone(),
                    requests: PER_SECOND,
                    errors,
                    bytes_in: PER_SECOND * 512,
                    bytes_out: PER_SECOND * 128,
                    bytes_decoded: PER_SECOND * 512,
                    redirects: 0,
                    statuses,
                    kinds,
                    counters: Default::default(),
                    service: latency.clone(),
                    latency,
                    buckets: None,
                    samples: Vec::new(),
                });
            }
            let iv = Interval {
                phase: name.into(),
                seq: sec - a,
                t: sec as f64,
                dur: 1.0,
                vus,
                waiting: 0,
                iterations: PER_SECOND,
                dropped: 0,
                backoffs: 0,
                backoff_ms: 0,
                ws_open: 0,
                late: stampede_rundir::hist::new_hist(),
                steps: ivs,
            };
            let line = iv.to_json_line()?;
            writeln!(out, "{line}")?;
            // Everything after `"t":…,`: the part that repeats.
            let tail = line.split_once(",\"dur\"").map(|(_, t)| format!("\"dur\"{t}"));
            pool.push(tail.ok_or("an interval line without dur")?);
        }
    }
    out.flush()?;
    drop(out);
    println!(
        "wrote {} ({} intervals x {ENDPOINTS} endpoints) in {:.2}s",
        dir.display(),
        seconds(),
        t.elapsed().as_secs_f64()
    );

    if std::env::var_os("STAMPEDE_BENCH_WRITE_ONLY").is_some() {
        return Ok(());
    }
    measure(&dir, keep.is_none())
}

fn measure(dir: &std::path::Path, remove: bool) -> Result<(), Box<dyn std::error::Error>> {
    let total = Instant::now();
    // What `stampede report` does: stream the intervals through the summary and the timeline.
    let t = Instant::now();
    let report = load(dir)?;
    let model = t.elapsed();
    let t = Instant::now();
    let charts = charts::charts(&report);
    let md = markdown::render(&report, &charts, Some("charts"));
    let page = html::render(&report, &charts);
    let json = serde_json::to_string_pretty(&report)?;
    let xml = junit::render(&report);
    let render = t.elapsed();
    let all = total.elapsed();
    println!(
        "read + summarize + model ({} intervals, {} histograms decoded): {:.3}s",
        seconds(),
        seconds() as usize * ENDPOINTS * 2,
        model.as_secs_f64()
    );
    println!(
        "render md + html + json + junit + {} charts: {:.3}s ({} / {} / {} / {} bytes)",
        charts.len(),
        render.as_secs_f64(),
        md.len(),
        page.len(),
        json.len(),
        xml.len()
    );
    println!("total (run directory -> all formats): {:.3}s", all.as_secs_f64());
    let bytes: u64 = std::fs::read_dir(dir)?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum();
    let hours = seconds() as f64 / 3600.0;
    println!(
        "run directory: {:.1} MB for {hours:.0} h: {:.1} MB per hour",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / hours
    );
    if remove {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
