//! The byte stream under every protocol client: TCP, optionally TLS. The HTTP client, the
//! Prometheus monitor and any later protocol (WebSocket) open their connections here, so the
//! connect timeout, `TCP_NODELAY`, certificate verification and the error kinds a failed
//! connect maps to are decided once.

pub mod dns;
mod tls;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;

pub use tls::client_config as tls_config;

use crate::outcome::ErrorKind;

/// A connected stream.
pub enum Stream {
    Tcp(TcpStream),
    /// Boxed: a TLS session is kilobytes, and plain connections should not pay for it.
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// The protocol the server chose by ALPN (TLS only).
    pub fn alpn(&self) -> Option<&[u8]> {
        match self {
            Stream::Tcp(_) => None,
            Stream::Tls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// For TLS, whether the handshake resumed an earlier session (a ticket from a connection
    /// before) instead of a full one; `None` for plain TCP.
    pub fn tls_resumed(&self) -> Option<bool> {
        match self {
            Stream::Tcp(_) => None,
            Stream::Tls(s) => Some(s.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)),
        }
    }

    /// TLS buffers writes until flushed; a plain socket writes through.
    pub fn needs_flush(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Opens streams. Holds no connection itself: cheap to share by every VU of a worker.
#[derive(Clone)]
pub struct Transport {
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
    /// `http.tls.server_name`: sent as SNI and verified instead of the host connected to.
    server_name: Option<Arc<str>>,
    /// `http.local_addrs`: source addresses taken in turn by successive connections (one
    /// counter for every worker's clone), so a run is not bound by one address's ephemeral ports.
    local: Option<(Arc<[IpAddr]>, Arc<AtomicUsize>)>,
}

impl Transport {
    /// `tls` is needed only for `tls: true` connects (without it they fail as `tls`).
    pub fn new(tls: Option<Arc<rustls::ClientConfig>>, connect_timeout: Duration) -> Transport {
        Transport {
            tls,
            connect_timeout,
            server_name: None,
            local: None,
        }
    }

    /// Connections bind to these source addresses in turn (those of the destination's family;
    /// none of it: the OS picks, as without the option). Clones share the turn.
    pub fn with_local_addrs(mut self, addrs: &[IpAddr]) -> Transport {
        self.local = (!addrs.is_empty()).then(|| (Arc::from(addrs), Arc::new(AtomicUsize::new(0))));
        self
    }

    /// A source address for a connection to `to`, the next in turn of its family.
    fn source_for(&self, to: &SocketAddr) -> Option<IpAddr> {
        let (addrs, turn) = self.local.as_ref()?;
        let same: Vec<IpAddr> = addrs.iter().copied().filter(|a| a.is_ipv4() == to.is_ipv4()).collect();
        if same.is_empty() {
            return None;
        }
        Some(same[turn.fetch_add(1, Ordering::Relaxed) % same.len()])
    }

    /// TCP connect to the first of `addrs` that answers, from a `local_addrs` source when set.
    async fn tcp(&self, addrs: &[SocketAddr]) -> io::Result<TcpStream> {
        if self.local.is_none() {
            return TcpStream::connect(addrs).await;
        }
        let mut last = io::Error::new(io::ErrorKind::InvalidInput, "no address");
        for to in addrs {
            let socket = if to.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            if let Some(from) = self.source_for(to) {
                socket.bind(SocketAddr::new(from, 0))?;
            }
            match socket.connect(*to).await {
                Ok(s) => return Ok(s),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// TLS handshakes name `name` (SNI, certificate check) instead of the host connected to.
    pub fn with_server_name(mut self, name: Option<&str>) -> Transport {
        self.server_name = name.map(Arc::from);
        self
    }

    /// Connects to `host:port`, with a TLS handshake (SNI `host`) when `tls`. The lookup (from
    /// the cache, see [`dns`]), the TCP connect and the handshake each get the connect timeout.
    pub async fn connect(&self, host: &str, port: u16, tls: bool) -> Result<Stream, ErrorKind> {
        self.connect_timed(host, port, tls).await.map(|(s, _)| s)
    }

    /// [`Transport::connect`], and how the name was resolved (`None` for an IP literal): the
    /// HTTP client reports that time apart from the connect.
    pub async fn connect_timed(
        &self,
        host: &str,
        port: u16,
        tls: bool,
    ) -> Result<(Stream, Option<dns::Lookup>), ErrorKind> {
        let (addrs, lookup) = dns::resolve_timed(host, port, self.connect_timeout)
            .await
            .map_err(|_| ErrorKind::ConnectError)?;
        let tcp = tokio::time::timeout(self.connect_timeout, self.tcp(&addrs))
            .await
            .map_err(|_| ErrorKind::ConnectTimeout)?
            .map_err(|e| classify_connect(&e))?;
        let _ = tcp.set_nodelay(true);
        if !tls {
            return Ok((Stream::Tcp(tcp), lookup));
        }
        let config = self.tls.clone().ok_or(ErrorKind::Tls)?;
        let sni = self.server_name.as_deref().unwrap_or(host);
        let name = ServerName::try_from(sni.to_string()).map_err(|_| ErrorKind::Tls)?;
        let stream = tokio::time::timeout(
            self.connect_timeout,
            tokio_rustls::TlsConnector::from(config).connect(name, tcp),
        )
        .await
        .map_err(|_| ErrorKind::ConnectTimeout)?
        .map_err(|e| classify_handshake(&e))?;
        Ok((Stream::Tls(Box::new(stream)), lookup))
    }
}

/// A connect that fails. A reset is a server too busy to take the connection (a full accept
/// queue, a proxy shedding load): a load symptom like a reset later on, not a configuration
/// error like an unknown name or an unreachable network.
fn classify_connect(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
        _ => ErrorKind::ConnectError,
    }
}

/// A TLS handshake that fails: the connection reset or closed under it is a load symptom;
/// anything else (an untrusted certificate, no TLS on the port, no common protocol) is `tls`.
fn classify_handshake(e: &io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof => ErrorKind::Reset,
        _ => ErrorKind::Tls,
    }
}
