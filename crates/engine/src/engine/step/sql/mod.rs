//! One SQL step on PostgreSQL (tokio-postgres over the shared transport): a connection of the
//! VU's own or one from the load thread's pool, each statement prepared once per connection,
//! parameters bound as text ([`cell::TextParam`]), the rows counted as they stream (only the
//! first row is kept, for checks and captures), a transaction between BEGIN and COMMIT.
//!
//! Recorded: one sample per step execution (the statement, or the whole transaction) under the
//! step's id, and for a transaction one per statement under `<step>:<statement>`; the rows
//! returned or affected in the counter `sql_rows`. PostgreSQL's errors are `sql_<SQLSTATE>`.

pub mod cell;
pub mod preflight;

use std::cell::RefCell;
use std::str::FromStr;
use std::time::Duration;

use futures_util::StreamExt;
use stampede_plan::{Database, SqlCheckKind, SqlStep};
use tokio::time::Instant;
use tokio_postgres::{Client, Statement};
use tokio_util::sync::CancellationToken;

use self::cell::{Cell, TextParam};
use super::{bounded, error_sample, micros};
use crate::engine::vu::Vu;
use crate::engine::worker::Worker;
use crate::outcome::ErrorKind;
use crate::recorder::{Count, Sample};
use crate::transport::Transport;

/// An SQL step prepared for running.
#[derive(Debug)]
pub struct Prepared {
    pub step: SqlStep,
    /// Each statement's number in the program (its slot in a connection's statement cache).
    pub statements: Vec<usize>,
    /// For a transaction: each statement's recorder id (`<step>:<statement>`).
    pub statement_ids: Vec<usize>,
    /// The columns a check or capture reads from the first row ([`wanted_columns`]).
    pub wanted: Vec<String>,
}

/// Where a database is: its parsed URL, host and port (TCP only), the statement timeout set on
/// each connection.
#[derive(Debug, Clone)]
pub struct Target {
    pub config: Option<tokio_postgres::Config>,
    pub host: String,
    pub port: u16,
    /// Shown in messages: `host:port/dbname`, never the password.
    pub shown: String,
    pub pool: Option<u32>,
    pub statement_timeout: Duration,
}

impl Target {
    pub fn new(db: &Database, statement_timeout: Duration) -> Target {
        let config = tokio_postgres::Config::from_str(db.url.expose()).ok();
        let (host, port) = config
            .as_ref()
            .and_then(|c| {
                let host = c.get_hosts().iter().find_map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => Some(h.clone()),
                    #[allow(unreachable_patterns)]
                    _ => None,
                })?;
                Some((host, c.get_ports().first().copied().unwrap_or(5432)))
            })
            .unwrap_or_default();
        let dbname = config.as_ref().and_then(|c| c.get_dbname()).unwrap_or_default();
        Target {
            shown: format!("{host}:{port}/{dbname}"),
            config,
            host,
            port,
            pool: db.pool,
            statement_timeout,
        }
    }
}

/// One PostgreSQL connection, the statements prepared on it, its `statement_timeout`.
pub struct Conn {
    client: Client,
    /// On a load thread, the connection's I/O (tokio-postgres' `Connection`), polled by the VU
    /// that uses the connection ([`drive`]) rather than by a task of its own: a statement then
    /// costs no hop between two tasks (request handed to the connection task, rows handed
    /// back), which at 64 clients on one thread was the gap to pgbench. `None` when the
    /// connection runs as a task (before the run) or has ended.
    driver: Option<Driver>,
    prepared: Vec<Option<Statement>>,
    timeout_ms: u128,
}

/// A connection's I/O future: it reads the server's messages, writes the client's requests,
/// and ends when the connection does.
type Driver = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// Runs `work` (which talks through the connection's client) while polling the connection's
/// I/O in the same task. The work is polled first, so a request it queues is written by the
/// connection's poll right after, and again after the connection, so a reply already read is
/// taken at once. A connection that ends leaves `driver` empty; the client then reports it
/// closed to `work`.
async fn drive<F: std::future::Future>(driver: &mut Option<Driver>, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        if let std::task::Poll::Ready(v) = work.as_mut().poll(cx) {
            return std::task::Poll::Ready(v);
        }
        match driver.as_mut() {
            Some(d) => {
                if d.as_mut().poll(cx).is_ready() {
                    *driver = None;
                }
                work.as_mut().poll(cx)
            }
            None => std::task::Poll::Pending,
        }
    })
    .await
}

/// A load thread's share of a database's `pool:` (connections shared by its VUs).
pub struct Pool {
    free: RefCell<Vec<Conn>>,
    permits: tokio::sync::Semaphore,
}

impl Pool {
    /// This load thread's share of `size` connections over `workers` threads (at least one).
    pub fn new(size: u32, worker: usize, workers: usize) -> Pool {
        let (size, workers) = (size as usize, workers.max(1));
        let share = size / workers + usize::from(worker < size % workers);
        Pool {
            free: RefCell::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(share.max(1)),
        }
    }
}

/// Opens a connection on the transport and sets its statement timeout. The connection's task
/// runs on the load thread (`local`), or anywhere on the runtime (before the run).
pub async fn connect(
    transport: &Transport,
    t: &Target,
    statements: usize,
    local: bool,
) -> Result<Conn, (ErrorKind, Option<String>)> {
    let config = t
        .config
        .as_ref()
        .ok_or((ErrorKind::ConnectError, Some("not a PostgreSQL URL".into())))?;
    let stream = transport.connect(&t.host, t.port, false).await.map_err(|k| (k, None))?;
    let (client, connection) = config
        .connect_raw(stream, tokio_postgres::NoTls)
        .await
        .map_err(|e| failure(&e))?;
    let io = async move {
        let _ = connection.await;
    };
    let mut driver: Option<Driver> = if local {
        Some(Box::pin(io))
    } else {
        tokio::spawn(io);
        None
    };
    let ms = t.statement_timeout.as_millis();
    let set = format!("SET statement_timeout = {ms}");
    drive(&mut driver, client.batch_execute(&set))
        .await
        .map_err(|e| failure(&e))?;
    Ok(Conn {
        client,
        driver,
        prepared: (0..statements).map(|_| None).collect(),
        timeout_ms: ms,
    })
}

/// A tokio-postgres error as a kind (`sql_<SQLSTATE>` when the server said one) and what the
/// server said (PostgreSQL's messages never hold the connection's password).
pub fn failure(e: &tokio_postgres::Error) -> (ErrorKind, Option<String>) {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code().as_bytes();
            let mut c = [b'0'; 5];
            for (d, s) in c.iter_mut().zip(code) {
                *d = *s;
            }
            (
                ErrorKind::Sql(c),
                Some(format!("{}: {}", db.code().code(), db.message())),
            )
        }
        None if e.is_closed() => (ErrorKind::Reset, Some("the connection closed".into())),
        None => (ErrorKind::Reset, Some(e.to_string())),
    }
}

/// What one statement returned: rows returned or affected, and the first row's values by
/// column name (only those a check or capture reads).
struct Outcome {
    rows: u64,
    first: Vec<(String, Cell)>,
}

/// Runs SQL step `id` for `vu`; records its samples (and a transaction's per statement).
pub async fn run(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    prep: &Prepared,
    started: Instant,
    kill: &CancellationToken,
) -> Option<ErrorKind> {
    let step = &prep.step;
    let target = &worker.program.databases[step.database];
    let timeout = step.timeout.unwrap_or(worker.program.plan.http.timeout);
    let pool = worker.sql_pools[step.database].as_ref();
    // A pool's permit is the wait for a free connection: part of the step's latency.
    let permit = match pool {
        Some(p) => tokio::select! {
            biased;
            _ = kill.cancelled() => None,
            permit = p.permits.acquire() => permit.ok(),
        },
        None => None,
    };
    let mut conn = match pool {
        Some(p) => p.free.borrow_mut().pop(),
        None => vu.sessions.sql[step.database].take(),
    };
    let send_at = Instant::now();
    let mut message = None;
    let result = if pool.is_some() && permit.is_none() {
        Err(ErrorKind::Interrupted)
    } else {
        // The server cancels a statement at the timeout (57014); the client gives it a second
        // more before it drops the connection.
        let limit = timeout + Duration::from_secs(1);
        bounded(kill, limit, exchange(worker, vu, prep, target, &mut conn, &mut message)).await
    };
    let end = Instant::now();
    let mut sample = Sample {
        step: id,
        latency_us: micros(end.saturating_duration_since(started)),
        service_us: micros(end.saturating_duration_since(send_at)),
        code: 0,
        error: None,
        bytes_in: 0,
        bytes_out: 0,
        bytes_decoded: 0,
        redirects: 0,
    };
    match result {
        Ok(out) => {
            worker.shard.borrow_mut().count(id, Count::SqlRows, out.rows);
            sample.error = judge(step, &out, &mut vu.slots);
            if let Some(ErrorKind::Check(n)) = sample.error {
                let name = worker.program.check_name(id, n);
                error_sample(worker, id, ErrorKind::Check(n), || {
                    format!("check `{name}` failed: {} rows", out.rows)
                });
            }
        }
        Err(kind) => {
            // After an error the connection's state is unknown (a statement may still run, a
            // transaction may be open): it is not reused.
            conn = None;
            sample.error = Some(kind);
            let shown = &target.shown;
            error_sample(worker, id, kind, || {
                message.unwrap_or_else(|| kind.describe(shown, timeout))
            });
        }
    }
    worker.shard.borrow_mut().record(&sample);
    if let Some(c) = conn {
        match pool {
            Some(p) => p.free.borrow_mut().push(c),
            None => vu.sessions.sql[step.database] = Some(c),
        }
    }
    drop(permit);
    sample.error
}

/// Connects if needed, then runs the statement or the transaction.
async fn exchange(
    worker: &Worker,
    vu: &mut Vu,
    prep: &Prepared,
    target: &Target,
    conn: &mut Option<Conn>,
    message: &mut Option<String>,
) -> Result<Outcome, ErrorKind> {
    if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
        *conn = None;
        let statements = worker.program.sql_statements;
        let c = Box::pin(connect(&worker.transport, target, statements, true))
            .await
            .map_err(|(k, m)| {
                *message = m;
                k
            })?;
        *conn = Some(c);
    }
    let Some(c) = conn.as_mut() else {
        return Err(ErrorKind::ConnectError);
    };
    let mut driver = c.driver.take();
    let r = drive(&mut driver, on_connection(worker, vu, prep, c, message)).await;
    c.driver = driver;
    r
}

/// The step on an open connection: its statement timeout if it changed, then the statement
/// or the transaction.
async fn on_connection(
    worker: &Worker,
    vu: &mut Vu,
    prep: &Prepared,
    c: &mut Conn,
    message: &mut Option<String>,
) -> Result<Outcome, ErrorKind> {
    let step = &prep.step;
    // The server cancels a statement at the step's timeout (57014): set on the connection
    // when it differs from the last step's (one round trip, only then).
    let ms = step.timeout.unwrap_or(worker.program.plan.http.timeout).as_millis();
    if c.timeout_ms != ms {
        c.client
            .batch_execute(&format!("SET statement_timeout = {ms}"))
            .await
            .map_err(|e| {
                let (k, m) = failure(&e);
                *message = m;
                k
            })?;
        c.timeout_ms = ms;
    }
    if !step.transaction {
        return statement(c, vu, prep, 0).await.map_err(|(k, m)| {
            *message = m;
            k
        });
    }
    c.client.batch_execute("BEGIN").await.map_err(|e| {
        let (k, m) = failure(&e);
        *message = m;
        k
    })?;
    let mut last = None;
    for i in 0..step.statements.len() {
        let begin = Instant::now();
        let r = statement(c, vu, prep, i).await;
        let end = Instant::now();
        let error = r.as_ref().err().map(|(k, _)| *k);
        worker.shard.borrow_mut().record(&Sample {
            step: prep.statement_ids[i],
            latency_us: micros(end.saturating_duration_since(begin)),
            service_us: micros(end.saturating_duration_since(begin)),
            code: 0,
            error,
            bytes_in: 0,
            bytes_out: 0,
            bytes_decoded: 0,
            redirects: 0,
        });
        match r {
            Ok(out) => last = Some(out),
            Err((k, m)) => {
                let _ = c.client.batch_execute("ROLLBACK").await;
                *message = m.map(|m| format!("statement `{}`: {m}", step.statements[i].name));
                return Err(k);
            }
        }
    }
    c.client.batch_execute("COMMIT").await.map_err(|e| {
        let (k, m) = failure(&e);
        *message = m;
        k
    })?;
    last.ok_or(ErrorKind::Protocol)
}

/// The columns a check or capture reads (found once, when the program is prepared).
pub fn wanted_columns(step: &SqlStep) -> Vec<String> {
    let mut v: Vec<String> = step
        .checks
        .iter()
        .filter_map(|c| match &c.kind {
            SqlCheckKind::Column { column, .. } => Some(column.clone()),
            SqlCheckKind::Rows { .. } => None,
        })
        .collect();
    v.extend(step.captures.iter().map(|(_, c)| c.clone()));
    v
}

/// Prepares (once per connection) and runs statement `i` of the step.
async fn statement(
    c: &mut Conn,
    vu: &mut Vu,
    prep: &Prepared,
    i: usize,
) -> Result<Outcome, (ErrorKind, Option<String>)> {
    let s = &prep.step.statements[i];
    let slot = prep.statements[i];
    let stmt = match c.prepared.get(slot).and_then(Option::as_ref) {
        Some(st) => st.clone(),
        None => {
            let st = c.client.prepare(&s.query).await.map_err(|e| failure(&e))?;
            if let Some(x) = c.prepared.get_mut(slot) {
                *x = Some(st.clone());
            }
            st
        }
    };
    let values: Vec<Vec<u8>> = s
        .params
        .iter()
        .map(|p| {
            let mut out = Vec::new();
            vu.render_into(p, &mut out);
            out
        })
        .collect();
    let params: Vec<TextParam> = values.iter().map(|v| TextParam(v)).collect();
    let stream = c
        .client
        .query_raw(&stmt, params.iter().map(|p| p as &dyn tokio_postgres::types::ToSql))
        .await
        .map_err(|e| failure(&e))?;
    futures_util::pin_mut!(stream);
    let (mut count, mut first) = (0u64, Vec::new());
    while let Some(row) = stream.next().await {
        let row = row.map_err(|e| failure(&e))?;
        if count == 0 {
            for col in &prep.wanted {
                if let Ok(v) = row.try_get::<_, Cell>(col.as_str()) {
                    first.push((col.clone(), v));
                }
            }
        }
        count += 1;
    }
    Ok(Outcome {
        rows: stream.rows_affected().unwrap_or(count),
        first,
    })
}

/// The first failing check, and the captures from the first row.
fn judge(step: &SqlStep, out: &Outcome, slots: &mut [bytes::Bytes]) -> Option<ErrorKind> {
    let value = |col: &str| out.first.iter().find(|(c, _)| c == col).map(|(_, v)| v.0.as_str());
    for (slot, col) in &step.captures {
        if let (Some(v), Some(s)) = (value(col), slots.get_mut(*slot)) {
            *s = bytes::Bytes::copy_from_slice(v.as_bytes());
        }
    }
    for (n, check) in step.checks.iter().enumerate() {
        let ok = match &check.kind {
            SqlCheckKind::Rows { op: None, n } => out.rows == *n,
            SqlCheckKind::Rows { op: Some(op), n } => op.holds(out.rows as f64, *n as f64),
            SqlCheckKind::Column { column, equals } => value(column) == Some(equals.as_str()),
        };
        if !ok {
            return Some(ErrorKind::Check(n.min(u16::MAX as usize) as u16));
        }
    }
    None
}
