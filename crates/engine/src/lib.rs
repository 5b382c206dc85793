//! The stampede load engine: runs a plan's phases and emits one merged interval per second.
//!
//! [`engine`] (executors, VUs, steps), [`http`] and [`transport`] (the protocol clients and the
//! connect they share), [`recorder`] (per-worker accumulators) and [`outcome`] (what can happen to
//! one step). It knows nothing of run directories beyond the interval record it emits, nor of
//! reports, the CLI or databases.

pub mod engine;
pub mod http;
pub mod outcome;
pub mod recorder;
pub mod transport;
