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
use super::timer::{ArrivalTimer, COALESCE};
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

/// How long an arrival waits for a warm VU before a cold one (never used: no connection yet) is
/// woken or a new one spawned, when some VU is busy and may be free sooner. Without it, while
/// a cold VU's first request (connect included) takes longer than the gap between arrivals,
/// every arrival wakes another cold VU, whose connect slows the worker further. The wait is
/// latency, and counted; once the working set has grown to what the load needs, it is rare.
const GROW_AFTER: Duration = Duration::from_micros(500);

/// Open-model arrivals waiting for a free VU, and the VUs waiting for an arrival.
struct Queue {
    waiting: RefCell<VecDeque<Instant>>,
    /// Idle VUs that have run an iteration, the most recently idle last. An arrival wakes the
    /// top one, so the VUs (and connections) that just worked take the next arrivals. A
    /// first-in-first-out wake-up would rotate through every VU, and through every connection.
    warm: RefCell<Vec<Rc<Notify>>>,
    /// Idle VUs that never ran an iteration; woken only to grow the working set.
    cold: RefCell<Vec<Rc<Notify>>>,
    /// VUs inside an iteration.
    busy: Cell<u32>,
    /// VUs woken from `cold` or spawned for waiting arrivals that have not yet taken one.
    starting: Cell<u32>,
}

impl Queue {
    /// Wakes the most recently idle warm VU; false if none is idle.
    fn wake_warm(&self) -> bool {
        let top = self.warm.borrow_mut().pop();
        top.map(|vu| vu.notify_one()).is_some()
    }

    /// How many cold VUs to summon now: one per arrival that has waited at least `GROW_AFTER`
    /// and that no starting VU will take, but at most half as many again as are busy (and at
    /// least one). A backlog is served by the VUs already working as much as by new ones, and
    /// summoning one VU per waiting arrival at once turned a start-up backlog into a storm of
    /// connects (40,000/s, one core, `pre_vus: 2000`: 2,000 connections and a p99 of 110 ms;
    /// with the cap, 112 connections and 1.3 ms).
    fn to_summon(&self, now: Instant) -> u32 {
        let cap = 1 + self.busy.get() / 2;
        let old = self
            .waiting
            .borrow()
            .iter()
            .take((self.starting.get() + cap) as usize)
            .take_while(|&&t| now.saturating_duration_since(t) >= GROW_AFTER)
            .count();
        (old as u32).saturating_sub(self.starting.get()).min(cap)
    }
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
        warm: RefCell::new(Vec::new()),
        cold: RefCell::new(Vec::new()),
        busy: Cell::new(0),
        starting: Cell::new(0),
    });
    let end = start + total_of(arrivals);
    let Some(share) = worker.share.among_owners_of(max_vus as u64) else {
        // No VU here, so no arrivals either: the workers that have VUs take them all.
        deadline_or_stop(end, &stops.soft).await;
        return;
    };
    let local_max = share.count_below(max_vus as u64);
    let mut ids = share.items_below(max_vus as u64);
    let mut spawned = 0u64;
    // Adds a VU. `summoned`: for a waiting arrival, so a cold one if any is idle, else a new one
    // (counted in `starting` until it looks for the arrival). Otherwise a pre-started VU, listed
    // as cold from the start so that it can be summoned before its task first runs. False when
    // there was none to wake and the budget is spent.
    let mut grow = |vus: &mut JoinSet<()>, spawned: &mut u64, summoned: bool| -> bool {
        if summoned {
            if let Some(vu) = queue.cold.borrow_mut().pop() {
                queue.starting.set(queue.starting.get() + 1);
                vu.notify_one();
                return true;
            }
        }
        let Some(id) = ids.next().filter(|_| *spawned < local_max) else {
            return false;
        };
        let me = Rc::new(Notify::new());
        if summoned {
            queue.starting.set(queue.starting.get() + 1);
        } else {
            queue.cold.borrow_mut().push(me.clone());
        }
        let vu = open_vu(
            worker.clone(),
            phase,
            id + 1,
            queue.clone(),
            stops.clone(),
            me,
            summoned,
        );
        vus.spawn_local(vu);
        *spawned += 1;
        true
    };
    for _ in 0..share.count_below(pre_vus.min(max_vus) as u64) {
        grow(vus, &mut spawned, false);
    }
    let mut k = share.first();
    let stride = share.stride();
    let mut dropped = 0u64;
    let timer = ArrivalTimer::new();
    // When to look again for arrivals that waited `GROW_AFTER` for a warm VU.
    let mut grow_at: Option<Instant> = None;
    // How late the last arrival was released.
    let mut lag = Duration::ZERO;
    while let Some(t) = arrivals.time_of(k) {
        let due = start + Duration::from_secs_f64(t);
        if grow_at.is_some_and(|at| Instant::now() >= at) {
            grow_at = check_growth(&queue, lag > timer.tolerance(), |n| {
                (0..n).all(|_| grow(vus, &mut spawned, true))
            });
        }
        if Instant::now() < due {
            let wake = batch_end(arrivals, start, k, stride, due);
            let wake = grow_at.map_or(wake, |at| at.min(wake));
            tokio::select! {
                _ = timer.sleep_until(wake) => {}
                _ = stops.soft.cancelled() => break,
            }
            if Instant::now() < due {
                continue; // woke to grow the working set
            }
        }
        lag = Instant::now().saturating_duration_since(due);
        let len = {
            let mut w = queue.waiting.borrow_mut();
            if w.len() >= MAX_WAITING {
                dropped += 1;
            } else {
                w.push_back(due);
            }
            w.len()
        };
        if !queue.wake_warm() {
            // No VU is working, so none will come free: start one now.
            let started = queue.busy.get() == 0 && queue.starting.get() == 0 && grow(vus, &mut spawned, true);
            if !started && grow_at.is_none() && (spawned < local_max || !queue.cold.borrow().is_empty()) {
                grow_at = Some(due + GROW_AFTER);
            }
        }
        worker.shard.borrow_mut().waiting = len as u64;
        k += stride;
    }
    // Wait out the phase's nominal end, so the last second is measured like the others; the
    // last arrivals may still need the working set to grow meanwhile.
    while let Some(at) = grow_at.filter(|&at| at < end) {
        tokio::select! {
            _ = timer.sleep_until(at) => {}
            _ = stops.soft.cancelled() => break,
        }
        grow_at = check_growth(&queue, lag > timer.tolerance(), |n| {
            (0..n).all(|_| grow(vus, &mut spawned, true))
        });
    }
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

/// When to wake for the arrival due at `due` (number `k`): at the last of the arrivals due
/// within [`COALESCE`] of it, so that one wake-up releases them all. No arrival is released
/// before its time, none more than `COALESCE` after it, and below 1 / `COALESCE` arrivals/s per
/// worker every arrival gets a wake-up of its own.
fn batch_end(arrivals: &Arrivals, start: Instant, k: u64, stride: u64, due: Instant) -> Instant {
    let mut wake = due;
    let mut j = k + stride;
    while let Some(t) = arrivals.time_of(j) {
        let next = start + Duration::from_secs_f64(t);
        if next > due + COALESCE {
            break;
        }
        wake = next;
        j += stride;
    }
    wake
}

/// A growth check: summons what [`Queue::to_summon`] asks for through `summon` (false once
/// nothing is left to summon), unless the worker is `behind` schedule. Returns when to check again:
/// in `GROW_AFTER` while arrivals wait and VUs could still be added, else never.
fn check_growth(queue: &Queue, behind: bool, mut summon: impl FnMut(u32) -> bool) -> Option<Instant> {
    let can_grow = behind || summon(queue.to_summon(Instant::now()));
    (can_grow && !queue.waiting.borrow().is_empty()).then(|| Instant::now() + GROW_AFTER)
}

fn total_of(a: &Arrivals) -> Duration {
    Duration::from_secs_f64(a.duration_s())
}

/// An open-model VU, woken through `me`. `summoned`: started for a waiting arrival (counted in
/// `queue.starting` until it looks for one); otherwise it is listed in `queue.cold` already and
/// waits to be summoned, even while arrivals wait: at a high rate the backlog of the first
/// moments would otherwise give every pre-started VU work (and a connect) at once.
async fn open_vu(
    worker: Rc<Worker>,
    phase: usize,
    id: u64,
    queue: Rc<Queue>,
    stops: Stops,
    me: Rc<Notify>,
    mut summoned: bool,
) {
    {
        let program = worker.program.clone();
        let phase = &program.plan.phases[phase];
        let mut vu = Vu::new(&worker, id);
        let mut used = false;
        worker.shard.borrow_mut().vus += 1;
        if !summoned {
            tokio::select! {
                _ = me.notified() => summoned = true,
                _ = stops.soft.cancelled() => {}
            }
        }
        loop {
            // Arrivals due before the phase ended still run after it (within the grace period);
            // once in-flight work is cancelled, what is left is counted as dropped instead.
            if stops.hard.is_cancelled() {
                break;
            }
            let next = queue.waiting.borrow_mut().pop_front();
            if std::mem::take(&mut summoned) {
                queue.starting.set(queue.starting.get() - 1);
            }
            match next {
                Some(intended) => {
                    worker.shard.borrow_mut().waiting = queue.waiting.borrow().len() as u64;
                    queue.busy.set(queue.busy.get() + 1);
                    vu.iterate(&worker, phase, Some(intended), &stops.hard).await;
                    queue.busy.set(queue.busy.get() - 1);
                    used = true;
                }
                None if stops.soft.is_cancelled() => break,
                None => {
                    // Popped from its stack before it is notified, so it is listed at most once;
                    // one woken by the phase's end may stay listed, but no arrival follows.
                    let stack = if used { &queue.warm } else { &queue.cold };
                    stack.borrow_mut().push(me.clone());
                    tokio::select! {
                        _ = me.notified() => summoned = !used,
                        _ = stops.soft.cancelled() => {}
                    }
                }
            }
        }
        worker.shard.borrow_mut().vus -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wake-up is the time of an arrival, never before the first pending one and at most
    /// `COALESCE` after it; sparse arrivals each get their own.
    #[test]
    fn batches_stay_within_the_window() {
        let start = Instant::now();
        let at = |a: &Arrivals, k: u64| start + Duration::from_secs_f64(a.time_of(k).unwrap());
        // 35,000/s, one worker: arrivals 28.6 µs apart, so 4 share a wake-up (0 … 85.7 µs).
        let dense = Arrivals::constant(35_000.0, Duration::from_secs(1));
        let wake = batch_end(&dense, start, 0, 1, at(&dense, 0));
        assert_eq!(wake, at(&dense, 3));
        for k in [7, 1_000, 34_990] {
            let due = at(&dense, k);
            let wake = batch_end(&dense, start, k, 1, due);
            assert!(wake >= due && wake <= due + COALESCE, "arrival {k}");
        }
        // The last arrivals: the batch stops at the end of the schedule.
        assert_eq!(
            batch_end(&dense, start, 34_999, 1, at(&dense, 34_999)),
            at(&dense, 34_999)
        );
        // Two workers share the stream: each sees every other arrival, 57.1 µs apart.
        assert_eq!(batch_end(&dense, start, 1, 2, at(&dense, 1)), at(&dense, 3));
        // 5,000/s: 200 µs apart, no company.
        let sparse = Arrivals::constant(5_000.0, Duration::from_secs(1));
        assert_eq!(batch_end(&sparse, start, 10, 1, at(&sparse, 10)), at(&sparse, 10));
    }
}
