//! A virtual user: its connections, variables, random generator and reusable buffers, and the
//! loop over one iteration's steps.

use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use stampede_plan::{CookieMode, FeedMode, Phase, SlotKind, StepKind, Think};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cookies::Jar;
use super::step::{self, Sessions};
use super::turns::Turns;
use super::worker::Worker;
use crate::outcome::ErrorKind;

pub struct Vu {
    /// 1-based VU number, unique across workers and segments.
    pub id: u64,
    /// This VU's iteration counter, from 0.
    pub iteration: u64,
    pub rng: SmallRng,
    pub slots: Vec<Bytes>,
    /// One session per origin (and, for later protocols, per database), kept between steps.
    pub sessions: Sessions,
    /// Reusable buffers: rendered bytes, escaping scratch, an HTTP/1.1 request, the kept part
    /// of a response body (decoded, when it came compressed: `decoded` is the other half of
    /// that swap), a rendered request target, a `Cookie` header value.
    pub out: Vec<u8>,
    pub scratch: Vec<u8>,
    pub wire: Vec<u8>,
    pub body: Vec<u8>,
    pub decoded: Vec<u8>,
    pub path: Vec<u8>,
    pub cookie: Vec<u8>,
    /// The VU's cookies (RFC 6265), per `http.cookies`.
    pub jar: Jar,
    /// A wait the last response asked for (`http.on_429: wait` and its `Retry-After`), taken
    /// before the VU's next step.
    pub hold: Option<std::time::Duration>,
    /// Which of a mix entry's interleaved variants the next iteration runs: the VU's own
    /// (closed models), or its worker's, shared with the pool's other VUs (open models).
    pub turns: Turns,
    /// Connect failures in a row (reset by any step that got through), for the back-off.
    connect_failures: u32,
    /// This iteration's row of each data feeder (`usize::MAX`: not drawn yet), so that all
    /// the columns a VU reads from one feeder come from the same row.
    rows: Vec<usize>,
}

impl Vu {
    /// Renders `t` into `out` with this VU's slots, counters, random generator and cookie jar
    /// (for steps that render a template at a time; the HTTP request builder renders its parts
    /// with one `Env` of its own).
    pub fn render_into(&mut self, t: &stampede_plan::template::Template, out: &mut Vec<u8>) {
        let mut env = super::render::Env {
            slots: &self.slots,
            rng: &mut self.rng,
            vu: self.id,
            iteration: self.iteration,
            jar: Some(&self.jar),
        };
        t.render_into(out, &mut self.scratch, |e, b| env.eval(e, b));
    }

    pub fn new(worker: &Worker, id: u64) -> Vu {
        let program = &worker.program;
        Vu {
            id,
            iteration: 0,
            rng: SmallRng::seed_from_u64(worker.shared.seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            slots: vec![Bytes::new(); program.plan.slots.len()],
            sessions: Sessions::new(program.origins.len(), program.databases.len()),
            // Grown on first use and then reused: 10,000 idle VUs must stay small.
            out: Vec::new(),
            scratch: Vec::new(),
            wire: Vec::new(),
            body: Vec::new(),
            decoded: Vec::new(),
            path: Vec::new(),
            cookie: Vec::new(),
            jar: Jar::default(),
            hold: None,
            rows: vec![usize::MAX; program.plan.feeders.len()],
            turns: Turns::own(id),
            connect_failures: 0,
        }
    }

    /// Runs one iteration of a scenario picked from the phase's mix. `intended` is the
    /// arrival's scheduled time (open model): the first request's latency counts from it.
    /// Returns the scenario it ran.
    pub async fn iterate(
        &mut self,
        worker: &Worker,
        phase: &Phase,
        intended: Option<Instant>,
        stop: &CancellationToken,
        kill: &CancellationToken,
    ) -> usize {
        let scenario = self.pick(phase);
        self.feed(worker);
        let program = worker.program.clone();
        // Every iteration is a new visitor unless the plan keeps cookies.
        if program.plan.http.cookies != CookieMode::Keep {
            self.jar.clear();
        }
        let sc = &program.plan.scenarios[scenario];
        let mut started = intended;
        for (i, step) in sc.steps.iter().enumerate() {
            if kill.is_cancelled() {
                return scenario;
            }
            match (&step.kind, program.step_ids[scenario][i]) {
                (StepKind::Pause(t), _) => self.pause(t, kill).await,
                (_, Some(id)) => {
                    let start = started.take().unwrap_or_else(Instant::now);
                    let error = step::run(worker, self, id, start, stop, kill).await;
                    self.back_off_after(worker, error, kill).await;
                }
                (_, None) => {}
            }
            if let Some(t) = &step.think {
                self.pause(t, kill).await;
            }
        }
        self.iteration += 1;
        worker.shard.borrow_mut().iterations += 1;
        scenario
    }

    /// The scenario's end-of-iteration think time; cut short when the VU is asked to stop.
    pub async fn think_after(&mut self, worker: &Worker, scenario: usize, stop: &CancellationToken) {
        if let Some(t) = worker.program.plan.scenarios[scenario].think {
            sleep_unless(think_time(&t, &mut self.rng), stop).await;
        }
    }

    /// After a connect failure, waits before the VU goes on: 10 ms, doubling with each failure
    /// in a row, at most 1 s, so that a target that is down (nothing listening, every
    /// connect refused at once) gets a few connects per VU and second instead of a flood that
    /// keeps a core busy. Not timed: the wait is the generator's, not the target's.
    async fn back_off_after(&mut self, worker: &Worker, error: Option<ErrorKind>, kill: &CancellationToken) {
        if !error.is_some_and(ErrorKind::is_connect_failure) {
            self.connect_failures = 0;
            return;
        }
        self.connect_failures = self.connect_failures.saturating_add(1);
        let wait = Duration::from_millis(10u64 << (self.connect_failures - 1).min(7)).min(Duration::from_secs(1));
        {
            let mut shard = worker.shard.borrow_mut();
            shard.backoffs += 1;
            shard.backoff_ms += wait.as_millis() as u64;
        }
        sleep_unless(wait, kill).await;
    }

    async fn pause(&mut self, t: &Think, kill: &CancellationToken) {
        sleep_unless(think_time(t, &mut self.rng), kill).await;
    }

    /// The scenario of this iteration: a mix entry by weight, then, if it has interleaved
    /// variants, the one whose turn it is.
    fn pick(&mut self, phase: &Phase) -> usize {
        let i = self.pick_entry(phase);
        let w = &phase.mix[i];
        match &w.variants {
            None => w.scenario,
            Some(v) => v.scenarios[self.turns.take(i, v.scenarios.len())],
        }
    }

    /// A mix entry by weight (its index).
    fn pick_entry(&mut self, phase: &Phase) -> usize {
        if phase.mix.len() == 1 {
            return 0;
        }
        let total: u64 = phase.mix.iter().map(|w| w.weight as u64).sum();
        if total == 0 {
            return 0;
        }
        let mut x = self.rng.random_range(0..total);
        for (i, w) in phase.mix.iter().enumerate() {
            if x < w.weight as u64 {
                return i;
            }
            x -= w.weight as u64;
        }
        0
    }

    /// Fills data-feeder slots for this iteration.
    fn feed(&mut self, worker: &Worker) {
        let plan = &worker.program.plan;
        if plan.feeders.is_empty() {
            return;
        }
        self.rows.fill(usize::MAX);
        for (slot, def) in plan.slots.iter().enumerate() {
            let SlotKind::Data { feeder, column } = def.kind else {
                continue;
            };
            let Some(f) = plan.feeders.get(feeder) else {
                continue;
            };
            if f.rows.is_empty() {
                continue;
            }
            let row = if self.rows[feeder] != usize::MAX {
                self.rows[feeder]
            } else {
                let r = match f.mode {
                    FeedMode::Sequential => worker
                        .shared
                        .feeder_seq
                        .get(feeder)
                        .map(|c| c.fetch_add(1, Ordering::Relaxed))
                        .unwrap_or(0) as usize,
                    FeedMode::PerVu => (self.id.saturating_sub(1)) as usize,
                    FeedMode::Random => self.rng.random_range(0..f.rows.len()),
                } % f.rows.len();
                self.rows[feeder] = r;
                r
            };
            if let Some(v) = f.rows[row].get(column) {
                self.slots[slot] = v.clone();
            }
        }
    }
}

/// Sleeps for `d`, or until `cancel` fires.
async fn sleep_unless(d: Duration, cancel: &CancellationToken) {
    tokio::select! {
        _ = tokio::time::sleep(d) => {}
        _ = cancel.cancelled() => {}
    }
}

pub fn think_time(t: &Think, rng: &mut SmallRng) -> Duration {
    match *t {
        Think::Fixed(d) => d,
        Think::Uniform(a, b) => {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            if lo == hi {
                lo
            } else {
                Duration::from_secs_f64(rng.random_range(lo.as_secs_f64()..hi.as_secs_f64()))
            }
        }
        Think::Exponential(mean) => {
            let u: f64 = rng.random_range(f64::EPSILON..1.0);
            // Capped at 20 means so one unlucky draw cannot stall a VU for minutes.
            Duration::from_secs_f64((-u.ln()).min(20.0) * mean.as_secs_f64())
        }
    }
}
