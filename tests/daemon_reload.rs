//! SIGHUP against the real binary: passwords added with `edgemq passwd` and
//! renewed TLS certificates take effect without a restart, established
//! connections stay up, and a broken new file keeps the old one in force.

mod daemon_support;

use std::path::Path;
use std::time::Duration;

use daemon_support::mqtt::{self, Client};
use daemon_support::{Daemon, have_tool, run_to_end, tempdir, tls};
use nix::sys::signal::Signal;

const RECV: Duration = Duration::from_secs(3);
const RELOAD: Duration = Duration::from_secs(5);
/// The daemon ends every reload with one of these lines.
const RELOAD_DONE: [&str; 2] = [
    "reloaded passwords, ACLs and certificates",
    "reload incomplete",
];

/// Sends SIGHUP and waits until the daemon has reloaded `n` times in all.
fn sighup(d: &mut Daemon, n: usize) {
    d.signal(Signal::SIGHUP);
    let done = daemon_support::eventually(RELOAD, || {
        let log = d.log();
        let done: usize = RELOAD_DONE.iter().map(|l| log.matches(l).count()).sum();
        (done >= n).then_some(())
    });
    assert!(done.is_some(), "reload #{n} not logged:\n{}", d.log());
}

fn passwd(dir: &Path, file: &Path, user: &str, password: &str) {
    let args = ["passwd", file.to_str().unwrap(), user];
    let (code, _, err) = run_to_end(dir, &args, Some(&format!("{password}\n")));
    assert_eq!(code, 0, "edgemq passwd: {err}");
}

fn login(addr: &str, id: &str, user: &str, password: &str) -> Option<Client<std::net::TcpStream>> {
    let (c, ack) = mqtt::connect_tcp(addr, id, true, Some((user, password))).unwrap();
    (ack.code == 0).then_some(c)
}

/// A daemon whose only listener requires the passwords in `dir/passwd`.
fn start_with_passwords(dir: &Path) -> Daemon {
    let toml = format!(
        "data_dir = \"{d}/data\"\n[auth]\npassword_file = \"{d}/passwd\"\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\n",
        d = dir.display()
    );
    Daemon::start(dir, &toml)
}

#[test]
fn sighup_adds_a_password_and_keeps_connections() {
    let dir = tempdir();
    let pw = dir.path().join("passwd");
    passwd(dir.path(), &pw, "alice", "alice-secret");
    let mut d = start_with_passwords(dir.path());
    let addr = d.addr();

    let mut live = login(&addr, "live", "alice", "alice-secret").expect("alice logs in");
    live.subscribe("news/#", 1).unwrap();
    assert!(
        login(&addr, "b0", "bob", "bob-secret").is_none(),
        "bob unknown yet"
    );

    passwd(dir.path(), &pw, "bob", "bob-secret");
    assert!(
        login(&addr, "b1", "bob", "bob-secret").is_none(),
        "not before SIGHUP"
    );
    sighup(&mut d, 1);

    let mut bob = login(&addr, "b2", "bob", "bob-secret").expect("bob after SIGHUP");
    assert!(login(&addr, "b3", "bob", "wrong").is_none());
    bob.publish("news/1", b"from bob", 1).unwrap();
    let got = live
        .recv(RECV)
        .expect("the live connection survived SIGHUP");
    assert_eq!(got.payload, b"from bob");
    live.ping().unwrap();
    assert_eq!(d.stop(), 0);
}

#[test]
fn sighup_with_a_broken_password_file_keeps_the_old_one() {
    let dir = tempdir();
    let pw = dir.path().join("passwd");
    passwd(dir.path(), &pw, "alice", "alice-secret");
    let mut d = start_with_passwords(dir.path());
    let addr = d.addr();
    let mut live = login(&addr, "live", "alice", "alice-secret").unwrap();

    let good = std::fs::read_to_string(&pw).unwrap();
    std::fs::write(&pw, format!("{good}this line has no colon\n")).unwrap();
    sighup(&mut d, 1);
    let log = d.log();
    let error = log
        .lines()
        .find(|l| l.contains("ERROR"))
        .unwrap_or_else(|| panic!("no error logged:\n{log}"));
    assert!(
        error.contains(&format!("{}:2", pw.display())),
        "names file and line: {error}"
    );
    assert!(
        error.contains("keeping the previous"),
        "says what happens: {error}"
    );

    assert!(
        login(&addr, "a2", "alice", "alice-secret").is_some(),
        "old file in force"
    );
    live.ping().unwrap();

    std::fs::write(&pw, good).unwrap();
    sighup(&mut d, 2);
    assert!(login(&addr, "a3", "alice", "alice-secret").is_some());
    assert_eq!(d.stop(), 0);
}

#[test]
fn sighup_serves_a_renewed_certificate_to_new_connections() {
    if !have_tool("openssl") {
        return;
    }
    let dir = tempdir();
    let p = dir.path();
    let ca = tls::make_ca(p);
    let (crt1, key1) = tls::make_server_cert(p, "gen1");
    let (crt2, key2) = tls::make_server_cert(p, "gen2");
    let (crt, key) = (p.join("server.crt"), p.join("server.key"));
    std::fs::copy(&crt1, &crt).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let toml = format!(
        "data_dir = \"{d}/data\"\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\n[listener.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n\
         [[listener]]\nbind = \"127.0.0.2:0\"\n",
        d = p.display(),
        c = crt.display(),
        k = key.display()
    );
    let mut d = Daemon::start(p, &toml);
    let addrs = d.addrs();
    let (tls_addr, plain_addr) = (&addrs[0], &addrs[1]);

    let (stream, served) = tls::connect(tls_addr, &ca).unwrap();
    assert_eq!(served, tls::cert_der(&crt1));
    let (mut old, ack) = Client::connect(stream, "old", true, None).unwrap();
    assert_eq!(ack.code, 0);
    old.subscribe("renew/#", 1).unwrap();

    // Renewal as certbot does it: new files land, then the service gets SIGHUP.
    std::fs::copy(&crt2, &crt).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    let (_, served) = tls::connect(tls_addr, &ca).unwrap();
    assert_eq!(
        served,
        tls::cert_der(&crt1),
        "nothing changes before SIGHUP"
    );
    sighup(&mut d, 1);
    let (stream, served) = tls::connect(tls_addr, &ca).unwrap();
    assert_eq!(
        served,
        tls::cert_der(&crt2),
        "new connections get the renewed cert"
    );
    let (mut new, ack) = Client::connect(stream, "new", true, None).unwrap();
    assert_eq!(ack.code, 0);
    new.ping().unwrap();

    let (mut publ, _) = mqtt::connect_tcp(plain_addr, "pub", true, None).unwrap();
    publ.publish("renew/1", b"still here", 1).unwrap();
    let got = old
        .recv(RECV)
        .expect("the old TLS connection survived SIGHUP");
    assert_eq!(got.payload, b"still here");

    // A broken certificate on the next renewal keeps the current one serving.
    std::fs::write(&crt, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    sighup(&mut d, 2);
    assert!(d.log().contains("TLS reload failed"), "{}", d.log());
    let (_, served) = tls::connect(tls_addr, &ca).unwrap();
    assert_eq!(
        served,
        tls::cert_der(&crt2),
        "the previous certificate stays in force"
    );
    old.ping().unwrap();
    assert_eq!(d.stop(), 0);
}

#[test]
fn sighup_during_startup_does_not_kill_the_daemon() {
    let dir = tempdir();
    let cfg = dir.path().join("edgemq.toml");
    let toml = format!(
        "data_dir = \"{}/data\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n",
        dir.path().display()
    );
    std::fs::write(&cfg, toml).unwrap();
    let log = dir.path().join("early.log");
    let c = daemon_support::command(dir.path(), &["run", "-c", cfg.to_str().unwrap()], &log);
    let mut d = Daemon::spawn(c, &log);
    // From its first log line on (config read; ports, store and runtime still
    // to come) procd may send SIGHUP at any time: keep sending until ready.
    d.wait_log("starting", daemon_support::START_TIMEOUT);
    let deadline = std::time::Instant::now() + daemon_support::START_TIMEOUT;
    while !d.log().contains(" ready ") {
        if let Ok(Some(st)) = d.child.try_wait() {
            panic!("SIGHUP during startup killed edgemq ({st}):\n{}", d.log());
        }
        assert!(std::time::Instant::now() < deadline, "{}", d.log());
        d.signal(Signal::SIGHUP);
        std::thread::sleep(Duration::from_micros(200));
    }
    let (mut c, _) = mqtt::connect_tcp(&d.addr(), "alive", true, None).unwrap();
    c.ping().unwrap();
    assert_eq!(d.stop(), 0);
}

#[test]
fn root_only_certificate_key_is_read_before_dropping_root() {
    use std::os::unix::fs::PermissionsExt;
    if !daemon_support::is_root() || !have_tool("openssl") {
        return;
    }
    let dir = tempdir();
    let p = dir.path();
    let ca = tls::make_ca(p);
    let (crt, key) = tls::make_server_cert(p, "le");
    // As certbot leaves privkey.pem: readable by root only.
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let toml = format!(
        "data_dir = \"{d}/data\"\nuser = \"nobody\"\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\n[listener.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n",
        d = p.display(),
        c = crt.display(),
        k = key.display()
    );
    let mut d = Daemon::start(p, &toml);
    let (stream, served) = tls::connect(&d.addr(), &ca).unwrap();
    assert_eq!(served, tls::cert_der(&crt));
    let (mut c, ack) = Client::connect(stream, "le", true, None).unwrap();
    assert_eq!(ack.code, 0);

    // Unprivileged now, the daemon cannot re-read the key: it says so and keeps serving.
    sighup(&mut d, 1);
    let log = d.log();
    assert!(
        log.contains("TLS reload failed") && log.contains("ermission denied"),
        "{log}"
    );
    let (_, served) = tls::connect(&d.addr(), &ca).unwrap();
    assert_eq!(served, tls::cert_der(&crt));
    c.ping().unwrap();
    assert_eq!(d.stop(), 0);
}

#[test]
fn mosquitto_sub_over_tls_stays_connected_across_a_renewal_and_new_password() {
    if !have_tool("openssl") || !have_tool("mosquitto_sub") || !have_tool("stdbuf") {
        return;
    }
    let dir = tempdir();
    let p = dir.path();
    let ca = tls::make_ca(p);
    let (crt1, key1) = tls::make_server_cert(p, "gen1");
    let (crt2, key2) = tls::make_server_cert(p, "gen2");
    let (crt, key) = (p.join("server.crt"), p.join("server.key"));
    std::fs::copy(&crt1, &crt).unwrap();
    std::fs::copy(&key1, &key).unwrap();
    let pw = p.join("passwd");
    passwd(p, &pw, "alice", "alice-secret");
    let toml = format!(
        "data_dir = \"{d}/data\"\n[auth]\npassword_file = \"{d}/passwd\"\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\n\
         [listener.tls]\ncert = \"{c}\"\nkey = \"{k}\"\n",
        d = p.display(),
        c = crt.display(),
        k = key.display()
    );
    let mut d = Daemon::start(p, &toml);
    let addr = d.addr();
    let port = addr.rsplit(':').next().unwrap();
    let out = p.join("sub.out");
    // Line-buffered, so its "-d" trace shows the SUBACK while it runs.
    let mut sub = daemon_support::Reaped(
        std::process::Command::new("stdbuf")
            .args([
                "-oL",
                "mosquitto_sub",
                "-d",
                "-h",
                "localhost",
                "-p",
                port,
                "--cafile",
            ])
            .arg(&ca)
            .args([
                "-u",
                "alice",
                "-P",
                "alice-secret",
                "-t",
                "news/#",
                "-q",
                "1",
                "-C",
                "1",
            ])
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let subscribed = daemon_support::eventually(RELOAD, || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        text.contains("SUBACK").then_some(())
    });
    assert!(
        subscribed.is_some(),
        "mosquitto_sub did not subscribe:\n{}",
        d.log()
    );

    std::fs::copy(&crt2, &crt).unwrap();
    std::fs::copy(&key2, &key).unwrap();
    passwd(p, &pw, "bob", "bob-secret");
    sighup(&mut d, 1);
    let (stream, served) = tls::connect(&addr, &ca).unwrap();
    assert_eq!(served, tls::cert_der(&crt2));
    let (mut bob, ack) = Client::connect(stream, "bob", true, Some(("bob", "bob-secret"))).unwrap();
    assert_eq!(
        ack.code, 0,
        "bob's new password works over the renewed certificate"
    );
    bob.publish("news/renewed", b"hello alice", 1).unwrap();

    let exited = daemon_support::eventually(RELOAD, || sub.0.try_wait().ok().flatten());
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        exited.is_some_and(|s| s.success()),
        "mosquitto_sub:\n{text}"
    );
    assert!(text.contains("hello alice"), "{text}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn sighup_reloads_the_acl_for_connected_clients_too() {
    let dir = tempdir();
    let p = dir.path();
    passwd(p, &p.join("passwd"), "alice", "alice-secret");
    let acl = p.join("acl");
    std::fs::write(&acl, "user alice\ntopic read a/#\n").unwrap();
    let toml = format!(
        "data_dir = \"{d}/data\"\n[auth]\npassword_file = \"{d}/passwd\"\nacl_file = \"{d}/acl\"\n\
         [[listener]]\nbind = \"127.0.0.1:0\"\nallow_anonymous = false\n",
        d = p.display()
    );
    let mut d = Daemon::start(p, &toml);
    let mut alice = login(&d.addr(), "alice", "alice", "alice-secret").unwrap();
    assert_eq!(alice.subscribe("a/#", 1).unwrap(), 1);
    assert_eq!(
        alice.subscribe("b/#", 1).unwrap(),
        0x80,
        "not in the ACL yet"
    );

    std::fs::write(&acl, "user alice\ntopic read a/#\ntopic read b/#\n").unwrap();
    sighup(&mut d, 1);
    assert_eq!(
        alice.subscribe("b/#", 1).unwrap(),
        1,
        "same connection, new ACL"
    );

    std::fs::write(&acl, "user alice\nbogus line\n").unwrap();
    sighup(&mut d, 2);
    assert!(d.log().contains("acl_file"), "{}", d.log());
    assert_eq!(
        alice.subscribe("b/x", 1).unwrap(),
        1,
        "the previous ACL stays in force"
    );
    assert_eq!(d.stop(), 0);
}
