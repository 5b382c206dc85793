//! `databases:` and `sql:` steps: named PostgreSQL URLs (credentials through `${VAR}`, never
//! shown), one statement or a transaction of several, parameters as templates bound by
//! position (never spliced into the text), checks on rows and columns, captures from columns.
//! What only PostgreSQL can judge (the syntax, the parameter count) is checked by preparing
//! every statement before the run.

use std::collections::BTreeMap;

use serde_json::Value;

use super::step::http_only_keys;
use super::*;
use crate::compile::Names;

pub(super) fn resolve_databases(rs: &Resolver, raw: &BTreeMap<String, S<RawDatabase>>) -> R<Vec<Database>> {
    let mut out = Vec::new();
    for (name, d) in raw {
        let url = rs.string(&d.value.url)?;
        let url = url.trim();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(rs.errs.hint(
                &d.value.url.referenced,
                format!("database `{name}`: not a postgres:// URL"),
                "e.g. `url: postgres://app:${PGPASSWORD}@127.0.0.1:5432/app` (PostgreSQL is the one database today)",
            ));
        }
        let pool = match &d.value.pool {
            Some(p) => Some(u32::try_from(rs.count(p, "pool", 1)?).unwrap_or(u32::MAX)),
            None => None,
        };
        out.push(Database {
            name: name.clone(),
            url: Secret::new(url.into()),
            pool,
        });
    }
    Ok(out)
}

pub(super) fn resolve_sql_step(
    rs: &Resolver,
    st: &S<RawStep>,
    db: &S<String>,
    names: &Names,
    slots: &BTreeMap<String, usize>,
    think: Option<Think>,
) -> R<Step> {
    let errs = &rs.errs;
    let s = &st.value;
    let own = [
        ("headers", !s.headers.is_empty()),
        ("session", !s.session.is_empty()),
        ("subprotocols", !s.subprotocols.is_empty()),
        ("reconnect", s.reconnect.is_some()),
        ("sequence", s.sequence.is_some()),
    ];
    if let Some(key) = first_set(&http_only_keys(s)).or_else(|| first_set(&own)) {
        return Err(errs.hint(&st.referenced, format!("an SQL step does not take `{key}:`"), "an SQL step takes `query:` (with `params:`) or `transaction:`, `checks:`, `capture:`, `explain:`, `timeout:`"));
    }
    let db_name = rs.string(db)?;
    let database = {
        let known = rs.databases.borrow();
        match known.iter().position(|n| *n == db_name) {
            Some(i) => i,
            None => {
                let hint = crate::error::did_you_mean(&db_name, known.iter().map(String::as_str)).unwrap_or_else(
                    || match known.is_empty() {
                        true => "declare it: `databases: { app: { url: postgres://… } }`".into(),
                        false => format!("databases: {}", known.join(", ")),
                    },
                );
                return Err(errs.hint(&db.referenced, format!("no database `{db_name}`"), hint));
            }
        }
    };
    let (statements, transaction, name) = match (&s.query, s.transaction.is_empty()) {
        (Some(q), true) => {
            let text = match &q.value {
                Value::String(t) => rs.sub(t, &q.referenced)?,
                _ => {
                    return Err(errs.hint(
                        &q.referenced,
                        "`query:` of an SQL step is the statement's text",
                        "e.g. `query: SELECT id FROM leads WHERE id = $1` with `params: [ \"{{ id }}\" ]`",
                    ))
                }
            };
            let name = match &s.name {
                Some(n) => rs.string(n)?,
                None => default_name(&text),
            };
            let stmt = statement(rs, name.clone(), &text, &s.params, &q.referenced, names)?;
            (vec![stmt], false, name)
        }
        (None, false) => {
            if let Some(p) = s.params.first() {
                return Err(errs.hint(
                    &p.referenced,
                    "`params:` goes with `query:`",
                    "in a transaction each statement has its own `params:`",
                ));
            }
            let name = match &s.name {
                Some(n) => rs.string(n)?,
                None => format!("transaction-{}", st.referenced.line()),
            };
            let mut out = Vec::new();
            for (i, t) in s.transaction.iter().enumerate() {
                let text = rs.string(&t.value.query)?;
                let sname = match &t.value.name {
                    Some(n) => rs.string(n)?,
                    None => format!("#{}", i + 1),
                };
                if out.iter().any(|x: &SqlStatement| x.name == sname) {
                    return Err(errs.hint(
                        &t.referenced,
                        format!("statement `{sname}` appears twice in the transaction"),
                        "give each statement a distinct `name:`",
                    ));
                }
                out.push(statement(
                    rs,
                    sname,
                    &text,
                    &t.value.params,
                    &t.value.query.referenced,
                    names,
                )?);
            }
            (out, true, name)
        }
        (Some(q), false) => {
            return Err(errs.hint(
                &q.referenced,
                "an SQL step takes `query:` or `transaction:`, not both",
                "put the query in the transaction's list",
            ))
        }
        (None, true) => {
            return Err(errs.hint(
                &db.referenced,
                "an SQL step needs `query:` or `transaction:`",
                "e.g. `query: SELECT 1`",
            ))
        }
    };
    let checks = s.checks.iter().map(|c| sql_check(rs, c)).collect::<R<Vec<_>>>()?;
    let mut captures = Vec::new();
    for (cname, c) in &s.capture {
        let column = match &c.value {
            Value::Object(m) if m.len() == 1 => match m.get("column") {
                Some(Value::String(col)) => col.clone(),
                _ => None.ok_or_else(|| capture_hint(rs, cname, c))?,
            },
            _ => return Err(capture_hint(rs, cname, c)),
        };
        captures.push((slots.get(cname).copied().unwrap_or(0), column));
    }
    let timeout = s
        .timeout
        .as_ref()
        .map(|t| rs.positive_duration(t, "timeout"))
        .transpose()?;
    Ok(Step {
        name,
        kind: StepKind::Sql(SqlStep {
            database,
            statements,
            transaction,
            checks,
            captures,
            explain: s.explain.as_ref().is_some_and(|e| e.value),
            timeout,
        }),
        think,
    })
}

fn capture_hint(rs: &Resolver, cname: &str, c: &Any) -> PlanError {
    rs.errs.hint(
        &c.referenced,
        format!("capture {cname}: not understood"),
        "an SQL step captures from a column of the first row: `{ column: status }`",
    )
}

/// `SELECT id FROM leads WHERE …` → `SELECT leads`: the verb and the first table named.
fn default_name(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let verb = words.first().map_or("SQL", |w| w).to_ascii_uppercase();
    let after = |kw: &str| {
        words
            .iter()
            .position(|w| w.eq_ignore_ascii_case(kw))
            .and_then(|i| words.get(i + 1))
    };
    let table = after("from").or_else(|| after("into")).or_else(|| match verb.as_str() {
        "UPDATE" => words.get(1),
        _ => None,
    });
    match table {
        Some(t) => format!(
            "{verb} {}",
            t.trim_matches(|c: char| !c.is_alphanumeric() && c != '_' && c != '.')
        ),
        None => verb,
    }
}

fn statement(rs: &Resolver, name: String, text: &str, params: &[Any], at: &Location, names: &Names) -> R<SqlStatement> {
    if text.trim().is_empty() {
        return Err(rs.errs.at(at, "the statement is empty"));
    }
    if text.contains("{{") {
        return Err(rs.errs.hint(
            at,
            "a template in the SQL text",
            "values go in `params:` and the text refers to them as $1, $2 …: they are bound, never spliced into the statement",
        ));
    }
    let params = params
        .iter()
        .enumerate()
        .map(|(i, p)| template(rs, p, &format!("params[{i}]"), crate::template::Escape::None, names))
        .collect::<R<Vec<_>>>()?;
    Ok(SqlStatement {
        name,
        query: text.to_string(),
        params,
        at: format!("{}:{}:{}", rs.errs.file, at.line(), at.column()),
    })
}

/// `{ rows: 1 }`, `{ rows: ">= 1" }`, `{ column: status, equals: new }`, with an optional `name:`.
fn sql_check(rs: &Resolver, c: &Any) -> R<SqlCheck> {
    let errs = &rs.errs;
    let hint = "SQL checks: `rows: 1`, `rows: \">= 1\"` (<, <=, >, >=), `{ column: status, equals: new }`, optionally with `name:`";
    let Value::Object(m) = &c.value else {
        return Err(errs.hint(&c.referenced, "a check must be a map", hint));
    };
    let name = m
        .get("name")
        .map(|v| v.as_str().map(String::from).unwrap_or_else(|| v.to_string()));
    let kind = if let Some(r) = m.get("rows") {
        let text = match r {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.trim().to_string(),
            _ => return Err(errs.hint(&c.referenced, "rows: a count or a comparison", hint)),
        };
        let (op, rest) = [("<=", CmpOp::Le), (">=", CmpOp::Ge), ("<", CmpOp::Lt), (">", CmpOp::Gt)]
            .into_iter()
            .find_map(|(p, op)| text.strip_prefix(p).map(|rest| (Some(op), rest.trim())))
            .unwrap_or((None, text.trim_start_matches('=').trim()));
        let n: u64 = rest
            .parse()
            .map_err(|_| errs.hint(&c.referenced, format!("rows: `{text}` is not a count"), hint))?;
        SqlCheckKind::Rows { op, n }
    } else if let Some(col) = m.get("column") {
        let Some(col) = col.as_str() else {
            return Err(errs.hint(&c.referenced, "column: the column's name", hint));
        };
        let equals = match m.get("equals") {
            Some(Value::String(s)) => rs.sub(s, &c.referenced)?,
            Some(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
            _ => return Err(errs.hint(&c.referenced, "a column check needs `equals:`", hint)),
        };
        SqlCheckKind::Column {
            column: col.to_string(),
            equals,
        }
    } else {
        let key = m.keys().find(|k| *k != "name").cloned().unwrap_or_default();
        return Err(errs.hint(&c.referenced, format!("`{key}` is not an SQL check"), hint));
    };
    for k in m.keys() {
        if !matches!(k.as_str(), "name" | "rows" | "column" | "equals") {
            return Err(errs.hint(&c.referenced, format!("`{k}` is not part of an SQL check"), hint));
        }
    }
    let label = name.unwrap_or_else(|| match &kind {
        SqlCheckKind::Rows { op, n } => {
            let op = match op {
                None => "=",
                Some(CmpOp::Lt) => "<",
                Some(CmpOp::Le) => "<=",
                Some(CmpOp::Gt) => ">",
                Some(CmpOp::Ge) => ">=",
            };
            format!("rows {op} {n}")
        }
        SqlCheckKind::Column { column, equals } => format!("{column} = {equals}"),
    });
    Ok(SqlCheck { name: label, kind })
}
