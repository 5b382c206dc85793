//! An HTTP connection on a [`Transport`] stream: HTTP/1.1 on our own client (`h1`), HTTP/2 by
//! hyper's handshake.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use stampede_plan::Origin;

use super::h1;
use crate::outcome::ErrorKind;
use crate::transport::{Stream, Transport};

pub type ReqBody = Full<Bytes>;

/// A ready-to-use connection.
pub enum Connection {
    H1(h1::Conn),
    H2(http2::SendRequest<ReqBody>),
}

impl Connection {
    pub fn is_h2(&self) -> bool {
        matches!(self, Connection::H2(_))
    }

    /// Whether the connection can take another request (false once the peer closed it).
    pub fn is_open(&mut self) -> bool {
        match self {
            Connection::H1(c) => c.is_open(),
            Connection::H2(s) => !s.is_closed(),
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
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, h2c: bool, connect_timeout: Duration) -> Connector {
        Connector {
            transport: Transport::new(tls, connect_timeout),
            h2c,
        }
    }

    pub async fn connect(&self, origin: &Origin) -> Result<Connection, ErrorKind> {
        let stream = self.transport.connect(&origin.host, origin.port, origin.tls).await?;
        match stream {
            Stream::Tls(_) if stream.alpn() == Some(b"h2") => h2_handshake(TokioIo::new(stream)).await,
            Stream::Tcp(_) if self.h2c => h2_handshake(TokioIo::new(stream)).await,
            _ => Ok(Connection::H1(h1::Conn::new(stream))),
        }
    }
}

/// The HTTP/2 handshake; hyper drives the connection from a task of its own.
async fn h2_handshake<T>(io: TokioIo<T>) -> Result<Connection, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
        .await
        .map_err(|e| classify_hyper(&e))?;
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    Ok(Connection::H2(sender))
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
