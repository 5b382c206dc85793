//! A/B variants. On a phase, back to back (the default): the phase runs once per variant, in
//! the order written (the first is the baseline), as ordinary phases `<phase>[<variant>]` to
//! everything downstream; `Phase::variant` says which, so the analysis can pair them. On a
//! phase with `interleave: true`, or on a scenario (`variants:` under it, so every phase that
//! runs it runs it in variants): one phase whose mix entries carry the variants
//! (`Weighted::variants`), which its iterations take in turn.
//!
//! Either way a variant runs copies of the scenarios, `<scenario>[<variant>]`, whose HTTP
//! requests carry the variant's headers and query parameters (appended after the step's own,
//! URL-escaped as a step's `query:` is); a variant's `target:` origin replaces the plan's for
//! the requests that went to it; a variant's `vars:` resolves the scenarios again with those
//! constants (they are inlined at resolve time, so no copy could change them).

use super::*;
use crate::model::*;
use crate::raw::*;

/// The plan's scenarios as resolved, and how to resolve one of them again with other constants.
pub(super) struct PlanScenarios<'a> {
    pub resolved: &'a [Scenario],
    pub again: &'a dyn Fn(usize, &Names) -> R<Scenario>,
}

/// Where the copies go: the scenarios variants run, appended after the plan's own.
pub(super) struct Copies<'a, 'p> {
    pub plan: &'a PlanScenarios<'p>,
    pub plan_target: Option<&'a Origin>,
    pub names: &'a Names<'a>,
    pub added: &'a mut Vec<Scenario>,
}

/// One variant, read: what it changes in a scenario's requests.
struct Change<'r> {
    name: &'r S<String>,
    headers: Vec<(HeaderName, Template)>,
    query: Vec<Part>,
    /// The plan's origin and the one that replaces it.
    target: Option<(Origin, Origin)>,
    consts: Option<BTreeMap<String, String>>,
}

/// `variants:` read and checked: at least two, names that can stand in `<scenario>[<variant>]`.
/// `owner` says whose they are in messages (``phase `p` ``, ``scenario `s` ``).
fn changes<'r>(rs: &Resolver, raw: &'r S<Ordered<RawVariant>>, owner: &str, c: &Copies) -> R<Vec<Change<'r>>> {
    if raw.value.0.len() < 2 {
        return Err(rs.errs.hint(
            &raw.referenced,
            format!("{owner}: variants need at least two entries"),
            "e.g. variants: { without-cache: { headers: { Cache-Control: no-cache } }, with-cache: {} }",
        ));
    }
    let mut out = Vec::new();
    for (name, v) in &raw.value.0 {
        if name.value.is_empty() || name.value.contains(['[', ']', '/']) {
            return Err(rs.errs.hint(
                &name.referenced,
                format!("{owner}: variant name `{}` cannot name its steps", name.value),
                "a variant's steps are `<scenario>[<variant>]/<step>`: use a name without `[`, `]` or `/`",
            ));
        }
        let target = match &v.target {
            Some(t) => Some((plan_target_of(rs, c.plan_target, t)?, variant_origin(rs, t)?)),
            None => None,
        };
        out.push(Change {
            name,
            headers: headers(rs, &v.headers, c.names)?,
            query: query(rs, &v.query, c.names)?,
            target,
            consts: consts(rs, &v.vars, c.names, &name.value)?,
        });
    }
    Ok(out)
}

/// Copies plan scenario `index` for variant `v` (`<scenario>[<variant>]`) and returns its index.
/// The copy's name may not be one of the plan's scenarios: its steps would be named alike.
fn copy(rs: &Resolver, v: &Change, index: usize, c: &mut Copies) -> R<usize> {
    let scenarios = c.plan.resolved;
    let base = &scenarios[index];
    let name = format!("{}[{}]", base.name, v.name.value);
    if scenarios.iter().any(|s| s.name == name) {
        return Err(rs.errs.hint(
            &v.name.referenced,
            format!(
                "variant `{}` of scenario `{}` would be `{name}`, a scenario of the plan",
                v.name.value, base.name
            ),
            "rename the variant or that scenario",
        ));
    }
    // Constants are inlined when a scenario is resolved: other values, another resolve.
    let mut sc = match &v.consts {
        Some(consts) => (c.plan.again)(
            index,
            &Names {
                consts,
                slots: c.names.slots,
            },
        )?,
        None => base.clone(),
    };
    sc.name = name;
    for st in &mut sc.steps {
        if let StepKind::Http(h) = &mut st.kind {
            if let Some((from, to)) = &v.target {
                if h.origin == *from {
                    h.origin = to.clone();
                }
            }
            if !v.query.is_empty() {
                h.path_and_query = with_query(&h.path_and_query, &v.query);
            }
            for (k, t) in &v.headers {
                h.headers.retain(|(n, _)| n != k);
                h.headers.push((k.clone(), t.clone()));
            }
        }
    }
    c.added.push(sc);
    Ok(scenarios.len() + c.added.len() - 1)
}

/// A phase's `variants:` back to back: one phase `<phase>[<variant>]` per variant.
pub(super) fn back_to_back(
    rs: &Resolver,
    phase: &Phase,
    raw: &S<Ordered<RawVariant>>,
    c: &mut Copies,
) -> R<Vec<Phase>> {
    let owner = format!("phase `{}`", phase.name);
    let mut out = Vec::new();
    for (index, v) in changes(rs, raw, &owner, c)?.iter().enumerate() {
        let mut mix = Vec::new();
        for w in &phase.mix {
            mix.push(Weighted::new(copy(rs, v, w.scenario, c)?, w.weight));
        }
        out.push(Phase {
            name: format!("{}[{}]", phase.name, v.name.value),
            mix,
            load: phase.load.clone(),
            grace: phase.grace,
            variant: Some(Variant {
                of: phase.name.clone(),
                name: v.name.value.clone(),
                index,
            }),
        });
    }
    Ok(out)
}

/// A phase's `variants:` with `interleave: true`: the phase itself, each mix entry carrying
/// the variants of its scenario.
pub(super) fn interleaved(rs: &Resolver, phase: Phase, raw: &S<Ordered<RawVariant>>, c: &mut Copies) -> R<Phase> {
    let changes = changes(rs, raw, &format!("phase `{}`", phase.name), c)?;
    let mut mix = Vec::new();
    for w in &phase.mix {
        mix.push(entry(rs, w.scenario, &changes, c)?.weighted(w.weight));
    }
    Ok(Phase { mix, ..phase })
}

/// A scenario's `variants:`: its copies, which every phase that runs it alternates between.
pub(super) fn scenario(rs: &Resolver, index: usize, raw: &S<Ordered<RawVariant>>, c: &mut Copies) -> R<Interleaved> {
    let owner = format!("scenario `{}`", c.plan.resolved[index].name);
    let changes = changes(rs, raw, &owner, c)?;
    entry(rs, index, &changes, c)
}

fn entry(rs: &Resolver, index: usize, changes: &[Change], c: &mut Copies) -> R<Interleaved> {
    let mut scenarios = Vec::new();
    for v in changes {
        scenarios.push(copy(rs, v, index, c)?);
    }
    Ok(Interleaved {
        of: c.plan.resolved[index].name.clone(),
        names: changes.iter().map(|v| v.name.value.clone()).collect(),
        scenarios,
    })
}

impl Interleaved {
    /// A mix entry that runs these variants, the baseline's scenario first.
    pub(super) fn weighted(self, weight: u32) -> Weighted {
        Weighted {
            scenario: self.scenarios[0],
            weight,
            variants: Some(self),
        }
    }
}

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

/// The plan's target, which a variant's `target:` replaces: there must be one.
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
