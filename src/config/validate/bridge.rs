//! The `[[bridge]]` checks of [`super::validate`]: names, addresses, TLS
//! files and options, queue limits and topic rules.

use std::collections::HashSet;
use std::path::Path;

use super::super::model::{Bridge, BridgeTls, TopicRule};
use super::{
    Checks, Validator, check_bridge_name, check_host_port, check_readable, check_topic_filter,
};

impl Validator<'_> {
    pub(super) fn bridges(&mut self, bridges: &[Bridge]) {
        let mut names = HashSet::new();
        for (i, b) in bridges.iter().enumerate() {
            let at = format!("bridge[{i}]");
            if let Err(why) = check_bridge_name(&b.name) {
                self.err(&format!("{at}.name"), why);
            } else if !names.insert(b.name.as_str()) {
                self.err(
                    &format!("{at}.name"),
                    format!("bridge name {:?} is used twice", b.name),
                );
            }
            self.bridge(b, &at);
        }
    }

    fn bridge(&mut self, b: &Bridge, at: &str) {
        if b.addresses.is_empty() {
            self.err(
                &format!("{at}.addresses"),
                "a bridge needs at least one address",
            );
        }
        for (j, a) in b.addresses.iter().enumerate() {
            if let Err(why) = check_host_port(a) {
                self.err(&format!("{at}.addresses[{j}]"), why);
            }
        }
        if b.topics.is_empty() {
            self.err(
                &format!("{at}.topic"),
                "a bridge needs at least one topic rule",
            );
        }
        if b.password.is_some() && b.password_file.is_some() {
            self.err(
                &format!("{at}.password_file"),
                "set password or password_file, not both",
            );
        }
        self.readable(&format!("{at}.password_file"), b.password_file.as_deref());
        if b.client_id.as_deref() == Some("") {
            self.err(
                &format!("{at}.client_id"),
                "must not be empty (remove it for the default)",
            );
        }
        if let Some(t) = &b.notification_topic {
            if t.is_empty() || t.contains(['+', '#', '\0']) {
                let msg = format!("{t:?} is not a topic name (empty, or has + or #)");
                self.err(&format!("{at}.notification_topic"), msg);
            }
        }
        if b.inflight == 0 {
            self.err(&format!("{at}.inflight"), "must be at least 1");
        }
        if b.reconnect_min > b.reconnect_max {
            self.err(
                &format!("{at}.reconnect_min"),
                "is larger than reconnect_max",
            );
        }
        if let Some(t) = &b.tls {
            self.bridge_tls(t, &format!("{at}.tls"));
        }
        for (j, r) in b.topics.iter().enumerate() {
            self.topic(r, &format!("{at}.topic[{j}]"));
        }
    }

    fn bridge_tls(&mut self, t: &BridgeTls, at: &str) {
        if !matches!(t.ca.as_str(), "native" | "bundled") {
            if self.checks == Checks::NoFiles {
                if t.ca.is_empty() {
                    self.err(
                        &format!("{at}.ca"),
                        "use \"native\", \"bundled\" or a path to a PEM file",
                    );
                }
            } else if let Err(why) = check_readable(Path::new(&t.ca)) {
                self.err(
                    &format!("{at}.ca"),
                    format!(
                        "{:?} is neither \"native\", \"bundled\" nor a readable file: {why}",
                        t.ca
                    ),
                );
            }
        }
        match (&t.cert, &t.key) {
            (Some(_), None) => self.err(&format!("{at}.key"), "a client cert needs its key"),
            (None, Some(_)) => self.err(&format!("{at}.cert"), "a client key needs its cert"),
            _ => {}
        }
        self.readable(&format!("{at}.cert"), t.cert.as_deref());
        self.readable(&format!("{at}.key"), t.key.as_deref());
    }

    fn topic(&mut self, r: &TopicRule, at: &str) {
        if r.qos > 2 {
            self.err(
                &format!("{at}.qos"),
                format!("qos {} is not 0, 1 or 2", r.qos),
            );
        }
        for (key, prefix) in [
            ("local_prefix", &r.local_prefix),
            ("remote_prefix", &r.remote_prefix),
        ] {
            if prefix.contains(['+', '#']) {
                self.err(
                    &format!("{at}.{key}"),
                    format!("{prefix:?} contains a wildcard (+ or #)"),
                );
            }
        }
        let has_prefix = !r.local_prefix.is_empty() || !r.remote_prefix.is_empty();
        if r.pattern.is_empty() && !has_prefix {
            self.err(
                &format!("{at}.pattern"),
                "empty pattern needs a local_prefix or remote_prefix",
            );
        } else if !r.pattern.is_empty() {
            if let Err(why) = check_topic_filter(&r.pattern) {
                self.err(&format!("{at}.pattern"), why);
            }
        }
    }
}
