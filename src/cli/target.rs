use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use super::{EXIT_FAILED, EXIT_INVALID, EXIT_OK};

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// A built-in profile: voice-gateway, insurance-leads or test.
    #[arg(long, conflicts_with = "config")]
    profile: Option<String>,
    /// A target configuration file (YAML, see docs/target.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
}

/// Loads the target configuration a command asked for; exit code 2 with a message if it can't.
pub fn load_config(profile: Option<&str>, config: Option<&PathBuf>) -> Result<stampede_target::Config, u8> {
    if let Some(path) = config {
        let src = std::fs::read_to_string(path).map_err(|e| {
            eprintln!("error: {}: {e}", path.display());
            EXIT_INVALID
        })?;
        return stampede_target::parse_config(&src, &path.display().to_string()).map_err(|e| {
            eprintln!("error: {e}");
            EXIT_INVALID
        });
    }
    let name = profile.unwrap_or("voice-gateway");
    stampede_target::profile(name).ok_or_else(|| {
        eprintln!(
            "error: --profile {name}: no such profile (built in: {})",
            stampede_target::profile_names().join(", ")
        );
        EXIT_INVALID
    })
}

/// Serves the simulated system until Ctrl-C. The first line printed is `listening on http://ADDR`.
pub fn target(a: TargetArgs) -> u8 {
    let config = match load_config(a.profile.as_deref(), a.config.as_ref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return EXIT_FAILED;
        }
    };
    rt.block_on(async {
        let server = match stampede_target::start(config, a.listen).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", a.listen);
                return EXIT_INVALID;
            }
        };
        {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {}", server.url());
            let _ = out.flush();
        }
        eprintln!("metrics at {}/metrics; Ctrl-C stops", server.url());
        let _ = tokio::signal::ctrl_c().await;
        server.shutdown().await;
        EXIT_OK
    })
}
