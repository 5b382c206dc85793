//! Findings: rules over the joint timeline of client seconds (`intervals.jsonl`) and server
//! samples (`monitors.jsonl`), each with its evidence (numbers and times), a priority and a
//! recommendation in plain words. Pure functions of the run directory, like the rest of
//! `analysis`, so `stampede summary` finds what `stampede run` found.
//!
//! This module holds what the rules share: the [`JointTimeline`], lookups on it, the latency
//! impact of a set of seconds, the per-phase server metrics, and [`RULES`], the one list every
//! rule is registered in. Each rule has a file of its own (docs/monitors.md has them in words):
//! - `saturation`: a pool at its limit (`*_in_use` = `*_max`, `*_busy_workers` =
//!   `*_max_workers`, PostgreSQL connections = `max_connections`), rated by what the client saw
//!   meanwhile (latency over its threshold or doubled, throughput flat while users grew), and
//!   the errors whose kind matches a saturated pool (timeouts, 503, 504 while it was full);
//! - `cpu`: CPU ≥ 90 % or load average ≥ cores while latency degraded → CPU-bound;
//! - `restarts`: process restarts → worker instability;
//! - `hit_ratio`: a cache hit ratio lower in the busier seconds than in the quieter ones;
//! - `locks`: PostgreSQL sessions waiting on locks while statements slowed;
//! - `drift`: latency degrading or memory suspected of leaking over a phase, as the phase's
//!   drift judged it (trend test, slope per hour);
//! - `generator`: the load generator, not the system, was the limit (its CPU, late timers);
//! - `configuration`: errors that come from configuration, not load.
//!
//! `statements.rs` is not a rule: it names how each SQL statement's latency changed during a
//! set of seconds, for the database rules (`saturation`'s PostgreSQL case and `locks`).

mod configuration;
mod cpu;
mod drift;
mod generator;
mod hit_ratio;
mod locks;
mod restarts;
mod saturation;
mod statements;

use crate::describe::SpecTerms;
use std::collections::BTreeMap;

use super::packed::{Packed, Packer};
use super::summary::{Drift, Finding, Generator, ServerMetric};
use crate::monitor::MonitorRecord;
use crate::recorder::{new_hist, Interval};
use crate::rundir::hist::Buckets;
use crate::rundir::ThresholdSpec;
use stampede_plan::{CmpOp, Metric};

/// A finding rule: it reads the joint timeline and adds what it finds, each finding with its
/// evidence, priority and recommendation.
pub trait Rule {
    fn check(&self, input: &Input<'_>, out: &mut Vec<Finding>);
}

/// Every finding rule, in the order they run. The findings are sorted by priority and time
/// afterwards, so this order only decides between findings of equal priority and time.
///
/// To add a rule: write `findings/<rule>.rs` with a unit struct that implements [`Rule`]
/// (everything it may read is in [`Input`]; the helpers here find the client seconds a server
/// sample falls in and the latency meanwhile), declare the module at the top of this file and
/// list the struct here. Nothing else changes: the summary, the terminal and every report
/// format show whatever findings the rules return.
pub const RULES: &[&dyn Rule] = &[
    &saturation::PoolSaturation,
    &cpu::CpuBound,
    &restarts::Restarts,
    &hit_ratio::HitRatio,
    &drift::Drift,
    &locks::LockWaits,
    &generator::GeneratorLimit,
    &configuration::ConfigurationErrors,
];

/// What a rule reads: the joint timeline, and the run facts that judge it.
pub struct Input<'a> {
    /// Client seconds, in time order.
    pub secs: &'a [Sec],
    /// Server samples by series.
    pub server: &'a Samples,
    /// The run's thresholds: a latency limit crossed meanwhile makes a finding critical.
    pub thresholds: &'a [ThresholdSpec],
    /// The load generator's cores, for a host monitor that does not report its own.
    pub cores: usize,
    /// The SQL steps' names, indexed by [`Sec::sql`].
    pub statements: &'a [String],
    /// Each judged phase's drift (analysis::drift), by phase name.
    pub drifts: &'a [(String, Drift)],
    /// The load generator's own health, when recorded.
    pub generator: Option<&'a Generator>,
}

/// Saturated for at least this many samples, so one busy scrape is not a finding.
const MIN_SATURATED_SAMPLES: usize = 2;

/// One second of the client side, all steps merged.
pub struct Sec {
    pub(crate) t: f64,
    pub(crate) dur: f64,
    pub(crate) phase: String,
    vus: u64,
    pub(crate) requests: u64,
    pub(crate) errors: u64,
    kinds: BTreeMap<String, u64>,
    /// All steps' latency this second, packed (merged into a histogram wherever a set of
    /// seconds is judged): a full histogram per second is what a day-long run could not hold.
    pub(crate) latency: Packed,
    /// Each SQL step's latency this second (the index of its name in
    /// [`JointTimeline::statements`], its non-zero buckets): what lets a database finding say
    /// which statement slowed, and by how much, while the database was short of something.
    /// Only SQL steps, and only their non-zero buckets, so an HTTP soak pays nothing for it.
    sql: Vec<(usize, Buckets)>,
}

/// Server series over the run: `monitor.series` → (t, value), in time order.
pub type Samples = BTreeMap<String, Vec<(f64, f64)>>;

/// The joint client/server timeline, folded one interval and one monitor record at a time
/// while the run directory is streamed (a soak's records never have to be held at once; what
/// is held is one packed merged histogram per client second and the server values).
#[derive(Default)]
pub struct JointTimeline {
    pub secs: Vec<Sec>,
    pub server: Samples,
    /// The SQL steps seen so far, in the order first seen.
    pub statements: Vec<String>,
    /// Merges each second's steps before packing it, reused from second to second.
    packer: Packer,
}

impl JointTimeline {
    /// Adds one client second: the steps of an interval merged.
    pub fn add_interval(&mut self, iv: &Interval) {
        let mut kinds = BTreeMap::new();
        let (mut requests, mut errors) = (0, 0);
        let mut sql = Vec::new();
        let rows = crate::recorder::Count::SqlRows.name();
        for s in &iv.steps {
            match &s.buckets {
                Some(b) => self.packer.add_buckets(&b.0),
                None => self.packer.add_hist(&s.latency),
            }
            requests += s.requests;
            errors += s.errors;
            for (k, n) in &s.kinds {
                *kinds.entry(k.clone()).or_default() += n;
            }
            if s.requests > 0 && (is_sql(s, &rows) || self.is_sql_part(iv, &s.name, &rows)) {
                let i = match self.statements.iter().position(|n| *n == s.name) {
                    Some(i) => i,
                    None => {
                        self.statements.push(s.name.clone());
                        self.statements.len() - 1
                    }
                };
                sql.push((i, s.latency_buckets()));
            }
        }
        self.secs.push(Sec {
            t: iv.t,
            dur: iv.dur,
            phase: iv.phase.clone(),
            vus: iv.vus,
            requests,
            errors,
            kinds,
            latency: self.packer.pack(),
            sql,
        });
    }

    /// A transaction's statement (`<step>:<statement>`) of an SQL step: its own samples carry
    /// no row counter, its step's do.
    fn is_sql_part(&self, iv: &Interval, name: &str, rows: &str) -> bool {
        let Some((step, _)) = name.rsplit_once(':') else {
            return false;
        };
        self.statements.iter().any(|n| n == step) || iv.steps.iter().any(|s| s.name == step && is_sql(s, rows))
    }

    /// Adds one monitor record's values (non-finite ones say nothing and are left out); calls
    /// `each` with every series key added to, and the series name as the monitor gave it.
    pub fn add_monitor(&mut self, r: &MonitorRecord, mut each: impl FnMut(&str, &str)) {
        for (k, v) in &r.series {
            if v.is_finite() {
                let key = format!("{}.{k}", r.monitor);
                each(&key, k);
                self.server.entry(key).or_default().push((r.t, *v));
            }
        }
    }

    /// Puts everything in time order (records may arrive out of order across monitors).
    pub fn finish(&mut self) {
        self.secs.sort_by(|a, b| a.t.total_cmp(&b.t));
        for v in self.server.values_mut() {
            v.sort_by(|a, b| a.0.total_cmp(&b.0));
        }
    }

    pub fn input<'a>(
        &'a self,
        thresholds: &'a [ThresholdSpec],
        cores: usize,
        drifts: &'a [(String, Drift)],
        generator: Option<&'a Generator>,
    ) -> Input<'a> {
        Input {
            secs: &self.secs,
            server: &self.server,
            thresholds,
            cores,
            statements: &self.statements,
            drifts,
            generator,
        }
    }
}

/// An SQL step's second: it counts rows (`sql_rows`, even 0 for an UPDATE), or PostgreSQL
/// answered with an SQLSTATE.
fn is_sql(s: &crate::rundir::StepInterval, rows: &str) -> bool {
    s.counters.contains_key(rows) || s.kinds.keys().any(|k| k.starts_with("sql_"))
}

/// The index of the client second a server sample at `t` falls in (seconds are sorted and do
/// not overlap: phases run one after the other). A binary search, so a 4-hour soak stays quick.
fn sec_index(secs: &[Sec], t: f64) -> Option<usize> {
    let i = secs.partition_point(|s| s.t <= t).checked_sub(1)?;
    (t < secs[i].t + secs[i].dur.max(1e-9)).then_some(i)
}

fn sec_at(secs: &[Sec], t: f64) -> Option<&Sec> {
    sec_index(secs, t).map(|i| &secs[i])
}

/// The client seconds the times fall in, each once, in time order.
fn secs_at(secs: &[Sec], times: impl Iterator<Item = f64>) -> Vec<&Sec> {
    let idx: std::collections::BTreeSet<usize> = times.filter_map(|t| sec_index(secs, t)).collect();
    idx.into_iter().map(|i| &secs[i]).collect()
}

/// The value of a time-sorted series sampled within half a second of `t`.
fn value_near(pts: &[(f64, f64)], t: f64) -> Option<f64> {
    let i = pts.partition_point(|p| p.0 < t);
    [i.checked_sub(1), Some(i)]
        .into_iter()
        .flatten()
        .filter_map(|j| pts.get(j))
        .filter(|p| (p.0 - t).abs() < 0.5)
        .min_by(|a, b| (a.0 - t).abs().total_cmp(&(b.0 - t).abs()))
        .map(|p| p.1)
}

/// Whether a server series (`monitor.series`) is memory whose growth may be a leak: the host's
/// used memory, a process's resident set, Redis's used memory, a Prometheus process's RSS.
pub(crate) fn is_memory(key: &str) -> bool {
    let name = key.split('{').next().unwrap_or(key);
    name.ends_with("mem_used_bytes")
        || name.ends_with("rss_bytes")
        || name.ends_with("used_memory_bytes")
        || name.ends_with("resident_memory_bytes")
}

/// Phase time ranges: name → (first t, last t + dur).
pub(crate) fn phase_ranges(secs: &[Sec]) -> Vec<(String, f64, f64)> {
    let mut out: Vec<(String, f64, f64)> = Vec::new();
    for s in secs {
        match out.iter_mut().find(|p| p.0 == s.phase) {
            Some(p) => {
                p.1 = p.1.min(s.t);
                p.2 = p.2.max(s.t + s.dur);
            }
            None => out.push((s.phase.clone(), s.t, s.t + s.dur)),
        }
    }
    out
}

fn phase_of(secs: &[Sec], t: f64) -> Option<String> {
    sec_at(secs, t).map(|s| s.phase.clone())
}

fn unit(series: &str) -> &'static str {
    let name = series.split('{').next().unwrap_or(series);
    if name.ends_with("_percent") {
        "%"
    } else if name.ends_with("_bytes") {
        "bytes"
    } else if name.ends_with("_per_s") {
        "/s"
    } else if name.ends_with("ratio") {
        "ratio"
    } else if name.ends_with("_s") || name.ends_with("_seconds") {
        "s"
    } else if name.contains("connection") || name.contains("clients") {
        "connections"
    } else if name.contains("workers") {
        "workers"
    } else {
        ""
    }
}

fn r3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Per phase, min/avg/max of every server series sampled during it.
pub fn server_metrics(secs: &[Sec], server: &Samples) -> BTreeMap<String, Vec<ServerMetric>> {
    let mut out: BTreeMap<String, Vec<ServerMetric>> = BTreeMap::new();
    for (phase, from, to) in phase_ranges(secs) {
        let mut list = Vec::new();
        for (name, pts) in server {
            let vals: Vec<f64> = pts.iter().filter(|(t, _)| *t >= from && *t < to).map(|p| p.1).collect();
            if vals.is_empty() {
                continue;
            }
            let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let avg = vals.iter().sum::<f64>() / vals.len() as f64;
            list.push(ServerMetric {
                name: name.clone(),
                unit: unit(name).into(),
                min: r3(min),
                avg: r3(avg),
                max: r3(max),
            });
        }
        out.insert(phase, list);
    }
    out
}

/// `t=42s`: how every finding and warning names a time.
pub(crate) fn fmt_t(t: f64) -> String {
    format!("t={t:.0}s")
}

fn ms(us: f64) -> String {
    format!("{:.0} ms", us / 1000.0)
}

/// Latency context for a set of client seconds versus the others.
struct Impact {
    p95_during_us: f64,
    p95_before_us: f64,
    /// A p95/p99/avg threshold limit crossed during, in ms.
    threshold: Option<(String, f64)>,
    rps_flat: Option<(f64, u64, u64)>,
}

impl Impact {
    /// The evidence line on latency meanwhile, e.g. "p95 latency 606 ms while saturated vs
    /// 12 ms otherwise (threshold `p95 < 100ms` crossed)"; None when nothing was measured.
    fn latency_line(&self, meanwhile: &str) -> Option<String> {
        if self.p95_during_us <= 0.0 {
            return None;
        }
        let mut line = format!("p95 latency {} {meanwhile}", ms(self.p95_during_us));
        if self.p95_before_us > 0.0 {
            line.push_str(&format!(" vs {} otherwise", ms(self.p95_before_us)));
        }
        if let Some((expr, _)) = &self.threshold {
            line.push_str(&format!(" (threshold `{expr}` crossed)"));
        }
        Some(line)
    }

    /// Latency over a threshold, or at least doubled against the other seconds.
    fn latency_degraded(&self) -> bool {
        self.threshold.is_some() || (self.p95_before_us > 0.0 && self.p95_during_us >= 2.0 * self.p95_before_us)
    }
}

fn p95(secs: &[&Sec]) -> f64 {
    let mut h = new_hist();
    for s in secs {
        s.latency.add_to(&mut h);
    }
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(0.95) as f64
    }
}

/// An upper limit on the whole run's p95, p99 or average latency: what a bottleneck's latency
/// is judged against.
fn latency_limit(t: &ThresholdSpec) -> bool {
    let metric = matches!(t.metric(), Some(Metric::Avg))
        || matches!(t.metric(), Some(Metric::Percentile(q)) if q == 95.0 || q == 99.0);
    t.step.is_none() && metric && matches!(t.op(), Some(CmpOp::Lt | CmpOp::Le))
}

fn impact(input: &Input<'_>, during: &[&Sec]) -> Impact {
    let mine: std::collections::HashSet<usize> = during.iter().map(|s| *s as *const Sec as usize).collect();
    let others: Vec<&Sec> = input
        .secs
        .iter()
        .filter(|s| s.requests > 0 && !mine.contains(&(*s as *const Sec as usize)))
        .collect();
    let p95_during_us = p95(during);
    let p95_before_us = p95(&others);
    let threshold = input
        .thresholds
        .iter()
        .filter(|t| latency_limit(t))
        .find(|t| p95_during_us / 1000.0 > t.value)
        .map(|t| (t.expr.clone(), t.value));
    // Throughput flat while users grew: the busiest seconds' rate compared between the first
    // and the last third of the saturated seconds.
    let rps_flat = (during.len() >= 6).then(|| {
        let n = during.len() / 3;
        let rate = |xs: &[&Sec]| xs.iter().map(|s| s.requests as f64 / s.dur.max(0.001)).sum::<f64>() / xs.len() as f64;
        let vus = |xs: &[&Sec]| xs.iter().map(|s| s.vus).sum::<u64>() / xs.len() as u64;
        let (a, b) = (&during[..n], &during[during.len() - n..]);
        (rate(a), rate(b), vus(a), vus(b))
    });
    let rps_flat = rps_flat
        .and_then(|(ra, rb, va, vb)| (vb as f64 >= va as f64 * 1.3 && rb <= ra * 1.1).then_some((rb.max(ra), va, vb)));
    Impact {
        p95_during_us,
        p95_before_us,
        threshold,
        rps_flat,
    }
}

/// Every finding of a run, most urgent first, then by time.
pub fn findings(input: &Input<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    for rule in RULES {
        rule.check(input, &mut out);
    }
    out.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(a.at_s.unwrap_or(0.0).total_cmp(&b.at_s.unwrap_or(0.0)))
    });
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A client second with `requests` requests of `lat_ms` each and these error kinds.
    pub(crate) fn sec(t: f64, phase: &str, requests: u64, lat_ms: u64, kinds: &[(&str, u64)]) -> Sec {
        let mut latency = new_hist();
        latency.record_n(lat_ms * 1000, requests.max(1)).unwrap();
        Sec {
            t,
            dur: 1.0,
            phase: phase.into(),
            vus: 10,
            requests,
            errors: kinds.iter().map(|(_, n)| n).sum(),
            kinds: kinds.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
            latency: Packed::of(&latency),
            sql: Vec::new(),
        }
    }

    /// What a rule reads, without thresholds.
    pub(crate) fn input<'a>(secs: &'a [Sec], server: &'a Samples) -> Input<'a> {
        Input {
            secs,
            server,
            thresholds: &[],
            cores: 1,
            statements: &[],
            drifts: &[],
            generator: None,
        }
    }

    /// Runs one rule alone.
    pub(crate) fn check(rule: &dyn Rule, secs: &[Sec], server: &Samples) -> Vec<Finding> {
        let mut out = Vec::new();
        rule.check(&input(secs, server), &mut out);
        out
    }

    #[test]
    fn labels() {
        assert_eq!(unit("host.cpu_percent"), "%");
        assert_eq!(unit("t.a_total_per_s{x=\"1\"}"), "/s");
    }
}
