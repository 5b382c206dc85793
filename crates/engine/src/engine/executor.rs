//! Running one phase on one worker. One executor for every load model: a driver decides when
//! VUs start and stop (closed, ramping) or when arrivals are due (open); VUs run iterations;
//! a flush task hands the recorder's interval to the controller every second.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stampede_plan::Load;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::open::{Action, NewVu, OpenPool};
use super::schedule::{Arrivals, Ramp};
use super::timer::ArrivalTimer;
use super::vu::Vu;
use super::worker::{PhaseCmd, Worker, WorkerMsg};

/// One phase's stop signals, children of the run's (`engine::Controls`) so that the phase can
/// end itself. Two, because a phase ends in two steps: `stop` first, then `kill` once in-flight
/// iterations have had the phase's `grace`.
#[derive(Clone)]
struct Stops {
    /// Start no new iterations (a VU finishes the one it is in).
    stop: CancellationToken,
    /// Cancel what is in flight; a cancelled request is recorded as `interrupted`.
    kill: CancellationToken,
    grace: Duration,
}

impl Stops {
    /// Signals of their own, for one VU that a ramp-down may end alone; the phase's still reach it.
    fn child(&self) -> Stops {
        Stops {
            stop: self.stop.child_token(),
            kill: self.kill.child_token(),
            grace: self.grace,
        }
    }

    /// Stops now, kills once the grace period has passed (unless the returned task is aborted
    /// first, as when everything has finished).
    fn stop_then_kill(&self) -> tokio::task::JoinHandle<()> {
        self.stop.cancel();
        let (kill, grace) = (self.kill.clone(), self.grace);
        tokio::task::spawn_local(async move {
            tokio::time::sleep(grace).await;
            kill.cancel();
        })
    }
}

pub async fn run_phase(worker: Rc<Worker>, cmd: PhaseCmd, out: UnboundedSender<WorkerMsg>) {
    let program = worker.program.clone();
    let phase = &program.plan.phases[cmd.phase];
    let stops = Stops {
        stop: cmd.stop.child_token(),
        kill: cmd.kill.child_token(),
        grace: phase.grace,
    };
    sleep_until(cmd.start).await;

    let flush_done = CancellationToken::new();
    let flusher = tokio::task::spawn_local(flush_loop(
        worker.clone(),
        cmd.phase,
        cmd.start,
        out.clone(),
        flush_done.clone(),
    ));

    let mut vus: JoinSet<()> = JoinSet::new();
    match &phase.load {
        Load::Closed { vus: n, duration } => {
            spawn_fixed_vus(&worker, cmd.phase, *n, &stops, None, &mut vus);
            deadline_or_stop(cmd.start + *duration, &stops.stop).await;
        }
        Load::RampingVus { start_vus, stages } => {
            let ramp = Ramp::new(*start_vus as f64, stages);
            drive_ramping_vus(&worker, cmd.phase, cmd.start, &ramp, &stops, &mut vus).await;
        }
        Load::Open { max_vus, pre_vus, .. } | Load::RampingRate { max_vus, pre_vus, .. } => {
            let arrivals = match &phase.load {
                Load::Open { rate, duration, .. } => Arrivals::constant(*rate, *duration),
                Load::RampingRate { start_rate, stages, .. } => Arrivals::ramp(*start_rate, stages),
                _ => unreachable!("matched an open model above"),
            };
            drive_arrivals(
                &worker, cmd.phase, cmd.start, arrivals, *max_vus, *pre_vus, &stops, &mut vus,
            )
            .await;
        }
        Load::Iterations {
            vus: n, max_duration, ..
        } => {
            spawn_fixed_vus(
                &worker,
                cmd.phase,
                *n,
                &stops,
                Some(cmd.iterations_left.clone()),
                &mut vus,
            );
            let all_done = async { while vus.join_next().await.is_some() {} };
            tokio::select! {
                _ = all_done => {}
                _ = deadline_or_stop(cmd.start + *max_duration, &stops.stop) => {}
            }
        }
    }

    // Time is up: no new iterations; those in flight get the grace period, then are cancelled.
    let killer = stops.stop_then_kill();
    while vus.join_next().await.is_some() {}
    killer.abort();
    worker.shard.borrow_mut().vus = 0;
    flush_done.cancel();
    let _ = flusher.await;
}

/// This worker's share of `n` closed-model VUs (optionally sharing an iteration budget).
fn spawn_fixed_vus(
    worker: &Rc<Worker>,
    phase: usize,
    n: u32,
    stops: &Stops,
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    vus: &mut JoinSet<()>,
) {
    for id in worker.share.items_below(n as u64) {
        vus.spawn_local(closed_vu(worker.clone(), phase, id + 1, stops.clone(), budget.clone()));
    }
}

async fn deadline_or_stop(deadline: Instant, stop: &CancellationToken) {
    tokio::select! {
        _ = sleep_until(deadline) => {}
        _ = stop.cancelled() => {}
    }
}

/// Sends the shard's interval every second, aligned to the phase start, and a last, partial
/// one when the phase ends.
/// How often the flush task also measures its own lateness: a timer on the worker's thread that
/// fires late says the thread was busy (or the machine's cores were), and every VU, arrival and
/// iteration start on it waited as long. 100 wake-ups a second, off the per-request path.
const LATENESS_PROBE: Duration = Duration::from_millis(10);

async fn flush_loop(
    worker: Rc<Worker>,
    phase: usize,
    start: Instant,
    out: UnboundedSender<WorkerMsg>,
    done: CancellationToken,
) {
    let mut seq = 0u64;
    let mut probe = start;
    loop {
        let next = start + Duration::from_secs(seq + 1);
        let due = (probe + LATENESS_PROBE).min(next);
        tokio::select! {
            _ = sleep_until(due) => {
                let now = Instant::now();
                let mut shard = worker.shard.borrow_mut();
                shard.record_late(now.saturating_duration_since(due));
                // The next probe counts from the wake-up, so one stall is counted once.
                probe = now;
                if due >= next {
                    let data = shard.take();
                    drop(shard);
                    let _ = out.send(WorkerMsg::Interval { worker: worker.index, phase, seq, data, ended: None });
                    seq += 1;
                }
            }
            _ = done.cancelled() => {
                let data = worker.shard.borrow_mut().take();
                let _ = out.send(WorkerMsg::Interval { worker: worker.index, phase, seq, data, ended: Some(Instant::now()) });
                return;
            }
        }
    }
}

/// A closed-model VU: iterates until told to stop (or, with `budget`, until the shared
/// iteration budget is spent).
async fn closed_vu(
    worker: Rc<Worker>,
    phase: usize,
    id: u64,
    stops: Stops,
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) {
    {
        let program = worker.program.clone();
        let phase = &program.plan.phases[phase];
        let mut vu = Vu::new(&worker, id);
        worker.shard.borrow_mut().vus += 1;
        while !stops.stop.is_cancelled() && !stops.kill.is_cancelled() {
            if let Some(b) = &budget {
                if b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
                {
                    break;
                }
            }
            let sc = vu.iterate(&worker, phase, None, &stops.stop, &stops.kill).await;
            vu.think_after(&worker, sc, &stops.stop).await;
        }
        worker.shard.borrow_mut().vus -= 1;
    }
}

async fn drive_ramping_vus(
    worker: &Rc<Worker>,
    phase: usize,
    start: Instant,
    ramp: &Ramp,
    stops: &Stops,
    vus: &mut JoinSet<()>,
) {
    // Active VUs, lowest number first; ramp-down stops the highest.
    let mut active: Vec<Stops> = Vec::new();
    let end = start + ramp.total();
    let tick = Duration::from_millis(20);
    loop {
        let now = Instant::now();
        let target = ramp.at(now.saturating_duration_since(start)).floor().max(0.0) as u64;
        let want = worker.share.count_below(target) as usize;
        while active.len() < want {
            let id = worker.share.first() + worker.share.stride() * active.len() as u64;
            let vu = stops.child();
            vus.spawn_local(closed_vu(worker.clone(), phase, id + 1, vu.clone(), None));
            active.push(vu);
        }
        while active.len() > want {
            if let Some(vu) = active.pop() {
                vu.stop_then_kill();
            }
        }
        if now >= end || stops.stop.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = sleep_until((now + tick).min(end)) => {}
            _ = stops.stop.cancelled() => return,
        }
    }
}

/// The open model: an [`OpenPool`] decides, this loop sleeps, wakes and spawns as told, and
/// ends the phase: arrivals still waiting for a free VU when the time is up never start, and
/// are counted as dropped; iterations in flight get the grace period.
#[allow(clippy::too_many_arguments)]
async fn drive_arrivals(
    worker: &Rc<Worker>,
    phase: usize,
    start: Instant,
    arrivals: Arrivals,
    max_vus: u32,
    pre_vus: u32,
    stops: &Stops,
    vus: &mut JoinSet<()>,
) {
    let end = start + Duration::from_secs_f64(arrivals.duration_s());
    let Some(share) = worker.share.among_owners_of(max_vus as u64) else {
        // No VU here, so no arrivals either: the workers that have VUs take them all.
        deadline_or_stop(end, &stops.stop).await;
        return;
    };
    let timer = ArrivalTimer::new();
    let pool = OpenPool::new(arrivals, start, share, max_vus, pre_vus, timer.tolerance());
    let pool = Rc::new(RefCell::new(pool));
    loop {
        let (action, waiting) = {
            let mut pool = pool.borrow_mut();
            (pool.next_action(Instant::now()), pool.waiting())
        };
        worker.shard.borrow_mut().waiting = waiting;
        match action {
            Action::Wake(vu) => vu.notify_one(),
            Action::Spawn(vu) => {
                vus.spawn_local(open_vu(worker.clone(), phase, pool.clone(), stops.clone(), vu));
            }
            Action::Sleep(at) => tokio::select! {
                _ = timer.sleep_until(at) => {}
                _ = stops.stop.cancelled() => break,
            },
            Action::Done => break,
        }
    }
    // Wait out the phase's nominal end, so the last second is measured like the others.
    deadline_or_stop(end, &stops.stop).await;
    stops.stop.cancel();
    // Time is up. Arrivals just handed to a VU that was woken for them start as that VU runs
    // (a yield lets it); those for which no VU was free never started and are dropped, as in
    // k6. Only iterations in flight get the grace period, so a phase lasts at most its
    // duration plus the grace, however stalled the target.
    for _ in 0..4 {
        let before = pool.borrow().waiting();
        tokio::task::yield_now().await;
        let after = pool.borrow().waiting();
        if after == 0 || after == before {
            break;
        }
    }
    let dropped = pool.borrow_mut().close();
    let mut shard = worker.shard.borrow_mut();
    shard.dropped += dropped;
    shard.waiting = 0;
}

/// An open-model VU: runs the arrivals the pool hands it (see [`NewVu`] for how it starts).
async fn open_vu(worker: Rc<Worker>, phase: usize, pool: Rc<RefCell<OpenPool>>, stops: Stops, me: NewVu) {
    {
        let program = worker.program.clone();
        let phase = &program.plan.phases[phase];
        let NewVu {
            id,
            notify,
            mut summoned,
        } = me;
        let mut vu = Vu::new(&worker, id + 1);
        vu.turns = pool.borrow().turns.clone();
        let mut used = false;
        worker.shard.borrow_mut().vus += 1;
        if !summoned {
            tokio::select! {
                _ = notify.notified() => summoned = true,
                _ = stops.stop.cancelled() => {}
            }
        }
        loop {
            // Once in-flight work is killed, nothing more starts.
            if stops.kill.is_cancelled() {
                break;
            }
            let next = {
                let mut pool = pool.borrow_mut();
                let next = pool.take(std::mem::take(&mut summoned));
                next.map(|intended| (intended, pool.waiting()))
            };
            match next {
                Some((intended, waiting)) => {
                    worker.shard.borrow_mut().waiting = waiting;
                    vu.iterate(&worker, phase, Some(intended), &stops.stop, &stops.kill)
                        .await;
                    pool.borrow_mut().finished();
                    used = true;
                }
                None if stops.stop.is_cancelled() => break,
                None => {
                    pool.borrow_mut().park(notify.clone(), used);
                    tokio::select! {
                        _ = notify.notified() => summoned = !used,
                        _ = stops.stop.cancelled() => {}
                    }
                }
            }
        }
        worker.shard.borrow_mut().vus -= 1;
    }
}
