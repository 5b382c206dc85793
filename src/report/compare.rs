//! A comparison of two runs as a document: what regressed and improved, then per phase the
//! seed's before/after table (metric, before, after, change, verdict) for the whole phase and,
//! when the phase has several steps, one row per step with each metric as `before → after
//! (change)`; last, what had no counterpart. One document, rendered as plain text (the
//! terminal), Markdown and HTML; `--json` is the [`Comparison`] itself.
//!
//! The phase blocks are shared with a report's "Update" sections ([`super::update`]).

use super::document::{bullets, heading, own, strong, table, text, title, Block, Document, Span, Text};
use super::terminal::{ms, pct};
use crate::analysis::compare::{ChangeVerdict, Comparison, Flagged, Metric, MetricChange, Metrics, RunRef};
use crate::analysis::significance::ALPHA;

/// A metric's value for people.
pub fn value(m: Metric, v: Option<f64>) -> String {
    match (m, v) {
        (_, None) => "-".into(),
        (Metric::Rps, Some(v)) => format!("{v:.1}/s"),
        (Metric::ErrorRate, Some(v)) => pct(v),
        (_, Some(v)) => ms(v),
    }
}

/// `+50%`; a change that rounds to 0 is `±0%` (not `-0%`).
fn signed_pct(p: f64) -> String {
    if p.abs() < 0.5 {
        "±0%".into()
    } else {
        format!("{p:+.0}%")
    }
}

fn change(c: &MetricChange) -> String {
    match c.change_pct {
        Some(p) => signed_pct(p),
        None if c.before.is_some() && c.after.is_some() && c.before != c.after => "new".into(),
        None => "-".into(),
    }
}

/// What the test says, in words: the verdict, or why a significant change is not one.
fn verdict_word(c: &MetricChange) -> &'static str {
    match c.verdict {
        ChangeVerdict::Regressed => "regressed",
        ChangeVerdict::Improved => "improved",
        ChangeVerdict::Unchanged if c.significant => "unchanged (not shown beyond the tolerance)",
        ChangeVerdict::Unchanged => "unchanged",
    }
}

fn verdict_span(c: &MetricChange) -> Span {
    Span::Class(format!("c-{}", c.verdict.as_str()), vec![own(verdict_word(c))])
}

/// `20.0ms → 30.0ms (+50%, regressed)`.
fn cell(c: &MetricChange) -> Text {
    let mut t = vec![own(format!(
        "{} → {} ({}",
        value(c.metric, c.before),
        value(c.metric, c.after),
        change(c)
    ))];
    if c.verdict != ChangeVerdict::Unchanged {
        t.push(own(", "));
        t.push(verdict_span(c));
    }
    t.push(own(")"));
    t
}

fn p_value(c: &MetricChange) -> String {
    match c.p_value {
        None => "-".into(),
        Some(p) if p < 0.001 => "< 0.001".into(),
        Some(p) => format!("{p:.3}"),
    }
}

/// The seed's before/after table for one row of metrics.
fn metric_table(m: &Metrics, before: &str, after: &str) -> Block {
    let rows =
        m.0.iter()
            .map(|c| {
                vec![
                    vec![own(c.metric.label())],
                    vec![own(value(c.metric, c.before))],
                    vec![own(value(c.metric, c.after))],
                    vec![own(change(c))],
                    vec![own(p_value(c))],
                    vec![verdict_span(c)],
                ]
            })
            .collect();
    let mut t = table(&["Metric", "", "", "Change", "p", "Verdict"], 1, rows);
    if let Block::Table { head, .. } = &mut t {
        head[1] = vec![text(before)];
        head[2] = vec![text(after)];
    }
    t
}

/// One line for a flagged change: `peak · check-customer: p95 latency 20.0ms → 30.0ms (+50%)`.
fn flagged(f: &Flagged) -> Text {
    let mut t = vec![text(&f.phase)];
    if let Some(s) = &f.step {
        t.extend([own(" · "), text(s)]);
    }
    let pct = f
        .change_pct
        .map(|p| format!(" ({})", signed_pct(p)))
        .unwrap_or_default();
    t.push(own(format!(
        ": {} {} → {}{pct}",
        f.metric.label(),
        value(f.metric, f.before),
        value(f.metric, f.after)
    )));
    t
}

/// A run as a column header: its note, else its start.
pub fn column(r: &RunRef, fallback: &str) -> String {
    match &r.note {
        Some(n) => n.clone(),
        None if !r.started_at.is_empty() => format!("{fallback} ({})", short_time(&r.started_at)),
        None => fallback.into(),
    }
}

/// `2026-01-08T16:51:03.120Z` → `2026-01-08 16:51`.
pub fn short_time(rfc3339: &str) -> String {
    let s = rfc3339.replacen('T', " ", 1);
    s.get(..16).map(str::to_string).unwrap_or(s)
}

/// The headline: how many regressions and improvements, each listed.
pub fn result_blocks(c: &Comparison) -> Vec<Block> {
    let mut out = Vec::new();
    if c.regressions.is_empty() && c.improvements.is_empty() {
        out.push(Block::Paragraph(vec![strong("No significant change"), own(format!(
            ": no metric of any phase or step differs between the runs beyond chance (family-wise false-positive rate {:.0}%{}).",
            ALPHA * 100.0,
            tolerance_words(c)
        ))]));
        return out;
    }
    out.push(Block::Paragraph(vec![
        strong(format!(
            "{} regression{}, {} improvement{}",
            c.regressions.len(),
            if c.regressions.len() == 1 { "" } else { "s" },
            c.improvements.len(),
            if c.improvements.len() == 1 { "" } else { "s" }
        )),
        own(format!(
            " (significant at a family-wise false-positive rate of {:.0}%{}).",
            ALPHA * 100.0,
            tolerance_words(c)
        )),
    ]));
    let lines = c
        .regressions
        .iter()
        .map(|f| (f, "regressed"))
        .chain(c.improvements.iter().map(|f| (f, "improved")))
        .map(|(f, word)| {
            let mut t = vec![Span::Class(format!("c-{word}"), vec![own(word)]), own(": ")];
            t.extend(flagged(f));
            t
        });
    out.push(bullets(lines));
    out
}

fn tolerance_words(c: &Comparison) -> String {
    if c.tolerance_pct > 0.0 {
        format!(", changes within {}% ignored", c.tolerance_pct)
    } else {
        String::new()
    }
}

/// Per phase: the whole phase's table, then the steps (when there are several).
pub fn phase_blocks(c: &Comparison, level: u8) -> Vec<Block> {
    let (before, after) = (column(&c.before, "before"), column(&c.after, "after"));
    let mut out = Vec::new();
    for p in &c.phases {
        let mut section = vec![heading(level, vec![own("Phase "), text(&p.name)])];
        if p.seconds < c.min_seconds {
            section.push(Block::Paragraph(vec![
                strong("Too short to tell"),
                own(format!(
                    ": {} paired second{}; with the {} tests of this comparison a change needs at least {} full seconds in both runs to be significant.",
                    p.seconds,
                    if p.seconds == 1 { "" } else { "s" },
                    c.tests,
                    c.min_seconds
                )),
            ]));
        }
        if let [only] = p.steps.as_slice() {
            section.push(Block::Paragraph(vec![
                own("Endpoint "),
                text(&only.name),
                own(" (the phase's only one):"),
            ]));
        }
        section.push(metric_table(&p.metrics, &before, &after));
        if p.steps.len() > 1 {
            let mut head = vec!["Endpoint"];
            head.extend(Metric::ALL.iter().map(|m| m.as_str()));
            let rows = p
                .steps
                .iter()
                .map(|s| {
                    let mut row = vec![vec![text(&s.name)]];
                    row.extend(s.metrics.0.iter().map(cell));
                    row
                })
                .collect();
            section.push(table(&head, 1, rows));
        }
        out.push(Block::Section {
            class: "phase",
            blocks: section,
        });
    }
    out
}

/// What had no counterpart in the other run.
pub fn unmatched_blocks(c: &Comparison, level: u8) -> Vec<Block> {
    let u = &c.unmatched;
    if u.is_empty() {
        return Vec::new();
    }
    let mut items: Vec<Text> = Vec::new();
    let before = column(&c.before, "the run before");
    let after = column(&c.after, "the run after");
    for (phases, run) in [(&u.phases_only_before, &before), (&u.phases_only_after, &after)] {
        for p in phases {
            items.push(vec![own("Phase "), text(p), own(" is only in "), text(run)]);
        }
    }
    for (steps, run) in [(&u.steps_only_before, &before), (&u.steps_only_after, &after)] {
        for s in steps {
            items.push(vec![
                own("Step "),
                text(&s.step),
                own(" of phase "),
                text(&s.phase),
                own(" is only in "),
                text(run),
            ]);
        }
    }
    vec![title(level, "Without a counterpart"), bullets(items)]
}

/// The comparison as a document.
pub fn document(c: &Comparison) -> Document {
    let (a, b) = (&c.before, &c.after);
    let run = |r: &RunRef| {
        let mut t = vec![
            text(&r.name),
            own(" started "),
            text(&r.started_at),
            own(format!(", {}", r.verdict.label())),
        ];
        if let Some(n) = &r.note {
            t.extend([own(": "), text(n)]);
        }
        t
    };
    let mut facts = vec![("Before", run(a)), ("After", run(b))];
    facts.push((
        "Test",
        vec![own(format!(
            "paired sign-flip permutation test over per-second values, Holm-corrected over the comparison; family-wise false-positive rate {:.0}%",
            ALPHA * 100.0
        ))],
    ));
    if c.tolerance_pct > 0.0 {
        facts.push(("Tolerance", vec![own(format!("{}%", c.tolerance_pct))]));
    }
    let mut blocks = vec![
        heading(1, vec![own("Comparison: "), text(&a.name), own(" → "), text(&b.name)]),
        Block::Facts(facts),
    ];
    if a.name != b.name {
        blocks.push(Block::Paragraph(vec![
            strong("Different plans"),
            own(": "),
            text(&a.name),
            own(" and "),
            text(&b.name),
            own("; only phases and steps of the same name are compared."),
        ]));
    }
    blocks.push(title(2, "Result"));
    blocks.extend(result_blocks(c));
    blocks.extend(phase_blocks(c, 2));
    blocks.extend(unmatched_blocks(c, 2));
    blocks.push(Block::Footer(vec![
        own("Generated by "),
        Span::Code("stampede compare".into()),
        own(" from the two run directories."),
    ]));
    Document {
        title: format!("Comparison: {} → {}", a.name, b.name),
        lang: Default::default(),
        blocks,
    }
}
