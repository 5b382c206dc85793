//! The session of one WebSocket step: its actions run in order on the step's connection, with
//! the replies awaited while messages keep arriving.
//!
//! One loop ([`Session::wait`]) reads the connection, matches each message to the oldest
//! awaited reply it answers (the rest are pushes), expires replies whose timeout passed
//! (`ws_lost`) and notices a close; every action is built on it. Outside `repeat` an action
//! with a reply waits for it; inside, the rounds keep their schedule whatever the server does
//! (a reply still awaited when the next round is due goes on being awaited), and a reply's
//! latency counts from its round's scheduled time, as the open model counts from an arrival's.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use stampede_plan::{Receive, Reply, ReplyMatch, WsAction};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::ClientRequestBuilder;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_util::sync::CancellationToken;

use super::{open, Prepared, Socket};
use crate::engine::step::view::{Headers, View};
use crate::engine::step::{error_sample, excerpt, micros};
use crate::engine::vu::Vu;
use crate::engine::worker::Worker;
use crate::outcome::ErrorKind;
use crate::recorder::{Count, Sample};

/// How long the closing handshake at the step's end may take before the connection is
/// simply dropped.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The close code counted when the connection broke without a close frame (RFC 6455 §7.1.5).
const ABNORMAL: u16 = 1006;

pub(super) struct Session<'a> {
    worker: &'a Worker,
    vu: &'a mut Vu,
    id: usize,
    prep: &'a Prepared,
    stop: &'a CancellationToken,
    kill: &'a CancellationToken,
    ws: Option<Socket>,
    pending: Vec<Pending<'a>>,
    reconnects_left: u32,
    /// When the connection was lost, for the time to reconnect.
    dropped_at: Option<Instant>,
    /// The last sequence number pushed on this connection.
    last_seq: Option<i64>,
    /// Pushes received during this step (for `receive: { count }`).
    pushes: u64,
    /// The handshake's timeout and the default reply timeout.
    timeout: Duration,
    /// The session cannot go on: closed for good, or cancelled.
    ended: bool,
}

/// A reply being awaited (or a ping's pong, `reply: None`).
struct Pending<'a> {
    reply: Option<&'a Reply>,
    /// For `match: "$.path"`: the sent message's value there.
    expect: Option<serde_json::Value>,
    /// The recorder id its sample goes to.
    record: usize,
    intended: Instant,
    sent: Instant,
    deadline: Instant,
    timeout: Duration,
    bytes_out: u64,
}

/// What one turn of the wait loop saw.
enum Event {
    Kill,
    Message(Option<Result<Message, tungstenite::Error>>),
    Tick,
}

impl<'a> Session<'a> {
    pub(super) fn new(
        worker: &'a Worker,
        vu: &'a mut Vu,
        id: usize,
        prep: &'a Prepared,
        stop: &'a CancellationToken,
        kill: &'a CancellationToken,
    ) -> Session<'a> {
        Session {
            worker,
            vu,
            id,
            prep,
            stop,
            kill,
            ws: None,
            pending: Vec::new(),
            reconnects_left: prep.step.reconnect.map_or(0, |r| r.max),
            dropped_at: None,
            last_seq: None,
            pushes: 0,
            timeout: prep.step.timeout.unwrap_or(worker.program.plan.http.timeout),
            ended: false,
        }
    }

    pub(super) async fn run(mut self, started: Instant) -> Option<ErrorKind> {
        if let Err(kind) = self.connect(started).await {
            return Some(kind);
        }
        let session = &self.prep.step.session;
        self.actions(session, None).await;
        self.wait(None, None).await;
        self.finish().await;
        None
    }

    /// Runs `actions` in order; `round` is the scheduled time of the `repeat` round they belong
    /// to (`None` outside a repeat). Boxed: a repeat runs its actions through this again.
    fn actions<'s>(
        &'s mut self,
        actions: &'a [WsAction],
        round: Option<Instant>,
    ) -> Pin<Box<dyn Future<Output = ()> + 's>> {
        Box::pin(async move {
            for action in actions {
                if self.ended || self.stop.is_cancelled() {
                    return;
                }
                match action {
                    WsAction::Send { message, reply } => {
                        self.send(message, reply.as_ref(), round).await;
                        if reply.is_some() && round.is_none() {
                            self.wait(None, None).await;
                        }
                    }
                    WsAction::Repeat { count, every, actions } => {
                        let start = Instant::now();
                        for k in 0..*count {
                            let due = start + *every * k;
                            self.wait(Some(due), None).await;
                            if self.ended || self.stop.is_cancelled() {
                                break;
                            }
                            self.actions(actions, Some(due)).await;
                        }
                        if round.is_none() {
                            self.wait(None, None).await;
                        }
                    }
                    WsAction::Receive(Receive::For(d)) => self.wait(Some(Instant::now() + *d), None).await,
                    WsAction::Receive(Receive::Count { count, timeout }) => {
                        let until = Instant::now() + timeout.unwrap_or(self.timeout);
                        self.wait(Some(until), Some(self.pushes + count)).await;
                    }
                    WsAction::Ping => {
                        self.ping(round).await;
                        if round.is_none() {
                            self.wait(None, None).await;
                        }
                    }
                    WsAction::Close => {
                        self.wait(None, None).await;
                        self.finish().await;
                        self.ended = true;
                    }
                }
            }
        })
    }

    /// Opens the connection and records the attempt under `<step>:connect`.
    async fn connect(&mut self, intended: Instant) -> Result<(), ErrorKind> {
        let (worker, prep) = (self.worker, self.prep);
        let program = &worker.program;
        let origin = &program.origins[prep.origin];
        let begin = Instant::now();
        let result = match self.request() {
            Ok(request) => {
                let max = program.plan.http.max_body;
                tokio::select! {
                    biased;
                    _ = self.kill.cancelled() => Err((ErrorKind::Interrupted, None)),
                    r = open(&worker.transport, origin, request, max, self.timeout) => r,
                }
            }
            Err(kind) => Err((kind, None)),
        };
        let end = Instant::now();
        let error = result.as_ref().err().map(|(k, _)| *k);
        let code = match error {
            None => 101,
            Some(ErrorKind::WsHandshake(s)) => s,
            Some(_) => 0,
        };
        let id = prep.connect_id;
        {
            let mut shard = worker.shard.borrow_mut();
            shard.record(&Sample {
                step: id,
                latency_us: micros(end.saturating_duration_since(intended.min(begin))),
                service_us: micros(end.saturating_duration_since(begin)),
                code,
                error,
                bytes_in: 0,
                bytes_out: 0,
                bytes_decoded: 0,
                redirects: 0,
            });
            shard.count(self.id, Count::WsConnects, 1);
            if error.is_some() {
                shard.count(self.id, Count::WsConnectFailed, 1);
            } else {
                shard.ws_open += 1;
            }
        }
        match result {
            Ok(ws) => {
                self.ws = Some(ws);
                self.last_seq = None;
                Ok(())
            }
            Err((kind, message)) => {
                let timeout = self.timeout;
                error_sample(worker, id, kind, || {
                    message.unwrap_or_else(|| kind.describe(&origin.authority, timeout))
                });
                Err(kind)
            }
        }
    }

    /// The upgrade request: the rendered path, the plan's and the step's headers (the step's
    /// win by name), the subprotocols.
    fn request(&mut self) -> Result<tungstenite::handshake::client::Request, ErrorKind> {
        use tungstenite::client::IntoClientRequest;
        let step = &self.prep.step;
        let path = self.render(&step.path_and_query);
        let uri = format!("{}{}", self.prep.prefix, String::from_utf8_lossy(&path));
        let uri: http::Uri = uri.parse().map_err(|_| ErrorKind::InvalidRequest)?;
        let mut builder = ClientRequestBuilder::new(uri);
        let plan_headers = &self.worker.program.plan.http.headers;
        let inherited = plan_headers
            .iter()
            .filter(|(n, _)| !step.headers.iter().any(|(m, _)| m == n));
        for (name, t) in inherited.chain(step.headers.iter()) {
            let value = self.render(t);
            if !value.iter().all(|&b| b >= 0x20 && b != 0x7f || b == b'\t') {
                return Err(ErrorKind::InvalidHeader);
            }
            builder = builder.with_header(name.as_str(), String::from_utf8_lossy(&value));
        }
        for p in &step.subprotocols {
            builder = builder.with_sub_protocol(p.as_str());
        }
        builder.into_client_request().map_err(|_| ErrorKind::InvalidRequest)
    }

    fn render(&mut self, t: &stampede_plan::template::Template) -> Vec<u8> {
        let mut out = Vec::new();
        self.vu.render_into(t, &mut out);
        out
    }

    /// Has a connection, reconnecting if the session allows; `false` when it cannot go on.
    async fn connected(&mut self) -> bool {
        if self.ws.is_some() {
            return true;
        }
        while !self.ended && self.reconnects_left > 0 {
            self.reconnects_left -= 1;
            let backoff = self.prep.step.reconnect.map_or(Duration::ZERO, |r| r.backoff);
            tokio::select! {
                biased;
                _ = self.kill.cancelled() => {
                    self.ended = true;
                    return false;
                }
                _ = tokio::time::sleep(backoff) => {}
            }
            let now = Instant::now();
            if self.connect(now).await.is_ok() {
                let since = self.dropped_at.take().unwrap_or(now);
                let ms = Instant::now().saturating_duration_since(since).as_millis() as u64;
                let mut shard = self.worker.shard.borrow_mut();
                shard.count(self.id, Count::WsReconnects, 1);
                shard.count(self.id, Count::WsReconnectMs, ms);
                return true;
            }
        }
        self.ended = true;
        false
    }

    async fn send(
        &mut self,
        message: &stampede_plan::template::Template,
        reply: Option<&'a Reply>,
        round: Option<Instant>,
    ) {
        let intended = round.unwrap_or_else(Instant::now);
        let record = reply.and_then(|r| r.named).map_or(self.id, |n| self.prep.reply_ids[n]);
        if reply.is_some() {
            self.worker.shard.borrow_mut().count(self.id, Count::WsAwaited, 1);
        }
        if !self.connected().await {
            if reply.is_some() {
                self.failed(record, intended, 0, ErrorKind::WsClosed);
            }
            return;
        }
        let bytes = self.render(message);
        let expect = match reply.map(|r| &r.matcher) {
            Some(ReplyMatch::SameAt(path)) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| path.select(&v).cloned()),
            _ => None,
        };
        let n = bytes.len() as u64;
        let msg = match String::from_utf8(bytes) {
            Ok(text) => Message::Text(text.into()),
            Err(e) => Message::Binary(Bytes::from(e.into_bytes())),
        };
        let sent = Instant::now();
        if !self.write(msg).await {
            if reply.is_some() {
                self.failed(record, intended, n, ErrorKind::WsClosed);
            }
            return;
        }
        let shard = &mut *self.worker.shard.borrow_mut();
        shard.count(self.id, Count::WsSent, 1);
        match reply {
            Some(r) => {
                let timeout = r.timeout.unwrap_or(self.timeout);
                self.pending.push(Pending {
                    reply: Some(r),
                    expect,
                    record,
                    intended,
                    sent,
                    deadline: sent + timeout,
                    timeout,
                    bytes_out: n,
                });
            }
            None => shard.add_bytes(self.id, 0, n),
        }
    }

    async fn ping(&mut self, round: Option<Instant>) {
        let intended = round.unwrap_or_else(Instant::now);
        self.worker.shard.borrow_mut().count(self.id, Count::WsAwaited, 1);
        if !self.connected().await {
            self.failed(self.id, intended, 0, ErrorKind::WsClosed);
            return;
        }
        let sent = Instant::now();
        if !self.write(Message::Ping(Bytes::from_static(b"stampede"))).await {
            self.failed(self.id, intended, 0, ErrorKind::WsClosed);
            return;
        }
        self.pending.push(Pending {
            reply: None,
            expect: None,
            record: self.id,
            intended,
            sent,
            deadline: sent + self.timeout,
            timeout: self.timeout,
            bytes_out: 8,
        });
    }

    /// Writes one message (bounded by the step's timeout: a server that stops reading fills
    /// the socket); a failure drops the connection.
    async fn write(&mut self, msg: Message) -> bool {
        let Some(ws) = self.ws.as_mut() else {
            return false;
        };
        let result = tokio::select! {
            biased;
            _ = self.kill.cancelled() => None,
            r = tokio::time::timeout(self.timeout, ws.send(msg)) => Some(matches!(r, Ok(Ok(())))),
        };
        match result {
            Some(true) => true,
            Some(false) => {
                self.dropped(ErrorKind::WsClosed, ABNORMAL, None);
                false
            }
            None => {
                self.interrupt();
                false
            }
        }
    }

    /// Reads and matches messages until `until` (or, with `until: None`, until no reply is
    /// awaited), or until `pushes` pushes have come; expires replies on the way. A wait for a
    /// time (or for pushes) ends early when `stop` fires; a wait for replies does not.
    async fn wait(&mut self, until: Option<Instant>, pushes: Option<u64>) {
        // The signals' futures and the timer live across the turns (a turn per message): made
        // once per wait, the timer reset only when its deadline moves.
        let (kill, stop): (&'a CancellationToken, &'a CancellationToken) = (self.kill, self.stop);
        let killed = kill.cancelled();
        let stopped = stop.cancelled();
        let timer = tokio::time::sleep_until(Instant::now());
        tokio::pin!(killed, stopped, timer);
        loop {
            self.expire(Instant::now());
            let now = Instant::now();
            let timed = until.is_some();
            if self.ended
                || (timed && stop.is_cancelled())
                || pushes.is_some_and(|p| self.pushes >= p)
                || until.is_some_and(|u| now >= u)
                || (until.is_none() && self.pending.is_empty())
            {
                return;
            }
            if self.ws.is_none() && !self.connected().await {
                return;
            }
            let next_deadline = self.pending.iter().map(|p| p.deadline).min();
            let wake = [until, next_deadline].into_iter().flatten().min();
            let wake = wake.unwrap_or_else(|| now + Duration::from_secs(3600));
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let Some(ws) = self.ws.as_mut() else { return };
            let event = tokio::select! {
                biased;
                _ = &mut killed => Event::Kill,
                _ = &mut stopped, if timed => Event::Tick,
                m = ws.next() => Event::Message(m),
                _ = &mut timer => Event::Tick,
            };
            match event {
                Event::Kill => {
                    self.interrupt();
                    return;
                }
                Event::Message(m) => self.on_message(m).await,
                Event::Tick => {}
            }
        }
    }

    async fn on_message(&mut self, m: Option<Result<Message, tungstenite::Error>>) {
        match m {
            Some(Ok(Message::Text(t))) => self.on_data(t.as_bytes()),
            Some(Ok(Message::Binary(b))) => self.on_data(&b),
            Some(Ok(Message::Pong(_))) => {
                if let Some(i) = self.pending.iter().position(|p| p.reply.is_none()) {
                    let p = self.pending.remove(i);
                    self.answered(p, &[]);
                }
            }
            Some(Ok(Message::Close(frame))) => {
                let code = frame.as_ref().map_or(ABNORMAL, |f| u16::from(f.code));
                let reason = frame.map(|f| f.reason.to_string());
                // Answer the close (tungstenite queued the reply), briefly.
                if let Some(ws) = self.ws.as_mut() {
                    let _ = tokio::time::timeout(Duration::from_millis(100), ws.flush()).await;
                }
                self.dropped(ErrorKind::WsClosed, code, reason);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => {
                let kind = super::classify(&e);
                // The codes a client closes with for these (RFC 6455 §7.4.1): 1002 protocol
                // error, 1009 message too big; 1006 when the connection simply broke.
                let code = match &e {
                    tungstenite::Error::Capacity(_) => 1009,
                    _ if kind == ErrorKind::Protocol => 1002,
                    _ => ABNORMAL,
                };
                let kind = if kind == ErrorKind::Protocol {
                    ErrorKind::Protocol
                } else {
                    ErrorKind::WsClosed
                };
                self.dropped(kind, code, Some(e.to_string()));
            }
            None => self.dropped(ErrorKind::WsClosed, ABNORMAL, None),
        }
    }

    /// A data message: the oldest awaited reply it answers, or a push.
    fn on_data(&mut self, data: &[u8]) {
        self.worker.shard.borrow_mut().count(self.id, Count::WsReceived, 1);
        let mut view = View::new(0, Headers::None, data);
        let hit = self.pending.iter().position(|p| match (p.reply, &p.expect) {
            (None, _) => false,
            (Some(r), expect) => match &r.matcher {
                ReplyMatch::Next => true,
                ReplyMatch::SameAt(path) => expect.is_some() && view.select(path) == expect.as_ref(),
                ReplyMatch::Check(c) => view.check(std::slice::from_ref(c)).is_none(),
            },
        });
        match hit {
            Some(i) => {
                let p = self.pending.remove(i);
                self.answered(p, data);
            }
            None => self.pushed(data, &mut view),
        }
    }

    fn pushed(&mut self, data: &[u8], view: &mut View) {
        self.pushes += 1;
        let mut shard = self.worker.shard.borrow_mut();
        shard.count(self.id, Count::WsPushes, 1);
        shard.add_bytes(self.id, data.len() as u64, 0);
        let Some(path) = &self.prep.step.sequence else {
            return;
        };
        let Some(seq) = view.select(path).and_then(serde_json::Value::as_i64) else {
            return;
        };
        match self.last_seq {
            Some(last) if seq <= last => shard.count(self.id, Count::WsDuplicates, 1),
            Some(last) => {
                if seq > last + 1 {
                    shard.count(self.id, Count::WsGaps, (seq - last - 1) as u64);
                }
                self.last_seq = Some(seq);
            }
            None => self.last_seq = Some(seq),
        }
    }

    /// Records an awaited reply that came: its checks, its captures.
    fn answered(&mut self, p: Pending, data: &[u8]) {
        let now = Instant::now();
        let mut error = None;
        if let Some(r) = p.reply {
            let mut view = View::new(0, Headers::None, data);
            error = view.check(&r.checks).map(|k| match k {
                ErrorKind::Check(n) => ErrorKind::Check(n.saturating_add(r.check_base)),
                other => other,
            });
            view.capture(&r.captures, &mut self.vu.slots);
        }
        self.worker.shard.borrow_mut().record(&Sample {
            step: p.record,
            latency_us: micros(now.saturating_duration_since(p.intended)),
            service_us: micros(now.saturating_duration_since(p.sent)),
            code: 0,
            error,
            bytes_in: data.len() as u64,
            bytes_out: p.bytes_out,
            bytes_decoded: data.len() as u64,
            redirects: 0,
        });
        if let Some(kind) = error {
            let program = &self.worker.program;
            error_sample(self.worker, p.record, kind, || {
                let name = match kind {
                    ErrorKind::Check(n) => program.check_name(p.record, n),
                    _ => String::new(),
                };
                format!("check `{name}` failed on the reply: {}", excerpt(data))
            });
        }
    }

    /// Replies whose timeout passed: lost.
    fn expire(&mut self, now: Instant) {
        while let Some(i) = self.pending.iter().position(|p| p.deadline <= now) {
            let p = self.pending.remove(i);
            let timeout = p.timeout;
            self.failed_after(p.record, p.intended, p.sent, p.bytes_out, ErrorKind::WsLost);
            error_sample(self.worker, p.record, ErrorKind::WsLost, || {
                format!("no reply within {} ms", timeout.as_millis())
            });
        }
    }

    /// The connection is gone while the session needed it: counted by close code; every
    /// awaited reply fails as `kind`.
    fn dropped(&mut self, kind: ErrorKind, code: u16, reason: Option<String>) {
        if self.ws.take().is_none() {
            return;
        }
        self.dropped_at = Some(Instant::now());
        {
            let mut shard = self.worker.shard.borrow_mut();
            shard.ws_open = shard.ws_open.saturating_sub(1);
            shard.count(self.id, Count::WsDropped, 1);
            shard.count(self.id, Count::WsClose(code), 1);
        }
        error_sample(self.worker, self.id, kind, || match &reason {
            Some(r) if !r.is_empty() => format!("the connection closed (code {code}): {r}"),
            _ => format!("the connection closed (code {code})"),
        });
        for p in std::mem::take(&mut self.pending) {
            self.failed_after(p.record, p.intended, p.sent, p.bytes_out, kind);
        }
    }

    /// Cancelled in flight (the phase's grace ran out): awaited replies are `interrupted`.
    fn interrupt(&mut self) {
        for p in std::mem::take(&mut self.pending) {
            self.failed_after(p.record, p.intended, p.sent, p.bytes_out, ErrorKind::Interrupted);
        }
        if self.ws.take().is_some() {
            let mut shard = self.worker.shard.borrow_mut();
            shard.ws_open = shard.ws_open.saturating_sub(1);
        }
        self.ended = true;
    }

    fn failed(&mut self, record: usize, intended: Instant, bytes_out: u64, kind: ErrorKind) {
        self.failed_after(record, intended, Instant::now(), bytes_out, kind);
    }

    fn failed_after(&mut self, record: usize, intended: Instant, sent: Instant, bytes_out: u64, kind: ErrorKind) {
        let now = Instant::now();
        let mut shard = self.worker.shard.borrow_mut();
        if kind == ErrorKind::WsLost {
            shard.count(self.id, Count::WsLost, 1);
        }
        shard.record(&Sample {
            step: record,
            latency_us: micros(now.saturating_duration_since(intended)),
            service_us: micros(now.saturating_duration_since(sent)),
            code: 0,
            error: Some(kind),
            bytes_in: 0,
            bytes_out,
            bytes_decoded: 0,
            redirects: 0,
        });
    }

    /// Closes cleanly (code 1000) and waits briefly for the server's close.
    async fn finish(&mut self) {
        let Some(mut ws) = self.ws.take() else { return };
        {
            let mut shard = self.worker.shard.borrow_mut();
            shard.ws_open = shard.ws_open.saturating_sub(1);
        }
        let wait = CLOSE_WAIT.min(self.timeout);
        let _ = tokio::time::timeout(wait, async {
            let _ = ws.close(None).await;
            while let Some(Ok(_)) = ws.next().await {}
        })
        .await;
    }
}
