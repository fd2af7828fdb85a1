//! Packets from a connected client: PUBLISH (aliases, ACL, receive maximum,
//! QoS 2 duplicates), the acknowledgement flows, SUBSCRIBE/UNSUBSCRIBE and
//! DISCONNECT. Every violation closes only this connection, with a reason.

use std::sync::Arc;

use bytes::BytesMut;

use super::client::{Client, End};
use super::encode::{self, reason};
use super::frame::Header;
use super::packets::{self, Inbound, PublishIn};
use super::pending::PendingAck;
use super::persist;
use super::session::OutState;
use super::stats::Stats;
use crate::clock::now_ms;
use crate::router::forward::Durable;
use crate::router::message::{Message, Origin, QoS};
use crate::router::subscriptions::SubOptions;
use crate::router::topic;

impl Client {
    /// Handles one frame; `Some(end)` closes the connection.
    pub(super) fn handle(&mut self, h: Header, bytes: BytesMut) -> Option<End> {
        let max = self.broker.limits.max_packet_size.bytes() as usize;
        let packet = match packets::decode(&h, bytes, self.version, max) {
            Ok(p) => p,
            Err(e) => return Some(self.violation(reason::MALFORMED, e.to_string())),
        };
        match packet {
            Inbound::Publish(p) => return self.on_publish(p),
            Inbound::PubAck(id) => {
                self.session.lock().take_inflight(id);
            }
            Inbound::PubRec(id, rc) => self.on_pubrec(id, rc),
            Inbound::PubRel(id) => {
                let known = self.session.lock().incoming_qos2.remove(&id);
                let rc = if known || !self.version.is_v5() {
                    reason::SUCCESS
                } else {
                    reason::PACKET_ID_NOT_FOUND
                };
                encode::ack(self.conn.out(), self.version, encode::PUBCOMP, id, rc);
            }
            Inbound::PubComp(id) => {
                self.session.lock().take_inflight(id);
            }
            Inbound::Subscribe(pkid, filters) => return self.on_subscribe(pkid, filters),
            Inbound::Unsubscribe(_, filters) if filters.is_empty() => {
                return Some(self.violation(
                    reason::PROTOCOL_ERROR,
                    "UNSUBSCRIBE without topic filters".into(),
                ));
            }
            Inbound::Unsubscribe(pkid, filters) => self.on_unsubscribe(pkid, filters),
            Inbound::PingReq => encode::pingresp(self.conn.out()),
            Inbound::Disconnect(rc, expiry) => return Some(self.on_disconnect(rc, expiry)),
            Inbound::Connect => {
                return Some(self.violation(reason::PROTOCOL_ERROR, "second CONNECT".into()));
            }
            Inbound::Auth => {
                return Some(self.violation(
                    reason::BAD_AUTH_METHOD,
                    "AUTH: enhanced authentication unsupported".into(),
                ));
            }
        }
        None
    }

    fn on_pubrec(&mut self, id: u16, rc: u8) {
        let mut s = self.session.lock();
        let Some(pos) = s.inflight.iter().position(|o| o.pkid == id) else {
            drop(s);
            let code = if self.version.is_v5() {
                reason::PACKET_ID_NOT_FOUND
            } else {
                reason::SUCCESS
            };
            encode::ack(self.conn.out(), self.version, encode::PUBREL, id, code);
            return;
        };
        if rc >= 0x80 {
            s.inflight.remove(pos);
            return;
        }
        if let Some(o) = s.inflight.get_mut(pos) {
            o.state = OutState::Released;
        }
        drop(s);
        encode::ack(
            self.conn.out(),
            self.version,
            encode::PUBREL,
            id,
            reason::SUCCESS,
        );
    }

    /// Resolves an MQTT 5 topic alias into the topic it stands for.
    fn resolve_topic(&mut self, p: &mut PublishIn) -> Result<String, End> {
        let Some(alias) = p.topic_alias.filter(|_| self.version.is_v5()) else {
            return Ok(std::mem::take(&mut p.topic));
        };
        if alias == 0 || alias > self.broker.limits.max_topic_alias {
            return Err(self.violation(
                reason::TOPIC_ALIAS_INVALID,
                format!("topic alias {alias} out of range"),
            ));
        }
        if p.topic.is_empty() {
            return match self.aliases_in.get(&alias) {
                Some(t) => Ok(t.clone()),
                None => Err(self.violation(
                    reason::PROTOCOL_ERROR,
                    format!("unknown topic alias {alias}"),
                )),
            };
        }
        self.aliases_in.insert(alias, p.topic.clone());
        Ok(std::mem::take(&mut p.topic))
    }

    fn on_publish(&mut self, mut p: PublishIn) -> Option<End> {
        Stats::add(&self.broker.stats.msgs_received, 1);
        let topic = match self.resolve_topic(&mut p) {
            Ok(t) => t,
            Err(end) => return Some(end),
        };
        if let Err(e) = topic::validate_name(&topic) {
            return Some(self.violation(
                reason::TOPIC_NAME_INVALID,
                format!("invalid topic {topic:?}: {e}"),
            ));
        }
        if p.qos == QoS::ExactlyOnce && self.resent_qos2(p.pkid) {
            return None;
        }
        if p.qos != QoS::AtMostOnce && self.version.is_v5() {
            let unacked = self.pending.qos1_len() + self.session.lock().incoming_qos2.len();
            if unacked >= usize::from(self.broker.limits.receive_maximum) {
                return Some(self.violation(
                    reason::RECEIVE_MAXIMUM_EXCEEDED,
                    "receive maximum exceeded".into(),
                ));
            }
        }
        let qos = p.qos;
        let pkid = p.pkid;
        let (allowed, code, waits) = self.route(topic, p);
        if qos == QoS::AtMostOnce {
            return None;
        }
        if qos == QoS::ExactlyOnce && (allowed || !self.version.is_v5()) {
            self.session.lock().incoming_qos2.insert(pkid);
        }
        self.pending.push_back(PendingAck {
            pkid,
            qos,
            reason: code,
            waits,
        });
        None
    }

    /// Whether QoS 2 packet `pkid` was routed once already: a re-sent PUBLISH, acknowledged
    /// again (unless its PUBREC is still waiting for the message to be stored) and not routed.
    fn resent_qos2(&mut self, pkid: u16) -> bool {
        if !self.session.lock().incoming_qos2.contains(&pkid) {
            return false;
        }
        if !self.pending.has_qos2(pkid) {
            encode::ack(
                self.conn.out(),
                self.version,
                encode::PUBREC,
                pkid,
                reason::SUCCESS,
            );
        }
        true
    }

    /// Routes `p` if the ACL allows it: (allowed, the reason code for the ack, what the ack
    /// must wait for).
    fn route(&self, topic: String, p: PublishIn) -> (bool, u8, Vec<Durable>) {
        let allowed = super::strict::client_may_publish(&topic)
            && self
                .ctx
                .auth
                .can_publish(self.username.as_deref(), &self.client_id, &topic);
        let (code, waits) = if allowed {
            let msg = Message {
                topic: Arc::from(topic),
                payload: p.payload,
                qos: p.qos,
                retain: p.retain,
                props: p.props,
                origin: Origin::Client(self.client_id.clone()),
                received_ms: now_ms(),
            };
            (reason::SUCCESS, self.broker.router.publish(msg))
        } else {
            Stats::add(&self.broker.stats.publish_denied, 1);
            tracing::warn!(topic = %topic, "publish denied by ACL; dropped");
            (
                if self.version.is_v5() {
                    reason::NOT_AUTHORIZED
                } else {
                    reason::SUCCESS
                },
                Vec::new(),
            )
        };
        (allowed, code, waits)
    }

    fn on_subscribe(&mut self, pkid: u16, filters: Vec<(String, SubOptions)>) -> Option<End> {
        let v5 = self.version.is_v5();
        let mut codes = Vec::with_capacity(filters.len());
        for (filter, mut opts) in filters {
            let code = if topic::validate_filter(&filter).is_err() {
                tracing::warn!(filter = %filter, "invalid subscription filter");
                reason::TOPIC_FILTER_INVALID
            } else if v5 && opts.no_local && topic::split_shared(&filter).is_some() {
                return Some(self.violation(
                    reason::PROTOCOL_ERROR,
                    "no-local on a shared subscription".into(),
                ));
            } else if !self.ctx.auth.can_subscribe(
                self.username.as_deref(),
                &self.client_id,
                &filter,
            ) {
                tracing::warn!(filter = %filter, "subscription denied by ACL");
                reason::NOT_AUTHORIZED
            } else {
                opts.qos = opts.qos.min(QoS::ExactlyOnce);
                if self.bridge && !v5 {
                    // A 3.1.1 bridge (Mosquitto's try_private) cannot ask for
                    // these options; like Mosquitto, give it no-local (no echo
                    // of its own messages: loop prevention) and
                    // retain-as-published (retained state propagates).
                    opts.no_local = true;
                    opts.retain_as_published = true;
                }
                self.broker.router.subscribe(&self.session, &filter, opts);
                opts.qos as u8
            };
            codes.push(code);
        }
        encode::suback(self.conn.out(), self.version, pkid, &codes);
        if let Some(store) = &self.broker.store {
            persist::save_session(store, &self.session);
        }
        None
    }

    fn on_unsubscribe(&mut self, pkid: u16, filters: Vec<String>) {
        let codes: Vec<u8> = filters
            .iter()
            .map(|f| {
                if self.broker.router.unsubscribe(&self.session, f) {
                    reason::SUCCESS
                } else {
                    0x11
                }
            })
            .collect();
        encode::unsuback(self.conn.out(), self.version, pkid, &codes);
        if let Some(store) = &self.broker.store {
            persist::save_session(store, &self.session);
        }
    }

    fn on_disconnect(&mut self, rc: u8, expiry: Option<u32>) -> End {
        if let Some(e) = expiry {
            if self.connect_expiry == 0 && e != 0 {
                return self.violation(
                    reason::PROTOCOL_ERROR,
                    "session expiry set on DISCONNECT after 0 on CONNECT".into(),
                );
            }
            let cap = self
                .broker
                .limits
                .session_expiry
                .get()
                .as_secs()
                .min(u64::from(u32::MAX)) as u32;
            self.session.lock().expiry_secs = e.min(cap);
        }
        if rc == 0x04 {
            End::WithWill
        } else {
            End::Normal
        }
    }
}
