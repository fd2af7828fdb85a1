//! MQTT 3.1.1 side of the uplink codec: neutral packets to and from
//! rumqttc's `mqttbytes::v4`, and the bridge bit Mosquitto uses with try_private.

use bytes::BytesMut;
use rumqttc::mqttbytes::{self as m4, v4};

use super::{CodecError, ConnectSpec, Incoming, MAX_INBOUND_PACKET, Outgoing, Verdict};
use crate::router::message::{Props, QoS};

/// MQTT protocol level 4 with the bridge bit, as Mosquitto sends with try_private.
const BRIDGE_PROTOCOL_LEVEL: u8 = 0x84;

fn qos4(q: QoS) -> m4::QoS {
    match q {
        QoS::AtMostOnce => m4::QoS::AtMostOnce,
        QoS::AtLeastOnce => m4::QoS::AtLeastOnce,
        QoS::ExactlyOnce => m4::QoS::ExactlyOnce,
    }
}

pub(super) fn encode(packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
    let p = match packet {
        Outgoing::Connect(spec) => return connect_v4(spec, buf),
        Outgoing::Publish(p) => v4::Packet::Publish(v4::Publish {
            dup: p.dup,
            qos: qos4(p.qos),
            retain: p.retain,
            topic: p.topic.to_string(),
            pkid: p.pkid,
            payload: p.payload.clone(),
        }),
        Outgoing::PubAck(id) => v4::Packet::PubAck(v4::PubAck::new(*id)),
        Outgoing::PubRec(id) => v4::Packet::PubRec(v4::PubRec::new(*id)),
        Outgoing::PubRel(id) => v4::Packet::PubRel(v4::PubRel::new(*id)),
        Outgoing::PubComp(id) => v4::Packet::PubComp(v4::PubComp::new(*id)),
        Outgoing::Subscribe(id, filters) => {
            let mut s = v4::Subscribe::new_many(
                filters
                    .iter()
                    .map(|(f, q)| v4::SubscribeFilter::new(f.clone(), qos4(*q))),
            );
            s.pkid = *id;
            v4::Packet::Subscribe(s)
        }
        Outgoing::PingReq => v4::Packet::PingReq,
        Outgoing::Disconnect => v4::Packet::Disconnect,
    };
    p.write(buf, usize::MAX)?;
    Ok(())
}

fn connect_v4(spec: &ConnectSpec, buf: &mut BytesMut) -> Result<(), CodecError> {
    let mut c = v4::Connect::new(spec.client_id.clone());
    c.keep_alive = spec.keepalive;
    c.clean_session = spec.clean;
    c.last_will = spec
        .will
        .as_ref()
        .map(|(t, p)| v4::LastWill::new(t.clone(), p.to_vec(), m4::QoS::AtLeastOnce, true));
    if spec.username.is_some() || spec.password.is_some() {
        let user = spec.username.clone().unwrap_or_default();
        let password = spec.password.as_ref().map_or("", |p| p.expose());
        c.set_login(user, password);
    }
    let start = buf.len();
    v4::Packet::Connect(c).write(buf, usize::MAX)?;
    if spec.bridge_bit {
        set_bridge_bit(&mut buf[start..])?;
    }
    Ok(())
}

/// Rewrites the protocol level 4 of an encoded CONNECT to 0x84.
fn set_bridge_bit(packet: &mut [u8]) -> Result<(), CodecError> {
    // Fixed header byte, then 1-4 remaining-length bytes (high bit = more).
    let len_end = packet[1..]
        .iter()
        .position(|b| b & 0x80 == 0)
        .ok_or(CodecError::BridgeBit)?;
    let level = 1 + len_end + 1 + 6;
    match packet.get(level - 6..=level) {
        Some([0, 4, b'M', b'Q', b'T', b'T', 4]) => {
            packet[level] = BRIDGE_PROTOCOL_LEVEL;
            Ok(())
        }
        _ => Err(CodecError::BridgeBit),
    }
}

fn qos_of4(q: m4::QoS) -> QoS {
    QoS::from_u8(q as u8).unwrap_or(QoS::AtMostOnce)
}

fn decoded(p: v4::Packet) -> Incoming {
    match p {
        v4::Packet::ConnAck(a) => Incoming::ConnAck {
            session_present: a.session_present,
            refused: (a.code != v4::ConnectReturnCode::Success).then(|| format!("{:?}", a.code)),
            receive_max: None,
        },
        v4::Packet::Publish(p) => Incoming::Publish {
            topic: p.topic,
            payload: p.payload,
            qos: qos_of4(p.qos),
            retain: p.retain,
            pkid: p.pkid,
            props: Props::default(),
        },
        v4::Packet::PubAck(a) => Incoming::PubAck(a.pkid, Verdict::Accepted),
        v4::Packet::PubRec(a) => Incoming::PubRec(a.pkid, Verdict::Accepted),
        v4::Packet::PubRel(a) => Incoming::PubRel(a.pkid),
        v4::Packet::PubComp(a) => Incoming::PubComp(a.pkid),
        v4::Packet::SubAck(a) => {
            let failed = a
                .return_codes
                .iter()
                .filter(|c| matches!(c, v4::SubscribeReasonCode::Failure))
                .count();
            Incoming::SubAck(a.pkid, failed)
        }
        v4::Packet::PingResp => Incoming::PingResp,
        v4::Packet::Disconnect => Incoming::Disconnect("DISCONNECT".into()),
        v4::Packet::UnsubAck(_) => Incoming::Unexpected("UNSUBACK"),
        v4::Packet::Connect(_) => Incoming::Unexpected("CONNECT"),
        v4::Packet::Subscribe(_) => Incoming::Unexpected("SUBSCRIBE"),
        v4::Packet::Unsubscribe(_) => Incoming::Unexpected("UNSUBSCRIBE"),
        v4::Packet::PingReq => Incoming::Unexpected("PINGREQ"),
    }
}

/// Takes one packet off the front of `buf`; None when it holds only part of one.
pub(super) fn decode(buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
    match v4::Packet::read(buf, MAX_INBOUND_PACKET) {
        Ok(p) => Ok(Some(decoded(p))),
        Err(m4::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
