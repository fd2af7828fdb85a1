//! The bridge under test, in-process: a `World` (certificates and a central
//! Mosquitto) and an `Edge` (one bridge started with `bridge::start`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edgemq::bridge::{self, BridgeHandle, BridgeStatus};
use edgemq::config::model::Bridge;
use edgemq::router::forward::{Durable, Forwarder};
use edgemq::router::message::{Message, Origin, QoS};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Central, Pki, WAIT};

/// The usual out rule: local data/# to meters/GW-0001/data/#.
pub const OUT_RULE: &str = "[[topic]]\npattern = \"data/#\"\nremote_prefix = \"meters/GW-0001/\"\n";

/// One test's certificates and central broker.
pub struct World {
    /// Temporary directory of everything.
    pub dir: tempfile::TempDir,
    /// Certificates.
    pub pki: Pki,
    /// The central Mosquitto.
    pub central: Central,
}

impl World {
    pub fn new() -> World {
        super::capture_logs();
        edgemq::tls::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::generate(dir.path());
        let central = Central::start(dir.path(), &pki);
        World { dir, pki, central }
    }

    /// A bridge configuration; `client` names the client certificate files.
    pub fn config(
        &self,
        name: &str,
        addresses: &[String],
        client: &str,
        top: &str,
        tls: &str,
        rest: &str,
    ) -> Bridge {
        let addresses: Vec<String> = addresses.iter().map(|a| format!("{a:?}")).collect();
        let keepalive = if top.contains("keepalive") {
            ""
        } else {
            "keepalive = \"5s\""
        };
        let text = format!(
            "name = {name:?}\naddresses = [{}]\nclient_id = \"GW-0001\"\n{keepalive}\n\
             reconnect_min = \"100ms\"\nreconnect_max = \"1s\"\n\
             notification_topic = \"meters/GW-0001/bridge/state\"\n{top}\n\
             [tls]\ncert = {:?}\nkey = {:?}\ntls13_only = true\n{tls}\n{rest}\n",
            addresses.join(", "),
            self.pki.path(&format!("{client}.crt")),
            self.pki.path(&format!("{client}.key")),
        );
        toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
    }

    pub fn ca(&self) -> String {
        format!("ca = {:?}", self.pki.path("ca.crt"))
    }

    pub fn data(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join("data").join(name)
    }
}

/// A running bridge.
pub struct Edge {
    /// The bridge.
    pub handle: Arc<BridgeHandle>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    /// Inbound messages, when kept.
    pub inbound: Option<mpsc::Receiver<Message>>,
}

impl Edge {
    pub fn start(cfg: &Bridge, data: &Path, keep_inbound: bool) -> Edge {
        let (tx, mut rx) = mpsc::channel(1024);
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();
        let tls = std::sync::Arc::new(bridge::TlsSlot::new(cfg.tls.clone()));
        let handle = bridge::start(cfg, tls, data, tx, shutdown.clone(), &tracker).unwrap();
        let inbound = if keep_inbound {
            Some(rx)
        } else {
            tokio::spawn(async move { while rx.recv().await.is_some() {} });
            None
        };
        Edge {
            handle,
            shutdown,
            tracker,
            inbound,
        }
    }

    pub fn status(&self) -> BridgeStatus {
        self.handle.status()
    }

    /// Offers `data/<topic>` messages with payloads `range`, then waits until all are durable.
    pub async fn offer(&self, topic: &str, range: std::ops::Range<u64>) {
        let durables: Vec<Durable> = range
            .map(|i| {
                let msg = Message::new(
                    &format!("data/{topic}"),
                    i.to_string().into_bytes(),
                    QoS::AtLeastOnce,
                    false,
                    Origin::Client("sensor".into()),
                );
                self.handle.offer(&msg).expect("an out rule matches")
            })
            .collect();
        for d in durables {
            d.await.unwrap().unwrap();
        }
    }

    pub async fn wait_for(&self, what: &str, cond: impl Fn(&BridgeStatus) -> bool) -> BridgeStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            let s = self.status();
            if cond(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn stop(self) {
        self.shutdown.cancel();
        self.tracker.close();
        tokio::time::timeout(WAIT, self.tracker.wait())
            .await
            .expect("bridge stops");
    }
}

pub fn indexes(msgs: &[(String, Vec<u8>)]) -> Vec<u64> {
    msgs.iter()
        .map(|(_, p)| String::from_utf8_lossy(p).parse().unwrap())
        .collect()
}

/// The next inbound message matching `pred`.
pub async fn next_matching(
    rx: &mut mpsc::Receiver<Message>,
    pred: impl Fn(&Message) -> bool,
) -> Message {
    loop {
        let m = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("inbound")
            .expect("open");
        if pred(&m) {
            return m;
        }
    }
}
