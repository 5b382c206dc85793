//! One run, end to end: run directory, engine, live progress, `abort_on_fail`, summary.
//! Used by `stampede run`, `stampede demo` and tests alike.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use stampede_plan::Plan;

use crate::analysis::{evaluate, summarize_dir, PhaseAgg, Summary};
use crate::engine::{self, Controls, EngineOptions, Event, Program};
use crate::monitor::Monitors;
use crate::report::terminal::Progress;
use crate::rundir::{PhaseMeta, RunDirError, RunMeta, RunStatus, RunWriter, ThresholdSpec, RUN_SCHEMA};

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub plan_file: String,
    /// Indices into `plan.phases`, in order.
    pub phases: Vec<usize>,
    pub out: PathBuf,
    pub workers: usize,
    pub segment: (u64, u64),
    pub seed: u64,
    /// Print the live progress line to stderr.
    pub progress: bool,
    /// How this run departs from its plan, recorded in `meta.json` (and reports).
    pub notes: Vec<String>,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub status: RunStatus,
    pub summary: Summary,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

/// Host and plan facts for `meta.json`.
pub fn new_meta(plan: &Plan, opts: &RunnerOptions, host: HostFacts) -> RunMeta {
    let program_steps = Program::new(Arc::new(plan.clone())).step_names();
    RunMeta {
        schema: RUN_SCHEMA.into(),
        name: plan.name.clone(),
        plan_file: opts.plan_file.clone(),
        tool_version: env!("CARGO_PKG_VERSION").into(),
        host: host.host,
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cores: host.cores,
        memory_bytes: host.memory_bytes,
        started_at: host.now,
        ended_at: None,
        status: RunStatus::Running,
        target: plan.target.as_ref().map(|o| {
            format!(
                "{}://{}{}",
                if o.tls { "https" } else { "http" },
                o.authority,
                plan.target_path
            )
        }),
        workers: opts.workers,
        segment: format!("{}/{}", opts.segment.0, opts.segment.1),
        phases: opts.phases.iter().map(|&i| PhaseMeta::from_plan(plan, i)).collect(),
        steps: program_steps,
        thresholds: plan.thresholds.iter().map(ThresholdSpec::from_plan).collect(),
        notes: opts.notes.clone(),
    }
}

pub struct HostFacts {
    pub host: String,
    pub cores: usize,
    pub memory_bytes: u64,
    /// RFC 3339 start time.
    pub now: String,
}

/// Runs the plan. `controls.stop` cancelled from outside (Ctrl-C) ends the run as interrupted;
/// an `abort_on_fail` threshold ends it as aborted. `now` gives RFC 3339 timestamps.
pub async fn run_plan(
    plan: Arc<Plan>,
    opts: RunnerOptions,
    host: HostFacts,
    controls: Controls,
    now: fn() -> String,
) -> Result<RunOutcome, RunError> {
    let mut meta = new_meta(&plan, &opts, host);
    let mut writer = RunWriter::create(&opts.out, &meta, &plan.redacted)?;
    let program = Arc::new(Program::new(plan.clone()));
    // One clock for the load and the monitors: both write seconds since this instant.
    let clock = tokio::time::Instant::now();
    let monitors = if plan.monitors.is_empty() {
        None
    } else {
        Some(Monitors::start(&plan.monitors, clock, writer.monitor_log()?, false))
    };
    let engine_opts = EngineOptions {
        phases: opts.phases.clone(),
        workers: opts.workers,
        segment: opts.segment,
        seed: opts.seed,
        clock: Some(clock),
    };
    let mut progress = opts.progress.then(Progress::new);
    let mut current: Option<(PhaseAgg, f64, f64)> = None; // (cumulative, phase start t, planned s)
    let mut aborted = false;
    let mut write_error: Option<RunDirError> = None;
    let abort_rules: Vec<(ThresholdSpec, Duration)> = plan
        .thresholds
        .iter()
        .filter(|t| t.abort_on_fail)
        .map(|t| (ThresholdSpec::from_plan(t), t.delay))
        .collect();
    let c = controls.clone();
    let result = engine::run(program, engine_opts, controls.clone(), |ev| match ev {
        Event::PhaseStart { index, name, t } => {
            let planned = PhaseMeta::from_plan(&plan, index).planned_s;
            current = Some((PhaseAgg::new(&name), t, planned));
        }
        Event::Interval(iv) => {
            if let Err(e) = writer.append(&iv) {
                // A full disk must not go unnoticed: stop the run, keep what was written.
                if write_error.is_none() {
                    write_error = Some(e);
                    c.stop.cancel();
                    c.kill.cancel();
                }
            }
            if let Some((agg, start_t, planned)) = current.as_mut() {
                agg.add(&iv);
                let elapsed = iv.t + iv.dur - *start_t;
                if let Some(p) = progress.as_mut() {
                    let last = agg.merged(None);
                    let window: u64 = iv.steps.iter().map(|s| s.requests).sum();
                    let rps = if iv.dur > 0.0 { window as f64 / iv.dur } else { 0.0 };
                    let p95 = (!last.latency.is_empty()).then(|| last.latency.value_at_quantile(0.95) as f64 / 1000.0);
                    let er = if last.requests > 0 {
                        last.errors as f64 / last.requests as f64
                    } else {
                        0.0
                    };
                    p.update(&agg.name, elapsed, *planned, iv.vus, rps, p95, er);
                }
                for (rule, delay) in &abort_rules {
                    if aborted || !rule.applies_to(&agg.name) || elapsed < delay.as_secs_f64() {
                        continue;
                    }
                    let (value, passed) = evaluate(rule, agg);
                    if !passed {
                        aborted = true;
                        if let Some(p) = progress.as_mut() {
                            p.finish();
                        }
                        eprintln!(
                            "aborting: threshold `{}` failed in phase {} (measured {:.3}) and has abort_on_fail",
                            rule.expr,
                            agg.name,
                            value.unwrap_or(f64::NAN)
                        );
                        c.stop.cancel();
                        let kill = c.kill.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            kill.cancel();
                        });
                    }
                }
            }
        }
        Event::PhaseEnd { .. } => {
            if let Some(p) = progress.as_mut() {
                p.finish();
            }
        }
    })
    .await;
    // Stop sampling before reading the run back, so the last samples are in the file.
    if let Some(m) = monitors {
        m.stop().await;
    }
    result?;
    if let Some(e) = write_error {
        return Err(e.into());
    }
    meta.status = if aborted {
        RunStatus::Aborted
    } else if controls.stop.is_cancelled() {
        RunStatus::Interrupted
    } else {
        RunStatus::Completed
    };
    meta.ended_at = Some(now());
    writer.write_meta(&meta)?;
    // Streamed: a long run with many steps does not fit in memory as decoded intervals.
    let summary = summarize_dir(writer.dir())?;
    writer.write_json("summary.json", &summary)?;
    Ok(RunOutcome {
        dir: opts.out,
        status: meta.status,
        summary,
    })
}

/// A run made one phase at a time, for callers that decide the next phase from the last one's
/// numbers (`stampede capacity`). The run directory is created once; every phase goes into it
/// like a phase of `run_plan` (its `PhaseMeta` in `meta.json`, its intervals in
/// `intervals.jsonl`), so `stampede summary` and reports read it like any other run.
pub struct Session {
    /// The base plan; its `phases` grow by one per [`Session::run_phase`].
    plan: Plan,
    meta: RunMeta,
    writer: RunWriter,
    workers: usize,
    segment: (u64, u64),
    seed: u64,
    progress: bool,
    controls: Controls,
    /// Interval times are seconds since this instant, across phases.
    started: std::time::Instant,
    now: fn() -> String,
}

/// What one phase of a [`Session`] measured.
#[derive(Debug)]
pub struct PhaseRun {
    /// The phase's name (unique in the session).
    pub name: String,
    /// Its intervals as written (times relative to the session start).
    pub intervals: Vec<crate::recorder::Interval>,
    /// The whole phase merged.
    pub agg: PhaseAgg,
    /// The session was stopped from outside (Ctrl-C) during this phase.
    pub interrupted: bool,
}

impl Session {
    /// Creates the run directory (refusing an existing run) with no phases yet.
    pub fn create(
        plan: Plan,
        opts: &RunnerOptions,
        host: HostFacts,
        controls: Controls,
        now: fn() -> String,
    ) -> Result<Session, RunError> {
        let mut plan = plan;
        plan.phases.clear();
        let opts = RunnerOptions {
            phases: Vec::new(),
            ..opts.clone()
        };
        let meta = new_meta(&plan, &opts, host);
        let writer = RunWriter::create(&opts.out, &meta, &plan.redacted)?;
        Ok(Session {
            plan,
            meta,
            writer,
            workers: opts.workers.max(1),
            segment: opts.segment,
            seed: opts.seed,
            progress: opts.progress,
            controls,
            started: std::time::Instant::now(),
            now,
        })
    }

    pub fn dir(&self) -> &std::path::Path {
        self.writer.dir()
    }

    /// Thresholds stored in `meta.json`, evaluated per phase by `stampede summary`.
    pub fn set_thresholds(&mut self, thresholds: Vec<ThresholdSpec>) -> Result<(), RunError> {
        self.meta.thresholds = thresholds;
        Ok(self.writer.write_meta(&self.meta)?)
    }

    /// Whether the session was stopped from outside (Ctrl-C).
    pub fn stopped(&self) -> bool {
        self.controls.stop.is_cancelled()
    }

    /// Runs one phase. After every interval `watch` sees it and the phase so far; returning
    /// `true` ends the phase early (no new iterations, those in flight finish). When the phase
    /// ends before its planned length, its recorded length becomes the measured one, so
    /// `meta.json` describes what ran.
    pub async fn run_phase(
        &mut self,
        phase: stampede_plan::Phase,
        mut watch: impl FnMut(&crate::recorder::Interval, &PhaseAgg) -> bool,
    ) -> Result<PhaseRun, RunError> {
        let index = self.plan.phases.len();
        let name = phase.name.clone();
        self.plan.phases.push(phase);
        self.meta.phases.push(PhaseMeta::from_plan(&self.plan, index));
        self.writer.write_meta(&self.meta)?;
        let program = Arc::new(Program::new(Arc::new(self.plan.clone())));
        let engine_opts = EngineOptions {
            phases: vec![index],
            workers: self.workers,
            segment: self.segment,
            seed: self.seed.wrapping_add(index as u64),
            // Times are shifted by the session's own offset below.
            clock: None,
        };
        // Child tokens: ending this phase early must not stop the session; Ctrl-C stops both.
        let step = Controls {
            stop: self.controls.stop.child_token(),
            kill: self.controls.kill.child_token(),
        };
        let offset = self.started.elapsed().as_secs_f64();
        let planned = self.meta.phases[index].planned_s;
        let mut agg = PhaseAgg::new(&name);
        let mut intervals = Vec::new();
        let mut progress = self.progress.then(Progress::new);
        let mut write_error: Option<RunDirError> = None;
        let writer = &mut self.writer;
        let c = step.clone();
        engine::run(program, engine_opts, step.clone(), |ev| {
            if let Event::Interval(mut iv) = ev {
                iv.t += offset;
                if let Err(e) = writer.append(&iv) {
                    if write_error.is_none() {
                        write_error = Some(e);
                        c.stop.cancel();
                        c.kill.cancel();
                    }
                }
                agg.add(&iv);
                if let Some(p) = progress.as_mut() {
                    let window: u64 = iv.steps.iter().map(|s| s.requests).sum();
                    let rps = if iv.dur > 0.0 { window as f64 / iv.dur } else { 0.0 };
                    let all = agg.merged(None);
                    let p95 = (!all.latency.is_empty()).then(|| all.latency.value_at_quantile(0.95) as f64 / 1000.0);
                    let er = if all.requests > 0 {
                        all.errors as f64 / all.requests as f64
                    } else {
                        0.0
                    };
                    p.update(&name, agg.duration_s, planned, iv.vus, rps, p95, er);
                }
                if watch(&iv, &agg) {
                    c.stop.cancel();
                }
                intervals.push(iv);
            }
        })
        .await?;
        if let Some(p) = progress.as_mut() {
            p.finish();
        }
        if let Some(e) = write_error {
            return Err(e.into());
        }
        if agg.duration_s > 0.0 && agg.duration_s + 0.5 < planned {
            let measured = Duration::from_millis((agg.duration_s * 1000.0).round() as u64);
            match &mut self.plan.phases[index].load {
                stampede_plan::Load::Closed { duration, .. } | stampede_plan::Load::Open { duration, .. } => {
                    *duration = measured
                }
                _ => {}
            }
            self.meta.phases[index] = PhaseMeta::from_plan(&self.plan, index);
            self.writer.write_meta(&self.meta)?;
        }
        Ok(PhaseRun {
            name,
            intervals,
            agg,
            interrupted: self.controls.stop.is_cancelled(),
        })
    }

    /// Writes a JSON file into the run directory (atomically), e.g. `capacity.json`.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<(), RunError> {
        Ok(self.writer.write_json(name, value)?)
    }

    /// Ends the run: status (interrupted after Ctrl-C), end time, and the summary read back
    /// from the run directory, written as `summary.json`.
    pub fn finish(mut self) -> Result<RunOutcome, RunError> {
        self.meta.status = if self.controls.stop.is_cancelled() {
            RunStatus::Interrupted
        } else {
            RunStatus::Completed
        };
        self.meta.ended_at = Some((self.now)());
        self.writer.write_meta(&self.meta)?;
        let summary = summarize_dir(self.writer.dir())?;
        self.writer.write_json("summary.json", &summary)?;
        Ok(RunOutcome {
            dir: self.writer.dir().to_path_buf(),
            status: self.meta.status,
            summary,
        })
    }
}
