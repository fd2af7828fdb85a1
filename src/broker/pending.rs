//! A client's incoming QoS 1/2 publishes that wait for their acknowledgement
//! (until every bridge queue that took them made them durable), in arrival
//! order, with the counts the receive-maximum check and the QoS 2 duplicate
//! check need kept up to date instead of scanned per PUBLISH.
//!
//! Memory: one [`PendingAck`] is 32 bytes in the deque, plus, when a bridge
//! took the message, its `Vec` of one `Durable` (a 32-byte allocation) and
//! the oneshot channel it points to (about 128 bytes): about 200 bytes per
//! unacknowledged publish, so about 200 KiB for a publisher keeping 1,024 in
//! flight and 800 KiB at [`MAX_PENDING_ACKS`]. (The bridge queue holds each
//! record's frame, payload + about 50 bytes, in its write batch until the
//! fdatasync; that is the queue's memory, bounded by its own limits.)

use std::collections::{HashSet, VecDeque};

use crate::router::forward::{Durable, ForwardError};
use crate::router::message::QoS;

/// A client with this many publishes awaiting their acknowledgement is not
/// read from until some are acknowledged: backpressure, not a disconnect.
/// MQTT 3.1.1 sets no inbound limit (v5 clients are held to
/// `limits.receive_maximum` and disconnected beyond it), and packet ids would
/// allow 65,535; 4,096 lets a pipelining publisher fill several group commits
/// of the bridge queue while keeping a client's waiting acks under 1 MiB.
pub const MAX_PENDING_ACKS: usize = 4096;

/// An incoming QoS 1/2 publish waiting for its acknowledgement.
pub(super) struct PendingAck {
    /// Packet id to acknowledge.
    pub pkid: u16,
    /// PUBACK (1) or PUBREC (2).
    pub qos: QoS,
    /// Reason code of a successful acknowledgement (v5: not authorised).
    pub reason: u8,
    /// Durability of every bridge queue that took the message.
    pub waits: Vec<Durable>,
}

/// The pending acknowledgements of one connection, oldest first.
#[derive(Default)]
pub(super) struct PendingAcks {
    queue: VecDeque<PendingAck>,
    qos1: usize,
    qos2_ids: HashSet<u16>,
}

impl PendingAcks {
    /// Adds the newest.
    pub fn push_back(&mut self, a: PendingAck) {
        match a.qos {
            QoS::AtLeastOnce => self.qos1 += 1,
            QoS::ExactlyOnce => {
                self.qos2_ids.insert(a.pkid);
            }
            QoS::AtMostOnce => {}
        }
        self.queue.push_back(a);
    }

    /// Removes the oldest.
    pub fn pop_front(&mut self) -> Option<PendingAck> {
        let a = self.queue.pop_front()?;
        match a.qos {
            QoS::AtLeastOnce => self.qos1 -= 1,
            QoS::ExactlyOnce => {
                self.qos2_ids.remove(&a.pkid);
            }
            QoS::AtMostOnce => {}
        }
        Some(a)
    }

    /// The oldest, to poll its durables.
    pub fn front_mut(&mut self) -> Option<&mut PendingAck> {
        self.queue.front_mut()
    }

    /// Nothing waits.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// So many wait that the client is not read from.
    pub fn is_full(&self) -> bool {
        self.queue.len() >= MAX_PENDING_ACKS
    }

    /// QoS 1 publishes waiting (QoS 2 ones are counted by the session's set).
    pub fn qos1_len(&self) -> usize {
        self.qos1
    }

    /// A QoS 2 publish with this packet id is still waiting for its PUBREC.
    pub fn has_qos2(&self, pkid: u16) -> bool {
        self.qos2_ids.contains(&pkid)
    }

    /// Waits until every durable of the oldest resolved.
    /// Cancel-safe: a resolved durable is popped before the next await.
    pub async fn wait_front(&mut self) -> Result<(), ForwardError> {
        let Some(front) = self.queue.front_mut() else {
            return std::future::pending().await;
        };
        while let Some(rx) = front.waits.last_mut() {
            let r = rx.await;
            front.waits.pop();
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    front.waits.clear();
                    return Err(e);
                }
                Err(_) => {
                    front.waits.clear();
                    return Err(ForwardError::Closed {
                        bridge: "queue".into(),
                    });
                }
            }
        }
        Ok(())
    }
}
