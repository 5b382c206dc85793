use std::path::PathBuf;

use clap::Args;

use super::{EXIT_INVALID, EXIT_OK};
use crate::analysis::{summarize_dir, LatencyMs, Summary};
use crate::report::escape::md;
use crate::report::terminal::{ms, pct};

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The run before the change.
    run_a: PathBuf,
    /// The run after the change.
    run_b: PathBuf,
}

/// `before → after (change %)`; the change is left out when there is no base to divide by.
fn cell(a: Option<f64>, b: Option<f64>, fmt: fn(f64) -> String) -> String {
    match (a, b) {
        (Some(a), Some(b)) if a != 0.0 => format!("{} → {} ({:+.0}%)", fmt(a), fmt(b), (b - a) / a * 100.0),
        (Some(a), Some(b)) => format!("{} → {}", fmt(a), fmt(b)),
        (Some(a), None) => format!("{} → -", fmt(a)),
        (None, Some(b)) => format!("- → {}", fmt(b)),
        (None, None) => "-".into(),
    }
}

fn rps(v: f64) -> String {
    format!("{v:.1}/s")
}

/// Markdown: one table per phase present in both runs, a row for the whole phase and one per
/// step, p95 / avg / req/s / error rate before → after with the change.
pub fn render(a: &Summary, b: &Summary) -> String {
    let mut out = format!(
        "# Comparison: {} ({}) → {} ({})\n\nVerdict: {} → {}\n",
        md(&a.name),
        md(&a.started_at),
        md(&b.name),
        md(&b.started_at),
        a.verdict.label(),
        b.verdict.label()
    );
    let lat = |l: &Option<LatencyMs>, f: fn(&LatencyMs) -> f64| l.as_ref().map(f);
    for pa in &a.phases {
        let Some(pb) = b.phases.iter().find(|p| p.name == pa.name) else {
            out.push_str(&format!("\nPhase {} is only in the first run.\n", md(&pa.name)));
            continue;
        };
        out.push_str(&format!(
            "\n## {}\n\n| Endpoint | p95 | avg | throughput | error rate |\n| --- | ---: | ---: | ---: | ---: |\n",
            md(&pa.name)
        ));
        let mut rows = vec![(
            "(all)".to_string(),
            cell(lat(&pa.latency_ms, |l| l.p95), lat(&pb.latency_ms, |l| l.p95), ms),
            cell(lat(&pa.latency_ms, |l| l.avg), lat(&pb.latency_ms, |l| l.avg), ms),
            cell(Some(pa.rps), Some(pb.rps), rps),
            cell(Some(pa.error_rate), Some(pb.error_rate), pct),
        )];
        for sa in &pa.steps {
            let sb = pb.steps.iter().find(|s| s.name == sa.name);
            rows.push((
                md(&sa.name),
                cell(
                    lat(&sa.latency_ms, |l| l.p95),
                    sb.and_then(|s| lat(&s.latency_ms, |l| l.p95)),
                    ms,
                ),
                cell(
                    lat(&sa.latency_ms, |l| l.avg),
                    sb.and_then(|s| lat(&s.latency_ms, |l| l.avg)),
                    ms,
                ),
                cell(Some(sa.rps), sb.map(|s| s.rps), rps),
                cell(Some(sa.error_rate), sb.map(|s| s.error_rate), pct),
            ));
        }
        for (n, p95, avg, r, e) in rows {
            out.push_str(&format!("| {n} | {p95} | {avg} | {r} | {e} |\n"));
        }
    }
    for pb in b.phases.iter().filter(|p| !a.phases.iter().any(|x| x.name == p.name)) {
        out.push_str(&format!("\nPhase {} is only in the second run.\n", md(&pb.name)));
    }
    out
}

pub fn compare(a: CompareArgs) -> u8 {
    let load = |p: &PathBuf| {
        summarize_dir(p).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_INVALID
        })
    };
    let (sa, sb) = match (load(&a.run_a), load(&a.run_b)) {
        (Ok(x), Ok(y)) => (x, y),
        (Err(c), _) | (_, Err(c)) => return c,
    };
    out!("{}", render(&sa, &sb));
    EXIT_OK
}
