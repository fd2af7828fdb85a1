//! `edgemq run [-c PATH]`: load the config (or built-in defaults), bind, read
//! the files the listeners need, drop privileges, take the data_dir, serve
//! until a signal. Exit 1 on a bad config (or a bad file it names), 2 on a
//! runtime failure (port in use, store unusable, data_dir taken).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::config::{self, Config, Source};
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
    announce(&cfg, &source);
    match serve(cfg) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::from(exit_code_for(&e))
        }
    }
}

/// The first log line: which config, or that the built-in defaults are in use.
fn announce(cfg: &Config, source: &Source) {
    match source {
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
}

/// Everything from binding to the end of the graceful shutdown.
fn serve(cfg: Config) -> anyhow::Result<()> {
    let bound = server::bind_all(&cfg)?;
    // Read as root: after the drop, root-only key files would be out of reach.
    let prepared = server::prepare(&cfg, bound)?;
    if let Some(user) = &cfg.user {
        daemon::drop_privileges(user, &cfg.data_dir)?;
    }
    let _lock = daemon::lock_data_dir(&cfg.data_dir)?;
    let rt = daemon::runtime(cfg.worker_threads).context("cannot start the runtime")?;
    let result = rt.block_on(async move {
        let signals = daemon::Signals::install()?;
        let shutdown = CancellationToken::new();
        let srv = server::Server::start_prepared(cfg, prepared, shutdown.clone()).await?;
        daemon::serve_with_signals(srv, signals, shutdown).await
    });
    // Tasks still parked in the blocking pool must not hold the exit hostage.
    rt.shutdown_timeout(RUNTIME_STOP);
    result
}

/// 1 when a file the config names (password, ACL, certificate) is what failed:
/// that is bad configuration the user must fix; 2 for every other runtime failure.
fn exit_code_for(e: &anyhow::Error) -> u8 {
    let bad_file = e.chain().any(|c| {
        c.is::<crate::auth::password::PasswordError>()
            || c.is::<crate::auth::file::FileError>()
            || c.is::<crate::tls::TlsError>()
    });
    if bad_file { 1 } else { 2 }
}
