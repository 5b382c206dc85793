//! The resolved, validated plan: what the engine runs.
//!
//! Everything here is already checked and compiled: durations are `Duration`s, methods are
//! `http::Method`s, templates are pre-parsed into literal byte runs and expressions, variables
//! are resolved to slot indices. The engine does no string parsing per request, and nothing in
//! this module is mutated after `load` returns it.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, Method};

use crate::template::Template;

/// A whole plan, resolved against the environment and `--var`s.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    /// Base URL the relative step paths are joined to (`target:`), if any.
    pub target: Option<Origin>,
    /// Path prefix of `target` (e.g. `/v1` for `https://api.example.com/v1`), without trailing `/`.
    pub target_path: String,
    pub http: HttpOptions,
    pub scenarios: Vec<Scenario>,
    pub phases: Vec<Phase>,
    pub thresholds: Vec<Threshold>,
    /// Server-side monitors sampled during the run (`monitors:`), in plan order.
    pub monitors: Vec<Monitor>,
    /// PostgreSQL databases `sql:` steps use (`databases:`), by name order.
    pub databases: Vec<Database>,
    /// Runtime variable slots (captures and data-feeder columns). Plan `vars` are constants and
    /// are inlined into templates at load time, so they have no slot.
    pub slots: Vec<SlotDef>,
    pub feeders: Vec<Feeder>,
    /// The plan as resolved, as JSON, with every value that came from a secret-looking
    /// environment variable (or `--var`) replaced by `"***"`. Written to the run directory.
    pub redacted: serde_json::Value,
    /// The values `redacted` replaced (secret-named variables and keys), longest first, so
    /// that whatever shows requests (`--http-debug`) masks them too.
    pub secrets: Vec<String>,
    /// The original file name, for messages.
    pub source_name: String,
    /// `about:`: what the report says before its numbers (empty when the plan has none).
    pub about: About,
}

/// The test's objectives and environment, as the seed reports open with them: shown by the
/// report as a list and two tables, kept in plan order.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct About {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub objectives: Vec<String>,
    /// (component, what it is): "Server" → "VPS 2000, 10 cores, 16 GB".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub environment: Vec<(String, String)>,
    /// (component, version): "PHP" → "8.2".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<(String, String)>,
}

impl About {
    pub fn is_empty(&self) -> bool {
        self.objectives.is_empty() && self.environment.is_empty() && self.software.is_empty()
    }
}

/// scheme://host:port of an HTTP endpoint, prepared once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Value of the `Host` header / `:authority`: host and `:port` as the URL writes them.
    pub authority: String,
}

#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Offer h2 by ALPN on TLS connections (default true).
    pub http2: bool,
    /// Speak HTTP/2 with prior knowledge over plain TCP (h2c). Default false.
    pub h2c: bool,
    /// Skip TLS certificate verification (default false: real verification).
    pub insecure: bool,
    /// Default per-request timeout (default 30s).
    pub timeout: Duration,
    /// TCP (+TLS) connect timeout (default 10s).
    pub connect_timeout: Duration,
    /// Headers sent with every request (step headers override by name).
    pub headers: Vec<(HeaderName, Template)>,
    /// Bytes of a response body kept for checks and captures; the rest is counted and discarded
    /// (default 1 MiB). Also bounds a compressed body's decoded form.
    pub max_body: usize,
    /// Redirects followed per step (default 10; 0: none, a 3xx is the response).
    pub follow_redirects: u32,
    /// Each VU's cookie jar (default: cleared at each iteration).
    pub cookies: CookieMode,
    /// `http.tls`: a CA to trust besides the public roots, a client certificate (mTLS), a
    /// server name to send and verify instead of the URL's host.
    pub tls: TlsFiles,
    /// What a VU does after a 429 (default: count it and go on).
    pub on_429: On429,
    /// `http.local_addrs`: source addresses connections are spread over (empty: the OS picks).
    /// Each is an address of this host, checked at load.
    pub local_addrs: Vec<std::net::IpAddr>,
}

/// `http.tls` as read at load: the PEM files' contents (checked to hold what they should), so
/// a run never reads a file after its start.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    /// Certificates of extra trusted CAs (DER).
    pub ca: Vec<Vec<u8>>,
    /// The client's certificate chain (DER) and its private key (PEM, parsed by the engine).
    pub client: Option<(Vec<Vec<u8>>, Vec<u8>)>,
    /// SNI and the name the certificate must carry, instead of the URL's host.
    pub server_name: Option<String>,
}

/// What a VU does after a `429 Too Many Requests` (`http.on_429`). Either way the 429 is
/// counted (`status_429`, the hosts table's `rate_limited`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum On429 {
    /// Go on at once, as a client without back-off would.
    #[default]
    Count,
    /// Honour `Retry-After` (seconds, at most 60; 1 s without one) before the VU's next step,
    /// as a well-behaved client of a third-party API does. The wait is not latency.
    Wait,
}

/// What a VU's cookie jar does (`http.cookies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CookieMode {
    /// Kept within an iteration, emptied when the next one starts (every iteration is a new
    /// visitor, as k6 does).
    Clear,
    /// Kept across the VU's iterations (one returning visitor per VU).
    Keep,
    /// No jar: `Set-Cookie` is ignored and no `Cookie` header is added.
    Off,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub steps: Vec<Step>,
    /// Pause after each iteration of this scenario.
    pub think: Option<Think>,
}

#[derive(Debug, Clone)]
pub struct Step {
    /// Unique within its scenario; reports key steps by `scenario/name` when names collide
    /// across scenarios, by `name` otherwise.
    pub name: String,
    pub kind: StepKind,
    /// Pause after this step.
    pub think: Option<Think>,
}

/// Built once per plan and never moved on the hot path, so the size difference between the
/// variants costs nothing worth a `Box`.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum StepKind {
    Http(HttpStep),
    /// A WebSocket connection and the session of actions run on it (`ws:`).
    Ws(WsStep),
    /// SQL statements on a PostgreSQL database (`sql:`).
    Sql(SqlStep),
    /// A pause as a step of its own (`- think: 1s`). Records nothing.
    Pause(Think),
}

#[derive(Debug, Clone)]
pub struct HttpStep {
    pub method: Method,
    pub origin: Origin,
    /// Path and query, starting with `/`, query parameters already appended (URL-escaped).
    pub path_and_query: Template,
    pub headers: Vec<(HeaderName, Template)>,
    pub body: Option<Body>,
    /// Overrides `HttpOptions::timeout`.
    pub timeout: Option<Duration>,
    /// Statuses that count as success; default `200..=399`.
    pub expect_status: Vec<StatusRange>,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
    pub sign: Option<Sign>,
    /// Overrides `HttpOptions::follow_redirects`.
    pub follow_redirects: Option<u32>,
    /// Compress the request body (`compress: gzip`).
    pub compress: Option<Compression>,
    /// `auth:`; sent as the `Authorization` header.
    pub auth: Option<Auth>,
}

/// How a request body is compressed before it is sent (`Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
}

/// `auth:` of a step, templated. A literal one is turned into its header once, at start-up.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `Authorization: Basic base64(user:password)` (RFC 7617).
    Basic { user: Template, password: Template },
    /// `Authorization: Bearer TOKEN` (RFC 6750).
    Bearer(Template),
}

/// A named PostgreSQL database.
#[derive(Debug, Clone)]
pub struct Database {
    pub name: String,
    pub url: Secret,
    /// `None`: one connection per VU; `Some(n)`: `n` connections shared by the VUs (split over
    /// the load threads).
    pub pool: Option<u32>,
}

/// An `sql:` step: one statement (`query:`) or several run between BEGIN and COMMIT
/// (`transaction:`), on a connection of its database.
#[derive(Debug, Clone)]
pub struct SqlStep {
    /// Index into `Plan::databases`.
    pub database: usize,
    pub statements: Vec<SqlStatement>,
    pub transaction: bool,
    /// On the last statement's result.
    pub checks: Vec<SqlCheck>,
    /// Slot and column: the first row's value.
    pub captures: Vec<(usize, String)>,
    pub explain: bool,
    /// The statement timeout (the step's `timeout`, else the plan's).
    pub timeout: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct SqlStatement {
    /// `<step>` for a single query, the statement's `name:` (or `#n`) in a transaction.
    pub name: String,
    /// Sent as written: parameters are `$1 …`, bound, never spliced into the text.
    pub query: String,
    pub params: Vec<Template>,
    /// Where the statement is written, for PostgreSQL's refusals at the start.
    pub at: String,
}

#[derive(Debug, Clone)]
pub struct SqlCheck {
    /// Shown in reports and error kinds (`check:<name>`).
    pub name: String,
    pub kind: SqlCheckKind,
}

#[derive(Debug, Clone)]
pub enum SqlCheckKind {
    /// The rows returned (or affected) compare so to `n` (`op: None`: equal to it).
    Rows { op: Option<CmpOp>, n: u64 },
    /// The first row's column, as text, equals this.
    Column { column: String, equals: String },
}

/// A `ws:` step: one connection, opened at the step's start, closed at its end, and the
/// actions run on it in order.
#[derive(Debug, Clone)]
pub struct WsStep {
    /// The origin of the upgrade request (`tls` means `wss://`).
    pub origin: Origin,
    /// Path and query of the upgrade request, starting with `/`.
    pub path_and_query: Template,
    pub headers: Vec<(HeaderName, Template)>,
    /// Offered in `Sec-WebSocket-Protocol`, in order.
    pub subprotocols: Vec<String>,
    /// After an unexpected close: reconnect up to `max` times (per step execution).
    pub reconnect: Option<Reconnect>,
    /// The handshake's timeout and the default reply timeout (the step's `timeout`, else the
    /// plan's).
    pub timeout: Option<Duration>,
    /// A JSON path of a sequence number in pushed messages (`sequence:`): gaps and duplicates
    /// are counted.
    pub sequence: Option<JsonPath>,
    pub session: Vec<WsAction>,
    /// Names of the named replies, in order of first appearance: each is recorded as a step of
    /// its own (`<step>:<name>`); [`Reply::named`] indexes this list.
    pub reply_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reconnect {
    pub max: u32,
    pub backoff: Duration,
}

#[derive(Debug, Clone)]
pub enum WsAction {
    /// Send a message; with a reply, wait for it (outside `repeat`), or let it be awaited
    /// while the schedule goes on (inside).
    Send {
        message: Template,
        reply: Option<Reply>,
    },
    /// `count` rounds, one every `every` from the first: the schedule is kept whatever the
    /// server does, and a reply's latency counts from its round's scheduled time.
    Repeat {
        count: u32,
        every: Duration,
        actions: Vec<WsAction>,
    },
    /// Read what the server pushes: for a time, or until `count` messages came (within
    /// `timeout`).
    Receive(Receive),
    Ping,
    /// Close the connection (code 1000) and wait for the server's close.
    Close,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Receive {
    For(Duration),
    Count { count: u64, timeout: Option<Duration> },
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub matcher: ReplyMatch,
    /// `None` for the default reply timeout of the step.
    pub timeout: Option<Duration>,
    /// Index into [`WsStep::reply_names`] when the reply is named.
    pub named: Option<usize>,
    /// The number of checks of the step's earlier replies: check `n` of this reply is the
    /// step's check `check_base + n` (one list of check names per step).
    pub check_base: u16,
    pub checks: Vec<Check>,
    pub captures: Vec<Capture>,
}

#[derive(Debug, Clone)]
pub enum ReplyMatch {
    /// The next message that arrives.
    Next,
    /// The message whose value at this path equals the sent message's value at the same path
    /// (`match: "$.id"`).
    SameAt(JsonPath),
    /// The first message that passes this check (`match: { json: { path: "$.type", equals: ack } }`).
    Check(Box<Check>),
}

#[derive(Debug, Clone)]
pub struct Body {
    pub template: Template,
    /// `application/json` for `json:`, `application/x-www-form-urlencoded` for `form:`,
    /// `multipart/form-data; boundary=…` for `multipart:`, the `content_type:` key or none for
    /// `body:`.
    pub content_type: Option<Bytes>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    pub lo: u16,
    pub hi: u16,
}

impl StatusRange {
    pub fn contains(&self, s: u16) -> bool {
        self.lo <= s && s <= self.hi
    }
}

#[derive(Debug, Clone)]
pub struct Check {
    /// Shown in reports and error kinds (`check:<name>`); defaults to the check's expression.
    pub name: String,
    pub kind: CheckKind,
}

#[derive(Debug, Clone)]
pub enum CheckKind {
    Status(Vec<StatusRange>),
    HeaderExists(HeaderName),
    HeaderEquals(HeaderName, String),
    HeaderContains(HeaderName, String),
    BodyContains(Bytes),
    BodyNotContains(Bytes),
    /// The value at the path equals this JSON value.
    JsonEquals(JsonPath, serde_json::Value),
    /// The path selects something (not null).
    JsonExists(JsonPath),
}

/// A JSON pointer (`/a/0/b`) or a simple JSONPath (`$.a[0].b`, `$['a']`), compiled to segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath {
    pub source: String,
    pub segments: Vec<JsonSeg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonSeg {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
pub struct Capture {
    /// Slot in `Plan::slots` the captured bytes go into.
    pub slot: usize,
    pub source: CaptureSource,
}

#[derive(Debug, Clone)]
pub enum CaptureSource {
    /// A string is captured without quotes; other JSON values as their JSON text.
    Json(JsonPath),
    Header(HeaderName),
}

/// HMAC-SHA256 request signing.
#[derive(Debug, Clone)]
pub struct Sign {
    pub secret: Bytes,
    pub header: HeaderName,
    pub encoding: SignEncoding,
    /// Prepended to the encoded signature in the header value (e.g. `sha256=`).
    pub prefix: String,
    /// When set, the current Unix time (seconds) is sent in this header and the signed payload
    /// is `"{timestamp}.{body}"`; otherwise the payload is the body alone.
    pub timestamp_header: Option<HeaderName>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignEncoding {
    Hex,
    Base64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Think {
    Fixed(Duration),
    Uniform(Duration, Duration),
    /// Exponentially distributed with this mean (a Poisson user).
    Exponential(Duration),
}

#[derive(Debug, Clone)]
pub struct SlotDef {
    pub name: String,
    pub kind: SlotKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    Capture,
    /// Column `column` of feeder `feeder`.
    Data {
        feeder: usize,
        column: usize,
    },
}

#[derive(Debug, Clone)]
pub struct Feeder {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Bytes>>,
    pub mode: FeedMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedMode {
    /// Next row (shared counter across all VUs) at every iteration, wrapping around.
    Sequential,
    /// Row `vu_id % rows` for every iteration of a VU.
    PerVu,
    /// A uniformly random row at every iteration.
    Random,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    /// Scenarios and their weights; each iteration picks one by weight.
    pub mix: Vec<Weighted>,
    pub load: Load,
    /// How long iterations in flight may run on after the phase's time is up (or a VU is ramped
    /// down) before they are cancelled. Default 30s.
    pub grace: Duration,
    /// One variant of an A/B phase (`variants:`): which plan phase and which variant.
    pub variant: Option<Variant>,
}

/// A phase run once per variant, back to back: `<phase>[<variant>]`, the first the baseline.
/// (Interleaved variants run in one phase: see [`Weighted::variants`].)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// The phase's name in the plan.
    pub of: String,
    pub name: String,
    /// 0 for the baseline (the first written).
    pub index: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weighted {
    /// The scenario an iteration that picks this entry runs (with `variants`, the baseline's).
    pub scenario: usize,
    pub weight: u32,
    /// Interleaved A/B variants (`interleave: true` on the phase, or `variants:` on the
    /// scenario): an iteration that picks this entry runs one of them, taken in turn.
    pub variants: Option<Interleaved>,
}

impl Weighted {
    pub fn new(scenario: usize, weight: u32) -> Weighted {
        Weighted {
            scenario,
            weight,
            variants: None,
        }
    }

    /// Every scenario this entry may run: its variants' or its one.
    pub fn scenarios(&self) -> &[usize] {
        match &self.variants {
            Some(v) => &v.scenarios,
            None => std::slice::from_ref(&self.scenario),
        }
    }
}

/// Variants that alternate within one phase: a VU (closed models) or a worker's arrivals
/// (open models) run them in turn, iteration by iteration, so every second holds each
/// variant's traffic in equal shares and whatever drifts over the phase drifts for all alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interleaved {
    /// The plan's scenario they are variants of.
    pub of: String,
    /// The variants' names in the plan's order, the baseline first.
    pub names: Vec<String>,
    /// The scenario each variant runs (`<scenario>[<variant>]`), in the same order.
    pub scenarios: Vec<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// Closed model: `vus` loop for `duration`.
    Closed { vus: u32, duration: Duration },
    /// Closed model, VU count moves linearly between stage targets.
    RampingVus { start_vus: u32, stages: Vec<Stage> },
    /// Open model: `rate` arrivals per second, each run by a free VU (up to `max_vus`).
    Open {
        rate: f64,
        duration: Duration,
        max_vus: u32,
        pre_vus: u32,
    },
    /// Open model, rate moves linearly between stage targets (arrivals/s).
    RampingRate {
        start_rate: f64,
        stages: Vec<Stage>,
        max_vus: u32,
        pre_vus: u32,
    },
    /// `vus` share `iterations` iterations in total, bounded by `max_duration`.
    Iterations {
        vus: u32,
        iterations: u64,
        max_duration: Duration,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stage {
    pub target: f64,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The expression as written (`p95 < 500ms`), for reports.
    pub expr: String,
    pub metric: Metric,
    pub op: CmpOp,
    /// Latency metrics in milliseconds, `error_rate` as a fraction (5% → 0.05), `rps` per second.
    pub value: f64,
    pub scope: Scope,
    /// Stop the run as soon as this threshold fails (checked every second, after `delay`).
    pub abort_on_fail: bool,
    /// Minimum run time before `abort_on_fail` may trigger (default 10s).
    pub delay: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    Avg,
    Min,
    Max,
    /// 0 < q < 100: p50, p90, p95, p99, p(99.9)…
    Percentile(f64),
    ErrorRate,
    Rps,
    /// WebSocket: replies lost (no reply within the timeout) over replies awaited.
    WsLostRate,
    /// WebSocket: connection attempts that failed over all attempts.
    ConnectFailed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn holds(self, measured: f64, limit: f64) -> bool {
        match self {
            CmpOp::Lt => measured < limit,
            CmpOp::Le => measured <= limit,
            CmpOp::Gt => measured > limit,
            CmpOp::Ge => measured >= limit,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Only this phase (by name); all phases when `None`.
    pub phase: Option<String>,
    /// Only this step (by name); all steps when `None`.
    pub step: Option<String>,
}

/// A server-side monitor: what to sample and how often.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Unique within the plan; the `monitor` field of `monitors.jsonl` records.
    pub name: String,
    /// Time between two samples (default 1s).
    pub interval: Duration,
    pub kind: MonitorKind,
}

#[derive(Debug, Clone)]
pub enum MonitorKind {
    /// Scrape a Prometheus text-format endpoint.
    Prometheus {
        origin: Origin,
        /// Path and query, starting with `/`.
        path: String,
        /// Families to keep (all when empty).
        include: Vec<SeriesFilter>,
        /// Only samples carrying all of these labels with these values.
        labels: Vec<(String, String)>,
    },
    /// This machine: CPU, load average, memory, network (from /proc).
    Host,
    /// Processes by executable name (`comm`) or by the pid in a file.
    Process(ProcessSelector),
    /// A PostgreSQL server (`postgres://user:password@host:port/db`).
    Postgres { url: Secret },
    /// A Redis server (`redis://[:password@]host:port[/db]`).
    Redis { url: Secret },
}

#[derive(Debug, Clone)]
pub enum SeriesFilter {
    Name(String),
    /// `/regex/` in the plan, matched against the family name.
    Regex(regex_lite::Regex),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessSelector {
    Name(String),
    PidFile(std::path::PathBuf),
}

/// A connection URL that may carry a password. `Debug` and `shown` never print the password,
/// so a URL can go into messages and records without leaking it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    url: String,
}

impl Secret {
    pub fn new(url: String) -> Secret {
        Secret { url }
    }

    /// The URL with its password, for connecting only.
    pub fn expose(&self) -> &str {
        &self.url
    }

    /// The URL with the password replaced by `***`.
    pub fn shown(&self) -> String {
        crate::redact::redact_url(&self.url)
    }

    /// The password, if the URL has one (to scrub it from driver error messages).
    pub fn password(&self) -> Option<String> {
        crate::redact::url_password(&self.url)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({})", self.shown())
    }
}

impl SeriesFilter {
    pub fn matches(&self, family: &str) -> bool {
        match self {
            SeriesFilter::Name(n) => n == family,
            SeriesFilter::Regex(r) => r.is_match(family),
        }
    }
}

impl WsStep {
    /// Every reply's check names, in the order `Reply::check_base` counts them.
    pub fn check_names(&self) -> Vec<String> {
        fn walk(actions: &[WsAction], out: &mut Vec<String>) {
            for a in actions {
                match a {
                    WsAction::Send { reply: Some(r), .. } => out.extend(r.checks.iter().map(|c| c.name.clone())),
                    WsAction::Repeat { actions, .. } => walk(actions, out),
                    _ => {}
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.session, &mut out);
        out
    }
}
