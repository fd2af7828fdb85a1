//! Mosquitto-style bridge notifications: a retained state topic, "1" while
//! the uplink is up and "0" otherwise, published locally and at the central
//! broker (where a will of "0" covers an edge that vanishes).

use bytes::Bytes;

use crate::config::model::Bridge;
use crate::router::message::{Message, Origin, QoS};

/// Payload while connected.
pub const ONLINE: &[u8] = b"1";
/// Payload while disconnected (also the remote will).
pub const OFFLINE: &[u8] = b"0";

/// The state topic: `notification_topic`, else Mosquitto's default.
pub fn state_topic(cfg: &Bridge, client_id: &str) -> String {
    cfg.notification_topic
        .clone()
        .unwrap_or_else(|| format!("$SYS/broker/connection/{client_id}/state"))
}

/// The retained local state message, published by the broker itself.
pub fn local_state(topic: &str, up: bool) -> Message {
    let payload = Bytes::from_static(if up { ONLINE } else { OFFLINE });
    Message::new(topic, payload, QoS::AtLeastOnce, true, Origin::Broker)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_topic_is_mosquittos() {
        let mut cfg: Bridge = toml::from_str("name = \"c\"\naddresses = [\"h:1\"]").unwrap();
        assert_eq!(
            state_topic(&cfg, "GW-1"),
            "$SYS/broker/connection/GW-1/state"
        );
        cfg.notification_topic = Some("meters/GW-1/bridge".into());
        assert_eq!(state_topic(&cfg, "GW-1"), "meters/GW-1/bridge");
        let m = local_state("t", true);
        assert!(m.retain);
        assert_eq!(&m.payload[..], b"1");
        assert_eq!(m.origin, Origin::Broker);
    }
}
