//! What survives: queued messages across a graceful stop, `edgemq status`, one daemon per
//! data dir, a stalled subscriber not holding up the stop.

use super::*;

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
