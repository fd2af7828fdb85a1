//! Publish -> matching subscribers (local sessions) and forwarders (bridges).

pub mod forward;
pub mod message;
pub mod retained;
pub mod subscriptions;
pub mod topic;
