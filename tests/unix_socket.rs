//! A `unix:PATH` listener, end to end: it replaces a stale socket file left by a crash, serves
//! MQTT clients over the socket next to a TCP listener, and removes its file on shutdown.

mod common;

use std::time::Duration;

use common::{TestBroker, v4, v4_opts};
use rumqttc::{MqttOptions, QoS, Transport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_listener_serves_clients_and_replaces_a_stale_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("mqtt.sock");
    // What a killed broker leaves behind: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&path).expect("stale socket"));
    assert!(path.exists());

    let listener = format!(
        "[[listener]]\nbind = \"unix:{}\"\nallow_anonymous = true\n",
        path.display()
    );
    let b = TestBroker::with("", &listener).await;
    let mut opts = MqttOptions::new("over-unix", path.to_string_lossy(), 0);
    opts.set_transport(Transport::Unix);
    opts.set_keep_alive(Duration::from_secs(30));
    let mut sub = v4(opts).await;
    sub.subscribe("local/#", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts("over-tcp", b.port)).await;
    p.publish("local/x", QoS::AtLeastOnce, false, b"via the socket")
        .await;
    assert_eq!(&sub.expect_publish().await.payload[..], b"via the socket");
    b.stop().await;
    assert!(!path.exists(), "the socket file outlived the broker");
}
