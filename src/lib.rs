//! edgemq: a lightweight MQTT broker for the LAN with a store-and-forward
//! bridge that loses nothing it acknowledged.
//!
//! ```text
//!  LAN clients ──TCP/TLS/unix──► listener ─► session ─► router ─┬─► other sessions (local delivery)
//!                                (accept,     (one task   (topic trie,│
//!                                 limits,      per client, retained,  └─► bridge ─► queue (log) ─► uplink ──TLS──► central broker
//!                                 TLS)         MQTT state) $SYS)            ▲                         │
//!                                                                           └──── inbound topics ◄────┘
//! ```
#![forbid(unsafe_code)]

pub mod auth;
pub mod bridge;
pub mod broker;
pub mod cli;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod json;
pub mod queue;
pub mod router;
pub mod server;
pub mod store;
pub mod sys;
pub mod tls;
