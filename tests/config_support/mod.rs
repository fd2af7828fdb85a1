//! Helpers for tests/config.rs: a seeded generator of random configs (every
//! field, awkward strings included) and a UCI renderer that writes them the
//! way LuCI or a person would, varying quoting, comments, booleans and order.

use std::fmt::Write;
use std::path::PathBuf;
use std::time::Duration;

use edgemq::config::model::*;
use edgemq::config::units::{Dur, Size};

#[path = "../common/rng.rs"]
mod rng;
pub use rng::Rng;

/// Random values of the config's kinds, awkward strings included.
trait Random {
    fn string(&mut self) -> String;
    fn opt_string(&mut self) -> Option<String>;
    fn path(&mut self) -> PathBuf;
    fn opt_path(&mut self) -> Option<PathBuf>;
    fn dur(&mut self) -> Dur;
    fn size(&mut self) -> Size;
    fn small<T: TryFrom<u64>>(&mut self, max: u64) -> T
    where
        T::Error: std::fmt::Debug;
}

impl Random for Rng {
    fn string(&mut self) -> String {
        const PIECES: &[&str] = &[
            "a", "Z", "9", "/", " ", "'", "\"", "\\", "#", "é", "$7$", "-", "_", ".", "\t", "+",
        ];
        (0..self.below(8)).map(|_| self.pick(PIECES)).collect()
    }
    fn opt_string(&mut self) -> Option<String> {
        self.bool().then(|| self.string())
    }
    fn path(&mut self) -> PathBuf {
        PathBuf::from(format!("/etc/{}", self.string()))
    }
    fn opt_path(&mut self) -> Option<PathBuf> {
        self.bool().then(|| self.path())
    }
    fn dur(&mut self) -> Dur {
        let ms = match self.below(4) {
            0 => self.below(1000),
            1 => self.below(100) * 1000,
            2 => self.below(50) * 3_600_000,
            _ => self.below(5) * 86_400_000,
        };
        Dur(Duration::from_millis(ms))
    }
    fn size(&mut self) -> Size {
        Size(match self.below(3) {
            0 => self.below(100_000),
            1 => self.below(64) << 10,
            _ => self.below(512) << 20,
        })
    }
    fn small<T: TryFrom<u64>>(&mut self, max: u64) -> T
    where
        T::Error: std::fmt::Debug,
    {
        T::try_from(self.below(max)).unwrap()
    }
}

/// A random config: every key exercised, values not necessarily valid
/// (the equivalence is about the mapping, not the rules).
pub fn random_config(r: &mut Rng) -> Config {
    let mut c = Config::default();
    if r.bool() {
        c.data_dir = r.path();
    }
    c.user = r.opt_string();
    c.log_level = r
        .pick(&["error", "warn", "info", "debug", "trace", "odd 'level'"])
        .into();
    c.worker_threads = r.bool().then(|| r.small(8));
    c.sys_interval = r.dur();
    if r.bool() {
        let l = &mut c.limits;
        l.max_connections = r.small(5000);
        l.max_packet_size = r.size();
        l.connect_timeout = r.dur();
        l.max_inflight = r.small(100);
        l.max_queued_messages = r.small(10_000);
        l.queue_full = if r.bool() {
            Overflow::DropNewest
        } else {
            Overflow::DropOldest
        };
        l.max_keepalive = r.small(65_535);
        l.session_expiry = r.dur();
        l.max_topic_alias = r.small(100);
        l.receive_maximum = r.small(1000);
    }
    c.listeners = (0..1 + r.below(3)).map(|i| random_listener(r, i)).collect();
    c.auth.password_file = r.opt_path();
    c.auth.acl_file = r.opt_path();
    c.auth.users = (0..r.below(3)).map(|_| random_user(r)).collect();
    c.bridges = (0..r.below(4)).map(|i| random_bridge(r, i)).collect();
    c
}

fn random_listener(r: &mut Rng, i: u64) -> Listener {
    let mut l = Listener::new(&format!("127.0.0.{i}:{}", r.below(65_536)));
    l.allow_anonymous = r.bool().then(|| r.bool());
    if r.bool() {
        l.tls = Some(ListenerTls {
            cert: r.path(),
            key: r.path(),
            client_ca: r.opt_path(),
            identity_as_username: r.bool(),
        });
    }
    if r.bool() {
        // UCI can carry a listener's files, not per-listener inline users.
        let file = r.path();
        l.auth = Some(Auth {
            password_file: Some(file),
            acl_file: r.opt_path(),
            users: Vec::new(),
        });
    }
    l
}

fn random_user(r: &mut Rng) -> User {
    User {
        username: r.string(),
        password: r.opt_string().map(Secret),
        password_hash: r.opt_string(),
    }
}

fn random_bridge(r: &mut Rng, i: u64) -> Bridge {
    let name = format!("b{i}{}", r.pick(&["", "_x", "-y", "Z9"]));
    let tls = r.bool().then(|| BridgeTls {
        ca: r.pick(&["native", "bundled", "/etc/ca 1.pem"]).into(),
        cert: r.opt_path(),
        key: r.opt_path(),
        server_name: r.opt_string(),
        tls13_only: r.bool(),
        alpn: (0..r.below(3)).map(|_| r.string()).collect(),
    });
    Bridge {
        name,
        addresses: (0..r.below(4))
            .map(|j| format!("h{j}.example:{}", r.below(65_536)))
            .collect(),
        client_id: r.opt_string(),
        protocol: if r.bool() {
            Protocol::Mqtt5
        } else {
            Protocol::Mqtt311
        },
        clean_session: r.bool(),
        keepalive: r.dur(),
        username: r.opt_string(),
        password: r.opt_string().map(Secret),
        password_file: r.opt_path(),
        notifications: r.bool(),
        notification_topic: r.opt_string(),
        try_private: r.bool(),
        message_id_property: r.bool(),
        inflight: r.small(1000),
        reconnect_min: r.dur(),
        reconnect_max: r.dur(),
        failback_after: r.dur(),
        tls,
        topics: (0..r.below(4)).map(|_| random_topic(r)).collect(),
        queue: QueueConfig {
            max_bytes: r.size(),
            max_age: r.dur(),
            overflow: if r.bool() {
                Overflow::DropNewest
            } else {
                Overflow::DropOldest
            },
            replay_rate: r.bool().then(|| r.small(10_000)),
            durability: if r.bool() {
                Durability::Outage
            } else {
                Durability::Always
            },
        },
    }
}

fn random_topic(r: &mut Rng) -> TopicRule {
    TopicRule {
        pattern: r.pick(&["#", "a/+/b", "meters/#", "x y/'z'"]).into(),
        direction: [Direction::Out, Direction::In, Direction::Both][r.below(3) as usize],
        qos: r.small(3),
        local_prefix: r.string(),
        remote_prefix: r.string(),
        coalesce: r.bool(),
    }
}

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

/// `text` with a few random edits: characters deleted, lines duplicated or
/// dropped, quotes and brackets inserted.
pub fn mangle(text: &str, r: &mut Rng) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for _ in 0..1 + r.below(4) {
        if chars.is_empty() {
            break;
        }
        let at = r.below(chars.len() as u64) as usize;
        match r.below(4) {
            0 => {
                chars.remove(at);
            }
            1 => chars.insert(
                at,
                ['\'', '"', '[', ']', '=', '#', '\\', '\n'][r.below(8) as usize],
            ),
            2 => chars[at] = 'x',
            _ => {
                let line_end = chars[at..]
                    .iter()
                    .position(|c| *c == '\n')
                    .map_or(chars.len(), |p| at + p);
                let line_start = chars[..at]
                    .iter()
                    .rposition(|c| *c == '\n')
                    .map_or(0, |p| p + 1);
                let line: Vec<char> = chars[line_start..line_end].to_vec();
                if r.bool() {
                    chars.drain(line_start..line_end);
                } else {
                    chars.splice(line_start..line_start, line.into_iter().chain(['\n']));
                }
            }
        }
    }
    chars.into_iter().collect()
}
