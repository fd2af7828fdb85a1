//! MQTT 5 sessions: takeover, assigned ids, session expiry, will delay, DISCONNECT reasons.

use super::*;

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
    let mut p = publisher(b.port, "se-pub").await;
    publish(
        &mut p,
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
async fn a_clean_start_ends_the_old_session_and_its_delayed_will_goes_out() {
    let b = TestBroker::start().await;
    let (mut w, _) = Raw::v5(b.port, "cs-watch", true, 30, &[]).await;
    sub(&mut w, 1, "wd/#", 1, &[]).await;
    let mut c = Raw::tcp(b.port).await;
    c.send(&will_connect("restarted", 10, 60)).await;
    c.until_type(2).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = Instant::now();
    // The device comes back with a clean start: the old session (and its
    // 10 s will delay) ends now, so the will is due now (MQTT 5 §3.1.3.2.2).
    let (_c, ca) = Raw::v5(b.port, "restarted", true, 30, &[]).await;
    assert!(!ca.session_present);
    let m = next_pub(&mut w).await;
    assert_eq!(&m.topic[..], b"wd/restarted");
    assert!(
        t0.elapsed() < Duration::from_secs(2),
        "will after {:?}",
        t0.elapsed()
    );
    b.stop().await;
}
