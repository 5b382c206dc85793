//! WebSocket endpoints (RFC 6455) over a hyper HTTP/1.1 upgrade: `ws_echo` answers every message
//! after a service-time delay, `ws_push` sends a small JSON message at a fixed interval.
//!
//! The framing is written here rather than taken from tokio-tungstenite: the server side needs
//! only the handshake (SHA-1 and base64 of one key, from the `sha1` and `base64` crates) and
//! frame-by-frame echo. Limits: no extensions (permessage-deflate is simply not negotiated),
//! frames up to 1 MiB, continuation frames are echoed frame by frame.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use sha1::{Digest as _, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

use crate::dist::Dist;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_FRAME: u64 = 1 << 20;

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BIN: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// WebSocket gauges and counters, exported on `/metrics`.
#[derive(Debug, Default)]
pub struct WsCounters {
    pub open: AtomicUsize,
    pub received: AtomicU64,
    pub sent: AtomicU64,
}

/// What a WebSocket endpoint does with its connection.
#[derive(Debug, Clone)]
pub enum Mode {
    /// Echo each data frame after a draw from this distribution.
    Echo(Dist),
    /// Push a message every interval.
    Push(Duration),
}

/// Faults a WebSocket endpoint commits on purpose (`lose_every`, `close_after` in the target
/// configuration, or `?lose_every=N&close_after_ms=M` on the upgrade request).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Echo: the Nth, 2Nth … data message of a connection gets no answer.
    pub lose_every: Option<u64>,
    /// The server closes each connection after this long, with code 1012 (service restart).
    pub close_after: Option<Duration>,
}

/// The close code of `Faults::close_after`.
pub const RESTART: u16 = 1012;

/// Whether the request asks for a WebSocket upgrade; returns the client's key.
pub fn upgrade_key(headers: &http::HeaderMap) -> Option<&str> {
    let has = |name: http::header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    if !has(http::header::CONNECTION, "upgrade") || !has(http::header::UPGRADE, "websocket") {
        return None;
    }
    headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
}

/// `Sec-WebSocket-Accept` for a client key: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &str) -> String {
    let digest = Sha1::new()
        .chain_update(key.trim().as_bytes())
        .chain_update(GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

struct Frame {
    fin: bool,
    opcode: u8,
    payload: Vec<u8>,
}

/// Reads one frame, unmasking it. `Ok(None)` on a clean EOF.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Option<Frame>> {
    let mut h = [0u8; 2];
    match r.read_exact(&mut h).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let fin = h[0] & 0x80 != 0;
    let opcode = h[0] & 0x0F;
    let masked = h[1] & 0x80 != 0;
    let len = match h[1] & 0x7F {
        126 => u64::from(r.read_u16().await?),
        127 => r.read_u64().await?,
        n => u64::from(n),
    };
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"));
    }
    let mut mask = [0u8; 4];
    if masked {
        r.read_exact(&mut mask).await?;
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
    }
    Ok(Some(Frame { fin, opcode, payload }))
}

/// Writes one unmasked (server-to-client) frame.
async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, fin: bool, opcode: u8, payload: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(payload.len() + 10);
    buf.push(if fin { 0x80 } else { 0 } | opcode);
    match payload.len() {
        n if n < 126 => buf.push(n as u8),
        n if n <= 0xFFFF => {
            buf.push(126);
            buf.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            buf.push(127);
            buf.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    buf.extend_from_slice(payload);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Serves one upgraded connection until the client closes, an I/O error, or server shutdown.
/// A reader task forwards frames over a channel so the writer can also wait on a timer without
/// cancelling a half-read frame.
pub async fn serve<S>(
    io: S,
    mode: Mode,
    faults: Faults,
    draw: impl Fn(&Dist) -> Duration,
    counters: Arc<WsCounters>,
    mut shutdown: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    counters.open.fetch_add(1, Ordering::Relaxed);
    let (mut rd, mut wr) = tokio::io::split(io);
    let (tx, mut rx) = mpsc::channel::<Frame>(64);
    let reader = tokio::spawn(async move {
        while let Ok(Some(f)) = read_frame(&mut rd).await {
            let close = f.opcode == OP_CLOSE;
            if tx.send(f).await.is_err() || close {
                break;
            }
        }
    });
    let mut tick = match &mode {
        Mode::Push(every) => Some(tokio::time::interval_at(
            tokio::time::Instant::now() + *every,
            (*every).max(Duration::from_millis(1)),
        )),
        Mode::Echo(_) => None,
    };
    let mut seq: u64 = 0;
    let mut data_in: u64 = 0;
    let close_at = faults.close_after.map(|d| tokio::time::Instant::now() + d);
    loop {
        tokio::select! {
            _ = shutdown.changed() => {
                let _ = write_frame(&mut wr, true, OP_CLOSE, &1001u16.to_be_bytes()).await;
                break;
            }
            _ = async { match close_at { Some(t) => tokio::time::sleep_until(t).await, None => std::future::pending().await } } => {
                let _ = write_frame(&mut wr, true, OP_CLOSE, &RESTART.to_be_bytes()).await;
                break;
            }
            _ = async { if let Some(t) = tick.as_mut() { t.tick().await; } else { std::future::pending::<()>().await } } => {
                seq += 1;
                let ts = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let msg = format!(r#"{{"type":"lead_update","seq":{seq},"ts_ms":{ts}}}"#);
                if write_frame(&mut wr, true, OP_TEXT, msg.as_bytes()).await.is_err() {
                    break;
                }
                counters.sent.fetch_add(1, Ordering::Relaxed);
            }
            frame = rx.recv() => {
                let Some(f) = frame else { break };
                let ok = match f.opcode {
                    OP_CLOSE => {
                        let _ = write_frame(&mut wr, true, OP_CLOSE, &f.payload).await;
                        break;
                    }
                    OP_PING => write_frame(&mut wr, true, OP_PONG, &f.payload).await.is_ok(),
                    OP_PONG => true,
                    OP_TEXT | OP_BIN | OP_CONT => {
                        counters.received.fetch_add(1, Ordering::Relaxed);
                        data_in += 1;
                        let lose = faults.lose_every.is_some_and(|n| data_in % n == 0);
                        match &mode {
                            Mode::Echo(_) if lose => true,
                            Mode::Echo(d) => {
                                tokio::time::sleep(draw(d)).await;
                                let r = write_frame(&mut wr, f.fin, f.opcode, &f.payload).await;
                                counters.sent.fetch_add(1, Ordering::Relaxed);
                                r.is_ok()
                            }
                            Mode::Push(_) => true,
                        }
                    }
                    _ => {
                        // Unknown opcode: protocol error (1002), then close.
                        let _ = write_frame(&mut wr, true, OP_CLOSE, &1002u16.to_be_bytes()).await;
                        break;
                    }
                };
                if !ok {
                    break;
                }
            }
        }
    }
    reader.abort();
    counters.open.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[tokio::test]
    async fn frame_roundtrip() {
        let (mut a, mut b) = tokio::io::duplex(1 << 20);
        let big = vec![7u8; 70_000];
        write_frame(&mut a, true, OP_BIN, &big).await.unwrap();
        write_frame(&mut a, false, OP_TEXT, b"hi").await.unwrap();
        let f = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, f.payload.len()), (true, OP_BIN, 70_000));
        let f = read_frame(&mut b).await.unwrap().unwrap();
        assert_eq!((f.fin, f.opcode, &f.payload[..]), (false, OP_TEXT, &b"hi"[..]));
        drop(a);
        assert!(read_frame(&mut b).await.unwrap().is_none());
    }
}
