//! The real `edgemq` binary as the edge: its config (one anonymous local
//! listener, one TLS bridge "central" carrying data/# to meters/GW-0001/),
//! start / SIGKILL / restart on the same data_dir, the status socket, and a
//! local QoS 1 publisher that records which sequence numbers were PUBACKed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::bridge_support::{Pki, WAIT, free_port};

/// Requests the publisher's client may queue ahead of its event loop.
const PUBLISH_CHANNEL: usize = 64;

/// One edgemq process (restartable) with its files in `dir`.
pub struct EdgeProc {
    /// Holds edgemq.toml, edge.log and data/.
    pub dir: PathBuf,
    /// The edge's data_dir.
    pub data_dir: PathBuf,
    /// Local anonymous listener on 127.0.0.1.
    pub port: u16,
    /// Extra environment for the process (e.g. libfaketime's).
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl EdgeProc {
    /// Writes the config (bridge to `central`, `queue` lines under [bridge.queue]) and starts the edge.
    pub fn start(dir: &Path, pki: &Pki, central: &str, queue: &str) -> EdgeProc {
        EdgeProc::start_with(dir, pki, central, "", queue)
    }

    /// Like `start`, with `top` lines (top-level keys) at the head of the config.
    pub fn start_with(dir: &Path, pki: &Pki, central: &str, top: &str, queue: &str) -> EdgeProc {
        EdgeProc::start_env(dir, pki, central, top, queue, &[])
    }

    /// Like `start_with`, with `env` added to the process's environment on every start.
    pub fn start_env(
        dir: &Path,
        pki: &Pki,
        central: &str,
        top: &str,
        queue: &str,
        env: &[(&str, &str)],
    ) -> EdgeProc {
        std::fs::create_dir_all(dir).unwrap();
        let edge = EdgeProc {
            dir: dir.to_path_buf(),
            data_dir: dir.join("data"),
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        let conf = format!(
            "data_dir = {data:?}\n{top}\n\
             [[listener]]\nbind = \"127.0.0.1:{port}\"\nallow_anonymous = true\n\
             [[bridge]]\nname = \"central\"\naddresses = [{central:?}]\nclient_id = \"GW-0001\"\n\
             keepalive = \"5s\"\nreconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\n\
             notification_topic = \"meters/GW-0001/bridge/state\"\n\
             [bridge.tls]\nca = {ca:?}\ncert = {cert:?}\nkey = {key:?}\ntls13_only = true\n\
             [[bridge.topic]]\npattern = \"data/#\"\nremote_prefix = \"meters/GW-0001/\"\n\
             [bridge.queue]\n{queue}\n",
            data = edge.data_dir.display().to_string(),
            port = edge.port,
            ca = pki.path("ca.crt"),
            cert = pki.path("GW-0001.crt"),
            key = pki.path("GW-0001.key"),
        );
        std::fs::write(edge.config(), conf).unwrap();
        let mut edge = edge;
        edge.restart();
        edge
    }

    /// Path of the config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("edgemq.toml")
    }

    /// Starts the binary (again, on the same data_dir); returns once the listener accepts.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "edge already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("edge.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_edgemq"))
            .arg("run")
            .arg("-c")
            .arg(self.config())
            .env("EDGEMQ_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(Some(status)) = self.child.as_mut().map(|c| c.try_wait().unwrap()) {
                panic!("edgemq exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "edgemq did not listen: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The process id of the running edge.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("edge running").id()
    }

    /// SIGKILL and reap: no shutdown, no flush.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM and wait for the clean exit (status 0 expected).
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
            let deadline = Instant::now() + WAIT;
            let status = loop {
                if let Some(status) = child.try_wait().unwrap() {
                    break status;
                }
                assert!(Instant::now() < deadline, "edgemq ignored SIGTERM");
                std::thread::sleep(Duration::from_millis(10));
            };
            assert!(
                status.success(),
                "edgemq exited with {status}:\n{}",
                self.log()
            );
        }
    }

    /// Everything the edge logged over all its runs.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("edge.log")).unwrap_or_default()
    }

    /// What `edgemq status` would print, read from the daemon's status socket.
    pub fn status(&self) -> String {
        use std::io::Read;
        let sock = edgemq::sys::status_socket(&self.data_dir);
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
            return String::new();
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        // asking for text spares the daemon's wait for a request line
        let _ = std::io::Write::write_all(&mut s, b"text\n");
        let _ = s.shutdown(std::net::Shutdown::Write);
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    }

    /// Polls the status until `cond` holds on its text.
    pub async fn wait_status(&self, what: &str, cond: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{s}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Bytes written to storage by the running edge (/proc/<pid>/io write_bytes).
    pub fn write_bytes(&self) -> u64 {
        let io = std::fs::read_to_string(format!("/proc/{}/io", self.pid())).unwrap();
        io.lines()
            .find_map(|l| l.strip_prefix("write_bytes: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for EdgeProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Total size of the files under `dir` (0 when it does not exist).
pub fn tree_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                tree_bytes(&p)
            } else {
                e.metadata().map_or(0, |m| m.len())
            }
        })
        .sum()
}

/// Every regular file under `dir` with its size and modification time, sorted by path.
pub fn tree_files(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let (p, Ok(m)) = (e.path(), e.metadata()) else {
            continue;
        };
        if m.is_dir() {
            out.extend(tree_files(&p));
        } else if m.is_file() {
            out.push((p, m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// Sequence numbers the edge PUBACKed, shared with whoever watches the publisher.
pub type Acked = Arc<Mutex<Vec<u64>>>;

/// Publishes `seqs` (payload: the decimal number) with QoS 1 on `topic` at the
/// edge on `port`, recording each PUBACKed number in `acked` as it comes. Returns
/// when every one was acknowledged, or as soon as the connection fails (no
/// reconnect: what the edge never acknowledged it never promised).
pub async fn publish_counted(port: u16, topic: &str, seqs: std::ops::Range<u64>, acked: Acked) {
    let mut opts = MqttOptions::new(format!("pub-{}", free_port()), "127.0.0.1", port);
    opts.set_keep_alive(Duration::from_secs(5));
    opts.set_inflight(100);
    let (client, mut eventloop) = AsyncClient::new(opts, PUBLISH_CHANNEL);
    let (first, total) = (seqs.start, seqs.end - seqs.start);
    let topic = topic.to_string();
    let sender = tokio::spawn(async move {
        for i in seqs {
            let payload = i.to_string();
            if client
                .publish(&topic, QoS::AtLeastOnce, false, payload)
                .await
                .is_err()
            {
                return;
            }
        }
    });
    // rumqttc sends requests in order: the k-th outgoing PUBLISH carries first + k.
    let mut sent: u64 = 0;
    let mut inflight: HashMap<u16, u64> = HashMap::new();
    let mut done: u64 = 0;
    while done < total {
        match eventloop.poll().await {
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                inflight.insert(pkid, first + sent);
                sent += 1;
            }
            Ok(Event::Incoming(Packet::PubAck(ack))) => {
                if let Some(seq) = inflight.remove(&ack.pkid) {
                    acked.lock().unwrap().push(seq);
                    done += 1;
                }
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    sender.abort();
}
