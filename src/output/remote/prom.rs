//! Prometheus remote write 1.0: a `prometheus.WriteRequest` (protobuf), snappy-compressed by
//! the sender. One request holds every series at one instant; requests concatenated are one
//! request (protobuf merges repeated fields), which is how a backlog is sent at once.
//!
//! The series (docs/outputs.md): `stampede_requests_total{phase,step,status}`,
//! `stampede_errors_total{phase,step,kind}`, `stampede_latency_seconds` (classic buckets
//! `_bucket{le}`, `_sum`, `_count`; or one native histogram), `stampede_data_received_bytes_total`
//! and `stampede_data_sent_bytes_total{phase,step}`, `stampede_vus`,
//! `stampede_iterations_total` and `stampede_dropped_iterations_total{phase}`.

use std::collections::BTreeMap;

use super::proto::Writer;
use super::series::{Latency, Totals, SCALE};

/// How latency histograms are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Histograms {
    /// `_bucket{le}` / `_sum` / `_count` series: every Prometheus reads them.
    Classic,
    /// One native (sparse exponential) histogram per series: Prometheus 2.40+ with
    /// `--enable-feature=native-histograms`.
    Native,
}

/// Encodes `WriteRequest`s, keeping every series' labels encoded from the first time it is
/// sent: they do not change over a run, and encoding each label of each `le` series again every
/// second was most of what the output cost. Per second a series is then its cached labels, a
/// double and a timestamp.
pub struct PromEncoder {
    extra: Vec<(String, String)>,
    histograms: Histograms,
    /// By `Totals::phases` index.
    phases: Vec<[Vec<u8>; 3]>,
    /// By `Totals::steps` index.
    steps: Vec<StepSeries>,
    /// Reused for every sample (no allocation per series once warm).
    sample: [Writer; 2],
    hist: Writer,
    wrapped: Writer,
    /// Reused for each step's classic bucket counts.
    counts: Vec<u64>,
    /// The last request's size: the next one starts with that much room.
    last_len: usize,
}

/// One step's series, labels encoded.
#[derive(Default)]
struct StepSeries {
    status: BTreeMap<u16, Vec<u8>>,
    kinds: BTreeMap<String, Vec<u8>>,
    received: Vec<u8>,
    sent: Vec<u8>,
    buckets: Vec<Vec<u8>>,
    sum: Vec<u8>,
    count: Vec<u8>,
    native: Vec<u8>,
}

impl PromEncoder {
    /// `extra` labels go on every series.
    pub fn new(extra: Vec<(String, String)>, histograms: Histograms) -> PromEncoder {
        PromEncoder {
            extra,
            histograms,
            phases: Vec::new(),
            steps: Vec::new(),
            sample: [Writer::new(), Writer::new()],
            hist: Writer::new(),
            wrapped: Writer::new(),
            counts: Vec::new(),
            last_len: 0,
        }
    }

    /// One `WriteRequest` of `totals` at `at_ms` (Unix ms).
    pub fn encode(&mut self, totals: &Totals, at_ms: i64) -> Vec<u8> {
        let mut req = Writer {
            buf: Vec::with_capacity(self.last_len + self.last_len / 8),
        };
        let extra = &self.extra;
        while self.phases.len() < totals.phases.len() {
            let l = [("phase", totals.phases[self.phases.len()].phase.as_str())];
            self.phases.push([
                labels("stampede_vus", &l, extra),
                labels("stampede_iterations_total", &l, extra),
                labels("stampede_dropped_iterations_total", &l, extra),
            ]);
        }
        while self.steps.len() < totals.steps.len() {
            let t = &totals.steps[self.steps.len()];
            let l = [("phase", t.phase.as_str()), ("step", t.step.as_str())];
            let mut s = StepSeries {
                received: labels("stampede_data_received_bytes_total", &l, extra),
                sent: labels("stampede_data_sent_bytes_total", &l, extra),
                ..StepSeries::default()
            };
            match self.histograms {
                Histograms::Classic => {
                    s.buckets = t
                        .latency
                        .classic()
                        .iter()
                        .map(|(bound, _)| {
                            let le = format_le(*bound);
                            labels("stampede_latency_seconds_bucket", &[l[0], l[1], ("le", &le)], extra)
                        })
                        .collect();
                    s.sum = labels("stampede_latency_seconds_sum", &l, extra);
                    s.count = labels("stampede_latency_seconds_count", &l, extra);
                }
                Histograms::Native => s.native = labels("stampede_latency_seconds", &l, extra),
            }
            self.steps.push(s);
        }
        for (p, cached) in totals.phases.iter().zip(&self.phases) {
            sample(&mut req, &mut self.sample, &cached[0], p.vus as f64, at_ms);
            sample(&mut req, &mut self.sample, &cached[1], p.iterations as f64, at_ms);
            sample(&mut req, &mut self.sample, &cached[2], p.dropped as f64, at_ms);
        }
        for (t, cached) in totals.steps.iter().zip(self.steps.iter_mut()) {
            let l = [("phase", t.phase.as_str()), ("step", t.step.as_str())];
            for (&code, &n) in &t.by_status {
                let ls = cached.status.entry(code).or_insert_with(|| {
                    labels(
                        "stampede_requests_total",
                        &[l[0], l[1], ("status", &code.to_string())],
                        extra,
                    )
                });
                sample(&mut req, &mut self.sample, ls, n as f64, at_ms);
            }
            for (kind, &n) in &t.errors_by_kind {
                if !cached.kinds.contains_key(kind) {
                    let ls = labels("stampede_errors_total", &[l[0], l[1], ("kind", kind)], extra);
                    cached.kinds.insert(kind.clone(), ls);
                }
                sample(&mut req, &mut self.sample, &cached.kinds[kind], n as f64, at_ms);
            }
            sample(&mut req, &mut self.sample, &cached.received, t.bytes_in as f64, at_ms);
            sample(&mut req, &mut self.sample, &cached.sent, t.bytes_out as f64, at_ms);
            match self.histograms {
                Histograms::Classic => {
                    t.latency.classic_counts(&mut self.counts);
                    for (n, ls) in self.counts.iter().zip(&cached.buckets) {
                        sample(&mut req, &mut self.sample, ls, *n as f64, at_ms);
                    }
                    sample(&mut req, &mut self.sample, &cached.sum, t.latency.sum_s, at_ms);
                    sample(&mut req, &mut self.sample, &cached.count, t.latency.count as f64, at_ms);
                }
                Histograms::Native => {
                    self.hist.buf.clear();
                    native(&mut self.hist, &t.latency, at_ms);
                    self.wrapped.buf.clear();
                    self.wrapped.message(4, &self.hist);
                    req.concat(1, &[&cached.native, &self.wrapped.buf]);
                }
            }
        }
        self.last_len = req.buf.len();
        req.buf
    }
}

/// One `TimeSeries` of one sample: its cached labels, then `Sample { value = 1, timestamp = 2 }`.
fn sample(req: &mut Writer, scratch: &mut [Writer; 2], labels: &[u8], value: f64, at_ms: i64) {
    let [inner, outer] = scratch;
    inner.buf.clear();
    inner.double(1, value);
    inner.int64(2, at_ms);
    outer.buf.clear();
    outer.message(2, inner);
    req.concat(1, &[labels, &outer.buf]);
}

/// A series' labels encoded (repeated field 1 of a `TimeSeries`).
fn labels(name: &str, labels: &[(&str, &str)], extra: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::new();
    put_labels(&mut w, name, labels, extra);
    w.buf
}

/// `le` as Prometheus writes it: the shortest float that reads back, `+Inf` for the last.
fn format_le(bound: f64) -> String {
    if bound.is_infinite() {
        "+Inf".into()
    } else {
        format!("{bound}")
    }
}

/// A series' labels, `__name__` included, sorted by name as remote write requires.
fn put_labels(ts: &mut Writer, name: &str, labels: &[(&str, &str)], extra: &[(String, String)]) {
    let mut all: Vec<(&str, &str)> = Vec::with_capacity(labels.len() + extra.len() + 1);
    all.push(("__name__", name));
    all.extend_from_slice(labels);
    all.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    all.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (k, v) in all {
        ts.nested(1, |l| {
            l.bytes(1, k.as_bytes());
            l.bytes(2, v.as_bytes());
        });
    }
}

/// A native histogram (`prometheus.Histogram`): integer counts, schema [`SCALE`], positive
/// buckets as spans of consecutive indices and deltas between neighbouring counts. Prometheus'
/// bucket `i` is OTLP's `i - 1` (its upper bound is base^i).
fn native(h: &mut Writer, l: &Latency, at_ms: i64) {
    h.uint(1, l.count); // count_int
    h.double(3, l.sum_s);
    h.sint(4, i64::from(SCALE));
    h.double(5, 0.0); // zero_threshold: only exact zeros
    h.uint(6, l.zero); // zero_count_int
    let mut spans: Vec<(i32, u32)> = Vec::new(); // (offset from the previous span's end, length)
    let mut deltas = Vec::with_capacity(l.buckets.len());
    let (mut prev_index, mut prev_count) = (None::<i32>, 0i64);
    for (&i, &n) in &l.buckets {
        let i = i + 1;
        match (prev_index, spans.last_mut()) {
            (Some(p), Some(last)) if i == p + 1 => last.1 += 1,
            (Some(p), _) => spans.push((i - p - 1, 1)),
            (None, _) => spans.push((i, 1)),
        }
        deltas.push(n as i64 - prev_count);
        prev_count = n as i64;
        prev_index = Some(i);
    }
    for (offset, length) in spans {
        h.nested(11, |s| {
            s.sint(1, i64::from(offset));
            s.uint(2, u64::from(length));
        });
    }
    h.packed_sint(12, deltas);
    h.int64(15, at_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recorder::Interval;

    pub(crate) fn interval(phase: &str) -> Interval {
        Interval {
            phase: phase.into(),
            seq: 0,
            t: 0.0,
            dur: 1.0,
            vus: 3,
            waiting: 0,
            iterations: 5,
            dropped: 0,
            backoffs: 0,
            backoff_ms: 0,
            ws_open: 0,
            late: crate::rundir::hist::new_growable(),
            steps: Vec::new(),
        }
    }

    #[test]
    fn every_series_has_sorted_labels_and_the_counts_add_up() {
        let mut t = Totals::default();
        let mut iv = interval("load");
        let mut s = crate::rundir::StepInterval::empty("get");
        s.requests = 5;
        s.statuses.insert(200, 4);
        s.kinds.insert("timeout".into(), 1);
        let _ = s.latency.record(2000);
        iv.steps.push(s);
        t.add(&iv, 0);
        let body = PromEncoder::new(vec![("Zone".into(), "a".into())], Histograms::Classic).encode(&t, 1_000);
        // The status-0 series (one timeout) and the 200 series are both there.
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("stampede_requests_total"));
        assert!(text.contains("timeout"));
        assert!(body.windows(4).any(|w| w == b"+Inf"));
        let native = PromEncoder::new(vec![], Histograms::Native).encode(&t, 1_000);
        assert!(!String::from_utf8_lossy(&native).contains("stampede_latency_seconds_bucket"));
    }
}
