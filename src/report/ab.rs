//! The report's A/B section, shaped like the insurance seed's cache test: per phase with
//! `variants:`, one row per endpoint (and the whole phase): the baseline's and the variant's
//! average latency, the improvement, the p95s, and whether the change is significant.
//! Interleaved variants say so in their heading, and their first row is all of the variants'
//! steps (the phase may run other scenarios beside them).

use super::document::{heading, own, table, text, title, Block};
use super::terminal::ms;
use crate::analysis::Summary;

pub fn blocks(s: &Summary) -> Vec<Block> {
    let mut out = Vec::new();
    for t in &s.variants {
        if out.is_empty() {
            out.push(title(2, "A/B variants"));
        }
        let mut h = vec![
            text(&t.phase),
            own(": "),
            text(&t.baseline),
            own(" vs "),
            text(&t.variant),
        ];
        if t.interleaved {
            h.push(own(" (interleaved)"));
        }
        out.push(heading(3, h));
        let all = if t.interleaved { "all steps" } else { "whole phase" };
        let opt = |v: Option<f64>| v.map_or("-".into(), ms);
        let rows = t
            .rows
            .iter()
            .map(|r| {
                vec![
                    vec![if r.step == "all" { own(all) } else { text(&r.step) }],
                    vec![own(opt(r.baseline_avg_ms))],
                    vec![own(opt(r.variant_avg_ms))],
                    vec![own(r.improvement_pct.map_or("-".into(), |p| format!("{p:.0}%")))],
                    vec![own(format!("{} → {}", opt(r.baseline_p95_ms), opt(r.variant_p95_ms)))],
                    vec![own(r.p_value.map_or("-".into(), |p| {
                        if p < 0.001 {
                            "< 0.001".into()
                        } else {
                            format!("{p:.3}")
                        }
                    }))],
                    vec![own(if r.significant { "yes" } else { "no" })],
                ]
            })
            .collect();
        let (b, v) = (format!("{} (avg)", t.baseline), format!("{} (avg)", t.variant));
        out.push(table(
            &["Endpoint", &b, &v, "Improvement", "p95", "p (Holm)", "Significant"],
            1,
            rows,
        ));
    }
    out
}
