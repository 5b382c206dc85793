//! The merged run's `meta.json`.

use super::Share;
use crate::meta::{Generator, RunMeta, RunStatus, Segment};

/// The merged run's `meta.json`: the plan's facts from the first share, the hosts and
/// resources summed over all, the earliest start, the latest end, the worst status, and one
/// [`Generator`] per share (its counts filled in as the intervals are read).
pub(super) fn merged_meta(shares: &[Share], warnings: &mut Vec<String>) -> RunMeta {
    let first = &shares[0].meta;
    let metas: Vec<&RunMeta> = shares.iter().map(|s| &s.meta).collect();
    let mut hosts: Vec<&str> = Vec::new();
    for m in &metas {
        if !hosts.contains(&m.host.as_str()) {
            hosts.push(&m.host);
        }
    }
    let status = [RunStatus::Aborted, RunStatus::Interrupted, RunStatus::Running]
        .into_iter()
        .find(|st| metas.iter().any(|m| m.status == *st))
        .unwrap_or(RunStatus::Completed);
    for s in shares {
        if s.meta.status != RunStatus::Completed {
            warnings.push(format!(
                "segment {} ({}) is {}: the merged run is {}",
                s.meta.segment,
                s.dir.display(),
                s.meta.status.as_str(),
                status.as_str()
            ));
        }
    }
    // Shares given `+DURATION` each, or a time written twice, may differ by a few
    // milliseconds; more than a second apart, their seconds do not line up.
    let starts: Option<Vec<i64>> = metas
        .iter()
        .map(|m| m.start_at.as_deref().and_then(crate::time::parse_rfc3339_ms))
        .collect();
    let spread = starts.map(|v| v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0));
    if spread.is_none_or(|ms| ms > 1000) {
        warnings.push(
            "the shares were not given one common --start-at: their seconds are merged by their own clocks (second n of each share together)"
                .into(),
        );
    }
    let mut notes: Vec<String> = Vec::new();
    for m in &metas {
        for n in &m.notes {
            if !notes.contains(n) {
                notes.push(n.clone());
            }
        }
    }
    let mut steps: Vec<String> = Vec::new();
    let mut resolved = Vec::new();
    for m in &metas {
        for s in &m.steps {
            if !steps.contains(s) {
                steps.push(s.clone());
            }
        }
        for r in &m.resolved {
            if !resolved.iter().any(|x: &crate::Resolved| x.origin == r.origin) {
                resolved.push(r.clone());
            }
        }
    }
    RunMeta {
        host: hosts.join(", "),
        cores: metas.iter().map(|m| m.cores).sum(),
        memory_bytes: metas.iter().map(|m| m.memory_bytes).sum(),
        started_at: metas.iter().map(|m| m.started_at.clone()).min().unwrap_or_default(),
        ended_at: metas
            .iter()
            .map(|m| m.ended_at.clone())
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max()),
        status,
        workers: metas.iter().map(|m| m.workers).sum(),
        segment: Segment::WHOLE,
        steps,
        notes,
        resolved,
        generators: shares
            .iter()
            .map(|s| Generator {
                segment: s.meta.segment,
                host: s.meta.host.clone(),
                dir: s.dir.display().to_string(),
                started_at: s.meta.started_at.clone(),
                ended_at: s.meta.ended_at.clone(),
                status: s.meta.status,
                workers: s.meta.workers,
                cores: s.meta.cores,
                requests: 0,
                errors: 0,
                dropped: 0,
                seconds: 0,
            })
            .collect(),
        outputs: metas.iter().flat_map(|m| m.outputs.iter().cloned()).collect(),
        ..first.clone()
    }
}
