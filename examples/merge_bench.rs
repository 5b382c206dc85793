//! Merge benchmark (not a timed test): writes 10 synthetic shares of a 1-hour run (3,600
//! seconds, 20 endpoints, 5 requests per endpoint per second each: the report benchmark's run
//! split ten ways), then times `stampede merge`'s two steps on them: the merge itself, and the
//! summary read back from the merged directory (which `stampede merge` also does).
//!
//!     cargo run --release --example merge_bench [ENDPOINTS] [DIR]   # DIR: keep the shares there

#[path = "synthetic/mod.rs"]
mod synthetic;

use std::path::PathBuf;
use std::time::Instant;

use stampede::rundir::merge::{check, merge, Staging};
use stampede::rundir::Segment;
use synthetic::{write_run, Synthetic, SECONDS};

const SHARES: u64 = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let endpoints: usize = args.next().map_or(Ok(20), |a| a.parse())?;
    let keep = args.next().map(PathBuf::from);
    let root = keep
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("stampede-merge-bench-{}", std::process::id())));
    let t = Instant::now();
    let dirs: Vec<PathBuf> = (0..SHARES).map(|i| root.join(format!("share{i}"))).collect();
    for (i, d) in dirs.iter().enumerate() {
        if d.join("meta.json").is_file() {
            continue;
        }
        let s = Synthetic {
            seconds: SECONDS,
            endpoints,
            per_second: 5,
            segment: Segment::new(i as u64, SHARES)?,
            seed: i as u64,
        };
        write_run(d, &s)?;
    }
    println!(
        "{SHARES} shares ({SECONDS} s x {endpoints} endpoints each) ready in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let shares = check(&dirs)?;
    let out = root.join(format!("merged-{}", std::process::id()));
    let staging = Staging::create(&out)?;
    merge(&shares, staging.dir())?;
    let merged = staging.commit()?;
    let merge_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let summary = stampede::analysis::summarize_dir(&merged)?;
    let summary_s = t.elapsed().as_secs_f64();
    let requests: u64 = summary.phases.iter().map(|p| p.requests).sum();
    println!(
        "merge ({} histograms read, {} written): {merge_s:.2}s; summary of the merged run: {summary_s:.2}s; total {:.2}s; {requests} requests",
        SHARES * SECONDS * endpoints as u64 * 2,
        SECONDS * endpoints as u64 * 2,
        merge_s + summary_s
    );
    let _ = std::fs::remove_dir_all(if keep.is_some() { &merged } else { &root });
    Ok(())
}
