//! The one pass over a run directory: its intervals and monitor records are streamed once, each
//! folded into everything that needs it (phase aggregates, the findings' joint timeline, the
//! chart timeline, the charted server series, the per-second values), and the summary, the
//! timeline and the server series come out together. `stampede run`, `stampede summary`, `stampede compare`, the run
//! history and every report read a run this way, so they cannot disagree.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;

use super::aggregate::{aggregate_into, PhaseAgg};
use super::findings::{self, fmt_t};
use super::seconds::Seconds;
use super::series::{self, ServerSeries, Timeline, TimelineBuilder};
use super::summary::{summarize_aggs, Capacity, Summary, Verdict};
use crate::monitor::MonitorRecord;
use crate::recorder::Interval;
use crate::rundir::{for_each_interval, read_capacity, read_meta, LoadModel, Run, RunDirError, RunMeta};

/// What one read of a run directory yields.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// `meta.json`, as the run wrote it.
    pub meta: RunMeta,
    /// The `stampede.summary/v1` summary, with server metrics, findings and capacity.
    pub summary: Summary,
    /// Latency, VUs, throughput and errors over the run, bucketed for charts.
    pub timeline: Timeline,
    /// The server series worth a chart beside the latency.
    pub server: Vec<ServerSeries>,
    /// Per-second values of every phase and step, which `compare` tests: empty unless the
    /// directory was read with [`analyze_dir_with_seconds`] (summaries and reports do not need
    /// them, and a long run's would cost a fifth of the reading).
    pub seconds: Seconds,
}

/// Reads a run directory once. Neither file of records is ever held whole: a long run's
/// decoded intervals would not fit in memory (see [`for_each_interval`]).
pub fn analyze_dir(dir: &Path) -> Result<Analysis, RunDirError> {
    read(dir, false)
}

/// [`analyze_dir`], also folding every second's values ([`Analysis::seconds`]) for `compare`.
pub fn analyze_dir_with_seconds(dir: &Path) -> Result<Analysis, RunDirError> {
    read(dir, true)
}

fn read(dir: &Path, seconds: bool) -> Result<Analysis, RunDirError> {
    let meta = read_meta(dir)?;
    let mut pass = Pass::new(&meta);
    // A/B variants are judged on per-second values: folded for them too.
    pass.seconds = (seconds || super::ab::has_variants(&meta)).then(Seconds::default);
    let skipped = for_each_interval(dir, |iv| pass.interval(&iv))?;
    let monitors_skipped = for_each_monitor(dir, "monitors.jsonl", |r| pass.monitor(&r))?;
    // The generator's own samples: unreadable lines only cost its health figures.
    let _ = for_each_monitor(dir, "generator.jsonl", |r| pass.generator.record(&r));
    let explain = crate::rundir::explain::read_explain(dir);
    Ok(pass.finish(meta, &skipped, &monitors_skipped, read_capacity(dir), explain))
}

/// The summary of a run directory: [`analyze_dir`]'s, as `stampede run` writes it at its end.
pub fn summarize_dir(dir: &Path) -> Result<Summary, RunDirError> {
    analyze_dir(dir).map(|a| a.summary)
}

/// The same pass over a run already in memory.
pub fn analyze(run: &Run) -> Analysis {
    let mut pass = Pass::new(&run.meta);
    for iv in &run.intervals {
        pass.interval(iv);
    }
    for r in &run.monitors {
        pass.monitor(r);
    }
    pass.finish(
        run.meta.clone(),
        &run.skipped,
        &run.monitors_skipped,
        run.capacity.clone(),
        None,
    )
}

/// The folds of one pass, fed one record at a time.
struct Pass {
    aggs: Vec<PhaseAgg>,
    joint: findings::JointTimeline,
    chart: TimelineBuilder,
    /// Folded only when asked for.
    seconds: Option<Seconds>,
    /// The run's seconds by load level, for `capacity_estimate`.
    levels: super::estimate::Levels,
    /// The server series keys worth a chart (see [`series::charted`]).
    charted: BTreeSet<String>,
    /// Monitor failures, as warnings, in the order they happened.
    monitor_failures: Vec<String>,
    generator: super::generator::GeneratorFold,
}

impl Pass {
    fn new(meta: &RunMeta) -> Pass {
        Pass {
            // Every planned phase, in plan order, even one that never ran.
            aggs: meta.phases.iter().map(|p| PhaseAgg::new(&p.name)).collect(),
            joint: findings::JointTimeline::default(),
            chart: TimelineBuilder::new(meta.phases.iter().map(|p| p.planned_s).sum()),
            seconds: None,
            levels: super::estimate::Levels::new(meta),
            charted: BTreeSet::new(),
            monitor_failures: Vec::new(),
            generator: Default::default(),
        }
    }

    fn interval(&mut self, iv: &Interval) {
        aggregate_into(&mut self.aggs, iv);
        self.joint.add_interval(iv);
        self.generator.interval(iv);
        self.chart.add(iv);
        self.levels.add(iv);
        if let Some(s) = &mut self.seconds {
            s.add(iv);
        }
    }

    fn monitor(&mut self, r: &MonitorRecord) {
        if let Some(e) = &r.error {
            self.monitor_failures
                .push(format!("monitor `{}` failed at {}: {e}", r.monitor, fmt_t(r.t)));
        }
        let charted = &mut self.charted;
        self.joint.add_monitor(r, |key, series| {
            if series::charted(series) && !charted.contains(key) {
                charted.insert(key.to_string());
            }
        });
    }

    fn finish(
        mut self,
        meta: RunMeta,
        skipped: &[(usize, String)],
        monitors_skipped: &[(usize, String)],
        capacity: Option<serde_json::Value>,
        explain: Option<crate::rundir::explain::ExplainFile>,
    ) -> Analysis {
        self.joint.finish();
        let mut summary = summarize_aggs(&meta, &self.aggs, skipped);
        let mut server = findings::server_metrics(&self.joint.secs, &self.joint.server);
        let host_memory = (meta.memory_bytes > 0).then_some(meta.memory_bytes as f64);
        let mut drifts = Vec::new();
        for p in &mut summary.phases {
            p.server = server.remove(&p.name).unwrap_or_default();
            let secs: Vec<&findings::Sec> = self.joint.secs.iter().filter(|s| s.phase == p.name).collect();
            if let Some(first) = secs.first() {
                p.windows = super::windows::windows(&secs, first.t, &self.joint.server);
            }
            // A ramp's latency follows its load: drift is judged under steady load only.
            if !matches!(p.model, Some(LoadModel::RampingVus | LoadModel::RampingRate)) {
                p.drift = super::drift::phase_drift(&secs, &self.joint.server, host_memory);
            }
            if let Some(d) = &p.drift {
                drifts.push((p.name.clone(), d.clone()));
            }
        }
        if let Some(e) = &explain {
            super::sql::attach_explain(&mut summary, e);
        }
        summary.warnings.extend(self.monitor_failures);
        summary.warnings.extend(
            monitors_skipped
                .iter()
                .map(|(line, e)| format!("monitors.jsonl:{line}: skipped an unreadable record ({e})")),
        );
        summary.generator = self.generator.finish();
        if let Some(c) = summary.generator.as_ref().and_then(super::generator::condition) {
            summary.conditions.push(c);
            if summary.verdict == Verdict::Passed {
                summary.verdict = Verdict::PassedWithConditions;
            }
        }
        summary.findings = findings::findings(&self.joint.input(
            &meta.thresholds,
            meta.cores,
            &drifts,
            summary.generator.as_ref(),
        ));
        // An unreadable capacity result is left out, as an unreadable capacity.json is.
        summary.capacity = capacity.and_then(|v| serde_json::from_value::<Capacity>(v).ok());
        // A capacity search's own answer needs no estimate beside it.
        if summary.capacity.is_none() {
            summary.capacity_estimate = self.levels.finish(&meta);
        }
        if let Some(secs) = &self.seconds {
            summary.variants = super::ab::tables(&meta, &summary, secs, &self.aggs);
        }
        let server = series::server_series(&self.joint.server, &self.charted);
        Analysis {
            meta,
            summary,
            timeline: self.chart.finish(),
            server,
            seconds: self.seconds.unwrap_or_default(),
        }
    }
}

/// Streams `monitors.jsonl` to `f` one record at a time and returns the unreadable lines with
/// their numbers; no file is no records. Read here, line by line, because the run directory's
/// own reader returns the file's records all at once, and a soak's would not fit.
fn for_each_monitor(
    dir: &Path,
    name: &str,
    mut f: impl FnMut(MonitorRecord),
) -> Result<Vec<(usize, String)>, RunDirError> {
    let path = dir.join(name);
    let io = |source| RunDirError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut skipped = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(io)?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<MonitorRecord>(&line) {
            Ok(r) => f(r),
            Err(e) => skipped.push((i + 1, e.to_string())),
        }
    }
    Ok(skipped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::series::tests::interval;

    fn meta() -> RunMeta {
        let phase = |name: &str| {
            serde_json::json!({ "name": name, "model": "closed", "description": "", "scenarios": ["s"],
                                "planned_s": 10.0, "peak": 1.0 })
        };
        serde_json::from_value(serde_json::json!({
            "schema": "stampede.run/v1", "name": "t", "plan_file": "p.yaml", "tool_version": "0",
            "host": "h", "os": "linux", "cores": 2, "memory_bytes": 0, "started_at": "2026-01-01T00:00:00Z",
            "status": "completed", "workers": 1, "segment": "0/1",
            "phases": [phase("a"), phase("b"), phase("never")], "steps": [], "thresholds": []
        }))
        .unwrap()
    }

    fn record(t: f64, monitor: &str, series: &[(&str, f64)], error: Option<&str>) -> MonitorRecord {
        MonitorRecord {
            t,
            monitor: monitor.into(),
            series: series.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            error: error.map(String::from),
        }
    }

    /// One pass gives the summary's server metrics and warnings, the chart timeline and the
    /// charted server series, all from the same records.
    #[test]
    fn one_pass_yields_the_summary_the_timeline_and_the_server_series() {
        let run = Run {
            meta: meta(),
            intervals: (0..4)
                .map(|i| interval(if i < 2 { "a" } else { "b" }, i as f64))
                .collect(),
            skipped: vec![(7, "torn".into())],
            capacity: None,
            monitors: vec![
                // Out of time order across monitors, as records from separate tasks may be.
                record(2.5, "host", &[("cpu_percent", 50.0), ("mem_used_bytes", 1.0)], None),
                record(0.5, "host", &[("cpu_percent", 10.0), ("mem_used_bytes", 1.0)], None),
                record(
                    1.5,
                    "host",
                    &[("cpu_percent", 30.0), ("mem_used_bytes", f64::NAN)],
                    None,
                ),
                record(1.0, "db", &[], Some("refused")),
            ],
            monitors_skipped: vec![(9, "bad".into())],
        };
        let a = analyze(&run);
        let phases: Vec<&str> = a.summary.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(phases, ["a", "b"], "a phase that never ran is left out");
        let cpu = |p: usize| {
            let m = a.summary.phases[p]
                .server
                .iter()
                .find(|m| m.name == "host.cpu_percent")
                .unwrap();
            (m.min, m.avg, m.max)
        };
        assert_eq!(cpu(0), (10.0, 20.0, 30.0));
        assert_eq!(cpu(1), (50.0, 50.0, 50.0));
        assert_eq!(
            a.summary.warnings,
            [
                "intervals.jsonl:7: skipped an unreadable record (torn)",
                "monitor `db` failed at t=1s: refused",
                "monitors.jsonl:9: skipped an unreadable record (bad)",
            ]
        );
        // CPU is charted (in time order), memory is not.
        let names: Vec<&str> = a.server.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["host.cpu_percent"]);
        assert_eq!(a.server[0].points, [(0.5, 10.0), (1.5, 30.0), (2.5, 50.0)]);
        assert_eq!(a.timeline.points.len(), 4);
        assert_eq!(
            a.timeline.phase_starts,
            [("a".to_string(), 0.0), ("b".to_string(), 2.0)]
        );
    }
}
