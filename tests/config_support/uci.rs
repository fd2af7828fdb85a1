//! The UCI renderer: a config written the way LuCI or a person would, varying quoting,
//! comments, booleans and order.

use std::fmt::Write;

use super::*;

/// UCI single-quoting; a quote inside is written `'\''` as shells and uci do.
fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

struct Out<'a> {
    s: String,
    r: &'a mut Rng,
}

impl Out<'_> {
    fn opt(&mut self, name: &str, v: &str) {
        let indent = if self.r.bool() { "\t" } else { "    " };
        let _ = writeln!(self.s, "{indent}option {name} {}", q(v));
        if self.r.below(8) == 0 {
            self.s
                .push_str("\n# a comment with 'quotes' and \"more\"\n");
        }
    }
    fn opt_some(&mut self, name: &str, v: Option<impl ToString>) {
        if let Some(v) = v {
            self.opt(name, &v.to_string());
        }
    }
    fn boolean(&mut self, name: &str, b: bool) {
        let words = if b {
            ["1", "true", "yes", "on"]
        } else {
            ["0", "false", "no", "off"]
        };
        let w = words[self.r.below(4) as usize];
        self.opt(name, w);
    }
    fn list(&mut self, name: &str, vs: &[String]) {
        for v in vs {
            let _ = writeln!(self.s, "\tlist {name} {}", q(v));
        }
    }
    fn section(&mut self, ty: &str, name: Option<&str>) {
        self.s.push('\n');
        match name {
            Some(n) => writeln!(self.s, "config {ty} {}", q(n)),
            None => writeln!(self.s, "config {ty}"),
        }
        .unwrap();
    }
}

/// Renders `cfg` as UCI per UCI.md.
pub fn to_uci(cfg: &Config, r: &mut Rng) -> String {
    let mut o = Out {
        s: "# generated\n".into(),
        r,
    };
    main_section(&mut o, cfg);
    for (i, l) in cfg.listeners.iter().enumerate() {
        let name = format!("l{i}");
        let named = o.r.bool();
        o.section("listener", named.then_some(name.as_str()));
        o.opt("bind", &l.bind);
        if let Some(a) = l.allow_anonymous {
            o.boolean("allow_anonymous", a);
        }
        if let Some(t) = &l.tls {
            o.opt("tls_cert", &t.cert.to_string_lossy());
            o.opt("tls_key", &t.key.to_string_lossy());
            o.opt_some("tls_client_ca", t.client_ca.as_ref().map(|p| p.display()));
            o.boolean("tls_identity_as_username", t.identity_as_username);
        }
        if let Some(a) = &l.auth {
            o.opt_some(
                "password_file",
                a.password_file.as_ref().map(|p| p.display()),
            );
            o.opt_some("acl_file", a.acl_file.as_ref().map(|p| p.display()));
        }
    }
    for u in &cfg.auth.users {
        o.section("user", None);
        o.opt("username", &u.username);
        o.opt_some("password", u.password.as_ref().map(|p| p.expose()));
        o.opt_some("password_hash", u.password_hash.as_ref());
    }
    let topics_at_end = o.r.bool();
    let mut later = Vec::new();
    for b in &cfg.bridges {
        bridge_section(&mut o, b);
        if topics_at_end {
            later.push(b);
        } else {
            topic_sections(&mut o, b);
        }
        if o.r.below(4) == 0 {
            disabled_bridge(&mut o);
        }
    }
    for b in later {
        topic_sections(&mut o, b);
    }
    o.s
}

fn main_section(o: &mut Out, c: &Config) {
    o.section("edgemq", Some("main"));
    o.opt("data_dir", &c.data_dir.to_string_lossy());
    o.opt_some("user", c.user.as_ref());
    o.opt("log_level", &c.log_level);
    o.opt_some("worker_threads", c.worker_threads);
    o.opt("sys_interval", &c.sys_interval.to_string());
    let l = &c.limits;
    o.opt("max_connections", &l.max_connections.to_string());
    o.opt("max_packet_size", &l.max_packet_size.to_string());
    o.opt("connect_timeout", &l.connect_timeout.to_string());
    o.opt("max_inflight", &l.max_inflight.to_string());
    o.opt("max_queued_messages", &l.max_queued_messages.to_string());
    o.opt(
        "queue_full",
        if l.queue_full == Overflow::DropNewest {
            "drop-newest"
        } else {
            "drop-oldest"
        },
    );
    o.opt("max_keepalive", &l.max_keepalive.to_string());
    o.opt("session_expiry", &l.session_expiry.to_string());
    o.opt("max_topic_alias", &l.max_topic_alias.to_string());
    o.opt("receive_maximum", &l.receive_maximum.to_string());
    o.opt_some(
        "password_file",
        c.auth.password_file.as_ref().map(|p| p.display()),
    );
    o.opt_some("acl_file", c.auth.acl_file.as_ref().map(|p| p.display()));
}

fn bridge_section(o: &mut Out, b: &Bridge) {
    let as_section_name = !b.name.contains('-') && o.r.bool();
    if as_section_name {
        o.section("bridge", Some(&b.name));
    } else {
        let labelled = o.r.bool();
        o.section("bridge", labelled.then_some("other_label"));
        o.opt("name", &b.name);
    }
    o.list("address", &b.addresses);
    o.opt_some("client_id", b.client_id.as_ref());
    o.opt(
        "protocol",
        if b.protocol == Protocol::Mqtt5 {
            "mqtt5"
        } else {
            "mqtt311"
        },
    );
    o.boolean("clean_session", b.clean_session);
    o.opt("keepalive", &b.keepalive.to_string());
    o.opt_some("username", b.username.as_ref());
    o.opt_some("password", b.password.as_ref().map(|p| p.expose()));
    o.opt_some(
        "password_file",
        b.password_file.as_ref().map(|p| p.display()),
    );
    o.boolean("notifications", b.notifications);
    o.opt_some("notification_topic", b.notification_topic.as_ref());
    o.boolean("try_private", b.try_private);
    o.boolean("message_id_property", b.message_id_property);
    o.opt("inflight", &b.inflight.to_string());
    o.opt("reconnect_min", &b.reconnect_min.to_string());
    o.opt("reconnect_max", &b.reconnect_max.to_string());
    o.opt("failback_after", &b.failback_after.to_string());
    if let Some(t) = &b.tls {
        o.boolean("tls", true);
        if t.ca != "native" || o.r.bool() {
            o.opt("tls_ca", &t.ca);
        }
        o.opt_some("tls_cert", t.cert.as_ref().map(|p| p.display()));
        o.opt_some("tls_key", t.key.as_ref().map(|p| p.display()));
        o.opt_some("tls_server_name", t.server_name.as_ref());
        o.boolean("tls13_only", t.tls13_only);
        o.list("tls_alpn", &t.alpn);
    } else if o.r.bool() {
        // LuCI keeps tls_* values when TLS is switched off: they must not count.
        o.boolean("tls", false);
        o.opt("tls_ca", "bundled");
    }
    let qc = &b.queue;
    o.opt("queue_max_bytes", &qc.max_bytes.to_string());
    o.opt("queue_max_age", &qc.max_age.to_string());
    o.opt(
        "queue_overflow",
        if qc.overflow == Overflow::DropNewest {
            "drop-newest"
        } else {
            "drop-oldest"
        },
    );
    o.opt_some("queue_replay_rate", qc.replay_rate);
    o.opt(
        "queue_durability",
        if qc.durability == Durability::Outage {
            "outage"
        } else {
            "always"
        },
    );
}

fn topic_sections(o: &mut Out, b: &Bridge) {
    for t in &b.topics {
        o.section("topic", None);
        o.opt("bridge", &b.name);
        o.opt("pattern", &t.pattern);
        let d = match t.direction {
            Direction::Out => "out",
            Direction::In => "in",
            Direction::Both => "both",
        };
        o.opt("direction", d);
        o.opt("qos", &t.qos.to_string());
        o.opt("local_prefix", &t.local_prefix);
        o.opt("remote_prefix", &t.remote_prefix);
        o.boolean("coalesce", t.coalesce);
    }
}

fn disabled_bridge(o: &mut Out) {
    o.section("bridge", Some("zz_disabled"));
    o.boolean("enabled", false);
    o.list("address", &["old.example:1883".to_string()]);
    o.section("topic", None);
    o.opt("bridge", "zz_disabled");
    o.opt("pattern", "legacy/#");
}
