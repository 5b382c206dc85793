//! `monitors.jsonl`: the server-side samples, one record per line, on the run's clock.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Series of one sample: name (with labels, as `name{label="v"}`) to value.
pub type Series = BTreeMap<String, f64>;

/// A line of `monitors.jsonl`: a sample, or the report of a failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MonitorRecord {
    /// Seconds since the run started.
    pub t: f64,
    pub monitor: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub series: Series,
    /// Set on the first failure of a streak (credentials never included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Reads `monitors.jsonl` text: records, and the lines that could not be read.
pub fn parse_records(text: &str) -> (Vec<MonitorRecord>, Vec<(usize, String)>) {
    let mut out = Vec::new();
    let mut bad = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<MonitorRecord>(line) {
            Ok(r) => out.push(r),
            Err(e) => bad.push((i + 1, e.to_string())),
        }
    }
    (out, bad)
}
