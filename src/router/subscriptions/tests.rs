//! Unit tests of the subscription tree: wildcards, `$` topics, shared groups, pruning.

use super::*;

fn c(s: &str) -> Arc<str> {
    Arc::from(s)
}

fn q(qos: u8) -> SubOptions {
    SubOptions {
        qos: QoS::from_u8(qos).unwrap(),
        ..SubOptions::default()
    }
}

/// (client, filter) pairs matching `topic`, sorted.
fn hits(t: &SubscriptionTree, topic: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    t.matches(topic, &mut out);
    let mut v: Vec<_> = out
        .iter()
        .map(|m| (m.client.to_string(), m.filter.to_string()))
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn wildcards_and_overlap() {
    let mut t = SubscriptionTree::default();
    let (a, b) = (c("a"), c("b"));
    for f in ["sport/#", "sport/+", "sport/tennis", "#", "+/+"] {
        assert!(!t.subscribe(&a, f, q(0)));
    }
    t.subscribe(&b, "sport/tennis/#", q(1));
    assert_eq!(t.len(), 6);
    let got = hits(&t, "sport/tennis");
    let want = [
        ("a", "#"),
        ("a", "+/+"),
        ("a", "sport/#"),
        ("a", "sport/+"),
        ("a", "sport/tennis"),
        ("b", "sport/tennis/#"),
    ];
    assert_eq!(got, pairs(&want));
    assert_eq!(hits(&t, "sport"), pairs(&[("a", "#"), ("a", "sport/#")]));
    assert_eq!(hits(&t, "news"), pairs(&[("a", "#")]));
    assert_eq!(hits(&t, "/x"), pairs(&[("a", "#"), ("a", "+/+")]));
    assert_eq!(hits(&t, "a/b/c"), pairs(&[("a", "#")]));
}

#[test]
fn dollar_topics_skip_first_level_wildcards() {
    let mut t = SubscriptionTree::default();
    let a = c("a");
    for f in ["#", "+/broker/#", "$SYS/#", "$SYS/+/uptime", "$share/g/#"] {
        t.subscribe(&a, f, q(0));
    }
    let got = hits(&t, "$SYS/broker/uptime");
    assert_eq!(got, pairs(&[("a", "$SYS/#"), ("a", "$SYS/+/uptime")]));
    assert_eq!(hits(&t, "$x"), vec![]);
}

#[test]
fn replace_unsubscribe_prune() {
    let mut t = SubscriptionTree::default();
    let a = c("a");
    assert!(!t.subscribe(&a, "x/+/y", q(0)));
    assert!(t.subscribe(&a, "x/+/y", q(2)));
    assert!(!t.subscribe(&a, "$share/g/x/+/y", q(1)));
    assert!(t.subscribe(&a, "$share/g/x/+/y", q(2)));
    assert_eq!(t.len(), 2);
    let mut out = Vec::new();
    t.matches("x/1/y", &mut out);
    assert!(out.iter().all(|m| m.opts.qos == QoS::ExactlyOnce));
    assert!(!t.unsubscribe(&a, "x/+"));
    assert!(t.unsubscribe(&a, "x/+/y"));
    assert!(!t.unsubscribe(&a, "x/+/y"));
    assert_eq!(hits(&t, "x/1/y"), pairs(&[("a", "$share/g/x/+/y")]));
    assert!(t.unsubscribe(&a, "$share/g/x/+/y"));
    assert!(t.is_empty());
    assert!(t.root.is_empty(), "empty nodes pruned");
    assert!(t.by_client.is_empty());
}

#[test]
fn shared_round_robin_per_group() {
    let mut t = SubscriptionTree::default();
    let (a, b, x) = (c("a"), c("b"), c("x"));
    t.subscribe(&a, "$share/g/s/#", q(1));
    t.subscribe(&b, "$share/g/s/#", q(1));
    t.subscribe(&x, "$share/h/s/+", q(0));
    t.subscribe(&x, "s/+", q(0));
    let mut per_client = HashMap::<String, usize>::new();
    for _ in 0..10 {
        let mut out = Vec::new();
        t.matches("s/1", &mut out);
        assert_eq!(out.len(), 3, "one per group plus the plain one");
        for m in out {
            *per_client.entry(m.client.to_string()).or_default() += 1;
        }
    }
    assert_eq!(per_client["a"], 5);
    assert_eq!(per_client["b"], 5);
    assert_eq!(per_client["x"], 20);
    t.remove_client(&a);
    assert_eq!(t.len(), 3);
    assert_eq!(hits(&t, "s"), pairs(&[("b", "$share/g/s/#")]));
}

#[test]
fn remove_client_leaves_others() {
    let mut t = SubscriptionTree::default();
    let (a, b) = (c("a"), c("b"));
    for f in ["a/b", "a/#", "+", "$share/g/a/b"] {
        t.subscribe(&a, f, q(0));
        t.subscribe(&b, f, q(1));
    }
    t.remove_client(&a);
    t.remove_client(&a);
    assert_eq!(t.len(), 4);
    let mut out = Vec::new();
    t.matches("a/b", &mut out);
    assert_eq!(out.len(), 3);
    assert!(out.iter().all(|m| &*m.client == "b"));
    t.remove_client(&b);
    assert!(t.is_empty() && t.root.is_empty());
}
