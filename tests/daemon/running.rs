//! Running: SIGTERM and SIGINT, the log format (terminal, journald, levels), worker threads,
//! dropping root.

use super::*;

fn graceful_stop(sig: Signal) {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    let (mut c, _) = mqtt::connect_tcp(&d.addr(), "held", true, None).unwrap();
    c.ping().unwrap();
    let sock = dir.path().join("data/edgemq.status.sock");
    assert!(sock.exists());
    let started = std::time::Instant::now();
    d.signal(sig);
    let st = d.wait_exit(STOP_TIMEOUT);
    assert_eq!(st.code(), Some(0), "{sig}: {st}\n{}", d.log());
    assert!(started.elapsed() < STOP_TIMEOUT);
    let log = d.log();
    assert!(log.contains(&format!("signal=\"{sig}\"")), "{log}");
    assert!(log.contains("store flushed"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    assert!(!sock.exists(), "status socket removed");
    assert!(TcpListener::bind(d.addr()).is_ok(), "port released");
}

#[test]
fn sigterm_stops_gracefully() {
    graceful_stop(Signal::SIGTERM);
}

#[test]
fn sigint_stops_gracefully() {
    graceful_stop(Signal::SIGINT);
}

#[test]
fn logs_are_plain_text_with_timestamps_off_a_terminal() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    assert_eq!(d.stop(), 0);
    let log = d.log();
    assert!(!log.contains('\x1b'), "no ANSI escapes:\n{log:?}");
    for line in log.lines() {
        let year = line.get(..4).unwrap_or_default();
        assert!(
            year.parse::<u16>().is_ok_and(|y| y >= 2024),
            "timestamp: {line}"
        );
    }
}

#[test]
fn journald_gets_no_timestamps() {
    let dir = tempdir();
    let cfg = dir.path().join("edgemq.toml");
    std::fs::write(&cfg, basic_config(dir.path(), "")).unwrap();
    let log = dir.path().join("j.log");
    let mut c = command(dir.path(), &["run", "-c", cfg.to_str().unwrap()], &log);
    c.env("JOURNAL_STREAM", "8:12345");
    let mut d = Daemon::spawn(c, &log);
    d.wait_ready();
    assert_eq!(d.stop(), 0);
    let log = d.log();
    assert!(!log.contains('\x1b'));
    for line in log.lines() {
        assert!(
            line.trim_start().starts_with("INFO"),
            "no timestamp: {line}"
        );
    }
}

#[test]
fn log_level_and_edgemq_log_are_respected() {
    let quiet = log_with_levels("warn", None);
    assert!(
        !quiet.contains("INFO"),
        "log_level = warn hides info:\n{quiet}"
    );
    let loud = log_with_levels("warn", Some("info"));
    assert!(
        loud.contains("client connected"),
        "EDGEMQ_LOG overrides:\n{loud}"
    );
    let env_quiet = log_with_levels("info", Some("error"));
    assert!(
        !env_quiet.contains("INFO"),
        "EDGEMQ_LOG=error:\n{env_quiet}"
    );
    let bad = log_with_levels("info", Some("chatty"));
    assert!(
        bad.contains("EDGEMQ_LOG"),
        "a bad EDGEMQ_LOG is reported:\n{bad}"
    );
}

#[test]
fn one_worker_thread_runs_on_the_current_thread() {
    let threads = |workers: usize| {
        let dir = tempdir();
        let cfg = basic_config(dir.path(), &format!("worker_threads = {workers}"));
        let mut d = Daemon::start(dir.path(), &cfg);
        let (mut c, _) = mqtt::connect_tcp(&d.addr(), "w", true, None).unwrap();
        c.subscribe("w", 1).unwrap();
        c.publish("w", b"x", 1).unwrap();
        assert_eq!(c.recv(RECV).unwrap().payload, b"x");
        // A thread shows its parent's name until it has set its own: poll briefly.
        let n = eventually(Duration::from_secs(2), || {
            let n = runtime_threads(d.pid());
            (n >= workers || workers == 1).then_some(n)
        });
        assert_eq!(d.stop(), 0);
        n
    };
    assert_eq!(
        threads(1),
        Some(0),
        "one worker: the main thread runs every task"
    );
    assert_eq!(threads(4), Some(4), "four workers");
}

#[test]
fn drops_root_to_the_configured_user() {
    if !is_root() {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let dir = tempdir();
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("old")).unwrap();
    std::fs::write(data.join("old/file"), b"root's").unwrap();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), "user = \"nobody\""));

    let (uids, gids, groups) = proc_ids(d.pid());
    assert_eq!(&uids[..3], &[uid; 3], "real, effective, saved uid");
    assert_eq!(&gids[..3], &[gid; 3], "real, effective, saved gid");
    assert_eq!(groups, vec![gid], "supplementary groups: only its own");
    for p in [data.clone(), data.join("old"), data.join("old/file")] {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&p).unwrap();
        assert_eq!(
            (m.uid(), m.gid()),
            (uid, gid),
            "{} handed over",
            p.display()
        );
    }

    let (mut c, ack) = mqtt::connect_tcp(&d.addr(), "after-drop", true, None).unwrap();
    assert_eq!(ack.code, 0);
    c.subscribe("t", 1).unwrap();
    c.publish("t", b"ok", 1).unwrap();
    assert_eq!(c.recv(RECV).unwrap().payload, b"ok");
    assert!(d.log().contains("dropped root privileges"));
    assert_eq!(d.stop(), 0);
    assert!(!data.join("edgemq.status.sock").exists());
}

#[test]
fn refuses_to_switch_user_when_not_started_as_root() {
    use std::os::unix::process::CommandExt;
    if !is_root() {
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("user nobody");
    let dir = tempdir();
    let cfg = dir.path().join("edgemq.toml");
    std::fs::write(&cfg, basic_config(dir.path(), "user = \"root\"")).unwrap();
    let log = dir.path().join("refuse.log");
    let mut c = command(dir.path(), &["run", "-c", cfg.to_str().unwrap()], &log);
    c.uid(nobody.uid.as_raw()).gid(nobody.gid.as_raw());
    let mut d = Daemon::spawn(c, &log);
    let st = d.wait_exit(STOP_TIMEOUT);
    let log = d.log();
    assert_eq!(st.code(), Some(2), "{log}");
    assert!(log.contains("needs edgemq to start as root"), "{log}");
}
