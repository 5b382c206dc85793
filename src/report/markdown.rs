//! Markdown: reads well on GitHub and in a terminal. Renders a [`Document`]: blocks separated
//! by a blank line, GitHub-flavoured tables, charts as SVG files in a directory beside the
//! Markdown file, linked as images. Every [`Span::Text`] goes through [`md`].

use super::charts::RenderedChart;
use super::document::{self, Align, Block, Document, Span};
use super::escape::md;
use super::model::Report;

/// The Markdown text of a report; `charts_dir` is the relative directory the chart files are
/// linked from (None: no chart links, e.g. when only the text is wanted).
pub fn render(r: &Report, charts: &[RenderedChart], charts_dir: Option<&str>) -> String {
    render_document(&document::of_report(r, charts), charts_dir)
}

/// Any document (a report, a comparison) as Markdown.
pub fn render_document(doc: &Document, charts_dir: Option<&str>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    blocks(&mut out, &doc.blocks, charts_dir);
    out
}

fn blocks(out: &mut String, list: &[Block], charts_dir: Option<&str>) {
    let mut first = true;
    for b in list {
        let mut one = String::new();
        block(&mut one, b, charts_dir);
        if one.is_empty() {
            continue;
        }
        if !first {
            out.push('\n');
        }
        first = false;
        out.push_str(&one);
    }
}

fn block(out: &mut String, b: &Block, charts_dir: Option<&str>) {
    match b {
        Block::Heading { level, text } => {
            out.push_str(&"#".repeat(usize::from(*level)));
            out.push(' ');
            line(out, text);
        }
        Block::Facts(facts) => {
            for (label, value) in facts {
                out.push_str(&format!("- **{label}**: "));
                line(out, value);
            }
        }
        Block::Paragraph(text) => line(out, text),
        Block::List { numbered, items } => {
            for (i, item) in items.iter().enumerate() {
                if *numbered {
                    out.push_str(&format!("{}. ", i + 1));
                } else {
                    out.push_str("- ");
                }
                line(out, &item.text);
                for c in &item.children {
                    out.push_str(if *numbered { "   - " } else { "  - " });
                    line(out, c);
                }
            }
        }
        Block::Table { head, rows, align } => {
            row(out, head);
            out.push('|');
            for a in align {
                out.push_str(match a {
                    Align::Left => " --- |",
                    Align::Right => " ---: |",
                });
            }
            out.push('\n');
            for r in rows {
                row(out, r);
            }
        }
        Block::Charts { heading, charts } => {
            let Some(dir) = charts_dir.filter(|_| !charts.is_empty()) else {
                return;
            };
            out.push_str("## ");
            line(out, heading);
            out.push('\n');
            // Each image is a paragraph of its own, followed by its blank line.
            for c in charts {
                out.push_str(&format!("![{}]({dir}/{}.svg)\n\n", md(&c.title), c.stem));
            }
        }
        Block::Section { blocks: inner, .. } => blocks(out, inner, charts_dir),
        Block::Footer(text) => {
            out.push_str("---\n_");
            spans(out, text);
            out.push_str("_\n");
        }
    }
}

fn line(out: &mut String, text: &[Span]) {
    spans(out, text);
    out.push('\n');
}

fn row(out: &mut String, cells: &[Vec<Span>]) {
    out.push('|');
    for c in cells {
        out.push(' ');
        spans(out, c);
        out.push_str(" |");
    }
    out.push('\n');
}

fn spans(out: &mut String, text: &[Span]) {
    for s in text {
        match s {
            Span::Text(t) | Span::Verbatim(t) => out.push_str(&md(t)),
            Span::Own(t) => out.push_str(t),
            Span::Strong(inner) => {
                out.push_str("**");
                spans(out, inner);
                out.push_str("**");
            }
            Span::Code(t) => {
                out.push('`');
                out.push_str(t);
                out.push('`');
            }
            Span::Class(_, inner) => spans(out, inner),
        }
    }
}
