//! The load generator was the limit: its CPU or its late timers (analysis::generator judged
//! them), so the latency measured includes its own queueing, not only the system's.

use super::{fmt_t, Input, Rule};
use crate::analysis::{Finding, Priority};

pub struct GeneratorLimit;

impl Rule for GeneratorLimit {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let Some(g) = input.generator.filter(|g| g.limited) else {
            return;
        };
        let mut evidence = g.reasons.clone();
        if let (Some(p), Some(m)) = (g.late_ms_p99, g.late_ms_max) {
            evidence.push(format!(
                "timers on the load threads fired {p:.1} ms late at p99, {m:.0} ms at most"
            ));
        }
        if let Some(at) = g.limited_from_s {
            evidence.push(format!("first seen at {}", fmt_t(at)));
        }
        out.push(Finding {
            priority: Priority::High,
            title: "The load generator was the limit, not the system".into(),
            evidence,
            recommendation: "Latency figures include the generator's own queueing: use more `--workers`, fewer VUs per process, or `--segment` over several machines, and run again.".into(),
            phase: None,
            at_s: g.limited_from_s,
        });
    }
}
