//! Opening a connection (TCP, optionally TLS): HTTP/1.1 on our own client (`h1`), HTTP/2 by
//! hyper's handshake.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use stampede_plan::Origin;
use tokio::net::TcpStream;

use super::h1;
use crate::outcome::ErrorKind;

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

/// Opens connections for VUs. Shared by all VUs of a worker; holds no connections itself.
pub struct Connector {
    tls: Option<Arc<rustls::ClientConfig>>,
    h2c: bool,
    connect_timeout: Duration,
}

impl Connector {
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, h2c: bool, connect_timeout: Duration) -> Connector {
        Connector {
            tls,
            h2c,
            connect_timeout,
        }
    }

    pub async fn connect(&self, origin: &Origin) -> Result<Connection, ErrorKind> {
        let tcp = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect((origin.host.as_str(), origin.port)),
        )
        .await
        .map_err(|_| ErrorKind::ConnectTimeout)?
        .map_err(|e| classify_connect(&e))?;
        let _ = tcp.set_nodelay(true);
        if origin.tls {
            let config = self.tls.clone().ok_or(ErrorKind::Tls)?;
            let name = ServerName::try_from(origin.host.clone()).map_err(|_| ErrorKind::Tls)?;
            let tls = tokio::time::timeout(
                self.connect_timeout,
                tokio_rustls::TlsConnector::from(config).connect(name, tcp),
            )
            .await
            .map_err(|_| ErrorKind::ConnectTimeout)?
            .map_err(|_| ErrorKind::Tls)?;
            if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                h2_handshake(TokioIo::new(tls)).await
            } else {
                Ok(Connection::H1(h1::Conn::new(h1::Stream::Tls(Box::new(tls)))))
            }
        } else if self.h2c {
            h2_handshake(TokioIo::new(tcp)).await
        } else {
            Ok(Connection::H1(h1::Conn::new(h1::Stream::Tcp(tcp))))
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

fn classify_connect(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        _ => ErrorKind::ConnectError,
    }
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
