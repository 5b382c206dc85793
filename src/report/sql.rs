//! The report's database section, shaped like the insurance seed's "Database Performance":
//! each SQL statement × its average latency in each phase (one column per phase, so one per
//! concurrency level) × whether it uses an index; a statement that scans a large table
//! sequentially, or whose p95 grew more than threefold from the lowest to the highest
//! concurrency and out of line with the others, is marked as needing optimization. When every
//! statement slowed alike the cause is shared (a pool, connections, the server's CPU), and the
//! section says so instead of blaming each one.

use super::document::{bullets, own, table, text, title, Block, Span, Text};
use super::terminal::ms;
use crate::analysis::{PhaseSummary, Summary};
use crate::rundir::summary::ExplainSummary;

/// p95 growth from the lowest to the highest concurrency that marks a statement.
const GROWTH: f64 = 3.0;
/// …when it is also this much above the statements' median growth (out of line).
const OUT_OF_LINE: f64 = 1.5;

/// No blocks when the run had no SQL step.
pub fn blocks(s: &Summary) -> Vec<Block> {
    let phases: Vec<&PhaseSummary> = s
        .phases
        .iter()
        .filter(|p| p.steps.iter().any(|st| st.sql.is_some()))
        .collect();
    if phases.is_empty() {
        return Vec::new();
    }
    let mut names: Vec<&str> = Vec::new();
    for p in &phases {
        for st in p.steps.iter().filter(|st| st.sql.is_some()) {
            if !names.contains(&st.name.as_str()) {
                names.push(&st.name);
            }
        }
    }
    let mut head = vec!["Statement".to_string()];
    head.extend(phases.iter().map(|p| format!("{} (avg, {} VUs)", p.name, p.vus_max)));
    head.extend(["p95 growth".to_string(), "Index".into(), "Status".into()]);
    let mut notes = Vec::new();
    let growth_of = |name: &str| -> Option<(f64, u64, u64)> {
        let mut p95s: Vec<(u64, f64)> = phases
            .iter()
            .filter_map(|p| {
                let st = p.steps.iter().find(|st| st.name == name)?;
                Some((p.vus_max, st.latency_ms.as_ref()?.p95))
            })
            .collect();
        p95s.sort_by_key(|(vus, _)| *vus);
        match (p95s.first(), p95s.last()) {
            (Some(lo), Some(hi)) if p95s.len() > 1 && lo.1 > 0.0 => Some((hi.1 / lo.1, lo.0, hi.0)),
            _ => None,
        }
    };
    let mut all: Vec<f64> = names.iter().filter_map(|n| growth_of(n)).map(|g| g.0).collect();
    all.sort_by(f64::total_cmp);
    let median = all.get(all.len() / 2).copied();
    if let (Some(m), true) = (median, all.len() > 1) {
        if m > GROWTH {
            notes.push(vec![own(format!(
                "Every statement slowed alike (median p95 growth ×{m:.1} with the load): the limit is shared — the connection pool, the database's connections or its CPU — rather than one statement."
            ))]);
        }
    }
    let rows = names
        .iter()
        .map(|name| {
            let mut row: Vec<Text> = vec![vec![text(*name)]];
            let mut explain: Option<&ExplainSummary> = None;
            for p in &phases {
                let st = p.steps.iter().find(|st| st.name == *name);
                let cell = st
                    .and_then(|st| st.latency_ms.as_ref())
                    .map_or("-".into(), |l| ms(l.avg));
                explain = explain.or(st.and_then(|st| st.sql.as_ref()).and_then(|q| q.explain.as_ref()));
                row.push(vec![own(cell)]);
            }
            let growth = growth_of(name);
            row.push(vec![own(growth.map_or("-".into(), |g| format!("×{:.1}", g.0)))]);
            row.push(vec![own(match explain {
                Some(e) if !e.large_seq_scans.is_empty() => format!("⚠️ Seq Scan on {}", e.large_seq_scans.join(", ")),
                Some(e) if !e.indexes.is_empty() => format!("✅ {}", e.indexes.join(", ")),
                Some(e) if !e.seq_scan_tables.is_empty() => {
                    format!("{} (Seq Scan on small {})", e.plan, e.seq_scan_tables.join(", "))
                }
                Some(e) => e.plan.clone(),
                None => "-".into(),
            })]);
            let seq = explain.is_some_and(|e| !e.large_seq_scans.is_empty());
            let grew = growth.is_some_and(|(g, _, _)| g > GROWTH && median.is_none_or(|m| g > m * OUT_OF_LINE));
            let mut why = Vec::new();
            if seq {
                why.push("scans a large table sequentially".to_string());
            }
            if let (true, Some((g, lo, hi))) = (grew, growth) {
                why.push(format!(
                    "its p95 grew ×{g:.1} from {lo} to {hi} VUs, more than the others"
                ));
            }
            if let Some(end) = explain.and_then(|e| e.at_end.as_deref()) {
                notes.push(vec![
                    text(*name),
                    own(format!(": the plan changed during the run, to {}", end.plan)),
                ]);
            }
            row.push(vec![Span::Class(
                if why.is_empty() { "s-pass" } else { "s-near" }.into(),
                vec![own(if why.is_empty() {
                    "✅ good".to_string()
                } else {
                    format!("⚠️ needs optimization: {}", why.join("; "))
                })],
            )]);
            row
        })
        .collect();
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut out = vec![title(2, "Database"), table(&head_refs, 1, rows)];
    if !notes.is_empty() {
        out.push(bullets(notes));
    }
    out
}
