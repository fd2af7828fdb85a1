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

#[test]
fn files_written_by_mosquitto_passwd_verify() {
    if !have("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    mosquitto_passwd(&["-c", "-b", s(&f), "dflt", "pw-default"]);
    mosquitto_passwd(&[
        "-H",
        "sha512-pbkdf2",
        "-b",
        s(&f),
        "pbkdf2",
        "pw:with:colons",
    ]);
    mosquitto_passwd(&["-H", "sha512", "-b", s(&f), "sha", "pw sha €"]);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains("dflt:$7$101$")
            && text.contains("pbkdf2:$7$101$")
            && text.contains("sha:$6$"),
        "{text}"
    );

    let file = PasswordFile::load(&f).unwrap();
    assert_eq!(file.len(), 3);
    for (user, pw) in [
        ("dflt", "pw-default"),
        ("pbkdf2", "pw:with:colons"),
        ("sha", "pw sha €"),
    ] {
        let h = file.get(user).unwrap();
        assert!(h.verify(pw.as_bytes()), "{user}");
        assert!(!h.verify(format!("{pw}x").as_bytes()), "{user}");
        assert!(!h.verify(b""), "{user}");
    }

    let auth = Auth::load(&model::Auth {
        password_file: Some(f),
        ..Default::default()
    })
    .unwrap();
    assert!(auth.has_users());
    assert_eq!(
        auth.authenticate(Some("sha"), Some("pw sha €".as_bytes())),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("sha"), Some(b"nope")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("sha"), None),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("ghost"), Some(b"x")),
        AuthOutcome::NoSuchUser
    );
    assert_eq!(auth.authenticate(None, None), AuthOutcome::NoSuchUser);
}

#[test]
fn file_written_by_edgemq_passwd_is_accepted_by_mosquitto() {
    if !have("mosquitto") || !have("mosquitto_pub") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    let out = edgemq_passwd(&[s(&f), "GW-0001"], "first secret\n");
    assert!(out.status.success(), "{out:?}");
    let out = edgemq_passwd(&[s(&f), "ha"], "p@ss:word\r\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        lines(&f).iter().all(|l| l.contains(":$7$101$")),
        "{:?}",
        lines(&f)
    );

    let broker = Mosquitto::start(
        dir.path(),
        &format!("allow_anonymous false\npassword_file {}\n", s(&f)),
    );
    assert!(broker.publish("GW-0001", "first secret"));
    assert!(broker.publish("ha", "p@ss:word"));
    assert!(!broker.publish("GW-0001", "first secreT"));
    assert!(!broker.publish("GW-0001", "p@ss:word"));
    assert!(!broker.publish("nobody", "first secret"));
}

#[test]
fn update_leaves_other_users_byte_identical() {
    if !have("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    mosquitto_passwd(&["-c", "-b", s(&f), "alice", "a-pw"]);
    mosquitto_passwd(&["-H", "sha512", "-b", s(&f), "bob", "b-pw"]);
    mosquitto_passwd(&["-b", s(&f), "carol", "c-pw"]);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = lines(&f);

    let out = edgemq_passwd(&[s(&f), "bob"], "b-new\n");
    assert!(out.status.success(), "{out:?}");
    let after = lines(&f);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], before[0], "alice's line must not change");
    assert_eq!(after[2], before[2], "carol's line must not change");
    assert_ne!(after[1], before[1]);
    assert!(after[1].starts_with("bob:$7$101$"));
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(verify(&f, "bob", "b-new") && !verify(&f, "bob", "b-pw"));
    assert!(verify(&f, "alice", "a-pw") && verify(&f, "carol", "c-pw"));

    // Adding appends; mosquitto_passwd still reads and extends what we wrote.
    assert!(edgemq_passwd(&[s(&f), "dave"], "d-pw").status.success());
    assert_eq!(lines(&f)[..3], after[..]);
    mosquitto_passwd(&["-b", s(&f), "erin", "e-pw"]);
    assert!(verify(&f, "dave", "d-pw") && verify(&f, "erin", "e-pw") && verify(&f, "bob", "b-new"));
}

#[test]
fn delete_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    std::fs::write(&f, "# keep me\nalice:$6$c2FsdHNhbHRzYWx0$upfVVfdk1wuq4oaO0WskiLMD8f29DsnYAbie2XwdOw4NXP6IO55bx2FJikHnOlHKP4NSNTDTTlFFWzDMm6RxhA==\nbob:plain\n").unwrap();
    let original = std::fs::read(&f).unwrap();

    let out = edgemq_passwd(&["-D", s(&f), "nobody"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert_eq!(std::fs::read(&f).unwrap(), original);

    let out = edgemq_passwd(&[s(&f), "carol"], "\n");
    assert_eq!(out.status.code(), Some(1), "empty password: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty password"));
    let out = edgemq_passwd(&[s(&f), "bad:name"], "pw\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(std::fs::read(&f).unwrap(), original);

    let out = edgemq_passwd(&["-D", s(&f), "bob"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&f), lines(&f)[..2].to_vec());
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        String::from_utf8_lossy(&original).replace("bob:plain\n", "")
    );

    let missing_dir = dir.path().join("no/such/dir/passwd");
    let out = edgemq_passwd(&[s(&missing_dir), "carol"], "pw\n");
    assert_eq!(out.status.code(), Some(2), "I/O failure: {out:?}");
    let out = edgemq_passwd(&[s(dir.path()), "carol"], "pw\n");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a directory is not a password file: {out:?}"
    );
    let out = edgemq_passwd(&[s(&f)], "");
    assert_eq!(out.status.code(), Some(1), "missing USER: {out:?}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "no temporary files left behind"
    );
}

fn acl(text: &str) -> Acl {
    Acl::parse(Path::new("acl"), text).unwrap()
}

#[test]
fn acl_seed_000_per_gateway_isolation() {
    let a = acl("# per gateway\npattern readwrite meters/%u/#\n");
    let gw = Some("GW-0001");
    assert!(a.can_publish(gw, "any", "meters/GW-0001/data"));
    assert!(a.can_publish(gw, "any", "meters/GW-0001"));
    assert!(!a.can_publish(gw, "any", "meters/GW-0002/data"));
    assert!(!a.can_publish(gw, "any", "other/GW-0001"));
    assert!(a.can_subscribe(gw, "any", "meters/GW-0001/#"));
    assert!(a.can_subscribe(gw, "any", "meters/GW-0001/+/status"));
    assert!(
        !a.can_subscribe(gw, "any", "meters/#"),
        "would cover other gateways"
    );
    assert!(!a.can_subscribe(gw, "any", "meters/+/data"));
    assert!(!a.can_subscribe(gw, "any", "#"));
    assert!(a.can_receive(gw, "any", "meters/GW-0001/x"));
    assert!(!a.can_receive(gw, "any", "meters/GW-0002/x"));
    // Anonymous clients have no %u: the pattern does not apply to them.
    assert!(!a.can_publish(None, "any", "meters/GW-0001/data"));
    assert!(
        !a.can_publish(Some(""), "any", "meters//data"),
        "an empty username has no %u"
    );
    // Names with wildcards or separators must not widen or shift the pattern.
    for evil in ["#", "+", "GW-0001/../GW-0002", "a/b", "x#"] {
        assert!(!a.can_publish(
            Some(evil),
            "c",
            &format!("meters/{evil}/x").replace(['#', '+'], "z")
        ));
        assert!(!a.can_subscribe(Some(evil), "c", "meters/#"), "{evil}");
        assert!(
            !a.can_subscribe(Some(evil), "c", &format!("meters/{evil}")),
            "{evil}"
        );
    }
    assert!(!a.can_publish(Some("a/b"), "c", "meters/a/b/x"));
}

#[test]
fn acl_users_topics_access_and_anonymous() {
    let a = acl("topic read public/#\n\
         topic write  anon/in\n\
         \n\
         user alice\n\
         topic readwrite home/#\n\
         topic read sensors/+/temp\n\
         topic write cmd/lamp\n\
         topic logs/alice\n\
         user bob smith\n\
         topic read home/bob/#\n");
    // Anonymous: only the lines before the first `user`.
    assert!(a.can_subscribe(None, "c", "public/#"));
    assert!(!a.can_publish(None, "c", "public/x"));
    assert!(a.can_publish(None, "c", "anon/in"));
    assert!(!a.can_subscribe(None, "c", "anon/in"));
    assert!(!a.can_publish(None, "c", "home/x"));
    // alice: read vs write vs readwrite, default readwrite, and no anonymous rules.
    let al = Some("alice");
    assert!(a.can_publish(al, "c", "home/kitchen/light") && a.can_subscribe(al, "c", "home/#"));
    assert!(
        a.can_subscribe(al, "c", "sensors/+/temp") && a.can_subscribe(al, "c", "sensors/k/temp")
    );
    assert!(!a.can_publish(al, "c", "sensors/k/temp"));
    assert!(!a.can_subscribe(al, "c", "sensors/#"));
    assert!(a.can_publish(al, "c", "cmd/lamp") && !a.can_subscribe(al, "c", "cmd/lamp"));
    assert!(a.can_publish(al, "c", "logs/alice") && a.can_subscribe(al, "c", "logs/alice"));
    assert!(
        !a.can_subscribe(al, "c", "public/#"),
        "anonymous rules are not alice's"
    );
    assert!(
        !a.can_subscribe(Some(""), "c", "public/#"),
        "nor an empty username's"
    );
    // A username with a space, and a user with no rules at all.
    assert!(a.can_subscribe(Some("bob smith"), "c", "home/bob/+"));
    assert!(!a.can_publish(Some("bob smith"), "c", "home/bob/x"));
    assert!(!a.can_subscribe(Some("carol"), "c", "home/#"));
    // `#` does not reach $SYS.
    let root = acl("user admin\ntopic #\n");
    assert!(
        root.can_publish(Some("admin"), "c", "a/b")
            && !root.can_subscribe(Some("admin"), "c", "$SYS/#")
    );
    assert!(acl("user admin\ntopic read $SYS/#\n").can_subscribe(
        Some("admin"),
        "c",
        "$SYS/broker/uptime"
    ));
}

#[test]
fn acl_deny_wins_and_client_id_patterns() {
    let a = acl("pattern read devices/%c/config\n\
         pattern write devices/%c/state/#\n\
         pattern deny devices/%c/state/secret\n\
         user ops\n\
         topic readwrite devices/#\n\
         topic deny devices/vault/#\n");
    assert!(a.can_subscribe(None, "dev1", "devices/dev1/config"));
    assert!(!a.can_publish(None, "dev1", "devices/dev1/config"));
    assert!(a.can_publish(None, "dev1", "devices/dev1/state/x"));
    assert!(!a.can_publish(None, "dev1", "devices/dev1/state/secret"));
    assert!(!a.can_publish(None, "dev2", "devices/dev1/state/x"));
    assert!(
        !a.can_publish(None, "dev/1", "devices/dev/1/state/x"),
        "client id with /"
    );
    assert!(
        !a.can_subscribe(None, "+", "devices/+/config"),
        "client id with +"
    );
    // ops: allowed everywhere under devices/ except the denied subtree, whichever comes first.
    let ops = Some("ops");
    assert!(a.can_publish(ops, "x", "devices/a/b"));
    assert!(!a.can_publish(ops, "x", "devices/vault/key"));
    assert!(!a.can_subscribe(ops, "x", "devices/vault/#"));
    assert!(!a.can_subscribe(ops, "x", "devices/vault/+"));
    // A broader subscription is granted, and the denied messages are filtered on delivery.
    assert!(a.can_subscribe(ops, "x", "devices/#"));
    assert!(!a.can_receive(ops, "x", "devices/vault/key"));
    assert!(a.can_receive(ops, "x", "devices/a/b"));
    // A pattern deny also beats the user's own allow (ops with client id "x").
    assert!(!a.can_publish(ops, "x", "devices/x/state/secret"));
    // Shared subscriptions are checked on their filter.
    assert!(a.can_subscribe(ops, "x", "$share/g/devices/a/#"));
    assert!(!a.can_subscribe(ops, "x", "$share/g/devices/vault/#"));
}

#[test]
fn acl_syntax_errors_name_the_line() {
    for (text, line, word) in [
        ("user a\ntopic maybe a/b\n", 2, "invalid access"),
        ("topic read a/#/b\n", 1, "invalid topic filter"),
        ("\n# c\nuser\n", 3, "missing username"),
        ("topic a\nsubscribe a\n", 2, "unknown keyword"),
        ("pattern\n", 1, "empty topic"),
    ] {
        let e = Acl::parse(Path::new("/etc/acl"), text)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("/etc/acl:{line}: ")) && e.contains(word),
            "{text:?}: {e}"
        );
    }
}

fn write(p: &PathBuf, text: &str) {
    std::fs::write(p, text).unwrap();
}

#[test]
fn reload_keeps_the_old_snapshot_when_a_file_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let (pw, aclf) = (dir.path().join("passwd"), dir.path().join("acl"));
    write(&pw, "alice:one\n");
    write(&aclf, "user alice\ntopic a/#\n");
    let cfg = model::Auth {
        password_file: Some(pw.clone()),
        acl_file: Some(aclf.clone()),
        users: vec![],
    };
    let auth = Auth::load(&cfg).unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed
    );

    write(&pw, "alice:two\nbroken line\n");
    let e = format!("{:#}", auth.reload().unwrap_err());
    assert!(e.contains("passwd:2:"), "{e}");
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed
    );

    write(&pw, "alice:two\n");
    write(&aclf, "user alice\ntopic nonsense a/#\n");
    assert!(auth.reload().is_err());
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed,
        "all or nothing"
    );
    assert!(auth.can_publish(Some("alice"), "c", "a/x"));

    write(&aclf, "user alice\ntopic b/#\n");
    auth.reload().unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"two")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::BadCredentials
    );
    assert!(
        !auth.can_publish(Some("alice"), "c", "a/x") && auth.can_publish(Some("alice"), "c", "b/x")
    );

    std::fs::remove_file(&pw).unwrap();
    assert!(auth.reload().is_err(), "a vanished file is an error too");
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"two")),
        AuthOutcome::Allowed
    );
    assert!(Auth::load(&cfg).is_err(), "load fails outright");
}

#[test]
fn inline_users_come_first() {
    fn shared_between_connection_tasks<T: Send + Sync + 'static>() {}
    shared_between_connection_tasks::<Auth>();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    write(&pw, "alice:from-file\nbob:bob-file\n");
    let user = |name: &str, password: Option<&str>, hash: Option<&str>| model::User {
        username: name.into(),
        password: password.map(|p| model::Secret(p.into())),
        password_hash: hash.map(String::from),
    };
    let six = "$6$c2FsdHNhbHRzYWx0$upfVVfdk1wuq4oaO0WskiLMD8f29DsnYAbie2XwdOw4NXP6IO55bx2FJikHnOlHKP4NSNTDTTlFFWzDMm6RxhA==";
    let cfg = model::Auth {
        password_file: Some(pw),
        acl_file: None,
        users: vec![
            user("alice", Some("inline"), None),
            user("hash", None, Some(six)),
            user("nopw", None, None),
        ],
    };
    let auth = Auth::load(&cfg).unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"inline")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"from-file")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("bob"), Some(b"bob-file")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("hash"), Some(b"pw")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("hash"), Some(b"pW")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("nopw"), Some(b"")),
        AuthOutcome::BadCredentials
    );
    assert!(
        auth.can_publish(None, "c", "anything"),
        "no acl_file: everything allowed"
    );
    assert!(auth.can_subscribe(None, "c", "#"));

    let bad = model::Auth {
        users: vec![user("x", None, Some("$6$nope"))],
        ..Default::default()
    };
    assert!(format!("{:#}", Auth::load(&bad).unwrap_err()).contains("password_hash"));
    let none = Auth::load(&model::Auth::default()).unwrap();
    assert!(!none.has_users());
}

#[test]
fn terminal_prompts_twice_with_echo_off() {
    if !have("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    // `script` gives the command a pseudo-terminal; the pauses let it turn echo off first.
    let run = |second: &str| {
        let cmd = format!(
            "{} passwd {} tty-user; echo rc=$?",
            env!("CARGO_BIN_EXE_edgemq"),
            s(&f)
        );
        let feed = format!(
            "sleep 0.5; printf 'Tty-Secret1\\n'; sleep 0.3; printf '{second}\\n'; sleep 0.3"
        );
        let out = Command::new("sh")
            .args(["-c", &format!("({feed}) | script -qec '{cmd}' /dev/null")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run("Tty-Secret2");
    assert!(
        out.contains("Password:") && out.contains("passwords do not match") && out.contains("rc=1"),
        "{out}"
    );
    assert!(!f.exists());
    let out = run("Tty-Secret1");
    assert!(
        out.contains("Reenter password:") && out.contains("rc=0"),
        "{out}"
    );
    assert!(
        !out.contains("Tty-Secret"),
        "the password was echoed: {out}"
    );
    assert!(verify(&f, "tty-user", "Tty-Secret1"));
}

/// Lines printed by a running `mosquitto_sub -v`, read on a thread.
fn spawn_sub(port: u16, user: &str, pw: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            pw,
            "-v",
            "-t",
            "#",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

#[test]
fn acl_publish_decisions_match_real_mosquitto() {
    if !have("mosquitto")
        || !have("mosquitto_pub")
        || !have("mosquitto_sub")
        || !have("mosquitto_passwd")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pw, aclf) = (dir.path().join("passwd"), dir.path().join("acl"));
    mosquitto_passwd(&["-c", "-b", s(&pw), "admin", "pw"]);
    for user in ["GW-0001", "GW-0002"] {
        mosquitto_passwd(&["-b", s(&pw), user, "pw"]);
    }
    let acl_text = "pattern readwrite meters/%u/#\nuser admin\ntopic readwrite #\nuser GW-0002\ntopic deny meters/GW-0002/secret\ntopic write shared/in\n";
    write(&aclf, acl_text);
    let broker = Mosquitto::start(
        dir.path(),
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\n",
            s(&pw),
            s(&aclf)
        ),
    );
    let (mut sub, lines) = spawn_sub(broker.port, "admin", "pw");
    let publish = |user: &str, topic: &str, payload: &str| {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-u",
                user,
                "-P",
                "pw",
                "-q",
                "1",
            ])
            .args(["-t", topic, "-m", payload])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_pub {user} {topic}");
    };
    // Wait until the subscription is live.
    let deadline = Instant::now() + BROKER_START_TIMEOUT;
    loop {
        publish("admin", "sync", "ready");
        if lines.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto_sub never received anything"
        );
    }
    while lines.try_recv().is_ok() {}
    let cases = [
        ("GW-0001", "meters/GW-0001/data"),
        ("GW-0001", "meters/GW-0001"),
        ("GW-0001", "meters/GW-0002/data"),
        ("GW-0001", "other/x"),
        ("GW-0002", "meters/GW-0002/data"),
        ("GW-0002", "meters/GW-0002/secret"),
        ("GW-0002", "shared/in"),
        ("GW-0001", "shared/in"),
    ];
    for (i, (user, topic)) in cases.iter().enumerate() {
        publish(user, topic, &format!("case{i}"));
    }
    publish("admin", "sync", "done");
    let mut delivered = Vec::new();
    loop {
        let line = lines
            .recv_timeout(BROKER_START_TIMEOUT)
            .expect("the final sync message");
        if line == "sync done" {
            break;
        }
        delivered.push(line);
    }
    let _ = sub.kill();
    let _ = sub.wait();
    let ours = acl(acl_text);
    for (i, (user, topic)) in cases.iter().enumerate() {
        let by_mosquitto = delivered.contains(&format!("{topic} case{i}"));
        assert_eq!(
            ours.can_publish(Some(user), "cid", topic),
            by_mosquitto,
            "{user} -> {topic}"
        );
    }
    assert_eq!(delivered.len(), 4, "{delivered:?}");
}
