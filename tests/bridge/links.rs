//! The link itself: inbound rules with a local prefix and no loops (3.1.1 and 5), TLS failures
//! named with messages kept, failover to a second address and failback.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_messages_get_local_prefix_and_never_loop_mqtt311() {
    inbound_case("mqtt311").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_messages_get_local_prefix_and_never_loop_mqtt5() {
    inbound_case("mqtt5").await;
}

async fn inbound_case(protocol: &str) {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let rules = format!(
        "{OUT_RULE}[[topic]]\npattern = \"cmd/#\"\ndirection = \"both\"\nlocal_prefix = \"central/\"\n\
         remote_prefix = \"meters/GW-0001/\"\n"
    );
    let top = format!("protocol = {protocol:?}\nmessage_id_property = true");
    let cfg = w.config(
        protocol,
        &[w.central.address()],
        "GW-0001",
        &top,
        &w.ca(),
        &rules,
    );
    let mut edge = Edge::start(&cfg, &w.data(protocol), true);
    let mut inbound = edge.inbound.take().unwrap();

    // The local retained state notification comes first ("0", then "1").
    let state = next_matching(&mut inbound, |m| {
        &*m.topic == "meters/GW-0001/bridge/state" && &m.payload[..] == b"1"
    })
    .await;
    assert!(state.retain && state.origin == Origin::Broker);

    // Publish at the central broker until the bridge's subscription is in place.
    let deadline = Instant::now() + WAIT;
    let msg = loop {
        observer
            .client
            .publish(
                "meters/GW-0001/cmd/reboot",
                rumqttc::QoS::AtLeastOnce,
                false,
                "now",
            )
            .await
            .unwrap();
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            next_matching(&mut inbound, |m| m.topic.starts_with("central/")).await
        })
        .await;
        if let Ok(m) = got {
            break m;
        }
        assert!(Instant::now() < deadline, "no inbound message");
    };
    assert_eq!(&*msg.topic, "central/cmd/reboot");
    assert_eq!(&msg.payload[..], b"now");
    assert_eq!(msg.origin, Origin::Bridge(protocol.into()));
    assert!(
        edge.handle.offer(&msg).is_none(),
        "came over this bridge: not sent back"
    );

    // A local message on the both-way topic goes out, and the central broker
    // does not echo it back to the bridge (bridge bit / no-local).
    let local = Message::new(
        "central/cmd/ack",
        &b"done"[..],
        QoS::AtLeastOnce,
        false,
        Origin::Client("hub".into()),
    );
    edge.handle.offer(&local).unwrap().await.unwrap().unwrap();
    let out = observer.collect("meters/GW-0001/cmd/ack", 1, WAIT).await;
    assert_eq!(out.len(), 1);
    let echo = tokio::time::timeout(Duration::from_secs(1), async {
        next_matching(&mut inbound, |m| &*m.topic == "central/cmd/ack").await
    })
    .await;
    assert!(
        echo.is_err(),
        "the central broker echoed our own message back"
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_name_the_check_and_keep_messages() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let addr = [w.central.address()];
    let other_ca = format!("ca = {:?}", w.pki.path("other-ca.crt"));
    let wrong_name = format!("{}\nserver_name = \"wrong.example.com\"", w.ca());
    let cases = [
        (
            "bad-ca",
            w.config("bad-ca", &addr, "GW-0001", "", &other_ca, OUT_RULE),
            "unknown CA",
        ),
        (
            "bad-name",
            w.config("bad-name", &addr, "GW-0001", "", &wrong_name, OUT_RULE),
            "name mismatch",
        ),
        (
            "expired",
            w.config("expired", &addr, "expired", "", &w.ca(), OUT_RULE),
            "expired certificate",
        ),
    ];
    for (name, cfg, check) in cases {
        let edge = Edge::start(&cfg, &w.data(name), false);
        edge.offer("kept", 0..3).await;
        let s = edge
            .wait_for(check, |s| {
                s.last_error.as_deref().is_some_and(|e| e.contains(check))
            })
            .await;
        assert!(!s.connected, "{s:?}");
        assert_eq!(s.queue_messages, 3, "messages kept: {s:?}");
        let lines = bridge_support::log_lines(&format!("name={name}"));
        assert!(
            lines.iter().any(|l| l.contains(check)),
            "no log line naming {check:?} for {name}: {lines:#?}"
        );
        edge.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_to_the_second_address_and_failback_lose_nothing() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let dead = format!("127.0.0.1:{}", bridge_support::free_port());
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let top = "failback_after = \"1s\"";
    let cfg = w.config(
        "failover",
        &[dead.clone(), w.central.address()],
        "GW-0001",
        top,
        &w.ca(),
        OUT_RULE,
    );
    let edge = Edge::start(&cfg, &w.data("failover"), false);
    for batch in 0..10 {
        edge.offer("seq", batch * 20..batch * 20 + 20).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let got = observer.collect("meters/GW-0001/data/", 200, WAIT).await;
    assert_ordered_complete(&indexes(&got), 200);
    let s = edge
        .wait_for("connected to the second", |s| s.connected)
        .await;
    assert_eq!(s.address, Some(w.central.address()));
    assert!(
        !bridge_support::log_lines("failing back to the first address").is_empty(),
        "failback was tried"
    );
    edge.stop().await;
}
