//! Redis through a tiny RESP client: `AUTH` when the URL has a password, then `INFO` every
//! sample. No redis crate for one command.
//!
//! Series: `connected_clients`, `hit_ratio` (keyspace hits / lookups over the last interval, or
//! since the server started on the first sample), `ops_per_s` (commands processed per second,
//! ours included: one per sample), `used_memory_bytes`.

use stampede_plan::redact::{parse_redis_url, RedisUrl};
use stampede_plan::Secret;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::{rate, round3, MonitorError, Series};

/// Largest reply read: `INFO` is a few KiB; anything huge is not a Redis we should trust.
const MAX_REPLY: usize = 1 << 20;

pub struct Redis {
    url: Secret,
    conn: Option<BufReader<TcpStream>>,
    /// (keyspace hits, misses, commands processed) at the previous sample.
    prev: Option<([f64; 3], Instant)>,
}

#[derive(Debug, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(usize),
}

impl Redis {
    pub fn new(url: Secret) -> Self {
        Redis {
            url,
            conn: None,
            prev: None,
        }
    }

    fn failed(&self, reason: impl Into<String>) -> MonitorError {
        MonitorError::Failed {
            what: self.url.shown(),
            reason: reason.into(),
        }
    }

    async fn connect(&self, u: &RedisUrl) -> Result<BufReader<TcpStream>, MonitorError> {
        let tcp = TcpStream::connect((u.host.as_str(), u.port))
            .await
            .map_err(|e| MonitorError::Connect {
                what: self.url.shown(),
                reason: e.to_string(),
            })?;
        let mut c = BufReader::new(tcp);
        if let Some(pw) = &u.password {
            let args: Vec<&[u8]> = match &u.username {
                Some(user) => vec![b"AUTH", user.as_bytes(), pw.as_bytes()],
                None => vec![b"AUTH", pw.as_bytes()],
            };
            if let Reply::Error(e) = command(&mut c, &args).await.map_err(|e| self.failed(e))? {
                return Err(MonitorError::Auth {
                    what: self.url.shown(),
                    reason: e,
                });
            }
        }
        if u.db != 0 {
            let db = u.db.to_string();
            if let Reply::Error(e) = command(&mut c, &[b"SELECT", db.as_bytes()])
                .await
                .map_err(|e| self.failed(e))?
            {
                return Err(self.failed(e));
            }
        }
        Ok(c)
    }

    pub async fn sample(&mut self) -> Result<Series, MonitorError> {
        let u = parse_redis_url(self.url.expose()).ok_or_else(|| self.failed("not a redis:// URL"))?;
        if self.conn.is_none() {
            self.conn = Some(self.connect(&u).await?);
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(self.failed("no connection"));
        };
        let reply = command(c, &[b"INFO"]).await;
        let text = match reply {
            Ok(Reply::Bulk(Some(b))) => String::from_utf8_lossy(&b).into_owned(),
            Ok(Reply::Error(e)) if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") => {
                self.conn = None;
                return Err(MonitorError::Auth {
                    what: self.url.shown(),
                    reason: e,
                });
            }
            Ok(other) => {
                self.conn = None;
                return Err(self.failed(format!("unexpected reply to INFO: {other:?}")));
            }
            Err(e) => {
                self.conn = None;
                return Err(self.failed(e));
            }
        };
        let now = Instant::now();
        Ok(self.digest(&text, now))
    }

    fn digest(&mut self, info: &str, now: Instant) -> Series {
        let field = |k: &str| -> Option<f64> {
            info.lines()
                .find_map(|l| l.strip_prefix(k).and_then(|r| r.strip_prefix(':')))
                .and_then(|v| v.trim().parse().ok())
        };
        let mut s = Series::new();
        if let Some(v) = field("connected_clients") {
            s.insert("connected_clients".into(), v);
        }
        if let Some(v) = field("used_memory") {
            s.insert("used_memory_bytes".into(), v);
        }
        if let (Some(h), Some(m), Some(cmds)) = (
            field("keyspace_hits"),
            field("keyspace_misses"),
            field("total_commands_processed"),
        ) {
            let (dh, dm) = match self.prev {
                Some((p, _)) => ((h - p[0]).max(0.0), (m - p[1]).max(0.0)),
                None => (h, m),
            };
            if dh + dm > 0.0 {
                s.insert("hit_ratio".into(), round3(dh / (dh + dm) * 1000.0) / 1000.0);
            }
            if let Some(r) = rate(self.prev.map(|(p, t)| (p[2], t)), (cmds, now)) {
                s.insert("ops_per_s".into(), round3(r));
            }
            self.prev = Some(([h, m, cmds], now));
        } else if let Some(v) = field("instantaneous_ops_per_sec") {
            s.insert("ops_per_s".into(), v);
        }
        s
    }
}

/// Sends one command as a RESP array of bulk strings and reads its reply (a bulk string or a
/// simple one; nested arrays are not needed for `AUTH`, `SELECT` and `INFO`).
async fn command(c: &mut BufReader<TcpStream>, args: &[&[u8]]) -> Result<Reply, String> {
    let mut req = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        req.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        req.extend_from_slice(a);
        req.extend_from_slice(b"\r\n");
    }
    c.get_mut().write_all(&req).await.map_err(|e| e.to_string())?;
    read_reply(c).await
}

pub async fn read_reply<R: tokio::io::AsyncBufRead + Unpin>(c: &mut R) -> Result<Reply, String> {
    let mut line = Vec::new();
    let n = (&mut *c)
        .take(64 * 1024)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|e| e.to_string())?;
    if n == 0 {
        return Err("the server closed the connection".into());
    }
    let text = String::from_utf8_lossy(&line);
    let text = text.trim_end_matches(['\r', '\n']);
    let (kind, rest) = text.split_at(text.char_indices().nth(1).map(|(i, _)| i).unwrap_or(text.len()));
    match kind {
        "+" => Ok(Reply::Simple(rest.to_string())),
        "-" => Ok(Reply::Error(rest.to_string())),
        ":" => rest
            .parse()
            .map(Reply::Int)
            .map_err(|_| format!("bad integer reply `{rest}`")),
        "*" => rest
            .parse::<i64>()
            .map(|n| Reply::Array(n.max(0) as usize))
            .map_err(|_| format!("bad array reply `{rest}`")),
        "$" => {
            let len: i64 = rest.parse().map_err(|_| format!("bad bulk length `{rest}`"))?;
            if len < 0 {
                return Ok(Reply::Bulk(None));
            }
            let len = len as usize;
            if len > MAX_REPLY {
                return Err(format!("a {len}-byte reply is more than a monitor reads"));
            }
            let mut buf = vec![0u8; len + 2];
            c.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
            buf.truncate(len);
            Ok(Reply::Bulk(Some(buf)))
        }
        _ => Err(format!(
            "not a RESP reply: `{}`",
            text.chars().take(40).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> Result<Reply, String> {
        let mut r = tokio::io::BufReader::new(bytes);
        read_reply(&mut r).await
    }

    #[tokio::test]
    async fn resp_replies() {
        assert_eq!(parse(b"+OK\r\n").await, Ok(Reply::Simple("OK".into())));
        assert_eq!(parse(b"-WRONGPASS x\r\n").await, Ok(Reply::Error("WRONGPASS x".into())));
        assert_eq!(parse(b":42\r\n").await, Ok(Reply::Int(42)));
        assert_eq!(
            parse(b"$5\r\nhello\r\n").await,
            Ok(Reply::Bulk(Some(b"hello".to_vec())))
        );
        assert_eq!(parse(b"$-1\r\n").await, Ok(Reply::Bulk(None)));
        assert!(parse(b"").await.is_err());
        assert!(parse(b"$10\r\nshort\r\n").await.is_err());
        assert!(parse(b"$99999999999\r\n").await.is_err());
        assert!(parse(b"HTTP/1.1 400\r\n").await.is_err());
        assert!(parse("é\r\n".as_bytes()).await.is_err());
    }

    #[test]
    fn info_fields() {
        let mut r = Redis::new(Secret::new("redis://127.0.0.1:1".into()));
        let t0 = Instant::now();
        let a = r.digest("# Clients\r\nconnected_clients:7\r\nused_memory:1048576\r\nkeyspace_hits:90\r\nkeyspace_misses:10\r\ntotal_commands_processed:1000\r\n", t0);
        assert_eq!(a["connected_clients"], 7.0);
        assert_eq!(a["hit_ratio"], 0.9);
        let b = r.digest(
            "keyspace_hits:175\r\nkeyspace_misses:25\r\ntotal_commands_processed:1500\r\n",
            t0 + std::time::Duration::from_secs(2),
        );
        assert_eq!(b["hit_ratio"], 0.85);
        assert_eq!(b["ops_per_s"], 250.0);
    }
}
