//! Messages to a connected client: queued deliveries moved into the inflight
//! window in batches and encoded into its write buffer (with server-side topic
//! aliases), and the re-send of what a resumed session left unacknowledged.

use std::sync::Arc;

use super::client::Client;
use super::encode::{self, PublishOut};
use super::session::{Delivery, OutState, Outgoing};
use super::stats::Stats;
use crate::clock::checked_now_ms;
use crate::router::message::QoS;

/// Deliveries moved from the queue per wakeup before the buffer is flushed.
const FILL_BATCH: usize = 256;
/// Flush before the write buffer grows beyond this.
const FLUSH_AT: usize = 64 * 1024;

impl Client {
    /// Moves queued deliveries into the inflight window and encodes them.
    pub(super) fn fill(&mut self) {
        let now = checked_now_ms();
        let mut batch = std::mem::take(&mut self.batch);
        let mut bytes = 0;
        {
            let mut s = self.session.lock();
            while batch.len() < FILL_BATCH && bytes < FLUSH_AT {
                let Some(d) = s.queue.pop_front() else { break };
                if d.qos != QoS::AtMostOnce && s.inflight.len() >= self.inflight_max {
                    s.queue.push_front(d);
                    break;
                }
                if d.msg.is_expired(now) {
                    continue;
                }
                bytes += d.msg.topic.len() + d.msg.payload.len();
                let pkid = if d.qos == QoS::AtMostOnce {
                    0
                } else {
                    let id = s.next_pkid();
                    s.inflight.push_back(Outgoing {
                        pkid: id,
                        delivery: d.clone(),
                        state: OutState::Published,
                    });
                    id
                };
                batch.push((pkid, d));
            }
        }
        for (pkid, d) in batch.drain(..) {
            if self
                .ctx
                .auth
                .can_receive(self.username.as_deref(), &self.client_id, &d.msg.topic)
            {
                self.send_publish(pkid, &d, false, now);
            } else if pkid != 0 {
                self.session.lock().take_inflight(pkid);
            }
        }
        self.batch = batch;
    }

    fn send_publish(&mut self, pkid: u16, d: &Delivery, dup: bool, now: u64) {
        let alias = self.alias_for(&d.msg.topic);
        let out = PublishOut {
            qos: d.qos,
            retain: d.retain,
            dup,
            pkid,
            sub_ids: &d.sub_ids,
            alias,
        };
        if encode::publish(
            self.conn.out(),
            self.version,
            &d.msg,
            &out,
            now,
            self.client_max_packet,
        ) {
            Stats::add(&self.broker.stats.msgs_sent, 1);
        } else {
            Stats::add(&self.broker.stats.oversize_dropped, 1);
            tracing::debug!(topic = %d.msg.topic, "message larger than the client's maximum packet size; skipped");
            if pkid != 0 {
                self.session.lock().take_inflight(pkid);
            }
        }
    }

    /// Server-to-client topic alias: reuse one, or assign a new one while any are left.
    fn alias_for(&mut self, topic: &Arc<str>) -> Option<(u16, bool)> {
        if self.alias_out_max == 0 {
            return None;
        }
        if let Some(&a) = self.aliases_out.get(topic) {
            return Some((a, false));
        }
        if self.aliases_out.len() >= usize::from(self.alias_out_max) {
            return None;
        }
        let a = self.aliases_out.len() as u16 + 1;
        self.aliases_out.insert(topic.clone(), a);
        Some((a, true))
    }

    /// A resumed session re-sends what was unacknowledged, in order, with DUP.
    pub(super) fn resend_inflight(&mut self) {
        let now = checked_now_ms();
        let inflight: Vec<Outgoing> = self.session.lock().inflight.iter().cloned().collect();
        for o in inflight {
            match o.state {
                OutState::Published => self.send_publish(o.pkid, &o.delivery, true, now),
                OutState::Released => {
                    encode::ack(self.conn.out(), self.version, encode::PUBREL, o.pkid, 0)
                }
            }
        }
    }
}
