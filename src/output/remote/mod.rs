//! Remote outputs: the run's numbers pushed while it goes, to Prometheus by remote write 1.0
//! (`--output prometheus-rw=URL`) or to an OpenTelemetry collector by OTLP/HTTP
//! (`--output otlp=URL`), and a finished run sent after the fact (`stampede export`).
//!
//! Once a second the runner hands the output an interval; the output folds it into the run's
//! totals (`series.rs`), encodes every series at that instant (`prom.rs`, `otlp.rs`, on the
//! protobuf writer of `proto.rs`) and queues the request for the posting task (`sender.rs`). No
//! part of it runs on a load thread, and nothing in it waits on the receiver.

mod otlp;
mod prom;
mod proto;
mod sender;
mod series;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue};
use stampede_plan::Origin;

use super::{FinishFuture, Flow, Output, PhaseView};
use crate::recorder::Interval;
use crate::rundir::OutputStats;
pub use prom::Histograms;
use sender::{Client, Failure, Sender};
use series::Totals;

/// Which protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PrometheusRw,
    Otlp,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::PrometheusRw => "prometheus-rw",
            Kind::Otlp => "otlp",
        }
    }
}

/// A receiver, as `--output` / `--to` name it: `prometheus-rw=URL[,header=NAME:VALUE]…
/// [,label=NAME=VALUE]…[,histograms=classic|native]` or `otlp=URL[,header=…][,label=…]`.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub kind: Kind,
    /// The URL as given (it cannot hold credentials: they go in a header).
    pub url: String,
    origin: Origin,
    path: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// Labels on every series (remote write) or resource attributes (OTLP).
    labels: Vec<(String, String)>,
    histograms: Histograms,
}

impl Endpoint {
    /// Parses an `--output` value; the error says what is wrong in words for the command line.
    pub fn parse(spec: &str) -> Result<Endpoint, String> {
        let (kind, rest) = match spec.split_once('=') {
            Some(("prometheus-rw", r)) => (Kind::PrometheusRw, r),
            Some(("otlp", r)) => (Kind::Otlp, r),
            _ => {
                return Err(format!(
                    "`{spec}`: an output is `prometheus-rw=URL` or `otlp=URL` (options after commas: header=NAME:VALUE, label=NAME=VALUE, histograms=classic|native)"
                ))
            }
        };
        let mut parts = rest.split(',');
        let url = parts.next().unwrap_or_default().trim().to_string();
        let (origin, mut path) = stampede_plan::parse_url(&url).map_err(|e| format!("{}: {e}", kind.name()))?;
        if kind == Kind::Otlp && path == "/" {
            // A collector's base URL: the metrics path is the protocol's own.
            path = "/v1/metrics".into();
        }
        let mut e = Endpoint {
            kind,
            url,
            origin,
            path,
            headers: Vec::new(),
            labels: Vec::new(),
            histograms: Histograms::Classic,
        };
        for opt in parts {
            let (k, v) = opt
                .split_once('=')
                .ok_or_else(|| format!("`{opt}`: an option is NAME=VALUE (header=, label=, histograms=)"))?;
            match k.trim() {
                "header" => {
                    let (n, val) = v
                        .split_once(':')
                        .ok_or_else(|| format!("header=`{v}`: a header is NAME:VALUE"))?;
                    let n = HeaderName::from_bytes(n.trim().as_bytes())
                        .map_err(|_| format!("header=`{v}`: `{}` is not a header name", n.trim()))?;
                    let mut val = HeaderValue::from_str(val.trim())
                        .map_err(|_| format!("header=`{n}`: the value holds characters a header cannot"))?;
                    // Often a credential: never shown by `Debug`, never stored.
                    val.set_sensitive(true);
                    e.headers.push((n, val));
                }
                "label" => {
                    let (n, val) = v
                        .split_once('=')
                        .ok_or_else(|| format!("label=`{v}`: a label is NAME=VALUE"))?;
                    let n = n.trim();
                    let valid = n.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                        && !n.starts_with("__");
                    if !valid || ["phase", "step", "status", "kind", "le"].contains(&n) {
                        return Err(format!(
                            "label=`{v}`: `{n}` cannot be a label name (letters, digits, `_`; not `__…` nor one of stampede's own: phase, step, status, kind, le)"
                        ));
                    }
                    e.labels.push((n.to_string(), val.to_string()));
                }
                "histograms" if kind == Kind::PrometheusRw => {
                    e.histograms = match v.trim() {
                        "classic" => Histograms::Classic,
                        "native" => Histograms::Native,
                        other => return Err(format!("histograms=`{other}`: classic or native")),
                    }
                }
                other => {
                    return Err(format!(
                        "`{other}` is not an option of {} (header, label{})",
                        kind.name(),
                        if kind == Kind::PrometheusRw { ", histograms" } else { "" }
                    ))
                }
            }
        }
        Ok(e)
    }

    /// Adds a label to every series (e.g. the share of a distributed run).
    pub fn with_label(mut self, name: &str, value: &str) -> Endpoint {
        if !self.labels.iter().any(|(n, _)| n == name) {
            self.labels.push((name.to_string(), value.to_string()));
        }
        self
    }

    /// An encoder of this endpoint's requests (one per output: it caches what it encoded).
    fn encoder(&self) -> Encoder {
        match self.kind {
            Kind::PrometheusRw => Encoder::Prom(prom::PromEncoder::new(self.labels.clone(), self.histograms)),
            Kind::Otlp => Encoder::Otlp(self.labels.clone()),
        }
    }
}

/// Turns the totals at an instant into one request body (uncompressed protobuf).
enum Encoder {
    Prom(prom::PromEncoder),
    /// OTLP's resource attributes.
    Otlp(Vec<(String, String)>),
}

impl Encoder {
    fn encode(&mut self, totals: &Totals, at_ms: i64) -> Vec<u8> {
        match self {
            Encoder::Prom(e) => e.encode(totals, at_ms),
            Encoder::Otlp(attributes) => otlp::export_request(totals, at_ms, attributes),
        }
    }
}

fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The live output: every interval folded once into the run's totals, then encoded and queued
/// for each receiver (several `--output`s share the totals).
pub struct Remote {
    totals: Totals,
    receivers: Vec<(Encoder, Sender)>,
}

impl Remote {
    /// Starts one posting task per endpoint on the current runtime.
    pub fn start(endpoints: Vec<Endpoint>) -> Remote {
        let receivers = endpoints
            .into_iter()
            .map(|e| {
                let e = Arc::new(e);
                (e.encoder(), Sender::start(e))
            })
            .collect();
        Remote {
            totals: Totals::default(),
            receivers,
        }
    }

    fn push_all(&mut self, at_ms: i64) {
        for (encoder, sender) in &mut self.receivers {
            sender.push(encoder.encode(&self.totals, at_ms));
        }
    }
}

impl Output for Remote {
    fn interval(&mut self, iv: &Interval, _phase: &PhaseView) -> Flow {
        // The second just ended: its samples carry the time they were true.
        let now = unix_ms(SystemTime::now());
        let start = now - (iv.dur * 1000.0) as i64;
        self.totals.add(iv, start);
        self.push_all(now);
        Flow::Continue
    }

    fn phase_end(&mut self, phase: &PhaseView) {
        self.totals.end_phase(phase.name);
        // One more push with the phase's VUs at 0, so a dashboard does not show it running.
        if !self.totals.is_empty() {
            self.push_all(unix_ms(SystemTime::now()));
        }
    }

    fn finish(&mut self) -> Option<FinishFuture> {
        let senders: Vec<Sender> = self.receivers.drain(..).map(|(_, s)| s).collect();
        if senders.is_empty() {
            return None;
        }
        Some(Box::pin(async move {
            // Side by side: each drain is bounded on its own.
            let mut set = tokio::task::JoinSet::new();
            for s in senders {
                set.spawn(s.finish());
            }
            let mut stats = Vec::new();
            while let Some(done) = set.join_next().await {
                stats.extend(done.ok());
            }
            stats
        }))
    }
}

/// Why `stampede export` could not send a run.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    RunDir(#[from] crate::rundir::RunDirError),
    #[error("{url}: {reason} (after sending {sent} of the run's seconds)")]
    Send { url: String, reason: String, sent: u64 },
}

/// Attempts per request before `export` gives up on a receiver that keeps failing.
const EXPORT_ATTEMPTS: u32 = 5;
/// Seconds of the run per export request.
const EXPORT_BATCH: usize = 60;

/// Sends a finished run: its seconds replayed through the same totals and encoders as a live
/// run, each stamped with the wall time it ended (`started_at` + its offset), in requests of
/// [`EXPORT_BATCH`] seconds, every one delivered (retried) or the export fails.
pub async fn export(dir: &std::path::Path, endpoint: Endpoint) -> Result<u64, ExportError> {
    let meta = crate::rundir::read_meta(dir)?;
    let started_ms = crate::rundir::time::parse_rfc3339_ms(&meta.started_at).unwrap_or(0);
    let endpoint = Arc::new(endpoint);
    let mut client = Client::new(endpoint.clone());
    let mut encoder = endpoint.encoder();
    let mut totals = Totals::default();
    let mut pending: Vec<u8> = Vec::new();
    let (mut in_pending, mut sent) = (0usize, 0u64);
    let mut phase: Option<String> = None;
    let mut intervals = crate::rundir::Intervals::open(dir)?;
    while let Some(iv) = intervals.next_interval()? {
        if phase.as_deref() != Some(iv.phase.as_str()) {
            if let Some(p) = phase.take() {
                totals.end_phase(&p);
            }
            phase = Some(iv.phase.clone());
        }
        let start = started_ms + (iv.t * 1000.0) as i64;
        let end = started_ms + ((iv.t + iv.dur) * 1000.0) as i64;
        totals.add(&iv, start);
        pending.extend(encoder.encode(&totals, end));
        in_pending += 1;
        if in_pending == EXPORT_BATCH {
            send_all(&mut client, &pending, &endpoint, sent).await?;
            sent += in_pending as u64;
            pending.clear();
            in_pending = 0;
        }
    }
    if in_pending > 0 {
        send_all(&mut client, &pending, &endpoint, sent).await?;
        sent += in_pending as u64;
    }
    Ok(sent)
}

async fn send_all(client: &mut Client, body: &[u8], endpoint: &Endpoint, sent: u64) -> Result<(), ExportError> {
    let mut wait = Duration::from_millis(200);
    let mut attempt = 1;
    loop {
        match client.post(body).await {
            Ok(()) => return Ok(()),
            Err(Failure::Retry(_)) if attempt < EXPORT_ATTEMPTS => {
                tokio::time::sleep(wait).await;
                wait *= 2;
                attempt += 1;
            }
            Err(f) => {
                return Err(ExportError::Send {
                    url: endpoint.url.clone(),
                    reason: f.message().to_string(),
                    sent,
                })
            }
        }
    }
}

/// What a receiver did not get, in a sentence (none when everything arrived).
pub fn shortfall(s: &OutputStats) -> Option<String> {
    (s.dropped > 0 || s.sent < s.seconds).then(|| {
        format!(
            "{} {}: {} of {} pushes (one a second) not delivered{}",
            s.output,
            s.url,
            s.dropped.max(s.seconds.saturating_sub(s.sent)),
            s.seconds,
            s.last_error.as_deref().map(|e| format!(" ({e})")).unwrap_or_default()
        )
    })
}
