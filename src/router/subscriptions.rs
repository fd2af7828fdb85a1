//! The subscription trie: filter -> subscribers, with shared subscriptions.
//!
//! One node per filter level; `+` and `#` levels have their own child slots so
//! matching a topic walks at most two branches per level. Shared subscriptions
//! (`$share/{group}/{filter}`) live at the node of their inner filter, one
//! group per name, and each matching publish goes to one member, round-robin.

use std::collections::{HashMap, HashSet};
use std::str::Split;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::message::QoS;
use super::topic::split_shared;

/// MQTT 5 subscription options (3.1.1 uses only `qos`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubOptions {
    /// Maximum QoS granted.
    pub qos: QoS,
    /// Do not deliver the client's own publishes back to it.
    pub no_local: bool,
    /// Keep the retain flag as published on forwarded messages.
    pub retain_as_published: bool,
    /// 0 = send retained on subscribe, 1 = only if new, 2 = never.
    pub retain_handling: u8,
    /// Subscription identifier.
    pub id: Option<u32>,
}

/// One subscription that a topic matched.
#[derive(Debug, Clone)]
pub struct Match {
    /// The subscribing client id.
    pub client: Arc<str>,
    /// Its options for this subscription.
    pub opts: SubOptions,
    /// The filter as subscribed (with any `$share/` prefix).
    pub filter: Arc<str>,
}

/// One subscriber entry at a node.
#[derive(Debug, Clone)]
struct Sub {
    opts: SubOptions,
    filter: Arc<str>,
}

/// A shared subscription group: members in subscription order and a round-robin cursor.
#[derive(Debug, Default)]
struct Group {
    members: Vec<(Arc<str>, Sub)>,
    // Interior mutability so `matches` can take `&self` (readers may share the tree).
    next: AtomicUsize,
}

#[derive(Debug, Default)]
struct Node {
    children: HashMap<Box<str>, Node>,
    plus: Option<Box<Node>>,
    hash: Option<Box<Node>>,
    subs: HashMap<Arc<str>, Sub>,
    shared: HashMap<Box<str>, Group>,
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.subs.is_empty()
            && self.shared.is_empty()
    }

    fn child_mut(&mut self, level: &str) -> &mut Node {
        match level {
            "+" => self.plus.get_or_insert_with(Box::default),
            "#" => self.hash.get_or_insert_with(Box::default),
            l => self.children.entry(Box::from(l)).or_default(),
        }
    }

    /// Removes `client`'s subscription (plain or in `group`) below this node; prunes empty children.
    fn remove(&mut self, mut levels: Split<'_, char>, client: &str, group: Option<&str>) -> bool {
        let Some(level) = levels.next() else {
            return match group {
                None => self.subs.remove(client).is_some(),
                Some(g) => remove_member(&mut self.shared, g, client),
            };
        };
        let removed;
        match level {
            "+" | "#" => {
                let slot = if level == "+" {
                    &mut self.plus
                } else {
                    &mut self.hash
                };
                let Some(child) = slot.as_deref_mut() else {
                    return false;
                };
                removed = child.remove(levels, client, group);
                if child.is_empty() {
                    *slot = None;
                }
            }
            l => {
                let Some(child) = self.children.get_mut(l) else {
                    return false;
                };
                removed = child.remove(levels, client, group);
                if child.is_empty() {
                    self.children.remove(l);
                }
            }
        }
        removed
    }

    fn emit(&self, out: &mut Vec<Match>) {
        for (client, sub) in &self.subs {
            out.push(Match {
                client: client.clone(),
                opts: sub.opts,
                filter: sub.filter.clone(),
            });
        }
        for group in self.shared.values() {
            if group.members.is_empty() {
                continue;
            }
            let i = group.next.fetch_add(1, Ordering::Relaxed) % group.members.len();
            let (client, sub) = &group.members[i];
            out.push(Match {
                client: client.clone(),
                opts: sub.opts,
                filter: sub.filter.clone(),
            });
        }
    }

    /// Collects matches for the remaining topic levels; `dollar` is set only at the
    /// root of a `$` topic, where wildcards must not match.
    fn collect(&self, mut rest: Split<'_, char>, dollar: bool, out: &mut Vec<Match>) {
        if !dollar && let Some(h) = &self.hash {
            // "#" matches the remaining levels, including none ("sport/#" matches "sport").
            h.emit(out);
        }
        let Some(level) = rest.next() else {
            self.emit(out);
            return;
        };
        if let Some(child) = self.children.get(level) {
            child.collect(rest.clone(), false, out);
        }
        if !dollar && let Some(p) = &self.plus {
            p.collect(rest, false, out);
        }
    }
}

fn remove_member(shared: &mut HashMap<Box<str>, Group>, group: &str, client: &str) -> bool {
    let Some(g) = shared.get_mut(group) else {
        return false;
    };
    let before = g.members.len();
    g.members.retain(|(c, _)| &**c != client);
    let removed = g.members.len() != before;
    if g.members.is_empty() {
        shared.remove(group);
    }
    removed
}

/// Every client's subscriptions, indexed by filter level for matching.
#[derive(Default)]
pub struct SubscriptionTree {
    root: Node,
    // client -> its filters (as subscribed), for remove_client and len.
    by_client: HashMap<Arc<str>, HashSet<Arc<str>>>,
    count: usize,
}

impl SubscriptionTree {
    /// Adds or replaces `client`'s subscription to `filter`; true if it replaced one.
    pub fn subscribe(&mut self, client: &Arc<str>, filter: &str, opts: SubOptions) -> bool {
        let filter_arc: Arc<str> = Arc::from(filter);
        let (group, inner) = match split_shared(filter) {
            Some((g, inner)) => (Some(g), inner),
            None => (None, filter),
        };
        let mut node = &mut self.root;
        for level in inner.split('/') {
            node = node.child_mut(level);
        }
        let sub = Sub {
            opts,
            filter: filter_arc.clone(),
        };
        let replaced = match group {
            None => node.subs.insert(client.clone(), sub).is_some(),
            Some(g) => {
                let group = node.shared.entry(Box::from(g)).or_default();
                match group.members.iter_mut().find(|(c, _)| c == client) {
                    Some(member) => {
                        member.1 = sub;
                        true
                    }
                    None => {
                        group.members.push((client.clone(), sub));
                        false
                    }
                }
            }
        };
        if !replaced {
            self.count += 1;
            self.by_client
                .entry(client.clone())
                .or_default()
                .insert(filter_arc);
        }
        replaced
    }

    /// Removes `client`'s subscription to exactly `filter`; true if there was one.
    pub fn unsubscribe(&mut self, client: &Arc<str>, filter: &str) -> bool {
        let (group, inner) = match split_shared(filter) {
            Some((g, inner)) => (Some(g), inner),
            None => (None, filter),
        };
        let removed = self.root.remove(inner.split('/'), client, group);
        if removed {
            self.count -= 1;
            if let Some(filters) = self.by_client.get_mut(client) {
                filters.remove(filter);
                if filters.is_empty() {
                    self.by_client.remove(client);
                }
            }
        }
        removed
    }

    /// Removes every subscription of `client`.
    pub fn remove_client(&mut self, client: &Arc<str>) {
        let Some(filters) = self.by_client.remove(client) else {
            return;
        };
        for filter in filters {
            let (group, inner) = match split_shared(&filter) {
                Some((g, inner)) => (Some(g), inner),
                None => (None, &*filter),
            };
            if self.root.remove(inner.split('/'), client, group) {
                self.count -= 1;
            }
        }
    }

    /// Appends every subscription matching `topic`: all plain ones (a client may appear
    /// once per overlapping filter) and one member per matching shared group.
    pub fn matches(&self, topic: &str, out: &mut Vec<Match>) {
        self.root
            .collect(topic.split('/'), topic.starts_with('$'), out);
    }

    /// Number of (client, filter) subscriptions.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when nobody subscribes to anything.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests;
