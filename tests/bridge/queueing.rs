//! What the queue does for the bridge: coalescing and limits, QoS 2 and QoS 0 rules, a bridge
//! restart, the replay rate.

use super::*;

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
