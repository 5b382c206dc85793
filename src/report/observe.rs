//! Per-phase observations generated from the numbers, the sentences a seed report's author
//! writes under each phase ("at 100 VUs p95 is 2.5× over its target"): how the phase scaled
//! against the one before it, which endpoint was slowest, how long the tail was, what the open
//! model dropped. Only what the summary measured; nothing when there is nothing to say.

use crate::analysis::PhaseSummary;

/// The tail is long when p99 is at least this many times p50 (queueing, not service time).
const LONG_TAIL: f64 = 3.0;

/// The observations of `p`, with `before` the previous phase that ran (if any).
pub fn observations(p: &PhaseSummary, before: Option<&PhaseSummary>) -> Vec<String> {
    let mut out = Vec::new();
    let Some(l) = &p.latency_ms else { return out };
    if let Some(b) = before.filter(|b| b.requests > 0 && b.vus_max > 0 && b.rps > 0.0) {
        if let (Some(bl), true) = (&b.latency_ms, p.vus_max > 0) {
            let load = p.vus_max as f64 / b.vus_max as f64;
            let rps = p.rps / b.rps;
            if (load - 1.0).abs() >= 0.1 {
                let mut s = format!(
                    "against {} ({} VUs): {:.1}× the VUs, {:.1}× the throughput ({:.1} → {:.1} req/s), p95 {} → {} ({:.1}×)",
                    b.name,
                    b.vus_max,
                    load,
                    rps,
                    b.rps,
                    p.rps,
                    ms(bl.p95),
                    ms(l.p95),
                    l.p95 / bl.p95.max(0.001)
                );
                if load > 1.0 {
                    let efficiency = rps / load;
                    s.push_str(&if efficiency >= 0.9 {
                        format!(
                            ": throughput scaled with the load ({:.0}% of linear)",
                            efficiency * 100.0
                        )
                    } else if efficiency >= 0.5 {
                        format!(
                            ": throughput grew less than the load ({:.0}% of linear), the system is filling up",
                            efficiency * 100.0
                        )
                    } else {
                        format!(
                            ": throughput barely grew ({:.0}% of linear), the system is saturated",
                            efficiency * 100.0
                        )
                    });
                }
                out.push(s);
            }
        }
    }
    let timed: Vec<_> = p
        .steps
        .iter()
        .filter_map(|s| s.latency_ms.as_ref().map(|l| (s, l)))
        .collect();
    if timed.len() >= 2 {
        if let Some((s, sl)) = timed.iter().max_by(|a, b| a.1.p95.total_cmp(&b.1.p95)) {
            let mut p95s: Vec<f64> = timed.iter().map(|(_, l)| l.p95).collect();
            p95s.sort_by(f64::total_cmp);
            let median = p95s[p95s.len() / 2];
            if median > 0.0 && sl.p95 >= 1.2 * median {
                out.push(format!(
                    "slowest endpoint: {}, p95 {} ({:.1}× the median endpoint's {})",
                    s.name,
                    ms(sl.p95),
                    sl.p95 / median,
                    ms(median)
                ));
            }
        }
    }
    if l.p50 > 0.0 && l.p99 >= LONG_TAIL * l.p50 {
        out.push(format!(
            "long tail: p99 {} is {:.1}× the median {}, so some requests waited (queueing) rather than took longer to serve",
            ms(l.p99),
            l.p99 / l.p50,
            ms(l.p50)
        ));
    }
    if p.dropped_iterations > 0 {
        out.push(format!(
            "{} arrivals found no free VU and were dropped: the offered load was higher than measured",
            p.dropped_iterations
        ));
    }
    out
}

fn ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(name: &str, vus: u64, rps: f64, p50: f64, p95: f64, p99: f64) -> PhaseSummary {
        serde_json::from_value(serde_json::json!({
            "name": name, "model": "closed", "description": "", "duration_s": 10.0, "requests": 100,
            "errors": 0, "error_rate": 0.0, "rps": rps, "iterations": 100, "dropped_iterations": 0,
            "vus_max": vus, "errors_by_kind": {}, "errors_by_class": {}, "steps": [], "thresholds": [],
            "latency_ms": { "avg": p50, "min": 1.0, "p50": p50, "p90": p95, "p95": p95, "p99": p99, "p99.9": p99, "max": p99 }
        }))
        .unwrap()
    }

    #[test]
    fn scaling_against_the_phase_before_and_the_tail_are_said_in_numbers() {
        let a = phase("baseline", 5, 10.0, 100.0, 140.0, 150.0);
        let b = phase("peak", 100, 78.0, 300.0, 1258.0, 1400.0);
        let o = observations(&b, Some(&a));
        assert!(
            o[0].starts_with("against baseline (5 VUs): 20.0× the VUs, 7.8× the throughput"),
            "{o:?}"
        );
        assert!(
            o[0].contains("p95 140 ms → 1258 ms (9.0×)") && o[0].contains("saturated"),
            "{o:?}"
        );
        assert!(o[1].starts_with("long tail: p99 1400 ms is 4.7×"), "{o:?}");
        assert!(observations(&a, None).is_empty(), "nothing to say");
    }
}
