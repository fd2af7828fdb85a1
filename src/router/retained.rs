//! Retained messages, persisted through the store.
//!
//! The index is a sorted map keyed by topic: an exact filter is one lookup, a
//! wildcard filter scans only the topics that share its literal prefix. Writes
//! go through to the store; making them durable (`Store::flush`) is the
//! caller's group-commit decision.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::Arc;

use super::message::Message;
use super::topic;
use crate::store::{Store, StoreError};

/// The retained message of every topic that has one.
pub struct Retained {
    by_topic: BTreeMap<Arc<str>, Message>,
    store: Option<Store>,
}

impl Retained {
    /// Loads the retained messages from `store` (or starts empty and in memory only).
    pub fn load(store: Option<Store>) -> Result<Retained, StoreError> {
        let mut by_topic = BTreeMap::new();
        if let Some(s) = &store {
            for msg in s.load_retained()? {
                by_topic.insert(msg.topic.clone(), msg);
            }
        }
        Ok(Retained { by_topic, store })
    }

    /// Sets the retained message of `msg.topic`: an empty payload deletes it.
    pub fn set(&mut self, msg: &Message) -> Result<(), StoreError> {
        // `$SYS` figures are republished from scratch at every start; writing them through
        // would put a flash write on an idle router every sys_interval (Mosquitto does not
        // persist them either).
        let store = self
            .store
            .as_ref()
            .filter(|_| !msg.topic.starts_with("$SYS/"));
        if msg.payload.is_empty() {
            if let Some(s) = store {
                s.delete_retained(&msg.topic)?;
            }
            self.by_topic.remove(&msg.topic);
            return Ok(());
        }
        let mut kept = msg.clone();
        kept.retain = true;
        if let Some(s) = store {
            s.put_retained(&kept)?;
        }
        self.by_topic.insert(kept.topic.clone(), kept);
        Ok(())
    }

    /// Appends the unexpired retained messages whose topic matches `filter`.
    pub fn matching(&self, filter: &str, now_ms: u64, out: &mut Vec<Message>) {
        let filter = topic::split_shared(filter).map_or(filter, |(_, inner)| inner);
        let wild = filter.find(['+', '#']);
        let Some(at) = wild else {
            if let Some(m) = self.by_topic.get(filter)
                && !m.is_expired(now_ms)
            {
                out.push(m.clone());
            }
            return;
        };
        // Topics matching "a/b/+" or "a/b/#" all start with "a/b" ("a/b/#" matches "a/b").
        let prefix = filter[..at].trim_end_matches('/');
        let range = self
            .by_topic
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded));
        for (t, m) in range {
            if !t.starts_with(prefix) {
                break;
            }
            if topic::matches(filter, t) && !m.is_expired(now_ms) {
                out.push(m.clone());
            }
        }
    }

    /// Number of retained topics (including expired ones not yet replaced).
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }

    /// True when no topic has a retained message.
    pub fn is_empty(&self) -> bool {
        self.by_topic.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::message::{Origin, QoS};

    fn msg(topic: &str, payload: &'static [u8]) -> Message {
        Message::new(topic, payload, QoS::AtLeastOnce, false, Origin::Broker)
    }

    fn topics(r: &Retained, filter: &str, now: u64) -> Vec<String> {
        let mut out = Vec::new();
        r.matching(filter, now, &mut out);
        let mut v: Vec<String> = out.iter().map(|m| m.topic.to_string()).collect();
        v.sort();
        v
    }

    fn sample() -> Retained {
        let mut r = Retained::load(None).unwrap();
        for t in [
            "a", "a/b", "a/b/c", "a/c", "ab", "b", "/x", "$SYS/up", "sport", "sport/t",
        ] {
            r.set(&msg(t, b"v")).unwrap();
        }
        r
    }

    #[test]
    fn wildcards_and_dollar() {
        let r = sample();
        assert_eq!(r.len(), 10);
        assert_eq!(topics(&r, "a", 0), ["a"]);
        assert_eq!(topics(&r, "a/#", 0), ["a", "a/b", "a/b/c", "a/c"]);
        assert_eq!(topics(&r, "a/+", 0), ["a/b", "a/c"]);
        assert_eq!(topics(&r, "+/b", 0), ["a/b"]);
        assert_eq!(topics(&r, "+/+", 0), ["/x", "a/b", "a/c", "sport/t"]);
        assert_eq!(topics(&r, "+", 0), ["a", "ab", "b", "sport"]);
        let all = topics(&r, "#", 0);
        assert_eq!(all.len(), 9);
        assert!(!all.contains(&"$SYS/up".to_string()));
        assert_eq!(topics(&r, "$SYS/#", 0), ["$SYS/up"]);
        assert_eq!(topics(&r, "$share/g/sport/#", 0), ["sport", "sport/t"]);
        assert!(topics(&r, "nothing/#", 0).is_empty());
    }

    #[test]
    fn replace_delete_retain_flag_expiry() {
        let mut r = sample();
        r.set(&msg("a", b"new")).unwrap();
        let mut out = Vec::new();
        r.matching("a", 0, &mut out);
        assert_eq!(&out[0].payload[..], b"new");
        assert!(out[0].retain, "stored copy keeps retain = true");
        r.set(&msg("a", b"")).unwrap();
        r.set(&msg("never-set", b"")).unwrap();
        assert_eq!(r.len(), 9);
        assert!(topics(&r, "a", 0).is_empty());
        let mut m = msg("exp", b"x");
        m.props.expires_at_ms = Some(1_000);
        r.set(&m).unwrap();
        assert_eq!(topics(&r, "exp", 999), ["exp"]);
        assert!(topics(&r, "exp", 1_000).is_empty());
        assert!(topics(&r, "#", 5_000).iter().all(|t| t != "exp"));
    }

    #[test]
    fn shareable_between_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Retained>();
        send_sync::<crate::router::subscriptions::SubscriptionTree>();
    }

    #[test]
    fn write_through_survives_reload() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut r = Retained::load(Some(store.clone())).unwrap();
        r.set(&msg("k/1", b"one")).unwrap();
        r.set(&msg("k/2", b"two")).unwrap();
        r.set(&msg("k/1", b"")).unwrap();
        r.set(&msg("$SYS/broker/uptime", b"9 seconds")).unwrap();
        assert_eq!(topics(&r, "$SYS/#", 0), ["$SYS/broker/uptime"]);
        drop(r);
        let r = Retained::load(Some(store)).unwrap();
        assert_eq!(topics(&r, "k/#", 0), ["k/2"]);
        assert!(topics(&r, "$SYS/#", 0).is_empty(), "$SYS is not persisted");
    }
}
