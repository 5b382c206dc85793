//! The report's charts, built from the model: latency over time with VUs, throughput and errors
//! over time, and one latency distribution (percentile curve) per phase with a line per endpoint.

use super::model::Report;
use super::svg::{render, Axis, Chart, Line, Ticks};

/// A rendered chart: a file stem (for Markdown's `charts/` directory), its title and the SVG.
#[derive(Debug, Clone)]
pub struct RenderedChart {
    pub stem: String,
    pub title: String,
    pub svg: String,
}

fn markers(r: &Report) -> Vec<(f64, String)> {
    r.timeline.phase_starts.iter().map(|(p, t)| (*t, p.clone())).collect()
}

fn opt(v: Option<f64>) -> f64 {
    v.unwrap_or(f64::NAN)
}

/// x = −log10(1 − q), so p90, p99 and p99.9 are evenly spaced.
fn nines(q: f64) -> f64 {
    -(1.0 - q).max(1e-6).log10()
}

pub fn charts(r: &Report) -> Vec<RenderedChart> {
    let mut out = Vec::new();
    let lang = r.lang;
    if r.timeline.points.is_empty() {
        return out;
    }
    let pts = &r.timeline.points;
    // One time axis for every time chart: from the start to the last point of any of them.
    let end = pts
        .iter()
        .map(|p| p.t + r.timeline.bucket_s)
        .chain(r.server_series.iter().flat_map(|s| s.points.iter().map(|p| p.0)))
        .fold(0.0, f64::max);
    let span = Some((0.0, end));
    let series = |name: &str, f: &dyn Fn(&crate::analysis::series::TimePoint) -> f64, axis: Axis, dashed: bool| Line {
        name: name.into(),
        points: pts.iter().map(|p| (p.t, f(p))).collect(),
        axis,
        dashed,
    };
    let latency = Chart {
        title: "Latency over time (p50 / p95 / p99) with VUs".into(),
        x_label: "time since start".into(),
        y_label: "latency (ms)".into(),
        y2_label: Some("VUs".into()),
        x_ticks: Ticks::Seconds,
        y_ticks: Ticks::Number(""),
        y2_ticks: Ticks::Number(""),
        lines: vec![
            series("p50", &|p| opt(p.p50_ms), Axis::Left, false),
            series("p95", &|p| opt(p.p95_ms), Axis::Left, false),
            series("p99", &|p| opt(p.p99_ms), Axis::Left, false),
            series("VUs", &|p| p.vus as f64, Axis::Right, true),
        ],
        markers: markers(r),
        x_range: span,
    };
    out.push(RenderedChart {
        stem: "latency".into(),
        title: lang.own(&latency.title).into_owned(),
        svg: render(&lang.chart(&latency)),
    });
    let throughput = Chart {
        title: "Throughput and errors over time".into(),
        x_label: "time since start".into(),
        y_label: "requests/s".into(),
        y2_label: Some("errors/s".into()),
        x_ticks: Ticks::Seconds,
        y_ticks: Ticks::Number(""),
        y2_ticks: Ticks::Number(""),
        lines: vec![
            series("requests/s", &|p| p.rps, Axis::Left, false),
            series("errors/s", &|p| p.errors_per_s, Axis::Right, true),
        ],
        markers: markers(r),
        x_range: span,
    };
    out.push(RenderedChart {
        stem: "throughput".into(),
        title: lang.own(&throughput.title).into_owned(),
        svg: render(&lang.chart(&throughput)),
    });
    if pts.iter().any(|p| p.ws_open > 0 || p.ws_p95_ms.is_some()) {
        let ws = Chart {
            title: "WebSocket: open connections and message latency (p95)".into(),
            x_label: "time since start".into(),
            y_label: "open connections".into(),
            y2_label: Some("message latency p95 (ms)".into()),
            x_ticks: Ticks::Seconds,
            y_ticks: Ticks::Number(""),
            y2_ticks: Ticks::Number(""),
            lines: vec![
                series("open connections", &|p| p.ws_open as f64, Axis::Left, false),
                series("message p95", &|p| opt(p.ws_p95_ms), Axis::Right, true),
            ],
            markers: markers(r),
            x_range: span,
        };
        out.push(RenderedChart {
            stem: "websocket".into(),
            title: lang.own(&ws.title).into_owned(),
            svg: render(&lang.chart(&ws)),
        });
    }
    // Server series, each with the p95 latency on the right axis, on the same time axis and
    // phase markers: what the server did while latency moved.
    for (i, sv) in r.server_series.iter().enumerate() {
        let c = Chart {
            title: format!("Server: {} (with p95 latency)", sv.name),
            x_label: "time since start".into(),
            y_label: sv.name.clone(),
            y2_label: Some("p95 latency (ms)".into()),
            x_ticks: Ticks::Seconds,
            y_ticks: Ticks::Number(""),
            y2_ticks: Ticks::Number(""),
            lines: vec![
                Line {
                    name: sv.name.clone(),
                    points: sv.points.clone(),
                    axis: Axis::Left,
                    dashed: false,
                },
                series("p95", &|p| opt(p.p95_ms), Axis::Right, true),
            ],
            markers: markers(r),
            x_range: span,
        };
        out.push(RenderedChart {
            stem: format!("server-{}-{}", i + 1, super::escape::file_name(&sv.name)),
            title: lang.own(&c.title).into_owned(),
            svg: render(&lang.chart(&c)),
        });
    }
    if let Some((cap, _)) = r.summary.capacity_answer() {
        out.extend(capacity_charts(cap, r.lang));
    }
    for (i, p) in r.summary.phases.iter().enumerate() {
        let lines: Vec<Line> = p
            .steps
            .iter()
            .filter_map(|s| {
                let l = s.latency_ms.as_ref()?;
                Some(Line {
                    name: s.name.clone(),
                    points: [
                        (0.0, l.min),
                        (0.5, l.p50),
                        (0.9, l.p90),
                        (0.95, l.p95),
                        (0.99, l.p99),
                        (0.999, l.p99_9),
                    ]
                    .iter()
                    .map(|(q, v)| (nines(*q), *v))
                    .collect(),
                    axis: Axis::Left,
                    dashed: false,
                })
            })
            .collect();
        if lines.is_empty() {
            continue;
        }
        let c = Chart {
            title: format!("Latency distribution per endpoint: {}", p.name),
            x_label: "percentile".into(),
            y_label: "latency (ms)".into(),
            y2_label: None,
            x_ticks: Ticks::Nines,
            y_ticks: Ticks::Number(""),
            y2_ticks: Ticks::Number(""),
            lines,
            markers: Vec::new(),
            x_range: None,
        };
        out.push(RenderedChart {
            // Numbered, so two phases whose names differ only in punctuation keep their files apart.
            stem: format!("distribution-{}-{}", i + 1, super::escape::file_name(&p.name)),
            title: lang.own(&c.title).into_owned(),
            svg: render(&lang.chart(&c)),
        });
    }
    out
}

/// The capacity search's curves: throughput and latency against the load it offered.
fn capacity_charts(cap: &crate::analysis::Capacity, lang: super::lang::Lang) -> Vec<RenderedChart> {
    let mut steps: Vec<&crate::analysis::CapacityStep> = cap.steps.iter().collect();
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    if steps.len() < 2 {
        return Vec::new();
    }
    let load = if cap.model == stampede_rundir::LoadModel::Open {
        "offered load (arrivals/s)"
    } else {
        "load (VUs)"
    };
    let line = |name: &str, f: &dyn Fn(&crate::analysis::CapacityStep) -> f64, dashed: bool| Line {
        name: name.into(),
        points: steps.iter().map(|s| (s.load, f(s))).collect(),
        axis: Axis::Left,
        dashed,
    };
    let throughput = Chart {
        title: "Capacity: throughput vs load".into(),
        x_label: load.into(),
        y_label: "requests/s".into(),
        y2_label: None,
        x_ticks: Ticks::Number(""),
        y_ticks: Ticks::Number(""),
        y2_ticks: Ticks::Number(""),
        lines: vec![line("throughput", &|s| s.throughput_rps, false)],
        markers: Vec::new(),
        x_range: None,
    };
    let latency = Chart {
        title: "Capacity: latency vs load".into(),
        x_label: load.into(),
        y_label: "latency (ms)".into(),
        y2_label: None,
        x_ticks: Ticks::Number(""),
        y_ticks: Ticks::Number(""),
        y2_ticks: Ticks::Number(""),
        lines: vec![
            line("p50", &|s| s.p50_ms, false),
            line("p95", &|s| s.p95_ms, false),
            line("p99", &|s| s.p99_ms, true),
        ],
        markers: Vec::new(),
        x_range: None,
    };
    vec![
        RenderedChart {
            stem: "capacity-throughput".into(),
            title: lang.own(&throughput.title).into_owned(),
            svg: render(&lang.chart(&throughput)),
        },
        RenderedChart {
            stem: "capacity-latency".into(),
            title: lang.own(&latency.title).into_owned(),
            svg: render(&lang.chart(&latency)),
        },
    ]
}
