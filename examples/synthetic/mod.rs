//! A synthetic run directory for the benchmarks (`report_bench`, `merge_bench`): a 1-hour run
//! in three phases, `endpoints` steps with `per_second` requests each per second, latencies from
//! a deterministic generator. Included with `#[path]`, so both measure the same data.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use stampede::recorder::{Interval, StepInterval};
use stampede::rundir::hist::new_growable;
use stampede::rundir::{PhaseMeta, RunMeta, RunStatus, Segment, ThresholdSpec, RUN_SCHEMA};

/// One hour: the default length.
pub const SECONDS: u64 = 3_600;

/// What to write.
pub struct Synthetic {
    /// The run's length (three phases of a third each).
    pub seconds: u64,
    pub endpoints: usize,
    pub per_second: u64,
    pub segment: Segment,
    pub seed: u64,
}

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

/// Writes `meta.json`, `plan.json` and `intervals.jsonl` of a synthetic run into `dir`.
pub fn write_run(dir: &Path, s: &Synthetic) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    let steps: Vec<String> = (0..s.endpoints).map(|i| format!("endpoint-{i:02}")).collect();
    let third = s.seconds / 3;
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
        host: format!("bench-{}", s.segment.index),
        os: "linux".into(),
        cores: 2,
        memory_bytes: 1 << 34,
        started_at: "2026-01-01T00:00:00.000Z".into(),
        ended_at: Some("2026-01-01T01:00:00.000Z".into()),
        status: RunStatus::Completed,
        target: Some("http://127.0.0.1:8080".into()),
        workers: 2,
        segment: s.segment,
        plan_sha256: Some("0".repeat(64)),
        start_at: Some("2026-01-01T00:00:00.000Z".into()),
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
                interleaved: Vec::new(),
            })
            .collect(),
        steps: steps.clone(),
        step_hosts: Default::default(),
        thresholds: vec![
            threshold("p95 < 500ms", "p95", 500.0),
            threshold("avg < 300ms", "avg", 300.0),
            threshold("error_rate < 5%", "error_rate", 0.05),
        ],
        notes: vec!["synthetic run written by examples/synthetic".into()],
        note: None,
        resolved: vec![],
        about: Default::default(),
        generators: vec![],
        outputs: vec![],
    };
    std::fs::write(dir.join("meta.json"), serde_json::to_string_pretty(&meta)?)?;
    std::fs::write(dir.join("plan.json"), "{}")?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(dir.join("intervals.jsonl"))?);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ s.seed.wrapping_mul(0x1000_0000_01B3));
    // Past the first POOL seconds of a phase its lines repeat (with their own `seq` and `t`):
    // encoding a day of histograms would take the writer longer than the reading it measures.
    const POOL: u64 = 600;
    for (phase, a, b, vus) in phases {
        let mut pool: Vec<String> = Vec::new();
        for sec in a..b {
            if sec - a >= POOL {
                let tail = &pool[((sec - a) % POOL) as usize];
                writeln!(
                    out,
                    "{{\"phase\":\"{phase}\",\"seq\":{},\"t\":{}.0,{tail}",
                    sec - a,
                    sec
                )?;
                continue;
            }
            let mut ivs = Vec::with_capacity(s.endpoints);
            for (i, name) in steps.iter().enumerate() {
                // Growable, as aggregates are: a full hour-wide histogram per second is 180 KB to zero.
                let mut latency = new_growable();
                let base = 20_000 + 5_000 * i as u64 + vus * 1_000;
                let mut errors = 0;
                for _ in 0..s.per_second {
                    let r = rng.next();
                    latency.saturating_record(base + r % base);
                    if r % 100 == 0 {
                        errors += 1;
                    }
                }
                let mut kinds = BTreeMap::new();
                let mut statuses = BTreeMap::from([(200u16, s.per_second - errors)]);
                if errors > 0 {
                    kinds.insert("status_503".to_string(), errors);
                    statuses.insert(503, errors);
                }
                ivs.push(StepInterval {
                    name: name.clone(),
                    requests: s.per_second,
                    errors,
                    bytes_in: s.per_second * 512,
                    bytes_out: s.per_second * 128,
                    bytes_decoded: s.per_second * 512,
                    redirects: 0,
                    statuses,
                    kinds,
                    counters: Default::default(),
                    service: latency.clone(),
                    // As the recorder writes it, so the bench's files grow as a run's do.
                    latency_sum_us: Some((latency.mean() * latency.len() as f64) as u64),
                    latency,
                    buckets: None,
                    samples: Vec::new(),
                });
            }
            let iv = Interval {
                phase: phase.into(),
                seq: sec - a,
                t: sec as f64,
                dur: 1.0,
                vus,
                waiting: 0,
                iterations: s.per_second,
                dropped: 0,
                backoffs: 0,
                backoff_ms: 0,
                ws_open: 0,
                late: stampede::rundir::hist::new_hist(),
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
    Ok(())
}
