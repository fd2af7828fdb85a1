//! QoS 0/1/2 delivery: downgrade, order, duplicates, overlapping subscriptions, bounded queues, bursts.

use super::*;

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
async fn qos0_to_a_client_that_never_reads_stays_bounded() {
    let b = TestBroker::with("max_queued_messages = 50", "").await;
    let mut deaf = Raw::v4(b.port, "deaf", true, 0).await;
    deaf.send(&raw::subscribe(1, "deaf/#", 0, None)).await;
    deaf.until_type(9).await;
    let mut p = v4({
        let mut o = v4_opts("deaf-pub", b.port);
        o.set_max_packet_size(1 << 20, 1 << 20);
        o
    })
    .await;
    let chunk = vec![1u8; 20_000];
    // 40 MB: far more than the socket buffers hold.
    for _ in 0..2000 {
        p.publish("deaf/t", QoS::AtMostOnce, false, &chunk).await;
    }
    p.publish("deaf/end", QoS::AtLeastOnce, false, b"").await;
    let session = b.broker.router.session("deaf").expect("session");
    assert!(
        session.lock().queue.len() <= 50,
        "queue {}",
        session.lock().queue.len()
    );
    assert!(session.dropped() > 1000, "dropped {}", session.dropped());
    assert_alive(b.port).await;
    drop(deaf);
    b.stop().await;
}
