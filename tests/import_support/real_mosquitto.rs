//! The translation's allow_anonymous decisions checked against the real
//! Mosquitto 2.0 reading the same file: per_listener_settings, the global
//! default, and the per-file reset of "the current listener" in include_dir.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long Mosquitto gets to open its listeners.
const STARTUP: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);
const IO_TIMEOUT: Duration = Duration::from_secs(2);

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto_binary() -> Option<&'static str> {
    let found = [
        "/usr/sbin/mosquitto",
        "/usr/local/sbin/mosquitto",
        "/usr/bin/mosquitto",
    ]
    .into_iter()
    .find(|p| Path::new(p).is_file());
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but mosquitto is not installed"
        );
        eprintln!("note: mosquitto not installed; skipping the comparison with the real broker");
    }
    found
}

#[path = "../common/ports.rs"]
mod ports;
use ports::free_port;

/// Sends an anonymous MQTT 3.1.1 CONNECT and returns the CONNACK code.
fn connack_code(port: u16) -> Option<u8> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(IO_TIMEOUT)).ok()?;
    let connect = [
        0x10, 16, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 4, b't', b'e', b's', b't',
    ];
    s.write_all(&connect).ok()?;
    let mut connack = [0u8; 4];
    s.read_exact(&mut connack).ok()?;
    (connack[0] == 0x20).then_some(connack[3])
}

fn start(conf: &Path, ports: &[u16]) -> Broker {
    let bin = mosquitto_binary().expect("checked by caller");
    let child = Command::new(bin)
        .arg("-c")
        .arg(conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let broker = Broker(child.expect("start mosquitto"));
    let deadline = Instant::now() + STARTUP;
    while ports
        .iter()
        .any(|p| TcpStream::connect(("127.0.0.1", *p)).is_err())
    {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not open {ports:?}"
        );
        std::thread::sleep(POLL);
    }
    broker
}

/// Runs Mosquitto and the importer on the same files; compares, per
/// port, whether an anonymous client gets in.
fn compare(main: &str, included: &str, ports: &[u16]) -> String {
    if mosquitto_binary().is_none() {
        return String::new();
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    let main = main.replace("INCLUDE", &d.join("conf.d").display().to_string());
    std::fs::write(d.join("mosquitto.conf"), main).unwrap();
    std::fs::write(d.join("conf.d/a.conf"), included).unwrap();
    std::fs::set_permissions(d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let (text, config) = super::cli::import_file(&d.join("mosquitto.conf"));
    let broker = start(&d.join("mosquitto.conf"), ports);
    for port in ports {
        let real = connack_code(*port).expect("CONNACK") == 0;
        let bind = format!("127.0.0.1:{port}");
        let l = config
            .listeners
            .iter()
            .find(|l| l.bind == bind)
            .expect("listener translated");
        assert_eq!(
            l.allow_anonymous,
            Some(real),
            "port {port}: mosquitto says anonymous={real}\n{text}"
        );
    }
    drop(broker);
    text
}

#[test]
fn per_listener_settings_and_include_dir_context_reset() {
    let p = [free_port(), free_port(), free_port()];
    let main = format!(
        "per_listener_settings true\nlistener {} 127.0.0.1\nlistener {} 127.0.0.1\nallow_anonymous true\ninclude_dir INCLUDE\n",
        p[0], p[1]
    );
    // This file starts without a current listener: its allow_anonymous
    // is the default listener's, not listener p[1]'s.
    let included = format!("allow_anonymous true\nlistener {} 127.0.0.1\n", p[2]);
    let text = compare(&main, &included, &p);
    if !text.is_empty() {
        assert!(
            text.contains("# not carried over: allow_anonymous true (with per_listener_settings"),
            "{text}"
        );
    }
}

#[test]
fn global_allow_anonymous_last_one_wins() {
    let p = [free_port(), free_port()];
    let main = format!(
        "listener {} 127.0.0.1\nallow_anonymous false\nlistener {} 127.0.0.1\ninclude_dir INCLUDE\n",
        p[0], p[1]
    );
    let _ = compare(&main, "allow_anonymous true\n", &p);
}

#[test]
fn unset_allow_anonymous_refuses_anonymous_clients() {
    let p = [free_port()];
    let _ = compare(&format!("listener {} 127.0.0.1\n", p[0]), "", &p);
}
