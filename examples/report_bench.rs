//! Report rendering benchmark (not a timed test): writes a synthetic 1-hour run (3,600
//! one-second intervals, 20 endpoints, ~50 requests per endpoint per second) to a temporary run
//! directory, then times each stage of `stampede report` on it and prints the figures.
//!
//!     cargo run --example report_bench            # debug build (deps optimized, see Cargo.toml)
//!     cargo run --example report_bench -- DIR     # keep the run directory in DIR

#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::PathBuf;
use std::time::Instant;

use stampede::report::{charts, html, junit, load, markdown};
use synthetic::{write_run, Synthetic, SECONDS};

const ENDPOINTS: usize = 20;
const PER_SECOND: u64 = 50;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keep = std::env::args().nth(1).map(PathBuf::from);
    let tmp = std::env::temp_dir().join(format!("stampede-report-bench-{}", std::process::id()));
    let dir = keep.clone().unwrap_or(tmp);
    if dir.join("meta.json").is_file() {
        println!("reusing the run in {}", dir.display());
        return measure(&dir, keep.is_none());
    }
    let t = Instant::now();
    // `STAMPEDE_BENCH_HOURS` hours (default 1): bench/long-run.sh measures a day.
    let hours: u64 = std::env::var("STAMPEDE_BENCH_HOURS")
        .ok()
        .and_then(|h| h.parse().ok())
        .unwrap_or(1);
    let seconds = hours.max(1) * SECONDS;
    let s = Synthetic {
        seconds,
        endpoints: ENDPOINTS,
        per_second: PER_SECOND,
        segment: stampede::rundir::Segment::WHOLE,
        seed: 0,
    };
    write_run(&dir, &s)?;
    println!(
        "wrote {} ({} intervals x {ENDPOINTS} endpoints) in {:.2}s",
        dir.display(),
        seconds,
        t.elapsed().as_secs_f64()
    );
    let bytes: u64 = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!(
        "run directory: {:.1} MB ({:.1} MB/h)",
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / hours.max(1) as f64
    );
    // bench/long-run.sh writes first, then measures the reading alone in a process of its own.
    if std::env::var_os("STAMPEDE_BENCH_WRITE_ONLY").is_some() {
        return Ok(());
    }
    measure(&dir, keep.is_none())
}

fn measure(dir: &std::path::Path, remove: bool) -> Result<(), Box<dyn std::error::Error>> {
    // Decoding alone (every line parsed, every histogram inflated, nothing folded): what of
    // the reading is the run directory's format, not the analysis.
    let t = Instant::now();
    let mut n = 0usize;
    stampede::rundir::for_each_interval(dir, |_| n += 1)?;
    println!("decode alone ({n} intervals): {:.3}s", t.elapsed().as_secs_f64());
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
        n,
        n * ENDPOINTS * 2,
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
    if remove {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(())
}
