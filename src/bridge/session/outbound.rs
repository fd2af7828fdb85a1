//! The outbound half of a session: queue records become PUBLISHes within
//! the window and the pace, come back as acknowledgements, and are released
//! from the queue only then. After a reconnect into a kept session, the
//! packets still in flight go out again first, under their packet ids.

use super::{End, Session};
use crate::bridge::codec::{OutPublish, Outgoing, Version};
use crate::bridge::inflight::{Pending, Stage};
use crate::clock::now_ms;
use crate::queue::Record;
use crate::router::message::{Message, QoS};

/// QoS 2 messages in flight at most. Mosquitto takes no more than
/// max_inflight_messages (default 20) awaiting PUBREL from one client and, over
/// MQTT 3.1.1, drops the rest behind a PUBREC that cannot say so.
pub const QOS2_INFLIGHT_MAX: usize = 20;
/// MQTT 5 user property carrying a stable id per queued message.
pub const MSG_ID_PROPERTY: &str = "edgemq-msg-id";

impl Session<'_> {
    /// Records that may be taken now: the window's free slots, none while
    /// taken records are held back.
    pub(super) fn free_slots(&self) -> usize {
        if !self.held.is_empty() {
            return 0;
        }
        self.window.saturating_sub(self.carry.inflight.len())
    }

    /// A QoS 2 record must wait while QOS2_INFLIGHT_MAX are in flight; QoS 0
    /// and 1 records use the whole window.
    fn must_hold(&self, record: &Record) -> bool {
        Message::peek_qos(&record.data) == Some(QoS::ExactlyOnce)
            && self.carry.inflight.qos2_len() >= QOS2_INFLIGHT_MAX
    }

    /// Sends held records, oldest first, as far as the window and the QoS 2
    /// limit allow.
    pub(super) async fn release_held(&mut self) -> Result<(), End> {
        let mut sent = false;
        while let Some((_, record)) = self.held.front() {
            if self.must_hold(record) || self.carry.inflight.len() >= self.window {
                break;
            }
            if let Some((seq, record)) = self.held.pop_front() {
                self.send_record(seq, record)?;
                sent = true;
            }
        }
        if sent {
            self.flush().await?;
        }
        Ok(())
    }

    /// The broker acknowledged `pkid`: release its queue record.
    pub(super) fn completed(&mut self, pkid: u16, refused: Option<String>) {
        let Some(pending) = self.carry.inflight.complete(pkid) else {
            tracing::debug!(pkid, "acknowledgement for a packet id not in flight");
            return;
        };
        let Some(seq) = pending.seq else { return };
        self.shared.queue.ack(seq);
        self.shared.counters.acked(1);
        if let Some(reason) = refused {
            tracing::warn!(seq, %reason, "central broker refused a message; dropped");
            self.shared.counters.dropped(1);
        }
    }

    /// Into a kept session: PUBREL what was released, PUBLISH (dup, same
    /// packet id) what was not acknowledged, oldest first (MQTT 3.1.1 §4.4).
    pub(super) fn resume(&mut self, kept: Vec<(u16, Pending)>) -> Result<(), End> {
        for (pkid, pending) in kept {
            match (pending.stage, pending.seq, pending.data) {
                (Stage::PubComp, ..) => self.encode(&Outgoing::PubRel(pkid))?,
                (_, Some(seq), Some(data)) => match Message::decode(data) {
                    Ok(msg) => self.publish_record(seq, &msg, pkid, true)?,
                    Err(_) => self.completed(pkid, Some("undecodable record".into())),
                },
                _ => {}
            }
        }
        Ok(())
    }

    /// Takes up to `free` records (within the pace) and sends them.
    pub(super) async fn pull(&mut self, free: usize) -> Result<(), End> {
        let n = self.carry.pace.available(free);
        if n == 0 {
            return Ok(());
        }
        let batch = self.shared.queue.next_batch(n);
        self.carry.pace.take(batch.len());
        for (seq, record) in batch {
            if self.held.is_empty() && !self.must_hold(&record) {
                self.send_record(seq, record)?;
            } else {
                self.held.push_back((seq, record));
            }
        }
        self.flush().await
    }

    fn send_record(&mut self, seq: u64, record: Record) -> Result<(), End> {
        if self.carry.inflight.by_seq(seq).is_some() {
            return Ok(()); // already re-sent by resume()
        }
        let msg = match Message::decode(record.data.clone()) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(seq, error = %e, "undecodable queue record; dropped");
                self.drop_record(seq);
                return Ok(());
            }
        };
        if msg.is_expired(now_ms()) {
            tracing::debug!(seq, topic = %msg.topic, "message expired in the queue; dropped");
            self.drop_record(seq);
            return Ok(());
        }
        let pkid = match msg.qos {
            QoS::AtMostOnce => {
                self.acks_after_write.push(seq);
                0
            }
            qos => {
                let stage = if qos == QoS::ExactlyOnce {
                    Stage::PubRec
                } else {
                    Stage::PubAck
                };
                let pending = Pending::record(seq, stage, record.data);
                self.carry
                    .inflight
                    .insert(pending)
                    .ok_or_else(|| End::Lost("no free packet id (65,535 in flight)".into()))?
            }
        };
        self.publish_record(seq, &msg, pkid, false)
    }

    /// Encodes one queued message as PUBLISH, counting it (and re-sends).
    fn publish_record(&mut self, seq: u64, msg: &Message, pkid: u16, dup: bool) -> Result<(), End> {
        if self.carry.max_sent_seq.is_some_and(|max| seq <= max) {
            self.shared.counters.duplicates(1);
        }
        self.carry.max_sent_seq = Some(self.carry.max_sent_seq.map_or(seq, |m| m.max(seq)));
        self.shared.counters.sent(1);
        let msg_id = (self.shared.message_id_property && self.link.version == Version::V5)
            .then(|| (MSG_ID_PROPERTY, format!("{:x}-{:x}", msg.received_ms, seq)));
        self.encode(&Outgoing::Publish(OutPublish {
            topic: &msg.topic,
            payload: msg.payload.clone(),
            qos: msg.qos,
            retain: msg.retain,
            dup,
            pkid,
            props: &msg.props,
            expiry: msg.remaining_expiry(now_ms()),
            msg_id,
        }))
    }

    fn drop_record(&mut self, seq: u64) {
        self.shared.queue.ack(seq);
        self.shared.counters.dropped(1);
    }
}
