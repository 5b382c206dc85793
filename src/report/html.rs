//! HTML: one self-contained file (inline CSS and SVG, no script, nothing fetched), light and
//! dark, readable on a phone, printable. Renders a [`Document`]; every piece of text goes
//! through [`esc`] (ours too: it costs nothing and nothing slips through), and the
//! Content-Security-Policy forbids scripts and network access as a second line of defence.

use std::fmt::Write as _;

use super::charts::RenderedChart;
use super::document::{self, Block, Document, Span};
use super::escape::html as esc;
use super::model::Report;

const CSS: &str = r#"
:root{--fg:#1f2328;--bg:#fff;--mut:#59636e;--bd:#d1d9e0;--alt:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#d1242f}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mut:#9198a1;--bd:#3d444d;--alt:#161b22;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
*{box-sizing:border-box}
.badge{display:inline-block;min-width:1.3em;padding:0 .3em;border-radius:.65em;color:#fff;font-weight:600;font-size:.85em;line-height:1.35em;text-align:center;vertical-align:baseline}.badge.pass{background:var(--ok)}.badge.near{background:var(--warn)}.badge.fail{background:var(--bad)}
body{margin:0 auto;max-width:1100px;padding:16px;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
h1{font-size:1.6em;margin:.2em 0 .4em}h2{border-bottom:1px solid var(--bd);padding-bottom:.2em;margin-top:1.6em}
.meta{color:var(--mut);margin:0;padding-left:1.2em}
.tw{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.6em 0}
table{border-collapse:collapse;min-width:50%}
th,td{border:1px solid var(--bd);padding:4px 8px;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left;white-space:normal}
thead th{background:var(--alt);white-space:normal}
.verdict{display:inline-block;padding:.2em .6em;border-radius:6px;font-weight:700;color:#fff}
.v-passed{background:var(--ok)}.v-passed_with_conditions{background:var(--warn)}.v-failed{background:var(--bad)}
.s-pass{color:var(--ok)}.s-near{color:var(--warn)}.s-fail{color:var(--bad)}
.c-improved{color:var(--ok);font-weight:600}.c-regressed{color:var(--bad);font-weight:600}
.update{border-top:3px double var(--bd);margin-top:2em}
figure{margin:1em 0;break-inside:avoid}figcaption{color:var(--mut);font-size:.9em}
svg{max-width:100%;height:auto}
.phase{break-inside:avoid-page}
footer{color:var(--mut);font-size:.85em;margin-top:2em}
@media (max-width:600px){body{font-size:14px;padding:8px}th,td{padding:3px 5px}}
@media print{body{max-width:none;font-size:11pt;color:#000;background:#fff}.tw{overflow:visible}h2{break-after:avoid}a{color:inherit}}
"#;

/// The HTML page of a report, with its charts inline.
pub fn render(r: &Report, charts: &[RenderedChart]) -> String {
    render_document(&document::of_report(r, charts))
}

/// Any document as a page.
pub fn render_document(doc: &Document) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>{}</title><style>{CSS}</style></head><body>\n",
        doc.lang.code(),
        esc(&doc.title)
    );
    blocks(&mut out, &doc.blocks);
    out.push_str("</body></html>\n");
    out
}

fn blocks(out: &mut String, list: &[Block]) {
    for b in list {
        block(out, b);
        out.push('\n');
    }
}

fn block(out: &mut String, b: &Block) {
    match b {
        Block::Heading { level, text } => {
            let _ = write!(out, "<h{level}>");
            spans(out, text);
            let _ = write!(out, "</h{level}>");
        }
        Block::Facts(facts) => {
            out.push_str("<ul class=\"meta\">");
            for (label, value) in facts {
                let _ = write!(out, "<li>{}: ", esc(label));
                spans(out, value);
                out.push_str("</li>");
            }
            out.push_str("</ul>");
        }
        Block::Paragraph(text) => {
            out.push_str("<p>");
            spans(out, text);
            out.push_str("</p>");
        }
        Block::List { numbered, items } => {
            let tag = if *numbered { "ol" } else { "ul" };
            let _ = write!(out, "<{tag}>");
            for item in items {
                out.push_str("<li>");
                spans(out, &item.text);
                if !item.children.is_empty() {
                    out.push_str("<ul>");
                    for c in &item.children {
                        out.push_str("<li>");
                        spans(out, c);
                        out.push_str("</li>");
                    }
                    out.push_str("</ul>");
                }
                out.push_str("</li>");
            }
            let _ = write!(out, "</{tag}>");
        }
        // Alignment is the stylesheet's: the first column left, numbers right.
        Block::Table { head, rows, .. } => {
            out.push_str("<div class=\"tw\"><table><thead><tr>");
            for h in head {
                out.push_str("<th>");
                spans(out, h);
                out.push_str("</th>");
            }
            out.push_str("</tr></thead><tbody>");
            for r in rows {
                out.push_str("<tr>");
                for c in r {
                    out.push_str("<td>");
                    spans(out, c);
                    out.push_str("</td>");
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table></div>");
        }
        Block::Charts { heading, charts } => {
            if charts.is_empty() {
                return;
            }
            out.push_str("<h2>");
            spans(out, heading);
            out.push_str("</h2>");
            for c in charts {
                // The SVG is built by `svg::render`, which escapes every label itself.
                let _ = write!(
                    out,
                    "<figure>{}<figcaption>{}</figcaption></figure>",
                    c.svg,
                    esc(&c.title)
                );
            }
        }
        Block::Section { class, blocks: inner } => {
            let _ = writeln!(out, "<section class=\"{}\">", esc(class));
            blocks(out, inner);
            out.push_str("</section>");
        }
        Block::Footer(text) => {
            out.push_str("<footer>");
            spans(out, text);
            out.push_str("</footer>");
        }
    }
}

/// Our status icons as CSS badges, so a machine without an emoji font shows them too (the
/// Markdown keeps the emoji); the rest of our text escaped.
const BADGES: [(&str, &str, &str); 3] = [("✅", "pass", "✓"), ("⚠️", "near", "!"), ("❌", "fail", "✗")];

fn own_html(out: &mut String, t: &str) {
    let mut rest = t;
    'outer: while !rest.is_empty() {
        for (icon, class, mark) in BADGES {
            if let Some(i) = rest.find(icon) {
                // The earliest icon first: cut before it only if no other icon comes sooner.
                if BADGES.iter().any(|(o, _, _)| rest.find(o).is_some_and(|j| j < i)) {
                    continue;
                }
                out.push_str(&esc(&rest[..i]));
                let _ = write!(
                    out,
                    "<span class=\"badge {class}\" role=\"img\" aria-label=\"{class}\">{mark}</span>"
                );
                rest = &rest[i + icon.len()..];
                continue 'outer;
            }
        }
        out.push_str(&esc(rest));
        break;
    }
}

fn spans(out: &mut String, text: &[Span]) {
    for s in text {
        match s {
            Span::Text(t) => out.push_str(&esc(t)),
            Span::Own(t) => own_html(out, t),
            Span::Strong(inner) => {
                out.push_str("<b>");
                spans(out, inner);
                out.push_str("</b>");
            }
            Span::Code(t) | Span::Verbatim(t) => {
                let _ = write!(out, "<code>{}</code>", esc(t));
            }
            Span::Class(class, inner) => {
                let _ = write!(out, "<span class=\"{}\">", esc(class));
                spans(out, inner);
                out.push_str("</span>");
            }
        }
    }
}

#[cfg(test)]
mod badge_tests {
    #[test]
    fn status_icons_become_badges_and_the_rest_is_escaped() {
        let mut out = String::new();
        super::own_html(&mut out, "p95 ✅ <b> ⚠️ near ❌");
        assert_eq!(
            out,
            "p95 <span class=\"badge pass\" role=\"img\" aria-label=\"pass\">✓</span> &lt;b&gt; <span class=\"badge near\" role=\"img\" aria-label=\"near\">!</span> near <span class=\"badge fail\" role=\"img\" aria-label=\"fail\">✗</span>"
        );
    }
}
