//! OTLP/HTTP metrics (protobuf): an `ExportMetricsServiceRequest` of the run's totals at one
//! instant, cumulative temporality, latency as exponential histograms at [`SCALE`]. Requests
//! concatenated are one request (their `resource_metrics` joined), as for remote write.
//!
//! Metric names follow OpenTelemetry's dotted style (`stampede.requests`, …); a collector's
//! Prometheus exporter turns them into the remote-write names (`stampede_requests_total`).

use super::proto::Writer;
use super::series::{Latency, Totals, SCALE};

const CUMULATIVE: u64 = 2;

/// Encodes one request of `totals` at `at_ms`; `attributes` go on the resource beside
/// `service.name = stampede`.
pub fn export_request(totals: &Totals, at_ms: i64, attributes: &[(String, String)]) -> Vec<u8> {
    let now_ns = (at_ms.max(0) as u64) * 1_000_000;
    let start_of = |phase: &str| {
        totals
            .phases
            .iter()
            .find(|p| p.phase == phase)
            .map_or(now_ns, |p| (p.start_ms.max(0) as u64) * 1_000_000)
    };
    let mut req = Writer::new();
    req.nested(1, |rm| {
        rm.nested(1, |res| {
            key_value(res, 1, "service.name", "stampede");
            for (k, v) in attributes {
                key_value(res, 1, k, v);
            }
        });
        rm.nested(2, |sm| {
            sm.nested(1, |scope| {
                scope.bytes(1, b"stampede");
                scope.bytes(2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            metric(sm, "stampede.vus", "{vu}", |m| {
                m.nested(5, |g| {
                    for p in &totals.phases {
                        number(g, &[("phase", &p.phase)], 0, now_ns, p.vus);
                    }
                });
            });
            sum(sm, "stampede.iterations", "{iteration}", |s| {
                for p in &totals.phases {
                    number(s, &[("phase", &p.phase)], start_of(&p.phase), now_ns, p.iterations);
                }
            });
            sum(sm, "stampede.dropped_iterations", "{iteration}", |s| {
                for p in &totals.phases {
                    number(s, &[("phase", &p.phase)], start_of(&p.phase), now_ns, p.dropped);
                }
            });
            sum(sm, "stampede.requests", "{request}", |s| {
                for t in &totals.steps {
                    for (code, &n) in &t.by_status {
                        let code = code.to_string();
                        let attrs = [("phase", t.phase.as_str()), ("step", &t.step), ("status", &code)];
                        number(s, &attrs, start_of(&t.phase), now_ns, n);
                    }
                }
            });
            sum(sm, "stampede.errors", "{error}", |s| {
                for t in &totals.steps {
                    for (kind, &n) in &t.errors_by_kind {
                        let attrs = [("phase", t.phase.as_str()), ("step", &t.step), ("kind", kind)];
                        number(s, &attrs, start_of(&t.phase), now_ns, n);
                    }
                }
            });
            sum(sm, "stampede.data_received", "By", |s| {
                for t in &totals.steps {
                    number(
                        s,
                        &[("phase", &t.phase), ("step", &t.step)],
                        start_of(&t.phase),
                        now_ns,
                        t.bytes_in,
                    );
                }
            });
            sum(sm, "stampede.data_sent", "By", |s| {
                for t in &totals.steps {
                    number(
                        s,
                        &[("phase", &t.phase), ("step", &t.step)],
                        start_of(&t.phase),
                        now_ns,
                        t.bytes_out,
                    );
                }
            });
            metric(sm, "stampede.latency", "s", |m| {
                m.nested(10, |eh| {
                    for t in &totals.steps {
                        eh.nested(1, |dp| {
                            exponential_point(
                                dp,
                                &t.latency,
                                &[("phase", &t.phase), ("step", &t.step)],
                                start_of(&t.phase),
                                now_ns,
                            )
                        });
                    }
                    eh.uint(2, CUMULATIVE);
                });
            });
        });
    });
    req.buf
}

/// `Metric { name = 1, unit = 3, data = 5..11 }`.
fn metric(sm: &mut Writer, name: &str, unit: &str, data: impl FnOnce(&mut Writer)) {
    sm.nested(2, |m| {
        m.bytes(1, name.as_bytes());
        m.bytes(3, unit.as_bytes());
        data(m);
    });
}

/// A monotonic cumulative `Sum` (field 7) of integer points.
fn sum(sm: &mut Writer, name: &str, unit: &str, points: impl FnOnce(&mut Writer)) {
    metric(sm, name, unit, |m| {
        m.nested(7, |s| {
            points(s);
            s.uint(2, CUMULATIVE);
            s.uint(3, 1); // is_monotonic
        });
    });
}

/// `NumberDataPoint { start_time_unix_nano = 2, time_unix_nano = 3, as_int = 6, attributes = 7 }`
/// as field 1 of a `Gauge` or `Sum`.
fn number(parent: &mut Writer, attrs: &[(&str, &str)], start_ns: u64, now_ns: u64, v: u64) {
    parent.nested(1, |p| {
        p.fixed64(2, start_ns);
        p.fixed64(3, now_ns);
        // as_int is sfixed64 in a oneof: written even when 0.
        p.fixed64_always(6, v);
        for (k, val) in attrs {
            key_value(p, 7, k, val);
        }
    });
}

/// `ExponentialHistogramDataPoint`: attributes 1, start 2, time 3, count 4, sum 5, scale 6,
/// zero_count 7, positive 8 (`Buckets { offset = 1, bucket_counts = 2 }`).
fn exponential_point(dp: &mut Writer, l: &Latency, attrs: &[(&str, &str)], start_ns: u64, now_ns: u64) {
    for (k, v) in attrs {
        key_value(dp, 1, k, v);
    }
    dp.fixed64(2, start_ns);
    dp.fixed64(3, now_ns);
    dp.fixed64(4, l.count);
    dp.double_always(5, l.sum_s);
    dp.sint(6, i64::from(SCALE));
    dp.fixed64(7, l.zero);
    if let (Some((&lo, _)), Some((&hi, _))) = (l.buckets.first_key_value(), l.buckets.last_key_value()) {
        let mut counts = vec![0u64; (hi - lo + 1) as usize];
        for (&i, &n) in &l.buckets {
            counts[(i - lo) as usize] = n;
        }
        dp.nested(8, |b| {
            b.sint(1, i64::from(lo));
            b.packed_uint(2, counts);
        });
    }
}

/// `KeyValue { key = 1, value = 2: AnyValue { string_value = 1 } }` as field `field`.
fn key_value(parent: &mut Writer, field: u32, k: &str, v: &str) {
    parent.nested(field, |kv| {
        kv.bytes(1, k.as_bytes());
        kv.nested(2, |any| {
            // string_value in a oneof: written even when empty.
            any.bytes_always(1, v.as_bytes());
        });
    });
}
