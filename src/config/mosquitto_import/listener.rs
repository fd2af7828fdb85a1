//! Mosquitto listeners (`listener`, `port`/`bind_address`, their TLS options
//! and, with per_listener_settings, their security options) into edgemq
//! `[[listener]]` tables.

use std::path::PathBuf;

use super::keys;
use super::reader::Directive;
use super::{not_carried, note, parse_bool};
use crate::config::model::{Auth, Listener, ListenerTls};

/// Mosquitto's port when `listener`/`port` gives none.
pub const DEFAULT_PORT: u16 = 1883;

/// A path value and the line it came from.
type Src = (PathBuf, Directive);

/// Security options: global, or per listener with per_listener_settings.
#[derive(Debug, Default)]
pub struct Sec {
    /// The last allow_anonymous value.
    pub allow_anonymous: Option<bool>,
    /// password_file
    pub password_file: Option<PathBuf>,
    /// acl_file
    pub acl_file: Option<PathBuf>,
}

impl Sec {
    /// Applies allow_anonymous / password_file / acl_file; notes go to `notes`.
    pub fn apply(&mut self, d: &Directive, notes: &mut Vec<String>) {
        match d.key.as_str() {
            "allow_anonymous" => match parse_bool(d) {
                Some(b) => self.allow_anonymous = Some(b),
                None => notes.push(not_carried(
                    d,
                    "not true or false; mosquitto refuses to start",
                )),
            },
            "password_file" => self.password_file = Some(path_value(d, notes)),
            _ => self.acl_file = Some(path_value(d, notes)),
        }
    }

    /// The files as an edgemq `Auth`.
    pub fn auth(&self) -> Auth {
        Auth {
            password_file: self.password_file.clone(),
            acl_file: self.acl_file.clone(),
            users: Vec::new(),
        }
    }
}

/// A string value as a path, noting a cut inline comment.
pub fn path_value(d: &Directive, notes: &mut Vec<String>) -> PathBuf {
    let (v, cut) = d.string_value();
    if cut {
        notes.push(note(&format!(
            "inline comment cut from `{}` [{}] (mosquitto would have read it as part of the value)",
            d.echo(),
            d.loc()
        )));
    }
    PathBuf::from(v)
}

/// A listener as read so far.
#[derive(Debug, Default)]
pub struct ListenerDraft {
    /// `listener ...` line; None for Mosquitto's default listener.
    pub origin: Option<Directive>,
    /// Any option that makes Mosquitto create its default listener was seen.
    pub touched: bool,
    port: Option<u16>,
    host: Option<String>,
    unix: Option<String>,
    ipv6: Option<bool>,
    /// `protocol websockets`: the listener is dropped.
    pub websockets: bool,
    cafile: Option<Src>,
    capath: Option<Src>,
    certfile: Option<Src>,
    keyfile: Option<Src>,
    require_certificate: Option<Directive>,
    identity: Option<Directive>,
    /// Security options when per_listener_settings is true.
    pub sec: Sec,
    /// The lines that set `sec` (kept for the default listener only).
    pub sec_lines: Vec<Directive>,
    /// Comments that belong to this listener.
    pub notes: Vec<String>,
}

impl ListenerDraft {
    /// A `listener PORT [ADDRESS|SOCKET_PATH]` line, or why it cannot be one.
    pub fn from_line(d: &Directive) -> Result<Self, &'static str> {
        let port: u16 = d
            .arg(0)
            .and_then(|p| p.parse().ok())
            .ok_or("not a port number")?;
        let addr = d.arg(1).filter(|a| !a.starts_with('#')).map(String::from);
        let mut l = ListenerDraft {
            origin: Some(d.clone()),
            ..Default::default()
        };
        match (port, addr) {
            (0, None) => return Err("port 0 needs a Unix socket path"),
            (0, Some(path)) => l.unix = Some(path),
            (p, host) => {
                l.port = Some(p);
                l.host = host;
            }
        }
        Ok(l)
    }

    /// `port N` for the default listener.
    pub fn set_port(&mut self, d: &Directive) {
        match d
            .arg(0)
            .and_then(|p| p.parse::<u16>().ok())
            .filter(|p| *p > 0)
        {
            Some(p) => {
                self.port = Some(p);
                self.touched = true;
            }
            None => self.notes.push(not_carried(d, "not a port number")),
        }
    }

    /// `bind_address HOST` for the default listener.
    pub fn set_host(&mut self, d: &Directive) {
        let (host, _) = d.string_value();
        self.host = Some(host);
        self.touched = true;
    }

    /// Applies a listener-scoped option; false when `d` is not one.
    pub fn apply(&mut self, d: &Directive) -> bool {
        match d.key.as_str() {
            "cafile" => self.cafile = Some((path_value(d, &mut self.notes), d.clone())),
            "capath" => self.capath = Some((path_value(d, &mut self.notes), d.clone())),
            "certfile" => self.certfile = Some((path_value(d, &mut self.notes), d.clone())),
            "keyfile" => self.keyfile = Some((path_value(d, &mut self.notes), d.clone())),
            "require_certificate" => self.require_certificate = self.flag(d).then(|| d.clone()),
            "use_identity_as_username" => self.identity = self.flag(d).then(|| d.clone()),
            "protocol" => self.protocol(d),
            "socket_domain" => self.ipv6 = Some(d.arg(0) == Some("ipv6")),
            key => match keys::reason(keys::LISTENER, key) {
                Some(why) => self.notes.push(not_carried(d, why)),
                None => return false,
            },
        }
        self.touched = true;
        true
    }

    fn flag(&mut self, d: &Directive) -> bool {
        parse_bool(d).unwrap_or_else(|| {
            self.notes.push(not_carried(
                d,
                "not true or false; mosquitto refuses to start",
            ));
            false
        })
    }

    fn protocol(&mut self, d: &Directive) {
        match d.arg(0) {
            Some("mqtt") => {}
            Some("websockets") => {
                self.websockets = true;
                self.notes.push(not_carried(
                    d,
                    "edgemq speaks MQTT over TCP, TLS and Unix sockets, not WebSockets; this listener is left out",
                ));
            }
            _ => self.notes.push(not_carried(d, "unknown protocol")),
        }
    }

    /// The bind string edgemq expects.
    pub fn bind(&self) -> String {
        if let Some(p) = &self.unix {
            return format!("unix:{p}");
        }
        let port = self.port.unwrap_or(DEFAULT_PORT);
        match self.host.as_deref() {
            None if self.ipv6 == Some(true) => format!("[::]:{port}"),
            None => format!("0.0.0.0:{port}"),
            Some("localhost") => format!("127.0.0.1:{port}"),
            Some(h) if h.contains(':') => format!("[{}]:{port}", h.trim_matches(['[', ']'])),
            Some(h) => format!("{h}:{port}"),
        }
    }

    /// The edgemq listener and its comments.
    pub fn finish(mut self, allow_anonymous: bool, per_listener: bool) -> (Listener, Vec<String>) {
        let mut l = Listener::new(&self.bind());
        l.allow_anonymous = Some(allow_anonymous);
        self.address_notes();
        l.tls = self.tls();
        if per_listener && (self.sec.password_file.is_some() || self.sec.acl_file.is_some()) {
            l.auth = Some(self.sec.auth());
        }
        (l, self.notes)
    }

    fn address_notes(&mut self) {
        let port = self.port.unwrap_or(DEFAULT_PORT);
        match self.host.as_deref() {
            _ if self.unix.is_some() => {}
            None if self.ipv6.is_none() => self.notes.push(note(&format!(
                "mosquitto listened on IPv4 and IPv6; for IPv6 too, add a [[listener]] with bind = \"[::]:{port}\""
            ))),
            Some("localhost") => self.notes.push(note("mosquitto also listened on ::1 for localhost")),
            _ => {}
        }
    }

    fn tls(&mut self) -> Option<ListenerTls> {
        let (cert, key) = match (self.certfile.take(), self.keyfile.take()) {
            (Some(c), Some(k)) => (c.0, k.0),
            (cert, key) => {
                let files = [cert, key, self.cafile.take(), self.capath.take()];
                let flags = [self.require_certificate.take(), self.identity.take()];
                let lines = files
                    .into_iter()
                    .flatten()
                    .map(|(_, d)| d)
                    .chain(flags.into_iter().flatten());
                for d in lines {
                    self.notes.push(not_carried(
                        &d,
                        "TLS needs both certfile and keyfile; this listener stays plain TCP",
                    ));
                }
                return None;
            }
        };
        let client_ca = self.client_ca();
        let cert = self.full_chain(cert);
        if let Some(d) = self.identity.as_ref().filter(|_| client_ca.is_none()) {
            let why = "needs require_certificate true and a cafile: without a client certificate there is no identity";
            self.notes.push(not_carried(d, why));
            self.identity = None;
        }
        Some(ListenerTls {
            cert,
            key,
            client_ca,
            identity_as_username: self.identity.is_some(),
        })
    }

    /// require_certificate makes cafile the client CA; without it Mosquitto
    /// only used cafile to complete the server chain.
    fn client_ca(&mut self) -> Option<PathBuf> {
        if let Some((_, d)) = &self.capath {
            self.notes.push(not_carried(
                d,
                "edgemq takes client CAs from one PEM file (client_ca)",
            ));
        }
        let require = self.require_certificate.as_ref()?;
        if self.cafile.is_none() {
            self.notes.push(not_carried(
                require,
                "edgemq needs a cafile to check client certificates",
            ));
        }
        self.cafile.as_ref().map(|(p, _)| p.clone())
    }

    /// Let's Encrypt's cert.pem is the leaf alone; Mosquitto sent the chain
    /// from cafile (chain.pem). edgemq sends `cert` as is, so use fullchain.pem.
    fn full_chain(&mut self, cert: PathBuf) -> PathBuf {
        let Some((ca, d)) = self
            .cafile
            .clone()
            .filter(|_| self.require_certificate.is_none())
        else {
            return cert;
        };
        let letsencrypt = cert.file_name().is_some_and(|n| n == "cert.pem")
            && ca.file_name().is_some_and(|n| n == "chain.pem")
            && cert.parent() == ca.parent();
        if letsencrypt {
            let full = cert.with_file_name("fullchain.pem");
            self.notes.push(note(&format!(
                "cert is {} (leaf + chain): mosquitto completed cert.pem with `{}` [{}]",
                full.display(),
                d.echo(),
                d.loc()
            )));
            return full;
        }
        self.notes.push(not_carried(
            &d,
            "without require_certificate mosquitto used cafile only to complete the server chain; \
             edgemq sends `cert` as is, so make it the full chain",
        ));
        cert
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Directive {
        let (key, rest) = text.split_once(' ').unwrap_or((text, ""));
        Directive {
            file: "t.conf".into(),
            line: 1,
            key: key.into(),
            args: rest.split_whitespace().map(String::from).collect(),
            rest: rest.into(),
        }
    }

    #[test]
    fn binds() {
        let b = |t: &str| ListenerDraft::from_line(&line(t)).map(|l| l.bind());
        assert_eq!(b("listener 1883"), Ok("0.0.0.0:1883".into()));
        assert_eq!(b("listener 1883 localhost"), Ok("127.0.0.1:1883".into()));
        assert_eq!(b("listener 8883 192.0.2.1"), Ok("192.0.2.1:8883".into()));
        assert_eq!(b("listener 8883 ::1"), Ok("[::1]:8883".into()));
        assert_eq!(b("listener 0 /run/m.sock"), Ok("unix:/run/m.sock".into()));
        assert!(b("listener 0").is_err());
        assert!(b("listener http").is_err());
    }
}
