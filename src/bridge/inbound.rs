//! Inbound: PUBLISHes from the central broker renamed by the in/both rules
//! (remote_prefix → local_prefix) and handed to the local router, marked as
//! coming from this bridge so they are never forwarded back (loop prevention).

use bytes::Bytes;

use super::session::Shared;
use crate::router::message::{Message, Origin, Props, QoS};

/// Delivers one inbound message to the router; waits while the router's channel is full.
pub async fn deliver(
    shared: &Shared,
    remote_topic: &str,
    payload: Bytes,
    qos: QoS,
    retain: bool,
    props: Props,
) {
    let Some(local_topic) = shared.rules.inbound(remote_topic) else {
        tracing::debug!(
            topic = remote_topic,
            "inbound message matches no in rule; ignored"
        );
        return;
    };
    let mut msg = Message::new(
        &local_topic,
        payload,
        qos,
        retain,
        Origin::Bridge(shared.name.clone()),
    );
    msg.props = props;
    if shared.inbound.send(msg).await.is_err() {
        tracing::warn!(topic = %local_topic, "router is gone; inbound message dropped");
    }
}
