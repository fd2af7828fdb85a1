//! MQTT 5 flow control: topic aliases both ways, receive maximum both ways, server keep alive.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alias_from_client_to_broker() {
    let b = TestBroker::start().await;
    let (mut s, _) = Raw::v5(b.port, "ta-sub", true, 30, &[]).await;
    assert_eq!(sub(&mut s, 1, "ta/#", 0, &[]).await, vec![0]);
    let (mut p, _) = Raw::v5(b.port, "ta-pub", true, 30, &[]).await;
    p.send(&raw::publish(
        "ta/x",
        0,
        0,
        false,
        false,
        Some(&p_u16(ALIAS, 3)),
        b"1",
    ))
    .await;
    p.send(&raw::publish(
        "",
        0,
        0,
        false,
        false,
        Some(&p_u16(ALIAS, 3)),
        b"2",
    ))
    .await;
    for want in [b"1", b"2"] {
        let m = next_pub(&mut s).await;
        assert_eq!((&m.topic[..], &m.payload[..]), (&b"ta/x"[..], &want[..]));
    }
    // Unknown alias with an empty topic: protocol error. Alias above the maximum: 0x94.
    p.send(&raw::publish(
        "",
        0,
        0,
        false,
        false,
        Some(&p_u16(ALIAS, 4)),
        b"?",
    ))
    .await;
    assert_eq!(disconnect_reason(&mut p).await, 0x82);
    let (mut p2, _) = Raw::v5(b.port, "ta-pub2", true, 30, &[]).await;
    p2.send(&raw::publish(
        "ta/y",
        0,
        0,
        false,
        false,
        Some(&p_u16(ALIAS, 17)),
        b"?",
    ))
    .await;
    assert_eq!(disconnect_reason(&mut p2).await, 0x94);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_alias_from_broker_to_client_when_allowed() {
    let b = TestBroker::start().await;
    let (mut with, _) = Raw::v5(b.port, "ta-with", true, 30, &p_u16(ALIAS_MAX, 2)).await;
    let (mut without, _) = Raw::v5(b.port, "ta-without", true, 30, &[]).await;
    for r in [&mut with, &mut without] {
        assert_eq!(sub(r, 1, "al/#", 0, &[]).await, vec![0]);
    }
    let mut p = publisher(b.port, "al-pub").await;
    for t in ["al/one", "al/one", "al/two", "al/three", "al/three"] {
        publish(
            &mut p,
            t,
            QoS::AtMostOnce,
            false,
            b".",
            PublishProperties::default(),
        )
        .await;
    }
    let mut known = std::collections::HashMap::new();
    for want in ["al/one", "al/one", "al/two", "al/three", "al/three"] {
        let m = next_pub(&mut with).await;
        let alias = m.properties.as_ref().and_then(|p| p.topic_alias);
        let topic = match (m.topic.is_empty(), alias) {
            (false, Some(a)) => {
                assert!((1..=2).contains(&a), "alias within the client's maximum");
                known.insert(a, String::from_utf8(m.topic.to_vec()).unwrap());
                String::from_utf8(m.topic.to_vec()).unwrap()
            }
            (true, Some(a)) => known
                .get(&a)
                .cloned()
                .expect("alias used before it was set"),
            (false, None) => String::from_utf8(m.topic.to_vec()).unwrap(),
            (true, None) => panic!("empty topic without alias"),
        };
        assert_eq!(topic, want);
    }
    assert!(known.len() == 2, "two aliases assigned: {known:?}");
    for want in ["al/one", "al/one", "al/two", "al/three", "al/three"] {
        let m = next_pub(&mut without).await;
        assert_eq!(&m.topic[..], want.as_bytes());
        assert!(
            m.properties.is_none_or(|p| p.topic_alias.is_none()),
            "no alias without permission"
        );
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_maximum_exceeded_disconnects_with_0x93() {
    let b = TestBroker::with("receive_maximum = 3", "").await;
    // QoS 2 publishes stay unacknowledged (for receive maximum) until PUBCOMP.
    let (mut r, ca) = Raw::v5(b.port, "greedy2", true, 30, &[]).await;
    assert_eq!(ca.properties.unwrap().receive_max, Some(3));
    for id in 1..=4u16 {
        r.send(&raw::publish("rm/t", 2, id, false, false, Some(&[]), b"x"))
            .await;
    }
    assert_eq!(disconnect_reason(&mut r).await, 0x93);
    // Within the limit, with PUBRELs, all is well.
    let (mut ok, _) = Raw::v5(b.port, "polite2", true, 30, &[]).await;
    for round in 0..3u16 {
        for id in 1..=3u16 {
            ok.send(&raw::publish(
                "rm/t",
                2,
                round * 3 + id,
                false,
                false,
                Some(&[]),
                b"x",
            ))
            .await;
        }
        // A PUBCOMP is written as soon as its PUBREL is read, a PUBREC once its publish is
        // routed: they may interleave. Count both, answering each PUBREC with its PUBREL.
        let (mut recs, mut comps) = (0, 0);
        while recs < 3 || comps < 3 {
            let f = ok.frame().await;
            match f[0] >> 4 {
                5 => {
                    recs += 1;
                    ok.send(&raw::ack(0x62, u16::from_be_bytes([f[2], f[3]])))
                        .await;
                }
                7 => comps += 1,
                other => panic!("round {round}: unexpected packet type {other}: {f:02x?}"),
            }
        }
    }
    // QoS 1: a retained QoS 1 publish waits for the store's fsync before its
    // PUBACK, so a burst keeps many unacknowledged at once.
    let (mut r1, _) = Raw::v5(b.port, "greedy1", true, 30, &[]).await;
    assert_eq!(qos1_bursts_until_disconnect(&mut r1).await, 0x93);
    b.stop().await;
}

/// Sends bursts of 50 retained QoS 1 publishes until the broker disconnects,
/// and returns the reason. One burst nearly always does it; a second is sent
/// only when a fast fsync acknowledged a whole burst before it was all read.
async fn qos1_bursts_until_disconnect(r: &mut Raw) -> u8 {
    const BURST: u16 = 50;
    let burst: Vec<u8> = (1..=BURST)
        .flat_map(|id| raw::publish("rm/r", 1, id, false, true, Some(&[]), b"x"))
        .collect();
    for _ in 0..10 {
        r.send(&burst).await;
        let mut acked = 0;
        while acked < BURST {
            let f = r.frame().await;
            match f[0] >> 4 {
                4 => acked += 1,
                14 => {
                    assert!(
                        r.closed_within(WAIT).await,
                        "socket left open after DISCONNECT"
                    );
                    return f[2];
                }
                other => panic!("unexpected packet type {other}"),
            }
        }
    }
    panic!("ten bursts of {BURST} QoS 1 publishes were all acknowledged without a disconnect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_receive_maximum_bounds_the_broker_inflight() {
    let b = TestBroker::start().await;
    let (mut r, _) = Raw::v5(b.port, "rm2", true, 30, &p_u16(0x21, 2)).await;
    sub(&mut r, 1, "w/#", 1, &[]).await;
    let mut p = publisher(b.port, "w-pub").await;
    for _ in 0..5 {
        publish(
            &mut p,
            "w/t",
            QoS::AtLeastOnce,
            false,
            b".",
            PublishProperties::default(),
        )
        .await;
    }
    let mut ids = Vec::new();
    for _ in 0..2 {
        ids.push(raw::publish_pkid(&r.until_type(3).await));
    }
    no_pub(&mut r).await;
    for id in ids {
        r.send(&raw::ack(0x40, id)).await;
    }
    for _ in 0..3 {
        next_pub(&mut r).await;
    }
    no_pub(&mut r).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_keep_alive_is_enforced() {
    let b = TestBroker::with("max_keepalive = 1", "").await;
    let (mut r, ca) = Raw::v5(b.port, "ska", true, 60, &[]).await;
    assert_eq!(ca.properties.unwrap().server_keep_alive, Some(1));
    let t0 = Instant::now();
    assert_eq!(disconnect_reason(&mut r).await, 0x8D, "keep alive timeout");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1400) && took < Duration::from_millis(2500),
        "{took:?}"
    );
    b.stop().await;
}
