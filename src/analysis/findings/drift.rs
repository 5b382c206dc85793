//! Memory or latency drifting upward over a long phase: a possible leak.

use super::{fmt_t, phase_ranges, r3, Input, Rule};
use crate::analysis::{Finding, Priority};

/// A phase at least this long is watched for drift.
const LONG_PHASE_S: f64 = 300.0;

/// Least-squares slope (per second) and r² of `pts`.
fn slope(pts: &[(f64, f64)]) -> Option<(f64, f64)> {
    let n = pts.len() as f64;
    if pts.len() < 10 {
        return None;
    }
    let mx = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    if sxx <= 0.0 || syy <= 0.0 {
        return None;
    }
    let b = sxy / sxx;
    Some((b, sxy * sxy / (sxx * syy)))
}

/// A series watched for drift: name, points, whether it is memory (else latency).
type Candidate = (String, Vec<(f64, f64)>, bool);

/// Memory or p50 latency growing steadily over a phase of at least [`LONG_PHASE_S`]: a possible
/// leak.
pub struct Drift;

impl Rule for Drift {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let (secs, tl) = (input.secs, input.server);
        for (phase, from, to) in phase_ranges(secs) {
            if to - from < LONG_PHASE_S {
                continue;
            }
            let mut candidates: Vec<Candidate> = tl
                .iter()
                .filter(|(k, _)| {
                    let name = k.split('{').next().unwrap_or(k);
                    name.ends_with("mem_used_bytes")
                        || name.ends_with("rss_bytes")
                        || name.ends_with("used_memory_bytes")
                        || name.ends_with("resident_memory_bytes")
                })
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.iter().copied().filter(|(t, _)| *t >= from && *t < to).collect(),
                        true,
                    )
                })
                .collect();
            let lat: Vec<(f64, f64)> = secs
                .iter()
                .filter(|s| s.phase == phase && !s.latency.is_empty())
                .map(|s| (s.t, s.latency.value_at_quantile(0.5) as f64 / 1000.0))
                .collect();
            candidates.push(("p50 latency (ms)".into(), lat, false));
            for (name, pts, is_mem) in candidates {
                let Some((b, r2)) = slope(&pts) else { continue };
                let start = pts.iter().take(pts.len() / 10 + 1).map(|p| p.1).sum::<f64>() / (pts.len() / 10 + 1) as f64;
                let grown = b * (to - from);
                if b <= 0.0 || r2 < 0.5 || start <= 0.0 || grown < 0.10 * start {
                    continue;
                }
                let per_hour = b * 3600.0;
                let shown = if is_mem {
                    format!("{:.1} MiB/h", per_hour / (1024.0 * 1024.0))
                } else {
                    format!("{per_hour:.1} ms/h")
                };
                out.push(Finding {
                    priority: if grown >= 0.5 * start { Priority::High } else { Priority::Medium },
                    title: format!("Possible leak: {name} drifts upward"),
                    evidence: vec![format!(
                        "{name} grows {shown} over phase {phase} ({} to {}, +{:.0}% of its start, r² {r2:.2})",
                        fmt_t(from),
                        fmt_t(to),
                        grown / start * 100.0
                    )],
                    recommendation: if is_mem {
                        "Memory grows steadily at constant load: take heap snapshots at the start and the end of a soak and compare them; look for caches without bounds and connections or listeners that are never released.".into()
                    } else {
                        "Latency grows at constant load: something accumulates (table bloat, an unbounded queue or cache, lock contention, memory pressure). Compare the server's metrics at the start and the end of the phase.".into()
                    },
                    phase: Some(phase.clone()),
                    at_s: Some(r3(from)),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::{check, sec};
    use crate::analysis::findings::{Samples, Sec};

    #[test]
    fn memory_growing_over_a_long_phase_is_a_possible_leak() {
        let secs: Vec<Sec> = (0..600).map(|i| sec(i as f64, "soak", 20, 100, &[])).collect();
        let mut tl = Samples::new();
        // 400 MiB growing by 1 MiB every 10 s: 360 MiB/h.
        let mib = 1024.0 * 1024.0;
        tl.insert(
            "app.process_resident_memory_bytes".into(),
            (0..600)
                .map(|i| (i as f64 + 0.5, 400.0 * mib + (i / 10) as f64 * mib))
                .collect(),
        );
        tl.insert(
            "host.mem_total_bytes".into(),
            (0..600).map(|i| (i as f64, 8e9)).collect(),
        );
        let out = check(&Drift, &secs, &tl);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].title.contains("process_resident_memory_bytes"));
        assert!(out[0].evidence[0].contains("MiB/h"), "{:?}", out[0].evidence);
        let per_hour: f64 = out[0].evidence[0]
            .split(" grows ")
            .nth(1)
            .and_then(|x| x.split(' ').next())
            .and_then(|x| x.parse().ok())
            .unwrap();
        assert!((per_hour - 360.0).abs() < 10.0, "{per_hour}");
        // A short phase is not watched.
        let short: Vec<Sec> = (0..60).map(|i| sec(i as f64, "p", 20, 100, &[])).collect();
        let out = check(&Drift, &short, &tl);
        assert!(out.is_empty());
    }

    #[test]
    fn slopes() {
        let pts: Vec<(f64, f64)> = (0..20).map(|i| (i as f64, 100.0 + 2.0 * i as f64)).collect();
        let (b, r2) = slope(&pts).unwrap();
        assert!((b - 2.0).abs() < 1e-9 && (r2 - 1.0).abs() < 1e-9);
        assert_eq!(slope(&pts[..3]), None);
    }
}
