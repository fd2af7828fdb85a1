//! Broker-wide counters for `$SYS/broker/...`. AtomicUsize, not AtomicU64:
//! 32-bit MIPS routers have no 64-bit atomics; the counters wrap there the
//! way Mosquitto's do.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Counters updated by connection tasks.
#[derive(Debug, Default)]
pub struct Stats {
    /// Clients connected now.
    pub clients_connected: AtomicUsize,
    /// Highest number of clients connected at once.
    pub clients_maximum: AtomicUsize,
    /// Connections refused (limit, auth, protocol).
    pub connections_refused: AtomicUsize,
    /// PUBLISH packets received.
    pub msgs_received: AtomicUsize,
    /// PUBLISH packets sent.
    pub msgs_sent: AtomicUsize,
    /// Bytes received.
    pub bytes_received: AtomicUsize,
    /// Bytes sent.
    pub bytes_sent: AtomicUsize,
    /// Publishes refused by the ACL.
    pub publish_denied: AtomicUsize,
    /// Messages too large for the receiving client.
    pub oversize_dropped: AtomicUsize,
}

impl Stats {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicUsize, n: usize) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicUsize) -> usize {
        c.load(Ordering::Relaxed)
    }

    /// A client connected.
    pub fn connected(&self) {
        let now = self.clients_connected.fetch_add(1, Ordering::Relaxed) + 1;
        self.clients_maximum.fetch_max(now, Ordering::Relaxed);
    }

    /// A client disconnected.
    pub fn disconnected(&self) {
        self.clients_connected.fetch_sub(1, Ordering::Relaxed);
    }
}
