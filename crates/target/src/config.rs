//! The target's configuration: YAML in, a validated [`Config`] out.
//!
//! Parsing is strict (unknown keys are errors) because a typo in a simulated system's config
//! silently changes its capacity, and capacity is the one thing the target must get right.
//! Every error carries `file:line:column`.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_saphyr::{Location, Spanned};

use crate::dist::Dist;

/// A configuration problem, located in its file. Displays as `file:line:column: message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// A validated target configuration. Build it with [`parse_config`] or [`crate::profile`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Seed for every random draw (service times, errors, cache hits); `None` = from the OS.
    pub seed: Option<u64>,
    /// Initial state of the global cache switch (toggled at runtime by `POST /_admin/cache`).
    pub cache_enabled: bool,
    pub services: Vec<ServiceConfig>,
    pub endpoints: Vec<EndpointConfig>,
}

/// A bounded worker pool: PHP-FPM `max_children`, a DB connection pool, an upstream's rate.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceConfig {
    pub name: String,
    /// Requests served at the same time. Saturation throughput = workers / mean service time.
    pub workers: usize,
    /// Requests allowed to wait for a worker; one more is answered 503 at once.
    pub queue: usize,
    /// Longest wait for a worker before the request is answered 504.
    pub queue_timeout: Duration,
    /// Also export this pool as a connection pool (`stampede_target_connection_pool_*`).
    pub connection_pool: bool,
}

/// What an endpoint does besides the standard pool-and-respond path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointKind {
    /// Configured service time and response.
    Standard,
    /// Sleeps `?ms=N` milliseconds (capped at 60 s), then answers 200.
    DelayQuery,
    /// Answers the status given by the path's first parameter (`/status/:code`).
    StatusFromPath,
    /// Answers a body of N bytes, N from the path's first parameter (`/bytes/:n`, capped at 16 MiB).
    BytesFromPath,
    /// WebSocket (GET + upgrade): echoes each message after a draw from the service time.
    WsEcho,
    /// WebSocket (GET + upgrade): pushes a small JSON message every `push_interval`
    /// (`?rate=N` per second overrides it).
    WsPush,
}

/// One path segment: literal or `:param`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Lit(String),
    Param(String),
}

#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Name used in stats and metrics labels; defaults to `"METHOD /path"`.
    pub name: String,
    pub method: http::Method,
    pub path: String,
    pub segments: Vec<Segment>,
    pub kind: EndpointKind,
    /// Index into [`Config::services`]; `None` = no pool limit.
    pub service: Option<usize>,
    pub service_time: Dist,
    /// Real CPU work per request (hashing), so host CPU rises with load like a real server.
    pub cpu: Duration,
    pub status: u16,
    /// Serialized JSON body.
    pub body: Bytes,
    pub errors: Option<ErrorInjection>,
    pub not_configured: Option<NotConfigured>,
    pub webhook: Option<WebhookConfig>,
    pub cache: Option<CacheConfig>,
    /// Interval of `ws_push` messages.
    pub push_interval: Duration,
    /// WebSocket faults on purpose, so a test knows the truth.
    pub ws_faults: crate::ws::Faults,
    /// Added to the service time per second since the endpoint's first request: a system that
    /// degrades steadily (a leak, table bloat), so drift detection can be tested against the truth.
    pub slowdown: Duration,
    /// At most this many requests a second (fixed 1 s windows); beyond, 429 with `Retry-After`.
    pub rate_limit: Option<RateLimit>,
}

/// A third-party API's rate limit, so a test knows how many 429s it answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: u64,
    /// Sent as `Retry-After` in whole seconds (rounded up; default 1 s).
    pub retry_after: Duration,
}

/// Random failures, optionally only when the server is busy (load-caused errors).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInjection {
    pub rate: f64,
    pub status: u16,
    /// Only inject when more than this many requests are in flight server-wide.
    pub when_busy_above: Option<usize>,
}

/// A configuration error of the simulated system (the voice seed's "Cal.com not configured for
/// company 1"): the answer does not depend on load, and a report should say so.
#[derive(Debug, Clone, PartialEq)]
pub struct NotConfigured {
    pub status: u16,
    pub message: String,
    /// Only when the JSON request body's `field` equals this value (strings and numbers compare by
    /// their text, so `"1"` matches `1`); `None` = always.
    pub when: Option<(String, serde_json::Value)>,
}

/// HMAC-SHA256 webhook signature check.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookConfig {
    pub secret: String,
    pub header: String,
    /// When set, the signed message is `"{timestamp}.{body}"` with the timestamp from this header.
    pub timestamp_header: Option<String>,
}

/// A cache in front of the endpoint's service.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub hit_ratio: f64,
    /// Hit ratio once more than `when_busy_above` requests are in flight (more key variety).
    pub hit_ratio_under_load: f64,
    pub when_busy_above: Option<usize>,
    /// Time to serve a hit (no worker needed).
    pub hit_time: Dist,
}

/// Paths the server answers itself; endpoints may not use them.
pub(crate) const RESERVED_PATHS: &[&str] = &["/metrics", "/_admin"];

// ---------------------------------------------------------------------------------------------
// Raw (serde) shapes

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    cache: Option<RawGlobalCache>,
    #[serde(default)]
    services: BTreeMap<String, Spanned<RawService>>,
    endpoints: Vec<Spanned<RawEndpoint>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGlobalCache {
    enabled: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    workers: usize,
    #[serde(default)]
    queue: Option<usize>,
    #[serde(default)]
    queue_timeout: Option<Dur>,
    #[serde(default)]
    connection_pool: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    #[serde(default)]
    name: Option<String>,
    method: String,
    path: String,
    #[serde(default)]
    kind: Option<RawKind>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    service_time: Option<RawDist>,
    #[serde(default)]
    cpu: Option<Dur>,
    #[serde(default)]
    response: Option<RawResponse>,
    #[serde(default)]
    errors: Option<RawErrors>,
    #[serde(default)]
    not_configured: Option<RawNotConfigured>,
    #[serde(default)]
    webhook: Option<RawWebhook>,
    #[serde(default)]
    cache: Option<RawCache>,
    #[serde(default)]
    push_interval: Option<Dur>,
    /// `ws_echo`: leave every Nth data message unanswered.
    #[serde(default)]
    lose_every: Option<u64>,
    /// WebSocket endpoints: close each connection (code 1012) after this long.
    #[serde(default)]
    close_after: Option<Dur>,
    /// Service time added per second since the endpoint's first request.
    #[serde(default)]
    slowdown: Option<Dur>,
    #[serde(default)]
    rate_limit: Option<RawRateLimit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_second: u64,
    #[serde(default)]
    retry_after: Option<Dur>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum RawKind {
    Standard,
    DelayQuery,
    StatusFromPath,
    BytesFromPath,
    WsEcho,
    WsPush,
}

#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum RawDist {
    Fixed(Dur),
    Uniform {
        min: Dur,
        max: Dur,
    },
    Lognormal {
        mean: Dur,
        #[serde(default)]
        p99: Option<Dur>,
        #[serde(default)]
        sigma: Option<f64>,
    },
    Exponential {
        mean: Dur,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    body: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrors {
    rate: f64,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    when_busy_above: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNotConfigured {
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    when: Option<RawWhen>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    field: String,
    equals: serde_json::Value,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    secret: String,
    #[serde(default)]
    header: Option<String>,
    #[serde(default)]
    timestamp_header: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCache {
    hit_ratio: f64,
    #[serde(default)]
    hit_ratio_under_load: Option<f64>,
    #[serde(default)]
    when_busy_above: Option<usize>,
    #[serde(default)]
    hit_time: Option<RawDist>,
}

/// A duration written as `50ms`, `1.5s`, `200us`, `2m`, or a bare number of milliseconds.
#[derive(Clone, Copy, Debug)]
struct Dur(Duration);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration like 50ms, 1.5s, 200us or a number of milliseconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                Ok(Dur(Duration::from_millis(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                u64::try_from(v)
                    .map(|v| Dur(Duration::from_millis(v)))
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                parse_secs(v / 1000.0).map(Dur).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

fn parse_secs(s: f64) -> Result<Duration, String> {
    if s.is_finite() && (0.0..=86_400.0).contains(&s) {
        Ok(Duration::from_secs_f64(s))
    } else {
        Err(format!("duration out of range: {s}s"))
    }
}

/// Parses `50ms`, `1.5s`, `200us`/`200µs`, `2m`, `1h`.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (expected e.g. 50ms, 1.5s, 200us)"))?;
    let scale = match unit.trim() {
        "us" | "µs" => 1e-6,
        "ms" | "" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        u => return Err(format!("invalid duration unit {u:?} in {s:?} (use us, ms, s, m, h)")),
    };
    parse_secs(n * scale)
}

// ---------------------------------------------------------------------------------------------
// Parsing and validation

/// Parses and validates a target config. `file_name` is only used in error messages.
pub fn parse_config(src: &str, file_name: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_saphyr::from_str(src).map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        ConfigError {
            file: file_name.to_string(),
            line,
            column,
            message: clean_message(&e.without_snippet().to_string()),
        }
    })?;
    Validator { file: file_name }.config(raw)
}

/// serde-saphyr's message repeats the position; ours already leads with it.
fn clean_message(m: &str) -> String {
    let first = m.lines().next().unwrap_or(m).trim();
    let cut = [" at line ", " at position "]
        .iter()
        .filter_map(|p| first.find(p))
        .min()
        .unwrap_or(first.len());
    first[..cut].trim_end_matches([',', ':', ' ']).to_string()
}

struct Validator<'a> {
    file: &'a str,
}

impl Validator<'_> {
    fn err(&self, at: Location, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.to_string(),
            line: at.line() as usize,
            column: at.column() as usize,
            message: message.into(),
        }
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let mut services = Vec::new();
        for (name, s) in &raw.services {
            let at = s.referenced;
            let s = &s.value;
            if s.workers == 0 {
                return Err(self.err(at, format!("service {name:?}: workers must be at least 1")));
            }
            services.push(ServiceConfig {
                name: name.clone(),
                workers: s.workers,
                queue: s.queue.unwrap_or(1000),
                queue_timeout: s.queue_timeout.map_or(Duration::from_secs(30), |d| d.0),
                connection_pool: s.connection_pool,
            });
        }
        if raw.endpoints.is_empty() {
            return Err(ConfigError {
                file: self.file.to_string(),
                line: 1,
                column: 1,
                message: "`endpoints` is empty: the target needs at least one endpoint".into(),
            });
        }
        let mut endpoints = Vec::new();
        let mut names = HashSet::new();
        let mut routes = HashSet::new();
        for e in &raw.endpoints {
            let ep = self.endpoint(e.referenced, &e.value, &services)?;
            if !names.insert(ep.name.clone()) {
                return Err(self.err(e.referenced, format!("duplicate endpoint name {:?}", ep.name)));
            }
            let shape: Vec<String> = ep
                .segments
                .iter()
                .map(|s| match s {
                    Segment::Lit(l) => l.clone(),
                    Segment::Param(_) => ":".into(),
                })
                .collect();
            if !routes.insert((ep.method.clone(), shape)) {
                return Err(self.err(e.referenced, format!("duplicate route {} {}", ep.method, ep.path)));
            }
            endpoints.push(ep);
        }
        Ok(Config {
            seed: raw.seed,
            cache_enabled: raw.cache.is_none_or(|c| c.enabled),
            services,
            endpoints,
        })
    }

    fn endpoint(
        &self,
        at: Location,
        e: &RawEndpoint,
        services: &[ServiceConfig],
    ) -> Result<EndpointConfig, ConfigError> {
        let method = http::Method::from_bytes(e.method.trim().to_ascii_uppercase().as_bytes())
            .map_err(|_| self.err(at, format!("invalid HTTP method {:?}", e.method)))?;
        if !e.path.starts_with('/') {
            return Err(self.err(at, format!("path {:?} must start with '/'", e.path)));
        }
        if RESERVED_PATHS
            .iter()
            .any(|r| e.path == *r || e.path.starts_with(&format!("{r}/")))
        {
            return Err(self.err(at, format!("path {:?} is reserved for the target itself", e.path)));
        }
        let mut segments = Vec::new();
        for s in e.path.split('/').filter(|s| !s.is_empty()) {
            match s.strip_prefix(':') {
                Some("") => return Err(self.err(at, format!("empty parameter name in {:?}", e.path))),
                Some(p) => segments.push(Segment::Param(p.to_string())),
                None => segments.push(Segment::Lit(s.to_string())),
            }
        }
        let kind = match e.kind.unwrap_or(RawKind::Standard) {
            RawKind::Standard => EndpointKind::Standard,
            RawKind::DelayQuery => EndpointKind::DelayQuery,
            RawKind::StatusFromPath => EndpointKind::StatusFromPath,
            RawKind::BytesFromPath => EndpointKind::BytesFromPath,
            RawKind::WsEcho => EndpointKind::WsEcho,
            RawKind::WsPush => EndpointKind::WsPush,
        };
        if matches!(kind, EndpointKind::WsEcho | EndpointKind::WsPush) && method != http::Method::GET {
            return Err(self.err(at, "WebSocket endpoints must use method GET"));
        }
        let push_interval = e.push_interval.map_or(Duration::from_secs(1), |d| d.0);
        if e.lose_every == Some(0) {
            return Err(self.err(at, "lose_every must be at least 1 (1 loses every message)"));
        }
        let ws_faults = crate::ws::Faults {
            lose_every: e.lose_every,
            close_after: e.close_after.map(|d| d.0).filter(|d| !d.is_zero()),
        };
        if push_interval < Duration::from_millis(1) {
            return Err(self.err(at, "push_interval must be at least 1ms"));
        }
        if matches!(kind, EndpointKind::StatusFromPath | EndpointKind::BytesFromPath)
            && !segments.iter().any(|s| matches!(s, Segment::Param(_)))
        {
            return Err(self.err(at, "this kind needs a path parameter, e.g. /status/:code"));
        }
        let service = match &e.service {
            None => None,
            Some(name) => Some(services.iter().position(|s| &s.name == name).ok_or_else(|| {
                let known: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
                self.err(at, format!("unknown service {name:?} (known: {})", known.join(", ")))
            })?),
        };
        let service_time = match &e.service_time {
            Some(d) => self.dist(at, d)?,
            None => Dist::Fixed(Duration::ZERO),
        };
        let (status, body) = match &e.response {
            Some(r) => (
                self.status(at, r.status.unwrap_or(200))?,
                r.body.clone().unwrap_or_else(|| serde_json::json!({"ok": true})),
            ),
            None => (200, serde_json::json!({"ok": true})),
        };
        let errors = match &e.errors {
            None => None,
            Some(x) => {
                self.ratio(at, "errors.rate", x.rate)?;
                Some(ErrorInjection {
                    rate: x.rate,
                    status: self.status(at, x.status.unwrap_or(500))?,
                    when_busy_above: x.when_busy_above,
                })
            }
        };
        let not_configured = match &e.not_configured {
            None => None,
            Some(n) => Some(NotConfigured {
                status: self.status(at, n.status.unwrap_or(424))?,
                message: n
                    .message
                    .clone()
                    .unwrap_or_else(|| "a dependency of this endpoint is not configured".to_string()),
                when: n.when.as_ref().map(|w| (w.field.clone(), w.equals.clone())),
            }),
        };
        let webhook = match &e.webhook {
            None => None,
            Some(w) => {
                if w.secret.is_empty() {
                    return Err(self.err(at, "webhook.secret must not be empty"));
                }
                let header = w.header.clone().unwrap_or_else(|| "X-Signature".into());
                for h in std::iter::once(&header).chain(w.timestamp_header.iter()) {
                    if http::HeaderName::from_bytes(h.as_bytes()).is_err() {
                        return Err(self.err(at, format!("invalid header name {h:?}")));
                    }
                }
                Some(WebhookConfig {
                    secret: w.secret.clone(),
                    header,
                    timestamp_header: w.timestamp_header.clone(),
                })
            }
        };
        let cache = match &e.cache {
            None => None,
            Some(c) => {
                self.ratio(at, "cache.hit_ratio", c.hit_ratio)?;
                let under = c.hit_ratio_under_load.unwrap_or(c.hit_ratio);
                self.ratio(at, "cache.hit_ratio_under_load", under)?;
                Some(CacheConfig {
                    hit_ratio: c.hit_ratio,
                    hit_ratio_under_load: under,
                    when_busy_above: c.when_busy_above,
                    hit_time: match &c.hit_time {
                        Some(d) => self.dist(at, d)?,
                        None => Dist::Fixed(Duration::from_millis(2)),
                    },
                })
            }
        };
        Ok(EndpointConfig {
            name: e.name.clone().unwrap_or_else(|| format!("{method} {}", e.path)),
            method,
            path: e.path.clone(),
            segments,
            kind,
            service,
            service_time,
            cpu: e.cpu.map_or(Duration::ZERO, |d| d.0),
            status,
            body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
            errors,
            not_configured,
            webhook,
            cache,
            push_interval,
            ws_faults,
            slowdown: e.slowdown.map_or(Duration::ZERO, |d| d.0),
            rate_limit: match &e.rate_limit {
                None => None,
                Some(r) if r.per_second == 0 => {
                    return Err(self.err(at, "rate_limit.per_second must be at least 1"));
                }
                Some(r) => Some(RateLimit {
                    per_second: r.per_second,
                    retry_after: r.retry_after.map_or(Duration::from_secs(1), |d| d.0),
                }),
            },
        })
    }

    fn dist(&self, at: Location, d: &RawDist) -> Result<Dist, ConfigError> {
        let r = match d {
            RawDist::Fixed(v) => Ok(Dist::Fixed(v.0)),
            RawDist::Uniform { min, max } => Dist::uniform(min.0, max.0),
            RawDist::Lognormal { mean, p99, sigma } => Dist::lognormal(mean.0, p99.map(|p| p.0), *sigma),
            RawDist::Exponential { mean } => Ok(Dist::Exponential { mean: mean.0 }),
        };
        r.map_err(|e| self.err(at, e.to_string()))
    }

    fn status(&self, at: Location, s: u16) -> Result<u16, ConfigError> {
        // 1xx are not final answers; a response with one would leave the client hanging.
        if (200..=599).contains(&s) {
            Ok(s)
        } else {
            Err(self.err(at, format!("status {s} must be a final HTTP status (200-599)")))
        }
    }

    fn ratio(&self, at: Location, what: &str, v: f64) -> Result<(), ConfigError> {
        if (0.0..=1.0).contains(&v) {
            Ok(())
        } else {
            Err(self.err(at, format!("{what} must be between 0 and 1, got {v}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("200us"), Ok(Duration::from_micros(200)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn minimal_config() {
        let c = parse_config(
            "endpoints:\n  - { method: GET, path: /a/:id, service_time: { fixed: 5ms } }\n",
            "t.yaml",
        )
        .unwrap();
        assert_eq!(c.endpoints[0].name, "GET /a/:id");
        assert_eq!(c.endpoints[0].service_time, Dist::Fixed(Duration::from_millis(5)));
        assert!(c.cache_enabled);
    }
}
