//! The built-in simulated system: a real HTTP server whose capacity is known by construction.
//!
//! stampede needs something to test against that behaves like the systems in its seed reports
//! (a PHP-FPM voice gateway, an insurance platform with a DB pool of 100) and whose true
//! capacity is known, so a capacity search or a report can be checked against the truth.
//! Services are bounded worker pools with queues; endpoints have service-time distributions,
//! real CPU cost, caches, signed webhooks, WebSockets and configured or load-dependent errors.
//! `/metrics` exposes the server side the way a Prometheus exporter would.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let cfg = stampede_target::profile("test").expect("built-in profile");
//! let server = stampede_target::start(cfg, "127.0.0.1:0".parse().unwrap()).await?;
//! println!("listening on {}", server.url());
//! // ... drive load against server.url() ...
//! let truth = server.stats();
//! println!("{} requests served", truth.total);
//! server.shutdown().await;
//! # Ok(()) }
//! ```

pub mod cache;
pub mod config;
pub mod dist;
pub mod metrics;
pub mod pool;
mod profiles;
mod server;
pub mod webhook;
pub mod ws;

pub use config::{parse_config, Config, ConfigError};
pub use metrics::{EndpointStats, Stats};
pub use profiles::{profile, profile_names, profile_source};
pub use server::{start, Server};
