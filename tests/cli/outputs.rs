//! Remote outputs end to end: `--output prometheus-rw=URL` into a real Prometheus (its
//! remote-write receiver, started by scripts/test-services.sh) queried back through its HTTP
//! API; `--output otlp=URL` decoded by the official OTLP protobuf definitions
//! (scripts/otlp-receiver.py); a receiver that is down or never answers; `stampede export`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::target::start_target;
use crate::*;

fn plan(url: &str, secs: u32) -> String {
    format!(
        "name: rw\ntarget: {url}\nscenarios:\n  s:\n    steps:\n      - {{ name: fixed, request: GET /fixed?ms=2 }}\n      - {{ name: missing, request: GET /nowhere }}\nphases:\n  - {{ name: load, scenario: s, vus: 3, duration: {secs}s }}\n"
    )
}

/// A label value no other test run carries, so runs in the one Prometheus stay apart.
fn unique(tag: &str) -> String {
    let ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{tag}-{}-{ns}", std::process::id())
}

fn encode_query(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query against Prometheus' HTTP API: its `data`.
fn query_data(prom: &str, q: &str) -> serde_json::Value {
    let authority = prom.trim_start_matches("http://");
    let mut s = TcpStream::connect(authority).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET /api/v1/query?query={} HTTP/1.0\r\nHost: {authority}\r\n\r\n",
        encode_query(q)
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let body = resp.split_once("\r\n\r\n").map(|x| x.1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{q}: {e}: {resp}"));
    assert_eq!(v["status"], "success", "{q}: {v}");
    v["data"].clone()
}

/// An instant query: the single result's value, if any.
fn query(prom: &str, q: &str) -> Option<f64> {
    let data = query_data(prom, q);
    let v = &data;
    let result = v["result"].as_array()?;
    assert!(result.len() <= 1, "{q}: one series expected: {v}");
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// Waits (a few seconds at most) for a query to give a value: what was pushed is queryable
/// once Prometheus has appended it.
fn query_eventually(prom: &str, q: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = query(prom, q) {
            return v;
        }
        assert!(Instant::now() < deadline, "no result for {q}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn total_requests(s: &serde_json::Value) -> u64 {
    s["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["requests"].as_u64().unwrap())
        .sum()
}

fn outputs_of(run: &std::path::Path) -> serde_json::Value {
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(run.join("meta.json")).unwrap()).unwrap();
    meta["outputs"].clone()
}

fn within(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance * b
}

#[test]
fn remote_write_counts_every_request_and_its_histograms_give_the_runs_p95() {
    let prom = env_url("STAMPEDE_TEST_PROMETHEUS_URL");
    let t = start_target("test");
    for histograms in ["classic", "native"] {
        let d = tmp();
        let run = unique(histograms);
        let spec = format!("prometheus-rw={prom}/api/v1/write,label=run={run},histograms={histograms}");
        let (o, dir) = run_plan(d.path(), &plan(&t.url, 3), &["--output", &spec]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let s = summary_json(&dir);
        let requests = total_requests(&s);
        let out = outputs_of(&dir);
        assert_eq!(out[0]["dropped"], 0, "{out}");
        assert_eq!(out[0]["sent"], out[0]["seconds"], "{out}");

        let counted = query_eventually(&prom, &format!("sum(stampede_requests_total{{run=\"{run}\"}})"));
        let errors = query_eventually(&prom, &format!("sum(stampede_errors_total{{run=\"{run}\"}})"));
        let by_404 = query_eventually(
            &prom,
            &format!("sum(stampede_requests_total{{run=\"{run}\",step=\"missing\",status=\"404\"}})"),
        );
        let step = step_named(&s, "fixed");
        let p95_ms = step["latency_ms"]["p95"].as_f64().unwrap();
        let q = match histograms {
            "classic" => format!(
                "histogram_quantile(0.95, sum by (le) (stampede_latency_seconds_bucket{{run=\"{run}\",step=\"fixed\"}}))"
            ),
            _ => format!("histogram_quantile(0.95, sum(stampede_latency_seconds{{run=\"{run}\",step=\"fixed\"}}))"),
        };
        let prom_p95_ms = query_eventually(&prom, &q) * 1000.0;
        eprintln!(
            "{histograms}: run {requests} requests, Prometheus {counted}; errors {errors} (404s {by_404}); p95 run {p95_ms} ms, Prometheus {prom_p95_ms:.3} ms"
        );
        assert_eq!(
            counted as u64, requests,
            "sum(stampede_requests_total) is the run's count"
        );
        let missing = step_named(&s, "missing");
        assert_eq!(errors as u64, s["phases"][0]["errors"].as_u64().unwrap());
        assert_eq!(by_404 as u64, missing["requests"].as_u64().unwrap());
        assert!(
            within(prom_p95_ms, p95_ms, 0.05),
            "{histograms}: histogram_quantile gave {prom_p95_ms} ms, the run's p95 is {p95_ms} ms"
        );
        if histograms == "classic" {
            // The bucket series a late, slower or faster request added carry their past: the
            // quantile of increases (every bucket's from the same first sample) is the same.
            let sel = format!("{{run=\"{run}\",step=\"fixed\"}}");
            let q =
                format!("histogram_quantile(0.95, sum by (le) (increase(stampede_latency_seconds_bucket{sel}[5m])))");
            let inc_p95_ms = query_eventually(&prom, &q) * 1000.0;
            let series = query_eventually(&prom, &format!("count(stampede_latency_seconds_bucket{sel})"));
            let mean_ms = query_eventually(
                &prom,
                &format!("sum(stampede_latency_seconds_sum{sel}) / sum(stampede_latency_seconds_count{sel})"),
            ) * 1000.0;
            let avg_ms = step["latency_ms"]["avg"].as_f64().unwrap();
            eprintln!("classic: p95 of increases {inc_p95_ms:.3} ms; {series} bucket series; mean {mean_ms:.4} ms, run avg {avg_ms} ms");
            assert!(within(inc_p95_ms, p95_ms, 0.05), "increase: {inc_p95_ms} vs {p95_ms}");
            assert!(
                series < 337.0,
                "only the buckets the latencies reached, not all 337: {series}"
            );
            assert!(
                within(mean_ms, avg_ms, 0.01),
                "_sum / _count {mean_ms} vs the run's avg {avg_ms}"
            );
        }
    }
}

/// `capacity --output`: each load level is a phase, pushed as a run's are.
#[test]
fn a_capacity_search_pushes_every_level() {
    let prom = env_url("STAMPEDE_TEST_PROMETHEUS_URL");
    let t = start_target("test");
    let d = tmp();
    let run = unique("capacity");
    let (mut args, out_dir) = crate::capacity::quick_search(d.path(), &t.url);
    let spec = format!("prometheus-rw={prom}/api/v1/write,label=run={run}");
    args.extend(["--output".to_string(), spec]);
    let o = stampede(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary_json(&out_dir);
    let requests = total_requests(&s);
    let levels = s["phases"].as_array().unwrap().len();
    let counted = query_eventually(&prom, &format!("sum(stampede_requests_total{{run=\"{run}\"}})"));
    let phases = query_eventually(
        &prom,
        &format!("count(count by (phase) (stampede_requests_total{{run=\"{run}\"}}))"),
    );
    eprintln!("capacity: {levels} levels, {requests} requests; Prometheus {counted} in {phases} phases");
    assert!(levels >= 2, "{levels} levels");
    assert_eq!(counted as u64, requests);
    assert_eq!(phases as usize, levels);
    assert_eq!(outputs_of(&out_dir)[0]["dropped"], 0);
}

/// `scripts/otlp-receiver.py` on a free port, decoding into `out`.
fn otlp_receiver(out: &std::path::Path) -> (Child, u16) {
    let python = env_url("STAMPEDE_TEST_OTLP_PYTHON");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/otlp-receiver.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the OTLP receiver");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let port = first
        .trim()
        .strip_prefix("listening on ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("receiver said {first:?}"));
    (child, port)
}

/// The value of an OTLP attribute list's `key`.
fn attr<'a>(point: &'a serde_json::Value, key: &str) -> Option<&'a str> {
    point["attributes"].as_array()?.iter().find(|a| a["key"] == key)?["value"]["stringValue"].as_str()
}

#[test]
fn otlp_metrics_decode_with_the_official_definitions_and_add_up() {
    let t = start_target("test");
    let d = tmp();
    let decoded = d.path().join("otlp.jsonl");
    let (mut receiver, port) = otlp_receiver(&decoded);
    let spec = format!("otlp=http://127.0.0.1:{port},label=deployment.environment=test");
    let (o, dir) = run_plan(d.path(), &plan(&t.url, 3), &["--output", &spec]);
    let _ = receiver.kill();
    let _ = receiver.wait();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let s = summary_json(&dir);
    let out = outputs_of(&dir);
    assert_eq!(out[0]["dropped"], 0, "{out}");

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&decoded)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.iter().all(|l| l.get("error").is_none()), "undecodable: {lines:?}");
    assert!(lines.iter().all(|l| l["content_type"] == "application/x-protobuf"));
    // The last push of the last request: the run's totals.
    let last = lines.last().unwrap()["request"]["resourceMetrics"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(attr(&last["resource"], "service.name"), Some("stampede"));
    assert_eq!(attr(&last["resource"], "deployment.environment"), Some("test"));
    let metrics = last["scopeMetrics"][0]["metrics"].as_array().unwrap();
    let metric = |name: &str| {
        metrics
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
    };

    let requests = metric("stampede.requests");
    assert_eq!(requests["sum"]["isMonotonic"], true);
    assert_eq!(
        requests["sum"]["aggregationTemporality"],
        "AGGREGATION_TEMPORALITY_CUMULATIVE"
    );
    let counted: u64 = requests["sum"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["asInt"].as_str().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, total_requests(&s));

    let latency = metric("stampede.latency");
    assert_eq!(latency["unit"], "s");
    let point = latency["exponentialHistogram"]["dataPoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| attr(p, "step") == Some("fixed"))
        .unwrap();
    let step = step_named(&s, "fixed");
    let count: u64 = point["count"].as_str().unwrap().parse().unwrap();
    assert_eq!(count, step["requests"].as_u64().unwrap());
    let scale = point["scale"].as_i64().unwrap();
    assert_eq!(scale, 4);
    // The p95 read from the buckets (the upper bound of the bucket holding it).
    let offset = point["positive"]["offset"].as_i64().unwrap_or(0);
    let counts: Vec<u64> = point["positive"]["bucketCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(counts.iter().sum::<u64>(), count, "every latency in a positive bucket");
    let rank = (0.95 * count as f64).ceil() as u64;
    let (mut cum, mut p95_s) = (0, 0.0);
    for (i, c) in counts.iter().enumerate() {
        cum += c;
        if cum >= rank {
            p95_s = 2f64.powf((offset + i as i64 + 1) as f64 / 16.0);
            break;
        }
    }
    let p95_ms = step["latency_ms"]["p95"].as_f64().unwrap();
    eprintln!(
        "OTLP: {counted} requests; p95 bucket bound {:.3} ms, run p95 {p95_ms} ms",
        p95_s * 1000.0
    );
    assert!(within(p95_s * 1000.0, p95_ms, 0.05), "{} vs {p95_ms}", p95_s * 1000.0);
}

#[test]
fn a_receiver_that_is_down_or_never_answers_costs_the_run_nothing_and_is_reported() {
    let t = start_target("test");
    // One that refuses connections, one that accepts and never answers.
    let refused = closed_port();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in silent.incoming().take(64) {
            held.push(c);
        }
    });
    for addr in [refused, silent_addr] {
        let d = tmp();
        let spec = format!("prometheus-rw=http://{addr}/api/v1/write");
        let started = Instant::now();
        let (o, dir) = run_plan(d.path(), &plan(&t.url, 3), &["--output", &spec]);
        let took = started.elapsed();
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let out = outputs_of(&dir);
        eprintln!("{addr}: {:.1} s for a 3 s phase; {out}", took.as_secs_f64());
        // 3 s of load, the summary and reports, and at most 1 s of draining.
        assert!(took < Duration::from_secs(7), "took {took:?}");
        assert!(out[0]["seconds"].as_u64().unwrap() >= 3, "{out}");
        assert_eq!(out[0]["sent"], 0, "{out}");
        assert_eq!(out[0]["dropped"], out[0]["seconds"], "{out}");
        assert!(out[0]["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{out}");
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(stderr.contains("not delivered"), "{stderr}");
        assert!(total_requests(&summary_json(&dir)) > 100, "the load went on");
    }
}

#[test]
fn export_sends_a_finished_run_with_the_times_it_was_measured() {
    let prom = env_url("STAMPEDE_TEST_PROMETHEUS_URL");
    let t = start_target("test");
    let d = tmp();
    let (o, dir) = run_plan(d.path(), &plan(&t.url, 2), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let requests = total_requests(&summary_json(&dir));
    let run = unique("export");
    let to = format!("prometheus-rw={prom}/api/v1/write,label=run={run}");
    let e = stampede(&["export", dir.to_str().unwrap(), "--to", &to]);
    assert_eq!(e.status.code(), Some(0), "{}", text(&e));
    assert!(String::from_utf8_lossy(&e.stdout).contains("exported"), "{}", text(&e));
    let counted = query_eventually(&prom, &format!("sum(stampede_requests_total{{run=\"{run}\"}})"));
    assert_eq!(counted as u64, requests);
    // The samples carry the run's own times: one per second of the run (and one at the
    // phase's end), the first at the end of its first second.
    let raw = query_data(
        &prom,
        &format!("stampede_requests_total{{run=\"{run}\",step=\"fixed\",status=\"200\"}}[1h]"),
    );
    let times: Vec<f64> = raw["result"][0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v[0].as_f64().unwrap())
        .collect();
    let seconds = std::fs::read_to_string(dir.join("intervals.jsonl"))
        .unwrap()
        .lines()
        .count();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join("meta.json")).unwrap()).unwrap();
    let started = rfc3339_s(meta["started_at"].as_str().unwrap());
    eprintln!("exported {requests} requests; samples at {times:?}; run started {started}");
    assert_eq!(times.len(), seconds, "a sample per second of the run");
    assert!(
        times[0] > started + 0.9 && times[0] < started + 1.5,
        "{times:?} vs {started}"
    );
    assert!(times.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] < 1.5), "{times:?}");

    // A receiver that refuses: exit 1, said; not a run directory: exit 2.
    let down = stampede(&[
        "export",
        dir.to_str().unwrap(),
        "--to",
        &format!("prometheus-rw=http://{}/w", closed_port()),
    ]);
    assert_eq!(down.status.code(), Some(1), "{}", text(&down));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("refused"),
        "{}",
        text(&down)
    );
    let not_run = stampede(&["export", d.path().to_str().unwrap(), "--to", &to]);
    assert_eq!(not_run.status.code(), Some(2), "{}", text(&not_run));
}

#[test]
fn a_bad_output_is_refused_before_anything_runs() {
    let d = tmp();
    for (spec, says) in [
        ("graphite=http://127.0.0.1:1", "prometheus-rw=URL"),
        ("prometheus-rw=ftp://127.0.0.1/x", "not an http"),
        ("prometheus-rw=http://u:p@127.0.0.1/x", "credentials"),
        ("prometheus-rw=http://127.0.0.1/x,label=phase=a", "cannot be a label"),
        ("otlp=http://127.0.0.1/x,histograms=native", "not an option"),
        ("prometheus-rw=http://127.0.0.1/x,header=X-Bad", "NAME:VALUE"),
    ] {
        let (o, dir) = run_plan(d.path(), &plan("http://127.0.0.1:1", 1), &["--output", spec]);
        assert_eq!(o.status.code(), Some(2), "{spec}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(says),
            "{spec}: {}",
            text(&o)
        );
        assert!(!dir.exists(), "{spec}: nothing written");
    }
}

fn rfc3339_s(t: &str) -> f64 {
    stampede::rundir::time::parse_rfc3339_ms(t).unwrap() as f64 / 1000.0
}
