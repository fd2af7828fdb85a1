//! A bridge's live figures: connection state and counters the uplink updates,
//! snapshotted for `$SYS/broker/bridge/<name>/...` and `edgemq status`.

use std::sync::Mutex;

use crate::clock::now_ms;

/// What `edgemq status` and `$SYS` show for one bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeStatus {
    /// Bridge name.
    pub name: String,
    /// Connected to a central broker now.
    pub connected: bool,
    /// When the connection state last changed (ms since the epoch); None
    /// until the first connection attempt has ended.
    pub since_ms: Option<u64>,
    /// The address connected to (or last tried).
    pub address: Option<String>,
    /// Messages in the queue (sent but unacknowledged included).
    pub queue_messages: u64,
    /// Bytes in the queue.
    pub queue_bytes: u64,
    /// Age of the oldest queued message.
    pub oldest_age_ms: Option<u64>,
    /// PUBLISH packets written to the central broker (resends included).
    pub sent: u64,
    /// Messages the central broker acknowledged (QoS 0: written).
    pub acked: u64,
    /// Messages dropped: queue limits, expiry, refused by the broker.
    pub dropped: u64,
    /// Messages the queue could not store (disk full, I/O error). Not lost
    /// from a QoS 1/2 publisher: it got no acknowledgement and sends again.
    pub storage_refused: u64,
    /// Messages sent again after a reconnect.
    pub duplicates: u64,
    /// Why the last connection attempt or session failed.
    pub last_error: Option<String>,
}

#[derive(Debug, Default)]
struct Figures {
    connected: bool,
    since_ms: u64,
    address: Option<String>,
    sent: u64,
    acked: u64,
    dropped: u64,
    duplicates: u64,
    last_error: Option<String>,
}

/// Counters shared by the uplink (writer) and the handle (reader).
/// A Mutex rather than atomics: 32-bit MIPS has no AtomicU64, and nothing
/// awaits while holding it.
#[derive(Debug, Default)]
pub struct Counters {
    figures: Mutex<Figures>,
}

impl Counters {
    fn with<R>(&self, f: impl FnOnce(&mut Figures) -> R) -> R {
        match self.figures.lock() {
            Ok(mut g) => f(&mut g),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// Connected to `address`.
    pub fn connected(&self, address: &str) {
        self.with(|f| {
            f.connected = true;
            f.since_ms = now_ms();
            f.address = Some(address.to_string());
            f.last_error = None;
        });
    }

    /// Lost the connection, or failed to make one, for `reason`.
    pub fn disconnected(&self, address: &str, reason: &str) {
        self.with(|f| {
            if f.connected || f.since_ms == 0 {
                f.since_ms = now_ms();
            }
            f.connected = false;
            f.address = Some(address.to_string());
            f.last_error = Some(reason.to_string());
        });
    }

    /// PUBLISH packets written.
    pub fn sent(&self, n: u64) {
        self.with(|f| f.sent += n);
    }

    /// Messages acknowledged.
    pub fn acked(&self, n: u64) {
        self.with(|f| f.acked += n);
    }

    /// Messages dropped by the uplink (expired, undecodable, refused).
    pub fn dropped(&self, n: u64) {
        self.with(|f| f.dropped += n);
    }

    /// Messages re-sent after a reconnect.
    pub fn duplicates(&self, n: u64) {
        self.with(|f| f.duplicates += n);
    }

    /// A snapshot; queue figures are filled in by the caller.
    pub fn snapshot(&self, name: &str) -> BridgeStatus {
        self.with(|f| BridgeStatus {
            name: name.to_string(),
            connected: f.connected,
            since_ms: (f.since_ms > 0).then_some(f.since_ms),
            address: f.address.clone(),
            queue_messages: 0,
            queue_bytes: 0,
            oldest_age_ms: None,
            sent: f.sent,
            acked: f.acked,
            dropped: f.dropped,
            storage_refused: 0,
            duplicates: f.duplicates,
            last_error: f.last_error.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_state() {
        let c = Counters::default();
        c.connected("h:1");
        c.sent(3);
        c.acked(2);
        c.duplicates(1);
        c.disconnected("h:1", "gone");
        let s = c.snapshot("central");
        assert!(!s.connected);
        assert_eq!((s.sent, s.acked, s.duplicates), (3, 2, 1));
        assert_eq!(s.last_error.as_deref(), Some("gone"));
        assert!(s.since_ms.is_some_and(|t| t > 0));
    }
}
