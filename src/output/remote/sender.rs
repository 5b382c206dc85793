//! Delivery of a remote output's requests: an HTTP/1.1 client on the load's transport, and a
//! queue between the runner (which only enqueues, once a second, never waiting) and a task
//! that posts. A slow or dead receiver can therefore never slow the load: the queue is bounded
//! (the oldest seconds are dropped first, and counted), failures are retried with a back-off,
//! and at the run's end the task gets a bounded time to drain before what is left is counted
//! as not delivered.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use tokio::sync::Notify;

use super::{Endpoint, Kind};
use crate::rundir::OutputStats;
use crate::transport::Transport;

/// Seconds kept waiting for delivery: ten minutes of a receiver being down.
const QUEUE_CAP: usize = 600;
/// Seconds sent in one request when a backlog has built up.
const COALESCE: usize = 60;
/// One request's bound: a receiver slower than this is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// At the end of the run: how long the queue may take to drain when the receiver has been
/// answering, and when it has not (its last answer a failure, or no answer yet at all).
const DRAIN_HEALTHY: Duration = Duration::from_secs(5);
const DRAIN_FAILING: Duration = Duration::from_secs(1);

/// Why a request was not delivered.
#[derive(Debug)]
pub enum Failure {
    /// Worth another try: no connection, a timeout, 429 or 5xx.
    Retry(String),
    /// The receiver refused the data itself (4xx): trying again cannot help.
    Refused(String),
}

impl Failure {
    pub fn message(&self) -> &str {
        match self {
            Failure::Retry(m) | Failure::Refused(m) => m,
        }
    }
}

/// One connection to the receiver, made again after any failure.
pub struct Client {
    endpoint: Arc<Endpoint>,
    transport: Transport,
    conn: Option<http1::SendRequest<Full<Bytes>>>,
    /// Kept: it holds the compressor's hash table, allocated once instead of every second.
    snappy: snap::raw::Encoder,
}

impl Client {
    pub fn new(endpoint: Arc<Endpoint>) -> Client {
        let tls = if endpoint.origin.tls {
            crate::transport::tls_config(false, false, &Default::default()).ok()
        } else {
            None
        };
        Client {
            endpoint,
            transport: Transport::new(tls, Duration::from_secs(5)),
            conn: None,
            snappy: snap::raw::Encoder::new(),
        }
    }

    /// Posts one request body (uncompressed protobuf; snappy is applied for remote write).
    pub async fn post(&mut self, body: &[u8]) -> Result<(), Failure> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.post_inner(body)).await {
            Ok(r) => r,
            Err(_) => {
                self.conn = None;
                Err(Failure::Retry(format!(
                    "no answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                )))
            }
        }
    }

    async fn post_inner(&mut self, body: &[u8]) -> Result<(), Failure> {
        let e = &self.endpoint;
        let payload = match e.kind {
            Kind::PrometheusRw => self
                .snappy
                .compress_vec(body)
                .map_err(|err| Failure::Refused(format!("snappy: {err}")))?,
            Kind::Otlp => body.to_vec(),
        };
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            self.conn = Some(
                crate::monitor::prometheus::connect(&e.origin, &self.transport)
                    .await
                    .map_err(Failure::Retry)?,
            );
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(Failure::Retry("no connection".into()));
        };
        if let Err(err) = conn.ready().await {
            self.conn = None;
            return Err(Failure::Retry(err.to_string()));
        }
        let mut req = http::Request::post(e.path.as_str())
            .header(http::header::HOST, e.origin.authority.as_str())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .header(
                http::header::USER_AGENT,
                concat!("stampede/", env!("CARGO_PKG_VERSION")),
            );
        if e.kind == Kind::PrometheusRw {
            req = req
                .header(http::header::CONTENT_ENCODING, "snappy")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0");
        }
        for (k, v) in &e.headers {
            req = req.header(k, v);
        }
        let req = req
            .body(Full::new(Bytes::from(payload)))
            .map_err(|err| Failure::Refused(err.to_string()))?;
        let resp = match conn.send_request(req).await {
            Ok(r) => r,
            Err(err) => {
                self.conn = None;
                return Err(Failure::Retry(err.to_string()));
            }
        };
        let status = resp.status();
        let text = match Limited::new(resp.into_body(), 64 << 10).collect().await {
            Ok(b) => String::from_utf8_lossy(&b.to_bytes()).trim().to_string(),
            Err(_) => {
                self.conn = None;
                String::new()
            }
        };
        if status.is_success() {
            return Ok(());
        }
        let what = format!(
            "{} answered {}{}{}",
            e.url,
            status.as_u16(),
            if text.is_empty() { "" } else { ": " },
            text.chars().take(200).collect::<String>()
        );
        if status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            Err(Failure::Retry(what))
        } else {
            Err(Failure::Refused(what))
        }
    }
}

struct Shared {
    queue: Mutex<State>,
    wake: Notify,
}

#[derive(Default)]
struct State {
    batches: VecDeque<Vec<u8>>,
    closing: bool,
    stats: Counts,
}

#[derive(Default, Clone)]
struct Counts {
    queued: u64,
    sent: u64,
    dropped: u64,
    failed_attempts: u64,
    last_error: Option<String>,
    /// The latest attempt failed (the receiver is down or refusing).
    failing: bool,
}

/// The queue and the task that empties it.
pub struct Sender {
    endpoint: Arc<Endpoint>,
    shared: Arc<Shared>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Sender {
    /// Starts the posting task on the current runtime (the runner's, not a load thread's).
    pub fn start(endpoint: Arc<Endpoint>) -> Sender {
        let shared = Arc::new(Shared {
            queue: Mutex::new(State::default()),
            wake: Notify::new(),
        });
        let task = tokio::spawn(deliver(Client::new(endpoint.clone()), shared.clone()));
        Sender {
            endpoint,
            shared,
            task: Some(task),
        }
    }

    /// Queues one second's request; never waits. A full queue drops its oldest second.
    pub fn push(&self, body: Vec<u8>) {
        let mut st = lock(&self.shared);
        if st.batches.len() >= QUEUE_CAP {
            st.batches.pop_front();
            st.stats.dropped += 1;
            st.stats.last_error.get_or_insert_with(|| "the queue was full".into());
        }
        st.batches.push_back(body);
        st.stats.queued += 1;
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Lets the queue drain for a bounded time, then counts what is left as dropped.
    pub async fn finish(mut self) -> OutputStats {
        let failing = {
            let mut st = lock(&self.shared);
            st.closing = true;
            st.stats.failing || (st.stats.sent == 0 && st.stats.queued > 1)
        };
        self.shared.wake.notify_one();
        let bound = if failing { DRAIN_FAILING } else { DRAIN_HEALTHY };
        let mut cut_short = false;
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(bound, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
                cut_short = true;
            }
        }
        let mut st = lock(&self.shared);
        if cut_short && st.stats.last_error.is_none() {
            st.stats.last_error = Some(format!(
                "the receiver had not answered {} s after the run ended",
                bound.as_secs()
            ));
        }
        let left = st.batches.len() as u64;
        st.batches.clear();
        st.stats.dropped += left;
        let c = st.stats.clone();
        // A batch taken by the task and lost with it when aborted is neither sent nor in the
        // queue: count it too, so that sent + dropped = queued.
        let lost = c.queued.saturating_sub(c.sent + c.dropped);
        OutputStats {
            output: self.endpoint.kind.name().into(),
            url: self.endpoint.url.clone(),
            seconds: c.queued,
            sent: c.sent,
            dropped: c.dropped + lost,
            failed_attempts: c.failed_attempts,
            last_error: c.last_error,
        }
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, State> {
    shared.queue.lock().unwrap_or_else(|e| e.into_inner())
}

/// The posting task: takes up to [`COALESCE`] seconds from the front, posts them as one
/// request, and on a failure worth retrying puts them back and waits (100 ms doubling to 5 s).
async fn deliver(mut client: Client, shared: Arc<Shared>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let taken: Vec<Vec<u8>> = {
            let mut st = lock(&shared);
            if st.batches.is_empty() && st.closing {
                return;
            }
            let n = st.batches.len().min(COALESCE);
            st.batches.drain(..n).collect()
        };
        if taken.is_empty() {
            // A push made since the lock was released has left a permit: no wake-up is lost.
            shared.wake.notified().await;
            continue;
        }
        // One second (the usual case) is sent as it is; a backlog as one request.
        let joined;
        let body = match taken.as_slice() {
            [one] => one.as_slice(),
            _ => {
                joined = taken.concat();
                joined.as_slice()
            }
        };
        let result = client.post(body).await;
        if !settle(&shared, result, taken) {
            backoff = Duration::from_millis(100);
            continue;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Books a post's result; `true` when it is worth waiting and trying again (the seconds are
/// back at the queue's front, in order; beyond the queue's bound the oldest go).
fn settle(shared: &Shared, result: Result<(), Failure>, taken: Vec<Vec<u8>>) -> bool {
    let mut st = lock(shared);
    match result {
        Ok(()) => {
            st.stats.sent += taken.len() as u64;
            st.stats.failing = false;
            false
        }
        Err(Failure::Refused(m)) => {
            st.stats.dropped += taken.len() as u64;
            st.stats.failed_attempts += 1;
            st.stats.failing = true;
            st.stats.last_error = Some(m);
            false
        }
        Err(Failure::Retry(m)) => {
            st.stats.failed_attempts += 1;
            st.stats.failing = true;
            st.stats.last_error = Some(m);
            for b in taken.into_iter().rev() {
                st.batches.push_front(b);
            }
            while st.batches.len() > QUEUE_CAP {
                st.batches.pop_front();
                st.stats.dropped += 1;
            }
            true
        }
    }
}
