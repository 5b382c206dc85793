//! The hosts table (the insurance seed's third-party test): one row per origin the steps
//! called, over the whole run, from the steps' merged aggregates and `meta.json`'s
//! `step_hosts`. `rate_limited` counts the 429s each origin answered.

use std::collections::BTreeMap;

use super::aggregate::{PhaseAgg, StepAgg};
use super::summary::{latency, HostRow};
use crate::rundir::RunMeta;

/// Rows in the order hosts were first called (by step order); empty when `meta.json` names no
/// step's host (run directories written before the table).
pub fn hosts(meta: &RunMeta, aggs: &[PhaseAgg]) -> Vec<HostRow> {
    let mut merged: Vec<(String, StepAgg, Vec<String>)> = Vec::new();
    let mut order: BTreeMap<&str, usize> = BTreeMap::new();
    for s in aggs.iter().flat_map(|a| &a.steps) {
        let Some(host) = meta.step_hosts.get(&s.name) else {
            continue;
        };
        let i = *order.entry(host.as_str()).or_insert_with(|| {
            merged.push((host.clone(), StepAgg::empty(host), Vec::new()));
            merged.len() - 1
        });
        let (_, agg, steps) = &mut merged[i];
        agg.add(s);
        if !steps.contains(&s.name) {
            steps.push(s.name.clone());
        }
    }
    merged
        .into_iter()
        .map(|(host, a, steps)| {
            let lat = latency(&a.latency);
            HostRow {
                host,
                requests: a.requests,
                errors: a.errors,
                success_rate: if a.requests == 0 {
                    0.0
                } else {
                    super::summary::rate(a.requests - a.errors, a.requests)
                },
                avg_ms: lat.as_ref().map(|l| l.avg),
                p95_ms: lat.as_ref().map(|l| l.p95),
                rate_limited: a.statuses.get(&429).copied().unwrap_or(0),
                steps,
            }
        })
        .collect()
}
