//! Semantic checks the parser cannot make; every problem reported at once,
//! each located (file, line, key) through the loader's [`Locations`].

use std::collections::HashSet;
use std::path::Path;

use super::ConfigProblem;
use super::model::{Auth, Config, Listener};
use super::toml_file::Locations;

mod bridge;

/// Smallest `limits.max_packet_size`: a CONNECT with a short client id must fit.
pub const MIN_PACKET_SIZE: u64 = 64;
/// Largest `limits.max_packet_size`: MQTT's own ceiling (variable byte integer).
pub const MAX_PACKET_SIZE: u64 = 256 << 20;
/// Longest topic filter MQTT can carry (UTF-8 string length prefix).
pub const MAX_TOPIC_LEN: usize = 65_535;
/// Accepted `log_level` values.
pub const LOG_LEVELS: [&str; 5] = ["error", "warn", "info", "debug", "trace"];

/// Whether to check that referenced files exist and are readable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checks {
    /// Everything, including files (what `load` and `edgemq check` do).
    All,
    /// Everything except the filesystem (for text that will be installed elsewhere).
    NoFiles,
}

/// Returns every problem found in `cfg`, in source-line order.
pub fn validate(cfg: &Config, locs: &Locations, file: &Path, checks: Checks) -> Vec<ConfigProblem> {
    let mut v = Validator {
        locs,
        file,
        checks,
        problems: Vec::new(),
    };
    v.top(cfg);
    v.auth(&cfg.auth, "auth");
    v.listeners(cfg);
    v.bridges(&cfg.bridges);
    let mut problems = v.problems;
    super::sort_by_line(&mut problems);
    problems
}

struct Validator<'a> {
    locs: &'a Locations,
    file: &'a Path,
    checks: Checks,
    problems: Vec<ConfigProblem>,
}

impl Validator<'_> {
    fn err(&mut self, path: &str, message: impl Into<String>) {
        let p = self.locs.problem(self.file, path, message);
        self.problems.push(p);
    }

    fn readable(&mut self, path: &str, file: Option<&Path>) {
        let Some(f) = file else { return };
        if self.checks == Checks::NoFiles {
            return;
        }
        if let Err(why) = check_readable(f) {
            self.err(path, format!("{}: {why}", f.display()));
        }
    }

    fn top(&mut self, cfg: &Config) {
        if !LOG_LEVELS.contains(&cfg.log_level.as_str()) {
            self.err(
                "log_level",
                format!(
                    "unknown log level {:?}: use one of {}",
                    cfg.log_level,
                    LOG_LEVELS.join(", ")
                ),
            );
        }
        if cfg.worker_threads == Some(0) {
            self.err("worker_threads", "must be at least 1");
        }
        if cfg.user.as_deref() == Some("") {
            self.err(
                "user",
                "must not be empty (remove the key to keep running as the current user)",
            );
        }
        let l = &cfg.limits;
        let size = l.max_packet_size.bytes();
        if !(MIN_PACKET_SIZE..=MAX_PACKET_SIZE).contains(&size) {
            self.err(
                "limits.max_packet_size",
                format!("{size} bytes is outside {MIN_PACKET_SIZE} bytes ..= 256MiB"),
            );
        }
        if l.max_inflight == 0 {
            self.err("limits.max_inflight", "must be at least 1");
        }
        if l.receive_maximum == 0 {
            self.err(
                "limits.receive_maximum",
                "must be at least 1 (MQTT forbids 0)",
            );
        }
        if l.max_connections == 0 {
            self.err("limits.max_connections", "must be at least 1");
        }
    }

    fn auth(&mut self, auth: &Auth, at: &str) {
        self.readable(
            &format!("{at}.password_file"),
            auth.password_file.as_deref(),
        );
        self.readable(&format!("{at}.acl_file"), auth.acl_file.as_deref());
        let mut seen = HashSet::new();
        for (i, u) in auth.users.iter().enumerate() {
            let at = format!("{at}.user[{i}]");
            if u.username.is_empty() {
                self.err(&format!("{at}.username"), "must not be empty");
            } else if !seen.insert(u.username.as_str()) {
                self.err(
                    &format!("{at}.username"),
                    format!("user {:?} is defined twice", u.username),
                );
            }
            match (&u.password, &u.password_hash) {
                (None, None) => {
                    self.err(&format!("{at}.password"), "set password or password_hash")
                }
                (Some(_), Some(_)) => self.err(
                    &format!("{at}.password_hash"),
                    "set password or password_hash, not both",
                ),
                _ => {}
            }
        }
    }

    fn listeners(&mut self, cfg: &Config) {
        if cfg.listeners.is_empty() {
            self.err("listener", "at least one listener is needed");
        }
        let mut binds = HashSet::new();
        for (i, l) in cfg.listeners.iter().enumerate() {
            let at = format!("listener[{i}]");
            let bind_ok = check_bind(&l.bind);
            if let Err(why) = &bind_ok {
                self.err(&format!("{at}.bind"), why.clone());
            } else if !binds.insert(l.bind.as_str()) {
                self.err(
                    &format!("{at}.bind"),
                    format!("{:?} is bound by an earlier listener", l.bind),
                );
            }
            self.listener_tls(l, &at);
            if let Some(a) = &l.auth {
                self.auth(a, &format!("{at}.auth"));
            }
            // With a broken bind, whether it is loopback (and so anonymous by default) is unknown.
            if bind_ok.is_ok() && !l.anonymous_allowed() && !can_authenticate(l, &cfg.auth) {
                self.err(
                    &format!("{at}.allow_anonymous"),
                    "anonymous clients are refused but no client can authenticate: set a password_file, \
                     inline users, or tls.identity_as_username",
                );
            }
        }
    }

    fn listener_tls(&mut self, l: &Listener, at: &str) {
        let Some(t) = &l.tls else { return };
        self.readable(&format!("{at}.tls.cert"), Some(&t.cert));
        self.readable(&format!("{at}.tls.key"), Some(&t.key));
        self.readable(&format!("{at}.tls.client_ca"), t.client_ca.as_deref());
        if t.identity_as_username && t.client_ca.is_none() {
            self.err(
                &format!("{at}.tls.identity_as_username"),
                "needs tls.client_ca: without client certificates there is no identity",
            );
        }
        if l.unix_path().is_some() {
            self.err(
                &format!("{at}.tls"),
                "TLS on a Unix socket listener is not supported",
            );
        }
    }
}

fn can_authenticate(l: &Listener, global: &Auth) -> bool {
    let auth = l.auth.as_ref().unwrap_or(global);
    let by_cert = l.tls.as_ref().is_some_and(|t| t.identity_as_username);
    auth.password_file.is_some() || !auth.users.is_empty() || !global.users.is_empty() || by_cert
}

/// Ok when `path` is a regular file we can open for reading.
pub fn check_readable(path: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    std::fs::File::open(path)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// "host:port" (host a name, IPv4, or [IPv6]) or "unix:PATH".
pub fn check_bind(bind: &str) -> Result<(), String> {
    if let Some(p) = bind.strip_prefix("unix:") {
        return if p.is_empty() {
            Err("unix: needs a socket path, e.g. \"unix:/run/edgemq/edgemq.sock\"".into())
        } else {
            Ok(())
        };
    }
    check_host_port(bind)
        .map_err(|_| format!("{bind:?} is neither host:port (e.g. \"0.0.0.0:1883\") nor unix:PATH"))
}

/// "host:port" with a DNS name, IPv4 address or bracketed IPv6 address and a port 1..=65535
/// (0 is allowed too: the OS picks a port, which tests use).
pub fn check_host_port(s: &str) -> Result<(), String> {
    let bad = || format!("{s:?} is not host:port (e.g. \"mqtt.example.com:8883\", \"[::1]:1883\")");
    if s.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let dns_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    if dns_ok { Ok(()) } else { Err(bad()) }
}

/// Bridge names become directory names: [A-Za-z0-9_-], 1 to 64 characters.
pub fn check_bridge_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if name.is_empty() || name.len() > 64 || !ok_chars {
        Err(format!(
            "bridge name {name:?} must be 1-64 characters of A-Z a-z 0-9 _ -"
        ))
    } else {
        Ok(())
    }
}

/// MQTT topic filter rules: `+` fills a whole level, `#` is the whole last level.
pub fn check_topic_filter(f: &str) -> Result<(), String> {
    if f.is_empty() || f.len() > MAX_TOPIC_LEN || f.contains('\0') {
        return Err(format!("{f:?} is not a valid topic filter"));
    }
    let levels: Vec<&str> = f.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let bad_hash = level.contains('#') && (*level != "#" || i + 1 != levels.len());
        let bad_plus = level.contains('+') && *level != "+";
        if bad_hash || bad_plus {
            return Err(format!(
                "{f:?} is not a valid topic filter: + must fill a whole level, # must be the whole last level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        for ok in ["a", "a/+/b", "#", "a/#", "+", "/", "a//b"] {
            assert!(check_topic_filter(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a#", "a/#/b", "a+/b", "a/b+", "##"] {
            assert!(check_topic_filter(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_ports() {
        for ok in [
            "h:1",
            "mqtt.example.com:8883",
            "[::1]:1883",
            "0.0.0.0:1883",
            "localhost:0",
        ] {
            assert!(check_host_port(ok).is_ok(), "{ok}");
        }
        for bad in [
            "h", ":1883", "h:x", "h:70000", "a b:1", "::1:1883", "h..x:1",
        ] {
            assert!(check_host_port(bad).is_err(), "{bad}");
        }
        assert!(check_bind("unix:/tmp/x").is_ok());
        assert!(check_bind("unix:").is_err());
    }

    #[test]
    fn bridge_names() {
        assert!(check_bridge_name("central-1_a").is_ok());
        for bad in ["", "a/b", "..", "a b", "é"] {
            assert!(check_bridge_name(bad).is_err(), "{bad}");
        }
    }
}
