//! A store that makes sled panic while it opens, against the real binary. The
//! test build (panic = "unwind") sets the store aside and serves at once; the
//! release build (panic = "abort", what ships) sets it aside from its panic
//! hook, aborts, and its restart serves on a fresh store. The broken store is
//! made by flipping bits in a real one until sled 0.34 panics on it (about
//! two tries in five do, with "tried to serialize Uninitialized").

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use edgemq::router::message::{Message, Origin, QoS};
use edgemq::store::{STORE_DIR, Store};

/// Corruptions tried before giving up (each panics sled with p ≈ 0.4).
const ATTEMPTS: u32 = 64;
/// Bits flipped per corruption.
const FLIPS: usize = 4;

/// Bit flips in sled's `db` file: (byte offset, bit).
type Flips = Vec<(usize, u8)>;

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A data_dir with 2,000 retained messages, flushed every 50 like a busy broker's.
fn populated(dir: &Path) {
    let s = Store::open(dir).unwrap();
    for i in 0..2000usize {
        let payload = format!("payload-{i}-{}", "x".repeat(i % 300));
        let m = Message::new(
            &format!("t/{i}"),
            payload.into_bytes(),
            QoS::AtLeastOnce,
            true,
            Origin::Broker,
        );
        s.put_retained(&m).unwrap();
        if i % 50 == 0 {
            s.flush().unwrap();
        }
    }
    s.flush().unwrap();
}

fn copy_dir(from: &Path, to: &Path) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success(), "cp -a {} {}", from.display(), to.display());
}

fn corrupt(data_dir: &Path, flips: &Flips) {
    let db = data_dir.join(STORE_DIR).join("db");
    let mut bytes = std::fs::read(&db).unwrap();
    for &(at, bit) in flips {
        bytes[at] ^= 1 << bit;
    }
    std::fs::write(&db, bytes).unwrap();
}

/// Bit flips that make sled panic while opening a copy of `base`.
fn panicking_flips(base: &Path, scratch: &Path) -> Flips {
    let len = std::fs::metadata(base.join(STORE_DIR).join("db"))
        .unwrap()
        .len() as u64;
    let mut rng = 0x5EED_0BAD_CAFE_u64;
    // The expected panics would flood the test output.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut found = None;
    for attempt in 0..ATTEMPTS {
        let flips: Flips = (0..FLIPS)
            .map(|_| {
                (
                    (xorshift(&mut rng) % len) as usize,
                    (xorshift(&mut rng) % 8) as u8,
                )
            })
            .collect();
        let dir = scratch.join(format!("try-{attempt}"));
        copy_dir(base, &dir);
        corrupt(&dir, &flips);
        let store = dir.join(STORE_DIR);
        let opened = catch_unwind(AssertUnwindSafe(|| {
            sled::Config::new().path(&store).open().map(|db| db.len())
        }));
        let _ = std::fs::remove_dir_all(&dir);
        if opened.is_err() {
            found = Some(flips);
            break;
        }
    }
    std::panic::set_hook(hook);
    found.unwrap_or_else(|| panic!("no corruption made sled panic in {ATTEMPTS} tries"))
}

/// One run of `bin` on `dir/data` with its log in `dir/edgemq.log`.
struct Run {
    child: Child,
    log: PathBuf,
}

impl Run {
    fn start(bin: &Path, dir: &Path) -> Run {
        let config = dir.join("edgemq.toml");
        let bind = format!("127.0.0.1:{}", common::free_port());
        std::fs::write(
            &config,
            common::config_text(&dir.join("data"), &bind, "", ""),
        )
        .unwrap();
        let log = dir.join("edgemq.log");
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = Command::new(bin)
            .args(["run", "-c"])
            .arg(&config)
            .env("EDGEMQ_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Run { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the "ready" line, or for an exit (returned).
    fn ready_or_exit(&mut self) -> Option<ExitStatus> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if self.log().contains(" ready ") {
                return None;
            }
            assert!(
                Instant::now() < deadline,
                "neither ready nor exited:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM; the exit must be clean.
    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let st = self.child.wait().unwrap();
        assert!(st.success(), "exit {st}:\n{}", self.log());
    }
}

fn broken_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let prefix = format!("{STORE_DIR}.broken-");
    std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

/// A fresh run directory holding a copy of the panicking store.
fn broken_run_dir(root: &Path, name: &str, base: &Path, flips: &Flips) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    copy_dir(base, &dir.join("data"));
    corrupt(&dir.join("data"), flips);
    dir
}

/// The release binary, built by scripts/test.sh (EDGEMQ_RELEASE_BIN); required under CI=true.
fn release_bin() -> Option<PathBuf> {
    match std::env::var_os("EDGEMQ_RELEASE_BIN") {
        Some(p) => Some(PathBuf::from(p)),
        None => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "EDGEMQ_RELEASE_BIN (the panic = \"abort\" release binary) is required under CI=true"
            );
            eprintln!(
                "note: EDGEMQ_RELEASE_BIN unset: the release (panic = abort) half is skipped"
            );
            None
        }
    }
}

#[test]
fn a_store_sled_panics_on_is_set_aside_under_unwind_and_under_abort() {
    let root = tempfile::tempdir().unwrap();
    let base = root.path().join("base");
    populated(&base);
    let flips = panicking_flips(&base, root.path());

    // panic = "unwind" (this test build): set aside, serving at once.
    let dir = broken_run_dir(root.path(), "unwind", &base, &flips);
    let mut run = Run::start(Path::new(env!("CARGO_BIN_EXE_edgemq")), &dir);
    assert_eq!(run.ready_or_exit(), None, "{}", run.log());
    let log = run.log();
    assert!(
        log.contains("STORE BROKEN") && log.contains("sled panicked while opening"),
        "{log}"
    );
    assert_eq!(broken_dirs(&dir.join("data")).len(), 1, "{log}");
    run.stop();

    // panic = "abort" (the release profile): set aside by the hook, then abort...
    let Some(bin) = release_bin() else { return };
    let dir = broken_run_dir(root.path(), "abort", &base, &flips);
    let mut run = Run::start(&bin, &dir);
    let st = run
        .ready_or_exit()
        .expect("the release build aborts on the panic");
    use std::os::unix::process::ExitStatusExt;
    let sigabrt = nix::sys::signal::Signal::SIGABRT as i32;
    assert_eq!(st.signal(), Some(sigabrt), "{st}:\n{}", run.log());
    let log = run.log();
    assert!(
        log.contains("the process aborts now and its restart starts EMPTY"),
        "{log}"
    );
    let aside = broken_dirs(&dir.join("data"));
    assert_eq!(aside.len(), 1, "{log}");
    assert!(aside[0].join("db").exists(), "kept for inspection");
    // ...and the supervisor's restart comes up on a fresh store.
    let mut again = Run::start(&bin, &dir);
    assert_eq!(again.ready_or_exit(), None, "{}", again.log());
    assert_eq!(
        again.log().matches("STORE BROKEN").count(),
        1,
        "{}",
        again.log()
    );
    again.stop();
}
