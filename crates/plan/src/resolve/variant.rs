//! A/B variants (`variants:` on a phase): the phase runs once per variant, back to back, in the
//! order written (the first is the baseline), each on copies of its scenarios whose HTTP
//! requests carry the variant's headers and query parameters (appended after the step's own,
//! URL-escaped as a step's `query:` is); a variant's `target:` origin replaces the plan's for
//! the requests that went to it; a variant's `vars:` resolves the scenarios again with those
//! constants (they are inlined at resolve time, so no copy could change them). The variants are ordinary phases `<phase>[<variant>]`
//! to everything downstream; `Phase::variant` says which, so the analysis can pair them.

use super::*;
use crate::model::*;
use crate::raw::*;

/// The plan's scenarios as resolved, and how to resolve one of them again with other constants.
pub(super) struct PlanScenarios<'a> {
    pub resolved: &'a [Scenario],
    pub again: &'a dyn Fn(usize, &Names) -> R<Scenario>,
}

pub(super) fn expand(
    rs: &Resolver,
    phase: &Phase,
    raw: &S<Ordered<RawVariant>>,
    plan_target: Option<&Origin>,
    plan: &PlanScenarios,
    added: &mut Vec<Scenario>,
    names: &Names,
) -> R<Vec<Phase>> {
    let scenarios = plan.resolved;
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
        let query = query(rs, &v.query, names)?;
        let target = match &v.target {
            Some(t) => Some((plan_target_of(rs, plan_target, t)?, variant_origin(rs, t)?)),
            None => None,
        };
        let consts = consts(rs, &v.vars, names, name)?;
        let mut mix = Vec::new();
        for w in &phase.mix {
            let base = &scenarios[w.scenario];
            // Constants are inlined when a scenario is resolved: other values, another resolve.
            let mut sc = match &consts {
                Some(c) => (plan.again)(
                    w.scenario,
                    &Names {
                        consts: c,
                        slots: names.slots,
                    },
                )?,
                None => base.clone(),
            };
            sc.name = format!("{}[{name}]", base.name);
            for st in &mut sc.steps {
                if let StepKind::Http(h) = &mut st.kind {
                    if let Some((from, to)) = &target {
                        if h.origin == *from {
                            h.origin = to.clone();
                        }
                    }
                    if !query.is_empty() {
                        h.path_and_query = with_query(&h.path_and_query, &query);
                    }
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

/// The plan's target, which a variant's `target:` replaces: there must be one.
/// The plan's constants with the variant's `vars:` set (`None` without any): each must name a
/// plan variable, so a misspelt one is an error, not a silent copy of the baseline.
fn consts(
    rs: &Resolver,
    vars: &BTreeMap<String, Any>,
    names: &Names,
    variant: &str,
) -> R<Option<BTreeMap<String, String>>> {
    if vars.is_empty() {
        return Ok(None);
    }
    let mut c = names.consts.clone();
    for (k, v) in vars {
        if !c.contains_key(k) {
            let known: Vec<&str> = names.consts.keys().map(String::as_str).collect();
            return Err(rs.errs.hint(
                &v.referenced,
                format!("variant `{variant}`: `{k}` is not one of the plan's vars"),
                if known.is_empty() {
                    "declare it under the plan's `vars:` (the baseline's value), then set it per variant".to_string()
                } else {
                    format!("the plan's vars: {}", known.join(", "))
                },
            ));
        }
        c.insert(k.clone(), rs.scalar(v, &format!("variants.{variant}.vars.{k}"))?);
    }
    Ok(Some(c))
}

fn plan_target_of(rs: &Resolver, plan: Option<&Origin>, t: &S<String>) -> R<Origin> {
    plan.cloned().ok_or_else(|| {
        rs.errs.hint(
            &t.referenced,
            "a variant's `target:` replaces the plan's `target:`, and this plan has none",
            "set `target:` at the top of the plan; the steps' paths go to it",
        )
    })
}

/// A variant's `target:`: an origin only (scheme, host, port), since the steps' paths were
/// already joined with the plan target's path.
fn variant_origin(rs: &Resolver, t: &S<String>) -> R<Origin> {
    let url = rs.string(t)?;
    let (origin, path) = super::parse_origin(url.trim()).map_err(|e| {
        rs.errs.hint(
            &t.referenced,
            format!("variant target: {e}"),
            "e.g. `target: http://127.0.0.1:8081`",
        )
    })?;
    if !path.is_empty() {
        return Err(rs.errs.hint(
            &t.referenced,
            format!("variant target: `{url}` has a path; a variant's target is an origin only"),
            "e.g. `target: http://127.0.0.1:8081` (the steps keep their paths)",
        ));
    }
    Ok(origin)
}

/// A variant's query parameters as `k=v` parts joined by `&` (keys and literal values
/// URL-escaped, expressions escaped when rendered), without the leading separator.
fn query(rs: &Resolver, raw: &BTreeMap<String, Any>, names: &Names) -> R<Vec<Part>> {
    let mut b = crate::compile::Builder::default();
    for (i, (k, v)) in raw.iter().enumerate() {
        if i > 0 {
            b.lit(b"&");
        }
        let mut key = Vec::new();
        crate::template::url_escape_into(k.as_bytes(), &mut key);
        b.lit(&key);
        b.lit(b"=");
        let val = rs.scalar(v, &format!("query {k}"))?;
        b.template(&val, Escape::Url, names)
            .map_err(|e| rs.errs.at(&v.referenced, e))?;
    }
    Ok(b.finish().parts)
}

/// `path_and_query` with `query` appended: after `&` when the path already has a query.
fn with_query(path: &Template, query: &[Part]) -> Template {
    let has_query = path
        .parts
        .iter()
        .any(|p| matches!(p, Part::Lit(b) if b.contains(&b'?')));
    let mut b = crate::compile::Builder::default();
    for p in path
        .parts
        .iter()
        .chain([&Part::Lit(if has_query { "&" } else { "?" }.into())])
        .chain(query)
    {
        match p {
            Part::Lit(bytes) => b.lit(bytes),
            Part::Expr(e, esc) => b.expr(e.clone(), *esc),
        }
    }
    b.finish()
}
