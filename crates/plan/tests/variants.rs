//! A/B variants in plans: back to back they are phases of their own; interleaved (on a phase
//! with `interleave: true`, or on a scenario) they are one phase whose mix entries carry the
//! variants' scenario copies; bad variants are refused with their line and column.

use stampede_plan::*;

mod common;
use common::load_with;

fn load(src: &str) -> Result<Plan, PlanError> {
    load_with(src, &[], &[])
}

const SCENARIOS: &str = "name: ab\ntarget: http://127.0.0.1:9\nscenarios:\n  s:\n    steps:\n      - { name: get, request: GET /x }\n  t:\n    steps:\n      - { name: get, request: GET /y }\n";

fn names(p: &Plan, ids: &[usize]) -> Vec<String> {
    ids.iter().map(|&i| p.scenarios[i].name.clone()).collect()
}

fn header<'p>(p: &'p Plan, scenario: usize, name: &str) -> Option<&'p template::Template> {
    match &p.scenarios[scenario].steps[0].kind {
        StepKind::Http(h) => h.headers.iter().find(|(n, _)| n.as_str() == name).map(|(_, t)| t),
        other => panic!("not http: {other:?}"),
    }
}

#[test]
fn an_interleaved_phase_is_one_phase_whose_entries_take_the_variants_in_turn() {
    let p = load(&format!(
        "{SCENARIOS}phases:\n  - name: cache\n    scenarios: [ {{ name: s, weight: 3 }}, {{ name: t }} ]\n    vus: 2\n    duration: 1s\n    interleave: true\n    variants:\n      without: {{ headers: {{ Cache-Control: no-cache }} }}\n      with: {{}}\n"
    ))
    .unwrap();
    assert_eq!(p.phases.len(), 1);
    let ph = &p.phases[0];
    assert_eq!((ph.name.as_str(), ph.variant.as_ref()), ("cache", None));
    assert_eq!(ph.mix.len(), 2);
    for (w, of, weight) in [(&ph.mix[0], "s", 3), (&ph.mix[1], "t", 1)] {
        let v = w.variants.as_ref().expect("interleaved");
        assert_eq!((v.of.as_str(), w.weight), (of, weight));
        assert_eq!(v.names, ["without", "with"]);
        assert_eq!(
            names(&p, &v.scenarios),
            [format!("{of}[without]"), format!("{of}[with]")]
        );
        assert_eq!(w.scenario, v.scenarios[0], "the baseline's scenario");
        assert_eq!(w.scenarios(), v.scenarios.as_slice());
        assert!(header(&p, v.scenarios[0], "cache-control").is_some());
        assert!(header(&p, v.scenarios[1], "cache-control").is_none());
    }
    // `interleave: false` is the default: back to back.
    let p = load(&format!(
        "{SCENARIOS}phases:\n  - name: cache\n    scenario: s\n    vus: 2\n    duration: 1s\n    interleave: false\n    variants:\n      a: {{}}\n      b: {{}}\n"
    ))
    .unwrap();
    let got: Vec<&str> = p.phases.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(got, ["cache[a]", "cache[b]"]);
    assert!(p.phases.iter().all(|p| p.mix.iter().all(|w| w.variants.is_none())));
}

#[test]
fn a_scenarios_variants_are_interleaved_in_every_phase_that_runs_it() {
    let p = load(&format!(
        "{SCENARIOS}  u:\n    variants:\n      old: {{}}\n      new: {{ query: {{ v: 2 }} }}\n    steps:\n      - {{ name: get, request: GET /z }}\nphases:\n  - {{ name: one, scenario: u, vus: 1, duration: 1s }}\n  - name: two\n    scenarios: [ {{ name: s }}, {{ name: u, weight: 2 }} ]\n    rate: 5\n    duration: 1s\n"
    ))
    .unwrap();
    assert_eq!(p.phases.len(), 2);
    let one = p.phases[0].mix[0].variants.clone().expect("interleaved");
    let two = &p.phases[1].mix;
    assert!(two[0].variants.is_none(), "s has no variants");
    assert_eq!(two[1].variants.as_ref(), Some(&one), "the same copies in both phases");
    assert_eq!(two[1].weight, 2);
    assert_eq!(names(&p, &one.scenarios), ["u[old]", "u[new]"]);
}

fn refused(src: &str) -> PlanError {
    load(src).expect_err("the plan should be refused")
}

#[test]
fn bad_variants_are_refused_where_they_are_written() {
    let phase = |extra: &str| {
        format!("{SCENARIOS}phases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n{extra}")
    };
    let e = refused(&phase("    interleave: true\n"));
    assert_eq!((e.line, e.column), (15, 17), "{e}");
    assert!(e.message.contains("`interleave:` without `variants:`"), "{e}");
    let e = refused(&phase(
        "    interleave: true\n    variants:\n      a: {}\n      a]: {}\n",
    ));
    assert_eq!((e.line, e.column), (18, 7), "{e}");
    assert!(e.message.contains("variant name `a]`"), "{e}");
    let e = refused(&phase("    interleave: true\n    variants:\n      only: {}\n"));
    assert!(e.line == 17 && e.message.contains("at least two"), "{e}");
    // A copy named like one of the plan's scenarios would share its step names.
    let e = refused(&format!(
        "{SCENARIOS}  \"s[b]\":\n    steps:\n      - {{ name: get, request: GET / }}\nphases:\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    variants:\n      a: {{}}\n      b: {{}}\n"
    ));
    assert_eq!((e.line, e.column), (20, 7), "{e}");
    assert!(e.message.contains("would be `s[b]`"), "{e}");
    // A back-to-back variant phase named like another phase.
    let e = refused(&format!(
        "{SCENARIOS}phases:\n  - {{ name: \"p[a]\", scenario: t, vus: 1, duration: 1s }}\n  - name: p\n    scenario: s\n    vus: 1\n    duration: 1s\n    variants:\n      a: {{}}\n      b: {{}}\n"
    ));
    assert!(e.line == 17 && e.message.contains("`p[a]`"), "{e}");
    // Variants on the phase and on its scenario: give them in one place.
    let e = refused(&format!(
        "{SCENARIOS}  u:\n    variants: {{ x: {{}}, y: {{}} }}\n    steps:\n      - {{ name: get, request: GET /z }}\nphases:\n  - name: p\n    scenario: u\n    vus: 1\n    duration: 1s\n    variants:\n      a: {{}}\n      b: {{}}\n"
    ));
    assert!(e.line == 20 && e.message.contains("variants of its own"), "{e}");
    let e = refused(&format!(
        "{SCENARIOS}  u:\n    variants: {{ x: {{}} }}\n    steps:\n      - {{ name: get, request: GET /z }}\nphases:\n  - {{ name: p, scenario: u, vus: 1, duration: 1s }}\n"
    ));
    assert!(
        e.line == 11 && e.message.contains("scenario `u`: variants need at least two"),
        "{e}"
    );
}
