//! The local MQTT broker: listeners, framing, sessions.
