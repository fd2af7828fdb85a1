//! Mutation fuzzing of the bridge's uplink against a hostile central broker: a fake one that
//! accepts each connection with a valid CONNACK and then answers with damaged packets (acks for
//! the bridge's publishes, SUBACKs, inbound PUBLISHes, DISCONNECTs), then hangs up. Whatever it
//! sends, no bridge task may panic (the release binary aborts: a broken or malicious central
//! broker would take every gateway down with it), the bridge must keep reconnecting, and it must
//! stop promptly when told.
//!
//! Seeded and deterministic in what is sent; `EDGEMQ_FUZZ_CONNS` (default 100 per protocol
//! version) and `EDGEMQ_FUZZ_SEED` widen a run by hand.

mod common;

use std::time::Duration;

use bytes::BytesMut;
use common::fuzz::{Rng, count_panics, mutate, panics, server_corpus};
use common::rng::env_u64;
use edgemq::bridge::codec::{self, Version};
use edgemq::bridge::{self, TlsSlot};
use edgemq::broker::frame::parse_header;
use edgemq::config::model::Bridge;
use edgemq::router::forward::Forwarder;
use edgemq::router::message::{Message, Origin, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Reads until one whole packet is buffered (the bridge's CONNECT).
async fn read_packet(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Ok(Some(h)) = parse_header(&buf, 1 << 20) {
            if buf.len() >= h.frame_len() {
                return Some(buf);
            }
        }
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One connection of the fake central broker: CONNACK, the damaged packets (a little apart,
/// so the bridge acts on each), then whatever the bridge says for a moment, then hang up.
async fn serve_one(mut s: TcpStream, version: Version, packets: Vec<Vec<u8>>) {
    if read_packet(&mut s).await.is_none() {
        return;
    }
    let connack: &[u8] = match version {
        Version::V311 => &[0x20, 2, 0, 0],
        Version::V5 => &[0x20, 3, 0, 0, 0],
    };
    if s.write_all(connack).await.is_err() {
        return;
    }
    let mut sink = [0u8; 4096];
    for p in packets {
        if s.write_all(&p).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(Duration::from_millis(5), s.read(&mut sink)).await;
    }
    let _ = tokio::time::timeout(Duration::from_millis(20), s.read(&mut sink)).await;
}

/// Packets of the server corpus the uplink accepts for `version`.
fn valid_for(version: Version) -> Vec<Vec<u8>> {
    server_corpus()
        .into_iter()
        .filter(|p| {
            matches!(
                codec::decode(version, &mut BytesMut::from(&p[..])),
                Ok(Some(_))
            )
        })
        .collect()
}

fn bridge_config(port: u16, protocol: &str) -> Bridge {
    let text = format!(
        "name = \"fuzz\"\naddresses = [\"127.0.0.1:{port}\"]\nclient_id = \"GW-0001\"\n\
         protocol = \"{protocol}\"\nkeepalive = \"5s\"\n\
         reconnect_min = \"20ms\"\nreconnect_max = \"20ms\"\n\
         [[topic]]\npattern = \"data/#\"\nqos = 1\n\
         [[topic]]\npattern = \"cmd/#\"\ndirection = \"in\"\nqos = 2\n"
    );
    toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

async fn run(protocol: &str, version: Version, seed: u64) {
    let conns = env_u64("EDGEMQ_FUZZ_CONNS", 100);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = bridge_config(port, protocol);
    let (tx, mut inbound) = tokio::sync::mpsc::channel(1024);
    tokio::spawn(async move { while inbound.recv().await.is_some() {} });
    let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
    let tls = std::sync::Arc::new(TlsSlot::new(None));
    let handle = bridge::start(&cfg, tls, dir.path(), tx, shutdown.clone(), &tracker)
        .expect("bridge starts");
    // queued records, so the bridge has publishes in flight for the damaged acks to hit
    for i in 0..200u32 {
        let msg = Message::new(
            "data/x",
            i.to_string().into_bytes(),
            QoS::AtLeastOnce,
            false,
            Origin::Client("sensor".into()),
        );
        let durable = handle.offer(&msg).expect("an out rule matches");
        durable.await.expect("queued").expect("durable");
    }
    let pool = valid_for(version);
    let mut rng = Rng::new(seed);
    for _ in 0..conns {
        let packets: Vec<Vec<u8>> = (0..=rng.below(3))
            .map(|_| {
                let pick = rng.index(pool.len());
                if rng.below(4) == 0 {
                    pool[pick].clone()
                } else {
                    mutate(&mut rng, pool[pick].clone())
                }
            })
            .collect();
        let (s, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
            .await
            .unwrap_or_else(|_| panic!("{protocol}: the bridge stopped reconnecting"))
            .expect("accept");
        serve_one(s, version, packets).await;
    }
    // Told to stop, it stops: a damaged packet must not have wedged a task.
    shutdown.cancel();
    tracker.close();
    tokio::time::timeout(Duration::from_secs(20), tracker.wait())
        .await
        .unwrap_or_else(|_| panic!("{protocol}: the bridge did not stop"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_central_broker_never_panics_the_bridge() {
    count_panics();
    common::init_logging_at("error");
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x00CE_27A1);
    run("mqtt311", Version::V311, seed).await;
    run("mqtt5", Version::V5, seed ^ 0x5).await;
    assert_eq!(
        panics(),
        0,
        "a damaged packet from the central broker panicked the bridge (seed {seed:#x}; printed above)"
    );
}
