//! TEMPORARY: the bridge API the server is wired against, until the real
//! bridge (branch wip/bridge) is merged. Starting a bridge fails loudly.

use std::sync::Arc;

/// Placeholder handle.
pub struct BridgeHandle;
/// Bridge figures.
pub struct BridgeStatus {
    /// Name.
    pub name: String,
    /// Connected.
    pub connected: bool,
    /// Since.
    pub since_ms: u64,
    /// Address.
    pub address: Option<String>,
    /// Queue messages.
    pub queue_messages: u64,
    /// Queue bytes.
    pub queue_bytes: u64,
    /// Oldest age.
    pub oldest_age_ms: Option<u64>,
    /// Sent.
    pub sent: u64,
    /// Acked.
    pub acked: u64,
    /// Dropped.
    pub dropped: u64,
    /// Duplicates.
    pub duplicates: u64,
}
impl BridgeHandle {
    /// Name.
    pub fn name(&self) -> &str {
        ""
    }
    /// Status.
    pub fn status(&self) -> BridgeStatus {
        BridgeStatus {
            name: String::new(),
            connected: false,
            since_ms: 0,
            address: None,
            queue_messages: 0,
            queue_bytes: 0,
            oldest_age_ms: None,
            sent: 0,
            acked: 0,
            dropped: 0,
            duplicates: 0,
        }
    }
    /// Reload.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
impl crate::router::forward::Forwarder for BridgeHandle {
    fn offer(
        &self,
        _m: &crate::router::message::Message,
    ) -> Option<crate::router::forward::Durable> {
        None
    }
}
/// Start.
pub fn start(
    _c: &crate::config::model::Bridge,
    _d: &std::path::Path,
    _t: tokio::sync::mpsc::Sender<crate::router::message::Message>,
    _s: tokio_util::sync::CancellationToken,
    _tr: &tokio_util::task::TaskTracker,
) -> anyhow::Result<Arc<BridgeHandle>> {
    anyhow::bail!("bridges are not built into this binary yet")
}
