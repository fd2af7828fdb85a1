//! Helpers shared by this binary's test modules.

use super::*;

pub(crate) const SESSION_EXPIRY: u8 = 0x11;
pub(crate) const MAX_PACKET: u8 = 0x27;
pub(crate) const ALIAS_MAX: u8 = 0x22;
pub(crate) const ALIAS: u8 = 0x23;
pub(crate) const SUB_ID: u8 = 0x0B;
pub(crate) const WILL_DELAY: u8 = 0x18;

/// Subscription options byte: QoS, no-local, retain-as-published, retain handling.
pub(crate) fn opts(qos: u8, no_local: bool, rap: bool, rh: u8) -> u8 {
    qos | u8::from(no_local) << 2 | u8::from(rap) << 3 | rh << 4
}

pub(crate) async fn sub(r: &mut Raw, pkid: u16, filter: &str, o: u8, props: &[u8]) -> Vec<u8> {
    r.send(&raw::subscribe(pkid, filter, o, Some(props))).await;
    match r.v5_packet().await {
        Packet::SubAck(s) => s
            .return_codes
            .iter()
            .map(|c| match c {
                SubscribeReasonCode::Success(q) => *q as u8,
                SubscribeReasonCode::NotAuthorized => 0x87,
                SubscribeReasonCode::TopicFilterInvalid => 0x8F,
                other => panic!("{other:?}"),
            })
            .collect(),
        other => panic!("expected SUBACK, got {other:?}"),
    }
}

/// Next PUBLISH on a raw v5 connection (acknowledging QoS 1 so the window stays open).
pub(crate) async fn next_pub(r: &mut Raw) -> Publish {
    loop {
        if let Packet::Publish(p) = r.v5_packet().await {
            if p.qos == QoS::AtLeastOnce {
                r.send(&raw::ack(0x40, p.pkid)).await;
            }
            return p;
        }
    }
}

pub(crate) async fn no_pub(r: &mut Raw) {
    if let raw::Got::Frame(f) = r.recv(QUIET).await {
        panic!("unexpected packet {f:?}");
    }
}

/// Skips to the broker's DISCONNECT and returns its reason code; the socket must then close.
pub(crate) async fn disconnect_reason(r: &mut Raw) -> u8 {
    let f = r.until_type(14).await;
    assert!(
        r.closed_within(WAIT).await,
        "socket left open after DISCONNECT"
    );
    f[2]
}

/// Subscription identifiers of a raw MQTT 5 PUBLISH frame.
pub(crate) fn publish_sub_ids(f: &[u8]) -> Vec<usize> {
    fn var(b: &[u8], at: &mut usize) -> usize {
        let (mut v, mut shift) = (0, 0);
        loop {
            let x = b[*at];
            *at += 1;
            v |= usize::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                return v;
            }
            shift += 7;
        }
    }
    let mut at = 1;
    var(f, &mut at);
    let tlen = usize::from(u16::from_be_bytes([f[at], f[at + 1]]));
    at += 2 + tlen + if (f[0] >> 1) & 3 > 0 { 2 } else { 0 };
    let plen = var(f, &mut at);
    let end = at + plen;
    let mut ids = Vec::new();
    while at < end {
        let id = f[at];
        at += 1;
        let str_len = |at: usize| 2 + usize::from(u16::from_be_bytes([f[at], f[at + 1]]));
        match id {
            0x01 => at += 1,
            0x02 => at += 4,
            0x23 => at += 2,
            0x03 | 0x08 | 0x09 => at += str_len(at),
            0x26 => {
                at += str_len(at);
                at += str_len(at);
            }
            0x0B => ids.push(var(f, &mut at)),
            other => panic!("unexpected property {other:#x}"),
        }
    }
    ids
}

pub(crate) async fn publisher(port: u16, id: &str) -> V5 {
    v5(v5_opts(id, port)).await
}

/// Publishes and, for QoS 1 and 2, waits for the broker's PUBACK / PUBCOMP:
/// only then has the message been routed (and a retained one stored), so what
/// the test does next cannot overtake it.
pub(crate) async fn publish(
    p: &mut V5,
    topic: &str,
    qos: QoS,
    retain: bool,
    payload: &'static [u8],
    props: PublishProperties,
) {
    use rumqttc::v5::mqttbytes::v5::Packet;
    p.client
        .publish_with_properties(topic, qos, retain, Bytes::from_static(payload), props)
        .await
        .unwrap();
    if qos == QoS::AtMostOnce {
        return;
    }
    loop {
        let packet = tokio::time::timeout(WAIT, p.rx.recv())
            .await
            .expect("no acknowledgement for a publish")
            .expect("publisher's event loop ended");
        match (qos, packet) {
            (QoS::AtLeastOnce, Packet::PubAck(_)) | (QoS::ExactlyOnce, Packet::PubComp(_)) => {
                return;
            }
            _ => {}
        }
    }
}

pub(crate) fn will_connect(id: &str, delay: u32, session_expiry: u32) -> Vec<u8> {
    let mut payload = raw::mstr(id);
    payload.extend(raw::props(&[p_u32(WILL_DELAY, delay)]));
    payload.extend(raw::mstr(&format!("wd/{id}")));
    payload.extend(raw::mbin(b"late"));
    let props = raw::props(&[p_u32(SESSION_EXPIRY, session_expiry)]);
    raw::connect_raw("MQTT", 5, 0x02 | 0x04 | 0x08, 30, Some(&props), &payload)
}
