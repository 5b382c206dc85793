//! The recorder: where every sample goes.
//!
//! Each engine worker thread owns one [`Shard`] (behind an `Rc<RefCell<_>>`, since a worker is a
//! single-threaded runtime): recording a sample is a histogram increment and a few counter adds,
//! with no lock, no atomic and no allocation. Once a second the worker's flush task takes a
//! [`WorkerInterval`] snapshot (clones, then resets in place, keeping capacity) and sends it to
//! the collector, which merges all workers' snapshots of that second into one [`Interval`].

mod count;
mod shard;

pub use count::{Count, CLOSE_PREFIX};

pub use shard::{Sample, Shard, StepAcc, WorkerInterval, SAMPLES_PER_INTERVAL};
pub use stampede_rundir::hist::{
    decode_buckets, decode_hist, encode_hist, new_growable, new_hist, record_buckets, Buckets, Hist,
};
pub use stampede_rundir::interval::{Interval, StepInterval, SAMPLES_KEPT};
