//! SQL steps in plans: databases and statements resolve as documented; what the plan alone
//! can tell is wrong is refused with its line and column (PostgreSQL judges the rest before
//! the run).

use stampede_plan::*;

mod common;
use common::load_with;

fn load(src: &str) -> Result<Plan, PlanError> {
    load_with(src, &[], &[("DB_PASSWORD", "s3cret")])
}

fn plan(step: &str) -> String {
    format!(
        "name: sql\ndatabases:\n  app: {{ url: \"postgres://app:${{DB_PASSWORD}}@127.0.0.1:5432/app\", pool: 8 }}\nscenarios:\n  s:\n    steps:\n      - name: q\n        sql: app\n{step}phases:\n  - {{ name: p, scenario: s, vus: 1, duration: 1s }}\n"
    )
}

#[test]
fn statements_and_transactions_resolve() {
    let p = load(&plan(
        "        query: SELECT id, status FROM leads WHERE id = $1\n        params: [ \"{{ random_int(1, 5000) }}\" ]\n        checks: [ { rows: 1 }, { rows: \">= 1\" }, { column: status, equals: new } ]\n        capture: { status: { column: status } }\n        explain: true\n        timeout: 2s\n",
    ))
    .unwrap();
    assert_eq!(p.databases[0].pool, Some(8));
    assert_eq!(p.databases[0].url.expose(), "postgres://app:s3cret@127.0.0.1:5432/app");
    assert!(!p.redacted.to_string().contains("s3cret"), "{}", p.redacted);
    let StepKind::Sql(q) = &p.scenarios[0].steps[0].kind else {
        panic!()
    };
    assert_eq!(q.statements.len(), 1);
    assert_eq!(q.statements[0].params.len(), 1);
    assert!(q.explain && !q.transaction);
    assert!(matches!(q.checks[0].kind, SqlCheckKind::Rows { op: None, n: 1 }));
    assert!(matches!(
        q.checks[1].kind,
        SqlCheckKind::Rows {
            op: Some(CmpOp::Ge),
            n: 1
        }
    ));
    assert_eq!(q.checks[2].name, "status = new");
    assert_eq!(q.captures[0].1, "status");
    let p = load(&plan(
        "        transaction:\n          - { name: insert, query: \"INSERT INTO leads (name) VALUES ($1) RETURNING id\", params: [ \"{{ uuid() }}\" ] }\n          - { query: \"UPDATE leads SET status = 'won' WHERE id = $1\", params: [ \"1\" ] }\n",
    ))
    .unwrap();
    let StepKind::Sql(q) = &p.scenarios[0].steps[0].kind else {
        panic!()
    };
    assert!(q.transaction);
    let names: Vec<&str> = q.statements.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["insert", "#2"]);
}

#[test]
fn what_the_plan_can_tell_is_wrong_is_refused_with_where() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "        query: \"SELECT * FROM leads WHERE id = {{ id }}\"\n",
            "bound, never spliced",
            9,
        ),
        (
            "        query: SELECT 1\n        transaction: [ { query: SELECT 2 } ]\n",
            "not both",
            9,
        ),
        (
            "        transaction: [ { query: SELECT 2 } ]\n        params: [ \"1\" ]\n",
            "goes with `query:`",
            10,
        ),
        (
            "        query: SELECT 1\n        checks: [ { rows: many } ]\n",
            "not a count",
            10,
        ),
        (
            "        query: SELECT 1\n        checks: [ { status: 200 } ]\n",
            "not an SQL check",
            10,
        ),
        (
            "        query: SELECT 1\n        capture: { x: { json: \"$.a\" } }\n",
            "column of the first row",
            10,
        ),
        (
            "        query: SELECT 1\n        headers: { X: y }\n",
            "does not take `headers:`",
            7,
        ),
        (
            "        checks: [ { rows: 1 } ]\n",
            "needs `query:` or `transaction:`",
            8,
        ),
    ];
    for (step, says, line) in cases {
        let e = load(&plan(step)).expect_err(step);
        assert!(e.to_string().contains(says), "{step:?}: {e}");
        assert_eq!(e.line, *line, "{step:?}: {e}");
    }
    let e = load(&plan("        query: SELECT 1\n").replace("sql: app", "sql: apq")).unwrap_err();
    assert!(
        e.to_string().contains("no database `apq`") && e.to_string().contains("app"),
        "{e}"
    );
    let e = load(&plan("        query: SELECT 1\n").replace("postgres://", "mysql://")).unwrap_err();
    assert!(e.to_string().contains("not a postgres:// URL"), "{e}");
    let e = load("name: x\ntarget: http://h:1\nscenarios:\n  s:\n    steps:\n      - { request: GET /, explain: true }\nphases:\n  - { name: p, scenario: s, vus: 1, duration: 1s }\n").unwrap_err();
    assert!(e.to_string().contains("belongs to an SQL step"), "{e}");
}
