//! MQTT 5 properties: CONNACK, reason codes, subscription identifiers, message expiry, user properties, maximum packet size.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connack_properties_and_reason_codes() {
    let b = TestBroker::with("max_keepalive = 10\nreceive_maximum = 20", "").await;
    let (mut r, ca) = Raw::v5(b.port, "rc", true, 60, &[]).await;
    let p = ca.properties.expect("CONNACK properties");
    assert_eq!(p.receive_max, Some(20));
    assert_eq!(
        p.server_keep_alive,
        Some(10),
        "keepalive above max_keepalive is lowered"
    );
    assert_eq!(p.max_packet_size, Some(1 << 20));
    assert_eq!(p.topic_alias_max, Some(16));
    assert_eq!(p.shared_subscription_available, Some(1));
    assert_eq!(
        sub(&mut r, 1, "a/#/b", 1, &[]).await,
        vec![0x8F],
        "invalid filter"
    );
    assert_eq!(sub(&mut r, 2, "a/+", 2, &[]).await, vec![2]);
    r.send(&raw::frame(
        0xA2,
        &[&[0, 3, 0][..], &raw::mstr("never/subscribed")].concat(),
    ))
    .await;
    match r.v5_packet().await {
        Packet::UnsubAck(u) => assert_eq!(
            u.reasons,
            vec![rumqttc::v5::mqttbytes::v5::UnsubAckReason::NoSubscriptionExisted]
        ),
        other => panic!("{other:?}"),
    }
    // A client asking for keepalive 5 (under the cap) gets no server keep alive.
    let (_r2, ca2) = Raw::v5(b.port, "rc2", true, 5, &[]).await;
    assert_eq!(ca2.properties.unwrap().server_keep_alive, None);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_subscriptions_carry_every_identifier() {
    let b = TestBroker::start().await;
    let (mut r, _) = Raw::v5(b.port, "ids", true, 30, &[]).await;
    assert_eq!(sub(&mut r, 1, "ids/#", 0, &p_var(SUB_ID, 1)).await, vec![0]);
    assert_eq!(sub(&mut r, 2, "ids/+", 1, &p_var(SUB_ID, 2)).await, vec![1]);
    assert_eq!(
        sub(&mut r, 3, "ids/a", 0, &p_var(SUB_ID, 300)).await,
        vec![0]
    );
    let mut p = publisher(b.port, "ids-pub").await;
    publish(
        &mut p,
        "ids/a",
        QoS::ExactlyOnce,
        false,
        b"x",
        PublishProperties::default(),
    )
    .await;
    // Parsed by hand: rumqttc 0.25's property reader miscounts subscription
    // identifiers (`cursor += 1 + id_len`) and loses the last of several.
    let f = r.until_type(3).await;
    assert_eq!((f[0] >> 1) & 3, 1, "max granted QoS");
    let mut ids = publish_sub_ids(&f);
    ids.sort();
    assert_eq!(ids, vec![1, 2, 300]);
    no_pub(&mut r).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_expiry_drops_expired_and_forwards_remaining() {
    let b = TestBroker::start().await;
    let mut p = publisher(b.port, "exp-pub").await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    let long = PublishProperties {
        message_expiry_interval: Some(60),
        ..Default::default()
    };
    publish(
        &mut p,
        "exp/short",
        QoS::AtLeastOnce,
        true,
        b"s",
        short.clone(),
    )
    .await;
    publish(&mut p, "exp/long", QoS::AtLeastOnce, true, b"l", long).await;
    // A persistent subscriber that is offline while a short-lived message waits for it.
    let (mut off, _) = Raw::v5(b.port, "exp-off", true, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    assert_eq!(sub(&mut off, 1, "q/exp", 1, &[]).await, vec![1]);
    // Drain the retained deliveries of nothing, then go away.
    off.send(&raw::disconnect()).await;
    assert!(off.closed_within(WAIT).await);
    publish(&mut p, "q/exp", QoS::AtLeastOnce, false, b"late", short).await;
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let (mut s, _) = Raw::v5(b.port, "exp-sub", true, 30, &[]).await;
    assert_eq!(sub(&mut s, 1, "exp/#", 1, &[]).await, vec![1]);
    let m = next_pub(&mut s).await;
    assert_eq!(
        &m.topic[..],
        b"exp/long",
        "expired retained message not delivered"
    );
    let left = m.properties.unwrap().message_expiry_interval.unwrap();
    assert!(
        (57..=60).contains(&left),
        "remaining expiry forwarded: {left}"
    );
    no_pub(&mut s).await;
    let (mut back, ca) = Raw::v5(b.port, "exp-off", false, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    assert!(ca.session_present);
    no_pub(&mut back).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_respects_the_clients_maximum_packet_size() {
    let b = TestBroker::start().await;
    let (mut s, _) = Raw::v5(b.port, "small", true, 30, &p_u32(MAX_PACKET, 100)).await;
    assert_eq!(sub(&mut s, 1, "mp/#", 1, &[]).await, vec![1]);
    let mut p = publisher(b.port, "mp-pub").await;
    publish(
        &mut p,
        "mp/big",
        QoS::AtLeastOnce,
        false,
        &[b'x'; 500],
        PublishProperties::default(),
    )
    .await;
    publish(
        &mut p,
        "mp/small",
        QoS::AtLeastOnce,
        false,
        b"tiny",
        PublishProperties::default(),
    )
    .await;
    let m = next_pub(&mut s).await;
    assert_eq!(&m.topic[..], b"mp/small", "oversized message skipped");
    no_pub(&mut s).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_properties_and_other_publish_properties_pass_through() {
    let b = TestBroker::start().await;
    let mut s = v5(v5_opts("up-sub", b.port)).await;
    s.client.subscribe("up/#", QoS::AtLeastOnce).await.unwrap();
    s.suback().await;
    let mut p = publisher(b.port, "up-pub").await;
    let props = PublishProperties {
        user_properties: vec![
            ("k".into(), "v1".into()),
            ("k".into(), "v2".into()),
            ("site".into(), "GW-0001".into()),
        ],
        content_type: Some("application/json".into()),
        response_topic: Some("up/reply".into()),
        correlation_data: Some(Bytes::from_static(b"corr")),
        payload_format_indicator: Some(1),
        ..Default::default()
    };
    publish(
        &mut p,
        "up/a",
        QoS::AtLeastOnce,
        false,
        b"{}",
        props.clone(),
    )
    .await;
    let got = s.expect_publish().await.properties.unwrap();
    assert_eq!(
        got.user_properties, props.user_properties,
        "in order, duplicates kept"
    );
    assert_eq!(got.content_type, props.content_type);
    assert_eq!(got.response_topic, props.response_topic);
    assert_eq!(got.correlation_data, props.correlation_data);
    assert_eq!(got.payload_format_indicator, Some(1));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_identifier_rules() {
    let b = TestBroker::start().await;
    let (mut r, _) = Raw::v5(b.port, "sid0", true, 30, &[]).await;
    r.send(&raw::subscribe(1, "x", 1, Some(&p_var(SUB_ID, 0))))
        .await;
    let code = disconnect_reason(&mut r).await;
    assert!(code == 0x81 || code == 0x82, "identifier 0: {code:#x}");
    let (mut r, _) = Raw::v5(b.port, "sidpub", true, 30, &[]).await;
    r.send(&raw::publish(
        "x",
        0,
        0,
        false,
        false,
        Some(&p_var(SUB_ID, 3)),
        b"x",
    ))
    .await;
    let code = disconnect_reason(&mut r).await;
    assert!(
        code == 0x81 || code == 0x82,
        "identifier in a client PUBLISH: {code:#x}"
    );
    b.stop().await;
}
