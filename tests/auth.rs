//! Password files, ACLs, the reloadable `Auth` facade and `edgemq passwd`,
//! checked against the real `mosquitto_passwd` and the real `mosquitto` broker.

use std::io::Write;
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use edgemq::auth::acl::Acl;
use edgemq::auth::password::PasswordFile;
use edgemq::auth::{Auth, AuthOutcome};
use edgemq::config::model;

#[path = "common/ports.rs"]
mod ports;
#[path = "common/tools.rs"]
mod tools;
use tools::have_tool as have;

const BROKER_START_TIMEOUT: Duration = Duration::from_secs(5);

fn mosquitto_passwd(args: &[&str]) {
    let out = Command::new("mosquitto_passwd")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "mosquitto_passwd {args:?}: {out:?}");
}

/// Runs `edgemq passwd`, feeding `stdin`.
fn edgemq_passwd(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A run refused on its arguments exits without reading stdin: EPIPE here is expected.
    if let Err(e) = child.stdin.take().unwrap().write_all(stdin.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {e}"
        );
    }
    child.wait_with_output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn verify(file: &Path, user: &str, pw: &str) -> bool {
    PasswordFile::load(file)
        .unwrap()
        .get(user)
        .is_some_and(|h| h.verify(pw.as_bytes()))
}

/// A real mosquitto on an ephemeral port; killed on drop.
struct Mosquitto {
    child: Child,
    port: u16,
}

impl Mosquitto {
    fn start(dir: &Path, extra_conf: &str) -> Mosquitto {
        let port = ports::free_port();
        // As root, mosquitto drops to the `mosquitto` user and can no longer read a 0600 file.
        let user = if nix::unistd::Uid::effective().is_root() {
            "user root\n"
        } else {
            ""
        };
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\n{user}{extra_conf}"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .args(["-c", s(&conf)])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut m = Mosquitto { child, port };
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                m.child.try_wait().unwrap().is_none(),
                "mosquitto exited; config:\n{extra_conf}"
            );
            assert!(
                Instant::now() < deadline,
                "mosquitto did not start listening"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        m
    }

    /// Exit status of `mosquitto_pub` with these credentials.
    fn publish(&self, user: &str, pw: &str) -> bool {
        Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-u",
                user,
                "-P",
                pw,
            ])
            .args(["-t", "test/auth", "-m", "x", "-q", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write(p: &PathBuf, text: &str) {
    std::fs::write(p, text).unwrap();
}

fn acl(text: &str) -> Acl {
    Acl::parse(Path::new("acl"), text).unwrap()
}

#[path = "auth/acl.rs"]
mod acl;
#[path = "auth/passwd.rs"]
mod passwd;
#[path = "auth/real_mosquitto.rs"]
mod real_mosquitto;
#[path = "auth/reload.rs"]
mod reload;
