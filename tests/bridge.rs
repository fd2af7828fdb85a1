//! The store-and-forward bridge against a real Mosquitto central broker
//! configured like seed 000, driven in-process through `bridge::start` and
//! `Forwarder::offer`, observed by a subscriber at the central broker.

mod bridge_support;

use std::time::{Duration, Instant};

use bridge_support::edge::{Edge, OUT_RULE, World, indexes, next_matching};
use bridge_support::proxy::{Gate, Proxy};
use bridge_support::{Observer, WAIT, assert_ordered_complete, have_tools};
use edgemq::router::forward::{Durable, Forwarder};
use edgemq::router::message::{Message, Origin, QoS};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_qos1_messages_arrive_in_order() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    // The address is an IP; the name checked is the certificate's DNS SAN.
    let tls = format!("{}\nserver_name = \"localhost\"", w.ca());
    let addr = [w.central.address()];
    let cfg = w.config("order", &addr, "GW-0001", "", &tls, OUT_RULE);
    let edge = Edge::start(&cfg, &w.data("order"), false);
    edge.offer("seq", 0..2000).await;
    let got = observer.collect("meters/GW-0001/data/", 2000, WAIT).await;
    assert!(got.iter().all(|(t, _)| t == "meters/GW-0001/data/seq"));
    assert_ordered_complete(&indexes(&got), 2000);
    let s = edge
        .wait_for("queue drained", |s| {
            s.queue_messages == 0 && s.acked >= 2000
        })
        .await;
    assert!(
        s.connected && s.address == Some(w.central.address()),
        "{s:?}"
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn central_killed_then_back_everything_arrives_in_order() {
    if !have_tools() {
        return;
    }
    let mut w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let cfg = w.config(
        "outage",
        &[proxy.address()],
        "GW-0001",
        "",
        &w.ca(),
        OUT_RULE,
    );
    let edge = Edge::start(&cfg, &w.data("outage"), false);
    edge.offer("seq", 0..10).await;
    let mut got = observer.collect("meters/GW-0001/data/", 10, WAIT).await;

    w.central.kill();
    // Keep the bridge out until the new observer is subscribed, so nothing
    // reaches the restarted broker before anyone listens.
    proxy.set_gate(Gate::Closed);
    edge.wait_for("disconnected", |s| !s.connected).await;
    edge.offer("seq", 10..5010).await;
    let s = edge.status();
    assert!(s.queue_messages >= 5000, "{s:?}");

    w.central.restart();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let replay = Instant::now();
    proxy.set_gate(Gate::Open);
    observer
        .collect_into("meters/GW-0001/data/", &mut got, 5010, WAIT)
        .await;
    let took = replay.elapsed();
    assert_ordered_complete(&indexes(&got), 5010);
    let s = edge
        .wait_for("queue drained", |s| s.queue_messages == 0)
        .await;
    eprintln!(
        "replay: 5000 queued messages delivered {took:?} after the central broker came back \
         ({:.0} msg/s incl. reconnect backoff); duplicates counted: {}",
        5000.0 / took.as_secs_f64(),
        s.duplicates
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_link_is_detected_and_heals() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let top = "keepalive = \"2s\"";
    let cfg = w.config(
        "silent",
        &[proxy.address()],
        "GW-0001",
        top,
        &w.ca(),
        OUT_RULE,
    );
    let edge = Edge::start(&cfg, &w.data("silent"), false);
    edge.offer("seq", 0..5).await;
    let mut got = observer.collect("meters/GW-0001/data/", 5, WAIT).await;

    proxy.freeze();
    let frozen = Instant::now();
    edge.offer("seq", 5..55).await;
    edge.wait_for("dead link detected", |s| !s.connected).await;
    let detected = frozen.elapsed();
    // Keepalive 2 s: detected within 1.5× keepalive, plus the last ping's slack and a loaded
    // test host's.
    assert!(detected <= Duration::from_millis(4500), "took {detected:?}");
    eprintln!("silent link detected after {detected:?} (keepalive 2s)");
    proxy.drop_frozen();

    observer
        .collect_into("meters/GW-0001/data/", &mut got, 55, WAIT)
        .await;
    assert_ordered_complete(&indexes(&got), 55);
    let s = edge
        .wait_for("drained", |s| s.queue_messages == 0 && s.connected)
        .await;
    // The broker kept the session: what was in flight went out again under
    // its packet id with DUP set (Mosquitto logs "d1").
    assert!(
        w.central.log().contains("(d1, q1"),
        "no DUP re-send in the central log"
    );
    // What went into the frozen link was never acknowledged, so it went out again.
    assert!(s.duplicates >= 1 && s.duplicates <= 55, "{s:?}");
    edge.stop().await;
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coalesce_keeps_the_newest_per_topic_and_limits_drop_oldest() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Closed).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let rules = format!(
        "[[topic]]\npattern = \"data/status/#\"\nremote_prefix = \"meters/GW-0001/\"\ncoalesce = true\n{OUT_RULE}\
         [queue]\nmax_bytes = \"200KiB\"\n"
    );
    let cfg = w.config(
        "coalesce",
        &[proxy.address()],
        "GW-0001",
        "",
        &w.ca(),
        &rules,
    );
    let edge = Edge::start(&cfg, &w.data("coalesce"), false);
    edge.offer("status/a", 0..100).await;
    edge.offer("status/b", 0..100).await;
    edge.offer("seq", 0..10).await;
    let s = edge.status();
    assert_eq!(s.queue_messages, 12, "coalesced while queued: {s:?}");

    proxy.set_gate(Gate::Open);
    let got = observer.collect("meters/GW-0001/data/", 12, WAIT).await;
    let on = |suffix: &str| -> Vec<Vec<u8>> {
        got.iter()
            .filter(|(t, _)| t.ends_with(suffix))
            .map(|(_, p)| p.clone())
            .collect()
    };
    assert_eq!(
        on("status/a"),
        vec![b"99".to_vec()],
        "only the newest state"
    );
    assert_eq!(on("status/b"), vec![b"99".to_vec()]);
    assert_ordered_complete(
        &indexes(
            &got.iter()
                .filter(|(t, _)| t.ends_with("seq"))
                .cloned()
                .collect::<Vec<_>>(),
        ),
        10,
    );
    edge.wait_for("drained", |s| s.queue_messages == 0).await;

    // Uplink down again; past max_bytes the oldest go, counted.
    proxy.set_gate(Gate::Closed);
    proxy.drop_all();
    edge.wait_for("disconnected", |s| !s.connected).await;
    let big = "x".repeat(2048);
    for i in 0..200u64 {
        let payload = format!("{i} {big}").into_bytes();
        let msg = Message::new(
            "data/big",
            payload,
            QoS::AtLeastOnce,
            false,
            Origin::Client("s".into()),
        );
        edge.handle.offer(&msg).unwrap().await.unwrap().unwrap();
    }
    let s = edge.status();
    assert!(s.dropped > 0 && s.queue_bytes <= 200 * 1024, "{s:?}");
    let kept = s.queue_messages as usize;
    assert!(kept > 0 && kept < 200, "{s:?}");
    proxy.set_gate(Gate::Open);
    let got = observer
        .collect("meters/GW-0001/data/big", kept, WAIT)
        .await;
    let bigs: Vec<u64> = got
        .iter()
        .map(|(_, p)| {
            String::from_utf8_lossy(p)
                .split(' ')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let expected: Vec<u64> = (200 - kept as u64..200).collect();
    assert_eq!(bigs, expected, "the newest {kept} kept, in order");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos2_and_qos0_rules_deliver_in_order_and_drain() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let rules = "[[topic]]\npattern = \"data/q2/#\"\nqos = 2\nremote_prefix = \"meters/GW-0001/\"\n\
                 [[topic]]\npattern = \"data/q0/#\"\nqos = 0\nremote_prefix = \"meters/GW-0001/\"\n";
    let cfg = w.config("qos", &[w.central.address()], "GW-0001", "", &w.ca(), rules);
    let edge = Edge::start(&cfg, &w.data("qos"), false);
    let durables: Vec<Durable> = (0..400u64)
        .map(|i| {
            let (topic, qos) = if i % 2 == 0 {
                ("data/q2/x", QoS::ExactlyOnce)
            } else {
                ("data/q0/x", QoS::AtLeastOnce)
            };
            let msg = Message::new(
                topic,
                (i / 2).to_string().into_bytes(),
                qos,
                false,
                Origin::Client("s".into()),
            );
            edge.handle.offer(&msg).unwrap()
        })
        .collect();
    for d in durables {
        d.await.unwrap().unwrap();
    }
    let got = observer.collect("meters/GW-0001/data/", 400, WAIT).await;
    for sub in ["q2/x", "q0/x"] {
        let on: Vec<_> = got
            .iter()
            .filter(|(t, _)| t.ends_with(sub))
            .cloned()
            .collect();
        assert_ordered_complete(&indexes(&on), 200);
    }
    let s = edge.wait_for("drained", |s| s.queue_messages == 0).await;
    assert_eq!(s.acked, 400, "every record released exactly once: {s:?}");
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_messages_survive_a_bridge_restart() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Closed).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let cfg = w.config(
        "restart",
        &[proxy.address()],
        "GW-0001",
        "",
        &w.ca(),
        OUT_RULE,
    );
    let edge = Edge::start(&cfg, &w.data("restart"), false);
    edge.offer("seq", 0..100).await;
    edge.stop().await;

    let edge = Edge::start(&cfg, &w.data("restart"), false);
    assert_eq!(edge.status().queue_messages, 100);
    proxy.set_gate(Gate::Open);
    let got = observer.collect("meters/GW-0001/data/", 100, WAIT).await;
    assert_ordered_complete(&indexes(&got), 100);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_rate_caps_the_drain() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Closed).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let rules = format!("{OUT_RULE}[queue]\nreplay_rate = 200\n");
    let cfg = w.config("rate", &[proxy.address()], "GW-0001", "", &w.ca(), &rules);
    let edge = Edge::start(&cfg, &w.data("rate"), false);
    edge.offer("seq", 0..500).await;
    edge.wait_for("a failed attempt", |s| s.last_error.is_some())
        .await;
    proxy.set_gate(Gate::Open);
    edge.wait_for("connected", |s| s.connected).await;
    let start = Instant::now();
    let got = observer.collect("meters/GW-0001/data/", 500, WAIT).await;
    let took = start.elapsed();
    assert_ordered_complete(&indexes(&got), 500);
    // One second of burst (200), then 200/s for the other 300.
    assert!(
        took >= Duration::from_millis(1300),
        "drained 500 in {took:?} at 200/s"
    );
    eprintln!("replay_rate 200/s: 500 messages drained in {took:?}");
    edge.stop().await;
}
