//! Running as a daemon: logging to stderr in a form procd/syslog and journald
//! read well, the tokio runtime sized for small boards, dropping root after
//! binding, and signals (SIGTERM/SIGINT stop, SIGHUP reloads).

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, bail};
use nix::unistd::{Gid, Uid, User};
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::LevelFilter;

use crate::server::Server;

/// Worker threads when the config does not say: one per core, at most two.
const DEFAULT_MAX_WORKERS: usize = 2;
/// Environment variable that overrides `log_level`.
pub const LOG_ENV: &str = "EDGEMQ_LOG";

/// Installs the stderr logger. No colours unless stderr is a terminal; no
/// timestamps under journald (it adds its own).
pub fn init_logging(level: &str) {
    let level = std::env::var(LOG_ENV).unwrap_or_else(|_| level.to_string());
    let filter: LevelFilter = level.parse().unwrap_or(LevelFilter::INFO);
    let tty = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(filter)
        .with_ansi(tty)
        .with_target(false);
    let result = if std::env::var_os("JOURNAL_STREAM").is_some() {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
    if result.is_err() {
        eprintln!("edgemq: logger already installed");
    }
}

/// Builds the runtime with `workers` threads (default: cores, at most 2).
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = workers.unwrap_or(cores.min(DEFAULT_MAX_WORKERS)).max(1);
    let mut b = if n == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(n);
        b
    };
    b.enable_all().thread_name("edgemq").build()
}

/// Switches to `user` (its primary group only), first handing it `data_dir`.
/// Must run before any thread is started. Verifies the switch took.
pub fn drop_privileges(user: &str, data_dir: &Path) -> anyhow::Result<()> {
    let u = User::from_name(user)
        .context("cannot look up the user")?
        .with_context(|| format!("no such user {user:?}"))?;
    if !Uid::current().is_root() {
        if Uid::current() == u.uid {
            return Ok(());
        }
        bail!(
            "user = {user:?} needs edgemq to start as root (running as uid {})",
            Uid::current()
        );
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    chown_tree(data_dir, u.uid, u.gid)?;
    nix::unistd::setgroups(&[u.gid]).context("setgroups")?;
    nix::unistd::setgid(u.gid).context("setgid")?;
    nix::unistd::setuid(u.uid).context("setuid")?;
    if Uid::current() != u.uid || Uid::effective() != u.uid || Gid::effective() != u.gid {
        bail!("privilege drop to {user:?} did not take effect");
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("privilege drop to {user:?} is reversible; refusing to run");
    }
    tracing::info!(
        user,
        uid = u.uid.as_raw(),
        gid = u.gid.as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

fn chown_tree(path: &Path, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    nix::unistd::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("cannot chown {}", path.display()))?;
    if path.is_dir() && !path.is_symlink() {
        for entry in
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?
        {
            chown_tree(&entry?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Runs `server` until SIGTERM/SIGINT, reloading on SIGHUP; then shuts it down.
pub async fn serve_with_signals(server: Server, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let server = std::sync::Arc::new(server);
    let s2 = server.clone();
    let signals = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = hup.recv() => s2.reload(),
            }
        }
        tracing::info!("signal received; stopping");
        shutdown.cancel();
    });
    server.broker.shutdown.cancelled().await;
    signals.abort();
    let _ = signals.await;
    match std::sync::Arc::try_unwrap(server) {
        Ok(s) => s.wait().await,
        Err(_) => tracing::warn!("server still referenced at shutdown"),
    }
    Ok(())
}
