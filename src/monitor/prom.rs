//! A hand-written parser for the Prometheus text exposition format (0.0.4), because the parser
//! crates are unmaintained. It reads what `/metrics` endpoints really serve: `# TYPE` and `# HELP`
//! lines, samples with or without labels, escaped label values, `+Inf`/`-Inf`/`NaN`, optional
//! timestamps, and the OpenMetrics `# EOF` marker. A bad line is skipped and counted, never fatal:
//! one odd exporter line must not blind the whole monitor.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The sample's own name (`http_requests_total`, `latency_bucket`).
    pub name: String,
    /// The family it belongs to (`latency` for `latency_bucket`), for `include` and types.
    pub family: String,
    /// Sorted by name.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub kind: MetricType,
}

impl Sample {
    /// `name{a="1",b="2"}`: the series key in `monitors.jsonl` (labels sorted, values escaped).
    pub fn key(&self) -> String {
        series_key(&self.name, &self.labels)
    }

    /// Counters (and the cumulative parts of histograms and summaries) are turned into rates.
    pub fn is_cumulative(&self) -> bool {
        match self.kind {
            MetricType::Counter => true,
            MetricType::Histogram | MetricType::Summary => {
                self.name.ends_with("_bucket") || self.name.ends_with("_sum") || self.name.ends_with("_count")
            }
            MetricType::Untyped => self.name.ends_with("_total"),
            MetricType::Gauge => false,
        }
    }
}

pub fn series_key(name: &str, labels: &[(String, String)]) -> String {
    if labels.is_empty() {
        return name.to_string();
    }
    let mut s = String::with_capacity(name.len() + 16 * labels.len());
    s.push_str(name);
    s.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(k);
        s.push_str("=\"");
        for c in v.chars() {
            match c {
                '\\' => s.push_str("\\\\"),
                '"' => s.push_str("\\\""),
                '\n' => s.push_str("\\n"),
                c => s.push(c),
            }
        }
        s.push('"');
    }
    s.push('}');
    s
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub samples: Vec<Sample>,
    /// Lines that were not understood (1-based numbers and why), at most a few kept.
    pub bad_lines: Vec<(usize, String)>,
    pub bad_count: usize,
}

/// Parses a whole exposition.
pub fn parse(text: &str) -> Parsed {
    let mut types: BTreeMap<String, MetricType> = BTreeMap::new();
    let mut out = Parsed::default();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut parts = c.split_whitespace();
            match parts.next() {
                Some("TYPE") => {
                    if let (Some(name), Some(t)) = (parts.next(), parts.next()) {
                        let t = match t {
                            "counter" => MetricType::Counter,
                            "gauge" => MetricType::Gauge,
                            "histogram" | "gaugehistogram" => MetricType::Histogram,
                            "summary" => MetricType::Summary,
                            _ => MetricType::Untyped,
                        };
                        types.insert(name.to_string(), t);
                    }
                }
                Some("EOF") => break,
                _ => {}
            }
            continue;
        }
        match parse_sample(line) {
            Ok((name, mut labels, value)) => {
                labels.sort();
                let (family, kind) = family_of(&name, &types);
                out.samples.push(Sample {
                    name,
                    family,
                    labels,
                    value,
                    kind,
                });
            }
            Err(e) => {
                out.bad_count += 1;
                if out.bad_lines.len() < 5 {
                    out.bad_lines.push((i + 1, e));
                }
            }
        }
    }
    out
}

/// The family a sample name belongs to and its type: `x_bucket`/`x_sum`/`x_count` belong to
/// histogram or summary `x`; OpenMetrics counters are declared without their `_total`.
fn family_of(name: &str, types: &BTreeMap<String, MetricType>) -> (String, MetricType) {
    if let Some(t) = types.get(name) {
        return (name.to_string(), *t);
    }
    for suffix in ["_bucket", "_sum", "_count", "_total", "_created"] {
        if let Some(base) = name.strip_suffix(suffix) {
            if let Some(t) = types.get(base) {
                return (base.to_string(), *t);
            }
        }
    }
    (name.to_string(), MetricType::Untyped)
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

type Labels = Vec<(String, String)>;
type Line = (String, Labels, f64);

fn parse_sample(line: &str) -> Result<Line, String> {
    let mut chars = line.char_indices().peekable();
    match chars.peek() {
        Some((_, c)) if is_name_start(*c) => {}
        _ => return Err("a sample starts with a metric name".into()),
    }
    let mut end = line.len();
    for (i, c) in line.char_indices() {
        if !is_name_char(c) {
            end = i;
            break;
        }
    }
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (l, after) = parse_labels(r)?;
        labels = l;
        rest = after;
    }
    let mut fields = rest.split_whitespace();
    let v = fields.next().ok_or("a sample needs a value")?;
    let value = parse_value(v).ok_or_else(|| format!("`{v}` is not a number"))?;
    if let Some(ts) = fields.next() {
        if ts.parse::<f64>().is_err() {
            return Err(format!("`{ts}` is not a timestamp"));
        }
    }
    if fields.next().is_some() {
        return Err("unexpected text after the value".into());
    }
    Ok((name, labels, value))
}

/// Labels after the `{`; returns them and the text after the closing `}`.
fn parse_labels(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(r) = s.strip_prefix('}') {
            return Ok((labels, r));
        }
        let end = s.find(|c: char| !is_name_char(c)).unwrap_or(s.len());
        if end == 0 {
            return Err("a label needs a name".into());
        }
        let key = s[..end].to_string();
        s = s[end..].trim_start();
        s = s
            .strip_prefix('=')
            .ok_or("a label name is followed by `=`")?
            .trim_start();
        s = s.strip_prefix('"').ok_or("a label value is quoted")?;
        let mut value = String::new();
        let mut it = s.char_indices();
        let mut closed = None;
        while let Some((i, c)) = it.next() {
            match c {
                '"' => {
                    closed = Some(i);
                    break;
                }
                '\\' => match it.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    Some((_, other)) => {
                        value.push('\\');
                        value.push(other);
                    }
                    None => return Err("unterminated label value".into()),
                },
                c => value.push(c),
            }
        }
        let i = closed.ok_or("unterminated label value")?;
        s = s[i + 1..].trim_start();
        labels.push((key, value));
        if let Some(r) = s.strip_prefix(',') {
            s = r;
        } else if !s.starts_with('}') {
            return Err("labels are separated by `,` and closed by `}`".into());
        }
    }
}

fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse::<f64>().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/prometheus")
            .join(name);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    fn get<'a>(p: &'a Parsed, key: &str) -> &'a Sample {
        p.samples.iter().find(|s| s.key() == key).unwrap_or_else(|| {
            panic!(
                "no {key} in {:?}",
                p.samples.iter().map(|s| s.key()).collect::<Vec<_>>()
            )
        })
    }

    #[test]
    fn node_exporter_fixture() {
        let p = parse(&fixture("node_exporter.txt"));
        assert_eq!(p.bad_count, 0, "{:?}", p.bad_lines);
        let s = get(&p, "node_cpu_seconds_total{cpu=\"0\",mode=\"idle\"}");
        assert_eq!(s.value, 11_223_344.55);
        assert_eq!(s.kind, MetricType::Counter);
        assert!(s.is_cumulative());
        let l = get(&p, "node_load1");
        assert_eq!((l.value, l.kind), (11.9, MetricType::Gauge));
        assert!(!l.is_cumulative());
        let m = get(&p, "node_memory_MemAvailable_bytes");
        assert_eq!(m.value, 1.6e10);
    }

    #[test]
    fn histogram_and_summary_fixture() {
        let p = parse(&fixture("histogram_summary.txt"));
        assert_eq!(p.bad_count, 0, "{:?}", p.bad_lines);
        let b = get(&p, "http_request_duration_seconds_bucket{le=\"+Inf\",method=\"GET\"}");
        assert_eq!(b.family, "http_request_duration_seconds");
        assert_eq!(b.kind, MetricType::Histogram);
        assert!(b.is_cumulative());
        assert_eq!(
            get(&p, "http_request_duration_seconds_count{method=\"GET\"}").value,
            144320.0
        );
        let q = get(&p, "rpc_duration_seconds{quantile=\"0.99\"}");
        assert_eq!(q.kind, MetricType::Summary);
        assert!(!q.is_cumulative(), "a quantile is a gauge-like value");
        assert!(get(&p, "rpc_duration_seconds{quantile=\"0.5\"}").value.is_nan());
    }

    #[test]
    fn escapes_timestamps_and_odd_values() {
        let p = parse(&fixture("escapes.txt"));
        assert_eq!(p.bad_count, 2, "{:?}", p.bad_lines);
        let s = p
            .samples
            .iter()
            .find(|s| s.name == "msdos_file_access_time_seconds")
            .unwrap();
        assert_eq!(
            s.labels,
            vec![
                ("error".to_string(), "Cannot find file:\n\"FILE.TXT\"".to_string()),
                ("path".to_string(), "C:\\DIR\\FILE.TXT".to_string())
            ]
        );
        assert_eq!(s.value, 1.458255915e9);
        assert_eq!(get(&p, "metric_without_timestamp_and_labels").value, 12.47);
        assert_eq!(
            get(&p, "something_weird{problem=\"division by zero\"}").value,
            f64::INFINITY
        );
        assert_eq!(get(&p, "minus_inf").value, f64::NEG_INFINITY);
        assert_eq!(get(&p, "trailing_comma{a=\"1\"}").value, 3.0);
        assert_eq!(get(&p, "untyped_requests_total").kind, MetricType::Untyped);
        assert!(get(&p, "untyped_requests_total").is_cumulative());
        // The key escapes label values back, so a key is unambiguous.
        assert!(s.key().contains("C:\\\\DIR"));
        // Nothing after `# EOF` is read.
        assert!(p.samples.iter().all(|s| s.name != "after_eof"));
    }

    #[test]
    fn the_built_in_targets_metrics() {
        let p = parse(&fixture("stampede_target.txt"));
        assert_eq!(p.bad_count, 0, "{:?}", p.bad_lines);
        assert_eq!(
            get(&p, "stampede_target_connection_pool_in_use{pool=\"db\"}").value,
            100.0
        );
        assert_eq!(get(&p, "stampede_target_connection_pool_max{pool=\"db\"}").value, 100.0);
        let c = get(&p, "stampede_target_cache_hits_total{endpoint=\"get-lead\"}");
        assert!(c.is_cumulative());
    }

    #[test]
    fn garbage_never_panics() {
        for s in [
            "",
            "{",
            "}",
            "x{",
            "x{a",
            "x{a=",
            "x{a=\"",
            "x{a=\"\\",
            "x{a=\"1\"",
            "x{a=\"1\"} ",
            "x 1 2 3",
            "x{=\"1\"} 1",
            "1x 2",
            "x{a=\"1\"b=\"2\"} 1",
            "# TYPE",
            "# TYPE x",
            "\u{0}\u{ffff} 1",
            "x{a=\"é\"} 1e400",
        ] {
            let _ = parse(s);
        }
        assert_eq!(parse("x{a=\"1\"b=\"2\"} 1").bad_count, 1);
        assert_eq!(parse("x 1e400").samples[0].value, f64::INFINITY);
    }
}
