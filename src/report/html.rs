//! HTML: one self-contained file (inline CSS and SVG, no script, nothing fetched), light and
//! dark, readable on a phone, printable. Every value from the plan or the target goes through
//! [`esc`]; the Content-Security-Policy forbids scripts and network access as a second line of
//! defence.

use std::fmt::Write as _;

use super::charts::RenderedChart;
use super::escape::html as esc;
use super::model::{memory, Report, Status};
use super::terminal::{count, ms, pct};
use crate::analysis::PhaseSummary;

const CSS: &str = r#"
:root{--fg:#1f2328;--bg:#fff;--mut:#59636e;--bd:#d1d9e0;--alt:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#d1242f}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--mut:#9198a1;--bd:#3d444d;--alt:#161b22;--ok:#3fb950;--warn:#d29922;--bad:#f85149}}
*{box-sizing:border-box}
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
.rating{font-weight:700}
figure{margin:1em 0;break-inside:avoid}figcaption{color:var(--mut);font-size:.9em}
svg{max-width:100%;height:auto}
.phase{break-inside:avoid-page}
footer{color:var(--mut);font-size:.85em;margin-top:2em}
@media (max-width:600px){body{font-size:14px;padding:8px}th,td{padding:3px 5px}}
@media print{body{max-width:none;font-size:11pt;color:#000;background:#fff}.tw{overflow:visible}h2{break-after:avoid}a{color:inherit}}
"#;

/// A table: header cells and body rows, all already escaped or formatted by us.
fn table(out: &mut String, head: &[String], rows: &[Vec<String>]) {
    out.push_str("<div class=\"tw\"><table><thead><tr>");
    for h in head {
        let _ = write!(out, "<th>{h}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for r in rows {
        out.push_str("<tr>");
        for c in r {
            let _ = write!(out, "<td>{c}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
}

fn heads(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| esc(s)).collect()
}

fn status_cell(s: Status) -> String {
    let class = match s {
        Status::Pass => "s-pass",
        Status::Near => "s-near",
        Status::Fail => "s-fail",
    };
    format!("<span class=\"{class}\">{} {}</span>", s.icon(), esc(s.word()))
}

fn phase_section(out: &mut String, i: usize, p: &PhaseSummary, r: &Report) {
    let _ = write!(out, "<section class=\"phase\"><h3>{}. {}</h3><ul>", i + 1, esc(&p.name));
    let _ = write!(
        out,
        "<li><b>Configuration</b>: {} — {}</li>",
        esc(&p.model),
        esc(&p.description)
    );
    let _ = write!(
        out,
        "<li><b>Measured</b>: {:.1}s, {} requests, {:.1} req/s, {} iterations, up to {} VUs, {} dropped arrivals</li>",
        p.duration_s,
        count(p.requests),
        p.rps,
        count(p.iterations),
        p.vus_max,
        count(p.dropped_iterations)
    );
    let pr = r.phases.iter().find(|x| x.name == p.name);
    if let Some(pr) = pr {
        let _ = write!(
            out,
            "<li><b>Assessment</b>: <span class=\"rating\">{}</span>: {}</li>",
            esc(&pr.rating),
            esc(&pr.assessment)
        );
    }
    out.push_str("</ul>");
    let rows: Vec<Vec<String>> = p
        .steps
        .iter()
        .map(|s| {
            let mut c = vec![esc(&s.name)];
            match &s.latency_ms {
                Some(l) => c.extend([l.avg, l.p50, l.p95, l.p99, l.max].iter().map(|v| esc(&ms(*v)))),
                None => c.extend(std::iter::repeat_n("-".to_string(), 5)),
            }
            c.push(esc(&pct(1.0 - s.error_rate)));
            c.push(format!("{:.1}", s.rps));
            c.push(esc(&count(s.requests)));
            c
        })
        .collect();
    table(
        out,
        &heads(&[
            "Endpoint", "avg", "p50", "p95", "p99", "max", "success", "req/s", "requests",
        ]),
        &rows,
    );
    if let Some(pr) = pr.filter(|pr| pr.errors.total > 0) {
        let _ = write!(out, "<p><b>Errors</b>: {}</p>", esc(&pr.errors.explanation));
        let rows: Vec<Vec<String>> = pr
            .errors
            .rows
            .iter()
            .map(|e| {
                vec![
                    esc(&e.step),
                    esc(&e.kind),
                    esc(&e.class),
                    esc(&count(e.count)),
                    esc(&pct(e.share)),
                ]
            })
            .collect();
        table(
            out,
            &heads(&["Endpoint", "Error", "Class", "Count", "Share of endpoint"]),
            &rows,
        );
        let samples: Vec<String> = p
            .steps
            .iter()
            .flat_map(|s| {
                s.error_samples
                    .iter()
                    .map(move |m| format!("<li><b>{}</b>: <code>{}</code></li>", esc(&s.name), esc(m)))
            })
            .collect();
        if !samples.is_empty() {
            let _ = write!(
                out,
                "<p>Sample error messages, as the target gave them:</p><ul>{}</ul>",
                samples.concat()
            );
        }
    }
    if !p.server.is_empty() {
        out.push_str("<p><b>Server metrics</b></p>");
        let rows: Vec<Vec<String>> = p
            .server
            .iter()
            .map(|m| {
                let u = esc(&m.unit);
                vec![
                    esc(&m.name),
                    format!("{:.0}-{:.0}{u}", m.min, m.max),
                    format!("{:.1}{u}", m.min),
                    format!("{:.1}{u}", m.avg),
                    format!("{:.1}{u}", m.max),
                ]
            })
            .collect();
        table(out, &heads(&["Metric", "range", "min", "avg", "max"]), &rows);
    }
    out.push_str("</section>\n");
}

pub fn render(r: &Report, charts: &[RenderedChart]) -> String {
    let s = &r.summary;
    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"color-scheme\" content=\"light dark\">\
<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
<title>{}</title><style>{CSS}</style></head><body>\n",
        esc(&r.title)
    );
    let _ = write!(out, "<h1>{}</h1><ul class=\"meta\">", esc(&r.title));
    let _ = write!(out, "<li>Date: {}</li>", esc(&r.date));
    if let Some(t) = &r.target {
        let _ = write!(out, "<li>Target: {}</li>", esc(t));
    }
    let _ = write!(out, "<li>Plan: {} ({})</li>", esc(&r.plan), esc(&r.plan_file));
    let _ = write!(out, "<li>Phases run: {}</li>", esc(&r.phases_run.join(", ")));
    let e = &r.environment;
    let _ = write!(
        out,
        "<li>Environment: stampede {} on {} ({}), {} cores, {} memory, {} load threads, segment {}</li>",
        esc(&e.tool_version),
        esc(&e.host),
        esc(&e.os),
        e.cores,
        esc(&memory(e.memory_bytes)),
        e.workers,
        esc(&e.segment)
    );
    for n in &r.notes {
        let _ = write!(out, "<li>Note: {}</li>", esc(n));
    }
    out.push_str("</ul>\n");
    let verdict_class = match r.verdict {
        crate::analysis::Verdict::Passed => "passed",
        crate::analysis::Verdict::PassedWithConditions => "passed_with_conditions",
        crate::analysis::Verdict::Failed => "failed",
    };
    let _ = write!(
        out,
        "<h2>Verdict: <span class=\"verdict v-{verdict_class}\">{}</span></h2><ul>",
        esc(&r.verdict_label)
    );
    for f in &r.failures {
        let _ = write!(out, "<li>❌ {}</li>", esc(f));
    }
    for c in &r.conditions {
        let _ = write!(out, "<li>⚠️ {}</li>", esc(c));
    }
    if r.failures.is_empty() && r.conditions.is_empty() {
        out.push_str("<li>Every threshold passed, with more than 10% to spare.</li>");
    }
    out.push_str("</ul>\n<h2>Executive summary</h2>");
    let mut head = vec![esc("Metric")];
    head.extend(r.executive.phases.iter().map(|p| esc(p)));
    head.push(esc("Target"));
    let rows: Vec<Vec<String>> = r
        .executive
        .rows
        .iter()
        .map(|er| {
            let mut c = vec![format!("<b>{}</b>", esc(&er.metric))];
            c.extend(er.cells.iter().map(|x| esc(x)));
            c.push(if er.target.is_empty() {
                "-".into()
            } else {
                esc(&er.target)
            });
            c
        })
        .collect();
    table(&mut out, &head, &rows);
    if !r.sla.is_empty() {
        out.push_str("<h2>SLA</h2>");
        let rows: Vec<Vec<String>> = r
            .sla
            .iter()
            .map(|t| {
                let expr = match &t.step {
                    Some(st) if !t.expr.contains(st.as_str()) => format!("{} [{}]", esc(&t.expr), esc(st)),
                    _ => esc(&t.expr),
                };
                vec![
                    esc(&t.phase),
                    expr,
                    esc(&t.measured),
                    esc(&t.target),
                    status_cell(t.status),
                ]
            })
            .collect();
        table(
            &mut out,
            &heads(&["Phase", "Threshold", "Measured", "Target", "Status"]),
            &rows,
        );
    }
    if !charts.is_empty() {
        out.push_str("<h2>Charts</h2>");
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
    out.push_str("<h2>Phases</h2>\n");
    for (i, p) in s.phases.iter().enumerate() {
        phase_section(&mut out, i, p, r);
    }
    if let Some(c) = &s.capacity {
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        let _ = write!(
            out,
            "<h2>Capacity</h2><p>{}</p><p>SLO capacity: {} · saturation: {} · recommended: {} · peak throughput: {:.1} req/s</p>",
            esc(&c.statement),
            fmt(c.slo_capacity),
            fmt(c.saturation),
            fmt(c.recommended),
            c.peak_throughput_rps
        );
        let rows: Vec<Vec<String>> = c
            .steps
            .iter()
            .map(|st| {
                vec![
                    format!("{:.0}", st.load),
                    format!("{:.1}", st.throughput_rps),
                    esc(&ms(st.avg_ms)),
                    esc(&ms(st.p95_ms)),
                    esc(&ms(st.p99_ms)),
                    esc(&pct(st.error_rate)),
                    if st.slo_passed { "✅".into() } else { "❌".into() },
                ]
            })
            .collect();
        table(
            &mut out,
            &heads(&["Load", "req/s", "avg", "p95", "p99", "errors", "SLO"]),
            &rows,
        );
        if !c.projections.is_empty() {
            out.push_str("<ul>");
            for p in &c.projections {
                let _ = write!(out, "<li>Projection (model estimate): {}</li>", esc(p));
            }
            out.push_str("</ul>");
        }
    }
    if !s.findings.is_empty() {
        out.push_str("<h2>Bottlenecks and recommendations</h2><ol>");
        let mut f: Vec<_> = s.findings.iter().collect();
        let rank = |p: &str| match p {
            "critical" => 0,
            "high" => 1,
            "medium" => 2,
            _ => 3,
        };
        f.sort_by_key(|x| rank(&x.priority));
        for x in f {
            let _ = write!(out, "<li><b>[{}] {}</b><ul>", esc(&x.priority), esc(&x.title));
            for ev in &x.evidence {
                let _ = write!(out, "<li>{}</li>", esc(ev));
            }
            let _ = write!(out, "<li>Recommendation: {}</li></ul></li>", esc(&x.recommendation));
        }
        out.push_str("</ol>");
    }
    if !s.warnings.is_empty() {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in &s.warnings {
            let _ = write!(out, "<li>{}</li>", esc(w));
        }
        out.push_str("</ul>");
    }
    let _ = write!(
        out,
        "<footer>Generated by stampede {} from the run directory; <code>stampede report</code> rebuilds it.</footer>\n</body></html>\n",
        esc(&r.environment.tool_version)
    );
    out
}
