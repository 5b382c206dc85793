//! Reports: how results are shown. Knows run directories, summaries and intervals, never sockets.
//!
//! [`model`] computes what a report says once; each format renders that model: [`markdown`]
//! (with SVG files from [`charts`]/[`svg`]), [`html`] (self-contained), JSON (the model
//! serialized, `stampede.report/v1`) and [`junit`]. [`escape`] holds the only escaping
//! functions, used for every value that came from a plan or a target.

pub mod charts;
pub mod escape;
pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod series;
pub mod svg;
pub mod terminal;

use std::path::{Path, PathBuf};

pub use model::{build, Report, REPORT_SCHEMA};

use crate::analysis::{aggregate_into, summarize_aggs, PhaseAgg, Summary};
use crate::rundir::{for_each_interval, read_meta, RunDirError};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Json,
    Junit,
}

/// Sections that later analyses add (findings, capacity, server metrics) may exist only in the
/// run directory's `summary.json`; carry them over where the rebuilt summary has none, so a
/// report shows them whichever analysis wrote them.
fn merge_stored(rebuilt: &mut Summary, dir: &Path) {
    let Ok(text) = std::fs::read_to_string(dir.join("summary.json")) else {
        return;
    };
    let Ok(stored) = serde_json::from_str::<Summary>(&text) else {
        return;
    };
    if rebuilt.findings.is_empty() {
        rebuilt.findings = stored.findings;
    }
    if rebuilt.capacity.is_none() {
        rebuilt.capacity = stored.capacity;
    }
    for p in &mut rebuilt.phases {
        if p.server.is_empty() {
            if let Some(sp) = stored.phases.iter().find(|s| s.name == p.name) {
                p.server = sp.server.clone();
            }
        }
    }
}

/// Reads a run directory and builds its report (the directory alone is enough). The intervals
/// are streamed through the summary's aggregates and the chart timeline, one at a time, so a
/// long run never has to fit in memory.
pub fn load(dir: &Path) -> Result<Report, ReportError> {
    let meta = read_meta(dir)?;
    let order: Vec<String> = meta.phases.iter().map(|p| p.name.clone()).collect();
    let mut aggs: Vec<PhaseAgg> = order.iter().map(|n| PhaseAgg::new(n)).collect();
    let mut timeline = series::TimelineBuilder::new(meta.phases.iter().map(|p| p.planned_s).sum());
    let skipped = for_each_interval(dir, |iv| {
        aggregate_into(&mut aggs, &iv);
        timeline.add(&iv);
    })?;
    let mut summary = summarize_aggs(&meta, &aggs, &skipped);
    merge_stored(&mut summary, dir);
    let mut report = model::build_parts(&meta, timeline.finish(), &summary);
    report.server_series = server_series(dir);
    Ok(report)
}

/// The server series a reader looks at next to latency: saturation (busy workers, pool in
/// use, queue depth), CPU and load, cache hit ratio, connections. At most six, each thinned
/// to at most 600 points. An unreadable `monitors.jsonl` just means no chart.
fn server_series(dir: &Path) -> Vec<model::ServerSeries> {
    const WANTED: &[&str] = &[
        "busy",
        "in_use",
        "queue_depth",
        "cpu_percent",
        "load1",
        "hit_ratio",
        "connections",
    ];
    let Ok((records, _)) = crate::rundir::read_monitors(dir) else {
        return Vec::new();
    };
    let mut by_name: std::collections::BTreeMap<String, Vec<(f64, f64)>> = std::collections::BTreeMap::new();
    for r in &records {
        for (k, v) in &r.series {
            if v.is_finite() && WANTED.iter().any(|w| k.contains(w)) {
                by_name.entry(format!("{}.{k}", r.monitor)).or_default().push((r.t, *v));
            }
        }
    }
    by_name
        .into_iter()
        .filter(|(_, pts)| pts.len() >= 2)
        .take(6)
        .map(|(name, mut points)| {
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let step = points.len().div_ceil(600).max(1);
            let points = points.into_iter().step_by(step).collect();
            model::ServerSeries { name, points }
        })
        .collect()
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    std::fs::write(path, text).map_err(|source| ReportError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Renders a format that is a single text (HTML, JSON, JUnit, or Markdown without charts).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Markdown => markdown::render(report, &[], None),
        Format::Html => html::render(report, &charts::charts(report)),
        Format::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        Format::Junit => junit::render(report),
    }
}

/// Writes the Markdown report to `path` and its charts to `charts/` beside it; returns the
/// chart files.
pub fn write_markdown(report: &Report, path: &Path) -> Result<Vec<PathBuf>, ReportError> {
    let charts = charts::charts(report);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let charts_dir = dir.join("charts");
    let mut files = Vec::new();
    if !charts.is_empty() {
        std::fs::create_dir_all(&charts_dir).map_err(|source| ReportError::Io {
            path: charts_dir.display().to_string(),
            source,
        })?;
        for c in &charts {
            let f = charts_dir.join(format!("{}.svg", c.stem));
            write(&f, &c.svg)?;
            files.push(f);
        }
    }
    write(path, &markdown::render(report, &charts, Some("charts")))?;
    Ok(files)
}

/// Writes `report.md` (+ `charts/`) and `report.html` into the run directory.
pub fn write_run_reports(dir: &Path) -> Result<(PathBuf, PathBuf), ReportError> {
    let report = load(dir)?;
    let md = dir.join("report.md");
    write_markdown(&report, &md)?;
    let html_path = dir.join("report.html");
    write(&html_path, &render(&report, Format::Html))?;
    Ok((md, html_path))
}

/// Writes one format to `path` (Markdown with its charts beside it).
pub fn write_format(report: &Report, format: Format, path: &Path) -> Result<(), ReportError> {
    match format {
        Format::Markdown => write_markdown(report, path).map(|_| ()),
        f => write(path, &render(report, f)),
    }
}
