//! A comparison of two runs as a document: one table per phase present in both runs, a row for
//! the whole phase and one per step, each metric as `before → after (change %)` (p95, avg,
//! throughput, error rate), like the before/after tables of the voice seed; rendered as
//! Markdown, the format `stampede compare` prints.

use super::document::{heading, own, table, text, Block, Document, Text};
use super::markdown::render_document;
use super::terminal::{ms, pct};
use crate::analysis::compare::{Change, Comparison, PhaseComparison};

/// `before → after (change %)`; the change is left out when there is no base to divide by.
fn cell(c: Change, fmt: fn(f64) -> String) -> String {
    match (c.before, c.after, c.percent()) {
        (Some(a), Some(b), Some(p)) => format!("{} → {} ({p:+.0}%)", fmt(a), fmt(b)),
        (Some(a), Some(b), None) => format!("{} → {}", fmt(a), fmt(b)),
        (Some(a), None, _) => format!("{} → -", fmt(a)),
        (None, Some(b), _) => format!("- → {}", fmt(b)),
        (None, None, _) => "-".into(),
    }
}

fn rps(v: f64) -> String {
    format!("{v:.1}/s")
}

fn only_in(name: &str, which: &str) -> Block {
    Block::Paragraph(vec![
        own("Phase "),
        text(name),
        own(format!(" is only in the {which} run.")),
    ])
}

/// The comparison as a document.
pub fn document(c: &Comparison) -> Document {
    let (a, b) = (&c.before, &c.after);
    let title: Text = vec![
        own("Comparison: "),
        text(&a.name),
        own(" ("),
        text(&a.started_at),
        own(") → "),
        text(&b.name),
        own(" ("),
        text(&b.started_at),
        own(")"),
    ];
    let mut blocks = vec![
        heading(1, title),
        Block::Paragraph(vec![own(format!(
            "Verdict: {} → {}",
            a.verdict.label(),
            b.verdict.label()
        ))]),
    ];
    for p in &c.phases {
        match p {
            PhaseComparison::OnlyBefore(name) => blocks.push(only_in(name, "first")),
            PhaseComparison::Both { name, rows } => {
                blocks.push(heading(2, vec![text(name)]));
                let rows = rows
                    .iter()
                    .map(|r| {
                        vec![
                            vec![match &r.step {
                                Some(s) => text(s),
                                None => own("(all)"),
                            }],
                            vec![own(cell(r.p95, ms))],
                            vec![own(cell(r.avg, ms))],
                            vec![own(cell(r.rps, rps))],
                            vec![own(cell(r.error_rate, pct))],
                        ]
                    })
                    .collect();
                blocks.push(table(&["Endpoint", "p95", "avg", "throughput", "error rate"], 1, rows));
            }
        }
    }
    blocks.extend(c.only_after.iter().map(|name| only_in(name, "second")));
    Document {
        title: format!("Comparison: {} → {}", a.name, b.name),
        blocks,
    }
}

/// The comparison as Markdown.
pub fn markdown(c: &Comparison) -> String {
    render_document(&document(c), None)
}
