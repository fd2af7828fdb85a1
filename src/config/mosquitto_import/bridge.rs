//! Mosquitto bridges (`connection NAME` and the options after it) into
//! edgemq `[[bridge]]` tables, keeping Mosquitto's `topic` argument rules.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};

use super::keys;
use super::listener::{DEFAULT_PORT, path_value};
use super::reader::Directive;
use super::{not_carried, note, parse_bool};
use crate::config::Config;
use crate::config::model::{Bridge, BridgeTls, Direction, Protocol, Secret, TopicRule};
use crate::config::units::Dur;

/// Mosquitto's topic QoS when the `topic` line gives none.
const DEFAULT_TOPIC_QOS: u8 = 0;
/// Longest bridge name edgemq accepts (it names a directory).
const MAX_NAME: usize = 64;
/// Mosquitto's floor for keepalive_interval.
const MIN_KEEPALIVE_SECS: u64 = 5;
/// The capath that means "the system's CA store".
const SYSTEM_CAPATHS: &[&str] = &["/etc/ssl/certs", "/etc/ssl/certs/", "/etc/pki/tls/certs"];

/// TLS options as read; Mosquitto uses TLS only with a cafile or capath.
#[derive(Debug, Default)]
struct TlsDraft {
    cafile: Option<PathBuf>,
    capath: Option<(String, Directive)>,
    cert: Option<(PathBuf, Directive)>,
    key: Option<(PathBuf, Directive)>,
    tls13_only: bool,
    alpn: Vec<String>,
}

/// A bridge as read so far.
#[derive(Debug)]
pub struct BridgeDraft {
    bridge: Bridge,
    mosquitto_name: String,
    tls: TlsDraft,
    client_id_set: bool,
    /// Comments that belong to this bridge.
    pub notes: Vec<String>,
}

impl BridgeDraft {
    /// A bridge for `connection NAME`, with edgemq's defaults and a name
    /// edgemq accepts that is not in `taken`.
    pub fn new(name: &str, taken: &[&str], origin: &Directive) -> Result<Self> {
        let edgemq_name = edgemq_name(name, taken);
        // Through the same deserializer as a config file (`Table::try_into`
        // compiled a second copy of every config visitor: ~60 KiB). The name
        // needs no escaping: `edgemq_name` keeps only A-Z a-z 0-9 _ -.
        let text = format!("[[bridge]]\nname = \"{edgemq_name}\"\naddresses = []\n");
        let bridge = toml::from_str::<Config>(&text)
            .context("building a default bridge")?
            .bridges
            .pop()
            .context("building a default bridge: no bridge parsed")?;
        let mut notes = vec![format!("# from `{}` [{}]", origin.echo(), origin.loc())];
        if edgemq_name != name {
            notes.push(note(&format!(
                "bridge name {name:?} becomes {edgemq_name:?}: edgemq names its queue directory after it \
                 (A-Z a-z 0-9 _ -, at most {MAX_NAME} characters)"
            )));
        }
        Ok(BridgeDraft {
            bridge,
            mosquitto_name: name.to_string(),
            tls: TlsDraft::default(),
            client_id_set: false,
            notes,
        })
    }

    /// The bridge's edgemq name.
    pub fn name(&self) -> &str {
        &self.bridge.name
    }

    /// The bridge's name in the mosquitto config (`connection NAME`).
    pub fn mosquitto_name(&self) -> &str {
        &self.mosquitto_name
    }

    /// Applies one bridge option.
    pub fn apply(&mut self, d: &Directive) {
        let b = &mut self.bridge;
        match d.key.as_str() {
            "address" | "addresses" => b.addresses.extend(addresses(d)),
            "topic" => self.topic(d),
            "clientid" | "remote_clientid" => {
                b.client_id = Some(d.string_value().0);
                self.client_id_set = true;
            }
            "username" | "remote_username" => b.username = Some(d.string_value().0),
            "password" | "remote_password" => b.password = Some(Secret(d.rest.clone())),
            "bridge_protocol_version" => self.protocol(d),
            "cleansession" | "notifications" | "try_private" | "bridge_insecure" => self.flag(d),
            // false is Mosquitto's default and edgemq's behaviour: back to the first address.
            "round_robin" if parse_bool(d) == Some(false) => {}
            "keepalive_interval" => self.keepalive(d),
            "notification_topic" => b.notification_topic = Some(d.string_value().0),
            "restart_timeout" => self.restart(d),
            "start_type" => self.start_type(d),
            "bridge_cafile" => self.tls.cafile = Some(path_value(d, &mut self.notes)),
            "bridge_capath" => {
                self.tls.capath = Some((
                    path_value(d, &mut self.notes).display().to_string(),
                    d.clone(),
                ))
            }
            "bridge_certfile" => self.tls.cert = Some((path_value(d, &mut self.notes), d.clone())),
            "bridge_keyfile" => self.tls.key = Some((path_value(d, &mut self.notes), d.clone())),
            "bridge_tls_version" => self.tls_version(d),
            "bridge_alpn" => {
                let (v, _) = d.string_value();
                self.tls.alpn = v
                    .split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect();
            }
            key => {
                let why = keys::reason(keys::BRIDGE, key).unwrap_or("unknown bridge option");
                self.notes.push(not_carried(d, why));
            }
        }
    }

    fn flag(&mut self, d: &Directive) {
        let Some(v) = parse_bool(d) else {
            self.notes.push(not_carried(
                d,
                "not true or false; mosquitto refuses to start",
            ));
            return;
        };
        match d.key.as_str() {
            "cleansession" => self.bridge.clean_session = v,
            "notifications" => self.bridge.notifications = v,
            "try_private" => self.bridge.try_private = v,
            _ if v => self.notes.push(not_carried(
                d,
                "edgemq always verifies the central broker's certificate and name; \
                 set tls.server_name if the certificate names another host",
            )),
            _ => {}
        }
    }

    /// `topic PATTERN [out|in|both [QOS [LOCAL_PREFIX [REMOTE_PREFIX]]]]`,
    /// where `""` stands for an empty prefix and a `#`-word ends the line.
    fn topic(&mut self, d: &Directive) {
        let Some(pattern) = d.arg(0) else {
            return self
                .notes
                .push(not_carried(d, "no topic; mosquitto refuses to start"));
        };
        let rest: Vec<&str> = d.args[1..]
            .iter()
            .map(String::as_str)
            .take_while(|a| !a.starts_with('#'))
            .collect();
        let direction = match rest.first().map(|s| s.to_ascii_lowercase()).as_deref() {
            None | Some("out") => Direction::Out,
            Some("in") => Direction::In,
            Some("both") => Direction::Both,
            Some(_) => {
                return self
                    .notes
                    .push(not_carried(d, "direction is not out, in or both"));
            }
        };
        let qos = match rest.get(1).map(|q| q.parse::<u8>()) {
            None => DEFAULT_TOPIC_QOS,
            Some(Ok(q)) if q <= 2 => q,
            Some(_) => return self.notes.push(not_carried(d, "QoS is not 0, 1 or 2")),
        };
        let prefix = |i: usize| {
            rest.get(i)
                .filter(|p| **p != "\"\"")
                .map_or(String::new(), |p| p.to_string())
        };
        let pattern = if pattern == "\"\"" {
            String::new()
        } else {
            pattern.to_string()
        };
        if pattern.is_empty() {
            self.notes.push(note(&format!(
                "`{}` [{}]: the empty pattern makes each prefix the whole topic",
                d.echo(),
                d.loc()
            )));
        }
        self.bridge.topics.push(TopicRule {
            pattern,
            direction,
            qos,
            local_prefix: prefix(2),
            remote_prefix: prefix(3),
            coalesce: false,
        });
    }

    fn protocol(&mut self, d: &Directive) {
        match d.arg(0) {
            Some("mqttv311") => self.bridge.protocol = Protocol::Mqtt311,
            Some("mqttv50") => self.bridge.protocol = Protocol::Mqtt5,
            Some("mqttv31") => self.notes.push(not_carried(
                d,
                "edgemq speaks MQTT 3.1.1 or 5; using mqtt311",
            )),
            _ => self.notes.push(not_carried(d, "unknown protocol version")),
        }
    }

    fn keepalive(&mut self, d: &Directive) {
        match d.arg(0).and_then(|k| k.parse::<u64>().ok()) {
            Some(k) => self.bridge.keepalive = Dur::secs(k.max(MIN_KEEPALIVE_SECS)),
            None => self.notes.push(not_carried(d, "not a number of seconds")),
        }
    }

    /// `restart_timeout BASE [CAP]`: one value is a fixed delay in Mosquitto.
    fn restart(&mut self, d: &Directive) {
        let secs = |i: usize| {
            d.arg(i)
                .and_then(|s| s.parse::<u64>().ok())
                .map(|s| Dur(Duration::from_secs(s.max(1))))
        };
        match (secs(0), secs(1)) {
            (Some(base), cap) => {
                self.bridge.reconnect_min = base;
                self.bridge.reconnect_max = cap.unwrap_or(base);
            }
            (None, _) => self.notes.push(not_carried(d, "not a number of seconds")),
        }
    }

    fn start_type(&mut self, d: &Directive) {
        if d.arg(0) != Some("automatic") {
            self.notes.push(not_carried(
                d,
                "edgemq bridges start with the broker and reconnect until stopped",
            ));
        }
    }

    fn tls_version(&mut self, d: &Directive) {
        match d.arg(0) {
            Some("tlsv1.3") => self.tls.tls13_only = true,
            Some("tlsv1.2") => self.notes.push(not_carried(
                d,
                "edgemq offers TLS 1.2 and 1.3 and lets the server choose",
            )),
            _ => self
                .notes
                .push(not_carried(d, "edgemq speaks TLS 1.2 and 1.3 only")),
        }
    }

    /// The edgemq bridge and its comments. `max_queued` is Mosquitto's
    /// effective max_queued_messages, which also bounded the bridge's backlog.
    pub fn finish(mut self, max_queued: usize) -> (Bridge, Vec<String>) {
        self.bridge.tls = self.tls();
        if !self.client_id_set {
            self.notes.push(note(&format!(
                "mosquitto's default client id was <hostname>.{}; set client_id if the central broker expects it",
                self.mosquitto_name
            )));
        }
        let q = &self.bridge.queue;
        self.notes.push(note(&format!(
            "mosquitto kept at most {max_queued} messages (max_queued_messages) for this bridge while it was down; \
             edgemq keeps up to queue.max_bytes = {} and queue.max_age = {} on disk",
            q.max_bytes, q.max_age
        )));
        (self.bridge, self.notes)
    }

    fn tls(&mut self) -> Option<BridgeTls> {
        let t = std::mem::take(&mut self.tls);
        let ca = match (&t.cafile, &t.capath) {
            (Some(f), Some((_, d))) => {
                self.notes.push(not_carried(
                    d,
                    "edgemq trusts one CA source: the bridge_cafile",
                ));
                f.display().to_string()
            }
            (Some(f), None) => f.display().to_string(),
            (None, Some((p, _))) if SYSTEM_CAPATHS.contains(&p.as_str()) => "native".to_string(),
            (None, Some((p, d))) => {
                self.notes.push(note(&format!(
                    "`{}` [{}]: edgemq reads one PEM bundle or the system store; using the system store \
                     (ca = \"native\"), or set ca to a bundle of the certificates in {p}",
                    d.echo(),
                    d.loc()
                )));
                "native".to_string()
            }
            (None, None) => {
                for (_, d) in [t.cert, t.key].into_iter().flatten() {
                    self.notes.push(not_carried(&d, "without bridge_cafile or bridge_capath mosquitto used no TLS, and neither does this"));
                }
                return None;
            }
        };
        Some(BridgeTls {
            ca,
            cert: t.cert.map(|c| c.0),
            key: t.key.map(|k| k.0),
            server_name: None,
            tls13_only: t.tls13_only,
            alpn: t.alpn,
        })
    }
}

/// `name` with every character edgemq does not allow replaced by `-`,
/// shortened, and made unique against `taken` with a numeric suffix.
fn edgemq_name(name: &str, taken: &[&str]) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME)
        .collect();
    let mut candidate = clean.clone();
    let mut n = 2;
    while taken.contains(&candidate.as_str()) {
        let suffix = format!("-{n}");
        let keep = MAX_NAME.saturating_sub(suffix.len()).min(clean.len());
        candidate = format!("{}{suffix}", &clean[..keep]);
        n += 1;
    }
    candidate
}

/// `address host[:port] [host[:port] ...]` (spaces or commas) into "host:port".
fn addresses(d: &Directive) -> Vec<String> {
    d.args
        .iter()
        .take_while(|a| !a.starts_with('#'))
        .flat_map(|a| a.split(','))
        .filter(|a| !a.is_empty())
        .map(host_port)
        .collect()
}

fn host_port(a: &str) -> String {
    if a.starts_with('[') {
        return if a.contains("]:") {
            a.to_string()
        } else {
            format!("{a}:{DEFAULT_PORT}")
        };
    }
    match a.rsplit_once(':') {
        Some((h, p)) if h.contains(':') => format!("[{h}]:{p}"),
        Some(_) => a.to_string(),
        None => format!("{a}:{DEFAULT_PORT}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names() {
        assert_eq!(edgemq_name("mqtt.subutux.be", &[]), "mqtt-subutux-be");
        assert_eq!(edgemq_name("a.b", &["a-b"]), "a-b-2");
        assert_eq!(edgemq_name("a.b", &["a-b", "a-b-2"]), "a-b-3");
        assert_eq!(edgemq_name(&"x".repeat(80), &[]).len(), MAX_NAME);
        for name in ["mqtt.subutux.be", "ünïcode bridge", "ok_name-1"] {
            assert!(crate::config::validate::check_bridge_name(&edgemq_name(name, &[])).is_ok());
        }
    }

    #[test]
    fn host_ports() {
        assert_eq!(host_port("mqtt.example.com"), "mqtt.example.com:1883");
        assert_eq!(host_port("mqtt.example.com:8883"), "mqtt.example.com:8883");
        assert_eq!(host_port("2001:db8::1:8883"), "[2001:db8::1]:8883");
        assert_eq!(host_port("[2001:db8::1]"), "[2001:db8::1]:1883");
    }
}
