//! Prometheus remote write 1.0: a `prometheus.WriteRequest` (protobuf), snappy-compressed by
//! the sender. One request holds every series at one instant; requests concatenated are one
//! request (protobuf merges repeated fields), which is how a backlog is sent at once.
//!
//! The series (docs/outputs.md): `stampede_requests_total{phase,step,status}`,
//! `stampede_errors_total{phase,step,kind}`, `stampede_latency_seconds` (classic buckets
//! `_bucket{le}`, `_sum`, `_count`; or one native histogram), `stampede_data_received_bytes_total`
//! and `stampede_data_sent_bytes_total{phase,step}`, `stampede_vus`,
//! `stampede_iterations_total` and `stampede_dropped_iterations_total{phase}`.

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

/// Encodes one `WriteRequest` of `totals` at `at_ms` (Unix ms); `extra` labels go on every
/// series.
pub fn write_request(totals: &Totals, at_ms: i64, extra: &[(String, String)], histograms: Histograms) -> Vec<u8> {
    let mut req = Writer::new();
    let mut sample = |name: &str, labels: &[(&str, &str)], value: f64| {
        req.nested(1, |ts| {
            put_labels(ts, name, labels, extra);
            ts.nested(2, |s| {
                s.double(1, value);
                s.int64(2, at_ms);
            });
        });
    };
    for p in &totals.phases {
        let l = [("phase", p.phase.as_str())];
        sample("stampede_vus", &l, p.vus as f64);
        sample("stampede_iterations_total", &l, p.iterations as f64);
        sample("stampede_dropped_iterations_total", &l, p.dropped as f64);
    }
    let mut status = String::new();
    for s in &totals.steps {
        let l = [("phase", s.phase.as_str()), ("step", s.step.as_str())];
        for (&code, &n) in &s.by_status {
            status.clear();
            status.push_str(&code.to_string());
            sample(
                "stampede_requests_total",
                &[l[0], l[1], ("status", status.as_str())],
                n as f64,
            );
        }
        for (kind, &n) in &s.errors_by_kind {
            sample("stampede_errors_total", &[l[0], l[1], ("kind", kind)], n as f64);
        }
        sample("stampede_data_received_bytes_total", &l, s.bytes_in as f64);
        sample("stampede_data_sent_bytes_total", &l, s.bytes_out as f64);
        if histograms == Histograms::Classic {
            let mut le = String::new();
            for (bound, n) in s.latency.classic() {
                le.clear();
                le.push_str(&format_le(bound));
                sample(
                    "stampede_latency_seconds_bucket",
                    &[l[0], l[1], ("le", le.as_str())],
                    n as f64,
                );
            }
            sample("stampede_latency_seconds_sum", &l, s.latency.sum_s);
            sample("stampede_latency_seconds_count", &l, s.latency.count as f64);
        }
    }
    if histograms == Histograms::Native {
        for s in &totals.steps {
            let l = [("phase", s.phase.as_str()), ("step", s.step.as_str())];
            req.nested(1, |ts| {
                put_labels(ts, "stampede_latency_seconds", &l, extra);
                ts.nested(4, |h| native(h, &s.latency, at_ms));
            });
        }
    }
    req.buf
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
        let body = write_request(&t, 1_000, &[("Zone".into(), "a".into())], Histograms::Classic);
        // The status-0 series (one timeout) and the 200 series are both there.
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("stampede_requests_total"));
        assert!(text.contains("timeout"));
        assert!(body.windows(4).any(|w| w == b"+Inf"));
        let native = write_request(&t, 1_000, &[], Histograms::Native);
        assert!(!String::from_utf8_lossy(&native).contains("stampede_latency_seconds_bucket"));
    }
}
