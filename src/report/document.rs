//! The document a human-readable report is: a title and a list of blocks (headings, paragraphs,
//! lists, tables, charts, sections), built once from the report model and then rendered by
//! [`super::markdown`] and [`super::html`], which only know how to write blocks. What a report
//! says is decided here, once; a format decides only how it looks, so the two cannot disagree.
//!
//! Text is a list of [`Span`]s that say where each piece came from: [`Span::Text`] from a plan,
//! a target or a run (escaped by every renderer), [`Span::Own`] ours. Renderers escape through
//! [`super::escape`] only.

use super::charts::RenderedChart;
use super::model::{memory, Report};
use super::terminal::{count, ms, pct};
use crate::analysis::PhaseSummary;

/// A report as a document.
pub struct Document {
    /// The document's name (HTML's `<title>`); the first heading says it too.
    pub title: String,
    /// The language it is written in (HTML's `lang`).
    pub lang: super::lang::Lang,
    pub blocks: Vec<Block>,
}

pub enum Block {
    Heading {
        level: u8,
        text: Text,
    },
    /// Facts about the document itself (date, target, plan…), label and value: set apart from
    /// the body (HTML mutes them; Markdown has only its list, with bold labels).
    Facts(Vec<(&'static str, Text)>),
    Paragraph(Text),
    List {
        numbered: bool,
        items: Vec<Item>,
    },
    Table {
        head: Vec<Text>,
        rows: Vec<Vec<Text>>,
        /// One per column.
        align: Vec<Align>,
    },
    /// Charts under their level-2 heading: inline SVG in HTML, linked files in Markdown (left out
    /// when the Markdown has no chart directory, heading and all).
    Charts {
        heading: Text,
        charts: Vec<RenderedChart>,
    },
    /// Blocks that belong together (a phase): HTML keeps them on one printed page when it can.
    Section {
        class: &'static str,
        blocks: Vec<Block>,
    },
    Footer(Text),
}

/// A list item, with sub-items (a finding's evidence).
pub struct Item {
    pub text: Text,
    pub children: Vec<Text>,
}

impl From<Text> for Item {
    fn from(text: Text) -> Item {
        Item {
            text,
            children: Vec::new(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Inline text: pieces, each with where it came from.
pub type Text = Vec<Span>;

pub enum Span {
    /// From a plan, a target or a run (names, messages, URLs, notes): escaped by every renderer.
    Text(String),
    /// Ours: labels, numbers, units and icons we chose. Never markup in any format, so Markdown
    /// writes it as is (escaping our dashes and signs would only add backslashes).
    Own(String),
    Strong(Text),
    /// A command of ours, e.g. `stampede report`.
    Code(String),
    /// Foreign text shown exactly as it came (an error message as the target gave it):
    /// monospace in HTML; escaped text in Markdown, where a code span cannot hold arbitrary text.
    Verbatim(String),
    /// A style hook (HTML class names); other formats show the content alone.
    Class(String, Text),
}

pub fn text(s: impl Into<String>) -> Span {
    Span::Text(s.into())
}

pub fn own(s: impl Into<String>) -> Span {
    Span::Own(s.into())
}

pub fn strong(s: impl Into<String>) -> Span {
    Span::Strong(vec![own(s)])
}

pub fn heading(level: u8, text: Text) -> Block {
    Block::Heading { level, text }
}

/// A heading of our own words.
pub fn title(level: u8, s: &str) -> Block {
    heading(level, vec![own(s)])
}

pub fn bullets(items: impl IntoIterator<Item = Text>) -> Block {
    Block::List {
        numbered: false,
        items: items.into_iter().map(Item::from).collect(),
    }
}

/// A table with our own column names, left-aligned up to column `right_from`, right-aligned
/// from there (numbers).
pub fn table(head: &[&str], right_from: usize, rows: Vec<Vec<Text>>) -> Block {
    Block::Table {
        head: head.iter().map(|h| vec![own(*h)]).collect(),
        rows,
        align: (0..head.len())
            .map(|i| if i >= right_from { Align::Right } else { Align::Left })
            .collect(),
    }
}

/// The document of a report; `charts` are shown where the format can.
pub fn of_report(r: &Report, charts: &[RenderedChart]) -> Document {
    let s = &r.summary;
    let e = &r.environment;
    let mut facts = vec![("Date", vec![text(&r.date)])];
    if let Some(t) = &r.target {
        facts.push(("Target", vec![text(t)]));
    }
    facts.push(("Plan", vec![text(&r.plan), own(" ("), text(&r.plan_file), own(")")]));
    facts.push(("Phases run", vec![text(r.phases_run.join(", "))]));
    facts.push((
        "Environment",
        vec![
            own("stampede "),
            text(&e.tool_version),
            own(" on "),
            text(&e.host),
            own(" ("),
            text(&e.os),
            own(format!(
                "), {} cores, {} memory, {} load threads, segment ",
                e.cores,
                memory(e.memory_bytes),
                e.workers
            )),
            text(&e.segment),
        ],
    ));
    if let Some(n) = &s.note {
        facts.push(("Purpose", vec![text(n)]));
    }
    facts.extend(r.notes.iter().map(|n| ("Note", vec![text(n)])));
    let mut blocks = vec![heading(1, vec![text(&r.title)]), Block::Facts(facts)];
    blocks.extend(verdict_blocks(r));
    blocks.push(title(2, "Executive summary"));
    let mut head = vec![vec![own("Metric")]];
    head.extend(r.executive.phases.iter().map(|p| vec![text(p)]));
    head.push(vec![own("Target")]);
    let rows = r
        .executive
        .rows
        .iter()
        .map(|er| {
            let mut cells = vec![vec![Span::Strong(vec![own(&er.metric)])]];
            cells.extend(er.cells.iter().map(|c| vec![text(c)]));
            cells.push(vec![if er.target.is_empty() {
                own("-")
            } else {
                text(&er.target)
            }]);
            cells
        })
        .collect();
    let align = (0..head.len())
        .map(|i| if i == 0 { Align::Left } else { Align::Right })
        .collect();
    blocks.push(Block::Table { head, rows, align });
    blocks.extend(about_blocks(&r.about));
    blocks.extend(sla_blocks(r));
    if !charts.is_empty() {
        blocks.push(Block::Charts {
            heading: vec![own("Charts")],
            charts: charts.to_vec(),
        });
    }
    blocks.push(title(2, "Phases"));
    for (i, p) in s.phases.iter().enumerate() {
        blocks.push(Block::Section {
            class: "phase",
            blocks: phase(i, p, r),
        });
    }
    blocks.extend(super::generators::blocks(&r.generators));
    blocks.extend(super::sql::blocks(s));
    blocks.extend(super::ws::blocks(s));
    blocks.extend(super::long::blocks(s));
    blocks.extend(super::hosts::blocks(s));
    blocks.extend(super::ab::blocks(s));
    blocks.extend(super::long::generator_blocks(s));
    if let Some((c, estimate)) = s.capacity_answer() {
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        blocks.push(title(2, "Capacity"));
        blocks.push(Block::Paragraph(vec![text(&c.statement)]));
        let mut facts = vec![vec![own(format!(
            "SLO capacity: {} · saturation: {} · recommended: {} · peak throughput: {:.1} req/s",
            fmt(c.slo_capacity),
            fmt(c.saturation),
            fmt(c.recommended),
            c.peak_throughput_rps
        ))]];
        if let Some(e) = estimate {
            facts.push(vec![own("Basis: "), text(&e.basis)]);
            facts.push(vec![own("Uncertainty: "), text(&e.uncertainty)]);
        }
        blocks.push(bullets(facts));
        let rows = c
            .steps
            .iter()
            .map(|st| {
                [
                    format!("{:.0}", st.load),
                    format!("{:.1}", st.throughput_rps),
                    ms(st.avg_ms),
                    ms(st.p95_ms),
                    ms(st.p99_ms),
                    pct(st.error_rate),
                    if st.slo_passed { "✅" } else { "❌" }.into(),
                ]
                .into_iter()
                .map(|c| vec![own(c)])
                .collect()
            })
            .collect();
        blocks.push(table(&["Load", "req/s", "avg", "p95", "p99", "errors", "SLO"], 0, rows));
        if !c.projections.is_empty() {
            blocks.push(bullets(
                c.projections
                    .iter()
                    .map(|p| vec![own("Projection (model estimate): "), text(p)]),
            ));
        }
    }
    blocks.extend(findings_blocks(s, usize::MAX));
    blocks.extend(super::conclusion::blocks(r));
    if !s.warnings.is_empty() {
        blocks.push(title(2, "Warnings"));
        blocks.push(bullets(s.warnings.iter().map(|w| vec![text(w)])));
    }
    for (i, u) in r.updates.iter().enumerate() {
        blocks.extend(super::update::blocks(i + 1, u));
    }
    blocks.push(Block::Footer(vec![
        own("Generated by stampede "),
        text(&e.tool_version),
        own(" from the run directory; "),
        Span::Code("stampede report".into()),
        own(" rebuilds it."),
    ]));
    let mut doc = Document {
        title: r.title.clone(),
        lang: r.lang,
        blocks,
    };
    r.lang.document(&mut doc);
    doc
}

/// The verdict heading and its reasons (the failed thresholds, the conditions).
fn verdict_blocks(r: &Report) -> Vec<Block> {
    let mut blocks = Vec::new();
    blocks.push(heading(
        2,
        vec![
            own("Verdict: "),
            Span::Class(format!("verdict v-{}", r.verdict.as_str()), vec![own(&r.verdict_label)]),
        ],
    ));
    if r.failures.is_empty() && r.conditions.is_empty() {
        blocks.push(Block::Paragraph(vec![own(
            "Every threshold passed, with more than 10% to spare.",
        )]));
    } else {
        let failures = r.failures.iter().map(|f| vec![own("❌ "), text(f)]);
        let conditions = r.conditions.iter().map(|c| vec![own("⚠️ "), text(c)]);
        blocks.push(bullets(failures.chain(conditions)));
    }
    blocks
}

/// The SLA table: each threshold per phase, measured, target and status (none without thresholds).
fn sla_blocks(r: &Report) -> Vec<Block> {
    let mut blocks = Vec::new();
    if !r.sla.is_empty() {
        blocks.push(title(2, "SLA"));
        let rows = r
            .sla
            .iter()
            .map(|t| {
                let mut expr = vec![text(&t.expr)];
                if let Some(st) = t.step.as_ref().filter(|st| !t.expr.contains(st.as_str())) {
                    expr.extend([own(" ["), text(st), own("]")]);
                }
                let status = format!("{} {}", t.status.icon(), t.status.word());
                vec![
                    vec![text(&t.phase)],
                    expr,
                    vec![text(&t.measured)],
                    vec![text(&t.target)],
                    vec![Span::Class(format!("s-{}", t.status.as_str()), vec![own(status)])],
                ]
            })
            .collect();
        blocks.push(table(&["Phase", "Threshold", "Measured", "Target", "Status"], 2, rows));
    }
    blocks
}

/// The findings by priority, at most `limit` of them (none without findings).
fn findings_blocks(s: &stampede_rundir::summary::Summary, limit: usize) -> Vec<Block> {
    let mut blocks = Vec::new();
    if !s.findings.is_empty() {
        blocks.push(title(2, "Bottlenecks and recommendations"));
        let mut findings: Vec<_> = s.findings.iter().collect();
        findings.sort_by_key(|f| f.priority);
        findings.truncate(limit);
        let items = findings
            .iter()
            .map(|f| Item {
                text: vec![Span::Strong(vec![
                    own(format!("[{}] ", f.priority.as_str())),
                    text(&f.title),
                ])],
                children: f
                    .evidence
                    .iter()
                    .map(|ev| vec![text(ev)])
                    .chain(std::iter::once(vec![own("Recommendation: "), text(&f.recommendation)]))
                    .collect(),
            })
            .collect();
        blocks.push(Block::List { numbered: true, items });
    }
    blocks
}

/// How many findings the CI summary shows.
pub const CI_FINDINGS: usize = 3;

/// The compact document a CI job shows (`$GITHUB_STEP_SUMMARY`): title, verdict, SLA table and
/// the top findings, from the same blocks as the full report.
pub fn ci_summary(r: &Report) -> Document {
    let mut blocks = vec![heading(2, vec![text(&r.title)])];
    let mut facts = vec![("Plan", vec![text(&r.plan), own(" ("), text(&r.plan_file), own(")")])];
    facts.push(("Date", vec![text(&r.date)]));
    if let Some(n) = &r.summary.note {
        facts.push(("Purpose", vec![text(n)]));
    }
    blocks.push(Block::Facts(facts));
    blocks.extend(verdict_blocks(r).into_iter().map(demote));
    blocks.extend(sla_blocks(r).into_iter().map(demote));
    let findings = findings_blocks(&r.summary, CI_FINDINGS);
    if !findings.is_empty() {
        blocks.extend(findings.into_iter().map(demote));
        if r.summary.findings.len() > CI_FINDINGS {
            blocks.push(Block::Paragraph(vec![own(format!(
                "{} more findings in the run's report.md.",
                r.summary.findings.len() - CI_FINDINGS
            ))]));
        }
    }
    Document {
        title: r.title.clone(),
        lang: r.lang,
        blocks,
    }
}

/// A heading one level down (the CI summary sits under the job's own heading).
fn demote(b: Block) -> Block {
    match b {
        Block::Heading { level, text } => Block::Heading { level: level + 1, text },
        other => other,
    }
}

/// A phase's blocks: configuration, what was measured and the assessment; the endpoint table;
/// errors by kind with sample messages; server metrics.
fn phase(i: usize, p: &PhaseSummary, r: &Report) -> Vec<Block> {
    let pr = r.phases.iter().find(|x| x.name == p.name);
    let mut facts = vec![
        vec![
            strong("Configuration"),
            own(": "),
            own(p.model.map_or("", |m| m.as_str())),
            own(" — "),
            text(&p.description),
        ],
        vec![
            strong("Measured"),
            own(format!(
                ": {:.1}s, {} requests, {:.1} req/s, {} iterations, up to {} VUs, {} dropped arrivals",
                p.duration_s,
                count(p.requests),
                p.rps,
                count(p.iterations),
                p.vus_max,
                count(p.dropped_iterations)
            )),
        ],
    ];
    if let Some(pr) = pr {
        facts.push(vec![
            strong("Assessment"),
            own(": "),
            strong(pr.rating.as_str()),
            own(": "),
            text(&pr.assessment),
        ]);
    }
    if let Some(pr) = pr.filter(|pr| !pr.observations.is_empty()) {
        let mut t = vec![strong("Observations"), own(": ")];
        for (i, o) in pr.observations.iter().enumerate() {
            if i > 0 {
                t.push(own("; "));
            }
            t.push(text(o));
        }
        facts.push(t);
    }
    let mut blocks = vec![
        heading(3, vec![own(format!("{}. ", i + 1)), text(&p.name)]),
        bullets(facts),
    ];
    let rows = p
        .steps
        .iter()
        .map(|s| {
            let mut cells = vec![vec![text(&s.name)]];
            let latency: Vec<String> = match &s.latency_ms {
                Some(l) => [l.avg, l.p50, l.p95, l.p99, l.max].iter().map(|v| ms(*v)).collect(),
                None => vec!["-".into(); 5],
            };
            cells.extend(latency.into_iter().map(|c| vec![own(c)]));
            cells.push(vec![own(pct(1.0 - s.error_rate))]);
            cells.push(vec![own(format!("{:.1}", s.rps))]);
            cells.push(vec![own(count(s.requests))]);
            cells
        })
        .collect();
    blocks.push(table(
        &[
            "Endpoint", "avg", "p50", "p95", "p99", "max", "success", "req/s", "requests",
        ],
        1,
        rows,
    ));
    if let Some(pr) = pr.filter(|pr| pr.errors.total > 0) {
        blocks.push(Block::Paragraph(vec![
            strong("Errors"),
            own(": "),
            text(&pr.errors.explanation),
        ]));
        let rows = pr
            .errors
            .rows
            .iter()
            .map(|e| {
                vec![
                    vec![text(&e.step)],
                    vec![text(&e.kind)],
                    vec![own(e.class.as_str())],
                    vec![own(count(e.count))],
                    vec![own(pct(e.share))],
                ]
            })
            .collect();
        blocks.push(table(
            &["Endpoint", "Error", "Class", "Count", "Share of endpoint"],
            3,
            rows,
        ));
        let samples: Vec<Text> = p
            .steps
            .iter()
            .flat_map(|s| {
                s.error_samples
                    .iter()
                    .map(move |m| vec![text(&s.name), own(": "), Span::Verbatim(m.clone())])
            })
            .collect();
        if !samples.is_empty() {
            blocks.push(Block::Paragraph(vec![own(
                "Sample error messages, as the target gave them:",
            )]));
            blocks.push(bullets(samples));
        }
    }
    if !p.server.is_empty() {
        blocks.push(Block::Paragraph(vec![strong("Server metrics"), own(":")]));
        let rows = p
            .server
            .iter()
            .map(|m| {
                let q = |v: f64| super::quantity::quantity(v, &m.unit);
                vec![
                    vec![text(&m.name)],
                    vec![own(format!("{} – {}", q(m.min), q(m.max)))],
                    vec![own(q(m.min))],
                    vec![own(q(m.avg))],
                    vec![own(q(m.max))],
                ]
            })
            .collect();
        blocks.push(table(&["Metric", "range", "min", "avg", "max"], 1, rows));
    }
    blocks
}

/// The plan's `about:` as the seeds open: the objectives as a list, the test environment and
/// the software versions as tables (left out when the plan has none).
fn about_blocks(a: &crate::rundir::About) -> Vec<Block> {
    let mut out = Vec::new();
    if !a.objectives.is_empty() {
        out.push(title(2, "Test objectives"));
        out.push(bullets(a.objectives.iter().map(|o| vec![text(o)])));
    }
    let rows = |pairs: &[(String, String)]| -> Vec<Vec<Text>> {
        pairs.iter().map(|(k, v)| vec![vec![text(k)], vec![text(v)]]).collect()
    };
    if !a.environment.is_empty() || !a.software.is_empty() {
        out.push(title(2, "Test environment"));
        if !a.environment.is_empty() {
            out.push(Block::Table {
                head: vec![vec![own("Component")], vec![own("Specification")]],
                rows: rows(&a.environment),
                align: vec![Align::Left, Align::Left],
            });
        }
        if !a.software.is_empty() {
            out.push(title(3, "Software"));
            out.push(Block::Table {
                head: vec![vec![own("Component")], vec![own("Version")]],
                rows: rows(&a.software),
                align: vec![Align::Left, Align::Left],
            });
        }
    }
    out
}
