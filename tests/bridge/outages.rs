//! Order and outages: 2,000 QoS 1 messages in order, the central broker killed and back, a
//! silent link detected and healed.

use super::*;

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
    // Keepalive 2 s: detected within 1.5× keepalive (plus the last ping's slack).
    assert!(detected <= Duration::from_millis(3500), "took {detected:?}");
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
