//! ACL files parsed and decided: seed 000's per-gateway isolation, users, anonymous, deny,
//! client-id patterns, syntax errors by line.

use super::*;

#[test]
fn acl_seed_000_per_gateway_isolation() {
    let a = acl("# per gateway\npattern readwrite meters/%u/#\n");
    let gw = Some("GW-0001");
    assert!(a.can_publish(gw, "any", "meters/GW-0001/data"));
    assert!(a.can_publish(gw, "any", "meters/GW-0001"));
    assert!(!a.can_publish(gw, "any", "meters/GW-0002/data"));
    assert!(!a.can_publish(gw, "any", "other/GW-0001"));
    assert!(a.can_subscribe(gw, "any", "meters/GW-0001/#"));
    assert!(a.can_subscribe(gw, "any", "meters/GW-0001/+/status"));
    assert!(
        !a.can_subscribe(gw, "any", "meters/#"),
        "would cover other gateways"
    );
    assert!(!a.can_subscribe(gw, "any", "meters/+/data"));
    assert!(!a.can_subscribe(gw, "any", "#"));
    assert!(a.can_receive(gw, "any", "meters/GW-0001/x"));
    assert!(!a.can_receive(gw, "any", "meters/GW-0002/x"));
    // Anonymous clients have no %u: the pattern does not apply to them.
    assert!(!a.can_publish(None, "any", "meters/GW-0001/data"));
    assert!(
        !a.can_publish(Some(""), "any", "meters//data"),
        "an empty username has no %u"
    );
    // Names with wildcards or separators must not widen or shift the pattern.
    for evil in ["#", "+", "GW-0001/../GW-0002", "a/b", "x#"] {
        assert!(!a.can_publish(
            Some(evil),
            "c",
            &format!("meters/{evil}/x").replace(['#', '+'], "z")
        ));
        assert!(!a.can_subscribe(Some(evil), "c", "meters/#"), "{evil}");
        assert!(
            !a.can_subscribe(Some(evil), "c", &format!("meters/{evil}")),
            "{evil}"
        );
    }
    assert!(!a.can_publish(Some("a/b"), "c", "meters/a/b/x"));
}

#[test]
fn acl_users_topics_access_and_anonymous() {
    let a = acl("topic read public/#\n\
         topic write  anon/in\n\
         \n\
         user alice\n\
         topic readwrite home/#\n\
         topic read sensors/+/temp\n\
         topic write cmd/lamp\n\
         topic logs/alice\n\
         user bob smith\n\
         topic read home/bob/#\n");
    // Anonymous: only the lines before the first `user`.
    assert!(a.can_subscribe(None, "c", "public/#"));
    assert!(!a.can_publish(None, "c", "public/x"));
    assert!(a.can_publish(None, "c", "anon/in"));
    assert!(!a.can_subscribe(None, "c", "anon/in"));
    assert!(!a.can_publish(None, "c", "home/x"));
    // alice: read vs write vs readwrite, default readwrite, and no anonymous rules.
    let al = Some("alice");
    assert!(a.can_publish(al, "c", "home/kitchen/light") && a.can_subscribe(al, "c", "home/#"));
    assert!(
        a.can_subscribe(al, "c", "sensors/+/temp") && a.can_subscribe(al, "c", "sensors/k/temp")
    );
    assert!(!a.can_publish(al, "c", "sensors/k/temp"));
    assert!(!a.can_subscribe(al, "c", "sensors/#"));
    assert!(a.can_publish(al, "c", "cmd/lamp") && !a.can_subscribe(al, "c", "cmd/lamp"));
    assert!(a.can_publish(al, "c", "logs/alice") && a.can_subscribe(al, "c", "logs/alice"));
    assert!(
        !a.can_subscribe(al, "c", "public/#"),
        "anonymous rules are not alice's"
    );
    assert!(
        !a.can_subscribe(Some(""), "c", "public/#"),
        "nor an empty username's"
    );
    // A username with a space, and a user with no rules at all.
    assert!(a.can_subscribe(Some("bob smith"), "c", "home/bob/+"));
    assert!(!a.can_publish(Some("bob smith"), "c", "home/bob/x"));
    assert!(!a.can_subscribe(Some("carol"), "c", "home/#"));
    // `#` does not reach $SYS.
    let root = acl("user admin\ntopic #\n");
    assert!(
        root.can_publish(Some("admin"), "c", "a/b")
            && !root.can_subscribe(Some("admin"), "c", "$SYS/#")
    );
    assert!(acl("user admin\ntopic read $SYS/#\n").can_subscribe(
        Some("admin"),
        "c",
        "$SYS/broker/uptime"
    ));
}

#[test]
fn acl_deny_wins_and_client_id_patterns() {
    let a = acl("pattern read devices/%c/config\n\
         pattern write devices/%c/state/#\n\
         pattern deny devices/%c/state/secret\n\
         user ops\n\
         topic readwrite devices/#\n\
         topic deny devices/vault/#\n");
    assert!(a.can_subscribe(None, "dev1", "devices/dev1/config"));
    assert!(!a.can_publish(None, "dev1", "devices/dev1/config"));
    assert!(a.can_publish(None, "dev1", "devices/dev1/state/x"));
    assert!(!a.can_publish(None, "dev1", "devices/dev1/state/secret"));
    assert!(!a.can_publish(None, "dev2", "devices/dev1/state/x"));
    assert!(
        !a.can_publish(None, "dev/1", "devices/dev/1/state/x"),
        "client id with /"
    );
    assert!(
        !a.can_subscribe(None, "+", "devices/+/config"),
        "client id with +"
    );
    // ops: allowed everywhere under devices/ except the denied subtree, whichever comes first.
    let ops = Some("ops");
    assert!(a.can_publish(ops, "x", "devices/a/b"));
    assert!(!a.can_publish(ops, "x", "devices/vault/key"));
    assert!(!a.can_subscribe(ops, "x", "devices/vault/#"));
    assert!(!a.can_subscribe(ops, "x", "devices/vault/+"));
    // A broader subscription is granted, and the denied messages are filtered on delivery.
    assert!(a.can_subscribe(ops, "x", "devices/#"));
    assert!(!a.can_receive(ops, "x", "devices/vault/key"));
    assert!(a.can_receive(ops, "x", "devices/a/b"));
    // A pattern deny also beats the user's own allow (ops with client id "x").
    assert!(!a.can_publish(ops, "x", "devices/x/state/secret"));
    // Shared subscriptions are checked on their filter.
    assert!(a.can_subscribe(ops, "x", "$share/g/devices/a/#"));
    assert!(!a.can_subscribe(ops, "x", "$share/g/devices/vault/#"));
}

#[test]
fn acl_syntax_errors_name_the_line() {
    for (text, line, word) in [
        ("user a\ntopic maybe a/b\n", 2, "invalid access"),
        ("topic read a/#/b\n", 1, "invalid topic filter"),
        ("\n# c\nuser\n", 3, "missing username"),
        ("topic a\nsubscribe a\n", 2, "unknown keyword"),
        ("pattern\n", 1, "empty topic"),
    ] {
        let e = Acl::parse(Path::new("/etc/acl"), text)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("/etc/acl:{line}: ")) && e.contains(word),
            "{text:?}: {e}"
        );
    }
}
