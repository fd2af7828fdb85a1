//! Retained messages, $SYS topics and wills.

use super::*;

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
