//! Shared test helpers: the broker in-process (Server::start on 127.0.0.1:0
//! with a temp data_dir) or as the real binary (config file, free port,
//! SIGTERM/restart), a raw MQTT socket for byte-exact packets, rumqttc
//! drivers, and the "tool must exist under CI" rule.
#![allow(dead_code)]

pub mod clients;
pub mod fuzz;
pub mod ports;
pub mod raw;
pub mod rng;

// Not every test binary uses the rumqttc drivers.
#[allow(unused_imports)]
pub use clients::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use edgemq::server::{self, Server};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(400);

static LOG: Once = Once::new();

/// Broker logs to stderr at EDGEMQ_LOG (default warn), once per test binary.
pub fn init_logging() {
    init_logging_at("warn");
}

/// As [`init_logging`] with another default level, for a test binary whose expected warnings
/// would flood the output; call it before anything starts a broker.
pub fn init_logging_at(level: &str) {
    LOG.call_once(|| edgemq::daemon::init_logging(level));
}

/// Config text with one anonymous loopback listener on `bind`, `data_dir`,
/// `[limits]` lines and any further tables.
pub fn config_text(data_dir: &Path, bind: &str, limits: &str, extra: &str) -> String {
    config_text_sys(data_dir, bind, "1s", limits, extra)
}

/// [`config_text`] with a given `sys_interval` (which also paces the session-expiry sweep).
pub fn config_text_sys(
    data_dir: &Path,
    bind: &str,
    sys: &str,
    limits: &str,
    extra: &str,
) -> String {
    let timeout = if limits.contains("connect_timeout") {
        ""
    } else {
        "connect_timeout = \"2s\""
    };
    format!(
        "data_dir = {dir:?}\nsys_interval = {sys:?}\n\n[limits]\n{timeout}\n{limits}\n\n\
         [[listener]]\nbind = {bind:?}\nallow_anonymous = true\n\n{extra}\n",
        dir = data_dir.display().to_string(),
    )
}

/// A broker running inside the test's runtime.
pub struct TestBroker {
    /// The TCP port it listens on.
    pub port: u16,
    /// Every bound address, in config order.
    pub addresses: Vec<String>,
    /// Its temp dir (data_dir is `dir/data`).
    pub dir: tempfile::TempDir,
    /// The broker state, for counters.
    pub broker: std::sync::Arc<edgemq::broker::Broker>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl TestBroker {
    /// Default limits.
    pub async fn start() -> TestBroker {
        Self::with("", "").await
    }

    /// With extra `[limits]` lines and extra tables.
    pub async fn with(limits: &str, extra: &str) -> TestBroker {
        Self::with_sys("1s", limits, extra).await
    }

    /// With a given `sys_interval`, extra `[limits]` lines and extra tables.
    pub async fn with_sys(sys: &str, limits: &str, extra: &str) -> TestBroker {
        init_logging();
        let dir = tempfile::tempdir().unwrap();
        let text = config_text_sys(&dir.path().join("data"), "127.0.0.1:0", sys, limits, extra);
        let cfg = edgemq::config::parse_toml(&text, Path::new("test.toml"))
            .unwrap_or_else(|e| panic!("{e}\n{text}"));
        let bound = server::bind_all(&cfg).unwrap();
        let shutdown = CancellationToken::new();
        let srv = Server::start(cfg, bound, shutdown.clone()).await.unwrap();
        let port = port_of(&srv.addresses[0]);
        let addresses = srv.addresses.clone();
        let broker = srv.broker.clone();
        let task = tokio::spawn(srv.wait());
        TestBroker {
            port,
            addresses,
            dir,
            broker,
            shutdown,
            task: Some(task),
        }
    }

    /// Graceful shutdown, waiting for it to finish.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(t) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), t)
                .await
                .expect("shutdown took too long")
                .unwrap();
        }
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

pub use ports::free_port;

/// The real `edgemq` binary with a config file, stderr captured to a file.
pub struct BinBroker {
    /// Port of its listener.
    pub port: u16,
    /// data_dir.
    pub data_dir: PathBuf,
    /// The config file.
    pub config: PathBuf,
    log: PathBuf,
    child: Option<Child>,
    starts: usize,
    /// EDGEMQ_LOG for the process (default "info").
    pub log_level: &'static str,
}

impl BinBroker {
    /// Writes `dir/edgemq.toml` (data in `dir/data`) and starts the binary.
    pub fn start(dir: &Path, limits: &str, extra: &str) -> BinBroker {
        Self::start_logging(dir, "info", limits, extra)
    }

    /// Like [`BinBroker::start`] with EDGEMQ_LOG = `level`.
    pub fn start_logging(dir: &Path, level: &'static str, limits: &str, extra: &str) -> BinBroker {
        let port = free_port();
        let data_dir = dir.join("data");
        let config = dir.join("edgemq.toml");
        let bind = format!("127.0.0.1:{port}");
        std::fs::write(&config, config_text(&data_dir, &bind, limits, extra)).unwrap();
        let mut b = BinBroker {
            port,
            data_dir,
            config,
            log: dir.join("edgemq.log"),
            child: None,
            starts: 0,
            log_level: level,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edgemq"))
            .arg("run")
            .arg("-c")
            .arg(&self.config)
            .env("EDGEMQ_LOG", self.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.starts += 1;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.answers() {
            if let Some(Ok(Some(st))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("edgemq exited with {st}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "edgemq did not answer:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // The port is bound before the signal handlers are installed; give
        // the daemon a moment so a quick SIGTERM is a graceful stop.
        std::thread::sleep(Duration::from_millis(100));
    }

    /// True once the broker answers a CONNECT with a CONNACK (any return code).
    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut ack = [0u8; 4];
        s.write_all(&raw::connect4("", true, 0)).is_ok()
            && s.read_exact(&mut ack).is_ok()
            && ack[..2] == [0x20, 2]
    }

    /// SIGTERM and wait for a clean exit (code 0).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                assert!(st.success(), "edgemq exited with {st}:\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "edgemq ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the running process.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("not running");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, sig).unwrap();
    }

    /// SIGKILL (a crash).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts again on the same config, port and data_dir.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Everything the broker logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BinBroker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True if every one of `tools` can be started (Mosquitto's clients exit 1 on
/// `--help`, so only the spawn counts). Missing: a test failure under
/// CI=true, else a note and false (the caller skips).
pub fn have_tools(tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            Command::new(t)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .collect();
    report_missing(&missing.join(", "), missing.is_empty())
}

fn report_missing(what: &str, ok: bool) -> bool {
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} required under CI=true but missing"
        );
        eprintln!("NOTE: {what} not available; test skipped");
    }
    ok
}

/// Python 3 with paho-mqtt importable.
pub fn have_paho() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    report_missing("python3 with paho-mqtt", ok)
}

/// Path of a script under tests/paho/.
pub fn paho_script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/paho")
        .join(name)
}

/// Adds USER with PASSWORD to a password file through `edgemq passwd` (password on stdin).
pub fn edgemq_passwd(file: &Path, user: &str, password: &str) {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .arg("passwd")
        .arg(file)
        .arg(user)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    assert!(c.wait().unwrap().success(), "edgemq passwd failed");
}

/// The ACL of seed 000 plus a user with mixed rights.
pub const ACL: &str = "\
# seed 000: each gateway only under its own meters/<name>/
pattern readwrite meters/%u/#

user alice
topic readwrite alice/#
topic read public/#
topic deny alice/secret/#
";

/// Writes a password file (users alice, GW-0001, GW-0002; password \"pw\") and
/// [`ACL`] into `dir`; returns the `[auth]` table for the config.
pub fn write_auth(dir: &Path) -> String {
    let pw = dir.join("passwd");
    for u in ["alice", "GW-0001", "GW-0002"] {
        edgemq_passwd(&pw, u, "pw");
    }
    let acl = dir.join("acl");
    std::fs::write(&acl, ACL).unwrap();
    format!(
        "[auth]\npassword_file = {:?}\nacl_file = {:?}\n",
        pw.display().to_string(),
        acl.display().to_string()
    )
}
