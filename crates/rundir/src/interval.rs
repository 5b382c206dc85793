//! One second of a phase, merged across workers: the unit of the run log.
//!
//! On disk an interval is one JSON line; histograms travel as base64 HdrHistogram V2+DEFLATE so
//! they can be merged again later (`stampede summary`, `stampede merge`) without loss.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hist::{decode_buckets, encode_hist, record_buckets, Buckets, Hist};

#[derive(Debug, Clone)]
pub struct Interval {
    pub phase: String,
    /// Index of this interval within its phase, from 0.
    pub seq: u64,
    /// Seconds since the run started, at the interval's start.
    pub t: f64,
    /// Seconds this interval covers (1 but for a phase's last, partial one).
    pub dur: f64,
    pub vus: u64,
    pub waiting: u64,
    pub iterations: u64,
    pub dropped: u64,
    /// Waits after failed connects (VUs backing off from a target that refuses them) and
    /// their total planned length in milliseconds: the generator holding back, not latency.
    pub backoffs: u64,
    pub backoff_ms: u64,
    /// WebSocket connections open at the interval's end (a gauge; 0 without WebSocket steps).
    pub ws_open: u64,
    /// How late the load threads' timers fired this second (µs), merged over threads: the
    /// generator's own queueing (empty in run directories written before it).
    pub late: Hist,
    pub steps: Vec<StepInterval>,
}

#[derive(Debug, Clone)]
pub struct StepInterval {
    pub name: String,
    pub requests: u64,
    pub errors: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Body bytes after content decoding (gzip, deflate, br, zstd); `bytes_in` stays as received.
    pub bytes_decoded: u64,
    /// Redirects followed.
    pub redirects: u64,
    pub statuses: BTreeMap<u16, u64>,
    pub kinds: BTreeMap<String, u64>,
    /// A protocol's counters by name (`ws_sent`, `ws_dropped`, `ws_close_1001` …), summed when
    /// merged; empty for HTTP steps.
    pub counters: BTreeMap<String, u64>,
    /// Latency and service-time histograms. For an interval read from disk these are left
    /// empty and the data is in `buckets`: merge it with [`StepInterval::add`],
    /// [`StepInterval::add_latency_to`] or [`StepInterval::to_aggregate`], never by reading
    /// these fields (which is what keeps reading a 4-hour run fast).
    pub latency: Hist,
    pub service: Hist,
    /// The latencies' exact sum in µs (the histogram's buckets are 0.1% wide); `None` when
    /// unknown (run directories written before it, or a merge with one of them).
    pub latency_sum_us: Option<u64>,
    /// For an interval read from disk: the non-zero buckets of latency and service time, so
    /// merging it costs one record per bucket, not a walk of every bucket of the range.
    /// `None` for anything built in memory (engine intervals, aggregates).
    pub buckets: Option<Box<(Buckets, Buckets)>>,
    /// A few error messages as the target gave them (raw: escape before display), at least one
    /// of every error kind counted (see [`admits`]).
    pub samples: Vec<ErrorSample>,
}

/// Error messages an interval keeps per step (beyond them, one per kind not yet sampled): the
/// recorder's shards and collector, and `stampede merge` joining the shares of one second.
pub const SAMPLES_PER_INTERVAL: usize = 3;

/// Error messages an aggregate keeps per step (beyond them, one per kind not yet sampled).
pub const SAMPLES_KEPT: usize = 5;

/// One error message and the kind it was counted as (its `errors_by_kind` key).
///
/// On disk an object `{"kind", "message"}`; a plain string (run directories written before
/// samples carried their kind) reads as a sample of unknown kind (`""`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "SampleRecord")]
pub struct ErrorSample {
    pub kind: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SampleRecord {
    Tagged { kind: String, message: String },
    Plain(String),
}

impl From<SampleRecord> for ErrorSample {
    fn from(r: SampleRecord) -> ErrorSample {
        match r {
            SampleRecord::Tagged { kind, message } => ErrorSample { kind, message },
            SampleRecord::Plain(message) => ErrorSample {
                kind: String::new(),
                message,
            },
        }
    }
}

/// Whether a sample of `kind` saying `message` joins the `held` (kind, message) pairs: never a
/// message already held; otherwise while fewer than `cap` are held, and beyond `cap` when it is
/// the first of its kind, so a rare kind drowned by a frequent one still has a message. The
/// one rule for the recorder's shards, the collector and every aggregate; the list stays
/// bounded by `cap` plus the number of distinct kinds.
pub fn admits<'a, K: PartialEq + 'a>(
    held: impl IntoIterator<Item = (&'a K, &'a str)>,
    kind: &K,
    message: &str,
    cap: usize,
) -> bool {
    let (mut n, mut kind_held) = (0, false);
    for (k, m) in held {
        if m == message {
            return false;
        }
        n += 1;
        kind_held |= k == kind;
    }
    n < cap || !kind_held
}

/// Adds `s` to `list` when [`admits`] lets it in.
pub fn keep_sample(list: &mut Vec<ErrorSample>, s: &ErrorSample, cap: usize) {
    if admits(
        list.iter().map(|x| (&x.kind, x.message.as_str())),
        &s.kind,
        &s.message,
        cap,
    ) {
        list.push(s.clone());
    }
}

impl StepInterval {
    pub fn empty(name: &str) -> StepInterval {
        StepInterval {
            name: name.to_string(),
            requests: 0,
            errors: 0,
            bytes_in: 0,
            bytes_out: 0,
            bytes_decoded: 0,
            redirects: 0,
            statuses: BTreeMap::new(),
            kinds: BTreeMap::new(),
            counters: BTreeMap::new(),
            latency: super::hist::new_growable(),
            service: super::hist::new_growable(),
            latency_sum_us: Some(0),
            buckets: None,
            samples: Vec::new(),
        }
    }

    /// Adds this step's latency to `h` (by buckets when read from disk).
    pub fn add_latency_to(&self, h: &mut Hist) {
        match &self.buckets {
            Some(b) => record_buckets(h, &b.0),
            None => {
                let _ = h.add(&self.latency);
            }
        }
    }

    /// Calls `f(value, count)` for each non-zero latency bucket (the stored ones when read from
    /// disk), without collecting them: what a consumer folding every second needs.
    pub fn each_latency_bucket(&self, mut f: impl FnMut(u64, u64)) {
        match &self.buckets {
            Some(b) => b.0.iter().for_each(|&(v, n)| f(v, n)),
            None => self.latency.iter_recorded().for_each(|v| {
                f(
                    self.latency.lowest_equivalent(v.value_iterated_to()),
                    v.count_at_value(),
                )
            }),
        }
    }

    /// The non-zero latency buckets when read from disk (then `latency` is empty); `None` for
    /// a live interval, whose data is in `latency`.
    pub fn stored_latency_buckets(&self) -> Option<&[(u64, u64)]> {
        self.buckets.as_ref().map(|b| b.0.as_slice())
    }

    /// This step's latency as its non-zero buckets (the stored ones when read from disk): a
    /// compact copy to keep per second.
    pub fn latency_buckets(&self) -> Buckets {
        match &self.buckets {
            Some(b) => b.0.clone(),
            None => self
                .latency
                .iter_recorded()
                .map(|v| {
                    (
                        self.latency.lowest_equivalent(v.value_iterated_to()),
                        v.count_at_value(),
                    )
                })
                .collect(),
        }
    }

    /// A copy to accumulate into, with real histograms (built from the buckets of an interval
    /// read from disk) and no bucket cache (which describes only this interval).
    pub fn to_aggregate(&self) -> StepInterval {
        let mut c = self.clone();
        c.samples = Vec::new();
        for x in &self.samples {
            keep_sample(&mut c.samples, x, SAMPLES_KEPT);
        }
        if let Some(b) = c.buckets.take() {
            c.latency = super::hist::new_growable();
            c.service = super::hist::new_growable();
            record_buckets(&mut c.latency, &b.0);
            record_buckets(&mut c.service, &b.1);
        }
        c
    }

    /// Adds another's counts and histograms to this one (intervals, phases, steps alike).
    pub fn add(&mut self, o: &StepInterval) {
        self.requests += o.requests;
        self.errors += o.errors;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.bytes_decoded += o.bytes_decoded;
        self.redirects += o.redirects;
        self.latency_sum_us = self.latency_sum_us.zip(o.latency_sum_us).map(|(a, b)| a + b);
        for (k, v) in &o.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &o.kinds {
            *self.kinds.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        for x in &o.samples {
            keep_sample(&mut self.samples, x, SAMPLES_KEPT);
        }
        match &o.buckets {
            Some(b) => {
                record_buckets(&mut self.latency, &b.0);
                record_buckets(&mut self.service, &b.1);
            }
            None => {
                // Aggregates are growable, so adding widens them instead of failing.
                let _ = self.latency.add(&o.latency);
                let _ = self.service.add(&o.service);
            }
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The JSON line form of an [`Interval`].
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    phase: String,
    seq: u64,
    t: f64,
    dur: f64,
    #[serde(default)]
    vus: u64,
    #[serde(default)]
    waiting: u64,
    #[serde(default)]
    iterations: u64,
    #[serde(default)]
    dropped: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    backoffs: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    backoff_ms: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    ws_open: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    late: Option<String>,
    #[serde(default)]
    steps: Vec<StepRecord>,
}

#[derive(Debug, Serialize, Deserialize)]
struct StepRecord {
    step: String,
    requests: u64,
    errors: u64,
    #[serde(default)]
    bytes_in: u64,
    #[serde(default)]
    bytes_out: u64,
    /// Older run directories have none: read as `bytes_in` (nothing was decoded then).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes_decoded: Option<u64>,
    #[serde(default, skip_serializing_if = "is_zero")]
    redirects: u64,
    /// Older run directories have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    latency_sum_us: Option<u64>,
    #[serde(default)]
    status: BTreeMap<u16, u64>,
    #[serde(default)]
    errors_by_kind: BTreeMap<String, u64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    counters: BTreeMap<String, u64>,
    latency: String,
    service: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    samples: Vec<ErrorSample>,
}

impl Interval {
    /// The interval as one line of `intervals.jsonl`.
    pub fn to_json_line(&self) -> Result<String, serde_json::Error> {
        let rec = Record {
            phase: self.phase.clone(),
            seq: self.seq,
            t: (self.t * 1000.0).round() / 1000.0,
            dur: (self.dur * 1000.0).round() / 1000.0,
            vus: self.vus,
            waiting: self.waiting,
            iterations: self.iterations,
            dropped: self.dropped,
            backoffs: self.backoffs,
            backoff_ms: self.backoff_ms,
            ws_open: self.ws_open,
            late: (!self.late.is_empty()).then(|| encode_hist(&self.late)),
            steps: self
                .steps
                .iter()
                .map(|s| StepRecord {
                    step: s.name.clone(),
                    requests: s.requests,
                    errors: s.errors,
                    bytes_in: s.bytes_in,
                    bytes_out: s.bytes_out,
                    bytes_decoded: Some(s.bytes_decoded),
                    redirects: s.redirects,
                    latency_sum_us: s.latency_sum_us,
                    status: s.statuses.clone(),
                    errors_by_kind: s.kinds.clone(),
                    counters: s.counters.clone(),
                    latency: encode_hist(&s.latency),
                    service: encode_hist(&s.service),
                    samples: s.samples.clone(),
                })
                .collect(),
        };
        serde_json::to_string(&rec)
    }

    pub fn from_json_line(line: &str) -> Result<Interval, String> {
        let rec: Record = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let mut steps = Vec::with_capacity(rec.steps.len());
        for s in rec.steps {
            steps.push(StepInterval {
                latency: super::hist::placeholder(),
                service: super::hist::placeholder(),
                buckets: Some(Box::new((decode_buckets(&s.latency)?, decode_buckets(&s.service)?))),
                samples: s.samples,
                name: s.step,
                requests: s.requests,
                errors: s.errors,
                bytes_in: s.bytes_in,
                bytes_out: s.bytes_out,
                bytes_decoded: s.bytes_decoded.unwrap_or(s.bytes_in),
                redirects: s.redirects,
                latency_sum_us: s.latency_sum_us,
                statuses: s.status,
                kinds: s.errors_by_kind,
                counters: s.counters,
            });
        }
        let late = match &rec.late {
            Some(l) => {
                let mut late = super::hist::new_growable();
                record_buckets(&mut late, &decode_buckets(l)?);
                late
            }
            None => super::hist::placeholder(),
        };
        Ok(Interval {
            late,
            phase: rec.phase,
            seq: rec.seq,
            t: rec.t,
            dur: rec.dur,
            vus: rec.vus,
            waiting: rec.waiting,
            iterations: rec.iterations,
            dropped: rec.dropped,
            backoffs: rec.backoffs,
            backoff_ms: rec.backoff_ms,
            ws_open: rec.ws_open,
            steps,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::new_hist;

    #[test]
    fn json_line_roundtrip() {
        let mut h = new_hist();
        h.saturating_record(1234);
        let iv = Interval {
            phase: "p".into(),
            seq: 3,
            t: 3.5,
            dur: 1.0,
            vus: 4,
            waiting: 0,
            iterations: 7,
            dropped: 1,
            backoffs: 2,
            backoff_ms: 30,
            ws_open: 0,
            late: new_hist(),
            steps: vec![StepInterval {
                name: "s".into(),
                requests: 1,
                errors: 0,
                bytes_in: 5,
                bytes_out: 6,
                bytes_decoded: 5,
                redirects: 0,
                statuses: [(200, 1)].into_iter().collect(),
                kinds: BTreeMap::new(),
                counters: [("ws_sent".to_string(), 3)].into_iter().collect(),
                latency: h.clone(),
                service: h,
                latency_sum_us: Some(1234),
                buckets: None,
                samples: vec![ErrorSample {
                    kind: "status_503".into(),
                    message: "HTTP 503: busy".into(),
                }],
            }],
        };
        let line = iv.to_json_line().unwrap();
        assert!(!line.contains('\n'));
        let back = Interval::from_json_line(&line).unwrap();
        assert!(
            back.steps[0].latency.is_empty(),
            "read intervals keep their data in buckets"
        );
        let agg = back.steps[0].to_aggregate();
        assert_eq!(agg.latency.len(), 1);
        assert_eq!(agg.service.len(), 1);
        let mut sum = crate::hist::new_growable();
        back.steps[0].add_latency_to(&mut sum);
        assert_eq!(sum.value_at_quantile(1.0), agg.latency.value_at_quantile(1.0));
        assert_eq!(back.steps[0].statuses[&200], 1);
        assert_eq!(back.iterations, 7);
        assert_eq!((back.backoffs, back.backoff_ms), (2, 30));
        assert_eq!(back.steps[0].counters["ws_sent"], 3);
        assert_eq!(back.steps[0].latency_sum_us, Some(1234));
        let older = line.replace(r#""latency_sum_us":1234,"#, "");
        assert_ne!(older, line);
        assert_eq!(
            Interval::from_json_line(&older).unwrap().steps[0].latency_sum_us,
            None,
            "unknown, not 0"
        );
        assert_eq!(back.steps[0].samples, iv.steps[0].samples, "samples keep their kind");
        let tagged = r#""samples":[{"kind":"status_503","message":"HTTP 503: busy"}]"#;
        assert!(line.contains(tagged), "{line}");
        let old = line.replace(tagged, r#""samples":["HTTP 503: busy"]"#);
        let back = Interval::from_json_line(&old).expect("a sample written as a plain string reads");
        assert_eq!(back.steps[0].samples[0].message, "HTTP 503: busy");
        assert_eq!(back.steps[0].samples[0].kind, "", "of unknown kind");
        assert!(Interval::from_json_line("{\"phase\":").is_err());
    }

    #[test]
    fn every_kind_keeps_a_sample_beyond_the_cap() {
        let s = |k: &str, m: &str| ErrorSample {
            kind: k.into(),
            message: m.into(),
        };
        let mut list = Vec::new();
        for i in 0..20 {
            keep_sample(&mut list, &s("status_503", &format!("HTTP 503: busy {i}")), 3);
        }
        keep_sample(&mut list, &s("status_503", "HTTP 503: busy 0"), 3);
        assert_eq!(list.len(), 3, "a frequent kind fills the cap and no more");
        keep_sample(&mut list, &s("timeout", "no complete response within 1 s"), 3);
        keep_sample(&mut list, &s("timeout", "no complete response within 2 s"), 3);
        keep_sample(&mut list, &s("reset", "connection reset"), 3);
        let kinds: Vec<&str> = list.iter().map(|x| x.kind.as_str()).collect();
        assert_eq!(kinds, ["status_503", "status_503", "status_503", "timeout", "reset"]);
    }
}
