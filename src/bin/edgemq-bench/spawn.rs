//! Brokers under test as child processes: edgemq and Debian's mosquitto with
//! equivalent configs on loopback ports, optionally pinned with `taskset`,
//! each in its own scratch directory, stopped (then killed) on drop.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::wire::Conn;

/// How long a broker may take to accept its first client.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between connection attempts while a broker starts.
const POLL_EVERY: Duration = Duration::from_millis(1);
/// How long a broker gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// Per-client queue and inflight limits both brokers get. The queue is above
/// both defaults (1000): Mosquitto 2.0.11 was seen dropping QoS 1 in fan-in
/// with far fewer messages outstanding end to end at 1000.
const MAX_QUEUED: usize = 10_000;
const MAX_INFLIGHT: usize = 32;
/// Topic filter the bench bridges out, at QoS 1.
pub const BRIDGED: &str = "bench/bridge/#";

/// Which broker a scenario runs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `edgemq` binary.
    Edgemq,
    /// Debian's `mosquitto`.
    Mosquitto,
}

/// Where the binaries are and how to pin the broker under test.
#[derive(Clone, Debug)]
pub struct Bins {
    /// Path of `edgemq`.
    pub edgemq: PathBuf,
    /// Path of `mosquitto`.
    pub mosquitto: PathBuf,
    /// `taskset -c` list for the broker under test; None: not pinned.
    pub cpu: Option<String>,
    /// Directory under which scratch directories are made (sets the disk measured).
    pub scratch: PathBuf,
}

/// An outbound bridge for the broker under test.
#[derive(Clone, Debug)]
pub struct BridgeSpec {
    /// Central broker address.
    pub central: String,
    /// edgemq `durability` ("always" or "outage"); Mosquitto has no such knob.
    pub durability: String,
}

/// A running broker.
pub struct Broker {
    child: Option<Child>,
    argv: Vec<OsString>,
    /// "127.0.0.1:PORT".
    pub addr: String,
    /// Process id (taskset execs, so this is the broker itself).
    pub pid: u32,
    /// Scratch directory (config, log); removed on drop.
    pub dir: PathBuf,
    /// The broker's store directory, inside `dir`.
    pub data_dir: PathBuf,
    /// Spawn to first CONNACK.
    pub startup: Duration,
}

/// A free loopback port (race-prone in theory, fine on a bench host).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Broker {
    /// Starts `kind` on a fresh port and waits until it accepts MQTT clients.
    pub async fn start(
        kind: Kind,
        bins: &Bins,
        pin: bool,
        bridge: Option<&BridgeSpec>,
    ) -> Result<Broker> {
        Self::start_on(kind, bins, pin, bridge, free_port()?).await
    }

    /// Starts `kind` on `port`.
    pub async fn start_on(
        kind: Kind,
        bins: &Bins,
        pin: bool,
        bridge: Option<&BridgeSpec>,
        port: u16,
    ) -> Result<Broker> {
        let dir = scratch_dir(&bins.scratch)?;
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)?;
        let (bin, args) = match kind {
            Kind::Edgemq => {
                let conf = dir.join("edgemq.toml");
                std::fs::write(&conf, edgemq_config(port, &data_dir, bridge))?;
                (
                    &bins.edgemq,
                    vec!["run".into(), "-c".into(), conf.into_os_string()],
                )
            }
            Kind::Mosquitto => {
                let conf = dir.join("mosquitto.conf");
                std::fs::write(&conf, mosquitto_config(port, &data_dir, bridge))?;
                (&bins.mosquitto, vec!["-c".into(), conf.into_os_string()])
            }
        };
        // Children inherit the bench's own affinity; a broker not under test gets every CPU back.
        let cpus = match (&bins.cpu, pin) {
            (Some(c), true) => Some(c.clone()),
            (Some(_), false) => online_cpus(),
            (None, _) => None,
        };
        let mut argv: Vec<OsString> = Vec::new();
        if let Some(c) = cpus {
            argv.extend(["taskset".into(), "-c".into(), c.into()]);
        }
        argv.push(bin.clone().into_os_string());
        argv.extend(args);
        let mut b = Broker {
            child: None,
            argv,
            addr: format!("127.0.0.1:{port}"),
            pid: 0,
            dir,
            data_dir,
            startup: Duration::ZERO,
        };
        b.spawn().await?;
        Ok(b)
    }

    /// Starts the broker again with the same config and store (after `stop` or `kill9`).
    pub async fn spawn(&mut self) -> Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("broker.log"))?;
        let t0 = Instant::now();
        let child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawn {:?}", self.argv))?;
        self.pid = child.id();
        self.child = Some(child);
        self.wait_ready(t0).await
    }

    /// SIGKILL: a power cut as far as the broker's memory is concerned.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn wait_ready(&mut self, t0: Instant) -> Result<()> {
        loop {
            if let Ok(c) = Conn::connect(&self.addr, "bench-probe", true).await {
                self.startup = t0.elapsed();
                c.disconnect().await;
                return Ok(());
            }
            if let Some(st) = self
                .child
                .as_mut()
                .map(Child::try_wait)
                .transpose()?
                .flatten()
            {
                bail!(
                    "broker exited with {st} before accepting; log:\n{}",
                    self.log()
                );
            }
            if t0.elapsed() > START_TIMEOUT {
                bail!(
                    "broker not accepting after {START_TIMEOUT:?}; log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(POLL_EVERY).await;
        }
    }

    /// The broker's combined stdout/stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default()
    }

    /// SIGTERM, then SIGKILL after a grace period; returns once it exited.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let t0 = Instant::now();
        while t0.elapsed() < STOP_GRACE {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
        if std::env::var_os("EDGEMQ_BENCH_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn online_cpus() -> Option<String> {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .map(|s| s.trim().to_string())
}

fn scratch_dir(parent: &Path) -> Result<PathBuf> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = parent.join(format!("edgemq-bench-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
    Ok(dir)
}

fn edgemq_config(port: u16, data: &Path, bridge: Option<&BridgeSpec>) -> String {
    let mut s = format!(
        "data_dir = {data:?}\nlog_level = \"warn\"\n\n[limits]\nmax_connections = 4096\n\
         max_inflight = {MAX_INFLIGHT}\nmax_queued_messages = {MAX_QUEUED}\n\n\
         [[listener]]\nbind = \"127.0.0.1:{port}\"\nallow_anonymous = true\n"
    );
    if let Some(b) = bridge {
        let _ = write!(
            s,
            "\n[[bridge]]\nname = \"central\"\naddresses = [\"{}\"]\nclient_id = \"edgemq-bench-bridge\"\n\
             clean_session = false\nnotifications = false\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n\n\
             [[bridge.topic]]\npattern = \"{BRIDGED}\"\ndirection = \"out\"\nqos = 1\n\n\
             [bridge.queue]\nmax_bytes = \"1GiB\"\ndurability = \"{}\"\n",
            b.central, b.durability
        );
    }
    s
}

fn mosquitto_config(port: u16, data: &Path, bridge: Option<&BridgeSpec>) -> String {
    let mut s = format!(
        "listener {port} 127.0.0.1\nallow_anonymous true\nlog_dest stderr\nlog_type error\n\
         max_inflight_messages {MAX_INFLIGHT}\nmax_queued_messages {MAX_QUEUED}\nmax_connections -1\n\
         set_tcp_nodelay true\n"
    );
    if nix::unistd::geteuid().is_root() {
        // Otherwise it drops to user `mosquitto`, which cannot write our scratch store.
        s.push_str("user root\n");
    }
    if std::env::var_os("EDGEMQ_BENCH_MOSQUITTO_VERBOSE").is_some() {
        s.push_str("log_type all\n");
    }
    match bridge {
        None => s.push_str("persistence false\n"),
        Some(b) => {
            let _ = write!(
                s,
                "persistence true\npersistence_location {}/\n\nconnection central\naddress {}\n\
                 clientid mosquitto-bench-bridge\ncleansession false\nnotifications false\n\
                 bridge_protocol_version mqttv311\nrestart_timeout 1\ntopic {BRIDGED} out 1\n",
                data.display(),
                b.central
            );
        }
    }
    s
}
