//! Mosquitto acl_file syntax: user, topic, pattern with %u and %c.
//!
//! Parsing follows Mosquitto 2.0's `aclfile__parse` (src/security_default.c):
//! `topic [read|write|readwrite|deny] TOPIC` (readwrite when the access word is
//! absent; TOPIC is the rest of the line and may contain spaces), `user NAME`
//! (rest of the line), `pattern [..] TOPIC`, `#` comments. `topic` lines before
//! any `user` line apply to anonymous clients; patterns apply to everyone.
//!
//! Decisions, with Mosquitto 2.0 as the reference:
//! - a deny rule that matches wins over any allow rule, from either list
//!   (Mosquitto lets a user's allow win over a pattern deny; we do not);
//! - %u/%c are substituted textually, and a client whose username (resp.
//!   client id) contains `+`, `#` or `/` is refused everything while a pattern
//!   uses %u (resp. %c), so it can neither widen its own rules nor step into
//!   another client's subtree nor escape a deny pattern;
//! - SUBSCRIBE is checked with `mosquitto_sub_matches_acl` semantics (one read
//!   rule must cover every topic the filter can match), where Mosquitto 2.0
//!   accepts every subscription; messages are still checked with
//!   [`Acl::can_receive`] on delivery, which is where a deny rule that only
//!   partly overlaps a granted subscription takes effect.

use std::collections::HashMap;
use std::path::Path;

use super::file::{self, FileError};

/// Bit granting delivery to the client (subscribe and receive).
const READ: u8 = 1;
/// Bit granting publish.
const WRITE: u8 = 2;
/// A `deny` rule.
const DENY: u8 = 0;

#[derive(Debug, Clone)]
struct Rule {
    filter: String,
    access: u8,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
    patterns_use_username: bool,
    patterns_use_client_id: bool,
}

impl Acl {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Acl, FileError> {
        Self::parse(path, &file::read_text(path)?)
    }

    /// Parses file content; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Acl, FileError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let err = |reason: String| FileError::line(path, i + 1, reason);
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (keyword, rest) = split_word(line);
            match keyword {
                "user" if rest.is_empty() => {
                    return Err(err("missing username after `user`".into()));
                }
                "user" => user = Some(rest.to_string()),
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(err)?;
                    acl.add(keyword == "pattern", user.as_deref(), rule);
                }
                other => {
                    return Err(err(format!(
                        "unknown keyword {other:?} (expected user, topic or pattern)"
                    )));
                }
            }
        }
        Ok(acl)
    }

    fn add(&mut self, pattern: bool, user: Option<&str>, rule: Rule) {
        if pattern {
            self.patterns_use_username |= rule.filter.contains("%u");
            self.patterns_use_client_id |= rule.filter.contains("%c");
            self.patterns.push(rule);
        } else if let Some(u) = user {
            self.users.entry(u.to_string()).or_default().push(rule);
        } else {
            self.anonymous.push(rule);
        }
    }

    /// Whether the client may publish to `topic`.
    pub fn can_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.check(username, client_id, WRITE, |f| topic_matches(f, topic))
    }

    /// Whether the client may receive a message published on `topic` (check on delivery).
    pub fn can_receive(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.check(username, client_id, READ, |f| topic_matches(f, topic))
    }

    /// Whether the client may subscribe to `filter` (`$share/GROUP/` is stripped first).
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        let filter = strip_share(filter);
        self.check(username, client_id, READ, |f| filter_covers(f, filter))
    }

    /// Deny wins; then any rule granting `want` allows; nothing matching denies.
    fn check(
        &self,
        username: Option<&str>,
        client_id: &str,
        want: u8,
        matches: impl Fn(&str) -> bool,
    ) -> bool {
        if !self.patterns.is_empty() && self.is_dangerous(username, client_id) {
            tracing::debug!(
                user = username,
                client_id,
                "ACL refuses a client whose name contains + # or /"
            );
            return false;
        }
        // As in Mosquitto, an empty username is a username: no anonymous rules, no %u.
        let own = match username {
            Some(u) => self.users.get(u).map(Vec::as_slice).unwrap_or_default(),
            None => &self.anonymous,
        };
        let expanded: Vec<Rule> = self
            .patterns
            .iter()
            .filter_map(|r| expand(r, username, client_id))
            .collect();
        let rules = || own.iter().chain(expanded.iter());
        if rules().any(|r| r.access == DENY && matches(&r.filter)) {
            return false;
        }
        rules().any(|r| r.access & want != 0 && matches(&r.filter))
    }

    fn is_dangerous(&self, username: Option<&str>, client_id: &str) -> bool {
        let bad = |s: &str| s.contains(['+', '#', '/']);
        (self.patterns_use_username && username.is_some_and(bad))
            || (self.patterns_use_client_id && bad(client_id))
    }
}

/// `pattern`/`topic` arguments: `[access] TOPIC`, or just `TOPIC` (readwrite).
fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, topic) = split_word(rest);
    if first.is_empty() {
        return Err("empty topic".into());
    }
    let (access, topic) = if topic.is_empty() {
        // Mosquitto: a single word is the topic, with readwrite access.
        (READ | WRITE, first)
    } else {
        let access = match first {
            "read" => READ,
            "write" => WRITE,
            "readwrite" => READ | WRITE,
            "deny" => DENY,
            other => {
                return Err(format!(
                    "invalid access {other:?} (expected read, write, readwrite or deny)"
                ));
            }
        };
        (access, topic)
    };
    if !valid_filter(topic) {
        return Err(format!("invalid topic filter {topic:?}"));
    }
    Ok(Rule {
        filter: topic.to_string(),
        access,
    })
}

/// Substitutes %c and %u; `None` when the pattern needs a name the client lacks.
fn expand(rule: &Rule, username: Option<&str>, client_id: &str) -> Option<Rule> {
    let mut filter = rule.filter.clone();
    if filter.contains("%u") {
        filter = filter.replace("%u", username.filter(|u| !u.is_empty())?);
    }
    if filter.contains("%c") {
        if client_id.is_empty() {
            return None;
        }
        filter = filter.replace("%c", client_id);
    }
    Some(Rule {
        filter,
        access: rule.access,
    })
}

fn split_word(s: &str) -> (&str, &str) {
    match s.split_once([' ', '\t']) {
        Some((w, rest)) => (w, rest.trim()),
        None => (s, ""),
    }
}

fn strip_share(filter: &str) -> &str {
    filter
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(filter, |(_, f)| f)
}

/// Mosquitto's `mosquitto_sub_topic_check`: `+` and `#` whole levels, `#` last.
pub fn valid_filter(filter: &str) -> bool {
    let levels: Vec<&str> = filter.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, l)| match *l {
        "#" => i == last,
        "+" => true,
        l => !l.contains(['+', '#']),
    })
}

/// `$` topics are only matched by filters that start with `$` too (and vice versa).
fn dollar_mismatch(filter: &str, other: &str) -> bool {
    filter.starts_with('$') != other.starts_with('$')
}

/// MQTT matching of a topic name against an ACL filter: the router's rules
/// (including `$` topics only matching `$` filters), with empty never matching.
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    !filter.is_empty() && !topic.is_empty() && crate::router::topic::matches(filter, topic)
}

/// Mosquitto's `mosquitto_sub_matches_acl`: every topic `sub` can match is matched by `acl`.
pub fn filter_covers(acl: &str, sub: &str) -> bool {
    if acl.is_empty() || sub.is_empty() || dollar_mismatch(acl, sub) {
        return false;
    }
    let mut a = acl.split('/');
    let mut s = sub.split('/');
    loop {
        match (a.next(), s.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(l)) if l != "#" => {}
            (Some(x), Some(y)) if x == y && x != "+" && x != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_matching() {
        assert!(topic_matches("a/#", "a"));
        assert!(topic_matches("a/#", "a/b/c"));
        assert!(topic_matches("a/+/c", "a//c"));
        assert!(topic_matches("+", "a"));
        assert!(!topic_matches("+", "a/b"));
        assert!(!topic_matches("a/+", "a"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(topic_matches("$SYS/#", "$SYS/x"));
        assert!(!topic_matches("a/b", "a/b/c"));
    }

    #[test]
    fn covering() {
        assert!(filter_covers("meters/#", "meters/#"));
        assert!(filter_covers("meters/#", "meters"));
        assert!(filter_covers("meters/#", "meters/+/x"));
        assert!(filter_covers("meters/+/#", "meters/a"));
        assert!(filter_covers("meters/+", "meters/+"));
        assert!(!filter_covers("meters/+", "meters/#"));
        assert!(!filter_covers("meters/a/#", "meters/#"));
        assert!(!filter_covers("meters/a/#", "meters/+/x"));
        assert!(!filter_covers("meters/a", "meters/+"));
        assert!(!filter_covers("#", "$SYS/#"));
        assert!(!filter_covers("a/+", "a"));
    }

    #[test]
    fn filter_validation() {
        for ok in ["#", "+", "a/+/b", "a/#", "a b/c", "%u/#"] {
            assert!(valid_filter(ok), "{ok}");
        }
        for bad in ["a/#/b", "a+", "a/b#", "#a"] {
            assert!(!valid_filter(bad), "{bad}");
        }
    }

    #[test]
    fn shared_subscription_prefix() {
        assert_eq!(strip_share("$share/g/a/#"), "a/#");
        assert_eq!(strip_share("a/#"), "a/#");
    }
}
