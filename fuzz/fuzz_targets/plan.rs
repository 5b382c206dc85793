//! The plan loader on arbitrary bytes, through `load_str` with a fixed environment, `--var`s
//! and a data directory. It must never panic, must answer quickly, and whatever it accepts must
//! hold only finite, in-range numbers and header values that cannot split a request.

#![no_main]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use stampede_plan::template::{Part, Template};
use stampede_plan::{load_str, Load, LoadOptions, Plan, StepKind, Think};

/// No input under the size limit may take longer than this to load or refuse.
const SLOW: Duration = Duration::from_secs(1);
/// The longest duration a plan can hold (a year, with room for stages adding up).
const LONGEST: Duration = Duration::from_secs(400 * 86_400);

/// A data directory with a small CSV file, so that `data:` entries can load.
fn data_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stampede-fuzz-plan-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("data dir");
        std::fs::write(dir.join("u.csv"), "id,name\n1,a\r\nb\n2,\"x\ny\"\n").expect("data file");
        dir
    })
}

/// Values that must be refused wherever they land: non-finite numbers, a line break.
fn env(name: &str) -> Option<String> {
    match name {
        "RATE" => Some("NaN".into()),
        "INF" => Some("inf".into()),
        "CRLF" => Some("a\r\nX-Injected: 1".into()),
        "HOST" => Some("http://127.0.0.1:1".into()),
        "N" => Some("5".into()),
        _ => None,
    }
}

fn finite(x: f64, what: &str) {
    assert!(x.is_finite(), "{what} = {x}");
}

fn duration(d: Duration, what: &str) {
    assert!(d <= LONGEST, "{what} = {d:?}");
}

fn header_text(t: &Template, what: &str) {
    for part in &t.parts {
        if let Part::Lit(b) = part {
            header_bytes(b, what);
        }
    }
}

fn header_bytes(b: &[u8], what: &str) {
    assert!(b.iter().all(|&c| c >= 0x20 && c != 0x7f || c == b'\t'), "{what}: {b:?}");
}

fn think(t: &Think) {
    match *t {
        Think::Fixed(d) | Think::Exponential(d) => duration(d, "think"),
        Think::Uniform(a, b) => {
            duration(a, "think");
            duration(b, "think");
        }
    }
}

/// Every number of an accepted plan is finite and in range; header values are clean.
fn check(plan: &Plan) {
    for p in &plan.phases {
        duration(p.grace, "grace");
        for w in &p.mix {
            assert!(w.weight >= 1 && w.scenario < plan.scenarios.len(), "{w:?}");
        }
        match &p.load {
            Load::Closed { duration: d, .. } => duration(*d, "duration"),
            Load::Open { rate, duration: d, .. } => {
                finite(*rate, "rate");
                assert!(*rate > 0.0 && *rate <= 1e6, "rate {rate}");
                duration(*d, "duration");
            }
            Load::RampingVus { stages, .. } | Load::RampingRate { stages, .. } => {
                for s in stages {
                    finite(s.target, "stage target");
                    assert!((0.0..=1e6).contains(&s.target), "stage target {}", s.target);
                    duration(s.duration, "stage duration");
                }
                if let Load::RampingRate { start_rate, .. } = &p.load {
                    finite(*start_rate, "start_rate");
                    assert!((0.0..=1e6).contains(start_rate), "start_rate {start_rate}");
                }
            }
            Load::Iterations { max_duration, .. } => duration(*max_duration, "max_duration"),
        }
    }
    for t in &plan.thresholds {
        finite(t.value, &t.expr);
        assert!(t.value >= 0.0, "{} = {}", t.expr, t.value);
        duration(t.delay, "delay");
    }
    for (_, v) in &plan.http.headers {
        header_text(v, "http.headers");
    }
    duration(plan.http.timeout, "timeout");
    duration(plan.http.connect_timeout, "connect_timeout");
    for s in &plan.scenarios {
        if let Some(t) = &s.think {
            think(t);
        }
        for st in &s.steps {
            if let Some(t) = &st.think {
                think(t);
            }
            match &st.kind {
                StepKind::Pause(t) => think(t),
                StepKind::Http(h) => {
                    for (_, v) in &h.headers {
                        header_text(v, "headers");
                    }
                    if let Some(ct) = h.body.as_ref().and_then(|b| b.content_type.as_ref()) {
                        header_bytes(ct, "content_type");
                    }
                    if let Some(sign) = &h.sign {
                        header_bytes(sign.prefix.as_bytes(), "sign.prefix");
                    }
                    if let Some(t) = h.timeout {
                        duration(t, "step timeout");
                    }
                }
            }
        }
    }
    for m in &plan.monitors {
        duration(m.interval, "monitor interval");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    // Device and system files are real files to the loader (`data: { file: /dev/stdin }`
    // would wait forever): the fuzzer is kept to its own directory.
    if ["/dev", "/proc", "/sys", ".."].iter().any(|p| src.contains(p)) {
        return;
    }
    let opts = LoadOptions {
        vars: vec![
            ("tok".into(), "x\r\ny".into()),
            ("nan".into(), "NaN".into()),
            ("ten".into(), "10".into()),
        ],
        env: &env,
    };
    let t = thread_cpu_time();
    let result = load_str(src, "fuzz.yaml", data_dir(), &opts);
    let took = thread_cpu_time().saturating_sub(t);
    assert!(took < SLOW, "loading took {took:?} of CPU");
    match result {
        Ok(plan) => check(&plan),
        Err(e) => assert!(e.line >= 1 && e.column >= 1, "{e}"),
    }
});

/// CPU time of this thread: the oracle for "validate stays fast" must not fire when the fuzzer
/// merely waited for a core (a wall-clock bound reported 1.5 s for a 5 ms input on a busy
/// machine).
fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}
