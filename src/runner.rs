//! One run, end to end: the run directory, the monitors, the engine, and the one interval loop
//! that fans each interval out to the run's [`Output`]s (the run directory writer, the terminal,
//! `abort_on_fail`, whatever a caller adds), then the summary read back from the directory.
//!
//! [`run_plan`] runs a plan's phases in one go (`stampede run`, `stampede demo`); a
//! [`Session`] runs phases one at a time for callers that choose the next phase from the last
//! one's numbers (`stampede capacity`). Both are the same loop. The runner prints nothing
//! itself: the terminal is an output.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use stampede_plan::Plan;
use tokio::time::Instant;

use crate::analysis::{analyze_dir, Analysis, PhaseAgg, Summary};
use crate::engine::{self, Controls, EngineOptions, Event, Program};
use crate::monitor::Monitors;
use crate::output::{AbortRules, Console, Flow, IntervalWriter, Notice, Output, PhaseView, StopReason, Watch};
use crate::recorder::Interval;
use crate::rundir::{
    MonitorLog, Resolved, RunDirError, RunMeta, RunStatus, RunWriter, Segment, ThresholdSpec, RUN_SCHEMA,
};
use crate::transport::dns;

#[derive(Debug, Clone)]
pub struct RunnerOptions {
    pub plan_file: String,
    /// Indices into `plan.phases`, in order.
    pub phases: Vec<usize>,
    pub out: PathBuf,
    pub workers: usize,
    pub segment: Segment,
    /// `--start-at`: the instant every share of a distributed run starts at (the run waits
    /// for it after every check, so a share that cannot run fails before the others start).
    pub start_at: Option<SystemTime>,
    /// SHA-256 of the plan file, recorded for `stampede merge`.
    pub plan_sha256: Option<String>,
    /// `--share-dir`: where every share of the run writes (`share-I`), read by this one's
    /// `abort_on_fail` to judge all shares together.
    pub share_dir: Option<PathBuf>,
    pub seed: u64,
    /// Print the live progress line to stderr.
    pub progress: bool,
    /// How this run departs from its plan, recorded in `meta.json` (and reports).
    pub notes: Vec<String>,
    /// `--http-debug`: print the first exchanges there.
    pub http_debug: Option<Arc<crate::http::debug::HttpDebug>>,
    /// Why the run exists (`--note`), recorded in `meta.json`.
    pub note: Option<String>,
    /// `--output`: receivers the run's numbers are pushed to while it goes.
    pub remote: Vec<crate::output::remote::Endpoint>,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub status: RunStatus,
    pub summary: Summary,
    /// The analysis of the run directory the summary came from (for the reports: the
    /// directory is read once).
    pub analysis: Analysis,
    /// What could not be written (a full disk during or after the run): the summary above is
    /// still what was measured, but the run directory lacks these.
    pub unwritten: Vec<RunDirError>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    RunDir(#[from] RunDirError),
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    /// An origin whose name does not resolve: refused before anything is written or sent.
    #[error("cannot resolve `{host}`: {reason}")]
    Resolve { host: String, reason: String },
    /// A database that cannot be reached, or a statement PostgreSQL refuses: before any load.
    #[error(transparent)]
    Sql(#[from] engine::sql::PreflightError),
}

/// Checks the plan's SQL on its databases before the run (and EXPLAINs `explain: true`
/// statements), on a runtime of its own on a thread of its own: sessions are opened from
/// inside the run's runtime, which cannot be blocked on. Only the scenarios of `phases` count.
fn sql_preflight(plan: &Plan, phases: &[usize]) -> Result<Vec<engine::sql::Explained>, RunError> {
    if plan.databases.is_empty() {
        return Ok(Vec::new());
    }
    let mut scenarios: Vec<usize> = phases
        .iter()
        .filter_map(|i| plan.phases.get(*i))
        .flat_map(|p| p.mix.iter().flat_map(|w| w.scenarios().iter().copied()))
        .collect();
    scenarios.sort_unstable();
    scenarios.dedup();
    let transport = crate::transport::Transport::new(None, plan.http.connect_timeout);
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            match rt {
                Ok(rt) => rt
                    .block_on(engine::sql::preflight(plan, &scenarios, &transport))
                    .map_err(RunError::from),
                Err(e) => Err(RunError::Sql(engine::sql::PreflightError::Connect {
                    database: String::new(),
                    shown: String::new(),
                    reason: format!("no runtime for the check: {e}"),
                })),
            }
        })
        .join()
    });
    result.unwrap_or_else(|_| Ok(Vec::new()))
}

/// Whether any SQL step of the plan asks for EXPLAIN.
fn explains(plan: &Plan) -> bool {
    plan.scenarios
        .iter()
        .flat_map(|s| &s.steps)
        .any(|st| matches!(&st.kind, stampede_plan::StepKind::Sql(q) if q.explain))
}

/// Resolves every origin the plan's steps call (bounded by the connect timeout), so a name that
/// does not resolve is refused before the run, and the cache the connects use is warm.
fn resolve_origins(plan: &Plan, program: &Program) -> Result<Vec<Resolved>, RunError> {
    let mut out = Vec::new();
    for o in &program.origins {
        let (addrs, took) =
            dns::resolve_now(&o.host, o.port, plan.http.connect_timeout).map_err(|e| RunError::Resolve {
                host: o.host.clone(),
                reason: e.to_string(),
            })?;
        out.push(Resolved {
            origin: o.authority.clone(),
            addrs: addrs.iter().map(|a| a.to_string()).collect(),
            lookup_ms: took.as_secs_f64() * 1000.0,
        });
    }
    Ok(out)
}

/// Host and plan facts for `meta.json`.
pub fn new_meta(plan: &Plan, program: &Program, opts: &RunnerOptions, host: HostFacts) -> RunMeta {
    let program_steps = program.step_names();
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
        segment: opts.segment,
        plan_sha256: opts.plan_sha256.clone(),
        start_at: opts.start_at.map(rfc3339),
        phases: opts
            .phases
            .iter()
            .map(|&i| crate::describe::phase_meta(plan, i))
            .collect(),
        steps: program_steps,
        step_hosts: program.step_hosts(),
        thresholds: plan.thresholds.iter().map(crate::describe::threshold_spec).collect(),
        notes: opts.notes.clone(),
        note: opts.note.clone(),
        resolved: Vec::new(),
        generators: Vec::new(),
        outputs: Vec::new(),
        about: crate::rundir::About {
            objectives: plan.about.objectives.clone(),
            environment: plan.about.environment.clone(),
            software: plan.about.software.clone(),
        },
    }
}

/// `t` as RFC 3339 UTC with milliseconds.
pub fn rfc3339(t: SystemTime) -> String {
    let ms = match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    };
    let mut out = Vec::new();
    crate::engine::push_iso(&mut out, ms);
    String::from_utf8(out).unwrap_or_default()
}

pub struct HostFacts {
    pub host: String,
    pub cores: usize,
    pub memory_bytes: u64,
    /// RFC 3339 start time.
    pub now: String,
}

/// Runs the plan's phases (`opts.phases`). `controls.stop` cancelled from outside (Ctrl-C) ends
/// the run as interrupted; an `abort_on_fail` threshold ends it as aborted. `now` gives RFC
/// 3339 timestamps.
pub async fn run_plan(
    plan: Arc<Plan>,
    opts: RunnerOptions,
    host: HostFacts,
    controls: Controls,
    now: fn() -> String,
) -> Result<RunOutcome, RunError> {
    run_plan_with(plan, opts, host, controls, now, |_| {}).await
}

/// [`run_plan`], with `setup` called on the session once its directory exists and before any
/// load: where a caller adds outputs of its own (the dashboard).
pub async fn run_plan_with(
    plan: Arc<Plan>,
    opts: RunnerOptions,
    host: HostFacts,
    controls: Controls,
    now: fn() -> String,
    setup: impl FnOnce(&mut Session),
) -> Result<RunOutcome, RunError> {
    let mut session = Session::open((*plan).clone(), &opts, host, controls, now)?;
    setup(&mut session);
    let rules = AbortRules::from_plan(&plan);
    let rules = match &opts.share_dir {
        Some(dir) => rules.across(crate::output::peers::Peers::new(dir, opts.segment)),
        None => rules,
    };
    session.add_output(Box::new(rules));
    session.add_remote_outputs(&opts);
    // A run directory that stops taking writes (a full disk) stops the run; what was measured
    // is still summarised, and the failure travels with the outcome.
    let unwritten = match session.wait_for_start().await {
        Err(e) => Some(e),
        // Stopped while waiting: nothing ran, the run ends as interrupted.
        Ok(()) if session.stopped() => None,
        Ok(()) => match session.run_planned().await {
            Ok(()) => None,
            Err(RunError::RunDir(e)) => Some(e),
            Err(e) => return Err(e),
        },
    };
    let mut outcome = session.finish().await?;
    outcome.unwritten.extend(unwritten);
    Ok(outcome)
}

/// A run being made: its directory, monitors and outputs, and the plan's phases run so far.
/// Every phase goes into the one directory (its `PhaseMeta` in `meta.json`, its intervals in
/// `intervals.jsonl`), so `stampede summary` and reports read it like any other run.
pub struct Session {
    /// The plan; for a session made with [`Session::create`] its `phases` grow by one per
    /// [`Session::run_phase`].
    plan: Plan,
    /// `plan` prepared as the session was opened: what `run_planned` runs.
    program: Arc<Program>,
    meta: RunMeta,
    writer: RunWriter,
    fanout: Fanout,
    monitors: Option<Monitors>,
    /// The generator's own health (`generator.jsonl`), sampled in every run from the start.
    generator: Option<crate::monitor::generator::Generator>,
    /// The monitors' and the generator's logs until the run starts (after `--start-at`'s
    /// wait), then `None`.
    monitor_log: Option<MonitorLog>,
    generator_log: Option<MonitorLog>,
    /// Each monitor's latest sample, kept as they are written, for live outputs.
    latest: crate::monitor::latest::Latest,
    /// `--start-at`, until waited for.
    start_at: Option<SystemTime>,
    /// Interval and monitor times are seconds since this instant, across phases.
    clock: Instant,
    workers: usize,
    segment: Segment,
    seed: u64,
    http_debug: Option<Arc<crate::http::debug::HttpDebug>>,
    /// The phases `run_planned` runs.
    planned: Vec<usize>,
    controls: Controls,
    now: fn() -> String,
}

/// What one phase of a [`Session`] measured.
#[derive(Debug)]
pub struct PhaseRun {
    /// The phase's name (unique in the session).
    pub name: String,
    /// Its intervals as written (times relative to the session start).
    pub intervals: Vec<Interval>,
    /// The whole phase merged.
    pub agg: PhaseAgg,
    /// The session was stopped from outside (Ctrl-C) during this phase.
    pub interrupted: bool,
}

impl Session {
    /// Starts the `--output` receivers (`opts.remote`), if any: `run` and `capacity` alike.
    /// Must be called on the run's runtime (the posting tasks are spawned on it).
    pub fn add_remote_outputs(&mut self, opts: &RunnerOptions) {
        if opts.remote.is_empty() {
            return;
        }
        let endpoints = opts
            .remote
            .iter()
            .map(|e| match opts.segment.count {
                // Each share pushes its own series; Prometheus sums them across `segment`.
                n if n > 1 => e.clone().with_label("segment", &opts.segment.index.to_string()),
                _ => e.clone(),
            })
            .collect();
        self.add_output(Box::new(crate::output::remote::Remote::start(endpoints)));
    }

    /// Creates the run directory (refusing an existing run) with no phases yet, for phases
    /// chosen one at a time with [`Session::run_phase`]. Starts the plan's monitors.
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
        Session::open(plan, &opts, host, controls, now)
    }

    /// Creates the run directory for `opts.phases` of `plan`, starts the monitors, and sets up
    /// the default outputs: the interval writer and the terminal.
    fn open(
        plan: Plan,
        opts: &RunnerOptions,
        host: HostFacts,
        controls: Controls,
        now: fn() -> String,
    ) -> Result<Session, RunError> {
        let program = Arc::new(Program::new(Arc::new(plan.clone())));
        let mut meta = new_meta(&plan, &program, opts, host);
        meta.resolved = resolve_origins(&plan, &program)?;
        let explained = sql_preflight(&plan, &opts.phases)?;
        let mut writer = RunWriter::create(&opts.out, &meta, &plan.redacted)?;
        if explains(&plan) {
            let file = crate::rundir::explain::ExplainFile {
                at_start: explained,
                at_end: Vec::new(),
            };
            writer.write_json("explain.json", &file)?;
        }
        let monitor_log = if plan.monitors.is_empty() {
            None
        } else {
            Some(writer.monitor_log()?)
        };
        let writer_generator_log = writer.generator_log()?;
        let mut outputs: Vec<Box<dyn Output>> = Vec::new();
        if let Some(log) = writer.take_interval_log() {
            outputs.push(Box::new(IntervalWriter::new(log)));
        }
        outputs.push(Box::new(Console::new(opts.progress)));
        let mut session = Session {
            plan,
            program,
            meta,
            writer,
            fanout: Fanout {
                outputs,
                current: None,
                aborted: false,
                write_error: None,
            },
            monitors: None,
            generator: None,
            monitor_log,
            generator_log: Some(writer_generator_log),
            latest: Default::default(),
            start_at: opts.start_at,
            clock: Instant::now(),
            workers: opts.workers.max(1),
            segment: opts.segment,
            seed: opts.seed,
            http_debug: opts.http_debug.clone(),
            planned: opts.phases.clone(),
            controls,
            now,
        };
        if session.start_at.is_none() {
            session.start_clock();
        }
        Ok(session)
    }

    /// Starts the run's one clock for the load and the monitors (both write seconds since
    /// this instant) and the monitors with it.
    fn start_clock(&mut self) {
        self.clock = Instant::now();
        if let Some(log) = self.monitor_log.take() {
            let sink = crate::monitor::latest::Tee {
                sink: log,
                latest: self.latest.clone(),
            };
            self.monitors = Some(Monitors::start(&self.plan.monitors, self.clock, sink, false));
        }
        if let Some(log) = self.generator_log.take() {
            self.generator = Some(crate::monitor::generator::Generator::start(self.clock, log));
        }
    }

    /// Waits for `--start-at` (a stop from outside ends the wait), then starts the clock there,
    /// so the seconds of every share of a distributed run count from the same instant and
    /// merge second by second. A start already past (the checks before it took a while) starts
    /// at once and says by how much in `meta.json`'s notes.
    async fn wait_for_start(&mut self) -> Result<(), RunDirError> {
        let Some(at) = self.start_at.take() else {
            return Ok(());
        };
        match at.duration_since(SystemTime::now()) {
            Ok(wait) => {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.controls.stop.cancelled() => {}
                }
            }
            Err(late) if late.duration() >= Duration::from_millis(100) => {
                let note = format!(
                    "started {:.1} s after --start-at {}",
                    late.duration().as_secs_f64(),
                    rfc3339(at)
                );
                self.meta.notes.push(note);
            }
            Err(_) => {}
        }
        self.start_clock();
        self.meta.started_at = (self.now)();
        self.writer.write_meta(&self.meta)
    }

    /// Adds an output: from the next phase on it sees every interval, after the default ones.
    pub fn add_output(&mut self, output: Box<dyn Output>) {
        self.fanout.outputs.push(output);
    }

    pub fn dir(&self) -> &std::path::Path {
        self.writer.dir()
    }

    /// The monitors' latest samples as the run goes (empty without monitors).
    pub fn monitors_latest(&self) -> crate::monitor::latest::Latest {
        self.latest.clone()
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

    /// Runs the phases the session was opened with, in one go (the workers stay up between
    /// phases).
    async fn run_planned(&mut self) -> Result<(), RunError> {
        let phases = self.planned.clone();
        self.drive(self.program.clone(), phases, self.seed, self.controls.clone(), None)
            .await
    }

    /// Runs one phase. After every interval `watch` sees it and the phase so far; returning
    /// `true` ends the phase early (no new iterations, those in flight finish). When the phase
    /// ends before its planned length, its recorded length becomes the measured one, so
    /// `meta.json` describes what ran.
    pub async fn run_phase(
        &mut self,
        phase: stampede_plan::Phase,
        watch: impl FnMut(&Interval, &PhaseAgg) -> bool,
    ) -> Result<PhaseRun, RunError> {
        let index = self.plan.phases.len();
        let name = phase.name.clone();
        self.plan.phases.push(phase);
        self.meta.phases.push(crate::describe::phase_meta(&self.plan, index));
        self.writer.write_meta(&self.meta)?;
        let program = Arc::new(Program::new(Arc::new(self.plan.clone())));
        // Child tokens: ending this phase early must not stop the session; Ctrl-C stops both.
        let controls = Controls {
            stop: self.controls.stop.child_token(),
            kill: self.controls.kill.child_token(),
        };
        let mut watch = Collect {
            intervals: Vec::new(),
            watch: Watch(watch),
        };
        let seed = self.seed.wrapping_add(index as u64);
        self.drive(program, vec![index], seed, controls, Some(&mut watch))
            .await?;
        let agg = self
            .fanout
            .current
            .take()
            .map(|c| c.agg)
            .unwrap_or_else(|| PhaseAgg::new(&name));
        let planned = self.meta.phases[index].planned_s;
        if agg.duration_s > 0.0 && agg.duration_s + 0.5 < planned {
            let measured = Duration::from_millis((agg.duration_s * 1000.0).round() as u64);
            match &mut self.plan.phases[index].load {
                stampede_plan::Load::Closed { duration, .. } | stampede_plan::Load::Open { duration, .. } => {
                    *duration = measured
                }
                _ => {}
            }
            self.meta.phases[index] = crate::describe::phase_meta(&self.plan, index);
            self.writer.write_meta(&self.meta)?;
        }
        Ok(PhaseRun {
            name,
            intervals: watch.intervals,
            agg,
            interrupted: self.controls.stop.is_cancelled(),
        })
    }

    /// The one interval loop: runs `phases` of `program` and hands every event to the outputs
    /// (and `extra`, the caller's watcher, last). `controls` are the ones this call may cancel.
    async fn drive(
        &mut self,
        program: Arc<Program>,
        phases: Vec<usize>,
        seed: u64,
        controls: Controls,
        mut extra: Option<&mut (dyn Output + '_)>,
    ) -> Result<(), RunError> {
        let opts = EngineOptions {
            phases,
            workers: self.workers,
            segment: (self.segment.index, self.segment.count),
            seed,
            clock: Some(self.clock),
            http_debug: self.http_debug.clone(),
        };
        let plan = &self.plan;
        let fanout = &mut self.fanout;
        let run_controls = &self.controls;
        engine::run(program, opts, controls.clone(), |ev| {
            fanout.on_event(ev, plan, extra.as_deref_mut(), run_controls, &controls)
        })
        .await?;
        match self.fanout.write_error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    /// Writes a JSON file into the run directory (atomically), e.g. `capacity.json`.
    pub fn write_json(&self, name: &str, value: &impl serde::Serialize) -> Result<(), RunError> {
        Ok(self.writer.write_json(name, value)?)
    }

    /// Ends the run: stops the monitors (so their last samples are in the file), records the
    /// status (aborted, interrupted after Ctrl-C, or completed) and end time, and writes the
    /// summary read back from the run directory as `summary.json`. Writes that fail are in
    /// `RunOutcome::unwritten`; only a directory that cannot be read back is an error.
    pub async fn finish(mut self) -> Result<RunOutcome, RunError> {
        if let Some(m) = self.monitors.take() {
            m.stop().await;
        }
        if let Some(g) = self.generator.take() {
            g.stop().await;
        }
        // Outputs with work left (remote receivers' queues) finish side by side, each bounded.
        let mut finishing = tokio::task::JoinSet::new();
        for o in self.fanout.outputs.iter_mut() {
            if let Some(f) = o.finish() {
                finishing.spawn(f);
            }
        }
        while let Some(done) = finishing.join_next().await {
            if let Ok(stats) = done {
                self.meta.outputs.extend(stats);
            }
        }
        self.meta
            .outputs
            .sort_by(|a, b| (&a.output, &a.url).cmp(&(&b.output, &b.url)));
        self.meta.status = if self.fanout.aborted {
            RunStatus::Aborted
        } else if self.controls.stop.is_cancelled() {
            RunStatus::Interrupted
        } else {
            RunStatus::Completed
        };
        self.meta.ended_at = Some((self.now)());
        let mut unwritten = Vec::new();
        // Plans change with data: EXPLAIN again at the end, beside the plans of the start.
        if explains(&self.plan) {
            if let (Some(mut file), Ok(at_end)) = (
                crate::rundir::explain::read_explain(self.writer.dir()),
                sql_preflight(&self.plan, &self.planned),
            ) {
                file.at_end = at_end;
                if let Err(e) = self.writer.write_json("explain.json", &file) {
                    unwritten.push(e);
                }
            }
        }
        let meta_written = self.writer.write_meta(&self.meta);
        // Streamed: a long run with many steps does not fit in memory as decoded intervals.
        let mut analysis = analyze_dir(self.writer.dir())?;
        if let Err(e) = meta_written {
            // The directory's `meta.json` still says `running`; the summary says what happened.
            analysis.summary.status = self.meta.status;
            analysis.summary.ended_at = self.meta.ended_at.clone();
            analysis.meta = self.meta.clone();
            unwritten.push(e);
        }
        let summary = analysis.summary.clone();
        if let Err(e) = self.writer.write_json("summary.json", &summary) {
            unwritten.push(e);
        }
        Ok(RunOutcome {
            dir: self.writer.dir().to_path_buf(),
            status: self.meta.status,
            summary,
            analysis,
            unwritten,
        })
    }
}

/// The phase in progress, as the outputs see it.
struct Current {
    index: usize,
    start_t: f64,
    planned_s: f64,
    elapsed_s: f64,
    agg: PhaseAgg,
}

impl Current {
    fn view(&self) -> PhaseView<'_> {
        PhaseView {
            index: self.index,
            name: &self.agg.name,
            planned_s: self.planned_s,
            elapsed_s: self.elapsed_s,
            agg: &self.agg,
        }
    }
}

/// The outputs and what they decided.
struct Fanout {
    outputs: Vec<Box<dyn Output>>,
    current: Option<Current>,
    aborted: bool,
    write_error: Option<RunDirError>,
}

impl Fanout {
    /// Calls `f` on every output, then on `extra`.
    fn each<'o>(
        outputs: &mut [Box<dyn Output>],
        extra: Option<&mut (dyn Output + 'o)>,
        mut f: impl FnMut(&mut dyn Output),
    ) {
        for o in outputs.iter_mut() {
            f(o.as_mut());
        }
        if let Some(o) = extra {
            f(o);
        }
    }

    fn on_event<'o>(
        &mut self,
        ev: Event,
        plan: &Plan,
        extra: Option<&mut (dyn Output + 'o)>,
        run: &Controls,
        this: &Controls,
    ) {
        match ev {
            Event::PhaseStart { index, name, t } => {
                let c = Current {
                    index,
                    start_t: t,
                    planned_s: crate::describe::phase_meta(plan, index).planned_s,
                    elapsed_s: 0.0,
                    agg: PhaseAgg::new(&name),
                };
                Fanout::each(&mut self.outputs, extra, |o| o.phase_start(&c.view()));
                self.current = Some(c);
            }
            Event::Interval(iv) => {
                let Some(c) = self.current.as_mut() else {
                    return;
                };
                c.agg.add(&iv);
                c.elapsed_s = iv.t + iv.dur - c.start_t;
                let view = c.view();
                let mut stops = Vec::new();
                Fanout::each(&mut self.outputs, extra, |o| {
                    if let Flow::Stop(reason) = o.interval(&iv, &view) {
                        stops.push(reason);
                    }
                });
                for reason in stops {
                    match reason {
                        StopReason::Abort { rule, phase, value } => {
                            self.aborted = true;
                            let notice = Notice::Aborting {
                                rule: &rule,
                                phase: &phase,
                                value,
                            };
                            for o in self.outputs.iter_mut() {
                                o.notice(&notice);
                            }
                            run.stop.cancel();
                            // In-flight requests get 2 s, as after a first Ctrl-C.
                            let kill = run.kill.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(Duration::from_secs(2)).await;
                                kill.cancel();
                            });
                        }
                        StopReason::WriteFailed(e) => {
                            // A full disk must not go unnoticed: stop now, keep what was written.
                            if self.write_error.is_none() {
                                self.write_error = Some(e);
                            }
                            this.stop.cancel();
                            this.kill.cancel();
                        }
                        StopReason::EndPhase => this.stop.cancel(),
                    }
                }
            }
            Event::PhaseEnd { .. } => {
                if let Some(c) = &self.current {
                    Fanout::each(&mut self.outputs, extra, |o| o.phase_end(&c.view()));
                }
            }
        }
    }
}

/// A [`Session::run_phase`] watcher that also keeps the phase's intervals for its caller.
struct Collect<F> {
    intervals: Vec<Interval>,
    watch: Watch<F>,
}

impl<F: FnMut(&Interval, &PhaseAgg) -> bool> Output for Collect<F> {
    fn interval(&mut self, iv: &Interval, phase: &PhaseView) -> Flow {
        self.intervals.push(iv.clone());
        self.watch.interval(iv, phase)
    }
}
