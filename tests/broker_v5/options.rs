//! MQTT 5 subscription options (no-local, retain-as-published, retain handling), shared subscriptions, ACL reason codes.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_local_and_retain_as_published() {
    let b = TestBroker::start().await;
    let (mut me, _) = Raw::v5(b.port, "nl", true, 30, &[]).await;
    assert_eq!(
        sub(&mut me, 1, "nl/#", opts(1, true, false, 0), &[]).await,
        vec![1]
    );
    me.send(&raw::publish(
        "nl/mine",
        1,
        9,
        false,
        false,
        Some(&[]),
        b"m",
    ))
    .await;
    assert_eq!(me.until_type(4).await[2..4], 9u16.to_be_bytes());
    no_pub(&mut me).await;
    let mut other = publisher(b.port, "nl-other").await;
    publish(
        &mut other,
        "nl/theirs",
        QoS::AtLeastOnce,
        false,
        b"t",
        PublishProperties::default(),
    )
    .await;
    assert_eq!(&next_pub(&mut me).await.topic[..], b"nl/theirs");

    let (mut rap, _) = Raw::v5(b.port, "rap1", true, 30, &[]).await;
    let (mut norap, _) = Raw::v5(b.port, "rap0", true, 30, &[]).await;
    assert_eq!(
        sub(&mut rap, 1, "rap/#", opts(0, false, true, 0), &[]).await,
        vec![0]
    );
    assert_eq!(
        sub(&mut norap, 1, "rap/#", opts(0, false, false, 0), &[]).await,
        vec![0]
    );
    publish(
        &mut other,
        "rap/x",
        QoS::AtMostOnce,
        true,
        b"r",
        PublishProperties::default(),
    )
    .await;
    assert!(
        next_pub(&mut rap).await.retain,
        "retain-as-published keeps the flag"
    );
    assert!(
        !next_pub(&mut norap).await.retain,
        "without it a live delivery clears the flag"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retain_handling_0_1_2() {
    let b = TestBroker::start().await;
    let mut p = publisher(b.port, "rh-pub").await;
    publish(
        &mut p,
        "rh/t",
        QoS::AtLeastOnce,
        true,
        b"kept",
        PublishProperties::default(),
    )
    .await;
    let (mut r, _) = Raw::v5(b.port, "rh", true, 30, &[]).await;
    // 0: on every subscribe.
    for _ in 0..2 {
        sub(&mut r, 1, "rh/#", opts(0, false, false, 0), &[]).await;
        assert!(next_pub(&mut r).await.retain);
    }
    // 1: only when the subscription is new.
    sub(&mut r, 2, "rh/+", opts(0, false, false, 1), &[]).await;
    assert_eq!(&next_pub(&mut r).await.payload[..], b"kept");
    sub(&mut r, 3, "rh/+", opts(0, false, false, 1), &[]).await;
    no_pub(&mut r).await;
    // 2: never.
    sub(&mut r, 4, "rh/t", opts(0, false, false, 2), &[]).await;
    no_pub(&mut r).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_subscription_gives_each_message_to_exactly_one_member() {
    let b = TestBroker::start().await;
    let mut members = Vec::new();
    for i in 0..3 {
        let (mut r, _) = Raw::v5(b.port, &format!("member{i}"), true, 30, &[]).await;
        assert_eq!(sub(&mut r, 1, "$share/g/sh/#", 1, &[]).await, vec![1]);
        members.push(r);
    }
    let (mut plain, _) = Raw::v5(b.port, "plain", true, 30, &[]).await;
    sub(&mut plain, 1, "sh/#", 0, &[]).await;
    let mut p = publisher(b.port, "sh-pub").await;
    for i in 0..30u8 {
        publish(
            &mut p,
            "sh/t",
            QoS::AtLeastOnce,
            false,
            Box::leak(Box::new([i])),
            PublishProperties::default(),
        )
        .await;
    }
    let mut seen = Vec::new();
    let mut per_member = Vec::new();
    for m in &mut members {
        let mut n = 0;
        while let raw::Got::Frame(mut f) = m.recv(QUIET).await {
            if let Packet::Publish(p) = Packet::read(&mut f, None).unwrap() {
                m.send(&raw::ack(0x40, p.pkid)).await;
                seen.push(p.payload[0]);
                n += 1;
            }
        }
        per_member.push(n);
    }
    seen.sort();
    assert_eq!(
        seen,
        (0..30).collect::<Vec<u8>>(),
        "each message to exactly one member"
    );
    assert!(
        per_member.iter().all(|&n| n > 0),
        "spread over the group: {per_member:?}"
    );
    for _ in 0..30 {
        next_pub(&mut plain).await;
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_refusals_use_0x87() {
    let dir = tempfile::tempdir().unwrap();
    let b = TestBroker::with("", &common::write_auth(dir.path())).await;
    let mut payload = raw::mstr("gw2-5");
    payload.extend(raw::mstr("GW-0002"));
    payload.extend(raw::mstr("pw"));
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect_raw(
        "MQTT",
        5,
        0xC2,
        30,
        Some(&raw::props(&[])),
        &payload,
    ))
    .await;
    assert!(
        matches!(r.v5_packet().await, Packet::ConnAck(c) if c.code == rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success)
    );
    assert_eq!(sub(&mut r, 1, "meters/GW-0001/#", 1, &[]).await, vec![0x87]);
    assert_eq!(sub(&mut r, 2, "meters/GW-0002/#", 1, &[]).await, vec![1]);
    r.send(&raw::publish(
        "meters/GW-0001/x",
        1,
        5,
        false,
        false,
        Some(&[]),
        b"forged",
    ))
    .await;
    let f = r.until_type(4).await;
    assert_eq!(&f[..], &[0x40, 3, 0, 5, 0x87], "PUBACK: not authorized");
    r.send(&raw::publish(
        "meters/GW-0002/x",
        1,
        6,
        false,
        false,
        Some(&[]),
        b"real",
    ))
    .await;
    assert_eq!(&next_pub(&mut r).await.payload[..], b"real");
    b.stop().await;
}
