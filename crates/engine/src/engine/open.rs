//! The open model's decisions on one worker: when each arrival is released, which VU takes it,
//! when the working set grows, and what is dropped. [`OpenPool`] is plain data whose methods take
//! the time as an argument, so its rules are tested with a made-up clock; the async driver in
//! `executor.rs` only sleeps, wakes and spawns as it is told.

use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::schedule::{Arrivals, Share};
use super::timer::COALESCE;
use super::turns::Turns;

/// Queued arrivals beyond this many are dropped (and counted), so a frozen target cannot make
/// the generator run out of memory.
const MAX_WAITING: usize = 1_000_000;

/// How long an arrival waits for a warm VU before a cold one (never used: no connection yet) is
/// woken or a new one spawned, when some VU is busy and may be free sooner. Without it, while
/// a cold VU's first request (connect included) takes longer than the gap between arrivals,
/// every arrival wakes another cold VU, whose connect slows the worker further. The wait is
/// latency, and counted; once the working set has grown to what the load needs, it is rare.
const GROW_AFTER: Duration = Duration::from_micros(500);

/// A VU the driver is to spawn.
pub struct NewVu {
    /// Its number within the phase (from 0).
    pub id: u64,
    /// What it parks on; the pool hands it out to wake it.
    pub notify: Rc<Notify>,
    /// Started for a waiting arrival (and counted as starting until it looks for one);
    /// otherwise pre-started: already listed as cold, it waits to be summoned, even while
    /// arrivals wait, since at a high rate the backlog of the first moments would otherwise give
    /// every pre-started VU work (and a connect) at once.
    pub summoned: bool,
}

/// What the driver does next, as [`OpenPool::next_action`] decides.
pub enum Action {
    /// Notify this parked VU: a warm one for the arrival just released, or a cold one summoned
    /// to grow the working set.
    Wake(Rc<Notify>),
    /// Spawn this VU.
    Spawn(NewVu),
    /// Nothing to do before this instant (unless the phase is stopped).
    Sleep(Instant),
    /// Every arrival is released and no growth check is due before the phase's end.
    Done,
}

/// One worker's open-model arrivals and VUs for one phase. The driver and the VUs share it
/// (one thread, never borrowed across an await). Nothing here allocates but a new VU's
/// `Notify` (and the queue's growth), so releasing an arrival costs what a queue push does.
pub struct OpenPool {
    arrivals: Arrivals,
    start: Instant,
    end: Instant,
    /// The next arrival this worker releases (a global arrival number), and when it is due.
    next: u64,
    due: Option<Instant>,
    /// This worker's arrivals and VU numbers: `first`, `first + stride`, …
    first: u64,
    stride: u64,
    /// Arrivals released and waiting for a VU, by intended start, oldest first.
    waiting: VecDeque<Instant>,
    max_waiting: usize,
    /// Idle VUs that have run an iteration, the most recently idle last. An arrival wakes the
    /// top one, so the VUs (and connections) that just worked take the next arrivals. A
    /// first-in-first-out wake-up would rotate through every VU, and through every connection.
    warm: Vec<Rc<Notify>>,
    /// Idle VUs that never ran an iteration; woken only to grow the working set.
    cold: Vec<Rc<Notify>>,
    /// VUs inside an iteration.
    busy: u32,
    /// VUs woken from `cold` or spawned for waiting arrivals that have not yet taken one.
    starting: u32,
    /// VUs spawned, of at most `max`; the first `pre` are pre-started.
    spawned: u64,
    max: u64,
    pre: u64,
    /// When to look again for arrivals that waited `GROW_AFTER` for a warm VU.
    grow_at: Option<Instant>,
    /// VUs a growth check still has to summon (one per action), while one is under way.
    summons: Option<u32>,
    /// A release was just made: a due growth check comes before the next release.
    check_next: bool,
    /// How late the last arrival was released, and how late counts as behind schedule.
    lag: Duration,
    tolerance: Duration,
    /// Arrivals dropped because `max_waiting` were already waiting.
    dropped: u64,
    /// Interleaved variants' turns, shared by the worker's VUs (see [`Turns`]).
    pub turns: Turns,
}

impl OpenPool {
    /// `share`: this worker's arrivals and VUs (already dealt among the workers that own a VU);
    /// `tolerance`: the arrival timer's (see `ArrivalTimer::tolerance`).
    pub fn new(
        arrivals: Arrivals,
        start: Instant,
        share: Share,
        max_vus: u32,
        pre_vus: u32,
        tolerance: Duration,
    ) -> OpenPool {
        let first = share.first();
        let mut pool = OpenPool {
            end: start + Duration::from_secs_f64(arrivals.duration_s()),
            arrivals,
            start,
            next: first,
            due: None,
            first,
            stride: share.stride(),
            waiting: VecDeque::new(),
            max_waiting: MAX_WAITING,
            warm: Vec::new(),
            cold: Vec::new(),
            busy: 0,
            starting: 0,
            spawned: 0,
            max: share.count_below(max_vus as u64),
            pre: share.count_below(pre_vus.min(max_vus) as u64),
            grow_at: None,
            summons: None,
            check_next: false,
            lag: Duration::ZERO,
            tolerance,
            dropped: 0,
            turns: Turns::shared(first),
        };
        pool.due = pool.due_of(first);
        pool
    }

    /// The driver's next move at `now`. It is called again after each one (after a `Sleep`,
    /// once that instant has come) until `Done`. Pre-started VUs come first; then, in turn,
    /// each due arrival is released and a due growth check is made, so that a wake-up releases
    /// the arrival it was set for before anything else delays it.
    pub fn next_action(&mut self, now: Instant) -> Action {
        if self.spawned < self.pre {
            return Action::Spawn(self.spawn(false));
        }
        loop {
            if let Some(n) = self.summons {
                if n == 0 {
                    // The check is over: look again in `GROW_AFTER` while arrivals still wait.
                    self.summons = None;
                    self.grow_at = (!self.waiting.is_empty()).then(|| now + GROW_AFTER);
                } else if let Some(action) = self.summon() {
                    self.summons = Some(n - 1);
                    return action;
                } else {
                    // Nothing left to add: no more checks.
                    self.summons = None;
                    self.grow_at = None;
                }
                continue;
            }
            if std::mem::take(&mut self.check_next) && self.check_due(now) {
                self.begin_check(now);
                continue;
            }
            match self.due {
                Some(due) if now >= due => {
                    self.check_next = true;
                    if let Some(action) = self.release(due, now) {
                        return action;
                    }
                }
                _ if self.check_due(now) => self.begin_check(now),
                Some(due) => {
                    let wake = self.batch_end(due);
                    return Action::Sleep(self.grow_at.map_or(wake, |at| at.min(wake)));
                }
                // The phase's last second is measured like the others: the last arrivals may
                // still need the working set to grow before it ends.
                None => {
                    return self
                        .grow_at
                        .filter(|&at| at < self.end)
                        .map_or(Action::Done, Action::Sleep)
                }
            }
        }
    }

    /// Queues the arrival due at `due` (or drops it, past `max_waiting`) and hands it to the
    /// most recently idle warm VU. With none, a VU is started at once if no VU is working, as
    /// none will come free; otherwise a growth check is scheduled.
    fn release(&mut self, due: Instant, now: Instant) -> Option<Action> {
        self.lag = now.saturating_duration_since(due);
        if self.waiting.len() >= self.max_waiting {
            self.dropped += 1;
        } else {
            self.waiting.push_back(due);
        }
        self.next += self.stride;
        self.due = self.due_of(self.next);
        if let Some(vu) = self.warm.pop() {
            return Some(Action::Wake(vu));
        }
        if self.busy == 0 && self.starting == 0 {
            if let Some(action) = self.summon() {
                return Some(action);
            }
        }
        if self.grow_at.is_none() && (self.spawned < self.max || !self.cold.is_empty()) {
            self.grow_at = Some(due + GROW_AFTER);
        }
        None
    }

    fn due_of(&self, k: u64) -> Option<Instant> {
        self.arrivals
            .time_of(k)
            .map(|t| self.start + Duration::from_secs_f64(t))
    }

    /// When to wake for the arrival due at `due` (the next one): at the last of the arrivals
    /// due within [`COALESCE`] of it, so that one wake-up releases them all. No arrival is
    /// released before its time, none more than `COALESCE` after it, and below 1 / `COALESCE`
    /// arrivals/s per worker every arrival gets a wake-up of its own.
    fn batch_end(&self, due: Instant) -> Instant {
        let mut wake = due;
        let mut k = self.next + self.stride;
        while let Some(next) = self.due_of(k) {
            if next > due + COALESCE {
                break;
            }
            wake = next;
            k += self.stride;
        }
        wake
    }

    /// A growth check is due; after the last arrival, only before the phase's end.
    fn check_due(&self, now: Instant) -> bool {
        self.grow_at
            .is_some_and(|at| now >= at && (self.due.is_some() || at < self.end))
    }

    /// Starts a growth check: [`to_summon`](Self::to_summon) VUs are summoned, one per
    /// action, unless the worker is behind schedule. A worker releasing arrivals late is short
    /// of CPU, not of VUs: more VUs, and their connects, would only add work (see
    /// `ArrivalTimer::tolerance`).
    fn begin_check(&mut self, now: Instant) {
        self.grow_at = None;
        let behind = self.lag > self.tolerance;
        self.summons = Some(if behind { 0 } else { self.to_summon(now) });
    }

    /// How many VUs to summon now: one per arrival that has waited at least `GROW_AFTER` and
    /// that no starting VU will take, but at most half as many again as are busy (and at least
    /// one). A backlog is served by the VUs already working as much as by new ones, and
    /// summoning one VU per waiting arrival at once turned a start-up backlog into a storm of
    /// connects (40,000/s, one core, `pre_vus: 2000`: 2,000 connections and a p99 of 110 ms;
    /// with the cap, 112 connections and 1.3 ms).
    fn to_summon(&self, now: Instant) -> u32 {
        let cap = 1 + self.busy / 2;
        let old = self
            .waiting
            .iter()
            .take((self.starting + cap) as usize)
            .take_while(|&&t| now.saturating_duration_since(t) >= GROW_AFTER)
            .count();
        (old as u32).saturating_sub(self.starting).min(cap)
    }

    /// One more VU for a waiting arrival: the most recently parked cold one, else a new one;
    /// `None` once there is neither.
    fn summon(&mut self) -> Option<Action> {
        if let Some(vu) = self.cold.pop() {
            self.starting += 1;
            return Some(Action::Wake(vu));
        }
        if self.spawned >= self.max {
            return None;
        }
        self.starting += 1;
        Some(Action::Spawn(self.spawn(true)))
    }

    /// The next VU of this worker's share. A pre-started one is listed as cold from the start,
    /// so that it can be summoned before its task first runs.
    fn spawn(&mut self, summoned: bool) -> NewVu {
        let id = self.first + self.stride * self.spawned;
        self.spawned += 1;
        let notify = Rc::new(Notify::new());
        if !summoned {
            self.cold.push(notify.clone());
        }
        NewVu { id, notify, summoned }
    }

    /// The oldest waiting arrival's intended start, for a VU looking for work, which is then
    /// busy until [`finished`](Self::finished). `summoned`: the VU was started or woken for an
    /// arrival, and stops counting as starting whether or not one is left.
    pub fn take(&mut self, summoned: bool) -> Option<Instant> {
        if summoned {
            self.starting -= 1;
        }
        let next = self.waiting.pop_front();
        if next.is_some() {
            self.busy += 1;
        }
        next
    }

    /// A VU's iteration is over.
    pub fn finished(&mut self) {
        self.busy -= 1;
    }

    /// A VU found nothing waiting and waits on `notify`: warm if it has run an iteration
    /// (`used`), else cold. It is popped before it is notified, so it is listed at most once; one
    /// woken by the phase's end may stay listed, but no arrival follows.
    pub fn park(&mut self, notify: Rc<Notify>, used: bool) {
        let stack = if used { &mut self.warm } else { &mut self.cold };
        stack.push(notify);
    }

    /// Arrivals released and not yet taken by a VU.
    pub fn waiting(&self) -> u64 {
        self.waiting.len() as u64
    }

    /// The phase is over and its grace period spent: arrivals still waiting never ran. Returns
    /// how many arrivals were dropped in all (those and those beyond `max_waiting`).
    pub fn close(&mut self) -> u64 {
        let left = self.waiting.drain(..).count() as u64;
        std::mem::take(&mut self.dropped) + left
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const US: Duration = Duration::from_micros(1);
    const TOLERANCE: Duration = Duration::from_micros(500);

    /// A VU task as the pool sees it.
    struct FakeVu {
        notify: Rc<Notify>,
        summoned: bool,
        used: bool,
        /// The intended start of the arrival it is running.
        running: Option<Instant>,
    }

    /// The driver and its VUs on one thread, under a made-up clock: the driver acts until it
    /// sleeps, then the VUs it woke or spawned take an arrival or park, as tasks would.
    struct Sim {
        pool: OpenPool,
        start: Instant,
        vus: Vec<FakeVu>,
        /// When the driver wakes next; `None` once it is done.
        wake: Option<Instant>,
        /// VUs added to the working set (cold ones woken, new ones spawned) so far.
        summoned: u32,
    }

    impl Sim {
        fn new(rate: f64, duration: Duration, max_vus: u32, pre_vus: u32) -> Sim {
            Sim::with_share(rate, duration, Share::whole(), max_vus, pre_vus)
        }

        fn with_share(rate: f64, duration: Duration, share: Share, max_vus: u32, pre_vus: u32) -> Sim {
            let start = Instant::now();
            let arrivals = Arrivals::constant(rate, duration);
            Sim {
                pool: OpenPool::new(arrivals, start, share, max_vus, pre_vus, TOLERANCE),
                start,
                vus: Vec::new(),
                wake: Some(start),
                summoned: 0,
            }
        }

        fn at(&self, us: u64) -> Instant {
            self.start + US * us as u32
        }

        /// The driver's turn at `now` (a wake-up it asked for, or later: it overslept), then
        /// the turns of the VUs it woke or spawned.
        fn run(&mut self, now: Instant) {
            let mut ready = Vec::new();
            self.wake = loop {
                match self.pool.next_action(now) {
                    Action::Wake(n) => {
                        let i = self
                            .vus
                            .iter()
                            .position(|v| Rc::ptr_eq(&v.notify, &n))
                            .expect("a known VU");
                        // As the task does: woken while it has never worked, it was summoned.
                        self.vus[i].summoned = !self.vus[i].used;
                        self.summoned += u32::from(!self.vus[i].used);
                        ready.push(i);
                    }
                    Action::Spawn(vu) => {
                        if vu.summoned {
                            self.summoned += 1;
                            ready.push(self.vus.len());
                        }
                        self.vus.push(FakeVu {
                            notify: vu.notify,
                            summoned: vu.summoned,
                            used: false,
                            running: None,
                        });
                    }
                    Action::Sleep(at) => break Some(at),
                    Action::Done => break None,
                }
            };
            for i in ready {
                self.look(i);
            }
        }

        /// Runs every wake-up the driver asks for up to `until`.
        fn run_until(&mut self, until: Instant) {
            while let Some(at) = self.wake.filter(|&at| at <= until) {
                self.run(at);
            }
        }

        /// VU `i` takes the oldest waiting arrival, or parks.
        fn look(&mut self, i: usize) {
            let vu = &mut self.vus[i];
            vu.running = self.pool.take(std::mem::take(&mut vu.summoned));
            if vu.running.is_some() {
                vu.used = true;
            } else {
                self.pool.park(vu.notify.clone(), vu.used);
            }
        }

        /// VU `i` ends its iteration and looks for the next arrival.
        fn finish(&mut self, i: usize) -> Instant {
            let intended = self.vus[i].running.take().expect("a busy VU");
            self.pool.finished();
            self.look(i);
            intended
        }
    }

    /// The pool releases each arrival at its time or up to `COALESCE` after, never before: a VU
    /// that runs every arrival at once never gets one not yet due, whether the driver wakes
    /// when asked to or (here every 7 µs) more often.
    #[test]
    fn arrivals_are_released_on_time_never_before() {
        // 35,000/s: 28.6 µs apart, so several share a wake-up; 3,500 of them.
        let mut sim = Sim::new(35_000.0, Duration::from_millis(100), 1, 1);
        let (mut now, mut released) = (sim.start, 0);
        loop {
            sim.run(now);
            while sim.vus[0].running.is_some() {
                let intended = sim.finish(0);
                assert!(intended <= now, "released {:?} early", intended - now);
                assert!(now - intended <= COALESCE, "released {:?} late", now - intended);
                released += 1;
            }
            let Some(wake) = sim.wake else { break };
            assert!(wake >= now, "a wake-up in the past");
            now = wake.min(now + 7 * US);
        }
        assert_eq!(released, 3_500);
        assert_eq!(sim.summoned, 1, "one VU kept up alone");
        assert_eq!(sim.pool.close(), 0);
    }

    /// A wake-up is the time of an arrival, never before the first pending one and at most
    /// `COALESCE` after it; sparse arrivals each get their own.
    #[test]
    fn batches_stay_within_the_window() {
        let batch = |rate: f64, share: Share, k: u64| {
            let mut sim = Sim::with_share(rate, Duration::from_secs(1), share, 1, 0);
            sim.pool.next = k;
            let p = &sim.pool;
            let first = p.due_of(k).unwrap();
            let wake = p.batch_end(first);
            let stride = share.stride() as usize;
            let n = (k..)
                .step_by(stride)
                .take_while(|&j| p.due_of(j).is_some_and(|t| t <= wake))
                .count();
            (first, wake, n)
        };
        // 35,000/s, one worker: arrivals 28.6 µs apart, so 4 share a wake-up (0 … 85.7 µs).
        let (first, wake, n) = batch(35_000.0, Share::whole(), 0);
        assert_eq!((n, wake - first), (4, Duration::from_secs_f64(3.0 / 35_000.0)));
        for k in [7, 1_000, 34_990] {
            let (first, wake, _) = batch(35_000.0, Share::whole(), k);
            assert!(wake >= first && wake <= first + COALESCE, "arrival {k}");
        }
        // The last arrival: the batch stops at the end of the schedule.
        let (first, wake, _) = batch(35_000.0, Share::whole(), 34_999);
        assert_eq!(wake, first);
        // Two workers share the stream: each sees every other arrival, 57.1 µs apart.
        let second = Share {
            worker: 1,
            workers: 2,
            ..Share::whole()
        };
        assert_eq!(batch(35_000.0, second, 1).2, 2);
        // 5,000/s: 200 µs apart, no company.
        assert_eq!(batch(5_000.0, Share::whole(), 10).2, 1);
    }

    /// An arrival goes to the VU that went idle last, so the VUs (and connections) that just
    /// worked take the next arrivals.
    #[test]
    fn the_most_recently_idle_warm_vu_takes_the_arrival() {
        // 1,000/s: arrivals 1 ms apart; nobody finishes until three VUs are at work.
        let mut sim = Sim::new(1_000.0, Duration::from_secs(1), 3, 0);
        sim.run_until(sim.at(2_999));
        assert_eq!(sim.vus.len(), 3);
        assert!(sim.vus.iter().all(|v| v.running.is_some()));
        for i in [0, 2, 1] {
            sim.finish(i);
        }
        sim.run_until(sim.at(3_000));
        assert!(sim.vus[1].running.is_some(), "not the last VU to go idle");
        assert!(sim.vus[0].running.is_none() && sim.vus[2].running.is_none());
        sim.finish(1);
        sim.run_until(sim.at(4_000));
        assert!(sim.vus[1].running.is_some(), "the same VU again");
    }

    /// Pre-started VUs are listed as cold before their tasks run, and wait to be summoned: the
    /// first arrival, finding no VU at work, summons one of them at once.
    #[test]
    fn pre_started_vus_wait_to_be_summoned() {
        let mut sim = Sim::new(1_000.0, Duration::from_secs(1), 10, 4);
        sim.run(sim.start);
        assert_eq!(sim.vus.len(), 4, "only the pre-started VUs");
        assert_eq!(sim.summoned, 1, "one summoned at once");
        assert_eq!(sim.vus.iter().filter(|v| v.running.is_some()).count(), 1);
    }

    /// The working set grows only for arrivals that waited 0.5 ms, by at most half as many again
    /// as are busy per check, and never beyond `max_vus`.
    #[test]
    fn growth_waits_and_is_capped() {
        // 10,000/s: 0.1 ms apart; no VU ever finishes.
        let mut sim = Sim::new(10_000.0, Duration::from_secs(1), 20, 0);
        let mut checks = 0;
        while let Some(now) = sim.wake.filter(|&at| at < sim.at(10_000)) {
            let (busy, before) = (sim.pool.busy, sim.summoned);
            let oldest = sim.pool.waiting.front().copied();
            sim.run(now);
            let added = sim.summoned - before;
            if added > 0 && busy > 0 {
                checks += 1;
                assert!(added <= 1 + busy / 2, "{added} VUs added with {busy} busy");
                // The arrivals they are for waited long enough (one released just now has not).
                let oldest = oldest.expect("arrivals waiting");
                assert!(now - oldest >= GROW_AFTER, "grew after {:?}", now - oldest);
            }
        }
        // 1 → 2 → 4 → 7 → 11 → 17 → 20: then no VU is left to add.
        assert_eq!(sim.summoned, 20);
        assert_eq!(checks, 6);
        assert!(sim.pool.grow_at.is_none(), "no check while nothing can be added");
    }

    /// A worker that releases arrivals late is short of CPU, not of VUs: it adds none until it
    /// is back on schedule.
    #[test]
    fn no_growth_while_behind_schedule() {
        let mut sim = Sim::new(1_000.0, Duration::from_secs(1), 10, 0);
        sim.run(sim.start);
        assert_eq!(sim.summoned, 1);
        // The driver oversleeps: arrivals due at 1, 2 and 3 ms are released at 3.7 ms.
        sim.run(sim.at(3_700));
        assert_eq!(sim.pool.waiting(), 3);
        assert_eq!(sim.summoned, 1, "grew while behind");
        // Back on time (the arrival at 4 ms, released at 4 ms), the next check adds a VU.
        sim.run_until(sim.at(4_500));
        assert_eq!(sim.summoned, 2);
    }

    /// Past `max_waiting`, arrivals are dropped; at the phase's end those still waiting are
    /// dropped too. Every arrival either ran or is counted.
    #[test]
    fn drops_are_counted() {
        // 10 arrivals, one VU that never finishes, room for 3 waiting.
        let mut sim = Sim::new(1_000.0, Duration::from_millis(10), 1, 0);
        sim.pool.max_waiting = 3;
        while let Some(now) = sim.wake {
            sim.run(now);
            assert!(sim.pool.waiting() <= 3);
        }
        assert_eq!(sim.pool.waiting(), 3);
        assert_eq!(sim.pool.close(), 9, "6 beyond the limit, 3 still waiting");
        assert_eq!(sim.pool.waiting(), 0);
    }

    /// After the last arrival the pool still grows the working set until the phase's end, then
    /// says it is done.
    #[test]
    fn growth_goes_on_until_the_end() {
        let mut sim = Sim::new(1_000.0, Duration::from_millis(3), 5, 0);
        // Arrivals at 0, 1 and 2 ms; no VU finishes, so each one after the first gets a VU of
        // its own once it has waited 0.5 ms.
        sim.run_until(sim.at(2_000));
        assert!(sim.pool.due.is_none());
        assert_eq!(sim.summoned, 2);
        assert_eq!(sim.wake, Some(sim.at(2_500)), "a check after the last arrival");
        sim.run_until(sim.at(2_500));
        assert_eq!(sim.summoned, 3);
        // The check re-arms for 3 ms, the phase's end: no check then.
        assert_eq!(sim.wake, None);
    }
}
