//! A cache whose hit ratio falls as the load grows.

use super::{fmt_t, phase_of, r3, sec_at, secs_at, statements, Input, Rule};
use crate::analysis::{Finding, Priority};

/// A drop of the hit ratio worth a finding (percentage points / 100).
const HIT_RATIO_DROP: f64 = 0.03;

/// A cache hit ratio lower in the busiest third of the samples than in the quietest third, by
/// at least [`HIT_RATIO_DROP`]: under load, more requests reach the backend.
pub struct HitRatio;

impl Rule for HitRatio {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>) {
        let (secs, tl) = (input.secs, input.server);
        for (key, pts) in tl {
            let series = key.split_once('.').map(|x| x.1).unwrap_or(key);
            if !series.split('{').next().unwrap_or("").ends_with("hit_ratio") {
                continue;
            }
            // Pair every sample with the client's request rate at that second.
            let mut with_load: Vec<(f64, f64, f64)> = pts
                .iter()
                .filter_map(|(t, v)| sec_at(secs, *t).map(|s| (s.requests as f64 / s.dur.max(0.001), *v, *t)))
                .filter(|x| x.0 > 0.0)
                .collect();
            if with_load.len() < 6 {
                continue;
            }
            with_load.sort_by(|a, b| a.0.total_cmp(&b.0));
            let third = with_load.len() / 3;
            let low = &with_load[..third];
            let high = &with_load[with_load.len() - third..];
            let avg = |xs: &[(f64, f64, f64)], i: usize| {
                xs.iter().map(|x| if i == 0 { x.0 } else { x.1 }).sum::<f64>() / xs.len() as f64
            };
            let (ratio_low, ratio_high) = (avg(low, 1), avg(high, 1));
            if ratio_low - ratio_high < HIT_RATIO_DROP {
                continue;
            }
            let first_high = high.iter().map(|x| x.2).fold(f64::INFINITY, f64::min);
            let mut evidence = vec![format!(
                "{:.1}% at ~{:.0} req/s vs {:.1}% at ~{:.0} req/s (busiest third of the samples, from {})",
                ratio_low * 100.0,
                avg(low, 0),
                ratio_high * 100.0,
                avg(high, 0),
                fmt_t(first_high)
            )];
            // A database's cache: which statements paid for the misses.
            let busy = secs_at(secs, high.iter().map(|x| x.2));
            let changes = statements::changes(input, &busy);
            evidence.extend(statements::lines(&changes, "in the busiest third", 3));
            out.push(Finding {
                priority: Priority::Medium,
                title: format!("Cache hit ratio falls under load ({key})"),
                evidence,
                recommendation: "Under load more requests miss the cache and hit the backend, which is already the busiest part: check evictions and the cache's memory, warm it before peaks, and look for keys that expire together.".into(),
                phase: phase_of(secs, first_high),
                at_s: Some(r3(first_high)),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::{check, sec};
    use crate::analysis::findings::Samples;

    #[test]
    fn a_hit_ratio_lower_when_busier_is_a_finding() {
        // Quiet seconds at 10 req/s hit 92%, busy ones at 100 req/s hit 85%.
        let mut secs = Vec::new();
        let mut pts = Vec::new();
        for i in 0..12 {
            let busy = i >= 6;
            secs.push(sec(i as f64, "p", if busy { 100 } else { 10 }, 10, &[]));
            pts.push((i as f64 + 0.5, if busy { 0.85 } else { 0.92 }));
        }
        let mut tl = Samples::new();
        tl.insert("redis.hit_ratio".into(), pts.clone());
        let out = check(&HitRatio, &secs, &tl);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0].evidence[0].starts_with("92.0% at ~10 req/s vs 85.0% at ~100 req/s"),
            "{:?}",
            out[0].evidence
        );
        // A steady ratio is no finding.
        tl.insert("redis.hit_ratio".into(), pts.iter().map(|(t, _)| (*t, 0.9)).collect());
        let out = check(&HitRatio, &secs, &tl);
        assert!(out.is_empty());
    }
}
