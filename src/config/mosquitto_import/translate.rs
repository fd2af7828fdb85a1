//! Walks Mosquitto's directives in reading order, keeping Mosquitto's notion
//! of "the current listener" and "the current bridge", and collects the
//! edgemq pieces plus a comment for everything left behind.

use std::path::PathBuf;

use anyhow::Result;

use super::bridge::BridgeDraft;
use super::keys::{self, is_bridge_key};
use super::listener::{ListenerDraft, Sec, path_value};
use super::reader::{Directive, Item};
use super::{not_carried, note, parse_bool};
use crate::config::model::{Auth, Bridge, Listener};
use crate::config::units::Dur;

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
pub(super) struct State {
    pub(super) t: Translation,
    pub(super) per_listener: bool,
    pub(super) any_listener: bool,
    pub(super) sec: Sec,
    pub(super) anon_seen: Vec<String>,
    pub(super) default: ListenerDraft,
    pub(super) listeners: Vec<ListenerDraft>,
    pub(super) bridges: Vec<BridgeDraft>,
    pub(super) cur_listener: Option<usize>,
    pub(super) cur_bridge: Option<usize>,
    pub(super) stack: Vec<(Option<usize>, Option<usize>)>,
    pub(super) log_types: Vec<String>,
    pub(super) max_queued: Option<usize>,
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
    let list = if names.is_empty() {
        "no *.conf files".to_string()
    } else {
        names.join(", ")
    };
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
                None => self.t.notes.push(not_carried(
                    d,
                    "bridge option outside a `connection`; mosquitto refuses it",
                )),
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
            Some(_) => self.t.notes.push(not_carried(
                d,
                "duplicate bridge name; mosquitto refuses it",
            )),
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
            Some(_) => {
                return self.t.notes.push(not_carried(
                    d,
                    "unlimited; edgemq always bounds connections (limits.max_connections)",
                ));
            }
            None => return self.t.notes.push(not_carried(d, "not a number")),
        };
        self.current().touched = true;
        let total = self
            .t
            .limits
            .get("max_connections")
            .and_then(|v| v.as_integer())
            .unwrap_or(0)
            + n;
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
                notes.push(note(&format!(
                    "data_dir holds edgemq's own store; {} is not read",
                    p.join("mosquitto.db").display()
                )));
                self.t
                    .head
                    .insert("data_dir".into(), p.display().to_string().into());
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
            ("max_inflight_messages", Some(n)) if n > 0 && n < 65535 => {
                self.limit("max_inflight", n)
            }
            ("max_queued_messages", Some(n)) if n > 0 => {
                self.max_queued = Some(n as usize);
                self.limit("max_queued_messages", n)
            }
            ("max_keepalive", Some(n)) if (1..=65535).contains(&n) => {
                self.limit("max_keepalive", n)
            }
            ("max_packet_size", Some(n)) if n > 0 => self.limit("max_packet_size", n),
            ("max_topic_alias", Some(n)) if (0..=65535).contains(&n) => {
                self.limit("max_topic_alias", n)
            }
            ("persistent_client_expiration", _) => self.expiration(d),
            (
                "max_inflight_messages"
                | "max_queued_messages"
                | "max_packet_size"
                | "max_keepalive",
                Some(_),
            ) => notes.push(not_carried(
                d,
                "unlimited; edgemq always bounds this (see [limits])",
            )),
            (key, _) => {
                let why = keys::reason(keys::GLOBAL, key)
                    .unwrap_or("unknown option; mosquitto 2.0 would refuse to start");
                let why = if key.starts_with("auth_opt_") || key.starts_with("plugin_opt_") {
                    "edgemq loads no plugins"
                } else {
                    why
                };
                notes.push(not_carried(d, why));
            }
        }
    }

    fn limit(&mut self, key: &str, n: i64) {
        self.t.limits.insert(key.into(), n.into());
    }

    fn limit_dur(&mut self, head: bool, key: &str, secs: u64) {
        let v: toml::Value = Dur::secs(secs).to_string().into();
        let table = if head {
            &mut self.t.head
        } else {
            &mut self.t.limits
        };
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
            _ => self.t.notes.push(not_carried(
                d,
                "not a duration such as 14d; mosquitto refuses it",
            )),
        }
    }
}
