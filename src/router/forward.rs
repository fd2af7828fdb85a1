//! The contract between the router and the bridges' outbound side: the
//! router offers every routed message to each [`Forwarder`]; a forwarder that
//! takes it returns a [`Durable`] that resolves once the message is as safe
//! as the bridge's durability setting promises. The session sends PUBACK /
//! PUBREC only after every such future resolved Ok.

use tokio::sync::oneshot;

use super::message::Message;

/// Why a forwarder could not keep a message.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ForwardError {
    /// The queue is full and its overflow policy is drop-newest.
    #[error("bridge {bridge}: queue full, message dropped")]
    QueueFull {
        /// Bridge name.
        bridge: String,
    },
    /// The queue could not write to disk (disk full, I/O error).
    #[error("bridge {bridge}: queue storage failed: {reason}")]
    Storage {
        /// Bridge name.
        bridge: String,
        /// The I/O error, as text.
        reason: String,
    },
    /// The bridge is shutting down.
    #[error("bridge {bridge}: shutting down")]
    Closed {
        /// Bridge name.
        bridge: String,
    },
}

/// Resolves when the message is durable (or failed to become so).
pub type Durable = oneshot::Receiver<Result<(), ForwardError>>;

/// A consumer of routed messages outside the local broker (a bridge's out side).
pub trait Forwarder: Send + Sync + 'static {
    /// Offers `msg`. Returns None when no out rule of this forwarder matches
    /// (or the message came in over this very bridge: loop prevention).
    fn offer(&self, msg: &Message) -> Option<Durable>;
}
