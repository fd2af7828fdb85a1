//! The end of reading: Mosquitto's default and local-only listeners, the
//! global-or-per-listener security options, log level, and the checks that
//! only make sense once every file is read.

use super::listener::ListenerDraft;
use super::translate::{State, Translation};
use super::{not_carried, note};
use crate::config::model::Listener;

/// Mosquitto's max_queued_messages when none is set.
const MOSQUITTO_MAX_QUEUED: usize = 1000;

impl State {
    /// Everything read, as the renderer's input.
    pub fn finish(mut self) -> Translation {
        self.log_level();
        let mut drafts = std::mem::take(&mut self.listeners);
        let default = std::mem::take(&mut self.default);
        if default.touched {
            drafts.push(default);
        } else {
            self.t.notes.extend(default.notes);
            for d in &default.sec_lines {
                self.t.notes.push(not_carried(
                    d,
                    "with per_listener_settings this belongs to mosquitto's default listener, \
                     which this config never creates, so mosquitto ignores it",
                ));
            }
        }
        if drafts.is_empty() && !self.any_listener {
            self.local_only();
        }
        for l in drafts {
            self.push_listener(l);
        }
        self.anonymous_notes();
        port_conflicts(&mut self.t);
        if !self.per_listener {
            self.t.auth = self.sec.auth();
        }
        login_notes(&mut self.t);
        let max_queued = self.max_queued.unwrap_or(MOSQUITTO_MAX_QUEUED);
        self.t.bridges = self
            .bridges
            .into_iter()
            .map(|b| b.finish(max_queued))
            .collect();
        self.t
    }

    fn push_listener(&mut self, l: ListenerDraft) {
        if l.websockets {
            if let Some(d) = &l.origin {
                self.t.notes.push(not_carried(
                    d,
                    "a WebSockets listener; edgemq has no WebSockets",
                ));
            }
            self.t.notes.extend(l.notes);
            return;
        }
        let origin = match &l.origin {
            Some(d) => format!("# from `{}` [{}]", d.echo(), d.loc()),
            None => "# from mosquitto's default listener (port/bind_address)".to_string(),
        };
        let anon = if self.per_listener {
            l.sec.allow_anonymous
        } else {
            self.sec.allow_anonymous
        };
        let (listener, mut notes) = l.finish(anon.unwrap_or(false), self.per_listener);
        notes.insert(0, origin);
        self.t.listeners.push((listener, notes));
    }

    /// Mosquitto 2.0 with no listener listens on loopback only, anonymously.
    fn local_only(&mut self) {
        let explicit = self.sec.allow_anonymous;
        let mut l = Listener::new("127.0.0.1:1883");
        l.allow_anonymous = Some(explicit.unwrap_or(true));
        let mut notes = vec![note(
            "no listener in the mosquitto config: mosquitto 2.0 listens on 127.0.0.1:1883 and ::1 only \
             (mosquitto 1.x listened on every address; add a [[listener]] with bind = \"0.0.0.0:1883\" for that)",
        )];
        if explicit == Some(false) {
            notes.push(note(
                "allow_anonymous false kept (mosquitto 2.0 would allow anonymous clients here)",
            ));
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
        let extra = if has(&["subscribe", "unsubscribe", "websockets", "internal"]) {
            " (edgemq has no subscribe/unsubscribe/websockets/internal log types)"
        } else {
            ""
        };
        let types = self.log_types.join(", ");
        self.t.notes.push(note(&format!(
            "log_level = \"{level}\" from log_type {types}{extra}"
        )));
        self.t.head.insert("log_level".into(), level.into());
    }
}

/// Two listeners on one port where one takes every address: the second
/// bind fails with "address in use", in Mosquitto as in edgemq.
fn port_conflicts(t: &mut Translation) {
    let binds: Vec<(&str, &str)> = t
        .listeners
        .iter()
        .filter_map(|(l, _)| {
            l.unix_path()
                .is_none()
                .then(|| l.bind.rsplit_once(':'))
                .flatten()
        })
        .collect();
    let mut found = Vec::new();
    for (i, (h1, p1)) in binds.iter().enumerate() {
        for (h2, p2) in &binds[i + 1..] {
            let v6 = |h: &str| h.starts_with('[');
            let wild = |h: &str| h == "0.0.0.0" || h == "[::]";
            let clash = p1 == p2 && v6(h1) == v6(h2) && (h1 == h2 || wild(h1) || wild(h2));
            if clash {
                found.push(note(&format!(
                    "listeners {h1}:{p1} and {h2}:{p2} overlap: the second bind fails with \"address in use\"; \
                     give one of them another port or drop it"
                )));
            }
        }
    }
    t.notes.extend(found);
}

/// A listener that refuses anonymous clients but has no way to log in is
/// locked; `edgemq check` refuses it, so say what is missing here already.
fn login_notes(t: &mut Translation) {
    for (l, notes) in &mut t.listeners {
        let auth = l.auth.as_ref().unwrap_or(&t.auth);
        let by_cert = l.tls.as_ref().is_some_and(|t| t.identity_as_username);
        if l.allow_anonymous == Some(false) && auth.password_file.is_none() && !by_cert {
            notes.push(note(
                "nobody can connect here, as in mosquitto (anonymous refused, no password_file, no \
                 certificate identity): add a password_file or [[auth.user]], or set allow_anonymous = true",
            ));
        }
    }
}
