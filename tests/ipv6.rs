//! IPv6, end to end: a listener on `[::1]` serves MQTT clients next to an IPv4 one, and a bridge
//! whose central broker's address is `[::1]:port` forwards to it. The central broker here is a
//! second edgemq (plain TCP, anonymous); TLS and Mosquitto centrals are the bridge tests'.

mod common;

use std::net::SocketAddr;

use common::{TestBroker, v4, v4_opts};
use rumqttc::QoS;

fn port_of(address: &str) -> u16 {
    address
        .parse::<SocketAddr>()
        .unwrap_or_else(|e| panic!("{address}: {e}"))
        .port()
}

/// Whether this host has IPv6 loopback at all (containers may not): under CI=true it must.
fn have_ipv6() -> bool {
    let ok = std::net::TcpListener::bind("[::1]:0").is_ok();
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "IPv6 loopback is required when CI=true"
        );
        eprintln!("note: no IPv6 loopback here; skipping");
    }
    ok
}

const V6_LISTENER: &str = "[[listener]]\nbind = \"[::1]:0\"\nallow_anonymous = true\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_listener_serves_clients_alongside_ipv4() {
    if !have_ipv6() {
        return;
    }
    let b = TestBroker::with("", V6_LISTENER).await;
    let v6 = b
        .addresses
        .iter()
        .find(|a| a.starts_with('['))
        .unwrap_or_else(|| panic!("no [::1] address among {:?}", b.addresses));
    let mut opts = rumqttc::MqttOptions::new("v6-sub", "::1", port_of(v6));
    opts.set_keep_alive(std::time::Duration::from_secs(30));
    let mut sub = v4(opts).await;
    sub.subscribe("v6/#", QoS::AtLeastOnce).await;
    // published over IPv4, received over IPv6: one broker behind both
    let mut p = v4(v4_opts("v4-pub", b.port)).await;
    p.publish("v6/x", QoS::AtLeastOnce, false, b"over both")
        .await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"over both");
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bridge_reaches_a_central_broker_at_an_ipv6_address() {
    if !have_ipv6() {
        return;
    }
    let central = TestBroker::with("", V6_LISTENER).await;
    let v6 = central
        .addresses
        .iter()
        .find(|a| a.starts_with('['))
        .cloned()
        .unwrap_or_else(|| panic!("no [::1] address among {:?}", central.addresses));
    let mut observer = v4(v4_opts("observer", central.port)).await;
    observer.subscribe("site/#", QoS::AtLeastOnce).await;
    let bridge = format!(
        "[[bridge]]\nname = \"v6\"\naddresses = [{v6:?}]\nclient_id = \"gw-v6\"\n\
         reconnect_min = \"100ms\"\nreconnect_max = \"500ms\"\nnotifications = false\n\
         [[bridge.topic]]\npattern = \"data/#\"\nremote_prefix = \"site/\"\n"
    );
    let edge = TestBroker::with("", &bridge).await;
    let mut p = v4(v4_opts("sensor", edge.port)).await;
    for i in 0..20u8 {
        p.publish("data/t", QoS::AtLeastOnce, false, &[i]).await;
    }
    for i in 0..20u8 {
        let m = observer.expect_publish().await;
        assert_eq!(
            (m.topic.as_str(), &m.payload[..]),
            ("site/data/t", &[i][..])
        );
    }
    edge.stop().await;
    central.stop().await;
}
