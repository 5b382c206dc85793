//! stampede: a load-testing tool that ends in an answer.
//!
//! Data flows one way (see docs/ARCHITECTURE.md): `plan` (crate `stampede-plan`) → [`engine`]
//! → [`recorder`] intervals → [`rundir`] → [`analysis`] → [`report`].

pub mod analysis;
pub mod capacity;
pub mod cli;
pub mod engine;
pub mod history;
pub mod http;
pub mod monitor;
pub mod outcome;
pub mod output;
pub mod recorder;
pub mod report;
pub mod rundir;
pub mod runner;
pub mod transport;
