//! The plan as written: serde structs that mirror the YAML, strict about unknown keys, with
//! spans on every value a later check may need to point at. Nothing is interpreted here.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;
/// Polymorphic values (think, expect, checks, thresholds, json bodies) are read as generic JSON
/// values with the span of the whole value, then interpreted in `resolve`.
pub type Any = Spanned<serde_json::Value>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlan {
    pub name: Option<S<String>>,
    pub target: Option<S<String>>,
    #[serde(default)]
    pub vars: BTreeMap<String, Any>,
    pub http: Option<RawHttp>,
    #[serde(default)]
    pub data: BTreeMap<String, S<RawFeeder>>,
    #[serde(default)]
    pub scenarios: BTreeMap<String, S<RawScenario>>,
    #[serde(default)]
    pub phases: Vec<S<RawPhase>>,
    #[serde(default)]
    pub thresholds: Vec<Any>,
    #[serde(default)]
    pub monitors: Vec<S<RawMonitor>>,
    /// Named PostgreSQL databases that `sql:` steps use.
    #[serde(default)]
    pub databases: BTreeMap<String, S<RawDatabase>>,
    /// What the report says of the test before its numbers: objectives and environment.
    pub about: Option<S<RawAbout>>,
}

/// `about:` objectives, and the environment and software as ordered rows (`- Server: …`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAbout {
    #[serde(default)]
    pub objectives: Vec<S<String>>,
    #[serde(default)]
    pub environment: Vec<S<BTreeMap<String, Any>>>,
    #[serde(default)]
    pub software: Vec<S<BTreeMap<String, Any>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDatabase {
    pub url: S<String>,
    pub pool: Option<Any>,
}

/// One statement of a `transaction:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStatement {
    pub name: Option<S<String>>,
    pub query: S<String>,
    #[serde(default)]
    pub params: Vec<Any>,
}

impl RawPlan {
    /// Nothing set at all: an empty file, comments only, `{}` or `~`.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.target.is_none()
            && self.vars.is_empty()
            && self.http.is_none()
            && self.data.is_empty()
            && self.scenarios.is_empty()
            && self.phases.is_empty()
            && self.thresholds.is_empty()
            && self.monitors.is_empty()
    }
}

/// One server-side monitor. Exactly one of the kind keys (`prometheus`, `host`, `process`,
/// `pid_file`, `postgres`, `redis`) must be set; `resolve` says which when not.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    pub name: Option<S<String>>,
    pub interval: Option<Any>,
    pub prometheus: Option<S<String>>,
    pub include: Option<Vec<S<String>>>,
    pub labels: Option<BTreeMap<String, S<String>>>,
    pub host: Option<S<bool>>,
    pub process: Option<S<String>>,
    pub pid_file: Option<S<String>>,
    pub postgres: Option<S<String>>,
    pub redis: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub http2: Option<bool>,
    pub h2c: Option<bool>,
    pub insecure: Option<bool>,
    pub timeout: Option<Any>,
    pub connect_timeout: Option<Any>,
    pub max_body: Option<Any>,
    #[serde(default)]
    pub headers: BTreeMap<String, Any>,
    pub follow_redirects: Option<Any>,
    pub cookies: Option<S<String>>,
    pub tls: Option<S<RawTls>>,
    pub on_429: Option<S<String>>,
    pub local_addrs: Option<S<Vec<S<String>>>>,
}

/// `http.tls`: files relative to the plan, and the name to verify the server's certificate by.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub ca: Option<S<String>>,
    pub cert: Option<S<String>>,
    pub key: Option<S<String>>,
    pub server_name: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFeeder {
    pub file: S<String>,
    pub mode: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    pub think: Option<Any>,
    #[serde(default)]
    pub steps: Vec<S<RawStep>>,
    /// A/B: every phase that runs this scenario runs it in these variants, interleaved.
    pub variants: Option<S<Ordered<RawVariant>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStep {
    pub name: Option<S<String>>,
    pub request: Option<S<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Any>,
    /// HTTP: a map of query parameters; SQL: the statement's text.
    pub query: Option<Any>,
    pub json: Option<Any>,
    pub body: Option<Any>,
    pub content_type: Option<S<String>>,
    pub timeout: Option<Any>,
    pub expect: Option<Any>,
    #[serde(default)]
    pub checks: Vec<Any>,
    #[serde(default)]
    pub capture: BTreeMap<String, Any>,
    pub sign: Option<S<RawSign>>,
    pub think: Option<Any>,
    /// A WebSocket step: the URL or path of the upgrade (`ws: /ws/echo`).
    pub ws: Option<S<String>>,
    #[serde(default)]
    pub subprotocols: Vec<S<String>>,
    pub reconnect: Option<S<RawReconnect>>,
    /// A JSON path of the sequence number in pushed messages.
    pub sequence: Option<S<String>>,
    #[serde(default)]
    pub session: Vec<S<RawWsAction>>,
    /// An SQL step: the name of its database (`sql: app`).
    pub sql: Option<S<String>>,
    #[serde(default)]
    pub params: Vec<Any>,
    #[serde(default)]
    pub transaction: Vec<S<RawStatement>>,
    pub explain: Option<S<bool>>,
    pub follow_redirects: Option<Any>,
    pub compress: Option<S<String>>,
    pub auth: Option<Any>,
    pub form: Option<Any>,
    pub multipart: Option<Any>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReconnect {
    pub max: Option<Any>,
    pub backoff: Option<Any>,
}

/// One action of a WebSocket session: exactly one of `send`, `repeat`, `receive`, `ping`,
/// `close` (a `reply` goes with a `send`; `every` and `do` with a `repeat`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWsAction {
    pub send: Option<Any>,
    pub reply: Option<S<RawReply>>,
    pub repeat: Option<Any>,
    pub every: Option<Any>,
    #[serde(rename = "do")]
    pub actions: Option<Vec<S<RawWsAction>>>,
    pub receive: Option<S<RawReceive>>,
    pub ping: Option<Any>,
    pub close: Option<Any>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReply {
    #[serde(rename = "match")]
    pub matcher: Option<Any>,
    pub timeout: Option<Any>,
    pub name: Option<S<String>>,
    #[serde(default)]
    pub checks: Vec<Any>,
    #[serde(default)]
    pub capture: BTreeMap<String, Any>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceive {
    #[serde(rename = "for")]
    pub for_: Option<Any>,
    pub count: Option<Any>,
    pub timeout: Option<Any>,
}

impl RawStep {
    /// Every capture name the step sets: its own and those of its WebSocket replies.
    pub fn capture_names(&self) -> Vec<&String> {
        fn walk<'a>(actions: &'a [S<RawWsAction>], out: &mut Vec<&'a String>) {
            for a in actions {
                if let Some(r) = &a.value.reply {
                    out.extend(r.value.capture.keys());
                }
                if let Some(inner) = &a.value.actions {
                    walk(inner, out);
                }
            }
        }
        let mut out: Vec<&String> = self.capture.keys().collect();
        walk(&self.session, &mut out);
        out
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSign {
    pub secret: Any,
    pub header: Option<S<String>>,
    pub encoding: Option<S<String>>,
    pub prefix: Option<S<String>>,
    pub timestamp_header: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPhase {
    pub name: Option<S<String>>,
    pub scenario: Option<S<String>>,
    pub scenarios: Option<Vec<S<RawWeighted>>>,
    pub executor: Option<S<String>>,
    pub vus: Option<Any>,
    pub duration: Option<Any>,
    pub rate: Option<Any>,
    pub max_vus: Option<Any>,
    pub pre_vus: Option<Any>,
    pub start_vus: Option<Any>,
    pub start_rate: Option<Any>,
    pub stages: Option<Vec<S<RawStage>>>,
    pub iterations: Option<Any>,
    pub max_duration: Option<Any>,
    pub grace: Option<Any>,
    /// A/B: the phase runs once per variant, back to back, in the order written.
    pub variants: Option<S<Ordered<RawVariant>>>,
    /// With `variants:`: one phase whose iterations alternate between the variants instead.
    pub interleave: Option<S<bool>>,
}

/// What a variant changes in its phase's requests.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVariant {
    /// Added to every HTTP request (replacing a header of the same name).
    #[serde(default)]
    pub headers: BTreeMap<String, Any>,
    /// Query parameters appended to every HTTP request's path.
    #[serde(default)]
    pub query: BTreeMap<String, Any>,
    /// An origin that replaces the plan's `target:` for the requests that go to it.
    #[serde(default)]
    pub target: Option<S<String>>,
    /// Plan variables set to other values: the variant's scenarios are resolved again with them.
    #[serde(default)]
    pub vars: BTreeMap<String, Any>,
}

/// A mapping in the order the plan writes it (variants: the first is the baseline), each key
/// with its place in the file.
#[derive(Debug)]
pub struct Ordered<V>(pub Vec<(S<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Ordered<V> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visit<V> {
            type Value = Ordered<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a mapping of names to variants")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut m: A) -> Result<Ordered<V>, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<S<String>, V>()? {
                    out.push((k, v));
                }
                Ok(Ordered(out))
            }
        }
        d.deserialize_map(Visit(std::marker::PhantomData))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWeighted {
    pub name: S<String>,
    pub weight: Option<Any>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStage {
    pub target: Any,
    pub duration: Any,
}
