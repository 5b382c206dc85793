//! The end of a report as the seeds end theirs: recommendations grouped by horizon (the
//! insurance seed's Immediate / Short term / Medium term, the voice seed's Quick wins /
//! Mittelfristig / Langfristig), then a conclusion with launch readiness and its conditions
//! ("READY FOR LAUNCH — conditions: …") and the next steps. Built from the verdict, the
//! thresholds, the findings and the capacity answer: nothing in it is typed in by hand.

use super::document::{bullets, own, strong, table, text, title, Block, Text};
use super::model::Report;
use crate::analysis::{Priority, Verdict};

/// A finding's horizon: what the client already suffers from is for now; what degrades it,
/// soon; what is at its limit without effect yet, later.
fn horizon(p: Priority) -> &'static str {
    match p {
        Priority::Critical => "Immediate",
        Priority::High => "Short term",
        Priority::Medium => "Medium term",
    }
}

/// Launch readiness in the insurance seed's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    ReadyWithConditions,
    NotReady,
}

impl Readiness {
    pub fn label(self) -> &'static str {
        match self {
            Readiness::Ready => "READY FOR LAUNCH",
            Readiness::ReadyWithConditions => "READY FOR LAUNCH, WITH CONDITIONS",
            Readiness::NotReady => "NOT READY FOR LAUNCH",
        }
    }
}

/// Failed thresholds or a critical finding: not ready; conditions or a high finding: ready
/// with conditions; otherwise ready.
pub fn readiness(r: &Report) -> Readiness {
    let worst = r.summary.findings.iter().map(|f| f.priority).min();
    match (r.verdict, worst) {
        (Verdict::Failed, _) | (_, Some(Priority::Critical)) => Readiness::NotReady,
        (Verdict::PassedWithConditions, _) | (_, Some(Priority::High)) => Readiness::ReadyWithConditions,
        _ => Readiness::Ready,
    }
}

/// The recommendations table and the conclusion.
pub fn blocks(r: &Report) -> Vec<Block> {
    let mut out = Vec::new();
    let mut findings: Vec<_> = r.summary.findings.iter().collect();
    findings.sort_by_key(|f| f.priority);
    if !findings.is_empty() {
        out.push(title(2, "Recommendations by horizon"));
        let rows = findings
            .iter()
            .map(|f| {
                vec![
                    vec![own(horizon(f.priority))],
                    vec![text(&f.title)],
                    vec![text(&f.recommendation)],
                    vec![text(f.evidence.first().map(String::as_str).unwrap_or(""))],
                ]
            })
            .collect();
        out.push(table(&["Horizon", "Finding", "Action", "Measured"], 99, rows));
    }
    out.push(title(2, "Conclusion"));
    let ready = readiness(r);
    let mut why: Vec<Text> = Vec::new();
    why.extend(r.failures.iter().map(|f| vec![own("threshold: "), text(f)]));
    why.extend(r.conditions.iter().map(|c| vec![own("condition: "), text(c)]));
    why.extend(
        findings
            .iter()
            .filter(|f| f.priority <= Priority::High)
            .map(|f| vec![own(format!("{} finding: ", f.priority.as_str())), text(&f.title)]),
    );
    let mut head = vec![strong(ready.label())];
    if !why.is_empty() {
        head.push(own(match ready {
            Readiness::NotReady => ": first fix",
            _ => ": conditions",
        }));
    }
    out.push(Block::Paragraph(head));
    if !why.is_empty() {
        out.push(bullets(why));
    }
    if let Some((c, _)) = r.summary.capacity_answer() {
        out.push(Block::Paragraph(vec![own("Capacity: "), text(&c.statement)]));
    }
    out.push(title(3, "Next steps"));
    let mut steps: Vec<Text> = findings
        .iter()
        .filter(|f| f.priority == Priority::Critical)
        .map(|f| vec![own("Fix: "), text(&f.title)])
        .collect();
    steps.push(vec![
        own("Run the same plan again after each change, with "),
        super::document::Span::Code("stampede run PLAN --note \"what changed\"".into()),
        own(", and compare it with this run: "),
        super::document::Span::Code("stampede compare --previous RUN".into()),
        own(" (or "),
        super::document::Span::Code("stampede report RUN --update LATER".into()),
        own(")."),
    ]);
    if r.summary.capacity_answer().is_none() {
        steps.push(vec![
            own("To know how many users it holds, ramp the load in a phase (the run then estimates its capacity) or run "),
            super::document::Span::Code("stampede capacity".into()),
            own("."),
        ]);
    }
    out.push(Block::List {
        numbered: true,
        items: steps.into_iter().map(Into::into).collect(),
    });
    out
}
