//! The report's "Stability over time" section, shaped like the insurance seed's sustained load
//! test: per phase, the windows table (time period, requests, average, p95, error rate, memory
//! growth) and the drift judgement in words ("No memory leaks detected", "gradual increase is
//! warm-up").

use super::document::{bullets, heading, own, strong, table, text, title, Block, Text};
use super::terminal::{count, ms, pct};
use crate::analysis::{DriftVerdict, LatencyDrift, MemoryDrift, MemoryVerdict, PhaseSummary, Summary, Window};

/// Memory series shown as columns of the windows table; the rest are in the summary.
const MEMORY_COLUMNS: usize = 3;
/// Shorter phases keep their windows in the summary only: a table of 1 s windows says nothing.
const MIN_PHASE_S: f64 = 10.0;

/// No blocks when no phase is long enough for windows.
pub fn blocks(s: &Summary) -> Vec<Block> {
    let mut out = Vec::new();
    for p in s
        .phases
        .iter()
        .filter(|p| p.windows.len() > 1 && p.duration_s >= MIN_PHASE_S)
    {
        if out.is_empty() {
            out.push(title(2, "Stability over time"));
        }
        out.push(heading(3, vec![text(&p.name)]));
        out.push(windows_table(p));
        if let Some(items) = judgement(p) {
            out.push(bullets(items));
        }
    }
    out
}

/// The "Load generator" section: stampede's own CPU, memory, timer lateness, sockets and
/// dropped arrivals, and whether it was the limit.
pub fn generator_blocks(s: &Summary) -> Vec<Block> {
    let Some(g) = &s.generator else {
        return Vec::new();
    };
    let opt = |v: Option<f64>, f: &dyn Fn(f64) -> String| v.map_or("-".to_string(), f);
    let mut items: Vec<Text> = vec![
        vec![
            strong("CPU"),
            own(format!(
                ": up to {} of {} core(s)",
                opt(g.cpu_percent_max, &|c| format!("{c:.0}%")),
                opt(g.cores, &|c| format!("{c:.0}"))
            )),
        ],
        vec![
            strong("Memory"),
            own(format!(
                ": up to {} resident",
                opt(g.rss_max_bytes, &|b| format!("{:.0} MiB", b / (1024.0 * 1024.0)))
            )),
        ],
        vec![
            strong("Timer lateness"),
            own(format!(
                ": p99 {}, max {} (how late arrivals and iterations could start)",
                opt(g.late_ms_p99, &ms),
                opt(g.late_ms_max, &ms)
            )),
        ],
        vec![
            strong("Open sockets"),
            own(format!(
                ": up to {}; dropped arrivals: {}",
                opt(g.open_sockets_max, &|n| format!("{n:.0}")),
                count(g.dropped_arrivals)
            )),
        ],
    ];
    items.push(if g.limited {
        vec![
            strong("⚠️ The generator was the limit"),
            own(": "),
            own(g.reasons.join("; ")),
        ]
    } else {
        vec![own("The generator kept up: the latency measured is the system's.")]
    });
    vec![title(2, "Load generator"), bullets(items)]
}

fn windows_table(p: &PhaseSummary) -> Block {
    let span = p.windows.last().map_or(0.0, |w| w.end_s);
    let memory: Vec<&str> = p
        .windows
        .iter()
        .flat_map(|w| w.memory.iter().map(|m| m.series.as_str()))
        .fold(Vec::new(), |mut v, s| {
            if !v.contains(&s) && v.len() < MEMORY_COLUMNS {
                v.push(s);
            }
            v
        });
    let heads: Vec<String> = ["Time period", "Requests", "Avg", "p95", "Error rate"]
        .iter()
        .map(|s| s.to_string())
        .chain(memory.iter().map(|m| format!("{m} growth")))
        .collect();
    let head: Vec<&str> = heads.iter().map(String::as_str).collect();
    let rows = p
        .windows
        .iter()
        .map(|w| {
            let mut row: Vec<Text> = vec![
                vec![own(period(w, span))],
                vec![own(count(w.requests))],
                vec![own(w.avg_ms.map_or("-".into(), ms))],
                vec![own(w.p95_ms.map_or("-".into(), ms))],
                vec![own(pct(w.error_rate))],
            ];
            for m in &memory {
                let g = w.memory.iter().find(|g| g.series == *m);
                row.push(vec![own(g.map_or("-".into(), |g| growth(g.bytes, g.pct)))]);
            }
            row
        })
        .collect();
    table(&head, 1, rows)
}

/// "0-30 min", "1-2 h", "12-24 s": the unit follows the phase's length, as the seed writes it.
fn period(w: &Window, span: f64) -> String {
    let (div, unit) = if span > 3600.0 && w.start_s >= 3600.0 {
        (3600.0, "h")
    } else if span >= 600.0 {
        (60.0, "min")
    } else {
        (1.0, "s")
    };
    let f = |x: f64| {
        let v = x / div;
        if (v - v.round()).abs() < 0.05 {
            format!("{v:.0}")
        } else {
            format!("{v:.1}")
        }
    };
    format!("{}-{} {unit}", f(w.start_s), f(w.end_s))
}

fn growth(bytes: f64, pct: Option<f64>) -> String {
    let mib = bytes / (1024.0 * 1024.0);
    match pct {
        Some(p) => format!("{p:+.0}% ({mib:+.1} MiB)"),
        None => format!("{mib:+.1} MiB"),
    }
}

fn judgement(p: &PhaseSummary) -> Option<Vec<Text>> {
    let d = p.drift.as_ref()?;
    let mut items = vec![vec![
        strong("Drift"),
        own(format!(
            ": {} (Mann-Kendall trend test over {} points of {:.0} s, corrected for autocorrelation; α = {})",
            d.verdict.as_str(),
            d.points,
            d.point_s,
            d.alpha
        )),
    ]];
    for (q, l) in [("p50", &d.latency), ("p95", &d.latency_p95)] {
        items.push(vec![strong(format!("Latency {q}")), own(latency(l))]);
    }
    let e = &d.error_rate;
    items.push(vec![
        strong("Error rate"),
        own(format!(
            ": {} ({} → {}, p = {})",
            e.verdict.as_str(),
            pct(e.start),
            pct(e.end),
            p_value(e.p_value)
        )),
    ]);
    for m in &d.memory {
        items.push(vec![strong("Memory "), text(&m.series), own(memory(m))]);
    }
    if !d.memory.is_empty() && d.memory.iter().all(|m| m.verdict != MemoryVerdict::LeakSuspected) {
        let warm = d.memory.iter().any(|m| m.verdict == MemoryVerdict::WarmsUp);
        items.push(vec![own(if warm {
            "No memory leaks detected: the growth levelled off (caches, pools warming up)"
        } else {
            "No memory leaks detected"
        })]);
    }
    Some(items)
}

fn latency(l: &LatencyDrift) -> String {
    let word = match l.verdict {
        DriftVerdict::Stable if l.significant => "stable (a significant trend, too small to matter)",
        v => v.as_str(),
    };
    format!(
        ": {word}: {} → {} ({:+.1}%, {:+.1} ms/h, p = {})",
        ms(l.start_ms),
        ms(l.end_ms),
        l.change_pct,
        l.slope_ms_per_h,
        p_value(l.p_value)
    )
}

fn memory(m: &MemoryDrift) -> String {
    let mut s = format!(
        ": {}: {} ({:+.1} MiB/h; last third {:+.1} MiB/h; p = {})",
        m.verdict.as_str().replace('_', " "),
        growth(m.end_bytes - m.start_bytes, m.growth_pct),
        m.slope_mib_per_h,
        m.last_third_mib_per_h,
        p_value(m.p_value)
    );
    if let (Some(l), Some(h)) = (m.limit_bytes, m.reaches_limit_h) {
        s.push_str(&format!(
            "; reaches its limit of {:.0} MiB in about {:.1} h",
            l / (1024.0 * 1024.0),
            h
        ));
    }
    s
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_read_like_the_seed() {
        let w = |a: f64, b: f64| Window {
            start_s: a,
            end_s: b,
            requests: 0,
            errors: 0,
            avg_ms: None,
            p95_ms: None,
            error_rate: 0.0,
            memory: Vec::new(),
        };
        let soak = 4.0 * 3600.0;
        assert_eq!(period(&w(0.0, 1800.0), soak), "0-30 min");
        assert_eq!(period(&w(1800.0, 3600.0), soak), "30-60 min");
        assert_eq!(period(&w(3600.0, 7200.0), soak), "1-2 h");
        assert_eq!(period(&w(12.0, 24.0), 60.0), "12-24 s");
        assert_eq!(growth(5.0 * 1048576.0, Some(5.0)), "+5% (+5.0 MiB)");
    }
}
