//! Drift over a phase: whether latency (p50 and p95), the error rate and each memory series
//! trended, by the [`trend`](super::trend) test, with the Theil-Sen slope as the effect size.
//! A trend is a verdict only when it is significant *and* large enough to matter
//! ([`MIN_LATENCY_CHANGE`], [`MIN_ERROR_RATE_CHANGE`], [`MIN_MEMORY_GROWTH`]), so a long, very
//! steady phase does not call a 0.1 ms rise "degrading".

use super::findings::{is_memory, Samples, Sec};
use super::summary::{r3, Drift, DriftVerdict, ErrorRateDrift, LatencyDrift, MemoryDrift, MemoryVerdict};
use super::trend::{trend, trend_of_blocks, Trend, ALPHA, MAX_POINTS, MIN_POINTS};
use crate::recorder::new_growable;

/// A latency trend matters when the fitted line moves by at least 20% of its start over the
/// phase, and by at least this many ms (sub-millisecond wobbles are not a finding). At 10 %, a
/// flat system on a machine whose other load eased during the phase (a test suite finishing
/// around it) came out "improving" by 10.05 %: what the generator's host did, not the system.
pub const MIN_LATENCY_CHANGE: f64 = 0.20;
const MIN_LATENCY_CHANGE_MS: f64 = 0.25;
/// An error-rate trend matters when the rate moves by half a percentage point over the phase.
pub const MIN_ERROR_RATE_CHANGE: f64 = 0.005;
/// Memory growth matters at 5% of its start over the phase (or 1% of a known limit).
pub const MIN_MEMORY_GROWTH: f64 = 0.05;
/// Still growing at a quarter of the phase's rate in its last third: not levelling off.
const STILL_GROWING: f64 = 0.25;
/// Memory is judged in phases at least this long: a few seconds of a machine's used memory (other
/// processes, the page cache) say nothing about a leak.
const MIN_MEMORY_PHASE_S: f64 = 10.0;
/// Memory is judged on the means of this many blocks of its samples (see [`trend_of_blocks`]).
const MEMORY_BLOCKS: usize = 12;
const MIB: f64 = 1024.0 * 1024.0;

/// The drift of one phase: its seconds (time-sorted), the server samples, and the memory limit
/// of the load generator's host (what a process monitor's processes share).
pub fn phase_drift(secs: &[&Sec], server: &Samples, host_memory: Option<f64>) -> Option<Drift> {
    let first = secs.first()?;
    let from = first.t;
    let to = secs.last().map(|s| s.t + s.dur)?;
    let per = secs.len().div_ceil(MAX_POINTS).max(1);
    let (mut p50, mut p95, mut errs) = (Vec::new(), Vec::new(), Vec::new());
    for chunk in secs.chunks(per) {
        let mut h = new_growable();
        let (mut requests, mut errors) = (0u64, 0u64);
        for s in chunk {
            s.latency.add_to(&mut h);
            requests += s.requests;
            errors += s.errors;
        }
        let mid = (chunk[0].t + chunk[chunk.len() - 1].t + chunk[chunk.len() - 1].dur) / 2.0 - from;
        if requests > 0 {
            errs.push((mid, errors as f64 / requests as f64));
        }
        if !h.is_empty() {
            p50.push((mid, h.value_at_quantile(0.5) as f64 / 1000.0));
            p95.push((mid, h.value_at_quantile(0.95) as f64 / 1000.0));
        }
    }
    let latency = latency_drift(&trend(&p50)?);
    let latency_p95 = latency_drift(&trend(&p95)?);
    let error_rate = error_drift(trend(&errs)?);
    let memory: Vec<MemoryDrift> = server
        .iter()
        .filter(|(k, _)| is_memory(k) && to - from >= MIN_MEMORY_PHASE_S)
        .filter_map(|(k, pts)| {
            let inside: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| p.0 >= from && p.0 < to)
                .map(|(t, v)| (t - from, *v))
                .collect();
            memory_drift(k, &thin(&inside, MAX_POINTS), limit_of(k, server, host_memory))
        })
        .collect();
    let verdicts = [latency.verdict, latency_p95.verdict, error_rate.verdict];
    let verdict = if verdicts.contains(&DriftVerdict::Degrading)
        || memory.iter().any(|m| m.verdict == MemoryVerdict::LeakSuspected)
    {
        DriftVerdict::Degrading
    } else if verdicts.contains(&DriftVerdict::Improving) {
        DriftVerdict::Improving
    } else {
        DriftVerdict::Stable
    };
    Some(Drift {
        verdict,
        latency,
        latency_p95,
        error_rate,
        memory,
        points: p50.len(),
        point_s: per as f64,
        test: "mann_kendall_ar1".into(),
        alpha: ALPHA,
    })
}

fn direction(tr: &Trend, matters: bool) -> DriftVerdict {
    match (tr.significant() && matters, tr.slope > 0.0) {
        (false, _) => DriftVerdict::Stable,
        (true, true) => DriftVerdict::Degrading,
        (true, false) => DriftVerdict::Improving,
    }
}

fn latency_drift(tr: &Trend) -> LatencyDrift {
    let change = tr.end - tr.start;
    let base = tr.start.abs().max(1e-9);
    let matters = change.abs() >= MIN_LATENCY_CHANGE * base && change.abs() >= MIN_LATENCY_CHANGE_MS;
    LatencyDrift {
        slope_ms_per_h: r3(tr.slope * 3600.0),
        start_ms: r3(tr.start),
        end_ms: r3(tr.end),
        change_pct: r3(change / base * 100.0),
        p_value: tr.p_value,
        significant: tr.significant(),
        verdict: direction(tr, matters),
    }
}

fn error_drift(tr: Trend) -> ErrorRateDrift {
    let matters = (tr.end - tr.start).abs() >= MIN_ERROR_RATE_CHANGE;
    ErrorRateDrift {
        slope_per_h: tr.slope * 3600.0,
        start: tr.start.max(0.0),
        end: tr.end.max(0.0),
        p_value: tr.p_value,
        significant: tr.significant(),
        verdict: direction(&tr, matters),
    }
}

/// At most `max` points: consecutive samples averaged.
fn thin(pts: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    let per = pts.len().div_ceil(max).max(1);
    pts.chunks(per)
        .map(|c| {
            let n = c.len() as f64;
            (
                c.iter().map(|p| p.0).sum::<f64>() / n,
                c.iter().map(|p| p.1).sum::<f64>() / n,
            )
        })
        .collect()
}

/// The limit a memory series grows towards, when the run knows it: the host monitor's total
/// memory for its used memory, a `*limit_bytes` series of the same monitor (a container's
/// limit), or the generator host's memory for a process monitor (it watches local processes).
fn limit_of(key: &str, server: &Samples, host_memory: Option<f64>) -> Option<f64> {
    let (monitor, name) = key.split_once('.')?;
    let last = |k: &str| server.get(k).and_then(|v| v.last()).map(|p| p.1);
    if name == "mem_used_bytes" {
        return last(&format!("{monitor}.mem_total_bytes"));
    }
    let own = server
        .iter()
        .find(|(k, _)| k.starts_with(&format!("{monitor}.")) && k.contains("limit_bytes"))
        .and_then(|(_, v)| v.last().map(|p| p.1));
    own.or(if name == "rss_bytes" { host_memory } else { None })
        .filter(|l| *l > 0.0)
}

/// One memory series over the phase (times since its start): significant growth of at least
/// [`MIN_MEMORY_GROWTH`] (over [`MEMORY_BLOCKS`] block means) that is still going on in the
/// last third (its own samples, at least [`MIN_POINTS`]) is a suspected leak, growth that has
/// stopped by then is warming up.
fn memory_drift(series: &str, pts: &[(f64, f64)], limit: Option<f64>) -> Option<MemoryDrift> {
    if pts.len() < MIN_POINTS {
        return None;
    }
    let blocks = thin(pts, MEMORY_BLOCKS);
    let all = trend_of_blocks(&blocks)?;
    // Growth as observed, first block to last: a warm-up's fitted line misses its step.
    let (start, end) = (blocks[0].1, blocks[blocks.len() - 1].1);
    let growth = end - start;
    let matters = growth.abs() >= MIN_MEMORY_GROWTH * start.abs() || limit.is_some_and(|l| growth.abs() >= 0.01 * l);
    // The last third, but at least enough points to judge (a short phase's last half).
    let tail_n = (pts.len() / 3).max(MIN_POINTS).min(pts.len());
    let tail = trend_of_blocks(&pts[pts.len() - tail_n..]);
    let tail_slope = tail.map_or(all.slope, |t| t.slope);
    let still_growing = tail.is_none_or(|t| t.significant() && t.slope > 0.0 && t.slope >= STILL_GROWING * all.slope);
    let verdict = match (all.significant() && matters, growth > 0.0) {
        (false, _) => MemoryVerdict::Stable,
        (true, false) => MemoryVerdict::Shrinking,
        (true, true) if still_growing => MemoryVerdict::LeakSuspected,
        (true, true) => MemoryVerdict::WarmsUp,
    };
    let last = pts.last().map_or(end, |p| p.1);
    let reaches_limit_h = match (verdict, limit) {
        (MemoryVerdict::LeakSuspected, Some(l)) if tail_slope > 0.0 => {
            Some(r3(((l - last) / tail_slope / 3600.0).max(0.0)))
        }
        _ => None,
    };
    Some(MemoryDrift {
        series: series.to_string(),
        slope_mib_per_h: r3(all.slope * 3600.0 / MIB),
        last_third_mib_per_h: r3(tail_slope * 3600.0 / MIB),
        start_bytes: start,
        end_bytes: end,
        growth_pct: (start > 0.0).then(|| r3(growth / start * 100.0)),
        p_value: all.p_value,
        significant: all.significant(),
        verdict,
        limit_bytes: limit,
        reaches_limit_h,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::sec;
    use crate::analysis::trend::tests::ar1;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn secs_with(lat: impl Fn(usize) -> u64, n: usize) -> Vec<Sec> {
        (0..n).map(|i| sec(10.0 + i as f64, "p", 50, lat(i), &[])).collect()
    }

    #[test]
    fn latency_growing_a_millisecond_a_second_degrades_and_flat_is_stable() {
        let up = secs_with(|i| 5 + i as u64, 60);
        let d = phase_drift(&up.iter().collect::<Vec<_>>(), &Samples::new(), None).unwrap();
        assert_eq!(d.verdict, DriftVerdict::Degrading);
        assert_eq!(d.latency.verdict, DriftVerdict::Degrading);
        assert!((d.latency.slope_ms_per_h - 3600.0).abs() < 1.0, "{:?}", d.latency);
        assert_eq!((d.points, d.point_s), (60, 1.0));
        let flat = secs_with(|i| 20 + (i % 3) as u64, 60);
        let d = phase_drift(&flat.iter().collect::<Vec<_>>(), &Samples::new(), None).unwrap();
        assert_eq!(d.verdict, DriftVerdict::Stable, "{d:?}");
        assert_eq!(d.error_rate.verdict, DriftVerdict::Stable);
        // Long phases are bucketed to at most 240 points.
        let long = secs_with(|_| 20, 1000);
        let d = phase_drift(&long.iter().collect::<Vec<_>>(), &Samples::new(), None).unwrap();
        assert_eq!((d.points, d.point_s), (200, 5.0));
    }

    #[test]
    fn a_tiny_significant_rise_is_not_degrading() {
        // 20.0 → 20.059 ms: significant, but 0.3% of the start.
        let secs: Vec<Sec> = (0..60)
            .map(|i| {
                let mut s = sec(i as f64, "p", 1, 0, &[]);
                let mut h = crate::recorder::new_hist();
                h.record(20_000 + i as u64).unwrap();
                s.latency = crate::analysis::packed::Packed::of(&h);
                s
            })
            .collect();
        let d = phase_drift(&secs.iter().collect::<Vec<_>>(), &Samples::new(), None).unwrap();
        assert!(d.latency.significant);
        assert_eq!(d.latency.verdict, DriftVerdict::Stable);
    }

    #[test]
    fn memory_leaks_warm_ups_and_projection() {
        let mib = MIB;
        let linear: Vec<(f64, f64)> = (0..60).map(|i| (i as f64, 100.0 * mib + i as f64 * mib)).collect();
        let m = memory_drift("app.rss_bytes", &linear, Some(1024.0 * mib)).unwrap();
        assert_eq!(m.verdict, MemoryVerdict::LeakSuspected);
        assert!((m.slope_mib_per_h - 3600.0).abs() < 1.0);
        // 1024 − 159 MiB left at 1 MiB/s: 865 s.
        assert!((m.reaches_limit_h.unwrap() - 865.0 / 3600.0).abs() < 0.01, "{m:?}");
        let plateau: Vec<(f64, f64)> = (0..60)
            .map(|i| (i as f64, 100.0 * mib + (i.min(20)) as f64 * mib))
            .collect();
        let m = memory_drift("app.rss_bytes", &plateau, Some(1024.0 * mib)).unwrap();
        assert_eq!(m.verdict, MemoryVerdict::WarmsUp, "{m:?}");
        assert_eq!(m.reaches_limit_h, None);
        let mut rng = SmallRng::seed_from_u64(3);
        let flat = ar1(&mut rng, 60, 100.0 * mib, 0.5 * mib, 0.5);
        assert_eq!(
            memory_drift("app.rss_bytes", &flat, None).unwrap().verdict,
            MemoryVerdict::Stable
        );
    }

    #[test]
    fn limits_come_from_the_same_monitor() {
        let mut s = Samples::new();
        s.insert("host.mem_total_bytes".into(), vec![(0.0, 8e9)]);
        s.insert("app.container_memory_limit_bytes".into(), vec![(0.0, 2e9)]);
        assert_eq!(limit_of("host.mem_used_bytes", &s, Some(4e9)), Some(8e9));
        assert_eq!(limit_of("app.process_resident_memory_bytes", &s, Some(4e9)), Some(2e9));
        assert_eq!(limit_of("worker.rss_bytes", &s, Some(4e9)), Some(4e9));
        assert_eq!(limit_of("cache.used_memory_bytes", &s, Some(4e9)), None);
    }
}
