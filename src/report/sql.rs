//! The report's database section, shaped like the insurance seed's "Database Performance":
//! each SQL statement × its average latency in each phase (one column per phase, so one per
//! concurrency level) × whether it uses an index; a statement that scans a table sequentially,
//! or whose p95 grew more than threefold from the lowest to the highest concurrency, is marked
//! as needing optimization.

use super::document::{bullets, own, table, text, title, Block, Span, Text};
use super::terminal::ms;
use crate::analysis::{PhaseSummary, Summary};
use crate::rundir::summary::ExplainSummary;

/// p95 growth from the lowest to the highest concurrency that marks a statement.
const GROWTH: f64 = 3.0;

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
    let rows = names
        .iter()
        .map(|name| {
            let mut row: Vec<Text> = vec![vec![text(*name)]];
            // (VUs, p95) where the statement ran, to judge its growth with concurrency.
            let mut p95s: Vec<(u64, f64)> = Vec::new();
            let mut explain: Option<&ExplainSummary> = None;
            for p in &phases {
                let st = p.steps.iter().find(|st| st.name == *name);
                let cell = match st.and_then(|st| st.latency_ms.as_ref()) {
                    Some(l) => {
                        p95s.push((p.vus_max, l.p95));
                        ms(l.avg)
                    }
                    None => "-".into(),
                };
                explain = explain.or(st.and_then(|st| st.sql.as_ref()).and_then(|q| q.explain.as_ref()));
                row.push(vec![own(cell)]);
            }
            p95s.sort_by_key(|(vus, _)| *vus);
            let growth = match (p95s.first(), p95s.last()) {
                (Some(lo), Some(hi)) if p95s.len() > 1 && lo.1 > 0.0 => Some(hi.1 / lo.1),
                _ => None,
            };
            row.push(vec![own(growth.map_or("-".into(), |g| format!("×{g:.1}")))]);
            row.push(vec![own(match explain {
                Some(e) if e.index_used && e.seq_scan_tables.is_empty() => format!("✅ {}", e.plan),
                Some(e) if e.seq_scan_tables.is_empty() => e.plan.clone(),
                Some(e) => format!("⚠️ Seq Scan on {}", e.seq_scan_tables.join(", ")),
                None => "-".into(),
            })]);
            let seq = explain.is_some_and(|e| !e.seq_scan_tables.is_empty());
            let grew = growth.is_some_and(|g| g > GROWTH);
            let mut why = Vec::new();
            if seq {
                why.push("scans sequentially".to_string());
            }
            if grew {
                why.push(format!(
                    "its p95 grew ×{:.1} from {} to {} VUs",
                    growth.unwrap_or_default(),
                    p95s.first().map_or(0, |x| x.0),
                    p95s.last().map_or(0, |x| x.0)
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
