//! Will messages: published when a connection ends without a normal
//! DISCONNECT, after the MQTT 5 will delay (capped by the session expiry),
//! unless the client reconnects to its session first.

use std::sync::Arc;
use std::time::Duration;

use super::packets::WillIn;
use super::session::{PendingWill, Session};
use super::{Broker, ListenerCtx};
use crate::clock::now_ms;
use crate::router::message::{Message, Origin};
use crate::router::topic;

/// Who the will belongs to, for the ACL check at publish time.
pub struct Owner {
    /// Client id.
    pub client_id: Arc<str>,
    /// Username, if any.
    pub username: Option<String>,
}

/// Publishes `will` now or after its delay.
pub fn schedule(
    broker: &Arc<Broker>,
    ctx: &Arc<ListenerCtx>,
    session: &Arc<Session>,
    will: WillIn,
    owner: Owner,
) {
    let expiry = session.lock().expiry_secs;
    let delay = will.delay.min(expiry);
    if delay == 0 {
        publish(broker, ctx, will, &owner);
        return;
    }
    let pending = PendingWill::default();
    if let Some(old) = session.lock().pending_will.replace(pending.clone()) {
        old.cancel.cancel();
    }
    let (broker2, ctx) = (broker.clone(), ctx.clone());
    broker.tracker.spawn(async move {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(u64::from(delay))) => publish(&broker2, &ctx, will, &owner),
            _ = pending.fire.cancelled() => publish(&broker2, &ctx, will, &owner),
            _ = pending.cancel.cancelled() => tracing::debug!(client_id = %owner.client_id, "will cancelled: client came back"),
            _ = broker2.shutdown.cancelled() => {}
        }
    });
}

fn publish(broker: &Broker, ctx: &ListenerCtx, will: WillIn, owner: &Owner) {
    if topic::validate_name(&will.topic).is_err() {
        tracing::warn!(client_id = %owner.client_id, topic = %will.topic, "will topic invalid; not published");
        return;
    }
    if !super::strict::client_may_publish(&will.topic)
        || !ctx
            .auth
            .can_publish(owner.username.as_deref(), &owner.client_id, &will.topic)
    {
        tracing::warn!(client_id = %owner.client_id, topic = %will.topic, "will denied by ACL");
        return;
    }
    let mut msg = Message::new(
        &will.topic,
        will.payload,
        will.qos,
        will.retain,
        Origin::Client(owner.client_id.clone()),
    );
    msg.props = will.props;
    msg.props.expires_at_ms = will.expiry.map(|s| now_ms() + u64::from(s) * 1000);
    tracing::info!(client_id = %owner.client_id, topic = %msg.topic, "publishing will");
    // Nobody waits for a will's acknowledgement; the durables still complete.
    drop(broker.router.publish(msg));
}
