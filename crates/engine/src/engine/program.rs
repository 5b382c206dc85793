//! The plan, prepared for running: a flat table of recorded steps with global ids (the
//! recorder's index), each prepared for its protocol ([`Exec`]), origins numbered, and literal
//! parts of requests built once.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, AUTHORIZATION, CONTENT_ENCODING};
use http::{HeaderValue, Uri};
use stampede_plan::template::{Part, Template};
use stampede_plan::{Auth, Compression, HttpStep, Origin, Plan, StepKind};

use super::step::{basic_auth, gzip, prepared_wire, sql, ws, Exec, HttpPrepared};
use crate::http::decode;

/// A step that records samples (pauses record nothing), by global id.
#[derive(Debug)]
pub struct StepInfo {
    /// Display name: the step's name, or `scenario/name` when names collide across scenarios.
    pub name: String,
    pub scenario: usize,
    pub index: usize,
    pub check_names: Vec<String>,
    /// The step prepared for its protocol.
    pub exec: Exec,
}

#[derive(Debug)]
pub struct Program {
    pub plan: Arc<Plan>,
    pub steps: Vec<StepInfo>,
    /// `step_ids[scenario][step]`: the global id of a recorded step.
    pub step_ids: Vec<Vec<Option<usize>>>,
    /// The origins steps call (HTTP and WebSocket), numbered: `Sessions::http` is indexed by
    /// this, and every one is resolved before the run.
    pub origins: Vec<Origin>,
    /// The plan's databases, parsed (`Sessions::sql` and the load threads' pools are indexed by
    /// this).
    pub databases: Vec<sql::Target>,
    /// SQL statements in the program: a connection's statement cache has a slot for each.
    pub sql_statements: usize,
}

impl Program {
    pub fn new(plan: Arc<Plan>) -> Program {
        let mut name_count: HashMap<&str, usize> = HashMap::new();
        for sc in &plan.scenarios {
            for st in &sc.steps {
                if matches!(st.kind, StepKind::Http(_) | StepKind::Ws(_) | StepKind::Sql(_)) {
                    *name_count.entry(st.name.as_str()).or_default() += 1;
                }
            }
        }
        let mut steps = Vec::new();
        let mut step_ids = Vec::new();
        let mut origins: Vec<Origin> = Vec::new();
        let mut sql_statements = 0;
        for (si, sc) in plan.scenarios.iter().enumerate() {
            let mut ids = Vec::new();
            for (i, st) in sc.steps.iter().enumerate() {
                let name = if name_count.get(st.name.as_str()).copied().unwrap_or(0) > 1 {
                    format!("{}/{}", sc.name, st.name)
                } else {
                    st.name.clone()
                };
                let mut number = |o: &Origin| match origins.iter().position(|x| x == o) {
                    Some(p) => p,
                    None => {
                        origins.push(o.clone());
                        origins.len() - 1
                    }
                };
                let h = match &st.kind {
                    StepKind::Http(h) => h,
                    StepKind::Ws(w) => {
                        let origin = number(&w.origin);
                        ids.push(Some(steps.len()));
                        steps.extend(ws_steps(&origins[origin], w, origin, name, si, i, steps.len()));
                        continue;
                    }
                    StepKind::Sql(q) => {
                        ids.push(Some(steps.len()));
                        let first = steps.len();
                        let statements = (sql_statements..sql_statements + q.statements.len()).collect();
                        sql_statements += q.statements.len();
                        let parts: Vec<StepInfo> = if q.transaction {
                            q.statements
                                .iter()
                                .map(|s| StepInfo {
                                    name: format!("{name}:{}", s.name),
                                    scenario: si,
                                    index: i,
                                    check_names: Vec::new(),
                                    exec: Exec::Part,
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        steps.push(StepInfo {
                            name,
                            scenario: si,
                            index: i,
                            check_names: q.checks.iter().map(|c| c.name.clone()).collect(),
                            exec: Exec::Sql(sql::Prepared {
                                step: q.clone(),
                                statements,
                                statement_ids: (0..parts.len()).map(|k| first + 1 + k).collect(),
                                wanted: sql::wanted_columns(q),
                            }),
                        });
                        steps.extend(parts);
                        continue;
                    }
                    StepKind::Pause(_) => {
                        ids.push(None);
                        continue;
                    }
                };
                let origin = number(&h.origin);
                ids.push(Some(steps.len()));
                let mut prep = prepare(&plan, h, origin);
                prep.wire = prepared_wire(&prep);
                steps.push(StepInfo {
                    name,
                    scenario: si,
                    index: i,
                    check_names: h.checks.iter().map(|c| c.name.clone()).collect(),
                    exec: Exec::Http(prep),
                });
            }
            step_ids.push(ids);
        }
        let databases = plan
            .databases
            .iter()
            .enumerate()
            .map(|(d, db)| sql::Target::new(db, statement_timeout(&plan, d)))
            .collect();
        Program {
            plan,
            steps,
            step_ids,
            origins,
            databases,
            sql_statements,
        }
    }

    pub fn step_names(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.name.clone()).collect()
    }

    /// Each HTTP or WebSocket step's origin as `scheme://authority` (a WebSocket step's parts,
    /// its connect attempts and named replies, with it), by step name: the hosts table's rows.
    pub fn step_hosts(&self) -> std::collections::BTreeMap<String, String> {
        let mut out = std::collections::BTreeMap::new();
        let mut last: Option<String> = None;
        for s in &self.steps {
            let origin = match &s.exec {
                Exec::Http(p) => Some((p.origin, "http")),
                Exec::Ws(p) => Some((p.origin, "ws")),
                Exec::Sql(_) => {
                    last = None;
                    None
                }
                Exec::Part => None,
            };
            if let Some((i, ws)) = origin {
                last = self.origins.get(i).map(|o| {
                    let scheme = match (ws == "ws", o.tls) {
                        (false, false) => "http",
                        (false, true) => "https",
                        (true, false) => "ws",
                        (true, true) => "wss",
                    };
                    format!("{scheme}://{}", o.authority)
                });
            }
            if let Some(h) = &last {
                out.insert(s.name.clone(), h.clone());
            }
        }
        out
    }

    /// Whether any step needs TLS (the TLS configuration is built only then).
    pub fn needs_tls(&self) -> bool {
        self.origins.iter().any(|o| o.tls)
    }

    /// Whether any step is a WebSocket step.
    pub fn has_ws(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.exec, Exec::Ws(_)))
    }

    /// The name of error kind `Check(n)` of step `id`.
    pub fn check_name(&self, id: usize, n: u16) -> String {
        self.steps
            .get(id)
            .and_then(|s| s.check_names.get(n as usize))
            .cloned()
            .unwrap_or_else(|| format!("#{n}"))
    }
}

/// The statement timeout set on a database's connections: the longest `timeout` of its steps
/// (each step's own bound is kept on the client's side), else the plan's.
fn statement_timeout(plan: &Plan, database: usize) -> std::time::Duration {
    plan.scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .filter_map(|st| match &st.kind {
            StepKind::Sql(q) if q.database == database => Some(q.timeout.unwrap_or(plan.http.timeout)),
            _ => None,
        })
        .max()
        .unwrap_or(plan.http.timeout)
}

/// A WebSocket step's recorder ids, from `first`: the step itself (replies and counters), then
/// `<name>:connect`, then `<name>:<reply>` for each named reply. All share the step's check
/// names (a reply's checks are numbered from its `check_base`).
fn ws_steps(
    o: &Origin,
    w: &stampede_plan::WsStep,
    origin: usize,
    name: String,
    scenario: usize,
    index: usize,
    first: usize,
) -> Vec<StepInfo> {
    let check_names = w.check_names();
    let part = |suffix: &str| StepInfo {
        name: format!("{name}:{suffix}"),
        scenario,
        index,
        check_names: check_names.clone(),
        exec: Exec::Part,
    };
    let mut out = vec![part("connect")];
    out.extend(w.reply_names.iter().map(|r| part(r)));
    out.insert(
        0,
        StepInfo {
            name: name.clone(),
            scenario,
            index,
            check_names: check_names.clone(),
            exec: Exec::Ws(ws::Prepared {
                step: w.clone(),
                origin,
                prefix: format!("ws://{}", o.authority),
                connect_id: first + 1,
                reply_ids: (0..w.reply_names.len()).map(|k| first + 2 + k).collect(),
            }),
        },
    );
    out
}

fn prepare(plan: &Plan, h: &HttpStep, origin: usize) -> HttpPrepared {
    let scheme = if h.origin.tls { "https" } else { "http" };
    let absolute_prefix = Bytes::from(format!("{scheme}://{}", h.origin.authority));
    let literal_path = h.path_and_query.as_literal();
    let uri_h1 = literal_path.and_then(|p| Uri::from_maybe_shared(p.clone()).ok());
    let uri_h2 = literal_path.and_then(|p| {
        let mut v = absolute_prefix.to_vec();
        v.extend_from_slice(p);
        Uri::from_maybe_shared(Bytes::from(v)).ok()
    });
    let mut static_headers = Vec::new();
    let mut dynamic_headers = Vec::new();
    // `auth:` is the step's `Authorization` header: Bearer as a template, Basic encoded here
    // when literal, else per request.
    let mut basic = None;
    let auth_header = match &h.auth {
        Some(Auth::Bearer(token)) => {
            let mut parts = vec![Part::Lit(Bytes::from_static(b"Bearer "))];
            parts.extend(token.parts.iter().cloned());
            Some((AUTHORIZATION, merge_literals(parts)))
        }
        Some(Auth::Basic { user, password }) => match (user.as_literal(), password.as_literal()) {
            (Some(u), Some(p)) => {
                let pair = [u.as_ref(), b":", p.as_ref()].concat();
                Some((AUTHORIZATION, Template::literal(basic_auth(&pair))))
            }
            _ => {
                basic = Some((user.clone(), password.clone()));
                None
            }
        },
        None => None,
    };
    let step_headers: Vec<_> = h.headers.iter().cloned().chain(auth_header).collect();
    let step_sets = |n: &http::HeaderName| step_headers.iter().any(|(m, _)| m == n);
    // Step headers override plan-wide ones of the same name (`auth:` counts as one).
    for (name, t) in plan
        .http
        .headers
        .iter()
        .filter(|(n, _)| !(step_sets(n) || basic.is_some() && *n == AUTHORIZATION))
        .chain(step_headers.iter())
    {
        match t
            .as_literal()
            .and_then(|b| HeaderValue::from_maybe_shared(b.clone()).ok())
        {
            Some(v) => static_headers.push((name.clone(), v)),
            None if t.is_empty() => static_headers.push((name.clone(), HeaderValue::from_static(""))),
            None => dynamic_headers.push((name.clone(), t.clone())),
        }
    }
    let host = HeaderValue::from_str(&h.origin.authority).unwrap_or_else(|_| HeaderValue::from_static("localhost"));
    let user_sets = |name: &http::header::HeaderName| {
        static_headers.iter().any(|(n, _)| n == name) || dynamic_headers.iter().any(|(n, _)| n == name)
    };
    let sets_host = user_sets(&http::header::HOST);
    let sets_content_type = user_sets(&http::header::CONTENT_TYPE);
    let sets_accept_encoding = user_sets(&ACCEPT_ENCODING);
    let sets_content_encoding = user_sets(&CONTENT_ENCODING);
    // Compressed responses are decoded for checks, so they may be asked for.
    if !sets_accept_encoding {
        static_headers.push((ACCEPT_ENCODING, HeaderValue::from_static(decode::ACCEPT_ENCODING)));
    }
    if h.compress == Some(Compression::Gzip) && h.body.is_some() && !sets_content_encoding {
        static_headers.push((CONTENT_ENCODING, HeaderValue::from_static("gzip")));
    }
    let (literal_body, content_type) = match &h.body {
        Some(b) => (
            b.template
                .as_literal()
                .cloned()
                .or_else(|| b.template.is_empty().then(Bytes::new))
                .map(|body| match h.compress {
                    Some(Compression::Gzip) => Bytes::from(gzip(&body)),
                    None => body,
                }),
            b.content_type
                .as_ref()
                .filter(|_| !sets_content_type)
                .and_then(|c| HeaderValue::from_maybe_shared(c.clone()).ok()),
        ),
        None => (None, None),
    };
    HttpPrepared {
        step: h.clone(),
        origin,
        uri_h1,
        uri_h2,
        absolute_prefix,
        static_headers,
        dynamic_headers,
        host,
        literal_body,
        content_type,
        sets_host,
        wire: None,
        follow: h.follow_redirects.unwrap_or(plan.http.follow_redirects),
        basic_auth: basic,
    }
}

/// Parts with adjacent literals joined, so that a literal token makes a literal header.
fn merge_literals(parts: Vec<Part>) -> Template {
    let mut out: Vec<Part> = Vec::new();
    for part in parts {
        match (out.last_mut(), part) {
            (Some(Part::Lit(a)), Part::Lit(b)) => *a = Bytes::from([a.as_ref(), b.as_ref()].concat()),
            (_, part) => out.push(part),
        }
    }
    Template { parts: out }
}
