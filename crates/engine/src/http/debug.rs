//! `--http-debug[=full]`: the first exchanges of a run, printed as curl's `-v` does (`>` request,
//! `<` response), so that a failing check can be seen for what the server really said. Secrets
//! never reach the output: `Authorization` and `Proxy-Authorization` keep only their scheme,
//! cookie values (`Cookie`, `Set-Cookie`) become `***`, and so does any value that came from a
//! secret-named variable, wherever it appears.
//!
//! Off (no `HttpDebug` at all) the hot path pays one `Option` test per request.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bodies are shown up to this many bytes with `full`.
pub const BODY_LIMIT: usize = 2048;
/// Secret values shorter than this are not searched for in the output: masking every `a`
/// would hide the exchange, and such a value is no secret.
const MIN_SECRET: usize = 4;

pub struct HttpDebug {
    full: bool,
    /// Exchanges still to print.
    left: AtomicUsize,
    printed: AtomicUsize,
    secrets: Vec<String>,
    out: Mutex<Box<dyn Write + Send>>,
}

impl std::fmt::Debug for HttpDebug {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpDebug")
            .field("full", &self.full)
            .field("left", &self.left)
            .finish_non_exhaustive()
    }
}

/// One request and its response, as text heads (HTTP/1.1 layout, also for HTTP/2) and bodies.
pub struct Exchange<'a> {
    pub step: &'a str,
    pub vu: u64,
    /// 0 for the step's own request, then one more per redirect followed.
    pub hop: u16,
    pub request_head: &'a [u8],
    pub request_body: &'a [u8],
    pub response_head: &'a [u8],
    /// The body as checks see it (decoded).
    pub response_body: &'a [u8],
    /// Body bytes as received.
    pub bytes_in: u64,
}

impl HttpDebug {
    /// Prints the first `exchanges` exchanges to `out`; bodies too when `full`.
    pub fn new(full: bool, exchanges: usize, secrets: Vec<String>, out: Box<dyn Write + Send>) -> HttpDebug {
        HttpDebug {
            full,
            left: AtomicUsize::new(exchanges),
            printed: AtomicUsize::new(0),
            secrets: secrets.into_iter().filter(|s| s.len() >= MIN_SECRET).collect(),
            out: Mutex::new(out),
        }
    }

    /// Whether the next exchange is to be printed (takes its place among the first N).
    pub fn take(&self) -> bool {
        self.left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Prints one exchange (after [`take`](Self::take) said yes).
    pub fn print(&self, ex: &Exchange) {
        let n = self.printed.fetch_add(1, Ordering::Relaxed) + 1;
        let mut text = format!("* http-debug {n}: step `{}`, VU {}", ex.step, ex.vu);
        if ex.hop > 0 {
            text.push_str(&format!(", redirect {}", ex.hop));
        }
        text.push('\n');
        // Credentials and cookie values seen in the heads are masked wherever they recur (a
        // server that echoes its request, as httpbin does, puts them in the body).
        let mut seen = Vec::new();
        self.head(ex.request_head, "> ", &mut text, &mut seen);
        self.body(ex.request_body, ex.request_body.len() as u64, "> ", &mut text);
        self.head(ex.response_head, "< ", &mut text, &mut seen);
        self.body(ex.response_body, ex.bytes_in, "< ", &mut text);
        seen.retain(|v| v.len() >= MIN_SECRET);
        seen.sort_by_key(|v| std::cmp::Reverse(v.len()));
        let text = mask(mask(text, &self.secrets), &seen);
        if let Ok(mut out) = self.out.lock() {
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }

    fn head(&self, head: &[u8], prefix: &str, text: &mut String, seen: &mut Vec<String>) {
        let head = String::from_utf8_lossy(head);
        for line in head.split("\r\n").filter(|l| !l.is_empty()) {
            text.push_str(prefix);
            text.push_str(&mask_header_line(line, seen));
            text.push('\n');
        }
        text.push_str(prefix.trim_end());
        text.push('\n');
    }

    fn body(&self, body: &[u8], received: u64, prefix: &str, text: &mut String) {
        if body.is_empty() && received == 0 {
            return;
        }
        let shown = &body[..body.len().min(BODY_LIMIT)];
        let printable = std::str::from_utf8(shown)
            .ok()
            .or_else(|| std::str::from_utf8(&shown[..shown.len().saturating_sub(3)]).ok())
            .filter(|s| !s.contains('\0'));
        match printable {
            Some(s) if self.full => {
                for line in s.lines() {
                    text.push_str(prefix);
                    text.push_str(line);
                    text.push('\n');
                }
                if body.len() > shown.len() {
                    text.push_str(&format!("{prefix}[… {} more bytes]\n", body.len() - shown.len()));
                }
            }
            _ => {
                let kind = if printable.is_some() { "" } else { " binary" };
                let hint = if self.full { "" } else { " (--http-debug=full shows it)" };
                let wire = if received != body.len() as u64 {
                    format!(", {received} as received")
                } else {
                    String::new()
                };
                text.push_str(&format!("{prefix}[{}{kind} bytes of body{wire}{hint}]\n", body.len()));
            }
        }
    }
}

/// `text` with every occurrence of each of `secrets` (longest first) replaced by `***`.
fn mask(mut text: String, secrets: &[String]) -> String {
    for s in secrets {
        if text.contains(s.as_str()) {
            text = text.replace(s.as_str(), "***");
        }
    }
    text
}

/// A header line with its secret parts masked; the parts go to `seen`.
fn mask_header_line(line: &str, seen: &mut Vec<String>) -> String {
    let Some((name, value)) = line.split_once(':') else {
        return line.to_string();
    };
    let v = value.trim();
    let masked = match name.trim().to_ascii_lowercase().as_str() {
        "authorization" | "proxy-authorization" => match v.split_once(' ') {
            Some((scheme, credentials)) => {
                seen.push(credentials.trim().to_string());
                format!("{scheme} ***")
            }
            None => {
                seen.push(v.to_string());
                "***".into()
            }
        },
        "cookie" => v
            .split(';')
            .map(|pair| match pair.trim().split_once('=') {
                Some((k, value)) => {
                    seen.push(value.to_string());
                    format!("{k}=***")
                }
                None => "***".into(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        "set-cookie" => {
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let name = pair.split_once('=').map_or("", |(k, _)| k.trim());
            if let Some((_, value)) = pair.split_once('=') {
                seen.push(value.trim().to_string());
            }
            if attrs.is_empty() {
                format!("{name}=***")
            } else {
                format!("{name}=***;{attrs}")
            }
        }
        _ => return line.to_string(),
    };
    format!("{name}: {masked}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn prints_the_first_exchanges_with_secrets_masked() {
        let buf = Buf::default();
        let d = HttpDebug::new(true, 1, vec!["hunter22".into(), "x".into()], Box::new(buf.clone()));
        assert!(d.take());
        d.print(&Exchange {
            step: "login",
            vu: 3,
            hop: 1,
            request_head:
                b"POST /login HTTP/1.1\r\nauthorization: Bearer hunter22\r\ncookie: a=1; b=2\r\nx-k: hunter22\r\n\r\n",
            request_body: b"{\"password\":\"hunter22\"}",
            response_head: b"HTTP/1.1 200 OK\r\nSet-Cookie: session=s3cr3t; Path=/; HttpOnly\r\n\r\n",
            response_body: b"ok {\"session\": \"s3cr3t\"}",
            bytes_in: 2,
        });
        assert!(!d.take(), "only the first exchange");
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(out.contains("step `login`, VU 3, redirect 1"), "{out}");
        assert!(out.contains("> authorization: Bearer ***"), "{out}");
        assert!(out.contains("> cookie: a=***; b=***"), "{out}");
        assert!(out.contains("< Set-Cookie: session=***; Path=/; HttpOnly"), "{out}");
        assert!(
            out.contains("> x-k: ***") && out.contains("\"password\":\"***\""),
            "{out}"
        );
        assert!(!out.contains("hunter22") && !out.contains("s3cr3t"), "{out}");
        assert!(
            out.contains("< ok {\"session\": \"***\"}"),
            "a value seen in a head is masked in bodies: {out}"
        );
    }

    #[test]
    fn heads_only_unless_full() {
        let buf = Buf::default();
        let d = HttpDebug::new(false, 5, Vec::new(), Box::new(buf.clone()));
        d.print(&Exchange {
            step: "s",
            vu: 1,
            hop: 0,
            request_head: b"GET / HTTP/1.1\r\n\r\n",
            request_body: b"",
            response_head: b"HTTP/1.1 200 OK\r\n\r\n",
            response_body: b"hello",
            bytes_in: 40,
        });
        let out = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(
            out.contains("< [5 bytes of body, 40 as received (--http-debug=full shows it)]"),
            "{out}"
        );
        assert!(!out.contains("hello"), "{out}");
    }
}
