//! Hostile and broken input: each case closes only the offending connection,
//! promptly, and the broker keeps serving everyone else.

mod common;

use std::time::{Duration, Instant};

use common::raw::{self, Got, Raw};
use common::{TestBroker, WAIT, v4, v4_opts};
use edgemq::broker::stats::Stats;
use rumqttc::QoS;

/// A client can still subscribe and receive: the broker carries on.
async fn assert_alive(port: u16) {
    let mut s = v4(v4_opts(&format!("alive-{}", common::free_port()), port)).await;
    s.subscribe("alive/check", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts(&format!("alive-p-{}", common::free_port()), port)).await;
    p.publish("alive/check", QoS::AtLeastOnce, false, b"ok")
        .await;
    assert_eq!(&s.expect_publish().await.payload[..], b"ok");
}

/// An MQTT 5 client must see DISCONNECT with `reason`, then the close.
async fn v5_disconnected_with(r: &mut Raw, reason: u8) {
    let f = r.until_type(14).await;
    assert_eq!(f[2], reason, "DISCONNECT reason");
    assert!(r.closed_within(WAIT).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_packet_then_close() {
    let b = TestBroker::start().await;
    let mut r = Raw::v4(b.port, "trunc", true, 30).await;
    let full = raw::publish("t/x", 1, 1, false, false, None, &[7u8; 100]);
    r.send(&full[..20]).await;
    drop(r);
    // Truncated CONNECT too.
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect4("half", true, 30)[..8]).await;
    drop(r);
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remaining_length_over_the_limit_is_a_clean_close() {
    let b = TestBroker::with("max_packet_size = \"1KiB\"", "").await;
    let mut r = Raw::v4(b.port, "huge", true, 30).await;
    let t0 = Instant::now();
    // Claims 268 MB; the broker must refuse from the header, not buffer it.
    r.send(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0, 3, b'a', b'/', b'b'])
        .await;
    assert!(r.closed_within(WAIT).await, "oversized packet not refused");
    assert!(t0.elapsed() < Duration::from_secs(1));
    // Just over the limit, sent in full.
    let mut r = Raw::v4(b.port, "big", true, 30).await;
    r.send(&raw::publish(
        "t/big",
        0,
        0,
        false,
        false,
        None,
        &[1u8; 1100],
    ))
    .await;
    assert!(r.closed_within(WAIT).await);
    // Before CONNECT as well; and a malformed (5-byte) remaining length.
    let mut r = Raw::tcp(b.port).await;
    r.send(&[0x10, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    assert!(r.closed_within(WAIT).await);
    let mut r = Raw::v4(b.port, "bad-len", true, 30).await;
    r.send(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]).await;
    assert!(r.closed_within(WAIT).await);
    // MQTT 5: told why (0x95 packet too large, or 0x81 malformed).
    let (mut r, _) = Raw::v5(b.port, "huge5", true, 30, &[]).await;
    r.send(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F]).await;
    let f = r.until_type(14).await;
    assert_eq!(f[2], 0x95, "packet too large");
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_before_connect_is_refused() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("watch", b.port)).await;
    s.subscribe("#", QoS::AtMostOnce).await;
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::publish("early/bird", 0, 0, false, false, None, b"x"))
        .await;
    assert!(r.closed_within(WAIT).await);
    s.expect_none().await;
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_connect_is_a_protocol_violation() {
    let b = TestBroker::start().await;
    let mut r = Raw::v4(b.port, "twice", true, 30).await;
    r.send(&raw::connect4("twice", true, 30)).await;
    assert!(r.closed_within(WAIT).await);
    let (mut r, _) = Raw::v5(b.port, "twice5", true, 30, &[]).await;
    r.send(&raw::connect5("twice5", true, 30, &[])).await;
    v5_disconnected_with(&mut r, 0x82).await;
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_topic_closes_the_connection() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("watch", b.port)).await;
    s.subscribe("#", QoS::AtMostOnce).await;
    let mut r = Raw::v4(b.port, "utf8", true, 30).await;
    let mut body = vec![0, 2, 0xC3, 0x28];
    body.extend_from_slice(b"payload");
    r.send(&raw::frame(0x30, &body)).await;
    assert!(r.closed_within(WAIT).await);
    // A NUL character is valid UTF-8 but not allowed in a topic.
    let mut r = Raw::v4(b.port, "nul", true, 30).await;
    r.send(&raw::publish("a\0b", 0, 0, false, false, None, b"x"))
        .await;
    assert!(r.closed_within(WAIT).await);
    let (mut r, _) = Raw::v5(b.port, "utf8-5", true, 30, &[]).await;
    let mut body = vec![0, 2, 0xC3, 0x28, 0];
    body.extend_from_slice(b"payload");
    r.send(&raw::frame(0x30, &body)).await;
    let f = r.until_type(14).await;
    assert!(f[2] == 0x81 || f[2] == 0x90, "reason {:#x}", f[2]);
    s.expect_none().await;
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_in_publish_topic_closes_the_connection() {
    let b = TestBroker::start().await;
    let mut s = v4(v4_opts("watch", b.port)).await;
    s.subscribe("#", QoS::AtMostOnce).await;
    let mut r = Raw::v4(b.port, "wild", true, 30).await;
    r.send(&raw::publish("a/+/b", 1, 1, false, false, None, b"x"))
        .await;
    assert!(r.closed_within(WAIT).await);
    let (mut r, _) = Raw::v5(b.port, "wild5", true, 30, &[]).await;
    r.send(&raw::publish("a/#", 0, 0, false, false, Some(&[]), b"x"))
        .await;
    v5_disconnected_with(&mut r, 0x90).await;
    s.expect_none().await;
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_connect_is_closed_after_connect_timeout() {
    let b = TestBroker::with("connect_timeout = \"1s\"", "").await;
    let mut r = Raw::tcp(b.port).await;
    let t0 = Instant::now();
    assert!(r.closed_within(Duration::from_secs(3)).await);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(1800),
        "closed after {took:?}"
    );
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_opened_and_dropped() {
    let b = TestBroker::start().await;
    let t0 = Instant::now();
    for i in 0..1000u32 {
        let mut r = Raw::tcp(b.port).await;
        match i % 4 {
            0 => {}
            1 => r.send(&raw::connect4(&format!("flood{i}"), true, 30)).await,
            2 => {
                r.send(&raw::connect4(&format!("flood{i}"), true, 30)[..5])
                    .await
            }
            _ => {
                r.send(&raw::connect4(&format!("flood{i}"), true, 30)).await;
                r.send(&raw::subscribe(1, "flood/#", 1, None)).await;
            }
        }
        drop(r);
    }
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "flood took {:?}",
        t0.elapsed()
    );
    // Every connection task ends; nothing stays behind.
    let deadline = Instant::now() + WAIT;
    while Stats::get(&b.broker.stats.clients_connected) > 0
        || !b.broker.router.sessions().is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "{} clients still connected",
            Stats::get(&b.broker.stats.clients_connected)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(b.broker.router.subscription_count(), 0);
    // The connection tasks themselves are gone (what is left: $SYS, bridge inbound).
    assert!(
        b.broker.tracker.len() < 5,
        "{} tasks left",
        b.broker.tracker.len()
    );
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_is_enforced() {
    let b = TestBroker::with("max_connections = 4", "").await;
    let mut held = Vec::new();
    for i in 0..4 {
        held.push(Raw::v4(b.port, &format!("hold{i}"), true, 30).await);
    }
    let mut extra = Raw::tcp(b.port).await;
    let _ = extra.try_send(&raw::connect4("extra", true, 30)).await;
    match extra.recv(WAIT).await {
        Got::Closed => {}
        other => panic!("fifth connection not refused: {other:?}"),
    }
    assert!(Stats::get(&b.broker.stats.connections_refused) >= 1);
    held.pop();
    // The permit comes back once the connection task has ended.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut r = Raw::tcp(b.port).await;
        let _ = r.try_send(&raw::connect4("again", true, 30)).await;
        if let Got::Frame(f) = r.recv(WAIT).await {
            assert_eq!(&f[..], &[0x20, 2, 0, 0]);
            break;
        }
        assert!(Instant::now() < deadline, "slot never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_malformed_packets_close_the_connection() {
    let b = TestBroker::start().await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "empty topic",
            raw::publish("", 0, 0, false, false, None, b"x"),
        ),
        ("QoS 3 publish", raw::frame(0x36, &[0, 1, b'a', 0, 1])),
        ("SUBSCRIBE without filters", raw::frame(0x82, &[0, 1])),
        ("UNSUBSCRIBE without filters", raw::frame(0xA2, &[0, 1])),
        (
            "SUBSCRIBE with wrong flags",
            raw::frame(0x80, &[0, 1, 0, 1, b'a', 0]),
        ),
        ("reserved packet type 0", vec![0x00, 0x00]),
        ("CONNACK from a client", vec![0x20, 2, 0, 0]),
        (
            "QoS 1 publish with packet id 0",
            raw::publish("a", 1, 0, false, false, None, b"x"),
        ),
    ];
    for (what, bytes) in cases {
        let mut r = Raw::v4(b.port, "malformed", true, 30).await;
        r.send(&bytes).await;
        assert!(r.closed_within(WAIT).await, "{what}: connection left open");
    }
    // A CONNECT whose reserved flag bit is set.
    let mut r = Raw::tcp(b.port).await;
    r.send(&raw::connect_raw(
        "MQTT",
        4,
        0x03,
        30,
        None,
        &raw::mstr("reserved"),
    ))
    .await;
    assert!(
        r.closed_within(WAIT).await,
        "reserved CONNECT flag accepted"
    );
    assert_alive(b.port).await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_are_logged_with_the_client_at_warn_level() {
    let dir = tempfile::tempdir().unwrap();
    let b = common::BinBroker::start_logging(dir.path(), "warn", "max_packet_size = \"1KiB\"", "");
    let mut r = Raw::v4(b.port, "named-client", true, 30).await;
    r.send(&raw::publish("a/+", 0, 0, false, false, None, b"x"))
        .await;
    assert!(r.closed_within(WAIT).await);
    let (mut r, _) = Raw::v5(b.port, "big-client", true, 30, &[]).await;
    r.send(&raw::publish(
        "big",
        0,
        0,
        false,
        false,
        Some(&[]),
        &[0u8; 2000],
    ))
    .await;
    v5_disconnected_with(&mut r, 0x95).await;
    let log = b.log();
    let line = log
        .lines()
        .find(|l| l.contains("wildcard"))
        .unwrap_or_else(|| panic!("no violation logged:\n{log}"));
    assert!(
        line.contains("named-client") && line.contains("WARN"),
        "{line}"
    );
    let line = log
        .lines()
        .find(|l| l.contains("exceeds the maximum packet size"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("big-client"), "{line}");
    assert!(!log.contains(" INFO "), "info lines at warn level:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_flag_and_subscription_option_rules() {
    let b = TestBroker::with("max_keepalive = 10", "").await;
    let will = [raw::mstr("w"), raw::mstr("t"), raw::mstr("m")].concat();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "will QoS without will",
            raw::connect_raw("MQTT", 4, 0x0A, 5, None, &raw::mstr("a")),
        ),
        (
            "will retain without will",
            raw::connect_raw("MQTT", 4, 0x22, 5, None, &raw::mstr("b")),
        ),
        (
            "will QoS 3",
            raw::connect_raw("MQTT", 4, 0x1E, 5, None, &will),
        ),
        (
            "password without user name",
            raw::connect_raw(
                "MQTT",
                4,
                0x42,
                5,
                None,
                &[raw::mstr("c"), raw::mstr("pw")].concat(),
            ),
        ),
    ];
    for (what, bytes) in cases {
        let mut r = Raw::tcp(b.port).await;
        r.send(&bytes).await;
        match r.recv(WAIT).await {
            Got::Closed => {}
            other => panic!("{what}: accepted ({other:?})"),
        }
    }
    // 3.1.1 cannot be told a lower keepalive: refused like Mosquitto does.
    for ka in [60, 0] {
        let mut r = Raw::tcp(b.port).await;
        r.send(&raw::connect4("slowpoke", true, ka)).await;
        assert_eq!(&r.frame().await[..], &[0x20, 2, 0, 2], "keepalive {ka}");
        assert!(r.closed_within(WAIT).await);
    }
    let mut r = Raw::v4(b.port, "subopts", true, 5).await;
    r.send(&raw::subscribe(1, "x", 0x41, None)).await;
    assert!(
        r.closed_within(WAIT).await,
        "3.1.1 reserved option bits accepted"
    );
    let (mut r, _) = Raw::v5(b.port, "subopts5", true, 5, &[]).await;
    r.send(&raw::subscribe(1, "x", 0x81, Some(&[]))).await;
    v5_disconnected_with(&mut r, 0x81).await;
    let (mut r, _) = Raw::v5(b.port, "rh3", true, 5, &[]).await;
    r.send(&raw::subscribe(1, "x", 0x30, Some(&[]))).await;
    v5_disconnected_with(&mut r, 0x81).await;
    let mut ok = Raw::v4(b.port, "fine", true, 5).await;
    ok.send(&raw::subscribe(1, "x", 0x01, None)).await;
    assert_eq!(&ok.frame().await[..], &[0x90, 3, 0, 1, 1]);
    b.stop().await;
}
