//! The search: geometric steps up from `min` until the SLO breaks (or throughput stops growing,
//! or `max` is reached, or errors explode), then bisection between the last good and the first
//! bad level, then a ramp down. Every level is one phase of the session's run directory.

use std::time::Duration;

use stampede_plan::{Load, Phase, Stage, Weighted};

use super::{step, Model, SearchOptions, EXPLODED_ERROR_RATE, MAX_EXTENSION};
use crate::analysis::CapacityStep;
use crate::runner::{RunError, Session};

/// Throughput growing less than this fraction while the load grows counts as "not growing".
const FLAT_GROWTH: f64 = 0.05;
/// This many geometric steps in a row without throughput growth end the search: the system is
/// saturated and more load only adds waiting.
const FLAT_STEPS: u32 = 3;
/// Bisection steps at most (each halves the bracket).
const MAX_BISECT: u32 = 4;
/// In-flight iterations get this long to finish when a step ends.
const STEP_GRACE: Duration = Duration::from_secs(10);
/// An error explosion is only called after this many requests (a few early errors are noise).
const EXPLOSION_MIN_REQUESTS: u64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What the search ran and why it stopped.
#[derive(Debug, Default)]
pub struct Searched {
    /// One row per load level, in the order run.
    pub steps: Vec<CapacityStep>,
    pub stop_reason: String,
    /// Errors exploded: the search was cut short on purpose.
    pub aborted: bool,
    /// Ctrl-C.
    pub interrupted: bool,
}

/// One level's phase: what ran and what it measured.
struct Level {
    step: Option<CapacityStep>,
    exploded: bool,
    interrupted: bool,
}

/// How a level went. Every variant but `Held` and `Broke` ends the search.
enum Verdict {
    /// The SLO held; the level's goodput (requests/s).
    Held(f64),
    Broke,
    /// Most requests failed (this fraction): the search stops to protect the system.
    Exploded(f64),
    /// Ctrl-C during the level.
    Interrupted,
    /// No full second was measured after the warm-up.
    Unmeasured,
}

/// The search under way: what it has recorded so far, and the last level run (the
/// ramp-down starts there).
struct Searching<'a, F> {
    session: &'a mut Session,
    opts: &'a SearchOptions,
    on_step: F,
    out: Searched,
    last_run: Option<f64>,
}

impl<F: FnMut(&CapacityStep)> Searching<'_, F> {
    /// Runs `load`, judges it and records its row: the one step of both the climb and the
    /// bisection, so that both record, stop on an interruption and abort on an explosion alike.
    /// An interrupted level is not recorded: its measurement was cut short.
    async fn measure(&mut self, load: f64) -> Result<Verdict, RunError> {
        let lv = run_level(self.session, self.opts, load).await?;
        self.last_run = Some(load);
        if lv.interrupted {
            self.out.interrupted = true;
            self.out.stop_reason = format!("interrupted during the step at {}", fmt_load(self.opts.model, load));
            return Ok(Verdict::Interrupted);
        }
        let Some(row) = lv.step else {
            return Ok(Verdict::Unmeasured);
        };
        (self.on_step)(&row);
        let verdict = if lv.exploded {
            self.out.aborted = true;
            Verdict::Exploded(row.error_rate)
        } else if row.slo_passed {
            Verdict::Held(row.goodput_rps)
        } else {
            Verdict::Broke
        };
        self.out.steps.push(row);
        Ok(verdict)
    }
}

fn phase_name(model: Model, load: f64) -> String {
    match model {
        Model::Closed => format!("vus-{load}"),
        Model::Open => format!("rate-{load}"),
    }
}

fn phase_for(opts: &SearchOptions, name: String, load: f64) -> Phase {
    // The phase may run up to its full extension; the watch normally ends it earlier.
    let secs = opts.warmup_n() + opts.step_n() * MAX_EXTENSION + 1;
    let duration = Duration::from_secs(secs);
    let load = match opts.model {
        Model::Closed => Load::Closed {
            vus: load as u32,
            duration,
        },
        Model::Open => Load::Open {
            rate: load,
            duration,
            max_vus: opts.max_vus.max(1),
            pre_vus: ((load / 10.0).ceil() as u32).clamp(1, opts.max_vus.max(1)),
        },
    };
    Phase {
        name,
        mix: vec![Weighted::new(opts.scenario_index, 1)],
        load,
        grace: STEP_GRACE,
        variant: None,
    }
}

async fn run_level(session: &mut Session, opts: &SearchOptions, load: f64) -> Result<Level, RunError> {
    let name = phase_name(opts.model, load);
    let (warmup_n, step_n) = (opts.warmup_n(), opts.step_n());
    let mut exploded = false;
    let mut stopped_at: Option<u64> = None;
    let mut measured = Vec::new();
    let run = session
        .run_phase(phase_for(opts, name.clone(), load), |iv, agg| {
            let (requests, errors) = (agg.requests(), agg.errors());
            if requests >= EXPLOSION_MIN_REQUESTS && errors as f64 > EXPLODED_ERROR_RATE * requests as f64 {
                exploded = true;
                stopped_at = Some(iv.seq);
                return true;
            }
            if iv.seq < warmup_n || iv.dur < 0.5 {
                return false;
            }
            measured.push(iv.clone());
            let m = measured.len() as u64;
            let refs: Vec<_> = measured.iter().collect();
            if m >= step_n * MAX_EXTENSION || (m >= step_n && step::p95_stable(&name, &refs)) {
                stopped_at = Some(iv.seq);
                return true;
            }
            false
        })
        .await?;
    let until = stopped_at.unwrap_or(u64::MAX);
    let mut row = step::measure(load, &run.name, &run.intervals, warmup_n, until, &opts.slo);
    if row.is_none() && exploded {
        // Exploded during the warm-up: show what was seen rather than nothing.
        row = step::measure(load, &run.name, &run.intervals, 0, until, &opts.slo);
    }
    let exploded = exploded || row.as_ref().is_some_and(|r| r.error_rate > EXPLODED_ERROR_RATE);
    if let (true, Some(r)) = (exploded, row.as_mut()) {
        // Whatever the SLO says (it may name latency only), a level where most requests fail
        // is not one the system holds.
        r.slo_passed = false;
        r.breached
            .push(format!("errors exploded (> {:.0}%)", EXPLODED_ERROR_RATE * 100.0));
    }
    Ok(Level {
        step: row,
        exploded,
        interrupted: run.interrupted,
    })
}

fn fmt_load(model: Model, x: f64) -> String {
    format!("{x} {}", model.unit_for(x))
}

/// Runs the search in `session`. `on_step` sees every row as it is measured (for progress).
pub async fn search(
    session: &mut Session,
    opts: &SearchOptions,
    on_step: impl FnMut(&CapacityStep),
) -> Result<Searched, SearchError> {
    let mut s = Searching {
        session,
        opts,
        on_step,
        out: Searched::default(),
        last_run: None,
    };
    let mut good: Option<f64> = None;
    let mut bad: Option<f64> = None;
    let mut prev_x: Option<f64> = None;
    let mut flat = 0;
    let mut load = opts.level(opts.min);
    let unit = opts.model.unit();

    // Geometric phase.
    loop {
        let x = match s.measure(load).await? {
            Verdict::Held(x) => x,
            Verdict::Interrupted => break,
            Verdict::Unmeasured => {
                s.out.stop_reason = format!(
                    "nothing was measured at {} (no full second after the warm-up)",
                    fmt_load(opts.model, load)
                );
                break;
            }
            Verdict::Exploded(er) => {
                s.out.stop_reason = format!(
                    "errors exploded at {} ({:.0}% > {:.0}%): search stopped to protect the system",
                    fmt_load(opts.model, load),
                    er * 100.0,
                    EXPLODED_ERROR_RATE * 100.0
                );
                break;
            }
            Verdict::Broke => {
                bad = Some(load);
                s.out.stop_reason = format!("the SLO broke at {}", fmt_load(opts.model, load));
                break;
            }
        };
        good = Some(load);
        match prev_x {
            Some(px) if x < px * (1.0 + FLAT_GROWTH) => flat += 1,
            _ => flat = 0,
        }
        prev_x = Some(prev_x.map_or(x, |p: f64| p.max(x)));
        if flat >= FLAT_STEPS {
            s.out.stop_reason = format!(
                "throughput stopped growing for {FLAT_STEPS} steps (saturated) without breaking the SLO up to {}",
                fmt_load(opts.model, load)
            );
            break;
        }
        if load >= opts.max {
            s.out.stop_reason = format!(
                "reached the maximum load ({}) without breaking the SLO",
                fmt_load(opts.model, opts.max)
            );
            break;
        }
        let next = opts.level(load * opts.growth);
        load = if next > load {
            next
        } else {
            opts.level(load + opts.resolution(load))
        };
        if load <= s.last_run.unwrap_or(0.0) {
            s.out.stop_reason = format!("no larger load level below the maximum ({} {unit})", opts.max);
            break;
        }
    }

    // Bisection between the last good and the first bad level.
    if let (Some(mut lo), Some(mut hi), false, false) = (good, bad, s.out.aborted, s.out.interrupted) {
        for _ in 0..MAX_BISECT {
            if hi - lo <= opts.resolution(lo) {
                break;
            }
            let mid = opts.level((lo + hi) / 2.0);
            if mid <= lo || mid >= hi {
                break;
            }
            match s.measure(mid).await? {
                Verdict::Held(_) => lo = mid,
                Verdict::Broke => hi = mid,
                Verdict::Interrupted | Verdict::Unmeasured => break,
                Verdict::Exploded(er) => {
                    s.out.stop_reason = format!(
                        "errors exploded at {} ({:.0}%) while bisecting: search stopped to protect the system",
                        fmt_load(opts.model, mid),
                        er * 100.0
                    );
                    break;
                }
            }
        }
        if !s.out.interrupted && !s.out.aborted {
            s.out.stop_reason = format!(
                "the SLO holds at {} and breaks at {}",
                fmt_load(opts.model, lo),
                fmt_load(opts.model, hi)
            );
        }
    }

    let Searching {
        session,
        mut out,
        last_run,
        ..
    } = s;
    // Ramp down from the last level instead of dropping the load at once.
    if let (Some(from), false) = (last_run, out.interrupted || opts.ramp_down.is_zero()) {
        let stage = vec![Stage {
            target: 0.0,
            duration: opts.ramp_down,
        }];
        let load = match opts.model {
            Model::Closed => Load::RampingVus {
                start_vus: from as u32,
                stages: stage,
            },
            Model::Open => Load::RampingRate {
                start_rate: from,
                stages: stage,
                max_vus: opts.max_vus.max(1),
                pre_vus: 1,
            },
        };
        let phase = Phase {
            name: "ramp-down".into(),
            mix: vec![Weighted::new(opts.scenario_index, 1)],
            load,
            grace: STEP_GRACE,
            variant: None,
        };
        let run = session.run_phase(phase, |_, _| false).await?;
        out.interrupted |= run.interrupted;
    }
    Ok(out)
}
