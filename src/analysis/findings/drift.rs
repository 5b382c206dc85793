//! Drift over a phase as a finding: latency degrading, or memory suspected of leaking, as the
//! phase's drift (`analysis::drift`: a trend test with its effect size) judged it. One
//! judgement, so the summary's `drift` and the findings never disagree.

use super::{fmt_t, phase_ranges, r3, Input, Rule};
use crate::analysis::summary::{DriftVerdict, LatencyDrift, MemoryVerdict};
use crate::analysis::{Finding, Priority};

/// A phase shorter than this gets its latency drift in the summary and the windows table, but
/// no finding: a short phase's latency trend is mostly warm-up. (A memory series tells warm-up
/// from a leak itself, so a suspected leak is a finding in a phase of any length.)
const MIN_PHASE_S: f64 = 30.0;
const MIB: f64 = 1024.0 * 1024.0;

pub struct Drift;

impl Rule for Drift {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        for (phase, from, to) in phase_ranges(input.secs) {
            let Some((_, d)) = input.drifts.iter().find(|(p, _)| *p == phase) else {
                continue;
            };
            let at = Some(r3(from));
            let lat: Vec<(&str, &LatencyDrift)> = [("p50", &d.latency), ("p95", &d.latency_p95)]
                .into_iter()
                .filter(|(_, l)| l.verdict == DriftVerdict::Degrading)
                .collect();
            if !lat.is_empty() && to - from >= MIN_PHASE_S {
                out.push(Finding {
                    priority: if lat.iter().any(|(_, l)| l.change_pct >= 50.0) {
                        Priority::High
                    } else {
                        Priority::Medium
                    },
                    title: format!("Latency degrades over phase {phase}"),
                    evidence: lat
                        .iter()
                        .map(|(q, l)| {
                            format!(
                                "{q} latency rises {:.1} ms/h ({:.1} ms → {:.1} ms, {:+.0}%) from {} to {} (Mann-Kendall p = {:.2e}, trend over {} points)",
                                l.slope_ms_per_h, l.start_ms, l.end_ms, l.change_pct, fmt_t(from), fmt_t(to), l.p_value, d.points
                            )
                        })
                        .collect(),
                    recommendation: "Latency grows at constant load: something accumulates (table bloat, an unbounded queue or cache, lock contention, memory pressure). Compare the server's metrics at the start and the end of the phase.".into(),
                    phase: Some(phase.clone()),
                    at_s: at,
                });
            }
            for m in d.memory.iter().filter(|m| m.verdict == MemoryVerdict::LeakSuspected) {
                let mut evidence = vec![format!(
                    "{} grows {:.1} MiB/h ({:.1} → {:.1} MiB{}), still {:.1} MiB/h in the phase's last third, from {} to {} (p = {:.2e})",
                    m.series,
                    m.slope_mib_per_h,
                    m.start_bytes / MIB,
                    m.end_bytes / MIB,
                    m.growth_pct.map(|p| format!(", {p:+.0}%")).unwrap_or_default(),
                    m.last_third_mib_per_h,
                    fmt_t(from),
                    fmt_t(to),
                    m.p_value
                )];
                if let (Some(l), Some(h)) = (m.limit_bytes, m.reaches_limit_h) {
                    evidence.push(format!(
                        "at that rate it reaches its limit of {:.0} MiB {:.1} h after the phase",
                        l / MIB,
                        h
                    ));
                }
                out.push(Finding {
                    priority: if m.reaches_limit_h.is_some_and(|h| h < 24.0) { Priority::High } else { Priority::Medium },
                    title: format!("Memory leak suspected: {} keeps growing", m.series),
                    evidence,
                    recommendation: "Memory grows at constant load without levelling off: take heap snapshots at the start and the end of a soak and compare them; look for caches without bounds and connections or listeners that are never released.".into(),
                    phase: Some(phase.clone()),
                    at_s: at,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::{input, sec};
    use crate::analysis::findings::{Samples, Sec};

    fn findings(secs: &[Sec], server: &Samples) -> Vec<Finding> {
        let refs: Vec<&Sec> = secs.iter().collect();
        let drifts: Vec<(String, crate::analysis::summary::Drift)> =
            crate::analysis::drift::phase_drift(&refs, server, Some(8e9))
                .map(|d| ("soak".to_string(), d))
                .into_iter()
                .collect();
        let mut i = input(secs, server);
        i.drifts = &drifts;
        let mut out = Vec::new();
        Drift.check(&i, &mut out);
        out
    }

    #[test]
    fn a_leaking_memory_series_and_degrading_latency_are_findings() {
        let secs: Vec<Sec> = (0..600).map(|i| sec(i as f64, "soak", 20, 100, &[])).collect();
        let mut tl = Samples::new();
        // 400 MiB growing by 1 MiB every 10 s: 360 MiB/h.
        tl.insert(
            "app.process_resident_memory_bytes".into(),
            (0..600)
                .map(|i| (i as f64 + 0.5, 400.0 * MIB + (i / 10) as f64 * MIB))
                .collect(),
        );
        tl.insert(
            "host.mem_total_bytes".into(),
            (0..600).map(|i| (i as f64, 8e9)).collect(),
        );
        let out = findings(&secs, &tl);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].title.contains("process_resident_memory_bytes"));
        let per_hour: f64 = out[0].evidence[0]
            .split(" grows ")
            .nth(1)
            .and_then(|x| x.split(' ').next())
            .and_then(|x| x.parse().ok())
            .unwrap();
        assert!((per_hour - 360.0).abs() < 10.0, "{per_hour}");
        let up: Vec<Sec> = (0..60).map(|i| sec(i as f64, "soak", 20, 5 + i as u64, &[])).collect();
        let out = findings(&up, &Samples::new());
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(out[0].title.starts_with("Latency degrades"), "{out:?}");
        // A short phase is left to the summary.
        let short: Vec<Sec> = (0..20).map(|i| sec(i as f64, "soak", 20, 5 + i as u64, &[])).collect();
        assert!(findings(&short, &Samples::new()).is_empty());
        // Flat: nothing.
        let flat: Vec<Sec> = (0..600).map(|i| sec(i as f64, "soak", 20, 100, &[])).collect();
        assert!(findings(&flat, &Samples::new()).is_empty());
    }
}
