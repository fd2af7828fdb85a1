//! The local broker speaking MQTT 5: reason codes, properties, session and
//! message expiry, topic aliases, receive maximum, maximum packet size,
//! subscription options, shared subscriptions, will delay. rumqttc v5 where
//! a real client fits, raw sockets where the test needs exact bytes.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::{self, Raw, p_u16, p_u32, p_var};
use common::{QUIET, TestBroker, V5, WAIT, v5, v5_opts};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties, SubscribeReasonCode};

const SESSION_EXPIRY: u8 = 0x11;
const MAX_PACKET: u8 = 0x27;
const ALIAS_MAX: u8 = 0x22;
const ALIAS: u8 = 0x23;
const SUB_ID: u8 = 0x0B;
const WILL_DELAY: u8 = 0x18;

/// Subscription options byte: QoS, no-local, retain-as-published, retain handling.
fn opts(qos: u8, no_local: bool, rap: bool, rh: u8) -> u8 {
    qos | u8::from(no_local) << 2 | u8::from(rap) << 3 | rh << 4
}

async fn sub(r: &mut Raw, pkid: u16, filter: &str, o: u8, props: &[u8]) -> Vec<u8> {
    r.send(&raw::subscribe(pkid, filter, o, Some(props))).await;
    match r.v5_packet().await {
        Packet::SubAck(s) => s
            .return_codes
            .iter()
            .map(|c| match c {
                SubscribeReasonCode::Success(q) => *q as u8,
                SubscribeReasonCode::NotAuthorized => 0x87,
                SubscribeReasonCode::TopicFilterInvalid => 0x8F,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Next PUBLISH on a raw v5 connection (acknowledging QoS 1 so the window stays open).
async fn next_pub(r: &mut Raw) -> Publish {
    loop {
        if let Packet::Publish(p) = r.v5_packet().await {
            if p.qos == QoS::AtLeastOnce {
                r.send(&raw::ack(0x40, p.pkid)).await;
            }
            return p;
        }
    }
}

async fn no_pub(r: &mut Raw) {
    if let raw::Got::Frame(f) = r.recv(QUIET).await {
        panic!("unexpected packet {f:?}");
    }
}

/// Skips to the broker's DISCONNECT and returns its reason code; the socket must then close.
async fn disconnect_reason(r: &mut Raw) -> u8 {
    let f = r.until_type(14).await;
    assert!(
        r.closed_within(WAIT).await,
        "socket left open after DISCONNECT"
    );
    f[2]
}

/// Subscription identifiers of a raw MQTT 5 PUBLISH frame.
fn publish_sub_ids(f: &[u8]) -> Vec<usize> {
    fn var(b: &[u8], at: &mut usize) -> usize {
        let (mut v, mut shift) = (0, 0);
        loop {
            let x = b[*at];
            *at += 1;
            v |= usize::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    let mut at = 1;
    var(f, &mut at);
    let tlen = usize::from(u16::from_be_bytes([f[at], f[at + 1]]));
    at += 2 + tlen + if (f[0] >> 1) & 3 > 0 { 2 } else { 0 };
    let plen = var(f, &mut at);
    let end = at + plen;
    let mut ids = Vec::new();
    while at < end {
        let id = f[at];
        at += 1;
        let str_len = |at: usize| 2 + usize::from(u16::from_be_bytes([f[at], f[at + 1]]));
        match id {
            0x01 => at += 1,
            0x02 => at += 4,
            0x23 => at += 2,
            0x03 | 0x08 | 0x09 => at += str_len(at),
            0x26 => {
                at += str_len(at);
                at += str_len(at);
            }
            0x0B => ids.push(var(f, &mut at)),
            other => panic!("unexpected property {other:#x}"),
        }
    }
    ids
}

async fn publisher(port: u16, id: &str) -> V5 {
    v5(v5_opts(id, port)).await
}

async fn publish(
    p: &V5,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: &'static [u8],
    props: PublishProperties,
) {
    p.client
        .publish_with_properties(topic, qos, retain, Bytes::from_static(payload), props)
        .await
        .unwrap();
}

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
    let p = publisher(b.port, "ids-pub").await;
    publish(
        &p,
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
    let p = publisher(b.port, "exp-pub").await;
    let short = PublishProperties {
        message_expiry_interval: Some(1),
        ..Default::default()
    };
    let long = PublishProperties {
        message_expiry_interval: Some(60),
        ..Default::default()
    };
    publish(&p, "exp/short", QoS::AtLeastOnce, true, b"s", short.clone()).await;
    publish(&p, "exp/long", QoS::AtLeastOnce, true, b"l", long).await;
    // A persistent subscriber that is offline while a short-lived message waits for it.
    let (mut off, _) = Raw::v5(b.port, "exp-off", true, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    assert_eq!(sub(&mut off, 1, "q/exp", 1, &[]).await, vec![1]);
    // Drain the retained deliveries of nothing, then go away.
    off.send(&raw::disconnect()).await;
    assert!(off.closed_within(WAIT).await);
    publish(&p, "q/exp", QoS::AtLeastOnce, false, b"late", short).await;
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
    let p = publisher(b.port, "al-pub").await;
    for t in ["al/one", "al/one", "al/two", "al/three", "al/three"] {
        publish(
            &p,
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
        for id in 1..=3u16 {
            ok.until_type(5).await;
            ok.send(&raw::ack(0x62, round * 3 + id)).await;
        }
        for _ in 1..=3u16 {
            ok.until_type(7).await;
        }
    }
    // QoS 1: a retained QoS 1 publish waits for the store's fsync before its
    // PUBACK, so a burst keeps many unacknowledged at once.
    let (mut r1, _) = Raw::v5(b.port, "greedy1", true, 30, &[]).await;
    let burst: Vec<u8> = (1..=50u16)
        .flat_map(|id| raw::publish("rm/r", 1, id, false, true, Some(&[]), b"x"))
        .collect();
    r1.send(&burst).await;
    assert_eq!(disconnect_reason(&mut r1).await, 0x93);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_respects_the_clients_maximum_packet_size() {
    let b = TestBroker::start().await;
    let (mut s, _) = Raw::v5(b.port, "small", true, 30, &p_u32(MAX_PACKET, 100)).await;
    assert_eq!(sub(&mut s, 1, "mp/#", 1, &[]).await, vec![1]);
    let p = publisher(b.port, "mp-pub").await;
    publish(
        &p,
        "mp/big",
        QoS::AtLeastOnce,
        false,
        &[b'x'; 500],
        PublishProperties::default(),
    )
    .await;
    publish(
        &p,
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
    let p = publisher(b.port, "up-pub").await;
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
    publish(&p, "up/a", QoS::AtLeastOnce, false, b"{}", props.clone()).await;
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
    let other = publisher(b.port, "nl-other").await;
    publish(
        &other,
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
        &other,
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
    let p = publisher(b.port, "rh-pub").await;
    publish(
        &p,
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
    let p = publisher(b.port, "sh-pub").await;
    for i in 0..30u8 {
        publish(
            &p,
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
async fn takeover_sends_disconnect_0x8e() {
    let b = TestBroker::start().await;
    let (mut first, _) = Raw::v5(b.port, "tk", true, 30, &[]).await;
    let (_second, _) = Raw::v5(b.port, "tk", true, 30, &[]).await;
    assert_eq!(disconnect_reason(&mut first).await, 0x8E);
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_client_id_gets_an_assigned_id() {
    let b = TestBroker::start().await;
    let (_r, ca) = Raw::v5(b.port, "", true, 30, &[]).await;
    let id = ca
        .properties
        .unwrap()
        .assigned_client_identifier
        .expect("assigned id");
    assert!(!id.is_empty());
    let (_r2, ca2) = Raw::v5(b.port, "", true, 30, &[]).await;
    assert_ne!(
        ca2.properties.unwrap().assigned_client_identifier.unwrap(),
        id,
        "ids are unique"
    );
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_ends_the_session() {
    // sys_interval 10s: the expiry sweep runs only every 5s, so a reconnect
    // after 2s must find the 1s session gone by itself, not by the sweep.
    let b = TestBroker::with_sys("10s", "", "").await;
    let (mut r, _) = Raw::v5(b.port, "short", true, 30, &p_u32(SESSION_EXPIRY, 1)).await;
    sub(&mut r, 1, "se/#", 1, &[]).await;
    r.send(&raw::disconnect()).await;
    assert!(r.closed_within(WAIT).await);
    let (mut l, _) = Raw::v5(b.port, "long", true, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    sub(&mut l, 1, "se/#", 1, &[]).await;
    l.send(&raw::disconnect()).await;
    assert!(l.closed_within(WAIT).await);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let p = publisher(b.port, "se-pub").await;
    publish(
        &p,
        "se/x",
        QoS::AtLeastOnce,
        false,
        b"x",
        PublishProperties::default(),
    )
    .await;
    let (mut r, ca) = Raw::v5(b.port, "short", false, 30, &p_u32(SESSION_EXPIRY, 1)).await;
    assert!(!ca.session_present, "expired session resumed");
    no_pub(&mut r).await;
    let (mut l, ca) = Raw::v5(b.port, "long", false, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    assert!(ca.session_present);
    assert_eq!(&next_pub(&mut l).await.topic[..], b"se/x");
    b.stop().await;
}

fn will_connect(id: &str, delay: u32, session_expiry: u32) -> Vec<u8> {
    let mut payload = raw::mstr(id);
    payload.extend(raw::props(&[p_u32(WILL_DELAY, delay)]));
    payload.extend(raw::mstr(&format!("wd/{id}")));
    payload.extend(raw::mbin(b"late"));
    let props = raw::props(&[p_u32(SESSION_EXPIRY, session_expiry)]);
    raw::connect_raw("MQTT", 5, 0x02 | 0x04 | 0x08, 30, Some(&props), &payload)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn will_delay_is_honoured_and_cancelled_by_reconnect() {
    let b = TestBroker::start().await;
    let (mut w, _) = Raw::v5(b.port, "wd-watch", true, 30, &[]).await;
    sub(&mut w, 1, "wd/#", 1, &[]).await;
    let mut dies = Raw::tcp(b.port).await;
    dies.send(&will_connect("dies", 2, 30)).await;
    dies.until_type(2).await;
    let mut back = Raw::tcp(b.port).await;
    back.send(&will_connect("back", 2, 30)).await;
    back.until_type(2).await;
    let t0 = Instant::now();
    drop(dies);
    drop(back);
    tokio::time::sleep(Duration::from_millis(800)).await;
    // "back" reconnects within its will delay: its will is cancelled.
    let (_back2, ca) = Raw::v5(b.port, "back", false, 30, &p_u32(SESSION_EXPIRY, 30)).await;
    assert!(ca.session_present);
    let m = next_pub(&mut w).await;
    let at = t0.elapsed();
    assert_eq!(&m.topic[..], b"wd/dies");
    assert!(
        at >= Duration::from_millis(1900) && at < Duration::from_millis(2900),
        "will after {at:?}"
    );
    if let raw::Got::Frame(f) = w.recv(Duration::from_millis(1500)).await {
        panic!("cancelled will published: {f:?}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_clients_receive_maximum_bounds_the_broker_inflight() {
    let b = TestBroker::start().await;
    let (mut r, _) = Raw::v5(b.port, "rm2", true, 30, &p_u16(0x21, 2)).await;
    sub(&mut r, 1, "w/#", 1, &[]).await;
    let p = publisher(b.port, "w-pub").await;
    for _ in 0..5 {
        publish(
            &p,
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_reasons_and_session_expiry_on_disconnect() {
    let b = TestBroker::start().await;
    let (mut w, _) = Raw::v5(b.port, "dw-watch", true, 30, &[]).await;
    sub(&mut w, 1, "wd/#", 1, &[]).await;
    // 0x04: disconnect with will message.
    let mut c = Raw::tcp(b.port).await;
    c.send(&will_connect("withwill", 0, 0)).await;
    c.until_type(2).await;
    c.send(&raw::frame(0xE0, &[0x04, 0])).await;
    assert_eq!(&next_pub(&mut w).await.topic[..], b"wd/withwill");
    // Session expiry 0 on CONNECT cannot become non-zero on DISCONNECT.
    let (mut c, _) = Raw::v5(b.port, "zero", true, 30, &[]).await;
    c.send(&raw::frame(
        0xE0,
        &[&[0u8][..], &raw::props(&[p_u32(SESSION_EXPIRY, 60)])].concat(),
    ))
    .await;
    assert_eq!(disconnect_reason(&mut c).await, 0x82);
    // A persistent session can be ended by DISCONNECT with expiry 0.
    let (mut c, _) = Raw::v5(b.port, "ending", true, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    sub(&mut c, 1, "end/#", 1, &[]).await;
    c.send(&raw::frame(
        0xE0,
        &[&[0u8][..], &raw::props(&[p_u32(SESSION_EXPIRY, 0)])].concat(),
    ))
    .await;
    assert!(c.closed_within(WAIT).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_c, ca) = Raw::v5(b.port, "ending", false, 30, &p_u32(SESSION_EXPIRY, 60)).await;
    assert!(
        !ca.session_present,
        "session should have ended with the connection"
    );
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
