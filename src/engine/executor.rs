//! Running one phase on one worker. One executor for every load model: a driver decides when
//! VUs start and stop (closed, ramping) or when arrivals are due (open); VUs run iterations;
//! a flush task hands the recorder's interval to the controller every second.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use stampede_plan::Load;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use super::schedule::{Arrivals, Ramp};
use super::timer::ArrivalTimer;
use super::vu::Vu;
use super::worker::{PhaseCmd, Worker, WorkerMsg};

/// Queued arrivals beyond this many are dropped (and counted), so a frozen target cannot make
/// the generator run out of memory.
const MAX_WAITING: usize = 1_000_000;

/// Per-phase stop signals.
#[derive(Clone)]
struct Stops {
    /// No new iterations.
    soft: CancellationToken,
    /// Cancel what is in flight.
    hard: CancellationToken,
    grace: Duration,
}

pub async fn run_phase(worker: Rc<Worker>, cmd: PhaseCmd, out: UnboundedSender<WorkerMsg>) {
    let program = worker.program.clone();
    let phase = &program.plan.phases[cmd.phase];
    let stops = Stops {
        soft: cmd.stop.child_token(),
        hard: cmd.kill.child_token(),
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
            deadline_or_stop(cmd.start + *duration, &stops.soft).await;
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
                &worker, cmd.phase, cmd.start, &arrivals, *max_vus, *pre_vus, &stops, &mut vus,
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
                _ = deadline_or_stop(cmd.start + *max_duration, &stops.soft) => {}
            }
        }
    }

    // Time is up: no new iterations; those in flight get the grace period, then are cancelled.
    stops.soft.cancel();
    let hard = stops.hard.clone();
    let grace = stops.grace;
    let killer = tokio::task::spawn_local(async move {
        tokio::time::sleep(grace).await;
        hard.cancel();
    });
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
        vus.spawn_local(closed_vu(
            worker.clone(),
            phase,
            id + 1,
            stops.soft.clone(),
            stops.hard.clone(),
            budget.clone(),
        ));
    }
}

async fn deadline_or_stop(deadline: Instant, soft: &CancellationToken) {
    tokio::select! {
        _ = sleep_until(deadline) => {}
        _ = soft.cancelled() => {}
    }
}

/// Sends the shard's interval every second, aligned to the phase start, and a last, partial
/// one when the phase ends.
async fn flush_loop(
    worker: Rc<Worker>,
    phase: usize,
    start: Instant,
    out: UnboundedSender<WorkerMsg>,
    done: CancellationToken,
) {
    let mut seq = 0u64;
    loop {
        let next = start + Duration::from_secs(seq + 1);
        tokio::select! {
            _ = sleep_until(next) => {
                let data = worker.shard.borrow_mut().take();
                let _ = out.send(WorkerMsg::Interval { worker: worker.index, phase, seq, data, ended: None });
                seq += 1;
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
    soft: CancellationToken,
    hard: CancellationToken,
    budget: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
) {
    {
        let program = worker.program.clone();
        let phase = &program.plan.phases[phase];
        let mut vu = Vu::new(&worker, id);
        worker.shard.borrow_mut().vus += 1;
        while !soft.is_cancelled() && !hard.is_cancelled() {
            if let Some(b) = &budget {
                if b.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_err()
                {
                    break;
                }
            }
            let sc = vu.iterate(&worker, phase, None, &hard).await;
            vu.think_after(&worker, sc, &soft).await;
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
    let mut active: Vec<(CancellationToken, CancellationToken)> = Vec::new();
    let end = start + ramp.total();
    let tick = Duration::from_millis(20);
    loop {
        let now = Instant::now();
        let target = ramp.at(now.saturating_duration_since(start)).floor().max(0.0) as u64;
        let want = worker.share.count_below(target) as usize;
        while active.len() < want {
            let id = worker.share.first() + worker.share.stride() * active.len() as u64;
            let soft = stops.soft.child_token();
            let hard = stops.hard.child_token();
            vus.spawn_local(closed_vu(
                worker.clone(),
                phase,
                id + 1,
                soft.clone(),
                hard.clone(),
                None,
            ));
            active.push((soft, hard));
        }
        while active.len() > want {
            if let Some((soft, hard)) = active.pop() {
                soft.cancel();
                let grace = stops.grace;
                tokio::task::spawn_local(async move {
                    tokio::time::sleep(grace).await;
                    hard.cancel();
                });
            }
        }
        if now >= end || stops.soft.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = sleep_until((now + tick).min(end)) => {}
            _ = stops.soft.cancelled() => return,
        }
    }
}

/// Open-model arrivals waiting for a free VU.
struct Queue {
    waiting: RefCell<VecDeque<Instant>>,
    notify: Notify,
    idle: Cell<u32>,
}

#[allow(clippy::too_many_arguments)]
async fn drive_arrivals(
    worker: &Rc<Worker>,
    phase: usize,
    start: Instant,
    arrivals: &Arrivals,
    max_vus: u32,
    pre_vus: u32,
    stops: &Stops,
    vus: &mut JoinSet<()>,
) {
    let queue = Rc::new(Queue {
        waiting: RefCell::new(VecDeque::new()),
        notify: Notify::new(),
        idle: Cell::new(0),
    });
    let local_max = worker.share.count_below(max_vus as u64);
    let mut ids = worker.share.items_below(max_vus as u64);
    let mut spawned = 0u64;
    let mut spawn = |vus: &mut JoinSet<()>, spawned: &mut u64| {
        if let Some(id) = ids.next() {
            vus.spawn_local(open_vu(worker.clone(), phase, id + 1, queue.clone(), stops.clone()));
            *spawned += 1;
        }
    };
    for _ in 0..worker.share.count_below(pre_vus.min(max_vus) as u64) {
        spawn(vus, &mut spawned);
    }
    let mut k = worker.share.first();
    let stride = worker.share.stride();
    let mut dropped = 0u64;
    let timer = ArrivalTimer::new();
    while let Some(t) = arrivals.time_of(k) {
        let due = start + Duration::from_secs_f64(t);
        if Instant::now() < due {
            tokio::select! {
                _ = timer.sleep_until(due) => {}
                _ = stops.soft.cancelled() => break,
            }
        }
        let len = {
            let mut w = queue.waiting.borrow_mut();
            if w.len() >= MAX_WAITING {
                dropped += 1;
            } else {
                w.push_back(due);
            }
            w.len()
        };
        if queue.idle.get() == 0 && spawned < local_max {
            spawn(vus, &mut spawned);
        }
        queue.notify.notify_one();
        worker.shard.borrow_mut().waiting = len as u64;
        k += stride;
    }
    // Wait out the phase's nominal end, so the last second is measured like the others.
    let end = start + total_of(arrivals);
    deadline_or_stop(end, &stops.soft).await;
    stops.soft.cancel();
    // Arrivals already due wait for a VU until the grace period runs out; those still waiting
    // then never ran: they are dropped, and counted.
    let drained = async {
        while !queue.waiting.borrow().is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(stops.grace, drained) => {}
        _ = stops.hard.cancelled() => {}
    }
    let left = queue.waiting.borrow_mut().drain(..).count() as u64;
    let mut shard = worker.shard.borrow_mut();
    shard.dropped += dropped + left;
    shard.waiting = 0;
}

fn total_of(a: &Arrivals) -> Duration {
    Duration::from_secs_f64(a.duration_s())
}

async fn open_vu(worker: Rc<Worker>, phase: usize, id: u64, queue: Rc<Queue>, stops: Stops) {
    {
        let program = worker.program.clone();
        let phase = &program.plan.phases[phase];
        let mut vu = Vu::new(&worker, id);
        worker.shard.borrow_mut().vus += 1;
        loop {
            // Arrivals due before the phase ended still run after it (within the grace period);
            // once in-flight work is cancelled, what is left is counted as dropped instead.
            if stops.hard.is_cancelled() {
                break;
            }
            let next = queue.waiting.borrow_mut().pop_front();
            match next {
                Some(intended) => {
                    worker.shard.borrow_mut().waiting = queue.waiting.borrow().len() as u64;
                    vu.iterate(&worker, phase, Some(intended), &stops.hard).await;
                }
                None if stops.soft.is_cancelled() => break,
                None => {
                    queue.idle.set(queue.idle.get() + 1);
                    tokio::select! {
                        _ = queue.notify.notified() => {}
                        _ = stops.soft.cancelled() => {}
                    }
                    queue.idle.set(queue.idle.get() - 1);
                }
            }
        }
        worker.shard.borrow_mut().vus -= 1;
    }
}
