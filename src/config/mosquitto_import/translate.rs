//! Walks Mosquitto's directives in reading order, keeping Mosquitto's notion
//! of "the current listener" and "the current bridge", and collects the
//! edgemq pieces plus a comment for everything left behind.

use std::path::PathBuf;

use anyhow::Result;

use super::bridge::{BridgeDraft, is_bridge_key};
use super::listener::{ListenerDraft, Sec, path_value};
use super::reader::{Directive, Item};
use super::{note, not_carried, parse_bool};
use crate::config::model::{Auth, Bridge, Listener};
use crate::config::units::Dur;

/// Mosquitto's max_queued_messages when none is set.
const MOSQUITTO_MAX_QUEUED: usize = 1000;

/// Global options edgemq has no equivalent for, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("pid_file", "procd/systemd track the process; edgemq writes no pid file"),
    ("log_dest", "edgemq logs to stderr, which procd/syslog and journald collect"),
    ("log_timestamp", "procd/syslog and journald add timestamps"),
    ("log_timestamp_format", "procd/syslog and journald add timestamps"),
    ("log_facility", "edgemq logs to stderr"),
    ("connection_messages", "edgemq logs connections at info level"),
    ("persistence_file", "edgemq keeps its own store in data_dir"),
    ("autosave_interval", "edgemq writes its store as it goes"),
    ("autosave_on_changes", "edgemq writes its store as it goes"),
    ("message_size_limit", "use limits.max_packet_size"),
    ("max_inflight_bytes", "edgemq bounds inflight messages by count (limits.max_inflight)"),
    ("max_queued_bytes", "edgemq bounds client queues by count (limits.max_queued_messages)"),
    ("memory_limit", "edgemq bounds memory through its per-client and per-bridge limits"),
    ("queue_qos0_messages", "edgemq does not queue QoS 0 messages for offline clients"),
    ("retain_available", "edgemq always supports retained messages"),
    ("set_tcp_nodelay", "edgemq always sets TCP_NODELAY"),
    ("upgrade_outgoing_qos", "edgemq delivers at the subscription's QoS as MQTT specifies"),
    ("allow_duplicate_messages", "removed in mosquitto 2.0"),
    ("retry_interval", "removed in mosquitto 2.0"),
    ("check_retain_source", "edgemq checks the ACL when the retained message is published"),
    ("clientid_prefixes", "edgemq does not filter client ids by prefix; use the ACL"),
    ("auto_id_prefix", "edgemq names clients without an id itself"),
    ("allow_zero_length_clientid", "edgemq assigns an id to clients that send none (MQTT 5 and 3.1.1)"),
    ("auth_plugin", "edgemq loads no plugins; use password_file/acl_file"),
    ("plugin", "edgemq loads no plugins; use password_file/acl_file"),
    ("auth_plugin_deny_special_chars", "edgemq loads no plugins"),
    ("websockets_log_level", "edgemq has no WebSockets"),
    ("websockets_headers_size", "edgemq has no WebSockets"),
    ("include_dir", "mosquitto reads include_dir only in the main file"),
];

/// Everything the renderer needs.
#[derive(Debug, Default)]
pub struct Translation {
    /// Top-level keys: data_dir, user, log_level, sys_interval.
    pub head: toml::Table,
    /// `[limits]` keys that came from the mosquitto config.
    pub limits: toml::Table,
    /// `[auth]` (shared by listeners without their own).
    pub auth: Auth,
    /// Listeners with their comments.
    pub listeners: Vec<(Listener, Vec<String>)>,
    /// Bridges with their comments.
    pub bridges: Vec<(Bridge, Vec<String>)>,
    /// Comments for the whole file.
    pub notes: Vec<String>,
}

/// Mosquitto's reading state.
#[derive(Default)]
struct State {
    t: Translation,
    per_listener: bool,
    any_listener: bool,
    sec: Sec,
    anon_seen: Vec<String>,
    default: ListenerDraft,
    listeners: Vec<ListenerDraft>,
    bridges: Vec<BridgeDraft>,
    cur_listener: Option<usize>,
    cur_bridge: Option<usize>,
    stack: Vec<(Option<usize>, Option<usize>)>,
    log_types: Vec<String>,
    max_queued: Option<usize>,
}

/// Translates the directives in reading order.
pub fn translate(items: Vec<Item>) -> Result<Translation> {
    let mut s = State::default();
    for item in items {
        match item {
            Item::FileStart => {
                s.stack.push((s.cur_listener, s.cur_bridge));
                (s.cur_listener, s.cur_bridge) = (None, None);
            }
            Item::FileEnd => (s.cur_listener, s.cur_bridge) = s.stack.pop().unwrap_or_default(),
            Item::Include(d, Ok(files)) => s.t.notes.push(include_note(&d, &files)),
            Item::Include(d, Err(e)) => s.t.notes.push(not_carried(&d, &e)),
            Item::Line(d) => s.line(&d)?,
        }
    }
    Ok(s.finish())
}

fn include_note(d: &Directive, files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let list = if names.is_empty() { "no *.conf files".to_string() } else { names.join(", ") };
    note(&format!("`{}` [{}] read: {list}", d.echo(), d.loc()))
}

impl State {
    fn current(&mut self) -> &mut ListenerDraft {
        match self.cur_listener {
            Some(i) => &mut self.listeners[i],
            None => &mut self.default,
        }
    }

    fn line(&mut self, d: &Directive) -> Result<()> {
        let key = d.key.as_str();
        if is_bridge_key(key) {
            match self.cur_bridge {
                Some(i) => self.bridges[i].apply(d),
                None => self.t.notes.push(not_carried(d, "bridge option outside a `connection`; mosquitto refuses it")),
            }
            return Ok(());
        }
        match key {
            "connection" => self.connection(d)?,
            "listener" => self.listener(d),
            "port" => {
                self.any_listener = true;
                self.default.set_port(d);
            }
            "bind_address" => {
                self.any_listener = true;
                self.default.set_host(d);
            }
            "allow_anonymous" | "password_file" | "acl_file" => self.security(d),
            "per_listener_settings" => self.per_listener = parse_bool(d).unwrap_or(false),
            "max_connections" => self.max_connections(d),
            _ if self.current().apply(d) => {}
            _ => self.global(d),
        }
        Ok(())
    }

    fn connection(&mut self, d: &Directive) -> Result<()> {
        match d.arg(0) {
            Some(name) if self.bridges.iter().all(|b| b.name() != name) => {
                self.bridges.push(BridgeDraft::new(name, d)?);
                self.cur_bridge = Some(self.bridges.len() - 1);
            }
            Some(_) => self.t.notes.push(not_carried(d, "duplicate bridge name; mosquitto refuses it")),
            None => self.t.notes.push(not_carried(d, "no bridge name")),
        }
        Ok(())
    }

    fn listener(&mut self, d: &Directive) {
        self.any_listener = true;
        match ListenerDraft::from_line(d) {
            Ok(l) => {
                self.listeners.push(l);
                self.cur_listener = Some(self.listeners.len() - 1);
            }
            Err(why) => self.t.notes.push(not_carried(d, why)),
        }
    }

    /// Without per_listener_settings these are global wherever they appear.
    fn security(&mut self, d: &Directive) {
        if d.key == "allow_anonymous" && !self.per_listener {
            self.anon_seen.push(format!("{} [{}]", d.echo(), d.loc()));
        }
        if self.per_listener {
            let l = self.current();
            l.touched |= d.key == "password_file";
            l.sec.apply(d, &mut l.notes);
        } else {
            self.sec.apply(d, &mut self.t.notes);
        }
    }

    /// Per listener in Mosquitto; edgemq has one limit over all listeners.
    fn max_connections(&mut self, d: &Directive) {
        let n = match d.arg(0).and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if n > 0 => n,
            Some(_) => return self.t.notes.push(not_carried(d, "unlimited; edgemq always bounds connections (limits.max_connections)")),
            None => return self.t.notes.push(not_carried(d, "not a number")),
        };
        self.current().touched = true;
        let total = self.t.limits.get("max_connections").and_then(|v| v.as_integer()).unwrap_or(0) + n;
        if total != n {
            self.t.notes.push(note(&format!(
                "limits.max_connections = {total}: the sum of mosquitto's per-listener max_connections (last at {})",
                d.loc()
            )));
        }
        self.t.limits.insert("max_connections".into(), total.into());
    }

    fn global(&mut self, d: &Directive) {
        let v = d.arg(0).unwrap_or("");
        let int = v.parse::<i64>().ok();
        let notes = &mut self.t.notes;
        match (d.key.as_str(), int) {
            ("persistence_location", _) => {
                let p = path_value(d, notes);
                notes.push(note(&format!("data_dir holds edgemq's own store; {} is not read", p.join("mosquitto.db").display())));
                self.t.head.insert("data_dir".into(), p.display().to_string().into());
            }
            ("persistence" | "retained_persistence", _) => {
                if parse_bool(d) == Some(false) {
                    notes.push(not_carried(d, "edgemq always keeps bridge queues, retained messages and sessions in data_dir"));
                }
            }
            ("user", _) => {
                self.t.head.insert("user".into(), d.string_value().0.into());
            }
            ("log_type", _) => self.log_types.push(v.to_string()),
            ("sys_interval", Some(n)) if n > 0 => self.limit_dur(true, "sys_interval", n as u64),
            ("sys_interval", Some(0)) => notes.push(not_carried(d, "edgemq always publishes $SYS")),
            ("max_inflight_messages", Some(n)) if n > 0 && n < 65535 => self.limit("max_inflight", n),
            ("max_queued_messages", Some(n)) if n > 0 => {
                self.max_queued = Some(n as usize);
                self.limit("max_queued_messages", n)
            }
            ("max_keepalive", Some(n)) if (1..=65535).contains(&n) => self.limit("max_keepalive", n),
            ("max_packet_size", Some(n)) if n > 0 => self.limit("max_packet_size", n),
            ("max_topic_alias", Some(n)) if (0..=65535).contains(&n) => self.limit("max_topic_alias", n),
            ("persistent_client_expiration", _) => self.expiration(d),
            ("max_inflight_messages" | "max_queued_messages" | "max_packet_size" | "max_keepalive", Some(_)) => {
                notes.push(not_carried(d, "unlimited; edgemq always bounds this (see [limits])"))
            }
            (key, _) => {
                let why = UNSUPPORTED.iter().find(|(k, _)| *k == key).map_or(
                    "unknown option; mosquitto 2.0 would refuse to start",
                    |(_, w)| *w,
                );
                let why = if key.starts_with("auth_opt_") || key.starts_with("plugin_opt_") { "edgemq loads no plugins" } else { why };
                notes.push(not_carried(d, why));
            }
        }
    }

    fn limit(&mut self, key: &str, n: i64) {
        self.t.limits.insert(key.into(), n.into());
    }

    fn limit_dur(&mut self, head: bool, key: &str, secs: u64) {
        let v: toml::Value = Dur::secs(secs).to_string().into();
        let table = if head { &mut self.t.head } else { &mut self.t.limits };
        table.insert(key.into(), v);
    }

    /// `persistent_client_expiration N[h|d|w|m|y]`; Mosquitto's m is a month.
    fn expiration(&mut self, d: &Directive) {
        let v = d.arg(0).unwrap_or("");
        let (num, unit) = v.split_at(v.len().saturating_sub(1));
        let mult: u64 = match unit {
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "m" => 30 * 86_400,
            "y" => 365 * 86_400,
            _ => 0,
        };
        match num.parse::<u64>() {
            Ok(n) if n > 0 && mult > 0 => self.limit_dur(false, "session_expiry", n * mult),
            _ => self.t.notes.push(not_carried(d, "not a duration such as 14d; mosquitto refuses it")),
        }
    }
}

impl State {
    fn finish(mut self) -> Translation {
        self.log_level();
        let mut drafts = std::mem::take(&mut self.listeners);
        let default = std::mem::take(&mut self.default);
        if default.touched {
            drafts.push(default);
        } else {
            self.t.notes.extend(default.notes);
        }
        if drafts.is_empty() && !self.any_listener {
            self.local_only();
        }
        for l in drafts {
            self.push_listener(l);
        }
        self.anonymous_notes();
        if !self.per_listener {
            self.t.auth = self.sec.auth();
        }
        let max_queued = self.max_queued.unwrap_or(MOSQUITTO_MAX_QUEUED);
        self.t.bridges = self.bridges.into_iter().map(|b| b.finish(max_queued)).collect();
        self.t
    }

    fn push_listener(&mut self, l: ListenerDraft) {
        let origin = l.origin.clone().unwrap_or_else(|| "port/bind_address (mosquitto's default listener)".into());
        if l.websockets {
            self.t.notes.push(format!("# not carried over: {origin} (a WebSockets listener)"));
            self.t.notes.extend(l.notes);
            return;
        }
        let anon = if self.per_listener { l.sec.allow_anonymous.as_ref().map(|a| a.0) } else { self.sec.allow_anonymous.as_ref().map(|a| a.0) };
        let (listener, mut notes) = l.finish(anon.unwrap_or(false), self.per_listener);
        notes.insert(0, format!("# from `{origin}`"));
        self.t.listeners.push((listener, notes));
    }

    /// Mosquitto 2.0 with no listener listens on loopback only, anonymously.
    fn local_only(&mut self) {
        let explicit = self.sec.allow_anonymous.as_ref().map(|a| a.0);
        let mut l = Listener::new("127.0.0.1:1883");
        l.allow_anonymous = Some(explicit.unwrap_or(true));
        let mut notes = vec![note(
            "no listener in the mosquitto config: mosquitto 2.0 listens on 127.0.0.1:1883 and ::1 only \
             (mosquitto 1.x listened on every address; add a [[listener]] with bind = \"0.0.0.0:1883\" for that)",
        )];
        if explicit == Some(false) {
            notes.push(note("allow_anonymous false kept (mosquitto 2.0 would allow anonymous clients here)"));
        }
        self.t.listeners.push((l, notes));
    }

    fn anonymous_notes(&mut self) {
        if self.anon_seen.len() > 1 || (self.anon_seen.len() == 1 && self.t.listeners.len() > 1) {
            let last = self.anon_seen.last().cloned().unwrap_or_default();
            self.t.notes.push(note(&format!(
                "without per_listener_settings true, allow_anonymous is global: mosquitto applied the last one, \
                 `{last}`, to every listener, and so does this file"
            )));
        }
    }

    /// log_type lines into one log_level: the most verbose type wins.
    fn log_level(&mut self) {
        if self.log_types.is_empty() {
            return;
        }
        let has = |t: &[&str]| self.log_types.iter().any(|l| t.contains(&l.as_str()));
        let level = if has(&["debug", "all"]) {
            "debug"
        } else if has(&["information", "notice"]) {
            "info"
        } else if has(&["warning"]) {
            "warn"
        } else {
            "error"
        };
        self.t.notes.push(note(&format!("log_level from log_type {}", self.log_types.join(", "))));
        self.t.head.insert("log_level".into(), level.into());
    }
}
