//! Starting: built-in defaults, and the exit codes of a bad config, a port in use, an unusable
//! data dir, unknown commands.

use super::*;

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
