//! A MQTT 3.1.1 publisher that keeps more QoS 1 messages unacknowledged than
//! the broker holds pending (`MAX_PENDING_ACKS`) is not read from until the
//! oldest become durable: backpressure, not a disconnect, and nothing lost.
//! A forwarder registered with the real in-process router holds the
//! durability of every message (as a slow bridge queue would).

// Only the raw client of the shared helpers is used here.
#[allow(unused_imports)]
mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestBroker;
use common::raw::{self, Got, Raw};
use edgemq::broker::pending::MAX_PENDING_ACKS;
use edgemq::router::forward::{Durable, ForwardError, Forwarder};
use edgemq::router::message::Message;
use tokio::sync::oneshot;

/// Messages beyond the bound the publisher sends.
const EXTRA: usize = 500;

/// Takes every message on `hold/#` and makes it durable only when told.
#[derive(Default)]
struct Held {
    senders: Mutex<Vec<oneshot::Sender<Result<(), ForwardError>>>>,
}

impl Held {
    fn offered(&self) -> usize {
        self.senders.lock().unwrap().len()
    }
}

impl Forwarder for Held {
    fn offer(&self, msg: &Message) -> Option<Durable> {
        if !msg.topic.starts_with("hold/") {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        self.senders.lock().unwrap().push(tx);
        Some(rx)
    }
}

/// Counts PUBACKs until `want` arrived or nothing came for `quiet`.
async fn pubacks(c: &mut Raw, want: usize, quiet: Duration) -> usize {
    let mut n = 0;
    while n < want {
        match c.recv(quiet).await {
            Got::Frame(f) if f[0] == 0x40 => n += 1,
            Got::Frame(f) => panic!("unexpected packet {:#04x}", f[0]),
            Got::Timeout => break,
            Got::Closed => panic!("the broker closed the publisher"),
        }
    }
    n
}

#[tokio::test]
async fn publisher_beyond_pending_bound_is_paused_not_dropped() {
    let b = TestBroker::start().await;
    let held = Arc::new(Held::default());
    b.broker.router.add_forwarder(held.clone());
    // keepalive 2 s: a paused read must not count as the client's silence.
    let mut c = Raw::v4(b.port, "bp-pub", true, 2).await;
    let total = MAX_PENDING_ACKS + EXTRA;
    let mut burst = Vec::new();
    for i in 0..total {
        let pkid = (i % 60_000 + 1) as u16;
        burst.extend(raw::publish("hold/x", 1, pkid, false, false, None, b"p"));
    }
    c.send(&burst).await;

    // Stalled: exactly the bound was read and routed, nothing acknowledged.
    let t0 = tokio::time::Instant::now();
    while held.offered() < MAX_PENDING_ACKS && t0.elapsed() < common::WAIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(pubacks(&mut c, 1, Duration::from_secs(3)).await, 0);
    assert_eq!(held.offered(), MAX_PENDING_ACKS, "read past the bound");

    // Durable: the acks flow, the rest is read, every message acknowledged.
    let release = |h: &Held| {
        for tx in h.senders.lock().unwrap().drain(..) {
            let _ = tx.send(Ok(()));
        }
    };
    release(&held);
    let mut acked = pubacks(&mut c, MAX_PENDING_ACKS, common::WAIT).await;
    let t0 = tokio::time::Instant::now();
    while acked < total && t0.elapsed() < common::WAIT {
        release(&held);
        acked += pubacks(&mut c, total - acked, Duration::from_millis(100)).await;
    }
    assert_eq!(acked, total);
    b.stop().await;
}
