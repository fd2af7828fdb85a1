//! The local broker speaking MQTT 3.1.1 (and 3.1) to real clients: rumqttc
//! v4 and raw sockets against the in-process server on an ephemeral port.

mod common;

use std::time::{Duration, Instant};

use common::raw::{self, Raw};
use common::{TestBroker, WAIT, v4, v4_opts};
use rumqttc::{LastWill, QoS, SubscribeReasonCode};

fn granted(q: QoS) -> SubscribeReasonCode {
    SubscribeReasonCode::Success(q)
}

/// A client can still subscribe and receive: the broker carries on.
async fn assert_alive(port: u16) {
    let mut s = v4(v4_opts(&format!("alive-{}", common::free_port()), port)).await;
    s.subscribe("alive/check", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts(&format!("alive-p-{}", common::free_port()), port)).await;
    p.publish("alive/check", QoS::AtLeastOnce, false, b"ok")
        .await;
    assert_eq!(&s.expect_publish().await.payload[..], b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_end_to_end_with_downgrade() {
    let b = TestBroker::start().await;
    let mut s2 = v4(v4_opts("s2", b.port)).await;
    let mut s1 = v4(v4_opts("s1", b.port)).await;
    let mut s0 = v4(v4_opts("s0", b.port)).await;
    assert_eq!(
        s2.subscribe("q/#", QoS::ExactlyOnce).await,
        vec![granted(QoS::ExactlyOnce)]
    );
    assert_eq!(
        s1.subscribe("q/#", QoS::AtLeastOnce).await,
        vec![granted(QoS::AtLeastOnce)]
    );
    assert_eq!(
        s0.subscribe("q/#", QoS::AtMostOnce).await,
        vec![granted(QoS::AtMostOnce)]
    );
    let mut p = v4(v4_opts("pub", b.port)).await;
    for (i, q) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        p.publish(&format!("q/{i}"), q, false, format!("m{i}").as_bytes())
            .await;
        for (sub, max) in [
            (&mut s2, QoS::ExactlyOnce),
            (&mut s1, QoS::AtLeastOnce),
            (&mut s0, QoS::AtMostOnce),
        ] {
            let got = sub.expect_publish().await;
            assert_eq!(got.topic, format!("q/{i}"));
            assert_eq!(got.payload, format!("m{i}").as_bytes());
            assert_eq!(
                got.qos as u8,
                (q as u8).min(max as u8),
                "delivered at min(published, granted)"
            );
        }
    }
    for s in [&mut s2, &mut s1, &mut s0] {
        s.expect_none().await;
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_qos1_messages_arrive_in_order() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("order-sub", b.port)).await;
    s.subscribe("order/t", QoS::AtLeastOnce).await;
    let p = v4(v4_opts("order-pub", b.port)).await;
    let publisher = tokio::spawn(async move {
        for i in 0..1000u32 {
            p.client
                .publish("order/t", QoS::AtLeastOnce, false, i.to_be_bytes().to_vec())
                .await
                .unwrap();
        }
        p
    });
    for i in 0..1000u32 {
        let m = s.expect_publish().await;
        assert_eq!(m.payload[..], i.to_be_bytes(), "message {i} out of order");
    }
    s.expect_none().await;
    drop(publisher.await.unwrap());
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_duplicate_publish_is_delivered_once() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("dup-sub", b.port)).await;
    s.subscribe("dup/#", QoS::ExactlyOnce).await;
    let mut r = Raw::v4(b.port, "dup-pub", true, 30).await;
    r.send(&raw::publish("dup/a", 2, 7, false, false, None, b"once"))
        .await;
    assert_eq!(&r.frame().await[..], &raw::ack(0x50, 7)[..], "PUBREC");
    // The client did not see the PUBREC (as far as it knows) and re-sends with DUP.
    r.send(&raw::publish("dup/a", 2, 7, true, false, None, b"once"))
        .await;
    assert_eq!(&r.frame().await[..], &raw::ack(0x50, 7)[..], "PUBREC again");
    r.send(&raw::ack(0x62, 7)).await;
    assert_eq!(&r.frame().await[..], &raw::ack(0x70, 7)[..], "PUBCOMP");
    let m = s.expect_publish().await;
    assert_eq!(&m.payload[..], b"once");
    s.expect_none().await;
    // After PUBREL the id is free: a new message with the same id is a new message.
    r.send(&raw::publish("dup/a", 2, 7, false, false, None, b"second"))
        .await;
    assert_eq!(&r.frame().await[..], &raw::ack(0x50, 7)[..]);
    r.send(&raw::ack(0x62, 7)).await;
    assert_eq!(&s.expect_publish().await.payload[..], b"second");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_queue_is_bounded_and_drops_are_counted() {
    let b = TestBroker::with("max_inflight = 5\nmax_queued_messages = 50", "").await;
    // A subscriber that never acknowledges (and never reads).
    let mut slow = Raw::v4(b.port, "slow", true, 0).await;
    slow.send(&raw::subscribe(1, "slow/#", 1, None)).await;
    assert_eq!(slow.frame().await[0], 0x90);
    let mut p = v4(v4_opts("fast-pub", b.port)).await;
    for i in 0..500u32 {
        p.publish("slow/t", QoS::AtLeastOnce, false, &[i as u8; 100])
            .await;
    }
    let session = b.broker.router.session("slow").expect("session");
    let deadline = Instant::now() + WAIT;
    loop {
        let (queued, inflight) = {
            let s = session.lock();
            (s.queue.len(), s.inflight.len())
        };
        let dropped = session.dropped();
        if inflight == 5 && queued == 50 && dropped == 445 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "queued {queued} inflight {inflight} dropped {dropped}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        b.broker
            .router
            .stats
            .dropped
            .load(std::sync::atomic::Ordering::Relaxed),
        445
    );
    common::sys_until(b.port, "$SYS/broker/publish/messages/dropped", |v| {
        v == "445"
    })
    .await;
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_give_one_delivery_at_max_qos() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("overlap", b.port)).await;
    s.subscribe("ov/#", QoS::AtMostOnce).await;
    s.subscribe("ov/+/x", QoS::ExactlyOnce).await;
    s.subscribe("ov/a/x", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts("overlap-pub", b.port)).await;
    p.publish("ov/a/x", QoS::ExactlyOnce, false, b"2").await;
    let m = s.expect_publish().await;
    assert_eq!(
        m.qos,
        QoS::ExactlyOnce,
        "max of the matching subscriptions' QoS"
    );
    s.expect_none().await;
    p.publish("ov/a/x", QoS::AtLeastOnce, false, b"1").await;
    assert_eq!(s.expect_publish().await.qos, QoS::AtLeastOnce);
    s.expect_none().await;
    p.publish("ov/b", QoS::ExactlyOnce, false, b"0").await;
    assert_eq!(
        s.expect_publish().await.qos,
        QoS::AtMostOnce,
        "only ov/# matches"
    );
    s.expect_none().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_set_replace_delete_and_wildcards() {
    let b = TestBroker::start().await;
    let mut p = v4(v4_opts("ret-pub", b.port)).await;
    p.publish("ret/a", QoS::AtLeastOnce, true, b"1").await;
    p.publish("ret/b/c", QoS::AtLeastOnce, true, b"2").await;
    p.publish("ret/a", QoS::AtLeastOnce, true, b"3").await;
    p.publish("other", QoS::AtLeastOnce, true, b"x").await;
    let mut s = v4(v4_opts("ret-sub", b.port)).await;
    s.subscribe("ret/#", QoS::AtLeastOnce).await;
    let mut got = [s.expect_publish().await, s.expect_publish().await];
    s.expect_none().await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(
        (got[0].topic.as_str(), &got[0].payload[..], got[0].retain),
        ("ret/a", &b"3"[..], true)
    );
    assert_eq!(
        (got[1].topic.as_str(), &got[1].payload[..], got[1].retain),
        ("ret/b/c", &b"2"[..], true)
    );
    // A live subscriber gets a retained publish with retain = 0 (3.1.1 §3.3.1.3).
    p.publish("ret/b/c", QoS::AtLeastOnce, true, b"").await;
    let live = s.expect_publish().await;
    assert!(!live.retain && live.payload.is_empty());
    let mut s2 = v4(v4_opts("ret-sub2", b.port)).await;
    s2.subscribe("ret/+/c", QoS::AtMostOnce).await;
    s2.expect_none().await;
    s2.subscribe("+/a", QoS::AtMostOnce).await;
    assert_eq!(&s2.expect_publish().await.payload[..], b"3");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sys_topics_are_not_matched_by_hash() {
    let b = TestBroker::start().await;
    let mut all = v4(v4_opts("hash", b.port)).await;
    all.subscribe("#", QoS::AtMostOnce).await;
    let mut plus = v4(v4_opts("plus", b.port)).await;
    plus.subscribe("+/broker/#", QoS::AtMostOnce).await;
    // $SYS is published every second (retained); wait for at least one round.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut p = v4(v4_opts("hash-pub", b.port)).await;
    p.publish("visible", QoS::AtMostOnce, false, b"v").await;
    let m = all.expect_publish().await;
    assert_eq!(
        m.topic, "visible",
        "first message seen by # must not be $SYS"
    );
    all.expect_none().await;
    plus.expect_none().await;
    let v = common::sys_value(b.port, "$SYS/broker/version").await;
    assert!(v.starts_with("edgemq version"), "{v}");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_on_abnormal_disconnect_not_on_clean_disconnect() {
    let b = TestBroker::start().await;
    let mut w = v4(v4_opts("will-watch", b.port)).await;
    w.subscribe("will/#", QoS::AtLeastOnce).await;
    // rumqttc client with a will, killed without DISCONNECT.
    let mut o = v4_opts("will-dies", b.port);
    o.set_last_will(LastWill::new("will/dies", "gone", QoS::AtLeastOnce, false));
    let c = v4(o).await;
    c.task.abort();
    let m = w.expect_publish().await;
    assert_eq!(
        (m.topic.as_str(), &m.payload[..]),
        ("will/dies", &b"gone"[..])
    );
    // Raw client with a will that says goodbye properly.
    let mut payload = raw::mstr("will-polite");
    payload.extend(raw::mstr("will/polite"));
    payload.extend(raw::mbin(b"never"));
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect_raw(
        "MQTT",
        4,
        0x02 | 0x04 | 0x08,
        30,
        None,
        &payload,
    ))
    .await;
    assert_eq!(&r.frame().await[..], &[0x20, 2, 0, 0]);
    r.send(&raw::disconnect()).await;
    assert!(r.closed_within(WAIT).await);
    w.expect_none().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_client_dropped_at_one_and_a_half_keepalive() {
    let b = TestBroker::start().await;
    let mut silent = Raw::v4(b.port, "silent", true, 1).await;
    let mut pinger = Raw::v4(b.port, "pinger", true, 1).await;
    let t0 = Instant::now();
    let ping = tokio::spawn(async move {
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            pinger.send(&[0xC0, 0]).await;
            assert_eq!(&pinger.frame().await[..], &[0xD0, 0], "PINGRESP");
        }
    });
    assert!(
        silent.closed_within(Duration::from_secs(3)).await,
        "silent client not dropped"
    );
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2200),
        "dropped after {took:?}"
    );
    ping.await.unwrap();
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_closes_the_first_connection() {
    let b = TestBroker::start().await;
    let mut first = Raw::v4(b.port, "same-id", true, 30).await;
    let _second = Raw::v4(b.port, "same-id", true, 30).await;
    assert!(
        first.closed_within(WAIT).await,
        "first connection still open"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_generated_for_clean_rejected_for_persistent() {
    let b = TestBroker::start().await;
    let mut ok = Raw::v4(b.port, "", true, 30).await;
    ok.send(&raw::subscribe(1, "e/t", 0, None)).await;
    assert_eq!(ok.frame().await[0], 0x90);
    let mut bad = Raw::tcp(b.port).await;
    bad.send(&raw::connect4("", false, 30)).await;
    assert_eq!(
        &bad.frame().await[..],
        &[0x20, 2, 0, 0x02],
        "identifier rejected"
    );
    assert!(bad.closed_within(WAIT).await);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_keeps_subscriptions_and_queued_messages() {
    let b = TestBroker::start().await;
    let mut r = Raw::v4(b.port, "keeper", false, 30).await;
    r.send(&raw::subscribe(1, "keep/#", 2, None)).await;
    assert_eq!(&r.frame().await[..], &[0x90, 3, 0, 1, 2]);
    r.send(&raw::disconnect()).await;
    assert!(r.closed_within(WAIT).await);
    let mut p = v4(v4_opts("keep-pub", b.port)).await;
    p.publish("keep/0", QoS::AtMostOnce, false, b"lost").await;
    for (i, q) in [QoS::AtLeastOnce, QoS::ExactlyOnce, QoS::AtLeastOnce]
        .into_iter()
        .enumerate()
    {
        p.publish(&format!("keep/{}", i + 1), q, false, b"kept")
            .await;
    }
    let mut c = v4({
        let mut o = v4_opts("keeper", b.port);
        o.set_clean_session(false);
        o
    })
    .await;
    for i in 1..=3 {
        let m = c.expect_publish().await;
        assert_eq!(
            m.topic,
            format!("keep/{i}"),
            "queued QoS 1/2 messages, in order; QoS 0 not kept"
        );
    }
    c.expect_none().await;
    p.publish("keep/live", QoS::AtLeastOnce, false, b"live")
        .await;
    assert_eq!(
        c.expect_publish().await.topic,
        "keep/live",
        "subscription survived"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt31_and_bridge_flagged_connects_are_accepted() {
    let b = TestBroker::start().await;
    let mut old = Raw::tcp(b.port).await;
    old.send(&raw::connect_raw(
        "MQIsdp",
        3,
        0x02,
        30,
        None,
        &raw::mstr("old-device"),
    ))
    .await;
    assert_eq!(&old.frame().await[..], &[0x20, 2, 0, 0], "MQTT 3.1 CONNACK");
    old.send(&raw::subscribe(1, "legacy/#", 1, None)).await;
    assert_eq!(&old.frame().await[..], &[0x90, 3, 0, 1, 1]);
    let mut bridge = Raw::tcp(b.port).await;
    bridge
        .send(&raw::connect_raw(
            "MQTT",
            0x84,
            0x02,
            30,
            None,
            &raw::mstr("a-bridge"),
        ))
        .await;
    assert_eq!(
        &bridge.frame().await[..],
        &[0x20, 2, 0, 0],
        "bridge CONNACK"
    );
    bridge
        .send(&raw::publish("legacy/x", 1, 3, false, false, None, b"hi"))
        .await;
    assert_eq!(&bridge.frame().await[..], &raw::ack(0x40, 3)[..]);
    let f = old.frame().await;
    assert_eq!(f[0] & 0xF0, 0x30);
    assert!(f.ends_with(b"hi"));
    let mut bad = Raw::tcp(b.port).await;
    bad.send(&raw::connect_raw(
        "MQTT",
        9,
        0x02,
        30,
        None,
        &raw::mstr("future"),
    ))
    .await;
    assert_eq!(
        &bad.frame().await[..],
        &[0x20, 2, 0, 1],
        "unacceptable protocol version"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refuses_subscriptions_with_0x80_and_drops_denied_publishes() {
    let dir = tempfile::tempdir().unwrap();
    let auth = common::write_auth(dir.path());
    let b = common::BinBroker::start(dir.path(), "", &auth);
    let login = |id: &str, user: &str| {
        let mut o = v4_opts(id, b.port);
        o.set_credentials(user, "pw");
        o
    };
    let mut alice = v4(login("alice-c", "alice")).await;
    assert_eq!(
        alice.subscribe("secret/#", QoS::AtLeastOnce).await,
        vec![SubscribeReasonCode::Failure]
    );
    assert_eq!(
        alice.subscribe("alice/#", QoS::AtLeastOnce).await,
        vec![granted(QoS::AtLeastOnce)]
    );
    assert_eq!(
        alice.subscribe("public/#", QoS::AtLeastOnce).await,
        vec![granted(QoS::AtLeastOnce)]
    );
    alice
        .publish("alice/x", QoS::AtLeastOnce, false, b"mine")
        .await;
    assert_eq!(alice.expect_publish().await.topic, "alice/x");
    // Read-only topic: acknowledged (3.1.1 has no negative PUBACK) but dropped.
    alice
        .publish("public/news", QoS::AtLeastOnce, false, b"fake")
        .await;
    // A deny rule inside a granted subscription: neither published nor received.
    alice
        .publish("alice/secret/x", QoS::AtLeastOnce, false, b"hidden")
        .await;
    alice.expect_none().await;

    // Seed 000: `pattern readwrite meters/%u/#` isolates gateways from each other.
    let mut gw1 = v4(login("gw1", "GW-0001")).await;
    let mut gw2 = v4(login("gw2", "GW-0002")).await;
    assert_eq!(
        gw1.subscribe("meters/GW-0001/#", QoS::AtLeastOnce).await,
        vec![granted(QoS::AtLeastOnce)]
    );
    assert_eq!(
        gw2.subscribe("meters/GW-0001/#", QoS::AtLeastOnce).await,
        vec![SubscribeReasonCode::Failure]
    );
    assert_eq!(
        gw2.subscribe("meters/#", QoS::AtLeastOnce).await,
        vec![SubscribeReasonCode::Failure]
    );
    gw2.publish("meters/GW-0001/data", QoS::AtLeastOnce, false, b"forged")
        .await;
    gw1.expect_none().await;
    gw1.publish("meters/GW-0001/data", QoS::AtLeastOnce, false, b"real")
        .await;
    assert_eq!(&gw1.expect_publish().await.payload[..], b"real");

    // A wrong password is refused with return code 4.
    let mut payload = raw::mstr("intruder");
    payload.extend(raw::mstr("GW-0001"));
    payload.extend(raw::mstr("nope"));
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect_raw("MQTT", 4, 0xC2, 30, None, &payload))
        .await;
    assert_eq!(&r.frame().await[..], &[0x20, 2, 0, 4]);
    assert!(r.closed_within(WAIT).await);

    let log = b.log();
    assert!(
        log.contains("publish denied by ACL") && log.contains("public/news"),
        "denied publish not logged:\n{log}"
    );
    assert!(log.contains("subscription denied by ACL"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_messages_are_resent_with_dup_on_resume() {
    let b = TestBroker::start().await;
    let mut r = Raw::v4(b.port, "resume", false, 30).await;
    r.send(&raw::subscribe(1, "rs/#", 2, None)).await;
    r.until_type(9).await;
    let mut p = v4(v4_opts("rs-pub", b.port)).await;
    p.publish("rs/1", QoS::AtLeastOnce, false, b"q1").await;
    p.publish("rs/2", QoS::ExactlyOnce, false, b"q2").await;
    let f1 = r.until_type(3).await;
    let id1 = raw::publish_pkid(&f1);
    let f2 = r.until_type(3).await;
    let id2 = raw::publish_pkid(&f2);
    assert_eq!(f1[0] & 0x08, 0, "first send has no DUP");
    // QoS 2 half done: PUBREC sent, PUBREL received, PUBCOMP never sent.
    r.send(&raw::ack(0x50, id2)).await;
    assert_eq!(&r.until_type(6).await[..], &raw::ack(0x62, id2)[..]);
    drop(r);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect4("resume", false, 30)).await;
    assert_eq!(&r.frame().await[..], &[0x20, 2, 1, 0], "session present");
    let again = r.frame().await;
    assert_eq!(
        again[0],
        0x30 | 0x08 | 0x02,
        "QoS 1 PUBLISH re-sent with DUP"
    );
    assert_eq!(raw::publish_pkid(&again), id1, "same packet id");
    assert_eq!(
        &r.frame().await[..],
        &raw::ack(0x62, id2)[..],
        "PUBREL re-sent"
    );
    r.send(&raw::ack(0x40, id1)).await;
    r.send(&raw::ack(0x70, id2)).await;
    if let raw::Got::Frame(f) = r.recv(common::QUIET).await {
        panic!("nothing more expected, got {f:?}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_stops_delivery_and_sys_counts() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("unsub", b.port)).await;
    s.subscribe("us/#", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts("unsub-pub", b.port)).await;
    p.publish("us/a", QoS::AtLeastOnce, false, b"1").await;
    s.expect_publish().await;
    s.client.unsubscribe("us/#").await.unwrap();
    while !matches!(s.next().await, Some(rumqttc::Packet::UnsubAck(_)) | None) {}
    p.publish("us/a", QoS::AtLeastOnce, false, b"2").await;
    s.expect_none().await;
    common::sys_until(b.port, "$SYS/broker/clients/connected", |v| v == "3").await;
    common::sys_until(b.port, "$SYS/broker/messages/received", |v| {
        v.parse::<u32>().unwrap() >= 2
    })
    .await;
    common::sys_until(b.port, "$SYS/broker/uptime", |v| v.ends_with(" seconds")).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takeover_of_a_connection_stuck_writing_is_prompt() {
    let b = TestBroker::with("max_inflight = 1000\nmax_queued_messages = 1000", "").await;
    // A half-open client: subscribed, then never reads again.
    let mut stuck = Raw::v4(b.port, "stuck", false, 0).await;
    stuck.send(&raw::subscribe(1, "big/#", 1, None)).await;
    stuck.until_type(9).await;
    let mut p = v4({
        let mut o = v4_opts("big-pub", b.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o
    })
    .await;
    let chunk = vec![7u8; 60_000];
    for _ in 0..300 {
        p.publish("big/t", QoS::AtMostOnce, false, &chunk).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The device comes back on a new connection with the same client id.
    let t0 = Instant::now();
    let mut back = Raw::tcp(b.port).await;
    back.send(&raw::connect4("stuck", false, 30)).await;
    let f = back.frame().await;
    assert_eq!(&f[..4], &[0x20, 2, 1, 0]);
    assert!(
        t0.elapsed() < Duration::from_secs(3),
        "takeover took {:?}",
        t0.elapsed()
    );
    // The resumed session delivers the backlog on the new connection.
    let f = back.until_type(3).await;
    assert_eq!(f.len(), 60_000 + 2 + 5 + 4, "a whole 60 kB PUBLISH");
    drop((stuck, back));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_large_qos0_messages_is_delivered_completely() {
    let b = TestBroker::with("max_queued_messages = 1000", "").await;
    let big = |id: &str| {
        let mut o = v4_opts(id, b.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o
    };
    let mut s = v4(big("burst-sub")).await;
    s.subscribe("burst/#", QoS::AtMostOnce).await;
    let mut p = v4(big("burst-pub")).await;
    for i in 0..200u32 {
        let mut m = vec![0u8; 60_000];
        m[..4].copy_from_slice(&i.to_be_bytes());
        p.publish("burst/t", QoS::AtMostOnce, false, &m).await;
    }
    for i in 0..200u32 {
        let m = s.expect_publish().await;
        assert_eq!(m.payload[..4], i.to_be_bytes(), "message {i}");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unix_socket_and_ipv6_listeners_serve_the_same_broker() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sock_dir = tempfile::tempdir().unwrap();
    let path = sock_dir.path().join("edgemq.sock");
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let mut extra = format!("[[listener]]\nbind = \"unix:{}\"\n", path.display());
    if v6 {
        extra.push_str("\n[[listener]]\nbind = \"[::1]:0\"\n");
    }
    let b = TestBroker::with("", &extra).await;
    let mut s = v4(v4_opts("tcp-sub", b.port)).await;
    s.subscribe("multi/#", QoS::AtLeastOnce).await;
    let mut u = tokio::net::UnixStream::connect(&path).await.unwrap();
    u.write_all(&raw::connect4("unix-client", true, 30))
        .await
        .unwrap();
    let mut ack = [0u8; 4];
    u.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    u.write_all(&raw::publish("multi/unix", 0, 0, false, false, None, b"u"))
        .await
        .unwrap();
    assert_eq!(s.expect_publish().await.topic, "multi/unix");
    if v6 {
        let addr = b.addresses.last().unwrap().clone();
        let mut t = tokio::net::TcpStream::connect(addr.as_str()).await.unwrap();
        t.write_all(&raw::connect4("v6-client", true, 30))
            .await
            .unwrap();
        t.read_exact(&mut ack).await.unwrap();
        assert_eq!(ack, [0x20, 2, 0, 0]);
        t.write_all(&raw::publish("multi/v6", 0, 0, false, false, None, b"6"))
            .await
            .unwrap();
        assert_eq!(s.expect_publish().await.topic, "multi/v6");
    } else {
        eprintln!("NOTE: no IPv6 loopback here; IPv6 part skipped");
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_cannot_write_sys_or_share_topics() {
    let b = TestBroker::start().await;
    let mut p = v4(v4_opts("faker", b.port)).await;
    p.publish("$SYS/broker/version", QoS::AtLeastOnce, true, b"fake")
        .await;
    p.publish("$share/g/a", QoS::AtLeastOnce, false, b"x").await;
    // A bridge may report its own state there (Mosquitto's exception).
    p.publish(
        "$SYS/broker/connection/GW-0001/state",
        QoS::AtLeastOnce,
        true,
        b"1",
    )
    .await;
    let mut s = v4(v4_opts("sys-reader", b.port)).await;
    s.subscribe("$SYS/broker/version", QoS::AtMostOnce).await;
    let v = s.expect_publish().await;
    assert!(v.payload.starts_with(b"edgemq version"), "{v:?}");
    s.subscribe("$SYS/broker/connection/+/state", QoS::AtMostOnce)
        .await;
    assert_eq!(&s.expect_publish().await.payload[..], b"1");
    b.stop().await;
}
