//! `explain.json`: what PostgreSQL's EXPLAIN said about the statements of `explain: true` SQL
//! steps, at the start of the run and again at its end (plans change with data).

use std::path::Path;

use serde::{Deserialize, Serialize};

/// One statement's plan, summarized, with EXPLAIN's JSON whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExplainRecord {
    pub step: String,
    pub statement: String,
    /// The plan's top node (`Index Scan`, `Seq Scan`, `Hash Join` …).
    pub top: String,
    /// Some node reads an index (Index Scan, Index Only Scan, Bitmap Index Scan).
    pub index_used: bool,
    /// Tables some node reads by a sequential scan.
    pub seq_scan_tables: Vec<String>,
    /// Those of them with at least [`LARGE_TABLE`] rows (PostgreSQL's estimate): a sequential
    /// scan of a small table is often faster than an index, and no sign of a missing one.
    #[serde(default)]
    pub large_seq_scans: Vec<String>,
    /// The indexes the plan reads.
    #[serde(default)]
    pub indexes: Vec<String>,
    pub total_cost: f64,
    pub plan: serde_json::Value,
}

/// Rows from which a table read by a sequential scan counts as large.
pub const LARGE_TABLE: f64 = 1000.0;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExplainFile {
    pub at_start: Vec<ExplainRecord>,
    /// Empty until the run ends.
    #[serde(default)]
    pub at_end: Vec<ExplainRecord>,
}

/// `explain.json`, when the run has one.
pub fn read_explain(dir: &Path) -> Option<ExplainFile> {
    let text = std::fs::read_to_string(dir.join("explain.json")).ok()?;
    serde_json::from_str(&text).ok()
}
