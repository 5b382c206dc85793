//! CPU saturation on a monitored host, CPU-bound when latency degraded meanwhile.

use super::{fmt_t, impact, phase_of, r3, secs_at, Input, Rule, MIN_SATURATED_SAMPLES};
use crate::analysis::{Finding, Priority};

/// CPU busy enough to be the bottleneck, in percent.
const CPU_SATURATED: f64 = 90.0;

/// A host at CPU saturation (≥ 90 %, or a load average ≥ its cores) in more than
/// [`MIN_SATURATED_SAMPLES`] samples: CPU-bound when latency degraded meanwhile.
pub struct CpuBound;

impl Rule for CpuBound {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let (secs, tl) = (input.secs, input.server);
        let hosts: Vec<&str> = tl.keys().filter_map(|k| k.strip_suffix(".load1")).collect();
        for monitor in hosts {
            let cores = tl
                .get(&format!("{monitor}.cores"))
                .and_then(|v| v.last())
                .map(|x| x.1)
                .unwrap_or(input.cores.max(1) as f64);
            let mut hot: Vec<f64> = Vec::new();
            let mut evidence = Vec::new();
            for (series, limit, label, suffix) in [
                ("cpu_percent", CPU_SATURATED, "CPU", " %"),
                ("load1", cores, "load average (1 min)", ""),
            ] {
                let Some(pts) = tl.get(&format!("{monitor}.{series}")) else {
                    continue;
                };
                let over: Vec<(f64, f64)> = pts.iter().copied().filter(|(_, v)| *v >= limit).collect();
                if over.len() <= MIN_SATURATED_SAMPLES {
                    continue;
                }
                let peak = over.iter().map(|x| x.1).fold(0.0, f64::max);
                evidence.push(format!(
                    "{label} ≥ {limit:.0}{suffix} in {} of {} samples from {} to {}, peak {peak:.1}{suffix}",
                    over.len(),
                    pts.len(),
                    fmt_t(over[0].0),
                    fmt_t(over[over.len() - 1].0),
                ));
                hot.extend(over.iter().map(|x| x.0));
            }
            if hot.is_empty() {
                continue;
            }
            hot.sort_by(f64::total_cmp);
            let during = secs_at(secs, hot.iter().copied());
            let im = impact(input, &during);
            let degraded = im.latency_degraded();
            evidence.extend(im.latency_line("meanwhile"));
            out.push(Finding {
                priority: if degraded { Priority::High } else { Priority::Medium },
                title: if degraded {
                    format!("CPU-bound: `{monitor}`")
                } else {
                    format!("CPU at saturation on `{monitor}`")
                },
                evidence,
                recommendation: format!(
                    "Profile the hottest endpoints (a flame graph under this load), cache or batch the expensive work, or add cores or instances ({cores:.0} cores here). If the load generator runs on the same machine, move it off: it competes for the same CPU."
                ),
                phase: phase_of(secs, hot[0]),
                at_s: Some(r3(hot[0])),
            });
        }
    }
}
