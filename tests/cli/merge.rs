//! Distributed runs: shares run as separate processes with one `--start-at`, then
//! `stampede merge`d into one run judged as a whole. Loopback only, except the multi-host test,
//! whose traffic stays in network namespaces it makes itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime};

use stampede::rundir::{for_each_interval, hist::new_growable};

use crate::*;

/// A plan whose one step waits `${DELAY}` ms on the built-in target (a `--var` per share, so
/// shares can see different latencies while running one plan file).
fn plan(thresholds: &str) -> String {
    format!(
        "name: scale\ntarget: ${{BASE_URL}}\nscenarios:\n  s:\n    steps:\n      - {{ name: w, request: \"GET /fixed?ms=${{DELAY:-5}}\" }}\nphases:\n  - {{ name: p, scenario: s, vus: 3, duration: 2s }}\nthresholds:\n{thresholds}"
    )
}

/// A start 1.5 s from now as RFC 3339, one absolute instant for every share.
fn common_start() -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        + 1500;
    let secs = ms / 1000;
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = stampede::engine::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        ms % 1000
    )
}

/// Runs share `i` of `delays.len()` of `plan` per entry at once, each as its own process
/// with `DELAY` set from `delays`, `prefix` put before the binary (e.g. `ip netns exec NS`);
/// returns each process's output and run directory.
fn run_shares(
    dir: &Path,
    plan: &Path,
    url: &str,
    delays: &[u32],
    prefix: &dyn Fn(usize) -> Vec<String>,
) -> Vec<(Output, PathBuf)> {
    run_shares_in(dir, plan, url, delays, prefix, None)
}

/// [`run_shares`], with `--share-dir` instead of `--out` when `shared` is given.
fn run_shares_in(
    dir: &Path,
    plan: &Path,
    url: &str,
    delays: &[u32],
    prefix: &dyn Fn(usize) -> Vec<String>,
    shared: Option<&Path>,
) -> Vec<(Output, PathBuf)> {
    let at = common_start();
    let n = delays.len();
    let children: Vec<(Child, PathBuf)> = delays
        .iter()
        .enumerate()
        .map(|(i, delay)| {
            let out = match shared {
                Some(s) => s.join(format!("share-{i}")),
                None => dir.join(format!("share{i}")),
            };
            let pre = prefix(i);
            let mut c = match pre.split_first() {
                Some((p, rest)) => {
                    let mut c = Command::new(p);
                    c.args(rest).arg(env!("CARGO_BIN_EXE_stampede"));
                    c
                }
                None => Command::new(env!("CARGO_BIN_EXE_stampede")),
            };
            c.env_remove("BASE_URL")
                .env_remove("GITHUB_STEP_SUMMARY")
                .args(["run", plan.to_str().unwrap(), "--quiet", "--workers", "1"])
                .args(["--segment", &format!("{i}/{n}"), "--start-at", &at])
                .args(["--var", &format!("BASE_URL={url}"), "--var", &format!("DELAY={delay}")])
                .args(match shared {
                    Some(s) => ["--share-dir".into(), s.display().to_string()],
                    None => ["--out".into(), out.display().to_string()],
                })
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            (c.spawn().expect("spawn a share"), out)
        })
        .collect();
    children
        .into_iter()
        .map(|(c, out)| (c.wait_with_output().unwrap(), out))
        .collect()
}

fn merge(dirs: &[&Path], out: &Path) -> Output {
    let mut args = vec!["merge".to_string()];
    args.extend(dirs.iter().map(|d| d.display().to_string()));
    args.extend(["--out".to_string(), out.display().to_string()]);
    bin().args(&args).output().unwrap()
}

/// Requests the target answered on its `fixed` endpoint, from its own counters.
fn target_saw(url: &str) -> u64 {
    let stats: serde_json::Value = serde_json::from_str(&crate::target::fetch(url, "/_admin/stats")).unwrap();
    stats["endpoints"]["fixed"]["requests"].as_u64().unwrap()
}

/// The p-th percentile in ms of one histogram made by adding every second of every share:
/// the union of the raw samples, as the summary would compute it.
fn union_percentile(shares: &[PathBuf], q: f64) -> f64 {
    let mut h = new_growable();
    for s in shares {
        for_each_interval(s, |iv| {
            for st in &iv.steps {
                st.add_latency_to(&mut h);
            }
        })
        .unwrap();
    }
    (h.value_at_quantile(q) as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn lat(s: &serde_json::Value, p: &str) -> f64 {
    step0(s)["latency_ms"][p].as_f64().unwrap()
}

fn threshold(s: &serde_json::Value, expr: &str) -> bool {
    s["phases"][0]["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["expr"] == expr)
        .unwrap_or_else(|| panic!("no threshold {expr}: {s}"))["passed"]
        .as_bool()
        .unwrap()
}

/// Three shares at 1, 10 and 100 ms against one target: the merged run counts what the target
/// answered, its percentiles are those of every sample together (far from the average of the
/// shares' percentiles), and its thresholds, judged on the merged numbers, give the exit code:
/// the slow share fails `p95 < 80ms` alone, the whole passes it; the whole fails `p99 < 80ms`.
#[test]
fn three_shares_merge_into_one_run_judged_as_a_whole() {
    let t = crate::target::start_target("test");
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan("  - p95 < 80ms\n  - p99 < 80ms\n"));
    let shares = run_shares(d.path(), &plan_path, &t.url, &[1, 10, 100], &|_| Vec::new());
    let codes: Vec<Option<i32>> = shares.iter().map(|(o, _)| o.status.code()).collect();
    for (o, _) in &shares {
        assert!(matches!(o.status.code(), Some(0 | 1)), "{}", text(o));
    }
    assert_eq!(codes, [Some(0), Some(0), Some(1)], "only the 100 ms share fails alone");
    let dirs: Vec<PathBuf> = shares.iter().map(|(_, d)| d.clone()).collect();
    for (i, dir) in dirs.iter().enumerate() {
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("meta.json")).unwrap()).unwrap();
        assert_eq!(meta["segment"], serde_json::json!({ "index": i, "count": 3 }));
        assert_eq!(meta["plan_sha256"].as_str().unwrap().len(), 64);
        assert!(meta["start_at"].is_string());
    }

    let out = d.path().join("merged");
    let refs: Vec<&Path> = dirs.iter().map(|p| p.as_path()).collect();
    // In CI the merged run's summary goes to the job's page, judged on the merged data.
    let step_summary = d.path().join("step_summary.md");
    let m = bin()
        .args([
            "merge",
            refs[2].to_str().unwrap(),
            refs[0].to_str().unwrap(),
            refs[1].to_str().unwrap(),
        ])
        .args(["--out", out.to_str().unwrap()])
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .output()
        .unwrap();
    assert_eq!(m.status.code(), Some(1), "p99 fails on the merged run: {}", text(&m));
    let md = std::fs::read_to_string(&step_summary).unwrap();
    assert!(
        md.contains("### Verdict: FAILED") && md.contains("| p | p99 < 80ms |"),
        "{md}"
    );
    assert!(
        !String::from_utf8_lossy(&m.stderr).contains("common --start-at"),
        "{}",
        text(&m)
    );

    let s = summary_json(&out);
    let shares_s: Vec<serde_json::Value> = dirs.iter().map(|d| summary_json(d)).collect();
    let requests = s["phases"][0]["requests"].as_u64().unwrap();
    let sum: u64 = shares_s
        .iter()
        .map(|x| x["phases"][0]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(requests, sum);
    assert_eq!(
        requests,
        target_saw(&t.url),
        "the merged run counts what the target answered"
    );
    assert_eq!(s["phases"][0]["errors"], 0);
    assert_eq!(s["phases"][0]["vus_max"], 3, "VUs are summed across shares");

    for (p, q) in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99)] {
        assert_eq!(lat(&s, p), union_percentile(&dirs, q), "{p} of the union of samples");
    }
    let mean_p50 = shares_s.iter().map(|x| lat(x, "p50")).sum::<f64>() / 3.0;
    println!(
        "merged: {requests} requests (target saw {}), p50 {} ms, p95 {} ms, p99 {} ms; the shares' p50s {:?} (mean {mean_p50:.3}); share exits {codes:?}, merged exit 1",
        target_saw(&t.url),
        lat(&s, "p50"),
        lat(&s, "p95"),
        lat(&s, "p99"),
        shares_s.iter().map(|x| lat(x, "p50")).collect::<Vec<_>>()
    );
    assert!(
        lat(&s, "p50") < mean_p50 / 3.0,
        "p50 {} vs the shares' mean {mean_p50}",
        lat(&s, "p50")
    );
    assert!(!threshold(&shares_s[2], "p95 < 80ms"));
    assert!(threshold(&s, "p95 < 80ms"), "the slow share is 2% of the samples: {s}");
    assert!(!threshold(&s, "p99 < 80ms"));
    assert_eq!(s["verdict"], "failed");

    // An ordinary run directory: report and compare read it unchanged, and list the generators.
    let md_path = d.path().join("again.md");
    let r = stampede(&[
        "report",
        out.to_str().unwrap(),
        "--format",
        "md",
        "-o",
        md_path.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    let md = std::fs::read_to_string(&md_path).unwrap();
    assert_eq!(
        md,
        std::fs::read_to_string(out.join("report.md")).unwrap(),
        "rebuilt alike"
    );
    assert!(md.contains("## Generators"), "{md}");
    for i in 0..3 {
        assert!(md.contains(&format!("| {i}/3 |")), "{md}");
    }
    let c = stampede(&["compare", dirs[0].to_str().unwrap(), out.to_str().unwrap(), "--json"]);
    assert_eq!(c.status.code(), Some(0), "{}", text(&c));
    // Merging again into the same place is refused: nothing is overwritten.
    let again = merge(&refs, &out);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
}

/// Inputs that are not one complete run are refused with exit 2, naming what is wrong, and
/// leave nothing behind.
#[test]
fn shares_that_are_not_one_run_are_refused() {
    let t = crate::target::start_target("test");
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan("  - p95 < 1s\n"));
    let shares = run_shares(d.path(), &plan_path, &t.url, &[1, 1, 1], &|_| Vec::new());
    for (o, _) in &shares {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    let [a, b, c] = [0, 1, 2].map(|i| shares[i].1.clone());
    // The same plan with one more threshold: another plan_sha256.
    let other_dir = d.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other_plan = write(&other_dir, "plan.yaml", &plan("  - p95 < 1s\n  - p99 < 2s\n"));
    let other = run_shares(&other_dir, &other_plan, &t.url, &[1], &|_| Vec::new());
    // A copy of share 2 whose meta.json says another stampede wrote it.
    let old = d.path().join("old-version");
    std::fs::create_dir(&old).unwrap();
    for f in ["meta.json", "plan.json", "intervals.jsonl"] {
        std::fs::copy(c.join(f), old.join(f)).unwrap();
    }
    let meta = std::fs::read_to_string(old.join("meta.json")).unwrap();
    let version = format!("\"tool_version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(meta.contains(&version), "{meta}");
    std::fs::write(
        old.join("meta.json"),
        meta.replace(&version, "\"tool_version\": \"0.0.1-old\""),
    )
    .unwrap();

    let out = d.path().join("merged");
    let nowhere = d.path().join("nowhere");
    let cases: Vec<(Vec<&Path>, &str)> = vec![
        (vec![&a, &b], "segment 2 of 3 missing"),
        (vec![&a, &c], "segment 1 of 3 missing"),
        (vec![&a, &b, &b, &c], "segment 1/3 is given twice"),
        (vec![&a, &b, &other[0].1], "ran another plan"),
        (vec![&a, &b, &old], "0.0.1-old"),
        (vec![&a, &b, &nowhere], "no meta.json"),
    ];
    for (dirs, says) in cases {
        let m = merge(&dirs, &out);
        assert_eq!(m.status.code(), Some(2), "{dirs:?}: {}", text(&m));
        assert!(
            String::from_utf8_lossy(&m.stderr).contains(says),
            "{dirs:?}: {}",
            text(&m)
        );
        assert!(!out.exists(), "nothing is written");
        let left: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("merging"))
            .collect();
        assert!(left.is_empty(), "no staging directory is left: {left:?}");
    }
    let ok = merge(&[&a, &b, &c], &out);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
}

/// With `--share-dir`, `abort_on_fail` judges every share's numbers together: three shares of
/// about 45 requests/s each pass `rps < 100` alone, the whole (about 135/s) does not, so all
/// three stop early as aborted.
#[test]
fn abort_on_fail_judges_every_share_together_with_a_share_dir() {
    let t = crate::target::start_target("test");
    let d = tmp();
    let text_plan =
        plan("  - { check: rps < 100, abort_on_fail: true, delay: 2s }\n").replace("duration: 2s", "duration: 20s");
    let plan_path = write(d.path(), "plan.yaml", &text_plan);
    let shared = d.path().join("shares");
    let started = Instant::now();
    let shares = run_shares_in(
        d.path(),
        &plan_path,
        &t.url,
        &[20, 20, 20],
        &|_| Vec::new(),
        Some(&shared),
    );
    let took = started.elapsed();
    let mut own_rps = Vec::new();
    for (o, dir) in &shares {
        assert_eq!(o.status.code(), Some(1), "{}", text(o));
        let s = summary_json(dir);
        assert_eq!(s["status"], "aborted", "{s}");
        own_rps.push(s["phases"][0]["rps"].as_f64().unwrap());
    }
    println!("shares' own rps {own_rps:?}, all stopped after {took:?}");
    assert!(own_rps.iter().all(|r| *r < 100.0), "alone, each passes: {own_rps:?}");
    assert!(took < Duration::from_secs(12), "stopped early: {took:?}");
    let stderr: String = shares
        .iter()
        .map(|(o, _)| String::from_utf8_lossy(&o.stderr).into_owned())
        .collect();
    assert!(stderr.contains("rps < 100 (all 3 shares)"), "{stderr}");
    let dirs: Vec<&Path> = shares.iter().map(|(_, d)| d.as_path()).collect();
    let m = merge(&dirs, &d.path().join("merged"));
    assert_eq!(m.status.code(), Some(1), "{}", text(&m));
    assert_eq!(summary_json(&d.path().join("merged"))["status"], "aborted");
}

/// Network namespaces made (and removed, even on failure) by the multi-host test.
struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let o = Command::new("ip").args(args).output().map_err(|e| format!("ip: {e}"))?;
    if o.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        ))
    }
}

/// A target namespace with a bridge at 10.77.0.1/24, and one namespace per generator with a
/// veth into the bridge at 10.77.0.(10+i): a private network of the test's own.
fn make_network(tag: &str, generators: usize, ns: &mut Netns) -> Result<(), String> {
    let t = format!("{tag}t");
    ip(&["netns", "add", &t])?;
    ns.names.push(t.clone());
    ip(&["-n", &t, "link", "set", "lo", "up"])?;
    ip(&["-n", &t, "link", "add", "br0", "type", "bridge"])?;
    ip(&["-n", &t, "addr", "add", "10.77.0.1/24", "dev", "br0"])?;
    ip(&["-n", &t, "link", "set", "br0", "up"])?;
    for i in 0..generators {
        let g = format!("{tag}g{i}");
        ip(&["netns", "add", &g])?;
        ns.names.push(g.clone());
        let (inner, outer) = (format!("{tag}v{i}"), format!("{tag}b{i}"));
        ip(&["link", "add", &inner, "type", "veth", "peer", "name", &outer])?;
        ip(&["link", "set", &inner, "netns", &g])?;
        ip(&["link", "set", &outer, "netns", &t])?;
        ip(&["-n", &t, "link", "set", &outer, "master", "br0", "up"])?;
        ip(&["-n", &g, "link", "set", "lo", "up"])?;
        ip(&[
            "-n",
            &g,
            "addr",
            "add",
            &format!("10.77.0.{}/24", 10 + i),
            "dev",
            &inner,
        ])?;
        ip(&["-n", &g, "link", "set", &inner, "up"])?;
    }
    Ok(())
}

/// Three generators on three "hosts" (network namespaces, each its own hostname) and the
/// target on a fourth, over a bridge: merged into one run whose generators are the three hosts.
#[test]
fn a_run_over_several_hosts_merges_into_one() {
    let tag = format!("stp{}", std::process::id() % 100_000);
    let mut ns = Netns { names: Vec::new() };
    if let Err(e) = make_network(&tag, 3, &mut ns) {
        println!("SKIPPED a_run_over_several_hosts_merges_into_one: network namespaces cannot be made here ({e})");
        return;
    }
    let mut target = Command::new("ip");
    target
        .args(["netns", "exec", &format!("{tag}t")])
        .arg(env!("CARGO_BIN_EXE_stampede"))
        .args(["target", "--profile", "test", "--listen", "10.77.0.1:0"]);
    let target = crate::target::target_from(target);
    let url = target.url.clone();
    assert!(url.starts_with("http://10.77.0.1:"), "{url}");

    let d = tmp();
    // Each generator samples its own host: kept per source in the merged run.
    let text_plan = plan("  - p95 < 1s\n").replace("phases:\n", "monitors:\n  - { host: true }\nphases:\n");
    let plan_path = write(d.path(), "plan.yaml", &text_plan);
    let started = Instant::now();
    let hosts = |i: usize| -> Vec<String> {
        // Each generator its own hostname too (a UTS namespace), as on separate machines.
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            format!("{tag}g{i}"),
            "unshare".into(),
            "--uts".into(),
            "sh".into(),
            "-c".into(),
            format!("hostname gen-{i} && exec \"$0\" \"$@\""),
        ]
    };
    let shares = run_shares(d.path(), &plan_path, &url, &[2, 2, 2], &hosts);
    for (o, _) in &shares {
        assert_eq!(o.status.code(), Some(0), "{}", text(o));
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    let dirs: Vec<&Path> = shares.iter().map(|(_, d)| d.as_path()).collect();
    let out = d.path().join("merged");
    let m = merge(&dirs, &out);
    assert_eq!(m.status.code(), Some(0), "{}", text(&m));
    let s = summary_json(&out);
    let requests = s["phases"][0]["requests"].as_u64().unwrap();
    // The target is reachable only inside the namespaces: ask it from one.
    let fetch = format!(
        "import urllib.request; print(urllib.request.urlopen('{url}/_admin/stats', timeout=5).read().decode())"
    );
    let stats = Command::new("ip")
        .args(["netns", "exec", &format!("{tag}g0"), "python3", "-c", &fetch])
        .output()
        .unwrap();
    assert!(stats.status.success(), "{}", text(&stats));
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(requests, stats["endpoints"]["fixed"]["requests"].as_u64().unwrap());
    assert!(requests > 100, "{s}");
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("meta.json")).unwrap()).unwrap();
    let gens: Vec<&str> = meta["generators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["host"].as_str().unwrap())
        .collect();
    assert_eq!(gens, ["gen-0", "gen-1", "gen-2"]);
    assert_eq!(meta["host"], "gen-0, gen-1, gen-2");
    let per_gen: u64 = meta["generators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(per_gen, requests);
    let monitors = std::fs::read_to_string(out.join("monitors.jsonl")).unwrap();
    for g in ["gen-0", "gen-1", "gen-2"] {
        assert!(monitors.contains(&format!("\"monitor\":\"host@{g}\"")), "{monitors}");
    }
    let server: Vec<&str> = s["phases"][0]["server"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .filter(|n| n.ends_with(".cpu_percent"))
        .collect();
    assert_eq!(server.len(), 3, "one CPU series per generator: {server:?}");
    println!(
        "3 generators in network namespaces ({gens:?}) against {url}: merged {requests} requests, the target answered {}",
        stats["endpoints"]["fixed"]["requests"]
    );
    drop(target);
    drop(ns);
}

/// A start that cannot be kept is refused before anything is sent or written (exit 2).
#[test]
fn a_bad_start_at_is_refused_before_anything_runs() {
    let d = tmp();
    let plan_path = write(d.path(), "plan.yaml", &plan("  - p95 < 1s\n"));
    let out = d.path().join("run");
    for (bad, says) in [
        ("2020-01-01T00:00:00Z", "s ago"),
        ("+soon", "not a duration"),
        ("07:00", "RFC 3339"),
        ("2999-01-01T00:00:00Z", "ahead"),
    ] {
        let o = stampede(&[
            "run",
            plan_path.to_str().unwrap(),
            "--var",
            "BASE_URL=http://127.0.0.1:9",
            "--start-at",
            bad,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
        assert!(String::from_utf8_lossy(&o.stderr).contains(says), "{bad}: {}", text(&o));
        assert!(!out.exists());
    }
    let o = stampede(&[
        "run",
        plan_path.to_str().unwrap(),
        "--share-dir",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "--share-dir needs --segment: {}", text(&o));
}
