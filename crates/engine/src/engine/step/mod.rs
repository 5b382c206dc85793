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
pub mod view;

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::vu::Vu;
use super::worker::Worker;
use crate::outcome::ErrorKind;
use crate::recorder::Sample;

pub use self::http::Prepared as HttpPrepared;
pub(crate) use self::request::{basic_auth, gzip, prepared_wire};

/// A recorded step, prepared for running: the engine dispatches on this enum, so the hot path
/// stays monomorphic (no trait object per request).
#[derive(Debug)]
pub enum Exec {
    Http(HttpPrepared),
}

/// The sessions a VU keeps between steps: one per origin (HTTP connections) and, for later
/// protocols, one per database. Indexed by the program's numbering of each; origins a redirect
/// led to that no step names follow the program's, numbered as the VU met them.
pub struct Sessions {
    pub http: Vec<Option<crate::http::Connection>>,
    /// Origins beyond the program's: `http[program.origins.len() + i]` talks to `extra[i]`.
    pub extra: Vec<stampede_plan::Origin>,
}

impl Sessions {
    pub fn new(origins: usize) -> Sessions {
        Sessions {
            http: (0..origins).map(|_| None).collect(),
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

/// Runs step `id` for `vu` and returns its one sample. `started` is when the step is deemed to
/// start: the arrival's intended time for the first step of an open-model iteration, otherwise
/// now. `kill` cancels it in flight (recorded as `interrupted`).
pub async fn run(worker: &Worker, vu: &mut Vu, id: usize, started: Instant, kill: &CancellationToken) -> Sample {
    match &worker.program.steps[id].exec {
        Exec::Http(prep) => http::run(worker, vu, id, prep, started, kill).await,
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

/// Keeps an error sample message for step `id`, built only when the recorder wants one (at
/// most a few per step and second), so failing at full speed allocates nothing.
pub(super) fn error_sample(worker: &Worker, id: usize, message: impl FnOnce() -> String) {
    if worker.shard.borrow().wants_sample(id) {
        let msg = message();
        worker.shard.borrow_mut().add_sample(id, msg);
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
