//! Prometheus remote write 1.0: a `prometheus.WriteRequest` (protobuf), snappy-compressed by
//! the sender. One request holds every series at one instant; requests concatenated are one
//! request (protobuf merges repeated fields), which is how a backlog is sent at once.
//!
//! The series (docs/outputs.md): `stampede_requests_total{phase,step,status}`,
//! `stampede_errors_total{phase,step,kind}`, `stampede_latency_seconds` (classic buckets
//! `_bucket{le}`, `_sum`, `_count`; or one native histogram), `stampede_data_received_bytes_total`
//! and `stampede_data_sent_bytes_total{phase,step}`, `stampede_vus`,
//! `stampede_iterations_total` and `stampede_dropped_iterations_total{phase}`.

use std::collections::{BTreeMap, VecDeque};

use super::proto::{len_field_size, varint_len, Writer};
use super::series::{upper_bound, Latency, Totals, CLASSIC_HIGH, CLASSIC_LOW, SCALE};

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
/// double and a timestamp, written straight into the request.
pub struct PromEncoder {
    extra: Vec<(String, String)>,
    histograms: Histograms,
    /// By `Totals::phases` index.
    phases: Vec<[Vec<u8>; 3]>,
    /// By `Totals::steps` index.
    steps: Vec<StepSeries>,
    hist: Writer,
    wrapped: Writer,
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
    classic: Classic,
    sum: Vec<u8>,
    count: Vec<u8>,
    native: Vec<u8>,
}

/// A step's classic `le` series. Only the buckets from just below the fastest latency seen so
/// far to the slowest are sent (with `+Inf`): above the slowest every bucket holds the whole
/// count and below the fastest none, so they tell `histogram_quantile` nothing, and sending
/// all 337 of them every second was most of the output's cost (and of the receiver's series).
/// When the range widens, each new bucket series is sent with its past filled in, from
/// [`Classic::history`]: a bucket above the old range held every request at each past push,
/// one below it held only the zeros. So `rate()` over any window up to [`BACKFILL_MS`] sees the
/// same counts as if every bucket had been sent from the start.
#[derive(Default)]
struct Classic {
    /// `le` labels by bucket (index from [`CLASSIC_LOW`]), encoded when first sent.
    le: Vec<Vec<u8>>,
    inf: Vec<u8>,
    /// The finite buckets sent so far (OTLP indices, inclusive).
    range: Option<(i32, i32)>,
    /// Earlier pushes: (Unix ms, zero count, count), the last [`BACKFILL_MS`] of them.
    history: VecDeque<(i64, u64, u64)>,
}

/// How far back a bucket series that appears late is filled in: under Prometheus' limit of
/// an hour before its newest sample (older samples are refused as out of bounds).
const BACKFILL_MS: i64 = 50 * 60 * 1000;

impl PromEncoder {
    /// `extra` labels go on every series.
    pub fn new(extra: Vec<(String, String)>, histograms: Histograms) -> PromEncoder {
        PromEncoder {
            extra,
            histograms,
            phases: Vec::new(),
            steps: Vec::new(),
            hist: Writer::new(),
            wrapped: Writer::new(),
            last_len: 0,
        }
    }

    /// One `WriteRequest` of `totals` at `at_ms` (Unix ms).
    pub fn encode(&mut self, totals: &Totals, at_ms: i64) -> Vec<u8> {
        let mut req = Writer {
            buf: Vec::with_capacity(self.last_len + self.last_len / 8),
        };
        let extra = &self.extra;
        let stamp = Stamp::new(at_ms);
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
                    s.classic.le = vec![Vec::new(); (CLASSIC_HIGH - CLASSIC_LOW + 1) as usize];
                    s.classic.inf = labels("stampede_latency_seconds_bucket", &[l[0], l[1], ("le", "+Inf")], extra);
                    s.sum = labels("stampede_latency_seconds_sum", &l, extra);
                    s.count = labels("stampede_latency_seconds_count", &l, extra);
                }
                Histograms::Native => s.native = labels("stampede_latency_seconds", &l, extra),
            }
            self.steps.push(s);
        }
        for (p, cached) in totals.phases.iter().zip(&self.phases) {
            series_at(&mut req, &cached[0], p.vus as f64, &stamp);
            series_at(&mut req, &cached[1], p.iterations as f64, &stamp);
            series_at(&mut req, &cached[2], p.dropped as f64, &stamp);
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
                series_at(&mut req, ls, n as f64, &stamp);
            }
            for (kind, &n) in &t.errors_by_kind {
                if !cached.kinds.contains_key(kind) {
                    let ls = labels("stampede_errors_total", &[l[0], l[1], ("kind", kind)], extra);
                    cached.kinds.insert(kind.clone(), ls);
                }
                series_at(&mut req, &cached.kinds[kind], n as f64, &stamp);
            }
            series_at(&mut req, &cached.received, t.bytes_in as f64, &stamp);
            series_at(&mut req, &cached.sent, t.bytes_out as f64, &stamp);
            match self.histograms {
                Histograms::Classic => {
                    cached.classic.encode(&mut req, &t.latency, l, extra, at_ms);
                    series_at(&mut req, &cached.sum, t.latency.sum_s, &stamp);
                    series_at(&mut req, &cached.count, t.latency.count as f64, &stamp);
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

impl Classic {
    /// This push's `le` series (the range so far, any new bucket with its past) and `+Inf`.
    fn encode(
        &mut self,
        req: &mut Writer,
        l: &Latency,
        step: [(&str, &str); 2],
        extra: &[(String, String)],
        at_ms: i64,
    ) {
        let seen = l
            .buckets
            .first_key_value()
            .zip(l.buckets.last_key_value())
            .map(|((&first, _), (&last, _))| {
                (
                    (first - 1).clamp(CLASSIC_LOW, CLASSIC_HIGH),
                    last.clamp(CLASSIC_LOW, CLASSIC_HIGH),
                )
            });
        let old = self.range;
        self.range = match (old, seen) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (a, b) => a.or(b),
        };
        let stamp = Stamp::new(at_ms);
        if let Some((lo, hi)) = self.range {
            let mut cum = l.zero;
            let mut it = l.buckets.iter().peekable();
            let mut past = Vec::new();
            for i in lo..=hi {
                while let Some((_, n)) = it.next_if(|(&b, _)| b <= i) {
                    cum += n;
                }
                let ls = &mut self.le[(i - CLASSIC_LOW) as usize];
                if ls.is_empty() {
                    let le = format_le(upper_bound(i));
                    *ls = labels(
                        "stampede_latency_seconds_bucket",
                        &[step[0], step[1], ("le", &le)],
                        extra,
                    );
                }
                match old {
                    Some((a, b)) if (a..=b).contains(&i) => series_at(req, ls, cum as f64, &stamp),
                    _ => {
                        // New: above the old range it held every request then, else the zeros.
                        let above = old.is_some_and(|(_, b)| i > b);
                        past.clear();
                        past.extend(
                            self.history
                                .iter()
                                .map(|&(t, zero, count)| ((if above { count } else { zero }) as f64, t)),
                        );
                        past.push((cum as f64, at_ms));
                        series(req, ls, &past);
                    }
                }
            }
        }
        series_at(req, &self.inf, l.count as f64, &stamp);
        self.history.push_back((at_ms, l.zero, l.count));
        while self.history.front().is_some_and(|&(t, _, _)| t < at_ms - BACKFILL_MS) {
            self.history.pop_front();
        }
    }
}

/// `le` with 4 significant digits ("0.001019" for 0.00101923…): the buckets are 4.4% apart,
/// so 4 digits keep every bound distinct and in order, within 0.05% of the bound it counts by;
/// a double's full 17 digits were a sixth of each bucket series' bytes, and are no easier to
/// read in a heatmap's legend.
fn format_le(bound: f64) -> String {
    let digits = (3 - bound.log10().floor() as i32).max(0) as usize;
    let s = format!("{bound:.digits$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A sample's `timestamp` field, encoded once per push: every series of a push shares it.
struct Stamp {
    bytes: [u8; 11],
    len: usize,
}

impl Stamp {
    fn new(at_ms: i64) -> Stamp {
        let mut w = Writer::new();
        w.int64(2, at_ms);
        let mut bytes = [0; 11];
        bytes[..w.buf.len()].copy_from_slice(&w.buf);
        Stamp {
            bytes,
            len: w.buf.len(),
        }
    }
}

/// One `TimeSeries` of one sample at `stamp`: what nearly every series of a push is, so it
/// is written with no size computed twice and no scratch buffer (the sample is at most 20
/// bytes: its length is one byte).
fn series_at(req: &mut Writer, labels: &[u8], value: f64, stamp: &Stamp) {
    let inner = if value != 0.0 { 9 } else { 0 } + stamp.len;
    req.len_field(1, labels.len() + 2 + inner);
    req.buf.extend_from_slice(labels);
    req.buf.extend_from_slice(&[0x12, inner as u8]);
    if value != 0.0 {
        req.buf.push(0x09);
        req.buf.extend_from_slice(&value.to_le_bytes());
    }
    req.buf.extend_from_slice(&stamp.bytes[..stamp.len]);
}

/// One `TimeSeries`: its cached labels, then a `Sample { value = 1, timestamp = 2 }` for each
/// of `samples` (oldest first), written straight into the request: the sizes are known, so no
/// scratch buffer and a single copy of the labels.
fn series(req: &mut Writer, labels: &[u8], samples: &[(f64, i64)]) {
    let sample_len =
        |v: f64, t: i64| (if v != 0.0 { 9 } else { 0 }) + (if t != 0 { 1 + varint_len(t as u64) } else { 0 });
    let len = labels.len()
        + samples
            .iter()
            .map(|&(v, t)| len_field_size(2, sample_len(v, t)))
            .sum::<usize>();
    req.len_field(1, len);
    req.buf.extend_from_slice(labels);
    for &(v, t) in samples {
        req.len_field(2, sample_len(v, t));
        req.double(1, v);
        req.int64(2, t);
    }
}

/// A series' labels encoded (repeated field 1 of a `TimeSeries`).
fn labels(name: &str, labels: &[(&str, &str)], extra: &[(String, String)]) -> Vec<u8> {
    let mut w = Writer::new();
    put_labels(&mut w, name, labels, extra);
    w.buf
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
    use super::super::series;
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

    /// A `TimeSeries` read back: its labels and its samples (value, Unix ms).
    type Series = (BTreeMap<String, String>, Vec<(f64, i64)>);

    /// A `WriteRequest` read back: each `TimeSeries`' labels and samples (histograms skipped).
    fn decode(buf: &[u8]) -> Vec<Series> {
        fn varint(b: &[u8], at: &mut usize) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[*at];
                *at += 1;
                v |= u64::from(byte & 0x7f) << shift;
                if byte < 0x80 {
                    return v;
                }
                shift += 7;
            }
        }
        /// The fields of one message: (number, wire type, varint or fixed64 value, bytes).
        fn fields(b: &[u8]) -> Vec<(u64, u64, u64, &[u8])> {
            let (mut at, mut out) = (0, Vec::new());
            while at < b.len() {
                let key = varint(b, &mut at);
                match key & 7 {
                    0 => out.push((key >> 3, 0, varint(b, &mut at), &b[0..0])),
                    1 => {
                        let v = u64::from_le_bytes(b[at..at + 8].try_into().unwrap());
                        at += 8;
                        out.push((key >> 3, 1, v, &b[0..0]));
                    }
                    2 => {
                        let n = varint(b, &mut at) as usize;
                        out.push((key >> 3, 2, 0, &b[at..at + n]));
                        at += n;
                    }
                    w => panic!("wire type {w}"),
                }
            }
            out
        }
        let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        fields(buf)
            .into_iter()
            .map(|(_, _, _, ts)| {
                let (mut labels, mut samples) = (BTreeMap::new(), Vec::new());
                for (f, _, _, m) in fields(ts) {
                    let inner = fields(m);
                    let get = |n: u64| inner.iter().find(|x| x.0 == n);
                    match f {
                        1 => {
                            labels.insert(text(get(1).unwrap().3), text(get(2).map_or(&[][..], |x| x.3)));
                        }
                        2 => samples.push((
                            get(1).map_or(0.0, |x| f64::from_bits(x.2)),
                            get(2).map_or(0, |x| x.2 as i64),
                        )),
                        _ => {}
                    }
                }
                (labels, samples)
            })
            .collect()
    }

    /// The `le` buckets of a request: (bound, samples), in the order sent.
    fn buckets(body: &[u8]) -> Vec<(f64, Vec<(f64, i64)>)> {
        decode(body)
            .into_iter()
            .filter(|(l, _)| l["__name__"] == "stampede_latency_seconds_bucket")
            .map(|(l, s)| (l["le"].parse::<f64>().unwrap(), s))
            .collect()
    }

    fn step_with(latencies_us: &[(u64, u64)]) -> Interval {
        let mut iv = interval("load");
        let mut s = crate::rundir::StepInterval::empty("get");
        for &(us, n) in latencies_us {
            s.requests += n;
            *s.statuses.entry(200).or_default() += n;
            s.latency.record_n(us, n).unwrap();
            s.latency_sum_us = s.latency_sum_us.map(|x| x + us * n);
        }
        iv.steps.push(s);
        iv
    }

    #[test]
    fn one_sample_is_written_the_same_either_way() {
        let ls = labels("m", &[("phase", "p")], &[]);
        for (v, t) in [(0.0, 1_700_000_000_000), (3.5, 1_700_000_000_123), (1.0, 0)] {
            let (mut a, mut b) = (Writer::new(), Writer::new());
            series(&mut a, &ls, &[(v, t)]);
            series_at(&mut b, &ls, v, &Stamp::new(t));
            assert_eq!(a.buf, b.buf, "{v} at {t}");
        }
    }

    #[test]
    fn le_bounds_are_short_distinct_and_close() {
        let all: Vec<(f64, String)> = (CLASSIC_LOW..=CLASSIC_HIGH)
            .map(|i| (upper_bound(i), format_le(upper_bound(i))))
            .collect();
        assert_eq!(format_le(0.0009765625), "0.0009766");
        assert_eq!(format_le(1.0), "1");
        assert_eq!(format_le(upper_bound(15)), "2");
        for w in all.windows(2) {
            let (a, b) = (w[0].1.parse::<f64>().unwrap(), w[1].1.parse::<f64>().unwrap());
            assert!(a < b, "{} then {}", w[0].1, w[1].1);
        }
        for (bound, le) in &all {
            let back: f64 = le.parse().unwrap();
            assert!(((back - bound) / bound).abs() < 5e-4, "{le} for {bound}");
            assert!(le.len() <= 10, "{le}");
        }
    }

    #[test]
    fn classic_buckets_are_cumulative_and_span_only_what_was_seen() {
        let mut t = Totals::default();
        // 1 ms ×3, 10 ms ×1, 200 s ×1 (above the last finite bucket), 0 ×1.
        t.add(&step_with(&[(1000, 3), (10_000, 1), (200_000_000, 1), (0, 1)]), 0);
        let b = buckets(&PromEncoder::new(vec![], Histograms::Classic).encode(&t, 1_000));
        assert_eq!(b.last().map(|x| (x.0, x.1[0].0)), Some((f64::INFINITY, 6.0)));
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1[0].0 <= w[1].1[0].0));
        assert!(b.iter().all(|x| x.1.len() == 1), "one sample each");
        let at = |s: f64| b.iter().find(|(le, _)| *le >= s).map(|x| x.1[0].0);
        assert_eq!(at(0.001), Some(4.0), "zero and the three 1 ms");
        assert_eq!(at(0.0105), Some(5.0));
        assert_eq!(b[b.len() - 2].1[0].0, 5.0, "200 s only in +Inf");
        let sum = decode(&PromEncoder::new(vec![], Histograms::Classic).encode(&t, 1_000))
            .into_iter()
            .find(|(l, _)| l["__name__"] == "stampede_latency_seconds_sum")
            .map(|(_, s)| s[0].0);
        assert_eq!(sum, Some(0.003 + 0.01 + 200.0), "the recorder's exact sum");
        assert!(
            b[0].0 < 0.001 && b[0].1[0].0 == 1.0,
            "the first bucket just below 1 ms, the zero only"
        );
        assert!(
            (b[0].0 - upper_bound(CLASSIC_LOW)).abs() > 1e-9,
            "not the whole range: {}",
            b[0].0
        );
        assert_eq!(b.len() as i32, CLASSIC_HIGH - series::bucket_index(0.001) + 3);
    }

    #[test]
    fn a_bucket_that_appears_late_carries_its_past() {
        let mut t = Totals::default();
        let mut e = PromEncoder::new(vec![], Histograms::Classic);
        t.add(&step_with(&[(1000, 4), (0, 1)]), 0);
        let first = buckets(&e.encode(&t, 1_000));
        t.add(&step_with(&[(1000, 2)]), 1_000);
        let second = buckets(&e.encode(&t, 2_000));
        assert_eq!(first.len(), second.len(), "nothing new, nothing more");
        // Now slower (10 ms) and faster (200 µs) requests than before.
        t.add(&step_with(&[(10_000, 1), (200, 1)]), 2_000);
        let third = buckets(&e.encode(&t, 3_000));
        let (lo, hi) = (first[0].0, first[first.len() - 2].0);
        for (le, samples) in &third {
            let known = first.iter().any(|(b, _)| b == le);
            if known {
                assert_eq!(samples.len(), 1, "le {le}");
                continue;
            }
            let times: Vec<i64> = samples.iter().map(|s| s.1).collect();
            assert_eq!(times, [1_000, 2_000, 3_000], "le {le}: filled in from the first push");
            let past: Vec<f64> = samples[..2].iter().map(|s| s.0).collect();
            if *le > hi {
                assert_eq!(past, [5.0, 7.0], "le {le}: held every request then");
            } else {
                assert!(*le < lo);
                assert_eq!(past, [1.0, 1.0], "le {le}: held only the zero then");
            }
        }
        assert!(
            third.len() > first.len() + 16,
            "a doubling below and above: {}",
            third.len()
        );
        let at = |s: f64| third.iter().find(|(le, _)| *le >= s).map(|x| x.1.last().unwrap().0);
        assert_eq!(at(0.0002), Some(2.0));
        assert_eq!(at(0.001), Some(8.0));
        assert_eq!(at(0.01), Some(9.0));
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
