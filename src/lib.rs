//! stampede: a load-testing tool that ends in an answer.
//!
//! Data flows one way (see docs/ARCHITECTURE.md): `plan` (crate `stampede-plan`) → [`engine`]
//! (crate `stampede-engine`) → [`recorder`] intervals → [`rundir`] (crate `stampede-rundir`) →
//! [`analysis`] → [`report`]. This crate is the application: the runner and its outputs, the
//! monitors, analysis, capacity search, reports, run history and the CLI.

pub mod alerts;
pub mod analysis;
pub mod capacity;
pub mod cli;
pub mod describe;
pub mod history;
pub mod import;
pub mod k8s;
pub mod monitor;
pub mod output;
pub mod report;
pub mod runner;

pub use stampede_engine::{engine, http, outcome, recorder, transport};
pub use stampede_rundir as rundir;
