//! `edgemq run [-c PATH]`: load the config (or built-in defaults), bind,
//! drop privileges, serve until a signal. Exit 1 on a bad config, 2 on a
//! runtime failure (port in use, store unusable).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::config::{self, Source};
use crate::{daemon, server};

/// How long the runtime may take to stop after the server has drained.
const RUNTIME_STOP: Duration = Duration::from_secs(2);

/// Entry point of `edgemq run`.
pub fn main(path: Option<PathBuf>) -> ExitCode {
    daemon::hold_signals();
    let (cfg, source) = match config::load_for_run(path.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(1);
        }
    };
    daemon::init_logging(&cfg.log_level);
    match &source {
        Source::BuiltIn => tracing::info!(
            "no config file (-c PATH, {} or {}): running on built-in defaults: anonymous listener on 127.0.0.1:1883, data in ./{}, no bridges",
            config::DEFAULT_TOML,
            config::DEFAULT_UCI,
            cfg.data_dir.display()
        ),
        Source::File(p) => {
            tracing::info!(config = %p.display(), "edgemq {} starting", env!("CARGO_PKG_VERSION"))
        }
    }
    let bound = match server::bind_all(&cfg) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(2);
        }
    };
    // Read as root: after the drop, root-only key files would be out of reach.
    let prepared = match server::prepare(&cfg, bound) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::from(exit_code_for(&e));
        }
    };
    if let Some(user) = &cfg.user {
        if let Err(e) = daemon::drop_privileges(user, &cfg.data_dir) {
            tracing::error!("{e:#}");
            return ExitCode::from(2);
        }
    }
    let rt = match daemon::runtime(cfg.worker_threads) {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::from(2);
        }
    };
    let result = rt.block_on(async move {
        let signals = daemon::Signals::install()?;
        let shutdown = CancellationToken::new();
        let srv = server::Server::start_prepared(cfg, prepared, shutdown.clone()).await?;
        daemon::serve_with_signals(srv, signals, shutdown).await
    });
    // Tasks still parked in the blocking pool must not hold the exit hostage.
    rt.shutdown_timeout(RUNTIME_STOP);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// 1 when a file the config names (password, ACL, certificate) is what failed:
/// that is bad configuration the user must fix; 2 for every other runtime failure.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    let bad_file = e.chain().any(|c| {
        c.is::<crate::auth::password::PasswordError>()
            || c.is::<crate::auth::acl::AclError>()
            || c.is::<crate::tls::TlsError>()
    });
    if bad_file { 1 } else { 2 }
}
