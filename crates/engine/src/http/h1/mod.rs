//! Our HTTP/1.1 client connection: the request goes out as one prepared byte string, the
//! response is parsed in place (httparse) and its body framed per RFC 9112.
//!
//! Why not hyper here: hyper runs each connection as its own task and passes every request
//! and response through channels between that task and the caller. At 1,000 connections that
//! hop (two task wake-ups, an mpsc and a oneshot per request, header maps built both ways) cost
//! more CPU than the rest of the generator. This client is polled inside the VU's own task,
//! keeps the response head where it was read, and so does per request what wrk does: one
//! write, reads until the response is complete. HTTP/2 still goes through hyper.

pub mod parse;

use std::io;
use std::pin::Pin;
use std::task::{Context, Waker};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

pub use self::parse::Malformed;
pub use self::parse::RawHeaders;
use self::parse::{Chunked, Framing, Span};

use crate::outcome::ErrorKind;
use crate::transport::Stream;

/// A response head larger than this is a protocol error (hyper's limit is of the same order).
const MAX_HEAD: usize = 256 * 1024;
/// A new connection's read room: a typical response head and small body fit in one read, and
/// 100,000 idle connections hold 512 bytes each (the buffer is kept between exchanges: the
/// head stays there for checks, and a request should not pay an allocation).
const READ_ROOM: usize = 512;
/// The read room grows (doubling whenever a read fills it) up to this, so a large body is read
/// in a few large reads rather than many small ones.
const MAX_ROOM: usize = 64 * 1024;
/// A buffer grown beyond this by a large response is given back once the exchange is over (the
/// head is kept): an idle connection keeps a small buffer, whatever it received last. The
/// room it learned stays, so the next large body is read as fast.
const KEEP: usize = 16 * 1024;

/// A failed read of a response: a malformed one (with what was wrong) or another kind.
enum Fault {
    Malformed(Malformed),
    Kind(ErrorKind),
}

impl From<Malformed> for Fault {
    fn from(m: Malformed) -> Fault {
        Fault::Malformed(m)
    }
}

impl From<ErrorKind> for Fault {
    fn from(k: ErrorKind) -> Fault {
        Fault::Kind(k)
    }
}

/// One HTTP/1.1 connection. Requests are sent one at a time (no pipelining); after each
/// response the head stays in `buf` so checks and captures read headers without copying.
pub struct Conn {
    io: Stream,
    buf: Vec<u8>,
    /// How much free room a read asks for: [`READ_ROOM`] at first, doubled by each read that
    /// filled it, at most [`MAX_ROOM`].
    room: u32,
    spans: Vec<Span>,
    head_len: usize,
    /// The last response's `Content-Encoding` value (its place in `buf`) and whether it set a
    /// cookie, as the head's parse noted them.
    content_encoding: Option<(u32, u32)>,
    set_cookie: bool,
    /// The last response left the connection able to carry another request.
    reusable: bool,
    /// Requests sent on this connection, the current one included.
    requests: u64,
    /// Bytes read for the current exchange (head, framing and body, as on the wire).
    received: u64,
    /// What was wrong with the last response, when it was not valid HTTP.
    malformed: Option<Malformed>,
}

/// The body bytes kept (up to `max`) and counted.
struct BodySink<'a> {
    body: &'a mut Vec<u8>,
    max: usize,
    bytes_in: u64,
}

impl BodySink<'_> {
    fn keep(&mut self, data: &[u8]) {
        self.bytes_in += data.len() as u64;
        let room = self.max.saturating_sub(self.body.len());
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }
}

impl Conn {
    pub fn new(io: Stream) -> Conn {
        Conn {
            io,
            buf: Vec::new(),
            room: READ_ROOM as u32,
            spans: Vec::new(),
            head_len: 0,
            content_encoding: None,
            set_cookie: false,
            reusable: true,
            requests: 0,
            received: 0,
            malformed: None,
        }
    }

    /// Whether another request can go out on this connection: the last response allowed it,
    /// and the server has not closed the connection since (it may, while the VU thinks). The
    /// check polls a read once without waiting; anything but "nothing to read" retires the
    /// connection (for TLS, session tickets are consumed by the TLS layer and do not count).
    pub fn is_open(&mut self) -> bool {
        if !self.reusable {
            return false;
        }
        let mut probe = [0u8; 64];
        let mut probe = ReadBuf::new(&mut probe);
        let mut cx = Context::from_waker(Waker::noop());
        if Pin::new(&mut self.io).poll_read(&mut cx, &mut probe).is_pending() {
            return true;
        }
        self.reusable = false;
        false
    }

    /// Whether the last response left the connection able to carry another request.
    pub fn is_reusable(&self) -> bool {
        self.reusable
    }

    /// Whether the last exchange failed the way a keep-alive race does: on a connection that
    /// had already carried a response, before any byte of its own response arrived. The server
    /// closed the idle connection as the request went out, so the request was never processed;
    /// an idempotent one can be sent again on a new connection (as Go, curl and hyper do).
    pub fn lost_to_idle_close(&self) -> bool {
        self.requests > 1 && self.received == 0
    }

    /// Why the last response was a protocol error, if it was one.
    pub fn malformed(&self) -> Option<Malformed> {
        self.malformed
    }

    /// Bytes read for the last exchange, as on the wire, also when it failed or timed out
    /// part-way (a failed request still cost the bandwidth it used).
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The head of the last response as received (status line and headers), for
    /// `--http-debug`.
    pub fn head(&self) -> &[u8] {
        &self.buf[..self.head_len.min(self.buf.len())]
    }

    /// The last response's `Content-Encoding`, found without a look through its headers.
    pub fn content_encoding(&self) -> Option<&[u8]> {
        let (a, b) = self.content_encoding?;
        self.buf.get(a as usize..b as usize)
    }

    /// Whether the last response had a `Set-Cookie` header.
    pub fn sets_cookie(&self) -> bool {
        self.set_cookie
    }

    /// The headers of the last response.
    pub fn headers(&self) -> RawHeaders<'_> {
        RawHeaders {
            buf: &self.buf[..self.head_len.min(self.buf.len())],
            spans: &self.spans,
        }
    }

    /// Sends `request` (a complete HTTP/1.1 message) and reads the response. The body goes to
    /// `body`, of which the first `max_body` bytes are kept. Returns the status and the body's
    /// length. After an error the connection is in an unknown state: drop it.
    pub async fn exchange(
        &mut self,
        request: &[u8],
        head_request: bool,
        max_body: usize,
        body: &mut Vec<u8>,
    ) -> Result<(u16, u64), ErrorKind> {
        self.reusable = false;
        self.head_len = 0;
        self.content_encoding = None;
        self.set_cookie = false;
        self.buf.clear();
        self.requests += 1;
        self.received = 0;
        self.malformed = None;
        let mut written = self.io.write_all(request).await;
        if written.is_ok() && self.io.needs_flush() {
            written = self.io.flush().await;
        }
        if let Err(e) = written {
            // A server may answer before it has read the whole request (an early 413 or 401)
            // and close: that answer, when it can be read, is the outcome, not the failed write.
            return match self.read_response(head_request, max_body, body).await {
                Ok(r) => {
                    self.reusable = false;
                    Ok(r)
                }
                Err(_) => Err(io_error(e)),
            };
        }
        self.read_response(head_request, max_body, body).await
    }

    /// Reads one response (after the request went out) into `body`, noting what was malformed.
    async fn read_response(
        &mut self,
        head_request: bool,
        max_body: usize,
        body: &mut Vec<u8>,
    ) -> Result<(u16, u64), ErrorKind> {
        match self.read_framed(head_request, max_body, body).await {
            Err(Fault::Malformed(m)) => {
                self.malformed = Some(m);
                Err(ErrorKind::Protocol)
            }
            Err(Fault::Kind(k)) => Err(k),
            Ok(r) => Ok(r),
        }
    }

    async fn read_framed(
        &mut self,
        head_request: bool,
        max_body: usize,
        body: &mut Vec<u8>,
    ) -> Result<(u16, u64), Fault> {
        let head = loop {
            match parse::head(&self.buf, head_request, &mut self.spans)? {
                Some(h) if h.is_interim() => drop(self.buf.drain(..h.len)),
                Some(h) => break h,
                None if self.buf.len() > MAX_HEAD => return Err(Fault::Malformed(Malformed::HeadTooLarge)),
                None => self.read_more().await?,
            }
        };
        self.head_len = head.len;
        self.content_encoding = head.content_encoding;
        self.set_cookie = head.set_cookie;
        body.clear();
        let mut sink = BodySink {
            body,
            max: max_body,
            bytes_in: 0,
        };
        // Bytes past the end of the response: the server sent something we did not ask for.
        let leftover = match head.framing {
            Framing::Empty => self.buf.len() > head.len,
            Framing::Length(mut left) => loop {
                let avail = &self.buf[head.len..];
                let n = (avail.len() as u64).min(left) as usize;
                sink.keep(&avail[..n]);
                left -= n as u64;
                let extra = avail.len() > n;
                self.buf.truncate(head.len);
                if left == 0 {
                    break extra;
                }
                self.read_more().await?;
            },
            Framing::Chunked => {
                let mut decoder = Chunked::default();
                loop {
                    let avail = &self.buf[head.len..];
                    let used = decoder.feed(avail, &mut |d| sink.keep(d))?;
                    let extra = used < avail.len();
                    self.buf.truncate(head.len);
                    if decoder.is_done() {
                        break extra;
                    }
                    self.read_more().await?;
                }
            }
            Framing::UntilClose => loop {
                sink.keep(&self.buf[head.len..]);
                self.buf.truncate(head.len);
                if self.read().await? == 0 {
                    break false;
                }
            },
        };
        self.reusable = head.keep_alive && !leftover;
        if self.buf.capacity() > KEEP {
            self.buf.shrink_to(self.buf.len().max(READ_ROOM));
        }
        Ok((head.status, sink.bytes_in))
    }

    /// Reads more of a response that is not complete yet: end of stream is an error.
    async fn read_more(&mut self) -> Result<(), ErrorKind> {
        match self.read().await? {
            0 => Err(ErrorKind::Reset),
            _ => Ok(()),
        }
    }

    async fn read(&mut self) -> Result<usize, ErrorKind> {
        let room = self.room as usize;
        if self.buf.capacity() - self.buf.len() < room / 2 {
            self.buf.reserve(room);
        }
        let spare = self.buf.capacity() - self.buf.len();
        match self.io.read_buf(&mut self.buf).await {
            Ok(n) => {
                self.received += n as u64;
                if n == spare && room < MAX_ROOM {
                    // The socket may hold more: read more at a time.
                    self.room = (room * 2) as u32;
                }
                Ok(n)
            }
            // A TLS peer that closes without close_notify: the end of the stream all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
            Err(e) => Err(io_error(e)),
        }
    }
}

fn io_error(e: io::Error) -> ErrorKind {
    match e.kind() {
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        io::ErrorKind::InvalidData => ErrorKind::Protocol,
        _ => ErrorKind::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::{TcpListener, TcpStream};

    /// A server on loopback that answers each request on one connection with the next body.
    async fn serve(bodies: Vec<usize>) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut req = [0u8; 1024];
            for len in bodies {
                let _ = s.read(&mut req).await.unwrap();
                let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {len}\r\n\r\n");
                s.write_all(head.as_bytes()).await.unwrap();
                s.write_all(&vec![b'x'; len]).await.unwrap();
            }
        });
        addr
    }

    #[tokio::test(flavor = "current_thread")]
    async fn the_read_buffer_grows_for_a_large_body_and_shrinks_back_after_it() {
        let addr = serve(vec![3, 1_000_000, 3]).await;
        let mut conn = Conn::new(Stream::Tcp(TcpStream::connect(addr).await.unwrap()));
        let mut body = Vec::new();
        let get = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert_eq!(conn.exchange(get, false, 16, &mut body).await, Ok((200, 3)));
        assert!(conn.buf.capacity() <= READ_ROOM, "{}", conn.buf.capacity());
        assert_eq!(conn.exchange(get, false, 16, &mut body).await, Ok((200, 1_000_000)));
        assert_eq!(body.len(), 16);
        // Large reads were asked for, and the buffer given back once the body was read.
        assert_eq!(conn.room as usize, MAX_ROOM);
        assert!(conn.buf.capacity() <= READ_ROOM, "{}", conn.buf.capacity());
        assert_eq!(conn.headers().get("content-length"), Some(&b"1000000"[..]));
        assert_eq!(conn.exchange(get, false, 16, &mut body).await, Ok((200, 3)));
        assert_eq!(body, b"xxx");
    }
}
