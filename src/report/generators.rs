//! The report's Generators section for a merged run (`stampede merge`): one row per share, so
//! a reader sees which machine ran which segment and whether one of them, not the system, was
//! the trouble (a share that did not finish, failed more, dropped arrivals or recorded fewer
//! seconds than the others).

use super::document::{own, table, text, title, Block, Text};
use super::terminal::{count, pct};
use crate::rundir::Generator;

/// No blocks for a run made by one process.
pub fn blocks(generators: &[Generator]) -> Vec<Block> {
    if generators.is_empty() {
        return Vec::new();
    }
    let most_seconds = generators.iter().map(|g| g.seconds).max().unwrap_or(0);
    let rows = generators
        .iter()
        .map(|g| {
            let rate = if g.requests == 0 {
                0.0
            } else {
                g.errors as f64 / g.requests as f64
            };
            let mut health = Vec::new();
            if g.status != crate::rundir::RunStatus::Completed {
                health.push(g.status.as_str().to_string());
            }
            if g.seconds < most_seconds {
                health.push(format!("{} s fewer than the others", most_seconds - g.seconds));
            }
            if g.dropped > 0 {
                health.push(format!("{} arrivals dropped", count(g.dropped)));
            }
            if health.is_empty() {
                health.push("ok".into());
            }
            let cells: Vec<Text> = vec![
                vec![own(g.segment.to_string())],
                vec![text(&g.host)],
                vec![text(&g.started_at)],
                vec![text(health.join(", "))],
                vec![own(format!("{}", g.workers))],
                vec![own(count(g.requests))],
                vec![own(pct(rate))],
                vec![own(format!("{}", g.seconds))],
            ];
            cells
        })
        .collect();
    vec![
        title(2, "Generators"),
        table(
            &[
                "Segment",
                "Host",
                "Started",
                "Health",
                "Load threads",
                "Requests",
                "Errors",
                "Seconds",
            ],
            4,
            rows,
        ),
    ]
}
