//! Reports: how results are shown. Knows run directories, summaries and intervals, never sockets.
//!
//! [`model`] computes what a report says once, from a run's [`crate::analysis::Analysis`];
//! [`document`] turns it into blocks (headings, lists, tables, charts) that [`markdown`] (with
//! SVG files from [`charts`]/[`svg`]) and [`html`] (self-contained) only render; JSON is the
//! model serialized (`stampede.report/v1`) and [`junit`] renders the model's threshold rows.
//! [`compare`] renders a comparison of two runs the same way (and [`plain`] as terminal text);
//! [`update`] adds a report's "Update" sections, one per later run. [`escape`] holds the only
//! escaping functions, used for every value that came from a plan or a target.

pub mod ab;
pub mod charts;
pub mod compare;
mod conclusion;
pub mod document;
pub mod escape;
pub mod generators;
pub mod hosts;
pub mod html;
pub mod junit;
pub mod lang;
pub mod long;
pub mod markdown;
pub mod model;
mod observe;
pub mod plain;
mod quantity;
pub mod sql;
pub mod svg;
pub mod terminal;
pub mod update;
pub mod ws;

use std::path::{Path, PathBuf};

pub use model::{build, Report, REPORT_SCHEMA};

use crate::analysis::analyze_dir;
use crate::rundir::RunDirError;

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
    /// The JSON report could not be serialized (never written as an empty file instead).
    #[error("the report cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Json,
    Junit,
}

/// Reads a run directory and builds its report (the directory alone is enough), through the
/// same one pass as the summary: the report says what `stampede summary` says.
pub fn load(dir: &Path) -> Result<Report, ReportError> {
    Ok(build(analyze_dir(dir)?))
}

/// Writes a report file atomically: a full disk leaves the previous file (or none), never a
/// truncated report or chart.
fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    crate::rundir::write_atomic(path, text.as_bytes()).map_err(|e| match e {
        RunDirError::Io { path, source } => ReportError::Io { path, source },
        other => ReportError::RunDir(other),
    })
}

/// Renders a format that is a single text (HTML, JSON, JUnit, or Markdown without charts).
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    Ok(match format {
        Format::Markdown => markdown::render(report, &[], None),
        Format::Html => html::render(report, &charts::charts(report)),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Junit => junit::render(report),
    })
}

/// The compact Markdown a CI job shows (`$GITHUB_STEP_SUMMARY`): verdict, SLA table, top
/// findings, rendered by the Markdown renderer from the report's own blocks.
pub fn ci_markdown(report: &Report) -> String {
    markdown::render_document(&document::ci_summary(report), None)
}

/// Appends [`ci_markdown`] to the file `$GITHUB_STEP_SUMMARY` names, when it is set (GitHub
/// Actions sets it for every step). The job's summary is an extra: a failure to write it is a
/// warning, never the run's exit code.
pub fn append_step_summary(report: &Report) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return;
    };
    use std::io::Write as _;
    let text = ci_markdown(report);
    let written = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{text}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "warning: the job summary was not appended to {} ($GITHUB_STEP_SUMMARY): {e}",
            std::path::Path::new(&path).display()
        );
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
    write_reports_of(dir, analyze_dir(dir)?)
}

/// [`write_run_reports`] from the analysis the run just made of its directory (the runner's),
/// so the directory is not read and analysed a second time.
pub fn write_reports_of(dir: &Path, analysis: crate::analysis::Analysis) -> Result<(PathBuf, PathBuf), ReportError> {
    write_report_files(dir, &build(analysis))
}

/// Writes a built report (e.g. with update sections) as the run directory's `report.md` (+
/// `charts/`) and `report.html`.
pub fn write_report_files(dir: &Path, report: &Report) -> Result<(PathBuf, PathBuf), ReportError> {
    let md = dir.join("report.md");
    write_markdown(report, &md)?;
    let html_path = dir.join("report.html");
    write(&html_path, &render(report, Format::Html)?)?;
    Ok((md, html_path))
}

/// Writes one format to `path` (Markdown with its charts beside it).
pub fn write_format(report: &Report, format: Format, path: &Path) -> Result<(), ReportError> {
    match format {
        Format::Markdown => write_markdown(report, path).map(|_| ()),
        f => write(path, &render(report, f)?),
    }
}
