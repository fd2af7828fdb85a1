//! Topic name and filter validation and matching: pure functions.
//!
//! The rules are MQTT 3.1.1 §4.7 / MQTT 5.0 §4.7-4.8: `+` is a whole level,
//! `#` is the whole last level and also matches its parent ("sport/#" matches
//! "sport"), topics starting with `$` are not matched by a wildcard in the
//! first level, and `$share/{group}/{filter}` names a shared subscription.

/// Longest topic name or filter the protocol can carry (a two-byte length).
pub const MAX_TOPIC_LEN: usize = 65_535;

/// Prefix of a shared subscription filter (MQTT 5.0 §4.8.2).
pub const SHARE_PREFIX: &str = "$share/";

/// Why a topic name or filter is invalid.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TopicError {
    /// Zero-length topic or filter.
    #[error("topic is empty")]
    Empty,
    /// Longer than 65,535 bytes.
    #[error("topic is longer than 65535 bytes")]
    TooLong,
    /// A wildcard in a topic name (PUBLISH).
    #[error("topic name contains a wildcard (+ or #)")]
    Wildcard,
    /// Contains U+0000.
    #[error("topic contains U+0000")]
    Nul,
    /// `+` or `#` not standing alone in its level, or `#` not last.
    #[error("wildcard not a whole level, or # not the last level")]
    BadWildcard,
    /// A malformed `$share/{group}/{filter}`.
    #[error("malformed shared subscription ($share/{{group}}/{{filter}})")]
    BadShared,
}

fn check_common(s: &str) -> Result<(), TopicError> {
    if s.is_empty() {
        return Err(TopicError::Empty);
    }
    if s.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    if s.contains('\0') {
        return Err(TopicError::Nul);
    }
    Ok(())
}

/// Validates a PUBLISH topic name: non-empty, at most 65,535 bytes, no wildcard, no U+0000.
pub fn validate_name(topic: &str) -> Result<(), TopicError> {
    check_common(topic)?;
    if topic.contains(['+', '#']) {
        return Err(TopicError::Wildcard);
    }
    Ok(())
}

/// Validates a SUBSCRIBE/UNSUBSCRIBE filter, including `$share/{group}/{filter}`.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    check_common(filter)?;
    let plain = if let Some(rest) = filter.strip_prefix(SHARE_PREFIX) {
        let (group, inner) = rest.split_once('/').ok_or(TopicError::BadShared)?;
        if group.is_empty() || group.contains(['+', '#']) || inner.is_empty() {
            return Err(TopicError::BadShared);
        }
        inner
    } else {
        filter
    };
    let mut levels = plain.split('/').peekable();
    while let Some(level) = levels.next() {
        let is_last = levels.peek().is_none();
        let ok = match level {
            "+" => true,
            "#" => is_last,
            l => !l.contains(['+', '#']),
        };
        if !ok {
            return Err(TopicError::BadWildcard);
        }
    }
    Ok(())
}

/// Splits a shared subscription filter: `"$share/g/a/b"` gives `Some(("g", "a/b"))`.
pub fn split_shared(filter: &str) -> Option<(&str, &str)> {
    let rest = filter.strip_prefix(SHARE_PREFIX)?;
    let (group, inner) = rest.split_once('/')?;
    if group.is_empty() || inner.is_empty() {
        return None;
    }
    Some((group, inner))
}

/// True when the topic name matches the (valid) filter; a `$share/` prefix is ignored.
pub fn matches(filter: &str, topic: &str) -> bool {
    let filter = split_shared(filter).map_or(filter, |(_, inner)| inner);
    if topic.starts_with('$') && filter.starts_with(['+', '#']) {
        return false;
    }
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            // "#" also matches the parent level: t may already be exhausted.
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "/a",
            "a/",
            "$SYS/x",
            "sport/tennis",
            " ",
            "ü/ß",
            "a//b",
        ] {
            assert_eq!(validate_name(ok), Ok(()), "{ok:?}");
        }
        assert_eq!(validate_name(""), Err(TopicError::Empty));
        assert_eq!(validate_name("a/+"), Err(TopicError::Wildcard));
        assert_eq!(validate_name("#"), Err(TopicError::Wildcard));
        assert_eq!(validate_name("a#b"), Err(TopicError::Wildcard));
        assert_eq!(validate_name("a\0b"), Err(TopicError::Nul));
        let long = "x".repeat(MAX_TOPIC_LEN);
        assert_eq!(validate_name(&long), Ok(()));
        assert_eq!(validate_name(&(long + "x")), Err(TopicError::TooLong));
    }

    #[test]
    fn filters() {
        let good = [
            "#",
            "+",
            "a/#",
            "a/+",
            "+/+",
            "+/b/#",
            "/#",
            "/+",
            "a//b",
            "$SYS/#",
            "a/+/c",
            "$share",
            "$share/g/#",
            "$share/g/a/+/b",
            "$share/g//",
            "+/#",
        ];
        for ok in good {
            assert_eq!(validate_filter(ok), Ok(()), "{ok:?}");
        }
        let bad = [
            ("", TopicError::Empty),
            ("a\0", TopicError::Nul),
            ("a/#/b", TopicError::BadWildcard),
            ("#/a", TopicError::BadWildcard),
            ("a#", TopicError::BadWildcard),
            ("a/b#", TopicError::BadWildcard),
            ("a+/b", TopicError::BadWildcard),
            ("a/+b", TopicError::BadWildcard),
            ("++", TopicError::BadWildcard),
            ("##", TopicError::BadWildcard),
            ("$share/", TopicError::BadShared),
            ("$share/g", TopicError::BadShared),
            ("$share/g/", TopicError::BadShared),
            ("$share//a", TopicError::BadShared),
            ("$share/+/a", TopicError::BadShared),
            ("$share/#/a", TopicError::BadShared),
            ("$share/g+/a", TopicError::BadShared),
            ("$share/g/a#", TopicError::BadWildcard),
        ];
        for (f, e) in bad {
            assert_eq!(validate_filter(f), Err(e), "{f:?}");
        }
        let long = "a".repeat(MAX_TOPIC_LEN + 1);
        assert_eq!(validate_filter(&long), Err(TopicError::TooLong));
    }

    #[test]
    fn shared_split() {
        assert_eq!(split_shared("$share/g/a/b"), Some(("g", "a/b")));
        assert_eq!(split_shared("$share/g/#"), Some(("g", "#")));
        assert_eq!(split_shared("$share/g"), None);
        assert_eq!(split_shared("$share//a"), None);
        assert_eq!(split_shared("a/b"), None);
        assert_eq!(split_shared("$SHARE/g/a"), None);
    }

    #[test]
    fn matching() {
        let yes = [
            ("a", "a"),
            ("a/b", "a/b"),
            ("#", "a"),
            ("#", "a/b/c"),
            ("#", "/"),
            ("sport/#", "sport"),
            ("sport/#", "sport/"),
            ("sport/#", "sport/tennis/player1"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/+", "sport/"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("+", "a"),
            ("+", ""),
            ("+/#", "a"),
            ("a//b", "a//b"),
            ("a/+/b", "a//b"),
            ("$SYS/#", "$SYS/broker/uptime"),
            ("$SYS/+/uptime", "$SYS/broker/uptime"),
            ("$share/g/a/+", "a/b"),
            ("$share/g/#", "x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f:?} should match {t:?}");
        }
        let no = [
            ("a", "b"),
            ("a", "a/b"),
            ("a/b", "a"),
            ("sport/tennis/+", "sport/tennis"),
            ("sport/tennis/+", "sport/tennis/p/ranking"),
            ("sport/+", "sport"),
            ("+", "/finance"),
            ("+", "a/b"),
            ("a/#", "b"),
            ("a/#", "ab"),
            ("#", "$SYS/broker"),
            ("#", "$SYS"),
            ("+/broker", "$SYS/broker"),
            ("+/#", "$x"),
            ("$share/g/#", "$SYS/x"),
            ("A", "a"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f:?} should not match {t:?}");
        }
    }
}
