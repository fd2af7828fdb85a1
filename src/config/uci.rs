//! Loading OpenWRT UCI (/etc/config/edgemq) into the same model.
//!
//! A real UCI parser (`config`/`option`/`list`/`package`, single and double
//! quotes, backslash escapes, comments) feeds a `toml::Table` laid out exactly
//! like the TOML file (schema: /work/wt/UCI.md, docs/configuration.md), which
//! the TOML loader then deserializes: one model, one set of defaults and rules.
//! Every key path is mapped back to its UCI line and `config.section.option`.

mod build;
mod lex;

use std::path::Path;

use super::ConfigError;
use super::model::Config;
use super::toml_file::{self, Locations, SYNTAX_KEY};

/// How a UCI string becomes a TOML value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Str,
    Bool,
    Int,
    List,
}

/// (section type, UCI option, TOML key path inside the section's table, kind).
pub(crate) const SCHEMA: &[(&str, &str, &str, Kind)] = &[
    ("edgemq", "data_dir", "data_dir", Kind::Str),
    ("edgemq", "user", "user", Kind::Str),
    ("edgemq", "log_level", "log_level", Kind::Str),
    ("edgemq", "worker_threads", "worker_threads", Kind::Int),
    ("edgemq", "sys_interval", "sys_interval", Kind::Str),
    (
        "edgemq",
        "max_connections",
        "limits.max_connections",
        Kind::Int,
    ),
    (
        "edgemq",
        "max_packet_size",
        "limits.max_packet_size",
        Kind::Str,
    ),
    (
        "edgemq",
        "connect_timeout",
        "limits.connect_timeout",
        Kind::Str,
    ),
    ("edgemq", "max_inflight", "limits.max_inflight", Kind::Int),
    (
        "edgemq",
        "max_queued_messages",
        "limits.max_queued_messages",
        Kind::Int,
    ),
    ("edgemq", "queue_full", "limits.queue_full", Kind::Str),
    ("edgemq", "max_keepalive", "limits.max_keepalive", Kind::Int),
    (
        "edgemq",
        "session_expiry",
        "limits.session_expiry",
        Kind::Str,
    ),
    (
        "edgemq",
        "max_topic_alias",
        "limits.max_topic_alias",
        Kind::Int,
    ),
    (
        "edgemq",
        "receive_maximum",
        "limits.receive_maximum",
        Kind::Int,
    ),
    ("edgemq", "password_file", "auth.password_file", Kind::Str),
    ("edgemq", "acl_file", "auth.acl_file", Kind::Str),
    ("user", "username", "username", Kind::Str),
    ("user", "password", "password", Kind::Str),
    ("user", "password_hash", "password_hash", Kind::Str),
    ("listener", "bind", "bind", Kind::Str),
    ("listener", "allow_anonymous", "allow_anonymous", Kind::Bool),
    ("listener", "tls_cert", "tls.cert", Kind::Str),
    ("listener", "tls_key", "tls.key", Kind::Str),
    ("listener", "tls_client_ca", "tls.client_ca", Kind::Str),
    (
        "listener",
        "tls_identity_as_username",
        "tls.identity_as_username",
        Kind::Bool,
    ),
    ("listener", "password_file", "auth.password_file", Kind::Str),
    ("listener", "acl_file", "auth.acl_file", Kind::Str),
    ("bridge", "name", "name", Kind::Str),
    ("bridge", "address", "addresses", Kind::List),
    ("bridge", "client_id", "client_id", Kind::Str),
    ("bridge", "protocol", "protocol", Kind::Str),
    ("bridge", "clean_session", "clean_session", Kind::Bool),
    ("bridge", "keepalive", "keepalive", Kind::Str),
    ("bridge", "username", "username", Kind::Str),
    ("bridge", "password", "password", Kind::Str),
    ("bridge", "password_file", "password_file", Kind::Str),
    ("bridge", "notifications", "notifications", Kind::Bool),
    (
        "bridge",
        "notification_topic",
        "notification_topic",
        Kind::Str,
    ),
    ("bridge", "try_private", "try_private", Kind::Bool),
    (
        "bridge",
        "message_id_property",
        "message_id_property",
        Kind::Bool,
    ),
    ("bridge", "inflight", "inflight", Kind::Int),
    ("bridge", "reconnect_min", "reconnect_min", Kind::Str),
    ("bridge", "reconnect_max", "reconnect_max", Kind::Str),
    ("bridge", "failback_after", "failback_after", Kind::Str),
    ("bridge", "tls", "tls", Kind::Bool),
    ("bridge", "tls_ca", "tls.ca", Kind::Str),
    ("bridge", "tls_cert", "tls.cert", Kind::Str),
    ("bridge", "tls_key", "tls.key", Kind::Str),
    ("bridge", "tls_server_name", "tls.server_name", Kind::Str),
    ("bridge", "tls13_only", "tls.tls13_only", Kind::Bool),
    ("bridge", "tls_alpn", "tls.alpn", Kind::List),
    ("bridge", "queue_max_bytes", "queue.max_bytes", Kind::Str),
    ("bridge", "queue_max_age", "queue.max_age", Kind::Str),
    ("bridge", "queue_overflow", "queue.overflow", Kind::Str),
    (
        "bridge",
        "queue_replay_rate",
        "queue.replay_rate",
        Kind::Int,
    ),
    ("bridge", "queue_durability", "queue.durability", Kind::Str),
    ("topic", "bridge", "", Kind::Str),
    ("topic", "pattern", "pattern", Kind::Str),
    ("topic", "direction", "direction", Kind::Str),
    ("topic", "qos", "qos", Kind::Int),
    ("topic", "local_prefix", "local_prefix", Kind::Str),
    ("topic", "remote_prefix", "remote_prefix", Kind::Str),
    ("topic", "coalesce", "coalesce", Kind::Bool),
];

/// The UCI option that sets the TOML key `rest` (relative to its section's
/// table), e.g. `tls.cert` → `tls_cert`, `addresses[1]` → `address`.
pub fn option_name(rest: &str) -> Option<&'static str> {
    let rest = rest.split('[').next().unwrap_or(rest);
    if rest.is_empty() {
        return None;
    }
    SCHEMA
        .iter()
        .find(|(_, _, path, _)| *path == rest)
        .map(|(_, opt, _, _)| *opt)
}

/// Parses UCI text into the model and the line map; no validation.
pub fn parse_located(text: &str, file: &Path) -> Result<(Config, Locations), ConfigError> {
    let sections = lex::lex(text, file)?;
    let mut b = build::Builder::new(file);
    b.build(&sections);
    if !b.problems.is_empty() {
        return Err(ConfigError {
            problems: b.problems,
        });
    }
    let rendered = toml::to_string(&b.root)
        .map_err(|e| ConfigError::one(file, None, SYNTAX_KEY, format!("internal: {e}")))?;
    let table = toml::de::DeTable::parse(&rendered).map_err(|e| {
        ConfigError::one(file, None, SYNTAX_KEY, format!("internal: {}", e.message()))
    })?;
    let spans = toml_file::locate(&table, &rendered);
    let cfg = toml_file::deserialize(&rendered, file, &spans, &b.locs)?;
    Ok((cfg, b.locs))
}

pub(crate) fn config_name(file: &Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "edgemq".into())
}

/// UCI booleans: 1/0, true/false, yes/no, on/off.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}
