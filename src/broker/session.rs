//! A client's session state, which outlives its connection when the session
//! is persistent: subscriptions, the bounded queue of messages waiting to be
//! sent, the outgoing inflight window and incoming QoS 2 packet ids.
//!
//! The router pushes into the queue from other clients' tasks; a std Mutex is
//! right here because nothing awaits while holding it and every critical
//! section is a few pointer moves.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::model::Overflow;
use crate::router::message::{Message, QoS};
use crate::router::subscriptions::SubOptions;

/// One message on its way to one client.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The message, shared with every other recipient.
    pub msg: Arc<Message>,
    /// QoS of this delivery: min(published, granted).
    pub qos: QoS,
    /// Retain flag as sent.
    pub retain: bool,
    /// MQTT 5 subscription identifiers of every matching subscription.
    pub sub_ids: Vec<u32>,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutState {
    /// PUBLISH sent, waiting for PUBACK (QoS 1) or PUBREC (QoS 2).
    Published,
    /// PUBREL sent, waiting for PUBCOMP.
    Released,
}

/// An unacknowledged outgoing message.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Packet id.
    pub pkid: u16,
    /// What was sent.
    pub delivery: Delivery,
    /// Protocol state.
    pub state: OutState,
}

/// Mutable session state.
#[derive(Debug, Default)]
pub struct SessionData {
    /// Filters with options, for persistence and resumption.
    pub subscriptions: HashMap<String, SubOptions>,
    /// Messages not yet sent.
    pub queue: VecDeque<Delivery>,
    /// Sent, unacknowledged, in send order.
    pub inflight: VecDeque<Outgoing>,
    /// Incoming QoS 2 packet ids between PUBREC and PUBREL.
    pub incoming_qos2: HashSet<u16>,
    /// Last packet id used.
    pub last_pkid: u16,
    /// Seconds the session outlives its connection (u32::MAX: forever).
    pub expiry_secs: u32,
    /// The live connection's generation; 0 when offline.
    pub conn_gen: u64,
    /// Cancels the live connection (takeover, expiry).
    pub kick: Option<CancellationToken>,
    /// When the last connection ended.
    pub disconnected_at: Option<Instant>,
    /// A will waiting out its delay.
    pub pending_will: Option<PendingWill>,
}

/// Controls a will waiting out its MQTT 5 delay.
#[derive(Debug, Clone, Default)]
pub struct PendingWill {
    /// The client came back to its session in time: never publish.
    pub cancel: CancellationToken,
    /// The session ended before the delay did: publish now.
    pub fire: CancellationToken,
}

impl SessionData {
    /// Next free packet id, skipping those still inflight.
    pub fn next_pkid(&mut self) -> u16 {
        loop {
            self.last_pkid = self.last_pkid.wrapping_add(1).max(1);
            let id = self.last_pkid;
            if !self.inflight.iter().any(|o| o.pkid == id) {
                return id;
            }
        }
    }

    /// Removes and returns the inflight entry with `pkid`.
    pub fn take_inflight(&mut self, pkid: u16) -> Option<Outgoing> {
        let pos = self.inflight.iter().position(|o| o.pkid == pkid)?;
        self.inflight.remove(pos)
    }
}

/// A session, shared between its connection task and the router.
#[derive(Debug)]
pub struct Session {
    /// Client identifier.
    pub id: Arc<str>,
    data: Mutex<SessionData>,
    /// Signalled when the queue gains a message.
    pub wake: Notify,
    max_queued: usize,
    overflow: Overflow,
    dropped: AtomicUsize,
}

impl Session {
    /// A new, empty session.
    pub fn new(id: Arc<str>, max_queued: usize, overflow: Overflow) -> Arc<Session> {
        Arc::new(Session {
            id,
            data: Mutex::new(SessionData::default()),
            wake: Notify::new(),
            max_queued,
            overflow,
            dropped: AtomicUsize::new(0),
        })
    }

    /// Locks the state. A poisoned lock means a panic elsewhere mid-update;
    /// the data is still structurally sound, so carry on with it.
    pub fn lock(&self) -> MutexGuard<'_, SessionData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a delivery, applying the bound; returns false if a message was dropped.
    /// QoS 0 messages are not kept for an offline client.
    pub fn enqueue(&self, d: Delivery) -> bool {
        let mut s = self.lock();
        if s.conn_gen == 0 && d.qos == QoS::AtMostOnce {
            return true;
        }
        let mut kept = true;
        if s.queue.len() >= self.max_queued {
            kept = false;
            self.dropped.fetch_add(1, Ordering::Relaxed);
            match self.overflow {
                Overflow::DropNewest => return false,
                Overflow::DropOldest => {
                    s.queue.pop_front();
                }
            }
        }
        s.queue.push_back(d);
        drop(s);
        self.wake.notify_one();
        kept
    }

    /// True when the client has been away longer than the session expiry.
    pub fn is_expired(&self) -> bool {
        let d = self.lock();
        d.conn_gen == 0
            && d.expiry_secs != u32::MAX
            && d.disconnected_at
                .is_some_and(|t| t.elapsed() >= Duration::from_secs(u64::from(d.expiry_secs)))
    }

    /// Messages dropped because the queue was full.
    pub fn dropped(&self) -> usize {
        self.dropped.load(Ordering::Relaxed)
    }
}
