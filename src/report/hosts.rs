//! The report's "Hosts" section, shaped like the insurance seed's third-party integration test:
//! one row per origin the steps called (calls, success rate, average and p95 latency, rate
//! limits hit). Left out for a run against one origin that never rate-limited it.

use super::document::{own, table, text, title, Block};
use super::terminal::{count, ms, pct};
use crate::analysis::Summary;

pub fn blocks(s: &Summary) -> Vec<Block> {
    if s.hosts.len() < 2 && s.hosts.iter().all(|h| h.rate_limited == 0) {
        return Vec::new();
    }
    let rows = s
        .hosts
        .iter()
        .map(|h| {
            vec![
                vec![text(&h.host)],
                vec![own(count(h.requests))],
                vec![own(pct(h.success_rate))],
                vec![own(h.avg_ms.map_or("-".into(), ms))],
                vec![own(h.p95_ms.map_or("-".into(), ms))],
                vec![own(if h.rate_limited == 0 {
                    "Not hit".to_string()
                } else {
                    format!("{} × 429", count(h.rate_limited))
                })],
            ]
        })
        .collect();
    vec![
        title(2, "Hosts"),
        table(
            &[
                "Host",
                "Calls made",
                "Success rate",
                "Avg latency",
                "p95",
                "Rate limits",
            ],
            1,
            rows,
        ),
    ]
}
