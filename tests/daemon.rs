//! `edgemq run` seen from the user's side, against the real binary: built-in
//! defaults, exit codes, logging format, signals (graceful stop, SIGHUP
//! reloads of passwords and certificates), privilege drop, worker threads,
//! nothing queued lost across a restart, and `edgemq status`.

mod daemon_support;

use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use daemon_support::mqtt;
use daemon_support::{
    Daemon, STOP_TIMEOUT, basic_config, command, eventually, is_root, log_with_levels, proc_ids,
    run_to_end, runtime_threads, tempdir,
};
use nix::sys::signal::Signal;

const RECV: Duration = Duration::from_secs(3);

#[test]
fn runs_on_builtin_defaults_without_a_config() {
    let defaults = ["/etc/edgemq/edgemq.toml", "/etc/config/edgemq"];
    if let Some(found) = defaults.iter().find(|p| Path::new(p).exists()) {
        eprintln!("note: {found} exists on this machine, so `edgemq run` would use it; skipping");
        return;
    }
    if TcpListener::bind("127.0.0.1:1883").is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "127.0.0.1:1883 is busy under CI=true"
        );
        eprintln!("note: 127.0.0.1:1883 is busy; skipping the built-in defaults test");
        return;
    }
    let dir = tempdir();
    let log = dir.path().join("run.log");
    let mut d = Daemon::spawn(command(dir.path(), &["run"], &log), &log);
    d.wait_ready();
    let first = d.log().lines().next().unwrap_or_default().to_string();
    assert!(first.contains("built-in defaults"), "first line: {first}");
    assert_eq!(d.addr(), "127.0.0.1:1883");

    let (mut sub, ack) = mqtt::connect_tcp("127.0.0.1:1883", "sub", true, None).unwrap();
    assert_eq!(ack.code, 0, "anonymous allowed on loopback");
    sub.subscribe("t/#", 1).unwrap();
    let (mut publ, _) = mqtt::connect_tcp("127.0.0.1:1883", "pub", true, None).unwrap();
    publ.publish("t/1", b"hello", 1).unwrap();
    assert_eq!(sub.recv(RECV).unwrap().payload, b"hello");

    let data = dir.path().join("edgemq-data");
    assert!(data.is_dir(), "data lands in ./edgemq-data");
    let (code, out, err) = run_to_end(dir.path(), &["status"], None);
    assert_eq!(
        code, 0,
        "`edgemq status` finds the defaults daemon too: {err}"
    );
    assert!(out.contains("clients connected: 2"), "{out}");
    assert_eq!(d.stop(), 0);
}

#[test]
fn bad_config_exits_1_naming_file_line_and_key() {
    let dir = tempdir();
    let cfg = dir.path().join("edgemq.toml");
    let text = format!(
        "data_dir = \"{}/data\"\nlog_level = \"info\"\nworker_thread = 2\n",
        dir.path().display()
    );
    std::fs::write(&cfg, text).unwrap();
    let (code, _, err) = run_to_end(dir.path(), &["run", "-c", cfg.to_str().unwrap()], None);
    assert_eq!(code, 1, "stderr: {err}");
    let at = format!("{}:3", cfg.display());
    assert!(err.contains(&at), "names file and line: {err}");
    assert!(err.contains("worker_thread"), "names the key: {err}");
    assert!(!dir.path().join("data").exists(), "nothing started");
}

#[test]
fn port_in_use_exits_2_with_a_clear_message() {
    let dir = tempdir();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let toml = format!(
        "data_dir = \"{}/data\"\n[[listener]]\nbind = \"{addr}\"\n",
        dir.path().display()
    );
    let cfg = dir.path().join("edgemq.toml");
    std::fs::write(&cfg, toml).unwrap();
    let (code, _, err) = run_to_end(dir.path(), &["run", "-c", cfg.to_str().unwrap()], None);
    assert_eq!(code, 2, "stderr: {err}");
    let err = err.to_lowercase();
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("address already in use"), "{err}");
}

#[test]
fn a_malformed_file_named_by_the_config_exits_1_and_an_unusable_data_dir_2() {
    let dir = tempdir();
    let d = dir.path().display();
    std::fs::write(dir.path().join("passwd"), "alice:$7$bad\n").unwrap();
    let pw = format!("[auth]\npassword_file = \"{d}/passwd\"");
    std::fs::write(dir.path().join("a.toml"), basic_config(dir.path(), &pw)).unwrap();
    let (code, _, err) = run_to_end(dir.path(), &["run", "-c", "a.toml"], None);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{d}/passwd:1")),
        "names file and line: {err}"
    );

    std::fs::write(dir.path().join("file"), "").unwrap();
    let toml = format!("data_dir = \"{d}/file/data\"\n[[listener]]\nbind = \"127.0.0.1:0\"\n");
    std::fs::write(dir.path().join("b.toml"), toml).unwrap();
    let (code, _, err) = run_to_end(dir.path(), &["run", "-c", "b.toml"], None);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{d}/file/data")),
        "names the data_dir: {err}"
    );
}

#[test]
fn unknown_commands_and_bad_arguments_exit_1() {
    let dir = tempdir();
    let cases: [&[&str]; 7] = [
        &[],
        &["frobnicate"],
        &["run", "extra"],
        &["run", "--bogus"],
        &["run", "-c"],
        &["status", "a", "b"],
        &["passwd", "only-one"],
    ];
    for args in cases {
        let (code, _, err) = run_to_end(dir.path(), args, None);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains("usage:"), "{args:?} shows usage: {err}");
    }
    let (code, _, err) = run_to_end(dir.path(), &["run", "-c", "/nonexistent/edgemq.toml"], None);
    assert_eq!(code, 1, "missing config file: {err}");
    assert!(err.contains("/nonexistent/edgemq.toml"), "{err}");
}

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

#[test]
fn graceful_shutdown_loses_nothing_queued() {
    const N: usize = 20;
    let dir = tempdir();
    let cfg = basic_config(dir.path(), "");
    let mut d = Daemon::start(dir.path(), &cfg);
    let (mut keeper, _) = mqtt::connect_tcp(&d.addr(), "keeper", false, None).unwrap();
    assert_eq!(keeper.subscribe("q/#", 1).unwrap(), 1);
    keeper.disconnect().unwrap();
    let (mut publ, _) = mqtt::connect_tcp(&d.addr(), "pub", true, None).unwrap();
    for i in 0..N {
        publ.publish(&format!("q/{i}"), i.to_string().as_bytes(), 1)
            .unwrap();
    }
    assert_eq!(d.stop(), 0);
    assert!(d.log().contains("store flushed sessions=1"), "{}", d.log());

    let d = Daemon::start(dir.path(), &cfg);
    let (mut keeper, ack) = mqtt::connect_tcp(&d.addr(), "keeper", false, None).unwrap();
    assert!(ack.session_present, "the session survived the restart");
    for i in 0..N {
        let m = keeper
            .recv(RECV)
            .unwrap_or_else(|e| panic!("message {i}: {e}"));
        assert_eq!(
            (m.topic, m.payload, m.qos),
            (format!("q/{i}"), i.to_string().into_bytes(), 1)
        );
    }
}

#[test]
fn status_reads_the_running_daemon() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    let cfg = dir.path().join("edgemq.toml");
    let args = ["status", "-c", cfg.to_str().unwrap()];
    let (mut c, _) = mqtt::connect_tcp(&d.addr(), "seen", true, None).unwrap();
    c.ping().unwrap();
    let (code, out, err) = run_to_end(dir.path(), &args, None);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("edgemq "), "{out}");
    assert!(out.contains("clients connected: 1"), "{out}");
    assert!(out.contains("no bridges configured"), "{out}");
    assert_eq!(d.stop(), 0);

    let (code, out, err) = run_to_end(dir.path(), &args, None);
    assert_eq!(code, 2, "no daemon: {out}{err}");
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn a_second_daemon_on_the_same_data_dir_is_refused() {
    let dir = tempdir();
    let mut first = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    let other = dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    let cfg = other.join("edgemq.toml");
    std::fs::write(&cfg, basic_config(dir.path(), "")).unwrap();
    let (code, _, err) = run_to_end(&other, &["run", "-c", cfg.to_str().unwrap()], None);
    assert_eq!(code, 2, "{err}");
    let pid = format!("pid {}", first.pid());
    assert!(
        err.contains("another edgemq") && err.contains(&pid),
        "{err}"
    );

    let sock = dir.path().join("data/edgemq.status.sock");
    assert!(
        sock.exists(),
        "the first daemon's status socket is untouched"
    );
    let (mut c, _) = mqtt::connect_tcp(&first.addr(), "still", true, None).unwrap();
    c.ping().unwrap();
    assert_eq!(first.stop(), 0);
}

#[test]
fn status_shows_a_bridge_queue_that_survives_a_restart() {
    let dir = tempdir();
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let bridge = format!(
        "[[bridge]]\nname = \"central\"\naddresses = [\"{closed}\"]\nclient_id = \"GW-T\"\n\
         [[bridge.topic]]\npattern = \"meters/#\"\ndirection = \"out\"\nqos = 1\n"
    );
    let cfg = format!("{}{bridge}", basic_config(dir.path(), ""));
    let mut d = Daemon::start(dir.path(), &cfg);
    let (mut publ, _) = mqtt::connect_tcp(&d.addr(), "meter", true, None).unwrap();
    for i in 0..3 {
        publ.publish("meters/power", format!("{i}").as_bytes(), 1)
            .unwrap();
    }
    let status = || {
        let cfg = dir.path().join("edgemq.toml");
        let (code, out, err) =
            run_to_end(dir.path(), &["status", "-c", cfg.to_str().unwrap()], None);
        assert_eq!(code, 0, "{err}");
        out
    };
    let out = status();
    assert!(out.contains("bridge central: disconnected"), "{out}");
    assert!(out.contains("queue: 3 messages"), "{out}");
    assert_eq!(
        d.stop(),
        0,
        "an uplink retrying a dead address does not delay the stop"
    );

    let mut d = Daemon::start(dir.path(), &cfg);
    let out = status();
    assert!(
        out.contains("queue: 3 messages"),
        "the queue survived the restart: {out}"
    );
    assert_eq!(d.stop(), 0);
}

#[test]
fn a_stalled_subscriber_does_not_hold_up_the_stop() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    // Subscribes, then never reads: its socket buffers fill up.
    let (mut stalled, _) = mqtt::connect_tcp(&d.addr(), "stalled", true, None).unwrap();
    stalled.subscribe("flood", 0).unwrap();
    let (mut publ, _) = mqtt::connect_tcp(&d.addr(), "flooder", true, None).unwrap();
    let payload = vec![b'x'; 64 * 1024];
    for _ in 0..200 {
        publ.publish("flood", &payload, 0).unwrap();
    }
    publ.ping().unwrap();
    assert_eq!(d.stop(), 0, "within {STOP_TIMEOUT:?}");
    drop(stalled);
}
