//! Running as a daemon: logging to stderr in a form procd/syslog and journald
//! read well, the tokio runtime sized for small boards, dropping root after
//! binding, one process per data_dir, and signals (SIGTERM/SIGINT stop,
//! SIGHUP reloads).

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::Path;

use anyhow::{Context, bail};
use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{SigSet, Signal as NixSignal};
use nix::unistd::{Gid, Uid, User};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::filter::LevelFilter;

use crate::server::Server;

/// Worker threads when the config does not say: one per core, at most two.
const DEFAULT_MAX_WORKERS: usize = 2;
/// Name of the runtime's own threads (workers and blocking pool), as `top -H`
/// shows them; with one worker the main thread runs every task and none exists.
pub const RUNTIME_THREAD: &str = "edgemq-rt";
/// Environment variable that overrides `log_level`.
pub const LOG_ENV: &str = "EDGEMQ_LOG";

/// Installs the stderr logger. No colours unless stderr is a terminal; no
/// timestamps under journald (it adds its own). `EDGEMQ_LOG` overrides `level`.
pub fn init_logging(level: &str) {
    let from_env = std::env::var(LOG_ENV).ok();
    let wanted = from_env.as_deref().unwrap_or(level);
    let parsed = wanted.trim().parse::<LevelFilter>();
    let filter = parsed.clone().unwrap_or(LevelFilter::INFO);
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
    if parsed.is_err() {
        let source = if from_env.is_some() {
            LOG_ENV
        } else {
            "log_level"
        };
        tracing::warn!(
            "{source}={wanted:?} is not one of off, error, warn, info, debug, trace; logging at info"
        );
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
    b.enable_all().thread_name(RUNTIME_THREAD).build()
}

/// Switches to `user` (its primary group only), first handing it `data_dir`.
/// Must run before any thread is started. Verifies the switch took.
pub fn drop_privileges(user: &str, data_dir: &Path) -> anyhow::Result<()> {
    let u = User::from_name(user)
        .context("cannot look up the user")?
        .with_context(|| format!("no such user {user:?}"))?;
    if Uid::current() == u.uid {
        // Already that user (a service manager switched for us, or user = "root"
        // as root): nothing to drop, and setuid(0) succeeding is no alarm then.
        return Ok(());
    }
    if !Uid::current().is_root() {
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
    verify_dropped(user, u.uid, u.gid)?;
    tracing::info!(
        user,
        uid = u.uid.as_raw(),
        gid = u.gid.as_raw(),
        "dropped root privileges"
    );
    Ok(())
}

/// Checks real, effective and saved ids and the groups, and that root cannot be regained.
fn verify_dropped(user: &str, uid: Uid, gid: Gid) -> anyhow::Result<()> {
    let uids = nix::unistd::getresuid().context("getresuid")?;
    let gids = nix::unistd::getresgid().context("getresgid")?;
    let groups = nix::unistd::getgroups().context("getgroups")?;
    let uids_ok = [uids.real, uids.effective, uids.saved] == [uid; 3];
    let gids_ok = [gids.real, gids.effective, gids.saved] == [gid; 3];
    if !uids_ok || !gids_ok || groups.iter().any(|g| *g != gid) {
        bail!("privilege drop to {user:?} did not take effect");
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        bail!("privilege drop to {user:?} is reversible; refusing to run");
    }
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

/// File in data_dir that the one edgemq using it holds locked, with its pid.
pub const LOCK_FILE: &str = "edgemq.lock";

/// Ownership of a data_dir; released when dropped or when the process ends.
pub struct DataDirLock {
    _file: Flock<File>,
}

/// Takes `data_dir` (creating it) for this process. A second edgemq on the
/// same data_dir would share its store and bridge queues and steal its
/// status socket, so it is refused with the pid of the one running.
pub fn lock_data_dir(data_dir: &Path) -> anyhow::Result<DataDirLock> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data_dir {}", data_dir.display()))?;
    let path = data_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            lock.set_len(0)
                .and_then(|()| writeln!(lock, "{}", std::process::id()))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(DataDirLock { _file: lock })
        }
        Err((mut file, Errno::EWOULDBLOCK)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            bail!(
                "another edgemq (pid {}) is running on data_dir {}",
                pid.trim(),
                data_dir.display()
            )
        }
        Err((_, e)) => Err(e).with_context(|| format!("cannot lock {}", path.display())),
    }
}

/// SIGTERM, SIGINT and SIGHUP: the signals the daemon handles.
fn handled() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [NixSignal::SIGTERM, NixSignal::SIGINT, NixSignal::SIGHUP] {
        set.add(sig);
    }
    set
}

/// Holds SIGTERM, SIGINT and SIGHUP pending from process start until
/// [`Signals::install`]: until then their default action is death, and
/// procd may send SIGHUP while the config is read and ports are bound.
/// Call first thing on the main thread; threads started later inherit it.
pub fn hold_signals() {
    if let Err(e) = handled().thread_block() {
        eprintln!("edgemq: cannot hold signals during startup: {e}");
    }
}

/// The signals the daemon reacts to. Installed before the server starts, so
/// an early SIGHUP (procd reloading right after start) or SIGTERM never meets
/// the default action, which would kill the process without a flush.
pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Takes over SIGTERM, SIGINT and SIGHUP; needs a running tokio runtime.
    /// Releases what [`hold_signals`] held: pending signals arrive here.
    pub fn install() -> anyhow::Result<Signals> {
        let signals = Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        };
        handled().thread_unblock().context("unblocking signals")?;
        Ok(signals)
    }

    /// Waits for SIGTERM or SIGINT, calling `reload` on every SIGHUP meanwhile.
    async fn until_stop(&mut self, reload: impl Fn()) -> &'static str {
        loop {
            tokio::select! {
                _ = self.term.recv() => return "SIGTERM",
                _ = self.int.recv() => return "SIGINT",
                _ = self.hup.recv() => {
                    tracing::info!("SIGHUP received; reloading");
                    reload();
                }
            }
        }
    }
}

/// Runs `server` until SIGTERM/SIGINT (or until `shutdown` is cancelled
/// elsewhere), reloading on SIGHUP; then drains it and flushes the store.
pub async fn serve_with_signals(
    server: Server,
    mut signals: Signals,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    tracing::info!(listeners = ?server.addresses, bridges = server.bridges.len(), "ready");
    tokio::select! {
        name = signals.until_stop(|| server.reload()) => {
            tracing::info!(signal = name, "stopping");
            shutdown.cancel();
        }
        _ = shutdown.cancelled() => {}
    }
    // Keep the handlers installed while draining: a second SIGTERM/SIGINT must
    // not kill the process half-way through the flush.
    let _signals = signals;
    server.wait().await;
    Ok(())
}
