//! The real `edgemq` binary as a child process: start it on a config in a
//! temp dir, read its log (stderr goes to a file, so it is not a terminal),
//! signal it and collect its exit status, every wait bounded.

#![allow(dead_code)]

pub mod mqtt;
pub mod tls;
#[path = "../common/tools.rs"]
mod tools;
// not every test crate that includes this module checks for a tool
#[allow(unused_imports)]
pub use tools::have_tool;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_edgemq");
/// How long a daemon may take to say it is ready.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a graceful stop may take (the daemon's own deadline is 10 s; a
/// daemon with nothing to drain must be far quicker).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` until it returns Some or `timeout` passes.
pub fn eventually<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(POLL);
    }
}

/// A running (or exited) `edgemq` child.
pub struct Daemon {
    pub child: Child,
    pub log: PathBuf,
    status: Option<ExitStatus>,
}

/// A command for the binary, run in `cwd`, stderr to `log`, stdout discarded.
pub fn command(cwd: &Path, args: &[&str], log: &Path) -> Command {
    let mut c = Command::new(BIN);
    c.args(args)
        .current_dir(cwd)
        .env_remove("EDGEMQ_LOG")
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(log).expect("log file"));
    c
}

impl Daemon {
    /// Spawns `c` (from [`command`]) without waiting for anything.
    pub fn spawn(mut c: Command, log: &Path) -> Daemon {
        Daemon {
            child: c.spawn().expect("spawn edgemq"),
            log: log.to_path_buf(),
            status: None,
        }
    }

    /// `edgemq run -c <dir>/edgemq.toml` with `toml` written there; waits until ready.
    pub fn start(dir: &Path, toml: &str) -> Daemon {
        let cfg = dir.join("edgemq.toml");
        std::fs::write(&cfg, toml).expect("write config");
        let log = dir.join(format!("edgemq-{}.log", unique()));
        let c = command(dir, &["run", "-c", cfg.to_str().expect("utf-8 path")], &log);
        let mut d = Daemon::spawn(c, &log);
        d.wait_ready();
        d
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for a log line containing `needle`; panics with the log if it never comes.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let found = eventually(timeout, || {
            if self.log().contains(needle) {
                return Some(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
                panic!(
                    "edgemq exited ({st}) before logging {needle:?}:\n{}",
                    self.log()
                );
            }
            None
        });
        assert!(found.is_some(), "no {needle:?} in the log:\n{}", self.log());
    }

    /// Waits for the "ready" line (logged once signal handlers are installed).
    pub fn wait_ready(&mut self) {
        self.wait_log(" ready ", START_TIMEOUT);
    }

    /// Addresses of the listeners, from the "listening" lines, in config order.
    pub fn addrs(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("listening"))
            .filter_map(|l| l.split("listener=").nth(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_string)
            .collect()
    }

    /// The first listener's address.
    pub fn addr(&self) -> String {
        self.addrs().into_iter().next().expect("a listener")
    }

    /// Sends `sig` to the daemon.
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid() as i32), sig).expect("kill");
    }

    /// Waits for the exit; panics (after killing it) if it takes longer than `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(st) = self.status {
            return st;
        }
        let st = eventually(timeout, || self.child.try_wait().ok().flatten());
        match st {
            Some(st) => {
                self.status = Some(st);
                st
            }
            None => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("edgemq did not exit within {timeout:?}:\n{}", self.log());
            }
        }
    }

    /// SIGTERM and the exit code (panics if it died from a signal).
    pub fn stop(&mut self) -> i32 {
        self.signal(Signal::SIGTERM);
        let st = self.wait_exit(STOP_TIMEOUT);
        st.code()
            .unwrap_or_else(|| panic!("edgemq killed by a signal ({st}):\n{}", self.log()))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Any other child process, killed if a failing test leaves it running.
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A config with one anonymous loopback listener on an ephemeral port.
pub fn basic_config(dir: &Path, extra: &str) -> String {
    format!(
        "data_dir = \"{}/data\"\n{extra}\n[[listener]]\nbind = \"127.0.0.1:0\"\n",
        dir.display()
    )
}

/// Whether the tests run as root; prints a skip note when not.
pub fn is_root() -> bool {
    let root = nix::unistd::Uid::effective().is_root();
    if !root {
        eprintln!("note: not running as root; skipping this privilege test");
    }
    root
}

/// Threads of `pid` named like the runtime's ("edgemq-rt": workers and blocking pool).
pub fn runtime_threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|n| n.trim() == "edgemq-rt")
        .count()
}

/// The `(real, effective, saved)` ids on the `Uid:`/`Gid:` line, and the `Groups:` line.
pub fn proc_ids(pid: u32) -> (Vec<u32>, Vec<u32>, Vec<u32>) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> Vec<u32> {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..]
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect()
    };
    (field("Uid:"), field("Gid:"), field("Groups:"))
}

/// Starts with `log_level` in the config and `env` as EDGEMQ_LOG; returns the log.
pub fn log_with_levels(log_level: &str, env: Option<&str>) -> String {
    let dir = tempdir();
    let sock = dir.path().join("mqtt.sock");
    let toml = format!(
        "data_dir = \"{d}/data\"\nlog_level = \"{log_level}\"\n[[listener]]\nbind = \"unix:{s}\"\n",
        d = dir.path().display(),
        s = sock.display()
    );
    let cfg = dir.path().join("edgemq.toml");
    std::fs::write(&cfg, toml).unwrap();
    let log = dir.path().join("l.log");
    let mut c = command(dir.path(), &["run", "-c", cfg.to_str().unwrap()], &log);
    if let Some(v) = env {
        c.env("EDGEMQ_LOG", v);
    }
    let mut d = Daemon::spawn(c, &log);
    let status = dir.path().join("data/edgemq.status.sock");
    eventually(Duration::from_secs(10), || status.exists().then_some(())).expect("daemon started");
    let s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(mqtt::IO_TIMEOUT)).unwrap();
    let (mut cl, _) = mqtt::Client::connect(s, "lv", true, None).unwrap();
    cl.ping().unwrap();
    assert_eq!(d.stop(), 0);
    d.log()
}

/// A number unique within this test process (log file names).
pub fn unique() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A temp dir that other users may traverse (for the privilege-drop tests).
pub fn tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    d
}

/// Runs the binary to completion with `args` in `cwd`; returns (code, stdout, stderr).
pub fn run_to_end(cwd: &Path, args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .env_remove("EDGEMQ_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn edgemq");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    let deadline = Instant::now() + START_TIMEOUT;
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("edgemq {args:?} did not finish");
        }
        std::thread::sleep(POLL);
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
