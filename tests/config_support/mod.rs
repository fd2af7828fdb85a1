//! Helpers for tests/config.rs: a seeded generator of random configs (every
//! field, awkward strings included) and a UCI renderer that writes them the
//! way LuCI or a person would, varying quoting, comments, booleans and order.

use std::path::PathBuf;
use std::time::Duration;

use edgemq::config::model::*;
use edgemq::config::units::{Dur, Size};

#[path = "../common/rng.rs"]
mod rng;
pub use rng::Rng;
mod uci;
pub use uci::to_uci;

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
