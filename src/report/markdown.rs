//! Markdown: reads well on GitHub and in a terminal. Charts are SVG files in `charts/` beside
//! the Markdown file, linked as images. Every value from the plan or the target goes through
//! [`md`]; numbers are formatted by us.

use std::fmt::Write as _;

use super::charts::RenderedChart;
use super::escape::md;
use super::model::{memory, Report};
use super::terminal::{count, ms, pct};
use crate::analysis::PhaseSummary;

fn row(out: &mut String, cells: &[String]) {
    out.push('|');
    for c in cells {
        let _ = write!(out, " {c} |");
    }
    out.push('\n');
}

fn header(out: &mut String, cells: &[&str], right_from: usize) {
    row(out, &cells.iter().map(|c| c.to_string()).collect::<Vec<_>>());
    out.push('|');
    for i in 0..cells.len() {
        out.push_str(if i >= right_from { " ---: |" } else { " --- |" });
    }
    out.push('\n');
}

fn phase_section(out: &mut String, i: usize, p: &PhaseSummary, r: &Report) {
    let _ = writeln!(out, "### {}. {}\n", i + 1, md(&p.name));
    let _ = writeln!(out, "- **Configuration**: {} — {}", md(&p.model), md(&p.description));
    let _ = writeln!(
        out,
        "- **Measured**: {:.1}s, {} requests, {:.1} req/s, {} iterations, up to {} VUs, {} dropped arrivals",
        p.duration_s,
        count(p.requests),
        p.rps,
        count(p.iterations),
        p.vus_max,
        count(p.dropped_iterations)
    );
    if let Some(pr) = r.phases.iter().find(|x| x.name == p.name) {
        let _ = writeln!(out, "- **Assessment**: **{}**: {}", md(&pr.rating), md(&pr.assessment));
    }
    out.push('\n');
    header(
        out,
        &[
            "Endpoint", "avg", "p50", "p95", "p99", "max", "success", "req/s", "requests",
        ],
        1,
    );
    for s in &p.steps {
        let mut cells = vec![md(&s.name)];
        match &s.latency_ms {
            Some(l) => cells.extend([l.avg, l.p50, l.p95, l.p99, l.max].iter().map(|v| ms(*v))),
            None => cells.extend(std::iter::repeat_n("-".to_string(), 5)),
        }
        cells.push(pct(1.0 - s.error_rate));
        cells.push(format!("{:.1}", s.rps));
        cells.push(count(s.requests));
        row(out, &cells);
    }
    out.push('\n');
    if let Some(pr) = r.phases.iter().find(|x| x.name == p.name) {
        if pr.errors.total > 0 {
            let _ = writeln!(out, "**Errors**: {}\n", md(&pr.errors.explanation));
            header(out, &["Endpoint", "Error", "Class", "Count", "Share of endpoint"], 3);
            for e in &pr.errors.rows {
                row(
                    out,
                    &[md(&e.step), md(&e.kind), md(&e.class), count(e.count), pct(e.share)],
                );
            }
            out.push('\n');
            let samples: Vec<(&str, &String)> = p
                .steps
                .iter()
                .flat_map(|s| s.error_samples.iter().map(move |m| (s.name.as_str(), m)))
                .collect();
            if !samples.is_empty() {
                let _ = writeln!(out, "Sample error messages, as the target gave them:\n");
                for (step, m) in samples {
                    let _ = writeln!(out, "- {}: {}", md(step), md(m));
                }
                out.push('\n');
            }
        }
    }
    if !p.server.is_empty() {
        let _ = writeln!(out, "**Server metrics**:\n");
        header(out, &["Metric", "range", "min", "avg", "max"], 1);
        for m in &p.server {
            let u = md(&m.unit);
            row(
                out,
                &[
                    md(&m.name),
                    format!("{:.0}-{:.0}{u}", m.min, m.max),
                    format!("{:.1}{u}", m.min),
                    format!("{:.1}{u}", m.avg),
                    format!("{:.1}{u}", m.max),
                ],
            );
        }
        out.push('\n');
    }
}

/// The Markdown text; `charts_dir` is the relative directory the chart files are linked from
/// (None: no chart links, e.g. when only the text is wanted).
pub fn render(r: &Report, charts: &[RenderedChart], charts_dir: Option<&str>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let s = &r.summary;
    let _ = writeln!(out, "# {}\n", md(&r.title));
    let _ = writeln!(out, "- **Date**: {}", md(&r.date));
    if let Some(t) = &r.target {
        let _ = writeln!(out, "- **Target**: {}", md(t));
    }
    let _ = writeln!(out, "- **Plan**: {} ({})", md(&r.plan), md(&r.plan_file));
    let _ = writeln!(out, "- **Phases run**: {}", md(&r.phases_run.join(", ")));
    let e = &r.environment;
    let _ = writeln!(
        out,
        "- **Environment**: stampede {} on {} ({}), {} cores, {} memory, {} load threads, segment {}",
        md(&e.tool_version),
        md(&e.host),
        md(&e.os),
        e.cores,
        memory(e.memory_bytes),
        e.workers,
        md(&e.segment)
    );
    for n in &r.notes {
        let _ = writeln!(out, "- **Note**: {}", md(n));
    }
    let _ = writeln!(out, "\n## Verdict: {}\n", r.verdict_label);
    for f in &r.failures {
        let _ = writeln!(out, "- ❌ {}", md(f));
    }
    for c in &r.conditions {
        let _ = writeln!(out, "- ⚠️ {}", md(c));
    }
    if r.failures.is_empty() && r.conditions.is_empty() {
        let _ = writeln!(out, "Every threshold passed, with more than 10% to spare.");
    }
    let _ = writeln!(out, "\n## Executive summary\n");
    let mut cols = vec!["Metric".to_string()];
    cols.extend(r.executive.phases.iter().map(|p| md(p)));
    cols.push("Target".into());
    row(&mut out, &cols);
    out.push('|');
    for i in 0..cols.len() {
        out.push_str(if i == 0 { " --- |" } else { " ---: |" });
    }
    out.push('\n');
    for er in &r.executive.rows {
        let mut cells = vec![format!("**{}**", md(&er.metric))];
        cells.extend(er.cells.iter().map(|c| md(c)));
        cells.push(if er.target.is_empty() {
            "-".into()
        } else {
            md(&er.target)
        });
        row(&mut out, &cells);
    }
    if !r.sla.is_empty() {
        let _ = writeln!(out, "\n## SLA\n");
        header(&mut out, &["Phase", "Threshold", "Measured", "Target", "Status"], 2);
        for t in &r.sla {
            let expr = match &t.step {
                Some(st) if !t.expr.contains(st.as_str()) => format!("{} [{}]", md(&t.expr), md(st)),
                _ => md(&t.expr),
            };
            row(
                &mut out,
                &[
                    md(&t.phase),
                    expr,
                    md(&t.measured),
                    md(&t.target),
                    format!("{} {}", t.status.icon(), t.status.word()),
                ],
            );
        }
    }
    if let (Some(dir), false) = (charts_dir, charts.is_empty()) {
        let _ = writeln!(out, "\n## Charts\n");
        for c in charts {
            let _ = writeln!(out, "![{}]({dir}/{}.svg)\n", md(&c.title), c.stem);
        }
    }
    let _ = writeln!(out, "\n## Phases\n");
    for (i, p) in s.phases.iter().enumerate() {
        phase_section(&mut out, i, p, r);
    }
    if let Some(c) = &s.capacity {
        let _ = writeln!(out, "## Capacity\n\n{}\n", md(&c.statement));
        let fmt = |v: Option<f64>| v.map(|v| format!("{v:.0}")).unwrap_or_else(|| "-".into());
        let _ = writeln!(
            out,
            "- SLO capacity: {} · saturation: {} · recommended: {} · peak throughput: {:.1} req/s\n",
            fmt(c.slo_capacity),
            fmt(c.saturation),
            fmt(c.recommended),
            c.peak_throughput_rps
        );
        header(&mut out, &["Load", "req/s", "avg", "p95", "p99", "errors", "SLO"], 0);
        for st in &c.steps {
            row(
                &mut out,
                &[
                    format!("{:.0}", st.load),
                    format!("{:.1}", st.throughput_rps),
                    ms(st.avg_ms),
                    ms(st.p95_ms),
                    ms(st.p99_ms),
                    pct(st.error_rate),
                    if st.slo_passed { "✅".into() } else { "❌".into() },
                ],
            );
        }
        for pr in &c.projections {
            let _ = writeln!(out, "- Projection (model estimate): {}", md(pr));
        }
        out.push('\n');
    }
    if !s.findings.is_empty() {
        let _ = writeln!(out, "## Bottlenecks and recommendations\n");
        let mut f: Vec<_> = s.findings.iter().collect();
        let rank = |p: &str| match p {
            "critical" => 0,
            "high" => 1,
            "medium" => 2,
            _ => 3,
        };
        f.sort_by_key(|x| rank(&x.priority));
        for (i, x) in f.iter().enumerate() {
            let _ = writeln!(out, "{}. **[{}] {}**", i + 1, md(&x.priority), md(&x.title));
            for ev in &x.evidence {
                let _ = writeln!(out, "   - {}", md(ev));
            }
            let _ = writeln!(out, "   - Recommendation: {}", md(&x.recommendation));
        }
        out.push('\n');
    }
    if !s.warnings.is_empty() {
        let _ = writeln!(out, "## Warnings\n");
        for w in &s.warnings {
            let _ = writeln!(out, "- {}", md(w));
        }
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "---\n_Generated by stampede {} from the run directory; `stampede report` rebuilds it._",
        md(&r.environment.tool_version)
    );
    out
}
