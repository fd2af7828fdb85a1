//! Keepalive, takeover, client ids, persistent sessions and resumption.

use super::*;

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
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
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
