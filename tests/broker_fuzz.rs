//! Mutation fuzzing of live connections: a valid CONNECT (3.1.1 or 5), then a few damaged
//! packets, on many connections at once against one broker. Whatever the bytes, no broker task
//! may panic (the release binary aborts on a panic: one bad packet would take everyone down),
//! and afterwards the broker still serves a subscriber and a publisher.
//!
//! Seeded and deterministic; `EDGEMQ_FUZZ_CONNS` (default 1,500) and `EDGEMQ_FUZZ_SEED` widen a
//! run by hand.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::fuzz::{Rng, corpus, count_panics, mutate, panics};
use common::rng::env_u64;
use common::{TestBroker, raw, v4, v4_opts};
use edgemq::broker::frame::parse_header;
use edgemq::broker::packets::{Version, decode};
use rumqttc::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// One connection: CONNECT, the damaged packets, our end closed; then read until the broker
/// closes too (bounded: a broker still waiting for more of a packet is told by our close).
async fn one(port: u16, connect: Vec<u8>, packets: Vec<Vec<u8>>) {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    let mut bytes = connect;
    for p in packets {
        bytes.extend(p);
    }
    // The broker may close mid-write once it has seen enough: not an error here.
    let _ = s.write_all(&bytes).await;
    let _ = s.shutdown().await;
    let mut sink = vec![0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while matches!(s.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Whether `p` is a valid packet after CONNECT for protocol `v`.
fn valid_for(p: &[u8], v: Version) -> bool {
    match parse_header(p, 1 << 16) {
        Ok(Some(h)) => decode(&h, BytesMut::from(p), v, 1 << 16).is_ok(),
        _ => false,
    }
}

/// The connections' inputs: a CONNECT of a random version, then 1-5 damaged packets of the
/// corpus that are valid after such a CONNECT (so the damage, not a version mismatch, is what
/// the broker meets; a damaged CONNECT is the decoder test's business).
fn inputs(rng: &mut Rng, n: u64) -> Vec<(Vec<u8>, Vec<Vec<u8>>)> {
    let after_connect: Vec<Vec<u8>> = corpus().into_iter().filter(|p| p[0] >> 4 != 1).collect();
    let of = |v| -> Vec<Vec<u8>> {
        let valid = after_connect.iter().filter(|p| valid_for(p, v));
        valid.cloned().collect()
    };
    let (v4_packets, v5_packets) = (of(Version::V311), of(Version::V5));
    (0..n)
        .map(|i| {
            let id = format!("fuzz-{i}");
            let (connect, pool) = if rng.index(2) == 0 {
                (raw::connect4(&id, true, 30), &v4_packets)
            } else {
                (
                    raw::connect5(&id, true, 30, &raw::p_u16(0x22, 10)),
                    &v5_packets,
                )
            };
            let packets = (0..=rng.index(5))
                .map(|_| {
                    let pick = rng.index(pool.len());
                    mutate(rng, pool[pick].clone())
                })
                .collect();
            (connect, packets)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_packets_on_live_connections_never_panic_the_broker() {
    count_panics();
    // every damaged packet is a warning: thousands of lines that say nothing here
    common::init_logging_at("error");
    let conns = env_u64("EDGEMQ_FUZZ_CONNS", 1_500);
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x00F0_22ED);
    let b = TestBroker::start().await;
    // A subscriber that lives through it all, on the topics the corpus publishes to.
    let mut watcher = v4(v4_opts("fuzz-watcher", b.port)).await;
    watcher.subscribe("#", QoS::AtMostOnce).await;

    let mut rng = Rng::new(seed);
    let mut set = JoinSet::new();
    for (connect, packets) in inputs(&mut rng, conns) {
        // at most 32 at once: the broker's connection limit stays out of the way
        while set.len() >= 32 {
            set.join_next().await;
        }
        set.spawn(one(b.port, connect, packets));
    }
    while set.join_next().await.is_some() {}

    // Damage leaves many packets valid: some must have been routed, or the inputs never
    // got past the CONNECT and the test would prove nothing.
    let mut routed = 0;
    while watcher
        .publish_within(Duration::from_millis(300))
        .await
        .is_some()
    {
        routed += 1;
    }
    eprintln!("{conns} connections, {routed} damaged publishes routed to the watcher");
    assert!(routed > conns / 20, "only {routed} publishes got through");
    assert_eq!(
        panics(),
        0,
        "a damaged packet panicked the broker (seed {seed:#x}; the panic is printed above)"
    );
    let mut p = v4(v4_opts("fuzz-after", b.port)).await;
    p.publish("after/fuzz", QoS::AtLeastOnce, false, b"still here")
        .await;
    let mut s = v4(v4_opts("fuzz-after-sub", b.port)).await;
    s.subscribe("after/#", QoS::AtLeastOnce).await;
    p.publish("after/fuzz", QoS::AtLeastOnce, false, b"still here")
        .await;
    assert_eq!(&s.expect_publish().await.payload[..], b"still here");
    b.stop().await;
}
