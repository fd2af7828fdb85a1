//! `edgemq run [-c PATH]`: load the config (or built-in defaults), bind,
//! drop privileges, serve until a signal. Exit 1 on a bad config, 2 on a
//! runtime failure (port in use, store unusable).

use std::path::PathBuf;
use std::process::ExitCode;

use tokio_util::sync::CancellationToken;

use crate::config::{self, Source};
use crate::{daemon, server};

/// Entry point of `edgemq run`.
pub fn main(path: Option<PathBuf>) -> ExitCode {
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
        let shutdown = CancellationToken::new();
        let srv = server::Server::start(cfg, bound, shutdown.clone()).await?;
        daemon::serve_with_signals(srv, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(2)
        }
    }
}
