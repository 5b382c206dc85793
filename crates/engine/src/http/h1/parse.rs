//! HTTP/1.1 response framing (RFC 9112 §6): the head, how long the body is, and the chunked
//! decoder. Pure functions over byte slices, so every split of the input can be unit-tested.

use std::mem::MaybeUninit;

use crate::outcome::ErrorKind;

/// At most this many header lines (hyper's default too).
const MAX_HEADERS: usize = 100;

/// Where one header's name and value lie in the head buffer.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// The response headers, read where they lie in the connection's buffer.
pub struct RawHeaders<'a> {
    pub(super) buf: &'a [u8],
    pub(super) spans: &'a [Span],
}

impl<'a> RawHeaders<'a> {
    /// The first value of header `name` (matched without regard to case).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.all(name).next()
    }

    /// Every value of header `name`, in order.
    pub fn all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'a [u8]> + 's {
        let buf = self.buf;
        self.spans.iter().filter_map(move |s| {
            let n = &buf[s.name.0 as usize..s.name.1 as usize];
            n.eq_ignore_ascii_case(name.as_bytes())
                .then(|| &buf[s.value.0 as usize..s.value.1 as usize])
        })
    }
}

/// How the body of a response ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body: a HEAD request, or status 1xx, 204 or 304.
    Empty,
    Length(u64),
    Chunked,
    /// Read until the server closes the connection.
    UntilClose,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub status: u16,
    pub framing: Framing,
    /// Whether the connection can carry another request after this response.
    pub keep_alive: bool,
    /// Where the `Content-Encoding` value is (the last one), and whether a `Set-Cookie` came:
    /// noted while the head is parsed, so that a response needs no second look at its headers
    /// to know whether it must be decoded or has cookies to store.
    pub content_encoding: Option<(u32, u32)>,
    pub set_cookie: bool,
}

impl Head {
    /// 1xx responses other than 101 precede the real one and are skipped.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// What was wrong with a response that is not valid HTTP/1.1: every such response counts as
/// `protocol`, and this says which rule it broke, for the error sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    StatusLine,
    Version,
    HeaderName,
    HeaderValue,
    LineEnding,
    TooManyHeaders,
    /// The head grew past the client's limit without ending.
    HeadTooLarge,
    ContentLength,
    /// Repeated `Content-Length` values that disagree: the end of the message is ambiguous.
    ConflictingLengths,
    ChunkSize,
    ChunkFraming,
}

impl Malformed {
    pub fn describe(self) -> &'static str {
        match self {
            Malformed::StatusLine => "bad status line",
            Malformed::Version => "not an HTTP/1.x response (bad version)",
            Malformed::HeaderName => "bad header name",
            Malformed::HeaderValue => "bad header value",
            Malformed::LineEnding => "bad line ending in the response head",
            Malformed::TooManyHeaders => "more than 100 response headers",
            Malformed::HeadTooLarge => "response head larger than 256 KiB",
            Malformed::ContentLength => "bad Content-Length",
            Malformed::ConflictingLengths => "Content-Length values that disagree",
            Malformed::ChunkSize => "bad chunk size",
            Malformed::ChunkFraming => "bad chunked framing (missing CRLF after a chunk)",
        }
    }
}

impl From<Malformed> for ErrorKind {
    fn from(_: Malformed) -> ErrorKind {
        ErrorKind::Protocol
    }
}

fn malformed(e: httparse::Error) -> Malformed {
    match e {
        httparse::Error::HeaderName => Malformed::HeaderName,
        httparse::Error::HeaderValue => Malformed::HeaderValue,
        httparse::Error::NewLine => Malformed::LineEnding,
        httparse::Error::TooManyHeaders => Malformed::TooManyHeaders,
        httparse::Error::Version => Malformed::Version,
        httparse::Error::Status | httparse::Error::Token => Malformed::StatusLine,
    }
}

/// Parses a response head at the start of `buf`: `None` while it is incomplete. Header
/// positions go to `spans` (replacing what was there).
pub fn head(buf: &[u8], head_request: bool, spans: &mut Vec<Span>) -> Result<Option<Head>, Malformed> {
    // Uninitialised slots: zeroing 100 headers would cost more than parsing a typical head.
    let mut headers = [const { MaybeUninit::<httparse::Header>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(&mut resp, buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(malformed(e)),
    };
    let status = resp.code.unwrap_or(0);
    let http11 = resp.version == Some(1);
    let base = buf.as_ptr() as usize;
    let offset = |s: &[u8]| -> (u32, u32) {
        let start = (s.as_ptr() as usize).saturating_sub(base) as u32;
        (start, start + s.len() as u32)
    };
    spans.clear();
    let mut length: Option<u64> = None;
    let mut chunked = None;
    let mut close = !http11;
    let mut content_encoding = None;
    let mut set_cookie = false;
    for h in resp.headers.iter() {
        let value = offset(h.value);
        spans.push(Span {
            name: offset(h.name.as_bytes()),
            value,
        });
        if h.name.eq_ignore_ascii_case("content-length") {
            for part in h.value.split(|&b| b == b',') {
                let n = parse_length(trim(part)).ok_or(Malformed::ContentLength)?;
                // Repeated lengths must agree, or the message boundary is ambiguous.
                if length.is_some_and(|l| l != n) {
                    return Err(Malformed::ConflictingLengths);
                }
                length = Some(n);
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let last = h.value.rsplit(|&b| b == b',').next().map(trim).unwrap_or_default();
            chunked = Some(last.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',').map(trim) {
                if token.eq_ignore_ascii_case(b"close") {
                    close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                    close = false;
                }
            }
        } else if h.name.eq_ignore_ascii_case("content-encoding") {
            content_encoding = Some(value);
        } else if h.name.eq_ignore_ascii_case("set-cookie") {
            set_cookie = true;
        }
    }
    let no_body = head_request || (100..200).contains(&status) || status == 204 || status == 304;
    let framing = if no_body {
        Framing::Empty
    } else if let Some(chunked) = chunked {
        // Transfer-Encoding wins over Content-Length; a final coding other than chunked
        // means the body runs until the connection closes.
        if chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        }
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    let keep_alive =
        !close && status != 101 && framing != Framing::UntilClose && !(chunked.is_some() && length.is_some());
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
        content_encoding,
        set_cookie,
    }))
}

fn trim(s: &[u8]) -> &[u8] {
    s.trim_ascii()
}

fn parse_length(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter()
        .try_fold(0u64, |n, &d| n.checked_mul(10)?.checked_add((d - b'0') as u64))
}

/// An incremental decoder of `Transfer-Encoding: chunked` bodies (RFC 9112 §7.1). Chunk
/// extensions and trailer fields are read and ignored; a bare LF is accepted for CRLF.
#[derive(Debug, Default)]
pub struct Chunked {
    state: State,
    size: u64,
    /// Hex digits of the current size line, and how many of them count (after leading zeros,
    /// which RFC 9112 allows in any number).
    digits: u32,
    significant: u8,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    #[default]
    Size,
    Extension,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    TrailerLine,
    TrailerEndLf,
    Done,
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes from `input`, handing body data to `out`; returns how many bytes it consumed
    /// (all of them, unless the body ended inside `input`).
    pub fn feed(&mut self, input: &[u8], out: &mut impl FnMut(&[u8])) -> Result<usize, Malformed> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            if self.state == State::Data {
                let n = (self.size.min((input.len() - i) as u64)) as usize;
                out(&input[i..i + n]);
                i += n;
                self.size -= n as u64;
                if self.size == 0 {
                    self.state = State::DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (State::Size, b) if b.is_ascii_hexdigit() => {
                    self.digits = self.digits.saturating_add(1);
                    if self.size != 0 || b != b'0' {
                        // More than 16 significant hex digits do not fit a 64-bit size.
                        if self.significant == 16 {
                            return Err(Malformed::ChunkSize);
                        }
                        self.significant += 1;
                    }
                    self.size = self.size << 4 | (b as char).to_digit(16).unwrap_or(0) as u64;
                    State::Size
                }
                (State::Size, b';' | b' ' | b'\t') if self.digits > 0 => State::Extension,
                (State::Size, b'\r') if self.digits > 0 => State::SizeLf,
                (State::Size, b'\n') if self.digits > 0 => self.after_size(),
                (State::Extension, b'\r') => State::SizeLf,
                (State::Extension, b'\n') => self.after_size(),
                (State::Extension, _) => State::Extension,
                (State::SizeLf, b'\n') => self.after_size(),
                (State::DataCr, b'\r') => State::DataLf,
                (State::DataCr | State::DataLf, b'\n') => State::Size,
                (State::TrailerStart, b'\r') => State::TrailerEndLf,
                (State::TrailerStart | State::TrailerEndLf, b'\n') => State::Done,
                (State::TrailerLine, b'\n') => State::TrailerStart,
                (State::TrailerStart | State::TrailerLine, _) => State::TrailerLine,
                (State::Size | State::SizeLf, _) => return Err(Malformed::ChunkSize),
                _ => return Err(Malformed::ChunkFraming),
            };
        }
        Ok(i)
    }

    fn after_size(&mut self) -> State {
        self.digits = 0;
        self.significant = 0;
        if self.size == 0 {
            State::TrailerStart
        } else {
            State::Data
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Option<Head>, ErrorKind> {
        head(s.as_bytes(), false, &mut Vec::new()).map_err(ErrorKind::from)
    }

    fn framing(s: &str) -> Framing {
        parse(s).unwrap().unwrap().framing
    }

    #[test]
    fn head_framing_follows_rfc_9112() {
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"),
            Framing::Length(5)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\n"),
            Framing::Length(7)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            Framing::Chunked
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Framing::UntilClose
        );
        assert_eq!(framing("HTTP/1.1 200 OK\r\n\r\n"), Framing::UntilClose);
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n"),
            Framing::Empty
        );
        assert_eq!(
            framing("HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"),
            Framing::Empty
        );
        let h = head(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n", true, &mut Vec::new());
        assert_eq!(h.unwrap().unwrap().framing, Framing::Empty);
        // Chunked wins over a length, and such a response never leaves the connection reusable.
        let h = parse("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n");
        let h = h.unwrap().unwrap();
        assert_eq!((h.framing, h.keep_alive), (Framing::Chunked, false));
    }

    #[test]
    fn bad_heads_are_protocol_errors_and_partial_heads_wait() {
        for bad in [
            "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
            "SSH-2.0-OpenSSH\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(ErrorKind::Protocol), "{bad:?}");
        }
        assert_eq!(parse("HTTP/1.1 200 OK\r\nContent-Le"), Ok(None));
        assert_eq!(parse(""), Ok(None));
    }

    #[test]
    fn keep_alive_follows_version_and_connection_header() {
        let ka = |s: &str| parse(s).unwrap().unwrap().keep_alive;
        assert!(ka("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka("HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n"));
        assert!(!ka(
            "HTTP/1.1 200 OK\r\nConnection: upgrade, close\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"));
        assert!(ka(
            "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"
        ));
        assert!(!ka("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"));
        let interim = parse("HTTP/1.1 100 Continue\r\n\r\n").unwrap().unwrap();
        assert!(interim.is_interim() && interim.len == 25);
    }

    #[test]
    fn headers_are_found_by_name_whatever_their_case() {
        let buf = b"HTTP/1.1 200 OK\r\nX-Id: 1\r\nset-cookie: a\r\nSet-Cookie: b\r\n\r\n";
        let mut spans = Vec::new();
        head(buf, false, &mut spans).unwrap().unwrap();
        let h = RawHeaders { buf, spans: &spans };
        assert_eq!(h.get("x-id"), Some(&b"1"[..]));
        assert_eq!(h.all("set-cookie").collect::<Vec<_>>(), vec![&b"a"[..], &b"b"[..]]);
        assert_eq!(h.get("missing"), None);
    }

    /// Decodes `input` fed in pieces of `step` bytes; returns the body and the bytes left over.
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, usize), Malformed> {
        let mut d = Chunked::default();
        let mut body = Vec::new();
        let mut consumed = 0;
        for piece in input.chunks(step) {
            consumed += d.feed(piece, &mut |b| body.extend_from_slice(b))?;
            if d.is_done() {
                break;
            }
        }
        assert!(d.is_done(), "not done after {input:?}");
        Ok((body, input.len() - consumed))
    }

    #[test]
    fn chunked_bodies_decode_however_the_input_is_split() {
        let input = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        for step in 1..input.len() {
            let (body, left) = decode(input, step).unwrap();
            assert_eq!(body, b"helloabcdefghijklmnopqrstuvwxyz", "step {step}");
            assert_eq!(left, 4, "step {step}");
        }
        assert_eq!(decode(b"3\nabc\n0\n\n", 1).unwrap().0, b"abc");
        // Leading zeros are legal in any number (RFC 9112 §7.1: `1*HEXDIG`); they were refused
        // beyond 16 digits.
        let zeros = b"000000000000000000000000000000005\r\nhello\r\n00000000000000000000\r\n\r\n";
        assert_eq!(decode(zeros, 1).unwrap().0, b"hello");
    }

    #[test]
    fn malformed_chunked_bodies_are_protocol_errors() {
        for (bad, why) in [
            (&b"x\r\n"[..], Malformed::ChunkSize),
            (b"\r\n", Malformed::ChunkSize),
            (b"5\r\nhelloXX", Malformed::ChunkFraming),
            (b"11111111111111111\r\n", Malformed::ChunkSize),
        ] {
            let mut d = Chunked::default();
            assert_eq!(d.feed(bad, &mut |_| {}), Err(why), "{bad:?}");
        }
    }
}
