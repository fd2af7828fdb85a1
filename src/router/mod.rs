//! Publish → matching subscribers (local sessions) and forwarders (bridges).
//!
//! `publish` is synchronous: it never awaits, so no lock is held across an
//! await. It returns the [`Durable`]s the publisher must wait for before it
//! acknowledges (bridge queues in "always" mode, the store for retained
//! QoS ≥ 1 messages).

pub mod flush;
pub mod forward;
pub mod message;
pub mod retained;
pub mod subscriptions;
pub mod topic;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::clock::checked_now_ms;
use flush::Flusher;
use forward::{Durable, Forwarder};
use message::{Message, Origin, QoS};
use retained::Retained;
use subscriptions::{Match, SubOptions, SubscriptionTree};

use crate::broker::session::{Delivery, Session};

/// Routing counters, read by `$SYS`.
#[derive(Debug, Default)]
pub struct RouterStats {
    /// Messages published into the router.
    pub published: AtomicUsize,
    /// Deliveries dropped because a client queue was full.
    pub dropped: AtomicUsize,
    /// Messages that expired before delivery.
    pub expired: AtomicUsize,
}

/// The message router: subscriptions, sessions, retained messages, forwarders.
pub struct Router {
    subs: RwLock<SubscriptionTree>,
    sessions: RwLock<HashMap<Arc<str>, Arc<Session>>>,
    retained: Mutex<Retained>,
    forwarders: RwLock<Vec<Arc<dyn Forwarder>>>,
    flusher: Option<Flusher>,
    /// Counters.
    pub stats: RouterStats,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock<T>(l: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|p| p.into_inner())
}

impl Router {
    /// A router over `retained`; `flusher` makes retained QoS ≥ 1 messages durable.
    pub fn new(retained: Retained, flusher: Option<Flusher>) -> Router {
        Router {
            subs: RwLock::new(SubscriptionTree::default()),
            sessions: RwLock::new(HashMap::new()),
            retained: Mutex::new(retained),
            forwarders: RwLock::new(Vec::new()),
            flusher,
            stats: RouterStats::default(),
        }
    }

    /// Adds a bridge's outbound side.
    pub fn add_forwarder(&self, f: Arc<dyn Forwarder>) {
        write(&self.forwarders).push(f);
    }

    /// Routes one message; returns what must be durable before acknowledging it.
    pub fn publish(&self, msg: Message) -> Vec<Durable> {
        self.stats.published.fetch_add(1, Ordering::Relaxed);
        let mut durables = Vec::new();
        // `$SYS` figures are retained in memory only (Retained::set skips the store for them).
        if msg.retain {
            if let Err(e) = lock(&self.retained).set(&msg) {
                tracing::error!(topic = %msg.topic, error = %e, "retained message not stored");
            } else if msg.qos != QoS::AtMostOnce {
                if let Some(f) = &self.flusher {
                    durables.push(f.request());
                }
            }
        }
        for f in read(&self.forwarders).iter() {
            durables.extend(f.offer(&msg));
        }
        self.deliver(Arc::new(msg));
        durables
    }

    fn deliver(&self, msg: Arc<Message>) {
        let mut matches: Vec<Match> = Vec::new();
        read(&self.subs).matches(&msg.topic, &mut matches);
        if matches.is_empty() {
            return;
        }
        if msg.props.expires_at_ms.is_some() && msg.is_expired(checked_now_ms()) {
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Origin::Client(publisher) = &msg.origin {
            matches.retain(|m| !(m.opts.no_local && m.client == *publisher));
        }
        // Several overlapping subscriptions of one client make one delivery
        // at the highest granted QoS carrying every identifier (3.1.1 §3.3.5).
        matches.sort_unstable_by(|a, b| a.client.cmp(&b.client));
        let sessions = read(&self.sessions);
        for group in matches.chunk_by(|a, b| a.client == b.client) {
            let Some(session) = sessions.get(&group[0].client) else {
                continue;
            };
            let granted = group.iter().map(|m| m.opts.qos).max().unwrap_or_default();
            let d = Delivery {
                msg: msg.clone(),
                qos: msg.qos.min(granted),
                retain: msg.retain && group.iter().any(|m| m.opts.retain_as_published),
                sub_ids: group.iter().filter_map(|m| m.opts.id).collect(),
            };
            if !session.enqueue(d) {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Adds or replaces a subscription and queues the retained messages it
    /// is owed (MQTT 5 retain handling: 0 always, 1 only if new, 2 never).
    pub fn subscribe(&self, session: &Arc<Session>, filter: &str, opts: SubOptions) {
        let existed = write(&self.subs).subscribe(&session.id, filter, opts);
        session
            .lock()
            .subscriptions
            .insert(filter.to_string(), opts);
        let wants_retained = match opts.retain_handling {
            0 => true,
            1 => !existed,
            _ => false,
        };
        if !wants_retained || topic::split_shared(filter).is_some() {
            return;
        }
        let mut found = Vec::new();
        lock(&self.retained).matching(filter, checked_now_ms(), &mut found);
        for m in found {
            let qos = m.qos.min(opts.qos);
            session.enqueue(Delivery {
                msg: Arc::new(m),
                qos,
                retain: true,
                sub_ids: opts.id.into_iter().collect(),
            });
        }
    }

    /// Removes a subscription; true if it existed.
    pub fn unsubscribe(&self, session: &Arc<Session>, filter: &str) -> bool {
        session.lock().subscriptions.remove(filter);
        write(&self.subs).unsubscribe(&session.id, filter)
    }

    /// The session registered under `client_id`.
    pub fn session(&self, client_id: &str) -> Option<Arc<Session>> {
        read(&self.sessions).get(client_id).cloned()
    }

    /// Registers `session`, returning the one it replaced.
    pub fn insert_session(&self, session: Arc<Session>) -> Option<Arc<Session>> {
        write(&self.sessions).insert(session.id.clone(), session)
    }

    /// Re-adds a restored session's subscriptions to the trie (no retained replay).
    pub fn restore_subscriptions(&self, session: &Arc<Session>) {
        let subs: Vec<(String, SubOptions)> = session
            .lock()
            .subscriptions
            .iter()
            .map(|(f, o)| (f.clone(), *o))
            .collect();
        let mut tree = write(&self.subs);
        for (f, o) in subs {
            tree.subscribe(&session.id, &f, o);
        }
    }

    /// Drops `session` and its subscriptions, if it is still the registered one.
    pub fn remove_session(&self, session: &Arc<Session>) {
        let mut sessions = write(&self.sessions);
        if sessions
            .get(&session.id)
            .is_some_and(|s| Arc::ptr_eq(s, session))
        {
            sessions.remove(&session.id);
            write(&self.subs).remove_client(&session.id);
        }
    }

    /// Removes every subscription held under `session`'s client id.
    pub fn remove_subscriptions_of(&self, session: &Arc<Session>) {
        write(&self.subs).remove_client(&session.id);
    }

    /// Every registered session.
    pub fn sessions(&self) -> Vec<Arc<Session>> {
        read(&self.sessions).values().cloned().collect()
    }

    /// Number of subscriptions.
    pub fn subscription_count(&self) -> usize {
        read(&self.subs).len()
    }

    /// Number of retained messages.
    pub fn retained_count(&self) -> usize {
        lock(&self.retained).len()
    }
}
