//! Running one recorded step, whatever its protocol, and what every protocol shares: the
//! response view that checks and captures read ([`view`]), the timeout and cancellation around
//! an exchange, and error samples.
//!
//! To add a protocol: a variant of [`Exec`] (its prepared form, built by `Program::new`), a
//! module here with its `run`, one arm in [`run`], and, if its VUs keep a connection between
//! steps, a field of [`Sessions`]. Everything downstream (recorder, run directory, analysis,
//! reports) already takes its samples: a sample is a latency, a code, an outcome and bytes.

mod http;
mod redirect;
mod request;
pub mod sql;
pub mod view;
pub mod ws;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::vu::Vu;
use super::worker::Worker;
use crate::outcome::ErrorKind;

pub use self::http::Prepared as HttpPrepared;
pub(crate) use self::request::{basic_auth, gzip, prepared_wire};

/// A recorded step, prepared for running: the engine dispatches on this enum, so the hot path
/// stays monomorphic (no trait object per request). Built once per run and kept in one table,
/// so the size difference between the variants costs nothing worth a `Box` (which would add
/// an indirection to every HTTP request).
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Exec {
    Http(HttpPrepared),
    Ws(ws::Prepared),
    Sql(sql::Prepared),
    /// A recorder id that a step of another kind records into (a WebSocket step's connect
    /// attempts and named replies): never run by itself.
    Part,
}

/// The sessions a VU keeps between steps: one per origin (HTTP connections) and, for later
/// protocols, one per database. Indexed by the program's numbering of each; origins a redirect
/// led to that no step names follow the program's, numbered as the VU met them.
pub struct Sessions {
    pub http: Vec<Option<crate::http::Connection>>,
    /// Per database, the VU's own PostgreSQL connection (databases without `pool:`).
    pub sql: Vec<Option<sql::Conn>>,
    /// Origins beyond the program's: `http[program.origins.len() + i]` talks to `extra[i]`.
    pub extra: Vec<stampede_plan::Origin>,
}

impl Sessions {
    pub fn new(origins: usize, databases: usize) -> Sessions {
        Sessions {
            http: (0..origins).map(|_| None).collect(),
            sql: (0..databases).map(|_| None).collect(),
            extra: Vec::new(),
        }
    }

    /// The session number of `origin`, making one for an origin the VU has not talked to.
    pub fn index_of(&mut self, known: &[stampede_plan::Origin], origin: &stampede_plan::Origin) -> usize {
        if let Some(i) = known.iter().position(|o| o == origin) {
            return i;
        }
        if let Some(i) = self.extra.iter().position(|o| o == origin) {
            return known.len() + i;
        }
        self.extra.push(origin.clone());
        self.http.push(None);
        self.http.len() - 1
    }
}

/// The origin of session `i` (see [`Sessions::index_of`]).
pub fn session_origin<'a>(
    known: &'a [stampede_plan::Origin],
    extra: &'a [stampede_plan::Origin],
    i: usize,
) -> &'a stampede_plan::Origin {
    known.get(i).unwrap_or_else(|| &extra[i - known.len()])
}

/// Runs step `id` for `vu` and records its samples; returns the error of its last sample (for
/// the VU's back-off after failed connects). `started` is when the step is deemed to start: the
/// arrival's intended time for the first step of an open-model iteration, otherwise now.
/// `stop` ends a long-lived step early (a WebSocket session starts no new round once the
/// phase's time is up); `kill` cancels it in flight (recorded as `interrupted`).
pub async fn run(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    started: Instant,
    stop: &CancellationToken,
    kill: &CancellationToken,
) -> Option<ErrorKind> {
    match &worker.program.steps[id].exec {
        Exec::Http(prep) => {
            let sample = http::run(worker, vu, id, prep, started, kill).await;
            worker.shard.borrow_mut().record(&sample);
            if let Some(wait) = vu.hold.take() {
                // Honouring a 429's Retry-After (`http.on_429: wait`): not timed, and it ends
                // early when the phase stops.
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = stop.cancelled() => {}
                    _ = kill.cancelled() => {}
                }
            }
            sample.error
        }
        // Boxed: an async fn's future is as large as its largest arm, and each VU's task holds
        // it for the whole run. A WebSocket session's and a PostgreSQL exchange's futures are
        // many kilobytes; unboxed, every VU of every plan (HTTP only, too) would carry them,
        // about 13 KiB a VU. One allocation per WebSocket session or SQL step is nothing
        // beside the round trips they make.
        Exec::Ws(prep) => Box::pin(ws::run(worker, vu, id, prep, started, stop, kill)).await,
        Exec::Sql(prep) => Box::pin(sql::run(worker, vu, id, prep, started, kill)).await,
        Exec::Part => None,
    }
}

/// Runs `exchange` within `timeout`, unless `kill` cancels it first.
pub(super) async fn bounded<T>(
    kill: &CancellationToken,
    timeout: Duration,
    exchange: impl Future<Output = Result<T, ErrorKind>>,
) -> Result<T, ErrorKind> {
    tokio::select! {
        biased;
        _ = kill.cancelled() => Err(ErrorKind::Interrupted),
        r = tokio::time::timeout(timeout, exchange) => r.unwrap_or(Err(ErrorKind::Timeout)),
    }
}

/// Keeps an error sample message of `kind` for step `id`, built only when the recorder wants
/// one (a few per step and second, and the first of each kind), so failing at full speed
/// allocates nothing.
pub(super) fn error_sample(worker: &Worker, id: usize, kind: ErrorKind, message: impl FnOnce() -> String) {
    if worker.shard.borrow().wants_sample(id, kind) {
        let msg = message();
        worker.shard.borrow_mut().add_sample(id, kind, msg);
    }
}

/// The start of a response body, on one line, for an error sample (raw: reports escape it).
pub(super) fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 160;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let mut one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if body.len() > MAX {
        one_line.push('…');
    }
    if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

pub(super) fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}
