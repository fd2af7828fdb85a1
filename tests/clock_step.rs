//! The system clock steps forward while messages wait in the bridge queue.
//!
//! A router without a battery-backed clock boots at a stale time (OpenWRT's
//! sysfixtime, Armbian's fake-hwclock) and NTP steps it forward by days once
//! the uplink is back, which is exactly when the queue is full. The messages
//! waited minutes, not days: neither the bridge queue's `max_age` nor an MQTT 5
//! message expiry may drop them, in the running broker or after a restart. The real binary runs under libfaketime (its wall
//! clock moved by a file the test rewrites, the monotonic clock left alone);
//! the central broker is a real Mosquitto with TLS and client certificates.

mod bridge_support;
#[path = "bridge_support/edge_proc.rs"]
#[allow(dead_code)]
mod edge_proc;

use std::path::Path;
use std::time::{Duration, Instant};

use bridge_support::edge::indexes;
use bridge_support::{Central, Observer, Pki, WAIT, assert_ordered_complete, have_tools};
use edge_proc::{Acked, EdgeProc, publish_counted};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
use rumqttc::v5::{AsyncClient, Event, MqttOptions};
use tokio::sync::mpsc;

/// libfaketime as Debian's `faketime` package installs it (the thread-safe build).
fn libfaketime() -> String {
    let arch = std::env::consts::ARCH;
    format!("/usr/lib/{arch}-linux-gnu/faketime/libfaketimeMT.so.1")
}
/// Where the edge's bridge sends data/<x>.
const REMOTE: &str = "meters/GW-0001/data/";

fn have_libfaketime() -> bool {
    let lib = libfaketime();
    if Path::new(&lib).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{lib} is required when CI=true (apt-get install faketime)"
    );
    eprintln!("note: libfaketime not installed; skipping this test");
    false
}

/// Waits until `cond` holds for the edge's log.
fn wait_log(edge: &EdgeProc, what: &str, cond: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond(&edge.log()) {
        assert!(Instant::now() < deadline, "{what}:\n{}", edge.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An MQTT 5 client with a one-hour session; its incoming packets arrive on the receiver.
async fn v5(port: u16, id: &str) -> (AsyncClient, mpsc::UnboundedReceiver<Packet>) {
    let mut opts = MqttOptions::new(id, "127.0.0.1", port);
    opts.set_clean_start(false);
    opts.set_session_expiry_interval(Some(3600));
    let (client, mut el) = AsyncClient::new(opts, 16);
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(p) = ev {
                if tx.send(p).is_err() {
                    return;
                }
            }
        }
    });
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Packet::ConnAck(_))) => (client, rx),
        other => panic!("no CONNACK: {other:?}"),
    }
}

/// The next packet `pick` accepts, within WAIT.
async fn next(rx: &mut mpsc::UnboundedReceiver<Packet>, pick: fn(&Packet) -> bool) -> Packet {
    loop {
        match tokio::time::timeout(WAIT, rx.recv()).await {
            Ok(Some(p)) if pick(&p) => return p,
            Ok(Some(_)) => {}
            other => panic!("expected packet did not arrive: {other:?}"),
        }
    }
}

async fn publish(edge: &EdgeProc, seqs: std::ops::Range<u64>) {
    let acked: Acked = Default::default();
    let n = seqs.end - seqs.start;
    publish_counted(edge.port, "data/x", seqs, acked.clone()).await;
    assert_eq!(
        acked.lock().unwrap().len() as u64,
        n,
        "not all acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forward_clock_step_is_no_age_for_queued_or_expiring_messages() {
    if !have_tools() || !have_libfaketime() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::generate(tmp.path());
    let mut central = Central::start(tmp.path(), &pki);
    central.kill();
    let fake = tmp.path().join("faketime");
    std::fs::write(&fake, "+0\n").unwrap();
    let (fake_path, lib) = (fake.display().to_string(), libfaketime());
    let env = [
        ("LD_PRELOAD", lib.as_str()),
        ("FAKETIME_TIMESTAMP_FILE", fake_path.as_str()),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ];
    let mut edge = EdgeProc::start_env(
        &tmp.path().join("edge"),
        &pki,
        &central.address(),
        "",
        "max_age = \"1h\"",
        &env,
    );

    // The outage: 50 messages queued at the stale time. And locally, a message with an
    // hour's expiry waits in the session of a subscriber that is away.
    let (sub, mut rx) = v5(edge.port, "away").await;
    sub.subscribe("local/#", QoS::AtLeastOnce).await.unwrap();
    next(&mut rx, |p| matches!(p, Packet::SubAck(_))).await;
    sub.disconnect().await.unwrap();
    let (publ, mut prx) = v5(edge.port, "local-pub").await;
    let hour = PublishProperties {
        message_expiry_interval: Some(3600),
        ..Default::default()
    };
    publ.publish_with_properties("local/x", QoS::AtLeastOnce, false, "kept", hour)
        .await
        .unwrap();
    next(&mut prx, |p| matches!(p, Packet::PubAck(_))).await;
    publish(&edge, 0..50).await;
    // NTP syncs: three days forward. The running edge must notice and remember it.
    std::fs::write(&fake, "+3d\n").unwrap();
    wait_log(&edge, "the edge did not see the clock step", |l| {
        l.contains("system clock stepped forward")
    });
    let steps = edge.data_dir.join("clock-steps");
    let deadline = Instant::now() + WAIT;
    while !std::fs::read_to_string(&steps).is_ok_and(|t| t.lines().count() == 2) {
        assert!(Instant::now() < deadline, "{} not written", steps.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    // 50 more at the right time, then a restart: the first 50 are now stamped three days
    // before the clock, and only the saved step says they are minutes old.
    publish(&edge, 50..100).await;
    edge.terminate();

    central.restart();
    let mut observer = Observer::start(central.plain_port, &format!("{REMOTE}#")).await;
    edge.restart();
    let got = observer.collect(REMOTE, 100, WAIT).await;
    let dups = assert_ordered_complete(&indexes(&got), 100);
    assert_eq!(dups, 0);
    // The subscriber comes back: minutes passed, not days, so the message has not expired.
    let (_sub, mut rx) = v5(edge.port, "away").await;
    match next(&mut rx, |p| matches!(p, Packet::Publish(_))).await {
        Packet::Publish(p) => assert_eq!(&p.payload[..], b"kept"),
        _ => unreachable!(),
    }
    assert!(
        !edge.log().contains("bridge queue dropped messages"),
        "the edge dropped messages for age:\n{}",
        edge.log()
    );
    edge.terminate();
}
