//! Shared test helpers: the broker in-process (Server::start on 127.0.0.1:0
//! with a temp data_dir) or as the real binary (config file, free port,
//! SIGTERM/restart), a raw MQTT socket for byte-exact packets, rumqttc
//! drivers, and the "tool must exist under CI" rule.
#![allow(dead_code)]

pub mod raw;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use edgemq::server::{self, Server};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long a test waits to be sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(400);

static LOG: Once = Once::new();

/// Broker logs to stderr at EDGEMQ_LOG (default warn), once per test binary.
pub fn init_logging() {
    LOG.call_once(|| edgemq::daemon::init_logging("warn"));
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

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let l = StdListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

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

    /// True once the broker answers a CONNECT with a CONNACK.
    fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut ack = [0u8; 4];
        s.write_all(&raw::connect4("", true, 0)).is_ok()
            && s.read_exact(&mut ack).is_ok()
            && ack == [0x20, 2, 0, 0]
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

/// A rumqttc v4 client whose event loop runs in a task; incoming packets arrive on `rx`.
pub struct V4 {
    /// The client handle.
    pub client: rumqttc::AsyncClient,
    /// Incoming packets, in order.
    pub rx: mpsc::UnboundedReceiver<rumqttc::Packet>,
    /// The event loop task (ends at the first connection error).
    pub task: JoinHandle<Option<rumqttc::ConnectionError>>,
    /// Packets that arrived while [`V4::publish`] waited for its acknowledgement.
    stash: std::collections::VecDeque<rumqttc::Packet>,
}

/// Connects a v4 client and waits for its CONNACK.
pub async fn v4(opts: rumqttc::MqttOptions) -> V4 {
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 1024);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return None;
                    }
                }
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    });
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(rumqttc::Packet::ConnAck(_))) => {}
        other => panic!("no CONNACK: {other:?}"),
    }
    V4 {
        client,
        rx,
        task,
        stash: Default::default(),
    }
}

/// Options for a v4 client on localhost.
pub fn v4_opts(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl V4 {
    /// Subscribes and waits for the SUBACK; returns its return codes.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::QoS,
    ) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            match self.next().await {
                Some(rumqttc::Packet::SubAck(s)) => return s.return_codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Next incoming packet within [`WAIT`].
    pub async fn next(&mut self) -> Option<rumqttc::Packet> {
        if let Some(p) = self.stash.pop_front() {
            return Some(p);
        }
        tokio::time::timeout(WAIT, self.rx.recv()).await.ok()?
    }

    /// Next PUBLISH within `t`, skipping other packets.
    pub async fn publish_within(&mut self, t: Duration) -> Option<rumqttc::Publish> {
        while let Some(p) = self.stash.pop_front() {
            if let rumqttc::Packet::Publish(p) = p {
                return Some(p);
            }
        }
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(rumqttc::Packet::Publish(p))) => return Some(p),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Next PUBLISH within [`WAIT`], or panic.
    pub async fn expect_publish(&mut self) -> rumqttc::Publish {
        self.publish_within(WAIT).await.expect("no PUBLISH arrived")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_none(&mut self) {
        if let Some(p) = self.publish_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }

    /// Publishes and, for QoS ≥ 1, waits for the PUBACK / PUBCOMP.
    pub async fn publish(&mut self, topic: &str, qos: rumqttc::QoS, retain: bool, payload: &[u8]) {
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .unwrap();
        let want_ack = |p: &rumqttc::Packet| match qos {
            rumqttc::QoS::AtMostOnce => true,
            rumqttc::QoS::AtLeastOnce => matches!(p, rumqttc::Packet::PubAck(_)),
            rumqttc::QoS::ExactlyOnce => matches!(p, rumqttc::Packet::PubComp(_)),
        };
        if qos == rumqttc::QoS::AtMostOnce {
            return;
        }
        loop {
            let p = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .ok()
                .flatten()
                .expect("no acknowledgement");
            if want_ack(&p) {
                return;
            }
            self.stash.push_back(p);
        }
    }
}

/// A rumqttc v5 client whose event loop runs in a task.
pub struct V5 {
    /// The client handle.
    pub client: rumqttc::v5::AsyncClient,
    /// Incoming packets, in order (the CONNACK already consumed into `connack`).
    pub rx: mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Packet>,
    /// The CONNACK.
    pub connack: rumqttc::v5::mqttbytes::v5::ConnAck,
    /// The event loop task.
    pub task: JoinHandle<Option<rumqttc::v5::ConnectionError>>,
}

/// Options for a v5 client on localhost.
pub fn v5_opts(id: &str, port: u16) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects a v5 client and waits for its CONNACK.
pub async fn v5(opts: rumqttc::v5::MqttOptions) -> V5 {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let (client, mut el) = rumqttc::v5::AsyncClient::new(opts, 1024);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::v5::Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return None;
                    }
                }
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    });
    let connack = match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Packet::ConnAck(c))) => c,
        other => panic!("no CONNACK: {other:?}"),
    };
    V5 {
        client,
        rx,
        connack,
        task,
    }
}

impl V5 {
    /// Next incoming packet within [`WAIT`].
    pub async fn next(&mut self) -> Option<rumqttc::v5::mqttbytes::v5::Packet> {
        tokio::time::timeout(WAIT, self.rx.recv()).await.ok()?
    }

    /// Waits for the next SUBACK, returning its reason codes.
    pub async fn suback(&mut self) -> Vec<rumqttc::v5::mqttbytes::v5::SubscribeReasonCode> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        loop {
            match self.next().await {
                Some(Packet::SubAck(s)) => return s.return_codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Next PUBLISH within `t`.
    pub async fn publish_within(
        &mut self,
        t: Duration,
    ) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Packet::Publish(p))) => return Some(p),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Next PUBLISH within [`WAIT`], or panic.
    pub async fn expect_publish(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        self.publish_within(WAIT).await.expect("no PUBLISH arrived")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_none(&mut self) {
        if let Some(p) = self.publish_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }
}

/// Reads a retained `$SYS/broker/...` value through a fresh subscriber.
pub async fn sys_value(port: u16, topic: &str) -> String {
    sys_until(port, topic, |_| true).await
}

/// Waits (a few sys_intervals at most) for a `$SYS` value that satisfies `ok`.
pub async fn sys_until(port: u16, topic: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut c = v4(v4_opts(&format!("sys-{}", free_port()), port)).await;
    c.subscribe(topic, rumqttc::QoS::AtMostOnce).await;
    let mut seen = Vec::new();
    while let Some(p) = c.publish_within(WAIT).await {
        let v = String::from_utf8(p.payload.to_vec()).unwrap();
        if ok(&v) {
            return v;
        }
        seen.push(v);
    }
    panic!("{topic}: no acceptable value within {WAIT:?}; saw {seen:?}");
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
