//! Plain text for the terminal: renders a [`Document`] (a comparison, say) the way the run's own
//! terminal output looks: headings underlined, tables aligned in columns (through
//! [`super::terminal::table`]), lists with dashes. Charts are left out. Text that came from a
//! plan or a target has its control characters replaced, so it cannot drive the terminal.

use super::document::{Align, Block, Document, Span};
use super::terminal::table;

/// Any document as plain text.
pub fn render_document(doc: &Document) -> String {
    let mut out = String::new();
    blocks(&mut out, &doc.blocks);
    out
}

fn blocks(out: &mut String, list: &[Block]) {
    for b in list {
        block(out, b);
    }
}

fn block(out: &mut String, b: &Block) {
    match b {
        Block::Heading { level, text } => {
            let t = line(text);
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&t);
            out.push('\n');
            if *level <= 2 {
                out.push_str(&(if *level == 1 { "═" } else { "─" }).repeat(t.chars().count()));
                out.push('\n');
            }
        }
        Block::Facts(facts) => {
            for (label, value) in facts {
                out.push_str(&format!("{label}: {}\n", line(value)));
            }
        }
        Block::Paragraph(text) => {
            out.push_str(&line(text));
            out.push('\n');
        }
        Block::List { numbered, items } => {
            for (i, item) in items.iter().enumerate() {
                let mark = if *numbered { format!("{}.", i + 1) } else { "-".into() };
                out.push_str(&format!("{mark} {}\n", line(&item.text)));
                for c in &item.children {
                    out.push_str(&format!("    - {}\n", line(c)));
                }
            }
        }
        Block::Table { head, rows, align } => {
            let mut all = vec![head.iter().map(|c| line(c)).collect::<Vec<_>>()];
            all.extend(rows.iter().map(|r| r.iter().map(|c| line(c)).collect()));
            let right: Vec<bool> = align.iter().map(|a| *a == Align::Right).collect();
            out.push_str(&table(&all, &right));
            out.push('\n');
        }
        Block::Charts { .. } => {}
        Block::Section { blocks: inner, .. } => blocks(out, inner),
        Block::Footer(text) => {
            out.push('\n');
            out.push_str(&line(text));
            out.push('\n');
        }
    }
}

/// Spans as one line of text.
fn line(text: &[Span]) -> String {
    let mut out = String::new();
    spans(&mut out, text);
    out
}

fn spans(out: &mut String, text: &[Span]) {
    for s in text {
        match s {
            Span::Text(t) | Span::Verbatim(t) => {
                out.extend(t.chars().map(|c| if c.is_control() { '?' } else { c }));
            }
            Span::Own(t) | Span::Code(t) => out.push_str(t),
            Span::Strong(inner) | Span::Class(_, inner) => spans(out, inner),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::document::{bullets, heading, own, table as doc_table, text};

    #[test]
    fn a_document_reads_as_aligned_text() {
        let doc = Document {
            title: "t".into(),
            lang: Default::default(),
            blocks: vec![
                heading(1, vec![own("Comparison")]),
                bullets([vec![own("one "), text("x\x1b[2J")]]),
                doc_table(
                    &["Metric", "before"],
                    1,
                    vec![vec![vec![own("p95")], vec![own("20.0 ms")]]],
                ),
            ],
        };
        let t = render_document(&doc);
        assert!(t.starts_with("Comparison\n══════════\n- one x?[2J\n"), "{t}");
        assert!(t.contains("  Metric   before\n"), "{t}");
        assert!(t.contains("  p95     20.0 ms\n"), "{t}");
    }
}
