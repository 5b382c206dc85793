//! The response cache in front of an endpoint.
//!
//! It is a model, not a store: what a load test sees from a cache is a hit ratio (hits are fast
//! and need no worker) and that ratio falling under load (more key variety, evictions), which
//! pushes extra traffic onto the pool behind it — the insurance seed's 92% → 85% under the spike.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::config::CacheConfig;

/// The global on/off switch, for with/without-cache comparisons (`POST /_admin/cache?enabled=`).
#[derive(Debug)]
pub struct CacheSwitch(AtomicBool);

impl CacheSwitch {
    pub fn new(enabled: bool) -> Self {
        CacheSwitch(AtomicBool::new(enabled))
    }
    pub fn enabled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, enabled: bool) {
        self.0.store(enabled, Ordering::Relaxed)
    }
}

/// The hit ratio that applies with `in_flight` requests in the server.
pub fn hit_ratio(cfg: &CacheConfig, in_flight: usize) -> f64 {
    match cfg.when_busy_above {
        Some(n) if in_flight > n => cfg.hit_ratio_under_load,
        _ => cfg.hit_ratio,
    }
}

/// Whether this request is a hit, given a uniform draw `u` in [0, 1).
pub fn is_hit(cfg: &CacheConfig, in_flight: usize, u: f64) -> bool {
    u < hit_ratio(cfg, in_flight)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::Dist;
    use std::time::Duration;

    #[test]
    fn ratio_falls_under_load() {
        let c = CacheConfig {
            hit_ratio: 0.92,
            hit_ratio_under_load: 0.85,
            when_busy_above: Some(100),
            hit_time: Dist::Fixed(Duration::from_millis(2)),
        };
        assert_eq!(hit_ratio(&c, 100), 0.92);
        assert_eq!(hit_ratio(&c, 101), 0.85);
        assert!(is_hit(&c, 0, 0.9));
        assert!(!is_hit(&c, 500, 0.9));
    }
}
