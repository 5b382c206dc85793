//! Process restarts during the run: worker instability.

use super::{fmt_t, phase_of, r3, Input, Rule};
use crate::analysis::{Finding, Priority};
use crate::outcome::{classify, ErrorClass};

/// A process whose `restarts` counter went up: worker instability, critical when load errors
/// came with it.
pub struct Restarts;

impl Rule for Restarts {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let (secs, tl) = (input.secs, input.server);
        for (key, pts) in tl {
            let Some(monitor) = key.strip_suffix(".restarts") else {
                continue;
            };
            let mut times = Vec::new();
            let mut prev = pts.first().map(|p| p.1).unwrap_or(0.0);
            for (t, v) in pts.iter().skip(1) {
                if *v > prev {
                    times.push((*t, *v - prev));
                }
                prev = *v;
            }
            let total: f64 = times.iter().map(|x| x.1).sum();
            if total <= 0.0 {
                continue;
            }
            let phase = phase_of(secs, times[0].0);
            let when: Vec<String> = times.iter().take(10).map(|(t, _)| fmt_t(*t)).collect();
            let errors: u64 = secs
                .iter()
                .filter(|s| times.iter().any(|(t, _)| (s.t - t).abs() <= 2.0))
                .flat_map(|s| s.kinds.iter())
                .filter(|(k, _)| classify(k) == ErrorClass::Load)
                .map(|(_, n)| n)
                .sum();
            let mut evidence = vec![format!(
                "`{monitor}` restarted {total:.0} time(s) during the run: {}{}",
                when.join(", "),
                phase.as_ref().map(|p| format!(" (phase {p})")).unwrap_or_default()
            )];
            if errors > 0 {
                evidence.push(format!("{errors} load errors within 2 s of a restart"));
            }
            out.push(Finding {
                priority: if errors > 0 { Priority::Critical } else { Priority::High },
                title: format!("Worker instability: `{monitor}` restarted"),
                evidence,
                recommendation: "Find why the process died (its logs, the kernel's OOM killer in dmesg, crash dumps); check memory limits and max_requests-style recycling settings. Requests in flight on a dying worker fail.".into(),
                phase,
                at_s: Some(r3(times[0].0)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::{check, sec};
    use crate::analysis::findings::{Samples, Sec};

    #[test]
    fn restarts_are_worker_instability_with_times() {
        let secs: Vec<Sec> = (0..10).map(|i| sec(i as f64, "peak", 50, 100, &[])).collect();
        let mut tl = Samples::new();
        tl.insert(
            "fpm.restarts".into(),
            vec![(0.5, 0.0), (1.5, 0.0), (2.5, 1.0), (3.5, 1.0), (6.5, 3.0)],
        );
        let out = check(&Restarts, &secs, &tl);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].title, "Worker instability: `fpm` restarted");
        assert_eq!(out[0].at_s, Some(2.5));
        assert_eq!(out[0].phase.as_deref(), Some("peak"));
        assert!(out[0].evidence[0].contains("restarted 3 time(s)") && out[0].evidence[0].contains("t=2s, t=6s"));
    }
}
