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

/// Mosquitto's reading state; `assemble` turns it into a [`Translation`].
#[derive(Default)]
pub(super) struct State {
    /// The output being built.
    pub(super) t: Translation,
    /// per_listener_settings true (security options belong to listeners).
    pub(super) per_listener: bool,
    /// A listener, port or bind_address was seen (no local-only mode).
    pub(super) any_listener: bool,
    /// Global security options.
    pub(super) sec: Sec,
    /// Every global allow_anonymous line, for the "it is global" note.
    pub(super) anon_seen: Vec<String>,
    /// Mosquitto's default listener (port, bind_address, options before any listener).
    pub(super) default: ListenerDraft,
    /// `listener` sections in order.
    pub(super) listeners: Vec<ListenerDraft>,
    /// `connection` sections in order.
    pub(super) bridges: Vec<BridgeDraft>,
    /// log_type values, folded into one log_level.
    pub(super) log_types: Vec<String>,
    /// max_queued_messages, which also bounded Mosquitto's bridge backlogs.
    pub(super) max_queued: Option<usize>,
    cur_listener: Option<usize>,
    cur_bridge: Option<usize>,
    stack: Vec<(Option<usize>, Option<usize>)>,
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
            Some(name) if self.bridges.iter().all(|b| b.mosquitto_name() != name) => {
                let taken: Vec<&str> = self.bridges.iter().map(BridgeDraft::name).collect();
                let draft = BridgeDraft::new(name, &taken, d)?;
                self.bridges.push(draft);
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
            let in_default = self.cur_listener.is_none();
            let l = self.current();
            l.touched |= d.key == "password_file";
            l.sec.apply(d, &mut l.notes);
            if in_default {
                l.sec_lines.push(d.clone());
            }
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
        if self.numeric(d) {
            return;
        }
        let notes = &mut self.t.notes;
        match d.key.as_str() {
            "persistence_location" => {
                let p = path_value(d, notes);
                let db = p.join("mosquitto.db");
                notes.push(note(&format!(
                    "data_dir holds edgemq's own store; {} is not read",
                    db.display()
                )));
                self.t
                    .head
                    .insert("data_dir".into(), p.display().to_string().into());
            }
            "persistence" | "retained_persistence" if parse_bool(d) == Some(false) => {
                notes.push(not_carried(
                    d,
                    "edgemq always keeps bridge queues, retained messages and sessions in data_dir",
                ))
            }
            "persistence" | "retained_persistence" => {}
            "user" => {
                self.t.head.insert("user".into(), d.string_value().0.into());
            }
            "log_type" => self.log_types.push(d.arg(0).unwrap_or("").to_string()),
            "persistent_client_expiration" => self.expiration(d),
            key if key.starts_with("auth_opt_") || key.starts_with("plugin_opt_") => {
                notes.push(not_carried(d, "edgemq loads no plugins"))
            }
            key => {
                let why = keys::reason(keys::GLOBAL, key)
                    .unwrap_or("unknown option; mosquitto 2.0 would refuse to start");
                notes.push(not_carried(d, why));
            }
        }
    }

    /// The numeric limits; false when `d` is not one. Mosquitto's 0 (or
    /// 65535 for inflight) means unlimited, which edgemq never is.
    fn numeric(&mut self, d: &Directive) -> bool {
        let (table, key, max) = match d.key.as_str() {
            "sys_interval" => (&mut self.t.head, "sys_interval", i64::from(u16::MAX)),
            "max_inflight_messages" => {
                (&mut self.t.limits, "max_inflight", i64::from(u16::MAX) - 1)
            }
            "max_queued_messages" => (&mut self.t.limits, "max_queued_messages", i64::MAX),
            "max_keepalive" => (&mut self.t.limits, "max_keepalive", i64::from(u16::MAX)),
            "max_packet_size" => (&mut self.t.limits, "max_packet_size", i64::from(u32::MAX)),
            "max_topic_alias" => (&mut self.t.limits, "max_topic_alias", i64::from(u16::MAX)),
            _ => return false,
        };
        match d.arg(0).and_then(|v| v.parse::<i64>().ok()) {
            Some(n) if n > 0 && n <= max => {
                let value = if key == "sys_interval" {
                    Dur::secs(n.unsigned_abs()).to_string().into()
                } else {
                    n.into()
                };
                table.insert(key.into(), value);
                if key == "max_queued_messages" {
                    self.max_queued = usize::try_from(n).ok();
                }
            }
            Some(0) if key == "sys_interval" => self
                .t
                .notes
                .push(not_carried(d, "edgemq always publishes $SYS")),
            Some(0) | Some(65535) => self.t.notes.push(not_carried(
                d,
                "unlimited; edgemq always bounds this (see [limits])",
            )),
            _ => self
                .t
                .notes
                .push(not_carried(d, "not a valid number; mosquitto refuses it")),
        }
        true
    }

    /// `persistent_client_expiration N[h|d|w|m|y]`; Mosquitto's m is a month.
    fn expiration(&mut self, d: &Directive) {
        let v = d.arg(0).unwrap_or("");
        // the unit is the last character, which need not be one byte in a damaged file
        let unit_len = v.chars().next_back().map_or(0, char::len_utf8);
        let (num, unit) = v.split_at(v.len() - unit_len);
        let mult: u64 = match unit {
            "h" => 3_600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            "m" => 30 * 86_400,
            "y" => 365 * 86_400,
            _ => 0,
        };
        match num.parse::<u64>() {
            Ok(n) if n > 0 && mult > 0 => {
                let expiry = Dur::secs(n * mult).to_string();
                self.t.limits.insert("session_expiry".into(), expiry.into());
            }
            _ => self.t.notes.push(not_carried(
                d,
                "not a duration such as 14d; mosquitto refuses it",
            )),
        }
    }
}
