//! Before the run and after it: every statement prepared on its database, so a syntax error,
//! a missing table or a parameter count that does not match is refused before any load (with
//! the plan's place and PostgreSQL's words); and `explain: true` statements EXPLAINed, at the
//! start and again at the end (plans change with data).

use futures_util::StreamExt;
use serde_json::Value;
use stampede_plan::{Plan, StepKind};

use super::cell::{Cell, TextParam};
use super::{connect, failure, Target};
use crate::engine::render::Env;
use crate::transport::Transport;

/// Why the plan's SQL cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    #[error("database `{database}` ({shown}): {reason}")]
    Connect {
        database: String,
        shown: String,
        reason: String,
    },
    #[error("{at}: statement `{statement}` of step `{step}`: PostgreSQL says: {reason}")]
    Statement {
        at: String,
        step: String,
        statement: String,
        reason: String,
    },
    #[error(
        "{at}: statement `{statement}` of step `{step}` takes {expected} parameter(s) ($1 …), the plan gives {given}"
    )]
    Params {
        at: String,
        step: String,
        statement: String,
        expected: usize,
        given: usize,
    },
}

/// What EXPLAIN said about one statement (the run directory's `explain.json` record).
pub use stampede_rundir::explain::ExplainRecord as Explained;

/// Connects to every database the plan's SQL steps use, prepares every statement, checks its
/// parameter count, and EXPLAINs those of `explain: true` steps. An EXPLAIN that fails (a
/// parameter that comes from a capture is empty before the run) is left out, not an error.
/// Only the scenarios in `scenarios` (those of the phases to run) are checked, so running an
/// HTTP phase of a plan does not need its database. Bounded by the connect timeout plus the
/// plan's timeout.
pub async fn preflight(
    plan: &Plan,
    scenarios: &[usize],
    transport: &Transport,
) -> Result<Vec<Explained>, PreflightError> {
    let limit = plan.http.connect_timeout + plan.http.timeout;
    match tokio::time::timeout(limit, check_all(plan, scenarios, transport)).await {
        Ok(r) => r,
        Err(_) => Err(PreflightError::Connect {
            database: plan
                .databases
                .iter()
                .map(|d| d.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            shown: String::new(),
            reason: format!("no answer within {} s", limit.as_secs()),
        }),
    }
}

async fn check_all(plan: &Plan, scenarios: &[usize], transport: &Transport) -> Result<Vec<Explained>, PreflightError> {
    let mut out = Vec::new();
    for (d, db) in plan.databases.iter().enumerate() {
        let steps: Vec<_> = plan
            .scenarios
            .iter()
            .enumerate()
            .filter(|(i, _)| scenarios.contains(i))
            .flat_map(|(_, s)| &s.steps)
            .filter_map(|st| match &st.kind {
                StepKind::Sql(q) if q.database == d => Some((st.name.as_str(), q)),
                _ => None,
            })
            .collect();
        if steps.is_empty() {
            continue;
        }
        let target = Target::new(db, plan.http.timeout);
        let conn = connect(transport, &target, 0, false)
            .await
            .map_err(|(k, m)| PreflightError::Connect {
                database: db.name.clone(),
                shown: target.shown.clone(),
                reason: m.unwrap_or_else(|| k.describe(&target.shown, plan.http.connect_timeout)),
            })?;
        let mut rng = rand::SeedableRng::seed_from_u64(0);
        for (name, q) in steps {
            for s in &q.statements {
                let stmt = conn
                    .client
                    .prepare(&s.query)
                    .await
                    .map_err(|e| PreflightError::Statement {
                        at: s.at.clone(),
                        step: name.to_string(),
                        statement: s.name.clone(),
                        reason: failure(&e).1.unwrap_or_else(|| e.to_string()),
                    })?;
                if stmt.params().len() != s.params.len() {
                    return Err(PreflightError::Params {
                        at: s.at.clone(),
                        step: name.to_string(),
                        statement: s.name.clone(),
                        expected: stmt.params().len(),
                        given: s.params.len(),
                    });
                }
                if !q.explain {
                    continue;
                }
                let slots = vec![bytes::Bytes::new(); plan.slots.len()];
                let mut env = Env {
                    slots: &slots,
                    rng: &mut rng,
                    vu: 1,
                    iteration: 0,
                    jar: None,
                };
                let values: Vec<Vec<u8>> = s
                    .params
                    .iter()
                    .map(|p| {
                        let (mut o, mut scratch) = (Vec::new(), Vec::new());
                        p.render_into(&mut o, &mut scratch, |e, b| env.eval(e, b));
                        o
                    })
                    .collect();
                if let Some(plan_json) = explain(&conn.client, &s.query, &values).await {
                    let mut e = summarize(name, &s.name, plan_json);
                    for t in &e.seq_scan_tables {
                        if table_rows(&conn.client, t).await >= stampede_rundir::explain::LARGE_TABLE {
                            e.large_seq_scans.push(t.clone());
                        }
                    }
                    out.push(e);
                }
            }
        }
    }
    Ok(out)
}

/// PostgreSQL's estimate of a table's rows (`pg_class.reltuples`; -1 before its first ANALYZE,
/// when the table's pages stand in).
async fn table_rows(client: &tokio_postgres::Client, table: &str) -> f64 {
    let q = "SELECT CASE WHEN reltuples < 0 THEN relpages * 100 ELSE reltuples END::float8 FROM pg_class WHERE relname = $1 AND relkind = 'r'";
    match client.query(q, &[&table]).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| r.try_get::<_, f64>(0).ok())
            .fold(0.0, f64::max),
        Err(_) => 0.0,
    }
}

async fn explain(client: &tokio_postgres::Client, query: &str, values: &[Vec<u8>]) -> Option<Value> {
    let params: Vec<TextParam> = values.iter().map(|v| TextParam(v)).collect();
    let text = format!("EXPLAIN (FORMAT JSON) {query}");
    let stream = client
        .query_raw(
            text.as_str(),
            params.iter().map(|p| p as &dyn tokio_postgres::types::ToSql),
        )
        .await
        .ok()?;
    futures_util::pin_mut!(stream);
    let row = stream.next().await?.ok()?;
    let cell: Cell = row.try_get(0).ok()?;
    serde_json::from_str(&cell.0).ok()
}

/// The top node, whether an index is used, the tables scanned sequentially, the total cost.
pub fn summarize(step: &str, statement: &str, plan: Value) -> Explained {
    fn walk(node: &Value, index_used: &mut bool, seq: &mut Vec<String>, indexes: &mut Vec<String>) {
        let kind = node["Node Type"].as_str().unwrap_or_default();
        if kind.contains("Index") {
            *index_used = true;
        }
        if let Some(i) = node["Index Name"].as_str() {
            if !indexes.iter().any(|x| x == i) {
                indexes.push(i.to_string());
            }
        }
        if kind == "Seq Scan" {
            if let Some(t) = node["Relation Name"].as_str() {
                if !seq.iter().any(|x| x == t) {
                    seq.push(t.to_string());
                }
            }
        }
        if let Some(children) = node["Plans"].as_array() {
            for c in children {
                walk(c, index_used, seq, indexes);
            }
        }
    }
    let root = &plan[0]["Plan"];
    let (mut index_used, mut seq, mut indexes) = (false, Vec::new(), Vec::new());
    walk(root, &mut index_used, &mut seq, &mut indexes);
    Explained {
        step: step.to_string(),
        statement: statement.to_string(),
        top: root["Node Type"].as_str().unwrap_or_default().to_string(),
        index_used,
        seq_scan_tables: seq,
        large_seq_scans: Vec::new(),
        indexes,
        total_cost: root["Total Cost"].as_f64().unwrap_or(0.0),
        plan,
    }
}
