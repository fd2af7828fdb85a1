//! Persistent sessions in the store: subscriptions are saved when they
//! change; queued and inflight messages are saved at shutdown and restored
//! at startup, so a persistent session survives a broker restart.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::session::{Delivery, OutState, Outgoing, Session};
use crate::clock::now_ms;
use crate::config::model::Overflow;
use crate::router::Router;
use crate::router::message::QoS;
use crate::router::subscriptions::SubOptions;
use crate::router::topic;
use crate::store::Store;

const FORMAT: u8 = 1;

/// The session record. With `inflight`, it also lists the packet id and state
/// of each unacknowledged outgoing message, which [`snapshot`] stores first
/// among the session's messages: a restart must re-send a QoS 2 message with
/// its old packet id and DUP (or only its PUBREL), never as a new message.
fn encode(session: &Session, inflight: bool) -> Bytes {
    let s = session.lock();
    let mut b = BytesMut::new();
    b.put_u8(FORMAT);
    b.put_u32(s.expiry_secs);
    // When the client left (now if it is connected): the expiry runs from
    // there, not from when the broker happened to save the session.
    let away_ms = s
        .disconnected_at
        .map_or(0, |t| t.elapsed().as_millis() as u64);
    b.put_u64(now_ms().saturating_sub(away_ms));
    b.put_u32(s.subscriptions.len() as u32);
    for (filter, o) in &s.subscriptions {
        b.put_u16(filter.len() as u16);
        b.put_slice(filter.as_bytes());
        b.put_u8(
            o.qos as u8
                | u8::from(o.no_local) << 2
                | u8::from(o.retain_as_published) << 3
                | (o.retain_handling & 3) << 4,
        );
        b.put_u32(o.id.unwrap_or(0));
    }
    let outgoing: Vec<&Outgoing> = if inflight {
        s.inflight.iter().collect()
    } else {
        Vec::new()
    };
    b.put_u16(outgoing.len() as u16);
    for o in outgoing {
        b.put_u16(o.pkid);
        b.put_u8(u8::from(o.state == OutState::Released));
    }
    b.freeze()
}

struct Record {
    expiry_secs: u32,
    /// Wall-clock ms when the client disconnected (or when saved, if it was connected).
    saved_ms: u64,
    subscriptions: Vec<(String, SubOptions)>,
    /// (packet id, state) of the first stored messages, which were inflight.
    inflight: Vec<(u16, OutState)>,
}

fn decode(mut b: Bytes) -> Option<Record> {
    if b.remaining() < 17 || b.get_u8() != FORMAT {
        return None;
    }
    let expiry_secs = b.get_u32();
    let saved_ms = b.get_u64();
    let n = b.get_u32() as usize;
    let mut subscriptions = Vec::with_capacity(n.min(1024));
    for _ in 0..n {
        if b.remaining() < 2 {
            return None;
        }
        let len = usize::from(b.get_u16());
        if b.remaining() < len + 5 {
            return None;
        }
        let filter = String::from_utf8(b.split_to(len).to_vec()).ok()?;
        let flags = b.get_u8();
        let id = b.get_u32();
        let opts = SubOptions {
            qos: QoS::from_u8(flags & 3)?,
            no_local: flags & 4 != 0,
            retain_as_published: flags & 8 != 0,
            retain_handling: (flags >> 4) & 3,
            id: (id != 0).then_some(id),
        };
        subscriptions.push((filter, opts));
    }
    // Records written before the inflight list existed simply end here.
    let mut inflight = Vec::new();
    if b.remaining() >= 2 {
        let n = b.get_u16();
        for _ in 0..n {
            if b.remaining() < 3 {
                return None;
            }
            let pkid = b.get_u16();
            let state = if b.get_u8() == 1 {
                OutState::Released
            } else {
                OutState::Published
            };
            inflight.push((pkid, state));
        }
    }
    Some(Record {
        expiry_secs,
        saved_ms,
        subscriptions,
        inflight,
    })
}

/// Saves a persistent session's subscriptions and expiry (not its messages).
pub fn save_session(store: &Store, session: &Session) {
    if session.lock().expiry_secs == 0 {
        return;
    }
    if let Err(e) = store.put_session(&session.id, &encode(session, false)) {
        tracing::error!(client_id = %session.id, error = %e, "session not saved");
    }
}

/// Forgets a session in the store.
pub fn delete_session(store: &Store, client_id: &str) {
    if let Err(e) = store.delete_session(client_id) {
        tracing::error!(client_id, error = %e, "session not deleted from the store");
    }
}

/// Saves every persistent session with its inflight and queued messages (shutdown).
pub fn snapshot(store: &Store, router: &Router) -> usize {
    let mut saved = 0;
    for session in router.sessions() {
        if session.lock().expiry_secs == 0 {
            continue;
        }
        delete_session(store, &session.id);
        if let Err(e) = store.put_session(&session.id, &encode(&session, true)) {
            tracing::error!(client_id = %session.id, error = %e, "session not saved");
            continue;
        }
        let pending: Vec<Delivery> = {
            let s = session.lock();
            s.inflight
                .iter()
                .map(|o| o.delivery.clone())
                .chain(s.queue.iter().cloned())
                .collect()
        };
        for (seq, d) in pending.into_iter().enumerate() {
            let mut m = (*d.msg).clone();
            m.qos = d.qos;
            m.retain = d.retain;
            if let Err(e) = store.put_session_msg(&session.id, seq as u64, &m) {
                tracing::error!(client_id = %session.id, error = %e, "queued message not saved");
            }
        }
        saved += 1;
    }
    saved
}

/// The MQTT 5 subscription identifiers of the subscriptions matching `topic`
/// (the stored message does not carry them; the subscriptions do).
fn sub_ids_for(subs: &HashMap<String, SubOptions>, topic: &str) -> Vec<u32> {
    subs.iter()
        .filter(|(f, _)| {
            topic::matches(topic::split_shared(f).map_or(f.as_str(), |(_, i)| i), topic)
        })
        .filter_map(|(_, o)| o.id)
        .collect()
}

/// Restores persistent sessions (offline) with their subscriptions and messages.
pub fn restore(store: &Store, router: &Router, max_queued: usize, overflow: Overflow) -> usize {
    let sessions = match store.sessions() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "stored sessions unreadable; starting without them");
            return 0;
        }
    };
    let mut restored = 0;
    for (id, bytes) in sessions {
        let Some(rec) = decode(bytes) else {
            tracing::warn!(client_id = %id, "stored session undecodable; dropped");
            delete_session(store, &id);
            continue;
        };
        // Corrected: a clock step since the save is no time away (crate::clock).
        let saved_ms = crate::clock::corrected(rec.saved_ms);
        let away = Duration::from_millis(now_ms().saturating_sub(saved_ms));
        if rec.expiry_secs != u32::MAX && away.as_secs() >= u64::from(rec.expiry_secs) {
            delete_session(store, &id);
            continue;
        }
        let session = Session::new(Arc::from(id.as_str()), max_queued, overflow);
        {
            let mut s = session.lock();
            s.expiry_secs = rec.expiry_secs;
            s.disconnected_at = Instant::now().checked_sub(away).or(Some(Instant::now()));
            s.subscriptions = rec.subscriptions.into_iter().collect();
        }
        let msgs = store.session_msgs(&id).unwrap_or_default();
        let mut inflight = rec.inflight.into_iter();
        for (_, m) in msgs {
            let mut s = session.lock();
            let delivery = Delivery {
                qos: m.qos,
                retain: m.retain,
                sub_ids: sub_ids_for(&s.subscriptions, &m.topic),
                msg: Arc::new(m),
            };
            match inflight.next() {
                Some((pkid, state)) => s.inflight.push_back(Outgoing {
                    pkid,
                    delivery,
                    state,
                }),
                None => s.queue.push_back(delivery),
            }
        }
        router.restore_subscriptions(&session);
        router.insert_session(session);
        restored += 1;
    }
    restored
}
