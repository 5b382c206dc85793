//! Scrapes a Prometheus `/metrics` endpoint: keeps the selected families, turns counters into
//! per-second rates (`<name>_per_s`), and derives `<base>_hit_ratio` from a pair of
//! `<base>_hits_total` / `<base>_misses_total` counters (a cache hit ratio over the last
//! interval, which is what falls under load, rather than since the process started).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use stampede_plan::{Origin, SeriesFilter};
use tokio::time::Instant;

use super::prom::{self, series_key};
use super::{rate, MonitorError, Series};
use crate::transport::Transport;

type Sender = http1::SendRequest<Full<Bytes>>;

/// Expositions larger than this are refused: a monitor must not eat the load generator's memory.
const MAX_BODY: usize = 16 << 20;
/// Series kept per sample, at most; a misconfigured `include` must not flood the run directory.
const MAX_SERIES: usize = 2000;

pub struct Prometheus {
    origin: Origin,
    path: String,
    include: Vec<SeriesFilter>,
    labels: Vec<(String, String)>,
    /// TLS (real verification, HTTP/1.1 by ALPN) for `https`; 5 s to connect.
    transport: Transport,
    conn: Option<Sender>,
    /// Cumulative values at the previous scrape, for rates.
    prev: BTreeMap<String, (f64, Instant)>,
}

impl Prometheus {
    pub fn new(origin: Origin, path: String, include: Vec<SeriesFilter>, labels: Vec<(String, String)>) -> Self {
        let tls = if origin.tls {
            crate::transport::tls_config(false, false, &Default::default()).ok()
        } else {
            None
        };
        let transport = Transport::new(tls, Duration::from_secs(5));
        Prometheus {
            origin,
            path,
            include,
            labels,
            transport,
            conn: None,
            prev: BTreeMap::new(),
        }
    }

    fn what(&self) -> String {
        format!(
            "{}://{}{}",
            if self.origin.tls { "https" } else { "http" },
            self.origin.authority,
            self.path
        )
    }

    async fn fetch(&mut self) -> Result<Bytes, MonitorError> {
        let what = self.what();
        let failed = |reason: String| MonitorError::Failed {
            what: what.clone(),
            reason,
        };
        if self.conn.as_ref().is_none_or(|c| c.is_closed()) {
            let c = connect(&self.origin, &self.transport)
                .await
                .map_err(|reason| MonitorError::Connect {
                    what: what.clone(),
                    reason,
                })?;
            self.conn = Some(c);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(failed("no connection".into()));
        };
        if let Err(e) = conn.ready().await {
            self.conn = None;
            return Err(failed(e.to_string()));
        }
        let req = http::Request::get(self.path.clone())
            .header(http::header::HOST, self.origin.authority.as_str())
            .header(http::header::ACCEPT, "text/plain;version=0.0.4")
            .header(
                http::header::USER_AGENT,
                concat!("stampede/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::new()))
            .map_err(|e| failed(e.to_string()))?;
        let resp = match conn.send_request(req).await {
            Ok(r) => r,
            Err(e) => {
                self.conn = None;
                return Err(failed(e.to_string()));
            }
        };
        let status = resp.status();
        let body = match Limited::new(resp.into_body(), MAX_BODY).collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                self.conn = None;
                return Err(failed(format!("reading the body: {e}")));
            }
        };
        if status == http::StatusCode::UNAUTHORIZED || status == http::StatusCode::FORBIDDEN {
            return Err(MonitorError::Auth {
                what,
                reason: format!("status {}", status.as_u16()),
            });
        }
        if !status.is_success() {
            return Err(failed(format!("status {}", status.as_u16())));
        }
        Ok(body)
    }

    pub async fn sample(&mut self) -> Result<Series, MonitorError> {
        let body = self.fetch().await?;
        let now = Instant::now();
        let text = String::from_utf8_lossy(&body);
        Ok(self.digest(&text, now))
    }

    /// From one exposition to the series kept (separate from the fetch, for tests).
    pub fn digest(&mut self, text: &str, now: Instant) -> Series {
        let parsed = prom::parse(text);
        let mut out = Series::new();
        let mut cumulative: BTreeMap<String, f64> = BTreeMap::new();
        for s in parsed.samples {
            if !self.include.is_empty() && !self.include.iter().any(|f| f.matches(&s.family) || f.matches(&s.name)) {
                continue;
            }
            if !self
                .labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v))
            {
                continue;
            }
            if out.len() >= MAX_SERIES {
                break;
            }
            if s.is_cumulative() {
                let key = s.key();
                let r = rate(self.prev.get(&key).copied(), (s.value, now));
                self.prev.insert(key.clone(), (s.value, now));
                cumulative.insert(key, s.value);
                if let Some(r) = r.filter(|r| r.is_finite()) {
                    out.insert(series_key(&format!("{}_per_s", s.name), &s.labels), super::round3(r));
                }
            } else if s.value.is_finite() {
                out.insert(s.key(), s.value);
            }
        }
        // Hit ratios over the interval, from `_hits_total` and `_misses_total` rates.
        let ratios: Vec<(String, f64)> = out
            .iter()
            .filter_map(|(k, hits)| {
                let (name, labels) = k
                    .split_once('{')
                    .map(|(n, l)| (n, format!("{{{l}")))
                    .unwrap_or((k, String::new()));
                let base = name.strip_suffix("_hits_total_per_s")?;
                let misses = out.get(&format!("{base}_misses_total_per_s{labels}"))?;
                let total = hits + misses;
                (total > 0.0).then(|| (format!("{base}_hit_ratio{labels}"), hits / total))
            })
            .collect();
        out.extend(ratios);
        out
    }
}

/// One HTTP/1.1 connection for scraping (hyper's, its driver on a spawned task: a monitor lives
/// on the runner's runtime, not in a VU's task), on the same transport as the load. The remote
/// outputs post on the same kind of connection.
pub(crate) async fn connect(origin: &Origin, transport: &Transport) -> Result<Sender, String> {
    let stream = transport
        .connect(&origin.host, origin.port, origin.tls)
        .await
        .map_err(|kind| kind.describe_connect(&origin.authority))?;
    handshake(TokioIo::new(stream)).await
}

async fn handshake<T>(io: TokioIo<T>) -> Result<Sender, String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http1::handshake(io).await.map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "# TYPE c_hits_total counter\nc_hits_total{e=\"x\"} 100\n# TYPE c_misses_total counter\nc_misses_total{e=\"x\"} 10\n# TYPE g gauge\ng{pool=\"db\"} 7\ng{pool=\"other\"} 1\nother 3\n";
    const B: &str = "# TYPE c_hits_total counter\nc_hits_total{e=\"x\"} 185\n# TYPE c_misses_total counter\nc_misses_total{e=\"x\"} 25\n# TYPE g gauge\ng{pool=\"db\"} 9\ng{pool=\"other\"} 1\nother 3\n";

    fn origin() -> Origin {
        stampede_plan::parse_origin("http://127.0.0.1:1").unwrap().0
    }

    #[test]
    fn counters_become_rates_and_hit_ratios() {
        let mut p = Prometheus::new(origin(), "/metrics".into(), vec![], vec![]);
        let t0 = Instant::now();
        let first = p.digest(A, t0);
        assert_eq!(first.get("g{pool=\"db\"}"), Some(&7.0));
        assert!(
            !first.keys().any(|k| k.contains("_per_s")),
            "no rate before two scrapes: {first:?}"
        );
        let second = p.digest(B, t0 + Duration::from_secs(2));
        assert_eq!(second.get("c_hits_total_per_s{e=\"x\"}"), Some(&42.5));
        assert_eq!(second.get("c_misses_total_per_s{e=\"x\"}"), Some(&7.5));
        assert_eq!(second.get("c_hit_ratio{e=\"x\"}"), Some(&0.85));
    }

    #[test]
    fn include_and_label_filters() {
        let re = stampede_plan::Regex::new("^g$").unwrap();
        let mut p = Prometheus::new(
            origin(),
            "/metrics".into(),
            vec![SeriesFilter::Regex(re)],
            vec![("pool".into(), "db".into())],
        );
        let s = p.digest(A, Instant::now());
        assert_eq!(s.keys().collect::<Vec<_>>(), vec!["g{pool=\"db\"}"]);
        let mut p = Prometheus::new(
            origin(),
            "/metrics".into(),
            vec![SeriesFilter::Name("other".into())],
            vec![],
        );
        assert_eq!(p.digest(A, Instant::now()).keys().collect::<Vec<_>>(), vec!["other"]);
    }
}
