//! Bridges: router -> queue -> uplink for outbound rules, central -> router for inbound.

pub mod uplink;
