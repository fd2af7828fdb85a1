//! What survives the broker process: the real binary is stopped (SIGTERM,
//! or SIGKILL for a crash) and started again on the same data_dir.

mod common;

use std::time::Duration;

use common::raw::{self, Raw, p_u32};
use common::{BinBroker, v4, v4_opts};
use rumqttc::QoS;

const SESSION_EXPIRY: u8 = 0x11;

fn persistent(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut o = v4_opts(id, port);
    o.set_clean_session(false);
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let mut p = v4(v4_opts("ret-pub", b.port)).await;
    p.publish("keep/a", QoS::AtLeastOnce, true, b"1").await;
    p.publish("keep/b", QoS::AtMostOnce, true, b"2").await;
    p.publish("keep/c", QoS::AtLeastOnce, true, b"3").await;
    p.publish("keep/c", QoS::AtLeastOnce, true, b"").await;
    drop(p);
    b.restart();
    let mut s = v4(v4_opts("ret-sub", b.port)).await;
    s.subscribe("keep/#", QoS::AtLeastOnce).await;
    let mut got = [s.expect_publish().await, s.expect_publish().await];
    s.expect_none().await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        (got[0].topic.as_str(), &got[0].payload[..]),
        ("keep/a", &b"1"[..])
    );
    assert_eq!(
        (got[1].topic.as_str(), &got[1].payload[..]),
        ("keep/b", &b"2"[..])
    );
    assert!(got.iter().all(|m| m.retain));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_retained_message_survives_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let mut p = v4(v4_opts("crash-pub", b.port)).await;
    // The PUBACK of a retained QoS 1 message comes after the store's fsync.
    p.publish("crash/state", QoS::AtLeastOnce, true, b"on")
        .await;
    b.kill();
    drop(p);
    b.restart();
    let mut s = v4(v4_opts("crash-sub", b.port)).await;
    s.subscribe("crash/#", QoS::AtLeastOnce).await;
    let m = s.expect_publish().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("crash/state", &b"on"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_sessions_and_queued_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    // 3.1.1 clean_session = false, offline while messages arrive.
    let mut c = v4(persistent("old-school", b.port)).await;
    c.subscribe("ps/#", QoS::ExactlyOnce).await;
    c.client.disconnect().await.unwrap();
    let _ = tokio::time::timeout(common::WAIT, c.task).await;
    // MQTT 5 session expiry, and a received-but-unacknowledged message (inflight).
    let (mut r5, _) = Raw::v5(b.port, "modern", true, 30, &p_u32(SESSION_EXPIRY, 3600)).await;
    r5.send(&raw::subscribe(1, "ps/#", 1, Some(&[]))).await;
    r5.until_type(9).await;
    let mut p = v4(v4_opts("ps-pub", b.port)).await;
    p.publish("ps/1", QoS::AtLeastOnce, false, b"one").await;
    assert_eq!(
        r5.until_type(3).await[0] & 0x06,
        0x02,
        "QoS 1, never acknowledged"
    );
    p.publish("ps/2", QoS::ExactlyOnce, false, b"two").await;
    p.publish("ps/3", QoS::AtLeastOnce, false, b"three").await;
    drop(p);
    drop(r5);
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.restart();

    let mut c = v4(persistent("old-school", b.port)).await;
    for want in ["ps/1", "ps/2", "ps/3"] {
        assert_eq!(
            c.expect_publish().await.topic,
            want,
            "queued messages after restart, in order"
        );
    }
    c.expect_none().await;
    let (mut r5, ca) = Raw::v5(b.port, "modern", false, 30, &p_u32(SESSION_EXPIRY, 3600)).await;
    assert!(ca.session_present);
    for want in ["ps/1", "ps/2", "ps/3"] {
        let f = r5.until_type(3).await;
        let pkid = raw::publish_pkid(&f);
        assert!(
            f.windows(want.len()).any(|w| w == want.as_bytes()),
            "expected {want}"
        );
        r5.send(&raw::ack(0x40, pkid)).await;
    }
    // The subscriptions came back too.
    let mut p = v4(v4_opts("ps-pub2", b.port)).await;
    p.publish("ps/live", QoS::AtLeastOnce, false, b"live").await;
    assert_eq!(c.expect_publish().await.topic, "ps/live");
    assert!(r5.until_type(3).await.ends_with(b"live"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_counts_from_the_disconnect_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let (mut r, _) = Raw::v5(b.port, "brief", true, 30, &p_u32(SESSION_EXPIRY, 3)).await;
    r.send(&raw::subscribe(1, "b/#", 1, Some(&[]))).await;
    r.until_type(9).await;
    r.send(&raw::disconnect()).await;
    assert!(r.closed_within(common::WAIT).await);
    tokio::time::sleep(Duration::from_millis(2000)).await;
    b.restart();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (_r, ca) = Raw::v5(b.port, "brief", false, 30, &p_u32(SESSION_EXPIRY, 3)).await;
    assert!(
        !ca.session_present,
        "session outlived its 3 s expiry by the broker's downtime"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_inflight_state_survives_a_restart_without_double_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let mut r = Raw::v4(b.port, "exactly", false, 30).await;
    r.send(&raw::subscribe(1, "x2/#", 2, None)).await;
    r.until_type(9).await;
    let mut p = v4(v4_opts("x2-pub", b.port)).await;
    p.publish("x2/released", QoS::ExactlyOnce, false, b"r")
        .await;
    p.publish("x2/published", QoS::ExactlyOnce, false, b"p")
        .await;
    // The first reaches the client and is PUBREC'd (PUBREL outstanding); the
    // second reaches the client whose PUBREC is "lost".
    let id1 = raw::publish_pkid(&r.until_type(3).await);
    let id2 = raw::publish_pkid(&r.until_type(3).await);
    r.send(&raw::ack(0x50, id1)).await;
    assert_eq!(&r.until_type(6).await[..], &raw::ack(0x62, id1)[..]);
    drop(r);
    drop(p);
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.restart();
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect4("exactly", false, 30)).await;
    assert_eq!(&r.frame().await[..], &[0x20, 2, 1, 0]);
    // Resent in order: PUBREL for the first, the second with DUP and its old id.
    assert_eq!(
        &r.frame().await[..],
        &raw::ack(0x62, id1)[..],
        "PUBREL re-sent, message not re-delivered"
    );
    let again = r.frame().await;
    assert_eq!(again[0], 0x30 | 0x08 | 0x04, "QoS 2 PUBLISH with DUP");
    assert_eq!(
        raw::publish_pkid(&again),
        id2,
        "same packet id, so the client can de-duplicate"
    );
    if let raw::Got::Frame(f) = r.recv(common::QUIET).await {
        panic!("unexpected {f:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_password_file_without_dropping_clients() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    common::edgemq_passwd(&pw, "alice", "pw");
    let auth = format!("[auth]\npassword_file = {:?}\n", pw.display().to_string());
    let b = BinBroker::start(dir.path(), "", &auth);
    let login = |id: &str, user: &str| {
        let mut o = v4_opts(id, b.port);
        o.set_credentials(user, "pw");
        o
    };
    let mut alice = v4(login("alice-c", "alice")).await;
    alice.subscribe("hup/#", QoS::AtLeastOnce).await;
    let bob_connect = || {
        let mut payload = raw::mstr("bob-c");
        payload.extend(raw::mstr("bob"));
        payload.extend(raw::mstr("pw"));
        raw::connect_raw("MQTT", 4, 0xC2, 30, None, &payload)
    };
    let mut r = Raw::tcp(b.port).await;
    r.send(&bob_connect()).await;
    assert_eq!(
        &r.frame().await[..],
        &[0x20, 2, 0, 4],
        "bob unknown before the reload"
    );
    common::edgemq_passwd(&pw, "bob", "pw");
    b.signal(nix::sys::signal::Signal::SIGHUP);
    let deadline = std::time::Instant::now() + common::WAIT;
    let mut bob = loop {
        let mut r = Raw::tcp(b.port).await;
        r.send(&bob_connect()).await;
        if r.frame().await[..] == [0x20, 2, 0, 0] {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload the password file"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    bob.send(&raw::publish("hup/x", 1, 1, false, false, None, b"hi"))
        .await;
    bob.until_type(4).await;
    assert_eq!(
        &alice.expect_publish().await.payload[..],
        b"hi",
        "alice stayed connected"
    );
    assert!(b.log().contains("reloaded"), "{}", b.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_keep_their_subscription_identifier_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let (mut r, _) = Raw::v5(b.port, "ided", true, 30, &p_u32(SESSION_EXPIRY, 3600)).await;
    r.send(&raw::subscribe(1, "sid/#", 1, Some(&raw::p_var(0x0B, 42))))
        .await;
    r.until_type(9).await;
    r.send(&raw::disconnect()).await;
    assert!(r.closed_within(common::WAIT).await);
    let mut p = v4(v4_opts("sid-pub", b.port)).await;
    p.publish("sid/x", QoS::AtLeastOnce, false, b"x").await;
    drop(p);
    b.restart();
    let (mut r, ca) = Raw::v5(b.port, "ided", false, 30, &p_u32(SESSION_EXPIRY, 3600)).await;
    assert!(ca.session_present);
    match r.v5_packet().await {
        rumqttc::v5::mqttbytes::v5::Packet::Publish(m) => {
            assert_eq!(m.properties.unwrap().subscription_identifiers, vec![42]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_values_are_never_written_to_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = BinBroker::start(dir.path(), "", "");
    let mut p = v4(v4_opts("store-pub", b.port)).await;
    p.publish("real/retained", QoS::AtLeastOnce, true, b"x")
        .await;
    // $SYS is republished every second (sys_interval = 1s in the test config).
    let v = common::sys_until(b.port, "$SYS/broker/uptime", |v| v != "0 seconds").await;
    assert!(v.ends_with("seconds"));
    drop(p);
    b.stop();
    let store = edgemq::store::Store::open(&b.data_dir).unwrap();
    let topics: Vec<String> = store
        .load_retained()
        .unwrap()
        .iter()
        .map(|m| m.topic.to_string())
        .collect();
    assert_eq!(
        topics,
        vec!["real/retained".to_string()],
        "flash writes for $SYS, stale figures after restart"
    );
}
