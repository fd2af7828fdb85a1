//! Opening sled, and what happens when the files are broken: the directory
//! is set aside as `store.broken-<unix ts>` so the broker can start on an
//! empty store.
//!
//! sled 0.34 returns an error for most corrupt files, opens some garbage as an
//! empty database (the marker record catches that), and panics on others (four
//! flipped bits in a 1 MB store: about two tries in five, "tried to serialize
//! Uninitialized"; tests/store_panic.rs). A
//! panic is survived in both panic strategies: a panic hook, armed only on
//! the thread and for the duration of the open, sets the directory aside
//! before anything else happens. With `panic = "unwind"` the open is also
//! caught and the broker goes on with a fresh store; with `panic = "abort"`
//! (the release profile) the process then aborts and its supervisor's
//! restart comes up on the fresh store instead of panicking again forever.

use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, Once};
use std::thread::ThreadId;
use std::time::{SystemTime, UNIX_EPOCH};
use std::{fs, io};

use tracing::error;

use super::{CACHE_CAPACITY, MARKER_KEY, StoreError, io_err, sync_path};

/// How many `store.broken-<ts>[-n]` names to try when setting a store aside.
const MAX_ASIDE_ATTEMPTS: u32 = 100;

/// The outcome of one failed open attempt.
pub(super) enum OpenFailure {
    /// A problem that says nothing about the files' contents: returned as is.
    Environment(sled::Error),
    /// Corruption or a panic; `aside` is set when the panic hook already moved
    /// the directory away.
    Broken {
        reason: String,
        aside: Option<PathBuf>,
    },
}

/// The open in progress on one thread, for the panic hook.
struct Armed {
    thread: ThreadId,
    data_dir: PathBuf,
    dir: PathBuf,
    /// Where the hook moved the directory, read back after a caught panic.
    aside: Option<PathBuf>,
}

/// One entry per thread with an open in progress (one in the daemon; tests
/// open stores on several threads at once).
static ARMED: Mutex<Vec<Armed>> = Mutex::new(Vec::new());
static HOOK: Once = Once::new();

/// Opens sled at `dir` (inside `data_dir`) and checks the marker record.
pub(super) fn try_open(data_dir: &Path, dir: &Path) -> Result<sled::Db, OpenFailure> {
    guarded(data_dir, dir, open_checked)
}

/// Runs `open` with the panic hook armed for `dir`; see the module header.
pub(super) fn guarded<F>(data_dir: &Path, dir: &Path, open: F) -> Result<sled::Db, OpenFailure>
where
    F: FnOnce(&Path) -> sled::Result<Option<sled::Db>>,
{
    install_hook();
    armed().push(Armed {
        thread: std::thread::current().id(),
        data_dir: data_dir.to_path_buf(),
        dir: dir.to_path_buf(),
        aside: None,
    });
    let outcome = catch_unwind(AssertUnwindSafe(|| open(dir)));
    let armed = disarm();
    match outcome {
        Ok(Ok(Some(db))) => Ok(db),
        Ok(Ok(None)) => Err(broken(
            "sled opened it but its marker record is gone: the contents were lost".into(),
        )),
        Ok(Err(e)) if is_environment(&e) => Err(OpenFailure::Environment(e)),
        Ok(Err(e)) => Err(broken(e.to_string())),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(OpenFailure::Broken {
                reason: format!("sled panicked while opening: {msg}"),
                aside: armed.and_then(|a| a.aside),
            })
        }
    }
}

fn broken(reason: String) -> OpenFailure {
    OpenFailure::Broken {
        reason,
        aside: None,
    }
}

/// A poisoned lock only means a panic happened while it was held; every
/// change to the list is a single push or remove, so it is consistent.
fn armed() -> std::sync::MutexGuard<'static, Vec<Armed>> {
    ARMED.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes and returns this thread's armed open.
fn disarm() -> Option<Armed> {
    let me = std::thread::current().id();
    let mut list = armed();
    let i = list.iter().position(|a| a.thread == me)?;
    Some(list.swap_remove(i))
}

fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            on_panic(info);
            previous(info);
        }));
    });
}

/// Sets the store aside when the panicking thread is the one opening it.
fn on_panic(info: &PanicHookInfo<'_>) {
    // try_lock: a panic while the slot is held must not deadlock the hook.
    let Ok(mut list) = ARMED.try_lock() else {
        return;
    };
    let me = std::thread::current().id();
    let Some(armed) = list.iter_mut().find(|a| a.thread == me) else {
        return;
    };
    if armed.aside.is_some() {
        return;
    }
    match set_aside(&armed.data_dir, &armed.dir) {
        Ok(aside) => {
            if cfg!(panic = "abort") {
                error!(
                    store = %armed.dir.display(),
                    moved_to = %aside.display(),
                    panic = %info,
                    "STORE BROKEN: sled panicked while opening the store; moved it aside, the \
                     process aborts now and its restart starts EMPTY (retained messages and \
                     persistent sessions are lost)"
                );
            }
            armed.aside = Some(aside);
        }
        Err(e) => error!(
            store = %armed.dir.display(),
            error = %e,
            "sled panicked while opening the store and it could not be set aside"
        ),
    }
}

/// Opens sled and checks the marker record; `Ok(None)` when sled lost every record.
fn open_checked(dir: &Path) -> sled::Result<Option<sled::Db>> {
    let existed = dir.join("db").metadata().is_ok_and(|m| m.len() > 0);
    let db = sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_CAPACITY)
        .open()?;
    if existed && db.get(MARKER_KEY)?.is_none() {
        return Ok(None);
    }
    Ok(Some(db))
}

/// Errors that say nothing about the files' contents: setting the store aside would lose
/// good data (another process holds the lock, permissions, a full or read-only disk).
fn is_environment(e: &sled::Error) -> bool {
    let sled::Error::Io(io) = e else {
        return false;
    };
    matches!(
        io.kind(),
        io::ErrorKind::PermissionDenied
            | io::ErrorKind::StorageFull
            | io::ErrorKind::ReadOnlyFilesystem
            | io::ErrorKind::QuotaExceeded
    ) || io.to_string().contains("could not acquire lock")
}

/// Renames `dir` to `data_dir/store.broken-<unix ts>` (with a suffix if that exists).
pub(super) fn set_aside(data_dir: &Path, dir: &Path) -> Result<PathBuf, StoreError> {
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    for n in 0..MAX_ASIDE_ATTEMPTS {
        let name = match n {
            0 => format!("{}.broken-{ts}", super::STORE_DIR),
            n => format!("{}.broken-{ts}-{n}", super::STORE_DIR),
        };
        let aside = data_dir.join(name);
        if aside.exists() {
            continue;
        }
        fs::rename(dir, &aside).map_err(io_err("set aside", dir))?;
        sync_path(data_dir)?;
        return Ok(aside);
    }
    Err(StoreError::Io {
        op: "set aside",
        path: dir.to_path_buf(),
        source: io::Error::new(io::ErrorKind::AlreadyExists, "no free store.broken-* name"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_during_open_sets_the_store_aside_from_the_hook() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(super::super::STORE_DIR);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("db"), b"whatever sled choked on").unwrap();
        let r = guarded(tmp.path(), &dir, |_| panic!("corrupt segment header"));
        let Err(OpenFailure::Broken { reason, aside }) = r else {
            panic!("expected a broken store");
        };
        assert!(reason.contains("corrupt segment header"), "{reason}");
        let aside = aside.expect("the hook set the store aside");
        assert!(!dir.exists(), "the broken directory was moved");
        assert_eq!(
            fs::read(aside.join("db")).unwrap(),
            b"whatever sled choked on"
        );
        assert!(disarm().is_none(), "disarmed after the open");
    }

    #[test]
    fn a_panic_on_another_thread_leaves_the_store_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join(super::super::STORE_DIR);
        fs::create_dir_all(&dir).unwrap();
        let r = guarded(tmp.path(), &dir, |_| {
            let other = std::thread::spawn(|| panic!("unrelated"));
            assert!(other.join().is_err());
            Err(sled::Error::Unsupported("stop here".into()))
        });
        assert!(matches!(r, Err(OpenFailure::Broken { aside: None, .. })));
        assert!(dir.exists(), "not set aside for another thread's panic");
    }
}
