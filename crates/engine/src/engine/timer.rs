//! Microsecond waits for open-model arrivals.
//!
//! tokio's timer wheel ticks once a millisecond and rounds every deadline up to the next tick,
//! so an arrival due at `t` is released up to 1 ms late. Open-model latency counts from the
//! intended start, so that lateness (the generator's own, not the server's) would land in every
//! sample: against loopback nginx at 5,000 req/s it made the p50 0.77 ms while the service time
//! was 0.08 ms; and each millisecond's arrivals went out as one burst, which at 40,000/s raised
//! nginx's own service time p50 from 0.08 to 0.58 ms. On Linux a `timerfd` armed for the next
//! arrival (see [`COALESCE`]) wakes the runtime's epoll at that microsecond instead (timerfd
//! expirations are not subject to timer slack); elsewhere, or if the kernel refuses a timerfd,
//! the tokio timer is used.
//!
//! The only `unsafe` in the crate is here (the workspace denies it elsewhere): three libc calls
//! on a descriptor this type owns, and its registration with the reactor.
#![allow(unsafe_code)]

use std::time::Duration;

#[cfg(target_os = "linux")]
use tokio::io::{unix::AsyncFd, Interest};
use tokio::time::Instant;

/// How late an open-model arrival may be released so that it shares a wake-up with later ones.
///
/// Each wake-up of an idle worker costs a few µs on bare metal and tens of µs in a VM. At high
/// rates a wake-up per arrival would make the generator the bottleneck, which lies far more than
/// the lateness it saves (on this 2-core VM at 40,000/s on one worker: 23 µs of CPU per request
/// with a wake-up each, 16 µs with this window, 14 µs with 250 µs; p50 latency from the
/// intended start 0.11, 0.17 and 0.31 ms). So arrivals due within this window of the first
/// pending one are released together; below 10,000 arrivals/s per worker each still has a
/// wake-up of its own. A constant bound, a tenth of tokio's 1 ms tick.
pub const COALESCE: Duration = Duration::from_micros(100);

/// One arrival clock per open-model driver (one per worker and phase).
pub struct ArrivalTimer {
    #[cfg(target_os = "linux")]
    fd: Option<AsyncFd<linux::TimerFd>>,
}

impl ArrivalTimer {
    /// Must be called inside the runtime (the timerfd registers with its reactor).
    pub fn new() -> Self {
        ArrivalTimer {
            #[cfg(target_os = "linux")]
            fd: linux::TimerFd::new().ok().and_then(|fd| {
                // SAFETY: the descriptor is owned by the `TimerFd` moved into the `AsyncFd`, so it
                // stays open, and `as_raw_fd` keeps returning it, until the `AsyncFd` is dropped.
                unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.ok()
            }),
        }
    }

    /// How late a release may be while the worker keeps up: `COALESCE` plus a wake-up with the
    /// timerfd, a 1 ms tick plus a wake-up with tokio's timer. A worker later than this is
    /// behind schedule: short of CPU, not of VUs, so the open model adds none (more VUs, and
    /// their connects, would only add work: at 40,000/s on one core with `pre_vus: 10`, a
    /// 2 ms tolerance let a hiccup grow the pool to 2,000 VUs and the p99 to 62 ms).
    pub fn tolerance(&self) -> Duration {
        #[cfg(target_os = "linux")]
        if self.fd.is_some() {
            return Duration::from_micros(500);
        }
        Duration::from_micros(1_500)
    }

    /// Returns at `due` or shortly after; immediately when `due` has passed. Cancel-safe: a
    /// dropped wait leaves at most a stale expiration, which the next wait reads and ignores.
    pub async fn sleep_until(&self, due: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            loop {
                let now = Instant::now();
                if now >= due {
                    return;
                }
                if fd.get_ref().arm(due - now).is_err() {
                    break;
                }
                let Ok(mut ready) = fd.readable().await else { break };
                // A read drains the descriptor (or finds a stale readiness): either way it is
                // not readable now, and the loop re-checks the clock.
                let _ = fd.get_ref().drain();
                ready.clear_ready();
            }
        }
        tokio::time::sleep_until(due).await;
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::time::Duration;

    /// A non-blocking `CLOCK_MONOTONIC` timerfd, armed one-shot with relative times.
    pub struct TimerFd(OwnedFd);

    impl TimerFd {
        pub fn new() -> io::Result<Self> {
            // SAFETY: timerfd_create takes no pointers; a non-negative result is a new descriptor
            // that nothing else owns, so OwnedFd may take it.
            let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: see above; `fd` is open and owned by no one else.
            Ok(TimerFd(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        /// Arms the timer to expire once, `after` from now (replacing any earlier setting and
        /// resetting the expiration count).
        pub fn arm(&self, after: Duration) -> io::Result<()> {
            // At least 1 ns: a zero `it_value` would disarm the timer instead.
            let after = after.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 },
                it_value: libc::timespec {
                    tv_sec: after.as_secs().min(i64::MAX as u64) as libc::time_t,
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: `spec` is a valid itimerspec for the duration of the call; the old value
            // pointer may be null.
            let r = unsafe { libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut()) };
            if r < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        /// Reads the expiration count, if any (`WouldBlock` when none is pending).
        pub fn drain(&self) -> io::Result<u64> {
            let mut count = [0u8; 8];
            // SAFETY: `count` is 8 writable bytes, the size a timerfd read requires.
            let n = unsafe { libc::read(self.0.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(u64::from_ne_bytes(count))
        }
    }

    impl AsRawFd for TimerFd {
        fn as_raw_fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wait ends at or after `due` (never early), including when `due` is already past and
    /// after an earlier wait was abandoned.
    #[tokio::test(flavor = "current_thread")]
    async fn never_returns_early() {
        let timer = ArrivalTimer::new();
        #[cfg(target_os = "linux")]
        assert!(timer.fd.is_some(), "timerfd should be available on Linux");
        let start = Instant::now();
        // Abandon a wait: its expiration must not end the next one early.
        let _ = tokio::time::timeout(
            Duration::from_micros(200),
            timer.sleep_until(start + Duration::from_millis(1)),
        )
        .await;
        for k in 1..=20u64 {
            let due = start + Duration::from_micros(1_300 + 250 * k);
            timer.sleep_until(due).await;
            assert!(Instant::now() >= due, "woke before due at step {k}");
        }
        timer.sleep_until(start).await; // past: immediate
    }

    /// The point of the type: waits end within a fraction of a millisecond. tokio's timer rounds
    /// each deadline up to its next 1 ms tick, which puts the median lateness of these waits
    /// near 0.5 ms; a timerfd's is tens of µs. The median of 40 shrugs off a few scheduling
    /// delays on a busy machine.
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn sub_millisecond() {
        let timer = ArrivalTimer::new();
        let mut late = Vec::new();
        for _ in 0..40 {
            let due = Instant::now() + Duration::from_micros(150);
            timer.sleep_until(due).await;
            late.push(Instant::now() - due);
        }
        late.sort();
        let median = late[late.len() / 2];
        assert!(median < Duration::from_micros(300), "median lateness {median:?}");
    }
}
