//! The terminal: a live progress line while a phase runs, and the end-of-run tables.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use stampede_plan::Metric;

use crate::analysis::{Capacity, CapacityStep, LatencyMs, PhaseSummary, Summary};

/// Formats milliseconds for people: `850µs`, `12.3ms`, `1.26s`.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{:.0}µs", v * 1000.0)
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else if v < 1000.0 {
        format!("{v:.0}ms")
    } else {
        format!("{:.2}s", v / 1000.0)
    }
}

pub fn pct(v: f64) -> String {
    if v == 0.0 {
        "0%".into()
    } else if v < 0.001 {
        format!("{:.3}%", v * 100.0)
    } else {
        format!("{:.2}%", v * 100.0)
    }
}

/// Thousands separators: 15968 → 15,968.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn table(rows: &[Vec<String>], right: &[bool]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let width: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, r) in rows.iter().enumerate() {
        out.push_str("  ");
        for (c, cell) in r.iter().enumerate() {
            let pad = width[c] - cell.chars().count();
            if right.get(c).copied().unwrap_or(false) {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            }
            if c + 1 < r.len() {
                out.push_str("  ");
            }
        }
        out = out.trim_end().to_string();
        out.push('\n');
        if i == 0 {
            out.push_str("  ");
            out.push_str(&"─".repeat(width.iter().sum::<usize>() + 2 * (cols.saturating_sub(1))));
            out.push('\n');
        }
    }
    out
}

fn lat_cells(l: &Option<LatencyMs>) -> Vec<String> {
    match l {
        Some(l) => [l.avg, l.p50, l.p90, l.p95, l.p99, l.max]
            .iter()
            .map(|v| ms(*v))
            .collect(),
        None => vec!["-".into(); 6],
    }
}

/// A WebSocket step's connections and messages in one line.
pub fn ws_line(w: &crate::rundir::summary::WsSummary) -> String {
    let mut line = format!(
        "WebSocket: {} connections ({} failed), {} messages sent, {} received, {} lost ({}), {} pushes",
        count(w.connections),
        count(w.connect_failed),
        count(w.messages_sent),
        count(w.messages_received),
        count(w.lost),
        pct(w.lost_rate),
        count(w.pushes),
    );
    if w.dropped_connections > 0 {
        let codes: Vec<String> = w.close_codes.iter().map(|(c, n)| format!("{c}×{n}")).collect();
        line.push_str(&format!(
            ", {} dropped (close codes {}), {} reconnected",
            count(w.dropped_connections),
            codes.join(" "),
            count(w.reconnects)
        ));
        if let Some(ms) = w.reconnect_ms_avg {
            line.push_str(&format!(" in {ms:.0} ms on average"));
        }
    }
    if w.sequence_gaps + w.duplicates > 0 {
        line.push_str(&format!(
            ", {} sequence numbers missed, {} duplicates",
            count(w.sequence_gaps),
            count(w.duplicates)
        ));
    }
    line
}

fn top_errors(kinds: &std::collections::BTreeMap<String, u64>) -> String {
    let mut v: Vec<_> = kinds.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(3)
        .map(|(k, n)| format!("{k}×{}", count(**n)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render_phase(p: &PhaseSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "phase {} — {} — {:.1}s, {} requests, {:.1} req/s, {} iterations, errors {}{}{}",
        p.name,
        p.description,
        p.duration_s,
        count(p.requests),
        p.rps,
        count(p.iterations),
        pct(p.error_rate),
        if p.dropped_iterations > 0 {
            format!(", {} dropped arrivals", count(p.dropped_iterations))
        } else {
            String::new()
        },
        if p.connect_backoffs > 0 {
            format!(
                ", {} back-offs after failed connects ({:.1}s)",
                count(p.connect_backoffs),
                p.connect_backoff_s
            )
        } else {
            String::new()
        }
    );
    let mut rows = vec![[
        "step",
        "requests",
        "req/s",
        "avg",
        "p50",
        "p90",
        "p95",
        "p99",
        "max",
        "errors",
        "top errors",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect::<Vec<_>>()];
    for s in &p.steps {
        let mut r = vec![s.name.clone(), count(s.requests), format!("{:.1}", s.rps)];
        r.extend(lat_cells(&s.latency_ms));
        r.push(pct(s.error_rate));
        r.push(top_errors(&s.errors_by_kind));
        rows.push(r);
    }
    out.push_str(&table(
        &rows,
        &[false, true, true, true, true, true, true, true, true, true, false],
    ));
    for s in &p.steps {
        if let Some(d) = &s.dns {
            let _ = writeln!(
                out,
                "  {}: DNS: {} per connection ({} connections, {} lookups, the rest cached)",
                s.name,
                ms(d.avg_ms),
                count(d.connections),
                count(d.lookups)
            );
        }
        if let Some(w) = &s.ws {
            let _ = writeln!(out, "  {}: {}", s.name, ws_line(w));
        }
        if let Some(q) = &s.sql {
            let plan = match &q.explain {
                Some(e) if !e.seq_scan_tables.is_empty() => {
                    format!(", {} (Seq Scan on {})", e.plan, e.seq_scan_tables.join(", "))
                }
                Some(e) => format!(", {}", e.plan),
                None => String::new(),
            };
            let _ = writeln!(out, "  {}: SQL: {} rows{plan}", s.name, count(q.rows));
        }
    }
    for t in &p.thresholds {
        let mark = if !t.passed {
            "✗"
        } else if t.near_limit {
            "!"
        } else {
            "✓"
        };
        let value = match t.value {
            None => "no data".to_string(),
            Some(v) => match crate::describe::metric_named(&t.metric) {
                Some(Metric::ErrorRate | Metric::WsLostRate | Metric::ConnectFailed) => pct(v),
                Some(Metric::Rps) => format!("{v:.1}/s"),
                _ => ms(v),
            },
        };
        let _ = writeln!(out, "  {mark} {} (measured {value})", t.expr);
    }
    out
}

pub fn render_summary(s: &Summary) -> String {
    let mut out = String::new();
    if let Some(n) = &s.note {
        let _ = writeln!(out, "note: {n}");
    }
    for p in &s.phases {
        out.push_str(&render_phase(p));
        out.push('\n');
    }
    for w in &s.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    out.push_str(&render_findings(s));
    let _ = writeln!(out, "verdict: {}", s.verdict.label());
    for c in &s.conditions {
        let _ = writeln!(out, "  - {c}");
    }
    if let Some((c, estimate)) = s.capacity_answer() {
        out.push('\n');
        out.push_str(&render_capacity(c));
        if let Some(e) = estimate {
            let _ = writeln!(out, "basis: {}\nuncertainty: {}", e.basis, e.uncertainty);
        }
    }
    out
}

/// One line per capacity step as it is measured (progress on stderr).
pub fn render_capacity_step(s: &CapacityStep) -> String {
    format!(
        "step {}: {:.1} req/s, p95 {}, errors {} {}",
        s.phase,
        s.throughput_rps,
        ms(s.p95_ms),
        pct(s.error_rate),
        if s.slo_passed {
            "✓".to_string()
        } else {
            format!("✗ ({})", s.breached.join(", "))
        }
    )
}

/// The capacity search's result: the step table, the USL fit, the projections, the statement.
pub fn render_capacity(c: &Capacity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "capacity of {} ({} model, SLO {})",
        c.scenario,
        c.model,
        c.slo.join(", ")
    );
    let mut steps: Vec<&CapacityStep> = c.steps.iter().collect();
    steps.sort_by(|a, b| a.load.total_cmp(&b.load));
    let unit = if c.unit.is_empty() { "load" } else { c.unit.as_str() };
    let mut rows = vec![[unit, "req/s", "avg", "p50", "p95", "p99", "errors", "SLO"]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for s in steps {
        rows.push(vec![
            format!("{}", s.load),
            format!("{:.1}", s.throughput_rps),
            ms(s.avg_ms),
            ms(s.p50_ms),
            ms(s.p95_ms),
            ms(s.p99_ms),
            pct(s.error_rate),
            if s.slo_passed { "✓".into() } else { "✗".into() },
        ]);
    }
    out.push_str(&table(&rows, &[true, true, true, true, true, true, true, false]));
    let opt = |v: Option<f64>| v.map(|x| format!("{x}")).unwrap_or_else(|| "-".into());
    let _ =
        writeln!(
        out,
        "SLO capacity: {}{}   saturation (knee): {}   peak throughput: {:.1} req/s   recommended: {} ({:.0}% margin)",
        opt(c.slo_capacity),
        if c.slo_capacity_is_lower_bound { " (at least)" } else { "" },
        opt(c.saturation),
        c.peak_throughput_rps,
        opt(c.recommended),
        c.margin * 100.0
    );
    if let Some(u) = &c.usl {
        let _ = writeln!(
            out,
            "USL fit: σ = {:.4}, κ = {:.6}, λ = {:.2} req/s, R² = {:.3} ({}){}",
            u.sigma,
            u.kappa,
            u.lambda,
            u.r2,
            u.quality,
            u.peak_concurrency
                .map(|n| format!(", peak at N ≈ {n:.1}"))
                .unwrap_or_default()
        );
    }
    for p in &c.projections {
        let _ = writeln!(out, "what if: {p}");
    }
    if !c.stop_reason.is_empty() {
        let _ = writeln!(out, "search ended: {}", c.stop_reason);
    }
    let _ = writeln!(out, "{}", c.statement);
    out
}

/// Findings, most urgent first: title, evidence, what to do. Short: the reports say more.
pub fn render_findings(s: &Summary) -> String {
    let mut out = String::new();
    if s.findings.is_empty() {
        return out;
    }
    let _ = writeln!(out, "findings:");
    for f in &s.findings {
        let _ = writeln!(out, "  [{}] {}", f.priority.as_str().to_uppercase(), f.title);
        for e in &f.evidence {
            let _ = writeln!(out, "      {e}");
        }
        let _ = writeln!(out, "      -> {}", f.recommendation);
    }
    out
}

/// The live line: redrawn in place on a terminal, a plain line every few seconds otherwise.
pub struct Progress {
    tty: bool,
    every: Duration,
    last: Option<Instant>,
    drawn: bool,
}

impl Progress {
    pub fn new() -> Progress {
        Progress {
            tty: std::io::stderr().is_terminal(),
            every: Duration::from_secs(5),
            last: None,
            drawn: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        phase: &str,
        elapsed: f64,
        total: f64,
        vus: u64,
        rps: f64,
        p95_ms: Option<f64>,
        error_rate: f64,
    ) {
        let line = format!(
            "{phase}: {:>4.0}s/{:.0}s  VUs {vus:>5}  {rps:>8.1} req/s  p95 {:>8}  errors {}",
            elapsed,
            total,
            p95_ms.map(ms).unwrap_or_else(|| "-".into()),
            pct(error_rate)
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            self.drawn = true;
        } else if self.last.is_none_or(|l| l.elapsed() >= self.every) {
            let _ = writeln!(err, "{line}");
            self.last = Some(Instant::now());
        }
    }

    /// Ends the live line (before other output).
    pub fn finish(&mut self) {
        if self.tty && self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
        self.last = None;
    }
}

impl Default for Progress {
    fn default() -> Self {
        Progress::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(0.85), "850µs");
        assert_eq!(ms(12.34), "12.3ms");
        assert_eq!(ms(1258.0), "1.26s");
        assert_eq!(count(15968), "15,968");
        assert_eq!(count(100), "100");
        assert_eq!(pct(0.46), "46.00%");
    }
}
