//! Whether the shares given are one run, before anything is written.

use std::path::PathBuf;

use super::{MergeError, Share};
use crate::meta::RunMeta;
use crate::reader::read_meta;

/// Reads every share's `meta.json` and checks that together they are one run: one plan, one
/// tool version, the same phases and thresholds, and segments `0..N` once each. Returns the
/// shares in segment order.
pub fn check(dirs: &[PathBuf]) -> Result<Vec<Share>, MergeError> {
    if dirs.is_empty() {
        return Err(MergeError::NoInput);
    }
    let mut shares = Vec::with_capacity(dirs.len());
    for d in dirs {
        shares.push(Share {
            dir: d.clone(),
            meta: read_meta(d)?,
        });
    }
    let shown = |s: &Share| s.dir.display().to_string();
    let first = &shares[0];
    let first_sha = first
        .meta
        .plan_sha256
        .clone()
        .ok_or_else(|| MergeError::NoPlanHash { dir: shown(first) })?;
    for s in &shares[1..] {
        let sha = s
            .meta
            .plan_sha256
            .clone()
            .ok_or_else(|| MergeError::NoPlanHash { dir: shown(s) })?;
        if sha != first_sha {
            return Err(MergeError::PlanDiffers {
                dir: shown(s),
                sha,
                first: shown(first),
                first_sha,
            });
        }
        if s.meta.tool_version != first.meta.tool_version {
            return Err(MergeError::VersionDiffers {
                dir: shown(s),
                version: s.meta.tool_version.clone(),
                first: shown(first),
                first_version: first.meta.tool_version.clone(),
            });
        }
        let phases = |m: &RunMeta| {
            m.phases
                .iter()
                .map(|p| (p.name.clone(), p.model, p.planned_s.to_bits(), p.peak.to_bits()))
                .collect::<Vec<_>>()
        };
        let differs = |what| MergeError::RunDiffers {
            dir: shown(s),
            first: shown(first),
            what,
        };
        if phases(&s.meta) != phases(&first.meta) {
            return Err(differs("the phases"));
        }
        if s.meta.thresholds != first.meta.thresholds {
            return Err(differs("the thresholds"));
        }
        if s.meta.segment.count != first.meta.segment.count {
            return Err(MergeError::CountDiffers {
                dir: shown(s),
                segment: s.meta.segment,
                first: shown(first),
                first_count: first.meta.segment.count,
            });
        }
    }
    shares.sort_by_key(|s| s.meta.segment.index);
    for w in shares.windows(2) {
        if w[0].meta.segment == w[1].meta.segment {
            return Err(MergeError::Duplicate {
                segment: w[0].meta.segment,
                a: shown(&w[0]),
                b: shown(&w[1]),
            });
        }
    }
    let count = first_count(&shares);
    let have: Vec<u64> = shares.iter().map(|s| s.meta.segment.index).collect();
    let missing: Vec<u64> = (0..count).filter(|i| have.binary_search(i).is_err()).collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { missing, count });
    }
    Ok(shares)
}

fn first_count(shares: &[Share]) -> u64 {
    shares.first().map_or(1, |s| s.meta.segment.count)
}
