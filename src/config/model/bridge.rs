//! The bridge half of the configuration model: a bridge, its TLS, topic
//! rules and queue, with their defaults (same serde rules as the rest of
//! the model: every struct denies unknown fields).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::Secret;
use crate::config::units::{Dur, Size};

/// One store-and-forward bridge to a central broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bridge {
    /// Unique name; used in logs, `$SYS` topics and the queue directory.
    pub name: String,
    /// "host:port" addresses tried in order (failover).
    pub addresses: Vec<String>,
    /// Client id at the central broker; absent: "edgemq-<hostname>-<name>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// mqtt311 or mqtt5.
    #[serde(default)]
    pub protocol: Protocol,
    /// false keeps the session (and QoS 1/2 state) at the central broker across reconnects.
    #[serde(default)]
    pub clean_session: bool,
    /// Keepalive towards the central broker; a silent link is detected within 1.5× this.
    #[serde(default = "default_bridge_keepalive")]
    pub keepalive: Dur,
    /// Username at the central broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password at the central broker (prefer password_file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// File whose first line is the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    /// Publish the bridge state (retained) locally and remotely, with a remote will.
    #[serde(default = "yes")]
    pub notifications: bool,
    /// State topic; absent: "$SYS/broker/connection/<client_id>/state".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_topic: Option<String>,
    /// Mark the connection as a bridge (MQTT 3.1.1 protocol level | 0x80) so the peer can prevent loops.
    #[serde(default = "yes")]
    pub try_private: bool,
    /// MQTT 5 only: add a user property "edgemq-msg-id" with a stable id per queued message.
    #[serde(default)]
    pub message_id_property: bool,
    /// Unacknowledged QoS 1/2 publishes on the uplink.
    #[serde(default = "default_bridge_inflight")]
    pub inflight: u16,
    /// First reconnect delay; doubles up to reconnect_max, with jitter.
    #[serde(default = "default_reconnect_min")]
    pub reconnect_min: Dur,
    /// Reconnect delay cap.
    #[serde(default = "default_reconnect_max")]
    pub reconnect_max: Dur,
    /// While connected to a later address, try the first one again after this long.
    #[serde(default = "default_failback")]
    pub failback_after: Dur,
    /// TLS to the central broker; absent: plain TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BridgeTls>,
    /// Which topics cross the bridge, and how.
    #[serde(default, rename = "topic")]
    pub topics: Vec<TopicRule>,
    /// The durable outbound queue.
    #[serde(default)]
    pub queue: QueueConfig,
}

/// TLS towards the central broker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeTls {
    /// "native" (system store), "bundled" (built-in webpki roots) or a path to a PEM file.
    #[serde(default = "default_ca")]
    pub ca: String,
    /// Client certificate chain (PEM) for mutual TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM: PKCS#1, PKCS#8 or SEC1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<PathBuf>,
    /// Name to verify when it differs from the address's host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
    /// Refuse TLS 1.2.
    #[serde(default)]
    pub tls13_only: bool,
    /// ALPN protocols to offer, e.g. ["mqtt"] for port-443 setups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
}

/// One bridge topic rule, with Mosquitto's `topic` semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopicRule {
    /// Topic filter, relative to the prefixes.
    pub pattern: String,
    /// out (local to central), in (central to local), both.
    #[serde(default)]
    pub direction: Direction,
    /// QoS used on the uplink (and for the inbound subscription).
    #[serde(default = "default_rule_qos")]
    pub qos: u8,
    /// Prefix of the topic on the local side.
    #[serde(default)]
    pub local_prefix: String,
    /// Prefix of the topic on the central side.
    #[serde(default)]
    pub remote_prefix: String,
    /// While queued, keep only the newest message per topic.
    #[serde(default)]
    pub coalesce: bool,
}

/// Bounds and durability of a bridge's outbound queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// Total payload+overhead bytes kept.
    pub max_bytes: Size,
    /// Messages older than this are dropped (counted).
    pub max_age: Dur,
    /// What a full queue does with one more message.
    pub overflow: Overflow,
    /// Messages per second cap when draining a backlog; absent: no cap.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_rate: Option<u32>,
    /// always: on disk before the local PUBACK; outage: on disk only while the uplink is down.
    pub durability: Durability,
}

/// MQTT protocol version of a bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// MQTT 3.1.1
    #[default]
    Mqtt311,
    /// MQTT 5.0
    Mqtt5,
}

/// Which way a bridge topic rule carries messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Local to central.
    #[default]
    Out,
    /// Central to local.
    In,
    /// Both ways.
    Both,
}

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overflow {
    /// Make room by dropping the oldest message.
    #[default]
    DropOldest,
    /// Refuse the new message.
    DropNewest,
}

/// When queued bridge messages reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// On disk before the local publisher gets its PUBACK.
    #[default]
    Always,
    /// In memory while the uplink is up; spilled to disk while it is down.
    Outage,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_bytes: Size(64 << 20),
            max_age: Dur::secs(7 * 86_400),
            overflow: Overflow::DropOldest,
            replay_rate: None,
            durability: Durability::Always,
        }
    }
}

impl Bridge {
    /// The client id used at the central broker.
    pub fn effective_client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_else(|_| "edge".into());
            format!("edgemq-{host}-{}", self.name)
        })
    }
}

fn default_bridge_keepalive() -> Dur {
    Dur::secs(60)
}
fn default_bridge_inflight() -> u16 {
    64
}
fn default_reconnect_min() -> Dur {
    Dur::secs(1)
}
fn default_reconnect_max() -> Dur {
    Dur::secs(60)
}
fn default_failback() -> Dur {
    Dur::secs(300)
}
fn default_ca() -> String {
    "native".into()
}
fn default_rule_qos() -> u8 {
    1
}
fn yes() -> bool {
    true
}
