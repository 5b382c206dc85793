//! A/B variants (`variants:`): the baseline (the first variant) against each other variant, the
//! whole and step by step: average and p95 latency, the improvement, and whether it is real, by
//! the comparison's own test (`significance.rs`: the paired sign-flip permutation test over
//! per-second averages, Holm-corrected over the table).
//!
//! Back to back, each variant's phase is paired with the baseline's, second i with second i.
//! Interleaved (`interleave: true`, or `variants:` on a scenario), the variants ran in one
//! phase: a variant's steps (`<scenario>[<variant>]/<step>`) are paired with the baseline's in
//! the same wall-clock second, so whatever drifted over the phase drifted for both.

use std::collections::BTreeMap;

use super::aggregate::{PhaseAgg, StepAgg};
use super::seconds::{PhaseSeconds, Second, Seconds};
use super::significance::{holm, paired_test, ALPHA};
use super::summary::{latency, r3, AbRow, AbTable, PhaseSummary, StepSummary, Summary};
use crate::rundir::{PhaseMeta, RunMeta};

/// Whether the run has variants (then the pass folds per-second values for them).
pub fn has_variants(meta: &RunMeta) -> bool {
    meta.phases
        .iter()
        .any(|p| p.variant_of.is_some() || !p.interleaved.is_empty())
}

/// Every comparison, in the order of the plan's phases.
pub fn tables(meta: &RunMeta, s: &Summary, secs: &Seconds, aggs: &[PhaseAgg]) -> Vec<AbTable> {
    let mut out = back_to_back(meta, s, secs);
    for pm in meta.phases.iter().filter(|p| !p.interleaved.is_empty()) {
        let phase = s.phases.iter().find(|p| p.name == pm.name);
        let agg = aggs.iter().find(|a| a.name == pm.name);
        if let (Some(phase), Some(agg)) = (phase, agg) {
            out.extend(interleaved(pm, phase, agg, secs.phase(&pm.name)));
        }
    }
    let order = |t: &AbTable| {
        meta.phases
            .iter()
            .position(|p| p.name == t.phase || p.variant_of.as_deref() == Some(&t.phase))
    };
    out.sort_by_key(order);
    out
}

fn back_to_back(meta: &RunMeta, s: &Summary, secs: &Seconds) -> Vec<AbTable> {
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

/// An interleaved phase's tables: one per variant but the baseline, per set of variants (a
/// phase with `interleave: true` has one; scenarios with `variants:` of their own may differ).
fn interleaved(pm: &PhaseMeta, phase: &PhaseSummary, agg: &PhaseAgg, secs: Option<&PhaseSeconds>) -> Vec<AbTable> {
    let mut sets: Vec<(&[String], Vec<&str>)> = Vec::new();
    for i in &pm.interleaved {
        match sets.iter_mut().find(|(v, _)| *v == i.variants.as_slice()) {
            Some((_, scenarios)) => scenarios.push(&i.scenario),
            None => sets.push((&i.variants, vec![&i.scenario])),
        }
    }
    let mut out = Vec::new();
    for (variants, scenarios) in sets {
        let Some((base, others)) = variants.split_first() else {
            continue;
        };
        let side = |v: &str| Side::of(v, &scenarios, phase, agg, secs);
        let b = side(base);
        for v in others {
            let mut t = compare(&pm.name, (&b, base), (&side(v), v));
            t.interleaved = true;
            t.scenarios = scenarios.iter().map(|s| s.to_string()).collect();
            out.push(t);
        }
    }
    out
}

/// One interleaved variant's share of a phase: its steps by their common name, its headline
/// latency (its steps' histograms merged) and its per-second averages.
struct Side<'a> {
    steps: Vec<(String, &'a StepSummary)>,
    all: Option<(f64, f64)>,
    all_seconds: Vec<(u64, f64)>,
    secs: Option<&'a PhaseSeconds>,
}

impl<'a> Side<'a> {
    fn of(
        v: &str,
        scenarios: &[&str],
        phase: &'a PhaseSummary,
        agg: &PhaseAgg,
        secs: Option<&'a PhaseSeconds>,
    ) -> Side<'a> {
        let steps: Vec<(String, &StepSummary)> = phase
            .steps
            .iter()
            .filter_map(|st| variant_step(&st.name, v, scenarios).map(|c| (c, st)))
            .collect();
        let mut merged = StepAgg::empty("all");
        for a in agg
            .steps
            .iter()
            .filter(|a| steps.iter().any(|(_, st)| st.name == a.name))
        {
            merged.add(a);
        }
        let rows: Vec<&[Second]> = secs
            .map(|x| steps.iter().map(|(_, st)| x.row(Some(&st.name))).collect())
            .unwrap_or_default();
        Side {
            all: latency(&merged.latency).map(|l| (l.avg, l.p95)),
            all_seconds: pooled(&rows),
            steps,
            secs,
        }
    }

    fn seconds(&self, step: &str) -> Vec<(u64, f64)> {
        self.secs.map(|x| per_second(x.row(Some(step)))).unwrap_or_default()
    }
}

/// `<scenario>[<variant>]/<rest>` for one of `scenarios` → `<scenario>/<rest>`, the name both
/// variants' copies of the step share; None for a step of another variant or scenario.
fn variant_step(step: &str, variant: &str, scenarios: &[&str]) -> Option<String> {
    scenarios.iter().find_map(|s| {
        step.strip_prefix(&format!("{s}[{variant}]/"))
            .map(|rest| format!("{s}/{rest}"))
    })
}

/// The average of several steps' latencies, second by second: each step's average weighed by
/// how many latencies it holds in that second (the mean of their buckets together).
fn pooled(rows: &[&[Second]]) -> Vec<(u64, f64)> {
    let mut by_seq: BTreeMap<u64, (f64, u64)> = BTreeMap::new();
    for s in rows.iter().flat_map(|r| r.iter()) {
        if let Some(l) = s.latency {
            let e = by_seq.entry(s.seq).or_default();
            e.0 += l.avg * l.samples as f64;
            e.1 += l.samples;
        }
    }
    by_seq
        .into_iter()
        .filter(|(_, (_, n))| *n > 0)
        .map(|(seq, (sum, n))| (seq, sum / n as f64))
        .collect()
}

fn compare(phase: &str, base: (&Side, &str), var: (&Side, &str)) -> AbTable {
    let ((b, bn), (v, vn)) = (base, var);
    let mut rows = vec![row("all", b.all, v.all, b.all_seconds.clone(), v.all_seconds.clone())];
    for (key, bs) in &b.steps {
        let Some((_, vs)) = v.steps.iter().find(|(k, _)| k == key) else {
            continue;
        };
        rows.push(row(
            key,
            bs.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
            vs.latency_ms.as_ref().map(|l| (l.avg, l.p95)),
            b.seconds(&bs.name),
            v.seconds(&vs.name),
        ));
    }
    finish(phase, bn, vn, rows)
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
    finish(of, bn, vn, rows)
}

/// The table of `rows`, Holm-corrected as one family.
fn finish(phase: &str, baseline: &str, variant: &str, mut rows: Vec<AbRow>) -> AbTable {
    let idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].p_value.is_some()).collect();
    let adjusted = holm(&idx.iter().map(|&i| rows[i].p_value.unwrap_or(1.0)).collect::<Vec<_>>());
    for (k, &i) in idx.iter().enumerate() {
        rows[i].p_value = Some(adjusted[k]);
        rows[i].significant = adjusted[k] < ALPHA;
    }
    AbTable {
        phase: phase.to_string(),
        baseline: baseline.to_string(),
        variant: variant.to_string(),
        interleaved: false,
        scenarios: Vec::new(),
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

    #[test]
    fn interleaved_steps_are_told_apart_by_prefix_and_pooled_by_their_latencies() {
        let sc = ["s", "t"];
        assert_eq!(variant_step("s[a]/get", "a", &sc).as_deref(), Some("s/get"));
        assert_eq!(
            variant_step("t[a]/ws:connect", "a", &sc).as_deref(),
            Some("t/ws:connect")
        );
        assert_eq!(variant_step("s[b]/get", "a", &sc), None, "another variant's");
        assert_eq!(variant_step("u[a]/get", "a", &sc), None, "another scenario's");
        assert_eq!(variant_step("s/get", "a", &sc), None);
        let second = |seq, avg, samples| Second {
            seq,
            dur: 1.0,
            requests: samples,
            errors: 0,
            latency: (samples > 0).then_some(super::super::seconds::Latency {
                avg,
                p50: avg,
                p95: avg,
                p99: avg,
                samples,
            }),
        };
        let a = [second(0, 10.0, 3), second(1, 20.0, 1), second(2, 0.0, 0)];
        let b = [second(0, 30.0, 1), second(2, 5.0, 2)];
        // (10×3 + 30×1) / 4 = 15; 20 alone; 5 alone (a's empty second weighs nothing).
        assert_eq!(pooled(&[&a, &b]), [(0, 15.0), (1, 20.0), (2, 5.0)]);
    }
}
