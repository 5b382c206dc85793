//! A/B variants (`variants:` on a phase): each variant's phase against the baseline's (the
//! first variant), the whole phase and step by step: average and p95 latency, the improvement,
//! and whether it is real, by the comparison's own test (`significance.rs`: the paired sign-flip
//! permutation test over per-second averages, Holm-corrected over the table).

use super::seconds::{Second, Seconds};
use super::significance::{holm, paired_test, ALPHA};
use super::summary::{r3, AbRow, AbTable, PhaseSummary, Summary};
use crate::rundir::RunMeta;

/// Whether the run has variants (then the pass folds per-second values for them).
pub fn has_variants(meta: &RunMeta) -> bool {
    meta.phases.iter().any(|p| p.variant_of.is_some())
}

pub fn tables(meta: &RunMeta, s: &Summary, secs: &Seconds) -> Vec<AbTable> {
    let mut out = Vec::new();
    let variant_of = |name: &str| {
        meta.phases
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| Some((p.variant_of.clone()?, p.variant.clone()?)))
    };
    let phases: Vec<(&PhaseSummary, String, String)> = s
        .phases
        .iter()
        .filter_map(|p| variant_of(&p.name).map(|(of, v)| (p, of, v)))
        .collect();
    for (i, (base, of, base_name)) in phases.iter().enumerate() {
        // The baseline is the first variant of its phase that ran.
        if phases[..i].iter().any(|(_, o, _)| o == of) {
            continue;
        }
        for (p, _, name) in phases[i + 1..].iter().filter(|(_, o, _)| o == of) {
            out.push(table(of, (base, base_name), (p, name), secs));
        }
    }
    out
}

/// A step's name without its variant (`s[with-cache]/get` → `s/get`).
fn common(step: &str, variant: &str) -> String {
    step.replace(&format!("[{variant}]"), "")
}

fn per_second(rows: &[Second]) -> Vec<(u64, f64)> {
    rows.iter().filter_map(|s| s.latency.map(|l| (s.seq, l.avg))).collect()
}

fn table(of: &str, base: (&PhaseSummary, &str), var: (&PhaseSummary, &str), secs: &Seconds) -> AbTable {
    let (bp, bn) = base;
    let (vp, vn) = var;
    let (bs, vs) = (secs.phase(&bp.name), secs.phase(&vp.name));
    let mut rows = vec![row(
        "all",
        bp.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
        vp.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
        bs.map(|x| per_second(x.row(None))).unwrap_or_default(),
        vs.map(|x| per_second(x.row(None))).unwrap_or_default(),
    )];
    for b in &bp.steps {
        let key = common(&b.name, bn);
        let Some(v) = vp.steps.iter().find(|v| common(&v.name, vn) == key) else {
            continue;
        };
        rows.push(row(
            &key,
            b.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
            v.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
            bs.map(|x| per_second(x.row(Some(&b.name)))).unwrap_or_default(),
            vs.map(|x| per_second(x.row(Some(&v.name)))).unwrap_or_default(),
        ));
    }
    // One family: the table's rows.
    let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].p_value.is_some()).collect();
    let adjusted = holm(&idx.iter().map(|&i| rows[i].p_value.unwrap_or(1.0)).collect::<Vec<_>>());
    for (k, &i) in idx.iter().enumerate() {
        rows[i].p_value = Some(adjusted[k]);
        rows[i].significant = adjusted[k] < ALPHA;
    }
    AbTable {
        phase: of.to_string(),
        baseline: bn.to_string(),
        variant: vn.to_string(),
        rows,
    }
}

fn row(step: &str, b: Option<(f64, f64)>, v: Option<(f64, f64)>, bs: Vec<(u64, f64)>, vs: Vec<(u64, f64)>) -> AbRow {
    let test = paired_test(&bs, &vs);
    AbRow {
        step: step.to_string(),
        baseline_avg_ms: b.map(|x| x.0),
        variant_avg_ms: v.map(|x| x.0),
        baseline_p95_ms: b.map(|x| x.1),
        variant_p95_ms: v.map(|x| x.1),
        improvement_pct: match (b, v) {
            (Some(b), Some(v)) if b.0 > 0.0 => Some(r3((b.0 - v.0) / b.0 * 100.0)),
            _ => None,
        },
        p_value: test.map(|t| t.p_value),
        significant: false,
        seconds: test.map_or(0, |t| t.seconds),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_pair_across_variants_by_their_common_name() {
        assert_eq!(common("s[with-cache]/get", "with-cache"), "s/get");
        assert_eq!(common("get", "with-cache"), "get");
        let base: Vec<(u64, f64)> = (0..20).map(|i| (i, 40.0 + (i % 3) as f64)).collect();
        let fast: Vec<(u64, f64)> = (0..20).map(|i| (i, 8.0 + (i % 2) as f64)).collect();
        let r = row("all", Some((41.0, 45.0)), Some((8.5, 9.0)), base.clone(), fast);
        assert!((r.improvement_pct.unwrap() - 79.268).abs() < 0.01, "{r:?}");
        assert!(r.p_value.unwrap() < 0.001 && r.seconds == 20, "{r:?}");
        let same = row("all", Some((41.0, 45.0)), Some((41.0, 45.0)), base.clone(), base);
        assert_eq!(same.p_value, None, "no difference: nothing to test");
    }
}
