//! Helpers shared by this binary's test modules.

use super::*;

pub(crate) fn granted(q: QoS) -> SubscribeReasonCode {
    SubscribeReasonCode::Success(q)
}

/// A client can still subscribe and receive: the broker carries on.
pub(crate) async fn assert_alive(port: u16) {
    let mut s = v4(v4_opts(&format!("alive-{}", common::free_port()), port)).await;
    s.subscribe("alive/check", QoS::AtLeastOnce).await;
    let mut p = v4(v4_opts(&format!("alive-p-{}", common::free_port()), port)).await;
    p.publish("alive/check", QoS::AtLeastOnce, false, b"ok")
        .await;
    assert_eq!(&s.expect_publish().await.payload[..], b"ok");
}
