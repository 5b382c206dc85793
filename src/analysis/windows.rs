//! A phase in time windows: the insurance seed's soak table (0-30 min, 30-60 min, 1-2 h …:
//! requests, average, p95, error rate, memory growth). Built from the findings' joint timeline
//! (one packed merged histogram per client second and the server samples), so a window's p95 comes
//! from its seconds' merged histograms, never from averaged percentiles.

use super::findings::{is_memory, Samples, Sec};
use super::summary::{latency, r3, rate, MemoryGrowth, Window};
use crate::recorder::new_growable;

/// A phase longer than this gets the seed's edges: 0-30 min, 30-60 min, then hourly.
const SOAK_S: f64 = 3600.0;
/// A shorter phase is cut into this many equal windows of whole seconds.
const EQUAL_WINDOWS: usize = 5;

/// Window edges, in seconds since the phase's start, for a phase of `duration_s`.
pub fn edges(duration_s: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::new();
    if duration_s <= 0.0 {
        return out;
    }
    if duration_s > SOAK_S {
        let mut start = 0.0;
        while start < duration_s {
            let len = if start < SOAK_S { 1800.0 } else { 3600.0 };
            out.push((start, (start + len).min(duration_s)));
            start += len;
        }
        return out;
    }
    // Whole seconds; the remainder (a phase's last, partial second, or what does not divide)
    // joins the last window, so a 60.2 s phase has five windows of 12 s, the last 12.2 s.
    let exact = duration_s / EQUAL_WINDOWS as f64;
    let len = if duration_s >= 2.0 * EQUAL_WINDOWS as f64 {
        exact.floor()
    } else {
        exact.ceil().max(1.0)
    };
    let mut start = 0.0;
    while start < duration_s - 1e-9 {
        if duration_s - start < 2.0 * len && !out.is_empty() || duration_s - start <= len {
            out.push((start, duration_s));
            break;
        }
        out.push((start, start + len));
        start += len;
    }
    out
}

/// The windows of the phase whose seconds are `secs` (time-sorted, that phase's only) starting
/// at `from` (seconds since the run start), with the growth of every memory series in `server`.
pub fn windows(secs: &[&Sec], from: f64, server: &Samples) -> Vec<Window> {
    let Some(last) = secs.last() else {
        return Vec::new();
    };
    let duration = last.t + last.dur - from;
    let memory: Vec<(&String, &Vec<(f64, f64)>)> = server.iter().filter(|(k, _)| is_memory(k)).collect();
    let mut rest = secs;
    edges(duration)
        .into_iter()
        .map(|(start, end)| {
            // A second belongs to the window its start falls in.
            let n = rest.partition_point(|s| s.t - from < end - 1e-6);
            let (inside, after) = rest.split_at(n);
            rest = after;
            let mut hist = new_growable();
            let (mut requests, mut errors) = (0, 0);
            for s in inside {
                s.latency.add_to(&mut hist);
                requests += s.requests;
                errors += s.errors;
            }
            let lat = latency(&hist);
            Window {
                start_s: r3(start),
                end_s: r3(end),
                requests,
                errors,
                avg_ms: lat.as_ref().map(|l| l.avg),
                p95_ms: lat.as_ref().map(|l| l.p95),
                error_rate: rate(errors, requests),
                memory: memory
                    .iter()
                    .filter_map(|(k, pts)| growth(k, pts, from, from + end))
                    .collect(),
            }
        })
        .collect()
}

/// A series' growth from its first sample at or after `from` to its last before `until`.
fn growth(key: &str, pts: &[(f64, f64)], from: f64, until: f64) -> Option<MemoryGrowth> {
    let first = pts.iter().find(|p| p.0 >= from)?;
    let last = pts.iter().take_while(|p| p.0 < until).last().filter(|p| p.0 >= from)?;
    let bytes = last.1 - first.1;
    Some(MemoryGrowth {
        series: key.to_string(),
        bytes,
        pct: (first.1 > 0.0).then(|| r3(bytes / first.1 * 100.0)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::tests::sec;

    #[test]
    fn soak_edges_follow_the_seed_and_short_phases_get_equal_windows() {
        let h = 3600.0;
        assert_eq!(
            edges(4.0 * h),
            [
                (0.0, 1800.0),
                (1800.0, h),
                (h, 2.0 * h),
                (2.0 * h, 3.0 * h),
                (3.0 * h, 4.0 * h)
            ]
        );
        assert_eq!(edges(1.5 * h), [(0.0, 1800.0), (1800.0, h), (h, 1.5 * h)]);
        assert_eq!(
            edges(60.0),
            [(0.0, 12.0), (12.0, 24.0), (24.0, 36.0), (36.0, 48.0), (48.0, 60.0)]
        );
        assert_eq!(
            edges(60.2),
            [(0.0, 12.0), (12.0, 24.0), (24.0, 36.0), (36.0, 48.0), (48.0, 60.2)]
        );
        assert_eq!(edges(64.0).last(), Some(&(48.0, 64.0)));
        assert_eq!(edges(7.0), [(0.0, 2.0), (2.0, 4.0), (4.0, 7.0)]);
        assert_eq!(edges(0.5), [(0.0, 0.5)]);
        assert!(edges(0.0).is_empty());
    }

    #[test]
    fn windows_count_their_seconds_and_memory_growth_since_the_phase_start() {
        // 10 s starting at t=100: 20 requests a second, 5 ms, then 50 ms from the 6th second,
        // with one error per second in the last window.
        let secs: Vec<Sec> = (0..10)
            .map(|i| {
                let lat = if i < 6 { 5 } else { 50 };
                let kinds: &[(&str, u64)] = if i >= 8 { &[("status_503", 1)] } else { &[] };
                sec(100.0 + i as f64, "soak", 20, lat, kinds)
            })
            .collect();
        let refs: Vec<&Sec> = secs.iter().collect();
        let mut server = Samples::new();
        server.insert(
            "app.rss_bytes".into(),
            (0..12).map(|i| (99.5 + i as f64, 100.0 + 10.0 * i as f64)).collect(),
        );
        server.insert("host.cpu_percent".into(), vec![(100.5, 50.0)]);
        let w = windows(&refs, 100.0, &server);
        assert_eq!(w.len(), 5);
        assert_eq!((w[0].start_s, w[0].end_s, w[0].requests), (0.0, 2.0, 40));
        assert!((w[0].avg_ms.unwrap() - 5.0).abs() < 0.01, "{:?}", w[0]);
        assert!(w[3].p95_ms.unwrap() > 49.0, "{:?}", w[3]);
        assert_eq!(w[4].errors, 2);
        assert_eq!(w[4].error_rate, 0.05);
        assert_eq!(w[0].error_rate, 0.0);
        // RSS 110 at the phase's first sample (t=100.5), 130 at the first window's last (t=101.5).
        assert_eq!(w[0].memory.len(), 1, "only memory series");
        assert_eq!(w[0].memory[0].bytes, 10.0);
        assert_eq!(w[4].memory[0].bytes, 90.0);
        assert!((w[4].memory[0].pct.unwrap() - 81.818).abs() < 0.01);
    }
}
