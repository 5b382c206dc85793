//! Opening a connection (TCP, optionally TLS), and the HTTP/1.1 or HTTP/2 handshake on it.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use stampede_plan::Origin;
use tokio::net::TcpStream;

use crate::outcome::ErrorKind;

pub type ReqBody = Full<Bytes>;

/// A ready-to-use connection's request half.
pub enum Sender {
    H1(http1::SendRequest<ReqBody>),
    H2(http2::SendRequest<ReqBody>),
}

impl Sender {
    pub fn is_h2(&self) -> bool {
        matches!(self, Sender::H2(_))
    }

    /// Whether the connection can take another request (false once the peer closed it).
    pub fn is_open(&self) -> bool {
        match self {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    pub async fn send(
        &mut self,
        req: http::Request<ReqBody>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper::Error> {
        match self {
            Sender::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
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

    pub async fn connect(&self, origin: &Origin) -> Result<Sender, ErrorKind> {
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
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
            handshake(TokioIo::new(tls), h2).await
        } else {
            handshake(TokioIo::new(tcp), self.h2c).await
        }
    }
}

async fn handshake<T>(io: TokioIo<T>, h2: bool) -> Result<Sender, ErrorKind>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    if h2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| classify_hyper(&e))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Sender::H2(sender))
    } else {
        // A 4 KiB read buffer (hyper starts at 8 KiB) keeps 10,000 idle connections small;
        // larger bodies just take more reads.
        let (sender, conn) = http1::Builder::new()
            .read_buf_exact_size(Some(4096))
            .handshake(io)
            .await
            .map_err(|e| classify_hyper(&e))?;
        tokio::task::spawn_local(async move {
            let _ = conn.await;
        });
        Ok(Sender::H1(sender))
    }
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
