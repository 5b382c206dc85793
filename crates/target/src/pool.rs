//! A service: a bounded worker pool with a bounded, timed queue.
//!
//! This is what gives the target a capacity known by construction. With `c` workers and mean
//! service time `S`, throughput cannot exceed `c / S`; beyond it requests queue, so latency grows
//! as Little's law says (`L = λ·W`), then the queue fills (503 at once) or waits time out (504) —
//! the two load-caused failure modes real pools (PHP-FPM, DB connection pools) show.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::ServiceConfig;

/// Why a request did not get a worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// All workers busy and the queue full: answered 503 immediately.
    QueueFull,
    /// Waited longer than `queue_timeout`: answered 504.
    QueueTimeout,
}

/// The live pool of one service.
#[derive(Debug)]
pub struct Pool {
    pub config: ServiceConfig,
    workers: Semaphore,
    busy: AtomicUsize,
    queued: AtomicUsize,
    pub(crate) rejected_full: AtomicU64,
    pub(crate) rejected_timeout: AtomicU64,
}

/// A held worker; released (and the busy gauge lowered) on drop, also when the client goes away.
pub struct Worker<'a> {
    _permit: SemaphorePermit<'a>,
    busy: &'a AtomicUsize,
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        self.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Lowers the queue gauge however the wait ends (permit, timeout, or the future dropped).
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Pool {
    pub fn new(config: ServiceConfig) -> Pool {
        Pool {
            workers: Semaphore::new(config.workers),
            config,
            busy: AtomicUsize::new(0),
            queued: AtomicUsize::new(0),
            rejected_full: AtomicU64::new(0),
            rejected_timeout: AtomicU64::new(0),
        }
    }

    /// Workers currently serving a request.
    pub fn busy(&self) -> usize {
        self.busy.load(Ordering::Relaxed)
    }

    /// Requests currently waiting for a worker.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Gets a worker: at once if one is free, else waits in the queue (FIFO, the semaphore is
    /// fair) for at most `queue_timeout`.
    pub async fn acquire(&self) -> Result<Worker<'_>, Rejection> {
        if let Ok(p) = self.workers.try_acquire() {
            return Ok(self.hold(p));
        }
        // Reserve a queue slot atomically so concurrent arrivals never overfill the queue.
        let limit = self.config.queue;
        if self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| (q < limit).then_some(q + 1))
            .is_err()
        {
            self.rejected_full.fetch_add(1, Ordering::Relaxed);
            return Err(Rejection::QueueFull);
        }
        let slot = Queued(&self.queued);
        let waited = tokio::time::timeout(self.config.queue_timeout, self.workers.acquire()).await;
        drop(slot);
        match waited {
            Ok(Ok(p)) => Ok(self.hold(p)),
            // The semaphore is never closed; treat it like a timeout rather than panic.
            Ok(Err(_)) | Err(_) => {
                self.rejected_timeout.fetch_add(1, Ordering::Relaxed);
                Err(Rejection::QueueTimeout)
            }
        }
    }

    fn hold<'a>(&'a self, p: SemaphorePermit<'a>) -> Worker<'a> {
        self.busy.fetch_add(1, Ordering::Relaxed);
        Worker {
            _permit: p,
            busy: &self.busy,
        }
    }
}

/// Busy CPU work for `d`: SHA-256 over a small buffer until the time is used up. Real work (not a
/// sleep) so the host's CPU and load average rise with request rate, like the voice seed's
/// CPU-bound PHP workers.
pub fn burn_cpu(d: Duration) {
    use sha2::{Digest, Sha256};
    if d.is_zero() {
        return;
    }
    let start = std::time::Instant::now();
    let mut buf = [0u8; 64];
    while start.elapsed() < d {
        for _ in 0..16 {
            let h = Sha256::digest(buf);
            buf[..32].copy_from_slice(&h);
        }
    }
    std::hint::black_box(buf);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(workers: usize, queue: usize, timeout_ms: u64) -> Pool {
        Pool::new(ServiceConfig {
            name: "s".into(),
            workers,
            queue,
            queue_timeout: Duration::from_millis(timeout_ms),
            connection_pool: false,
        })
    }

    #[tokio::test]
    async fn queue_full_and_timeout() {
        let p = pool(1, 1, 30);
        let w = p.acquire().await.unwrap();
        assert_eq!(p.busy(), 1);
        // One waiter fits in the queue and times out; a second is rejected at once.
        let (a, b) = tokio::join!(p.acquire(), async {
            tokio::task::yield_now().await;
            p.acquire().await
        });
        assert_eq!(a.err(), Some(Rejection::QueueTimeout));
        assert_eq!(b.err(), Some(Rejection::QueueFull));
        assert_eq!(p.queued(), 0);
        drop(w);
        assert_eq!(p.busy(), 0);
        assert!(p.acquire().await.is_ok());
    }
}
