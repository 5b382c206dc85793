//! A/B variants (`variants:` on a phase): the phase runs once per variant, back to back, in the
//! order written (the first is the baseline), each on copies of its scenarios whose HTTP
//! requests carry the variant's headers. The variants are ordinary phases `<phase>[<variant>]`
//! to everything downstream; `Phase::variant` says which, so the analysis can pair them.

use super::*;
use crate::model::*;
use crate::raw::*;

pub(super) fn expand(
    rs: &Resolver,
    phase: &Phase,
    raw: &S<Ordered<RawVariant>>,
    scenarios: &[Scenario],
    added: &mut Vec<Scenario>,
    names: &Names,
) -> R<Vec<Phase>> {
    if raw.value.0.len() < 2 {
        return Err(rs.errs.hint(
            &raw.referenced,
            format!("phase `{}`: variants need at least two entries", phase.name),
            "e.g. variants: { without-cache: { headers: { Cache-Control: no-cache } }, with-cache: {} }",
        ));
    }
    let mut out = Vec::new();
    for (index, (name, v)) in raw.value.0.iter().enumerate() {
        let extra = headers(rs, &v.headers, names)?;
        let mut mix = Vec::new();
        for w in &phase.mix {
            let base = &scenarios[w.scenario];
            let mut sc = base.clone();
            sc.name = format!("{}[{name}]", base.name);
            for st in &mut sc.steps {
                if let StepKind::Http(h) = &mut st.kind {
                    for (k, t) in &extra {
                        h.headers.retain(|(n, _)| n != k);
                        h.headers.push((k.clone(), t.clone()));
                    }
                }
            }
            mix.push(Weighted {
                scenario: scenarios.len() + added.len(),
                weight: w.weight,
            });
            added.push(sc);
        }
        out.push(Phase {
            name: format!("{}[{name}]", phase.name),
            mix,
            load: phase.load.clone(),
            grace: phase.grace,
            variant: Some(Variant {
                of: phase.name.clone(),
                name: name.clone(),
                index,
            }),
        });
    }
    Ok(out)
}
