//! The one configuration model. TOML and UCI both load into these structs
//! (UCI by way of a `toml::Table`), so there is exactly one set of keys,
//! defaults and serde rules. Every struct denies unknown fields: a typo must
//! not silently disable a feature.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::units::{Dur, Size};

mod bridge;
pub use bridge::{
    Bridge, BridgeTls, Direction, Durability, Overflow, Protocol, QueueConfig, TopicRule,
};

/// The whole configuration of one edgemq process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Store for bridge queues, retained messages and sessions.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Drop root privileges to this user after binding ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// error, warn, info, debug or trace.
    #[serde(default = "default_log_level")]
    pub log_level: String,
    /// Tokio worker threads; absent: one per core, at most 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_threads: Option<usize>,
    /// How often `$SYS/broker/...` topics are republished.
    #[serde(default = "default_sys_interval")]
    pub sys_interval: Dur,
    /// Bounds on what clients may make the broker hold.
    #[serde(default)]
    pub limits: Limits,
    /// Where clients connect.
    #[serde(default = "default_listeners", rename = "listener")]
    pub listeners: Vec<Listener>,
    /// Password and ACL files shared by every listener without its own `auth`.
    #[serde(default)]
    pub auth: Auth,
    /// Store-and-forward bridges to central brokers.
    #[serde(default, rename = "bridge", skip_serializing_if = "Vec::is_empty")]
    pub bridges: Vec<Bridge>,
}

/// Bounds that keep one client from exhausting a small device.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Concurrent client connections over all listeners.
    pub max_connections: usize,
    /// Largest MQTT packet accepted or sent, in bytes.
    pub max_packet_size: Size,
    /// Time a new connection has to send CONNECT (and finish TLS).
    pub connect_timeout: Dur,
    /// Outgoing QoS 1/2 messages unacknowledged per client.
    pub max_inflight: u16,
    /// Messages queued per client beyond the inflight window (also offline, persistent sessions).
    pub max_queued_messages: usize,
    /// What a full client queue does with one more message: drop-oldest or drop-newest.
    pub queue_full: Overflow,
    /// Upper bound on a client's keepalive; also sent as MQTT 5 server keep alive when exceeded.
    pub max_keepalive: u16,
    /// Longest a persistent session is kept while its client is away.
    pub session_expiry: Dur,
    /// Topic aliases a MQTT 5 client may use towards the broker.
    pub max_topic_alias: u16,
    /// MQTT 5 receive maximum the broker announces.
    pub receive_maximum: u16,
}

/// A place where clients connect: TCP (IPv4/IPv6), TLS, or a Unix socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// "0.0.0.0:1883", "[::]:1883", "127.0.0.1:1883" or "unix:/run/edgemq/edgemq.sock".
    pub bind: String,
    /// Whether clients without a username may connect. Absent: only on loopback and Unix sockets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_anonymous: Option<bool>,
    /// TLS on this listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<ListenerTls>,
    /// Per-listener password/ACL files (Mosquitto's per_listener_settings); replaces `[auth]` here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,
}

/// Server certificate and optional client-certificate requirement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// Server certificate chain (PEM).
    pub cert: PathBuf,
    /// Server private key (PEM: PKCS#1, PKCS#8 or SEC1).
    pub key: PathBuf,
    /// CA bundle that client certificates must chain to; present means mutual TLS is required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_ca: Option<PathBuf>,
    /// The client certificate's CN becomes the MQTT username.
    #[serde(default)]
    pub identity_as_username: bool,
}

/// Password file and ACL file (Mosquitto formats).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// mosquitto_passwd format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Mosquitto acl_file format (user/topic/pattern with %u and %c).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl_file: Option<PathBuf>,
    /// Users defined inline (LuCI writes these); checked before the password file.
    #[serde(default, rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
}

/// A user defined in the config itself rather than in a password file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// MQTT username.
    pub username: String,
    /// Plain password (UCI/LuCI); compared in constant time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// A mosquitto_passwd hash ($6$ or $7$) instead of a plain password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

/// A secret string: never printed by Debug or Display.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl Secret {
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: default_data_dir(),
            user: None,
            log_level: default_log_level(),
            worker_threads: None,
            sys_interval: default_sys_interval(),
            limits: Limits::default(),
            listeners: default_listeners(),
            auth: Auth::default(),
            bridges: Vec::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_packet_size: Size(1 << 20),
            connect_timeout: Dur::secs(10),
            max_inflight: 32,
            max_queued_messages: 1000,
            queue_full: Overflow::DropOldest,
            max_keepalive: 65535,
            session_expiry: Dur::secs(7 * 86_400),
            max_topic_alias: 16,
            receive_maximum: 64,
        }
    }
}

impl Listener {
    /// A listener on `bind` with safe defaults.
    pub fn new(bind: &str) -> Self {
        Listener {
            bind: bind.to_string(),
            allow_anonymous: None,
            tls: None,
            auth: None,
        }
    }

    /// The Unix socket path, when `bind` is "unix:PATH".
    pub fn unix_path(&self) -> Option<&str> {
        self.bind.strip_prefix("unix:")
    }

    /// Whether anonymous clients are allowed, applying the safe default
    /// (only on loopback addresses and Unix sockets).
    pub fn anonymous_allowed(&self) -> bool {
        self.allow_anonymous.unwrap_or_else(|| self.is_local())
    }

    /// Loopback TCP or a Unix socket.
    pub fn is_local(&self) -> bool {
        if self.unix_path().is_some() {
            return true;
        }
        self.bind
            .parse::<std::net::SocketAddr>()
            .map(|a| a.ip().is_loopback())
            .unwrap_or_else(|_| self.bind.starts_with("localhost:"))
    }
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("edgemq-data")
}
fn default_log_level() -> String {
    "info".into()
}
fn default_sys_interval() -> Dur {
    Dur::secs(10)
}
fn default_listeners() -> Vec<Listener> {
    vec![Listener::new("127.0.0.1:1883")]
}
