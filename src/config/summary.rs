//! The one-screen summary `edgemq check` prints (and `run` may log): what
//! listens where, how clients authenticate, where bridges go. Never secrets.

use std::fmt::Write;

use super::Source;
use super::model::{Auth, Bridge, Config, Direction, Durability, Listener, Overflow, Protocol};

/// A human summary of `cfg`; passwords are never included, only whether one is set.
pub fn summary(cfg: &Config, source: &Source) -> String {
    let mut s = String::new();
    let from = match source {
        Source::File(p) => p.display().to_string(),
        Source::BuiltIn => "built-in defaults (no config file)".into(),
    };
    let _ = writeln!(s, "config: {from}");
    let _ = writeln!(
        s,
        "data_dir: {}   log_level: {}   user: {}   worker_threads: {}",
        cfg.data_dir.display(),
        cfg.log_level,
        cfg.user.as_deref().unwrap_or("(current)"),
        cfg.worker_threads
            .map_or("auto".to_string(), |n| n.to_string()),
    );
    let _ = writeln!(s, "listeners:");
    for l in &cfg.listeners {
        let _ = writeln!(s, "  {}", listener_line(l));
    }
    let _ = writeln!(s, "auth: {}", auth_line(&cfg.auth));
    if cfg.bridges.is_empty() {
        let _ = writeln!(s, "bridges: none");
    } else {
        let _ = writeln!(s, "bridges:");
        for b in &cfg.bridges {
            bridge_lines(&mut s, b);
        }
    }
    s
}

fn listener_line(l: &Listener) -> String {
    let kind = match (&l.tls, l.unix_path()) {
        (_, Some(_)) => "unix".to_string(),
        (None, None) => "tcp".to_string(),
        (Some(t), None) => {
            let mut k = "tls".to_string();
            if t.client_ca.is_some() {
                k.push_str(" (client certificates required");
                if t.identity_as_username {
                    k.push_str(", CN as username");
                }
                k.push(')');
            }
            k
        }
    };
    let anon = if l.anonymous_allowed() { "yes" } else { "no" };
    let mut line = format!("{}  {kind}  anonymous: {anon}", l.bind);
    if let Some(a) = &l.auth {
        let _ = write!(line, "  own auth: {}", auth_line(a));
    }
    line
}

fn auth_line(a: &Auth) -> String {
    let mut parts = Vec::new();
    if let Some(p) = &a.password_file {
        parts.push(format!("password_file {}", p.display()));
    }
    if let Some(p) = &a.acl_file {
        parts.push(format!("acl_file {}", p.display()));
    }
    if !a.users.is_empty() {
        parts.push(format!("{} inline user(s)", a.users.len()));
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn bridge_lines(s: &mut String, b: &Bridge) {
    let tls = match &b.tls {
        None => "plain tcp".to_string(),
        Some(t) => {
            let cert = if t.cert.is_some() {
                ", client cert"
            } else {
                ""
            };
            format!("tls (ca {}{cert})", t.ca)
        }
    };
    let login = match (
        &b.username,
        b.password.is_some() || b.password_file.is_some(),
    ) {
        (Some(u), true) => format!("user {u} with password"),
        (Some(u), false) => format!("user {u}"),
        (None, _) => "no login".into(),
    };
    let _ = writeln!(s, "  {} -> {}", b.name, b.addresses.join(", "));
    let proto = match b.protocol {
        Protocol::Mqtt311 => "mqtt311",
        Protocol::Mqtt5 => "mqtt5",
    };
    let _ = writeln!(s, "    {proto}, {tls}, {login}");
    for t in &b.topics {
        let _ = writeln!(
            s,
            "    topic {:?} {} qos {} local {:?} remote {:?}{}",
            t.pattern,
            match t.direction {
                Direction::Out => "out",
                Direction::In => "in",
                Direction::Both => "both",
            },
            t.qos,
            t.local_prefix,
            t.remote_prefix,
            if t.coalesce { " coalesce" } else { "" },
        );
    }
    let q = &b.queue;
    let rate = q
        .replay_rate
        .map_or("no replay cap".to_string(), |r| format!("replay {r}/s"));
    let _ = writeln!(
        s,
        "    queue: max {} / {}, {} when full, durability {}, {rate}",
        q.max_bytes,
        q.max_age,
        overflow(q.overflow),
        match q.durability {
            Durability::Always => "always",
            Durability::Outage => "outage",
        },
    );
}

fn overflow(o: Overflow) -> &'static str {
    match o {
        Overflow::DropOldest => "drop-oldest",
        Overflow::DropNewest => "drop-newest",
    }
}
