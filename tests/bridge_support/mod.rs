//! Test fixtures for the bridge: certificates made by openssl, a real
//! Mosquitto central broker configured like seed 000 (TLS 1.3,
//! require_certificate, use_identity_as_username, `pattern readwrite
//! meters/%u/#`), an observer subscribed at the central broker, a log capture.

#![allow(dead_code)]

pub mod edge;
#[path = "../common/ports.rs"]
pub mod ports;
#[path = "../common/tools.rs"]
mod tools;
pub use tools::have_tool as have;
pub mod proxy;
pub mod tls_cases;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;

/// Longest any wait in these tests may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// True when mosquitto and openssl are both available.
pub fn have_tools() -> bool {
    have("mosquitto") && have("openssl")
}

pub use ports::free_port;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificates for one test, all in `dir`.
pub struct Pki {
    /// Directory holding every file.
    pub dir: PathBuf,
}

impl Pki {
    /// CA, server (127.0.0.1/localhost), client GW-0001, expired client, and a second CA.
    pub fn generate(dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.ca("ca", "edge-test-CA");
        pki.ca("other-ca", "some-other-CA");
        std::fs::write(
            dir.join("server.ext"),
            "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("client.ext"),
            "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
        )
        .unwrap();
        pki.leaf("server", "/CN=127.0.0.1/O=Test", "ca", "server.ext", "365");
        pki.leaf(
            "GW-0001",
            "/CN=GW-0001/O=MBusGateway/C=DK",
            "ca",
            "client.ext",
            "365",
        );
        pki.leaf(
            "expired",
            "/CN=GW-0001/O=MBusGateway/C=DK",
            "ca",
            "client.ext",
            "-1",
        );
        pki
    }

    fn ca(&self, name: &str, cn: &str) {
        openssl(
            &self.dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.crt"),
                "-subj",
                &format!("/CN={cn}"),
            ],
        );
    }

    fn leaf(&self, name: &str, subject: &str, ca: &str, ext: &str, days: &str) {
        openssl(
            &self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                subject,
            ],
        );
        openssl(
            &self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-out",
                &format!("{name}.crt"),
                "-days",
                days,
                "-extfile",
                ext,
            ],
        );
    }

    /// Path of a file in the PKI directory.
    pub fn path(&self, file: &str) -> String {
        self.dir.join(file).display().to_string()
    }
}

/// A Mosquitto process playing the central broker.
pub struct Central {
    dir: PathBuf,
    /// TLS listener (mutual TLS, ACL), the bridge's address.
    pub tls_port: u16,
    /// Plain anonymous listener for observers.
    pub plain_port: u16,
    child: Option<Child>,
}

impl Central {
    /// Writes the configuration and starts mosquitto; returns once it accepts connections.
    pub fn start(dir: &Path, pki: &Pki) -> Central {
        let mut central = Central {
            dir: dir.to_path_buf(),
            tls_port: free_port(),
            plain_port: free_port(),
            child: None,
        };
        std::fs::write(dir.join("acl"), "pattern readwrite meters/%u/#\n").unwrap();
        let conf = format!(
            "per_listener_settings true\nuser root\npersistence false\nlog_dest stderr\nlog_type all\n\
             max_queued_messages 1000000\n\
             listener {tls} 127.0.0.1\nallow_anonymous false\ncafile {ca}\ncertfile {cert}\nkeyfile {key}\n\
             require_certificate true\nuse_identity_as_username true\ntls_version tlsv1.3\nacl_file {acl}\n\
             listener {plain} 127.0.0.1\nallow_anonymous true\n",
            tls = central.tls_port,
            plain = central.plain_port,
            ca = pki.path("ca.crt"),
            cert = pki.path("server.crt"),
            key = pki.path("server.key"),
            acl = dir.join("acl").display(),
        );
        std::fs::write(dir.join("mosquitto.conf"), conf).unwrap();
        central.restart();
        central
    }

    /// The bridge's address: the TLS listener.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.tls_port)
    }

    /// Starts (again) on the same ports.
    pub fn restart(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("mosquitto.log"))
            .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", self.plain_port)).is_err()
            || std::net::TcpStream::connect(("127.0.0.1", self.tls_port)).is_err()
        {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: the central broker vanishes.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What mosquitto logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Central {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A subscriber at the central broker's plain listener.
pub struct Observer {
    /// Received (topic, payload) in arrival order.
    pub rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    /// To publish at the central broker.
    pub client: AsyncClient,
    /// Messages `collect` skipped (other topics), for later inspection.
    pub skipped: Vec<(String, Vec<u8>)>,
}

impl Observer {
    /// Connects, subscribes to `filter` (QoS 1) and returns once SUBACK arrived.
    pub async fn start(port: u16, filter: &str) -> Observer {
        let id = format!("observer-{}", free_port());
        let mut opts = MqttOptions::new(id, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(opts, 100);
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        if tx.send((p.topic.clone(), p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        });
        tokio::time::timeout(WAIT, ready_rx)
            .await
            .expect("observer SUBACK")
            .expect("observer loop");
        Observer {
            rx,
            client,
            skipped: Vec::new(),
        }
    }

    /// Collects messages on topics starting with `prefix` (others are skipped)
    /// until `n` distinct (topic, payload) pairs arrived; duplicates are kept.
    pub async fn collect(
        &mut self,
        prefix: &str,
        n: usize,
        within: Duration,
    ) -> Vec<(String, Vec<u8>)> {
        let mut got = Vec::new();
        self.collect_into(prefix, &mut got, n, within).await;
        got
    }

    /// Like `collect`, appending to `got` until it holds `n` distinct messages in all.
    pub async fn collect_into(
        &mut self,
        prefix: &str,
        got: &mut Vec<(String, Vec<u8>)>,
        n: usize,
        within: Duration,
    ) {
        let mut distinct: std::collections::HashSet<_> = got.iter().cloned().collect();
        let deadline = tokio::time::Instant::now() + within;
        while distinct.len() < n {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(m)) if m.0.starts_with(prefix) => {
                    distinct.insert(m.clone());
                    got.push(m);
                }
                Ok(Some(m)) => self.skipped.push(m),
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// Asserts at-least-once in order: every index 0..n arrives, and none arrives
/// before all lower ones did (re-sends after a reconnect may repeat a run).
pub fn assert_ordered_complete(indexes: &[u64], n: u64) -> u64 {
    let mut next = 0u64;
    let mut duplicates = 0;
    for &i in indexes {
        assert!(i <= next, "index {i} arrived before {next}");
        if i == next {
            next += 1;
        } else {
            duplicates += 1;
        }
    }
    assert_eq!(next, n, "only {next} of {n} arrived");
    duplicates
}

/// Everything logged through tracing in this test binary.
static CAPTURED: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        std::io::stderr().write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the capturing subscriber once.
pub fn capture_logs() {
    CAPTURED.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let writer = Capture(buf.clone());
        let _ = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || writer.clone())
            .try_init();
        buf
    });
}

/// The captured log lines containing `needle`.
pub fn log_lines(needle: &str) -> Vec<String> {
    let Some(buf) = CAPTURED.get() else {
        return vec![];
    };
    let text = String::from_utf8_lossy(&buf.lock().unwrap()).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}
