//! "Update" sections: `stampede report A --update B --update C` is A's report followed by one
//! section per later run, as the voice seed's report grows after each change to the system.
//! Each section is titled with the run's note and time and holds the before/after tables of
//! the comparison with the run before it in the chain (A → B, then B → C, as the seed compares
//! "VPS 2000" with "VPS 4000"), and what changed in the findings: which disappeared, which are
//! new, which remain.

use serde::Serialize;

use super::compare::{phase_blocks, result_blocks, short_time, unmatched_blocks};
use super::document::{bullets, heading, own, text, title, Block, Text};
use crate::analysis::compare::{compare, Comparison};
use crate::analysis::Analysis;

/// One later run, compared with the run before it.
#[derive(Debug, Clone, Serialize)]
pub struct Update {
    /// The later run's note (`stampede run --note`), if it has one.
    pub note: Option<String>,
    pub started_at: String,
    /// The run before → this run.
    pub comparison: Comparison,
    /// Finding titles: present before, gone now.
    pub findings_resolved: Vec<String>,
    /// Present now, not before.
    pub findings_new: Vec<String>,
    /// In both.
    pub findings_remaining: Vec<String>,
    /// The later run's capacity answer in words (its search's, or its estimate), if it has one.
    pub capacity: Option<String>,
    /// SLO capacity of the run before and of this run, where each has one.
    pub slo_capacity_before: Option<f64>,
    pub slo_capacity_after: Option<f64>,
    /// The unit of both, and whether each is only a lower bound (the SLO never broke).
    pub capacity_unit: String,
    pub at_least: (bool, bool),
}

/// A run's finding titles, each once, in the summary's order.
fn titles(a: &Analysis) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for f in &a.summary.findings {
        if !t.contains(&f.title) {
            t.push(f.title.clone());
        }
    }
    t
}

/// The updates of a chain of runs: `runs[0]` is the report's own run, each later one an update
/// compared with the one before it.
pub fn updates(runs: &[&Analysis], tolerance_pct: f64) -> Vec<Update> {
    runs.windows(2)
        .map(|w| {
            let (resolved, new, remaining) = findings_change(&titles(w[0]), &titles(w[1]));
            let cap = |a: &Analysis| a.summary.capacity_answer().map(|(c, _)| c.clone());
            let (before, after) = (cap(w[0]), cap(w[1]));
            Update {
                note: w[1].meta.note.clone(),
                started_at: w[1].meta.started_at.clone(),
                comparison: compare(w[0], w[1], tolerance_pct),
                findings_resolved: resolved,
                findings_new: new,
                findings_remaining: remaining,
                slo_capacity_before: before.as_ref().and_then(|c| c.slo_capacity),
                slo_capacity_after: after.as_ref().and_then(|c| c.slo_capacity),
                capacity_unit: after.as_ref().map(|c| c.unit.clone()).unwrap_or_default(),
                at_least: (
                    before.as_ref().is_some_and(|c| c.slo_capacity_is_lower_bound),
                    after.as_ref().is_some_and(|c| c.slo_capacity_is_lower_bound),
                ),
                capacity: after.map(|c| c.statement),
            }
        })
        .collect()
}

/// Finding titles gone (in `before` only), new (in `after` only) and remaining (in both, in
/// `after`'s order).
fn findings_change(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let only = |xs: &[String], ys: &[String]| xs.iter().filter(|x| !ys.contains(x)).cloned().collect();
    let both = after.iter().filter(|t| before.contains(t)).cloned().collect();
    (only(before, after), only(after, before), both)
}

/// The section of update `n` (from 1).
pub fn blocks(n: usize, u: &Update) -> Vec<Block> {
    let mut head: Text = vec![own(format!("Update {n}: "))];
    match &u.note {
        Some(note) => head.push(text(note)),
        None => head.push(own("run without a note")),
    }
    head.extend([own(" ("), text(short_time(&u.started_at)), own(")")]);
    let mut out = vec![heading(2, head)];
    out.extend(result_blocks(&u.comparison));
    out.extend(phase_blocks(&u.comparison, 3));
    out.extend(unmatched_blocks(&u.comparison, 3));
    out.push(title(3, "Findings"));
    let list = |label: &str, items: &[String]| -> Option<Text> {
        (!items.is_empty()).then(|| {
            let mut t = vec![own(format!("{label}: "))];
            for (i, f) in items.iter().enumerate() {
                if i > 0 {
                    t.push(own("; "));
                }
                t.push(text(f));
            }
            t
        })
    };
    let lines: Vec<Text> = [
        list("No longer found", &u.findings_resolved),
        list("New", &u.findings_new),
        list("Still found", &u.findings_remaining),
    ]
    .into_iter()
    .flatten()
    .collect();
    if lines.is_empty() {
        out.push(Block::Paragraph(vec![own("No findings before or after.")]));
    } else {
        out.push(bullets(lines));
    }
    if let Some(statement) = &u.capacity {
        out.push(title(3, "Capacity"));
        let mut lines = vec![vec![text(statement)]];
        if let (Some(a), Some(b)) = (u.slo_capacity_before, u.slo_capacity_after) {
            let bound = |lower: bool| if lower { "at least " } else { "" };
            // A lower bound on either side leaves the change a bound too.
            let change = match u.at_least {
                (false, false) if a > 0.0 => format!(" ({:+.0}%)", (b - a) / a * 100.0),
                (false, true) if a > 0.0 => format!(" (at least {:+.0}%)", (b - a) / a * 100.0),
                _ => String::new(),
            };
            lines.push(vec![own(format!(
                "SLO capacity {}{a} → {}{b} {}{change}",
                bound(u.at_least.0),
                bound(u.at_least.1),
                u.capacity_unit
            ))]);
        }
        out.push(bullets(lines));
    }
    vec![Block::Section {
        class: "update",
        blocks: out,
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_are_gone_new_or_remaining_by_title() {
        let v = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let before = v(&["Worker pool `php-fpm` saturated", "Errors from configuration, not load"]);
        let after = v(&["Errors from configuration, not load", "CPU saturated"]);
        let (gone, new, remaining) = findings_change(&before, &after);
        assert_eq!(gone, v(&["Worker pool `php-fpm` saturated"]));
        assert_eq!(new, v(&["CPU saturated"]));
        assert_eq!(remaining, v(&["Errors from configuration, not load"]));
        assert_eq!(findings_change(&[], &[]), (vec![], vec![], vec![]));
    }
}
