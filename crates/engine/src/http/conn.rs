//! An HTTP connection on a [`Transport`] stream: HTTP/1.1 on our own client (`h1`), HTTP/2 by
//! hyper's handshake.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stampede_plan::Origin;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::h1;
use crate::outcome::ErrorKind;
use crate::transport::{Stream, Transport};

pub type ReqBody = Full<Bytes>;

/// A ready-to-use connection.
pub enum Connection {
    H1(h1::Conn),
    H2(H2Conn),
}

/// An HTTP/2 connection: hyper's sender, and for h2c (prior knowledge, no TLS) whether the
/// server answered the HTTP/2 preface with anything but HTTP/2, i.e. does not speak h2c.
pub struct H2Conn {
    pub sender: http2::SendRequest<ReqBody>,
    answered_http1: Option<Arc<AtomicBool>>,
    /// Body bytes received for the current request, kept here (not in the request's future)
    /// so that a request that failed or timed out part-way still counts what it cost.
    pub received: u64,
}

impl H2Conn {
    /// The server answered but not in HTTP/2: `h2c: true` against a server without h2c.
    pub fn answered_http1(&self) -> bool {
        self.answered_http1.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }
}

impl Connection {
    pub fn is_h2(&self) -> bool {
        matches!(self, Connection::H2(_))
    }

    /// Whether the connection can take another request (false once the peer closed it).
    pub fn is_open(&mut self) -> bool {
        match self {
            Connection::H1(c) => c.is_open(),
            Connection::H2(c) => !c.sender.is_closed(),
        }
    }
}

/// Opens HTTP connections for VUs on the shared [`Transport`]: HTTP/2 when TLS's ALPN picks
/// it or `h2c` asks for it, our own HTTP/1.1 client otherwise. Holds no connections itself.
pub struct Connector {
    transport: Transport,
    h2c: bool,
}

impl Connector {
    pub fn new(transport: Transport, h2c: bool) -> Connector {
        Connector { transport, h2c }
    }

    /// A connection to `origin`, for TLS whether its handshake was resumed, and for a name how
    /// it was resolved.
    pub async fn connect(
        &self,
        origin: &Origin,
    ) -> Result<(Connection, Option<bool>, Option<crate::transport::dns::Lookup>), ErrorKind> {
        let (stream, lookup) = self
            .transport
            .connect_timed(&origin.host, origin.port, origin.tls)
            .await?;
        let resumed = stream.tls_resumed();
        let conn = match stream {
            Stream::Tls(_) if stream.alpn() == Some(b"h2") => h2_handshake(TokioIo::new(stream), None).await,
            Stream::Tcp(_) if self.h2c => {
                let flag = Arc::new(AtomicBool::new(false));
                let sniffed = Sniff::new(stream, flag.clone());
                h2_handshake(TokioIo::new(sniffed), Some(flag)).await
            }
            _ => Ok(Connection::H1(h1::Conn::new(stream))),
        };
        conn.map(|c| (c, resumed, lookup))
    }
}

/// The HTTP/2 handshake; hyper drives the connection from a task of its own.
async fn h2_handshake<T>(io: TokioIo<T>, answered_http1: Option<Arc<AtomicBool>>) -> Result<Connection, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| classify_hyper(&e))?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(Connection::H2(H2Conn {
        sender,
        answered_http1,
        received: 0,
    }))
}

/// Maps a hyper error to our kinds: malformed HTTP is `protocol`; a connection that ended early
/// (reset, closed, incomplete message) is `reset`.
pub fn classify_hyper(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() || e.is_user() {
        return ErrorKind::Protocol;
    }
    if e.is_timeout() {
        return ErrorKind::Timeout;
    }
    ErrorKind::Reset
}

/// An h2c stream that looks at the server's first bytes. An HTTP/2 server's first frame is its
/// SETTINGS (RFC 9113 §3.4); a server without h2c answers the preface in HTTP/1.1 or closes
/// without a frame, which hyper reports only as a broken connection.
struct Sniff {
    inner: Stream,
    answered_http1: Arc<AtomicBool>,
    /// The first frame header's bytes seen so far (its type is the fourth byte).
    first: [u8; 4],
    seen: usize,
    checked: bool,
}

impl Sniff {
    fn new(inner: Stream, answered_http1: Arc<AtomicBool>) -> Sniff {
        Sniff {
            inner,
            answered_http1,
            first: [0; 4],
            seen: 0,
            checked: false,
        }
    }

    fn look(&mut self, data: &[u8]) {
        const SETTINGS: u8 = 0x4;
        if data.is_empty() {
            // Closed before a frame: not an HTTP/2 server.
            self.answered_http1.store(true, Ordering::Relaxed);
            self.checked = true;
            return;
        }
        let n = data.len().min(4 - self.seen);
        self.first[self.seen..self.seen + n].copy_from_slice(&data[..n]);
        self.seen += n;
        if self.seen == 4 {
            self.checked = true;
            if self.first[3] != SETTINGS {
                self.answered_http1.store(true, Ordering::Relaxed);
            }
        }
    }
}

impl AsyncRead for Sniff {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if !this.checked && matches!(r, Poll::Ready(Ok(()))) {
            this.look(&buf.filled()[before..]);
        }
        r
    }
}

impl AsyncWrite for Sniff {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
