//! One WebSocket step: the upgrade on the shared transport (tokio-tungstenite for the framing),
//! then the step's session of actions on that one connection ([`session`]), then a clean close.
//!
//! What is recorded, all under the step's ids (`Program::new` gives a WebSocket step three
//! kinds): the step's own id gets one sample per awaited reply (latency from the scheduled
//! send to the matching message; `ws_lost` when none came in time, `ws_closed` when the
//! connection went first) and the protocol's counters (`recorder::Count`: messages, pushes,
//! drops by close code, reconnects, sequence gaps); `<step>:connect` one sample per connection
//! attempt (TCP, TLS and the 101 handshake; `ws_handshake_<status>` when refused); a named
//! reply `<step>:<name>` its own samples.

mod session;

use std::sync::Arc;
use std::time::Duration;

use stampede_plan::WsStep;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;

use crate::engine::vu::Vu;
use crate::engine::worker::Worker;
use crate::outcome::ErrorKind;
use crate::transport::{Stream, Transport};

pub(crate) type Socket = tokio_tungstenite::WebSocketStream<Stream>;

/// A WebSocket step prepared for running.
#[derive(Debug)]
pub struct Prepared {
    pub step: WsStep,
    /// The program's number of the step's origin (for DNS and TLS).
    pub origin: usize,
    /// `ws://authority` (the scheme only shapes the request: TLS is the transport's).
    pub prefix: String,
    pub connect_id: usize,
    /// The ids of the named replies, by `WsStep::reply_names` index.
    pub reply_ids: Vec<usize>,
}

/// The frame and message limits: a message larger than the plan's `max_body` fails the
/// connection (`protocol`) instead of being buffered; small buffers keep 10,000 idle
/// connections cheap (tungstenite's default is 128 KiB each way).
pub(crate) fn config(max_body: usize) -> tungstenite::protocol::WebSocketConfig {
    tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(max_body.max(1024)))
        .max_frame_size(Some(max_body.max(1024)))
}

/// Runs WebSocket step `id` for `vu`; records its samples and counters itself and returns the
/// error of a first connect that failed (for the VU's back-off). Once `stop` fires (the
/// phase's time is up) no new round or read starts: the replies awaited get the grace, then
/// the connection is closed cleanly.
pub async fn run(
    worker: &Worker,
    vu: &mut Vu,
    id: usize,
    prep: &Prepared,
    started: Instant,
    stop: &CancellationToken,
    kill: &CancellationToken,
) -> Option<ErrorKind> {
    session::Session::new(worker, vu, id, prep, stop, kill)
        .run(started)
        .await
}

/// Opens one connection: the stream from the transport, then the upgrade. Bounded by the
/// step's timeout as a whole. A failed upgrade says what went wrong (for the error sample).
pub(crate) async fn open(
    transport: &Transport,
    origin: &stampede_plan::Origin,
    request: tungstenite::handshake::client::Request,
    max_body: usize,
    timeout: Duration,
) -> Result<Socket, (ErrorKind, Option<String>)> {
    let attempt = async {
        let stream = transport
            .connect(&origin.host, origin.port, origin.tls)
            .await
            .map_err(|k| (k, None))?;
        tokio_tungstenite::client_async_with_config(request, stream, Some(config(max_body)))
            .await
            .map(|(ws, _)| ws)
            .map_err(|e| (classify(&e), Some(format!("the WebSocket upgrade failed: {e}"))))
    };
    tokio::time::timeout(timeout, attempt).await.unwrap_or(Err((
        ErrorKind::Timeout,
        Some(format!("no upgrade within {} ms", timeout.as_millis())),
    )))
}

/// A tungstenite error as an error kind: the upgrade refused by status, a broken connection
/// as `reset`, bad framing (or a message over the size limit) as `protocol`.
pub(crate) fn classify(e: &tungstenite::Error) -> ErrorKind {
    use tungstenite::Error as E;
    match e {
        E::Http(resp) => ErrorKind::WsHandshake(resp.status().as_u16()),
        E::Io(_) | E::ConnectionClosed | E::AlreadyClosed => ErrorKind::Reset,
        // The connection ended without a close frame: broken (1006), not bad framing.
        E::Protocol(tungstenite::error::ProtocolError::ResetWithoutClosingHandshake) => ErrorKind::Reset,
        E::Url(_) | E::HttpFormat(_) => ErrorKind::InvalidRequest,
        _ => ErrorKind::Protocol,
    }
}

/// The transport WebSocket steps connect through: TLS without `h2` in ALPN, since the upgrade
/// is HTTP/1.1.
pub fn transport(tls: Option<Arc<rustls::ClientConfig>>, connect_timeout: Duration) -> Transport {
    Transport::new(tls, connect_timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tungstenite::error::ProtocolError;

    #[test]
    fn a_connection_gone_without_a_close_frame_is_a_reset_not_bad_framing() {
        let gone = tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(classify(&gone), ErrorKind::Reset);
        let bad = tungstenite::Error::Protocol(ProtocolError::InvalidOpcode(3));
        assert_eq!(classify(&bad), ErrorKind::Protocol);
    }
}
