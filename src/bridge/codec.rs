//! MQTT framing for the uplink: protocol-neutral packets translated to and
//! from rumqttc's MQTT 3.1.1 (`mqttbytes::v4`) and 5.0 (`v5::mqttbytes::v5`)
//! codecs over a `BytesMut`, so the uplink state machine is written once.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::{self as m4, v4};
use rumqttc::v5::mqttbytes::{self as m5, v5};

use crate::router::message::{Props, QoS, now_ms};

/// Largest packet accepted from the central broker.
pub const MAX_INBOUND_PACKET: usize = 1 << 20;

/// MQTT protocol level 4 with the bridge bit, as Mosquitto sends with try_private.
const BRIDGE_PROTOCOL_LEVEL: u8 = 0x84;

/// The MQTT version spoken on the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1
    V311,
    /// MQTT 5.0
    V5,
}

/// Why a packet could not be framed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// MQTT 3.1.1 codec error.
    #[error("MQTT 3.1.1 packet: {0}")]
    V4(#[from] m4::Error),
    /// MQTT 5 codec error.
    #[error("MQTT 5 packet: {0}")]
    V5(#[from] m5::Error),
    /// CONNECT came out in an unexpected layout.
    #[error("cannot set the bridge bit in CONNECT")]
    BridgeBit,
}

/// What we put in CONNECT.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// Client id at the central broker.
    pub client_id: String,
    /// Keepalive in seconds (0: none).
    pub keepalive: u16,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    /// Username.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<String>,
    /// Retained QoS 1 will: topic and payload.
    pub will: Option<(String, Bytes)>,
    /// 3.1.1: mark the connection as a bridge (protocol level 0x84).
    pub bridge_bit: bool,
    /// 5: session expiry in seconds when not clean.
    pub session_expiry: Option<u32>,
}

/// One outgoing PUBLISH.
#[derive(Debug, Clone)]
pub struct OutPublish<'a> {
    /// Topic at the central broker.
    pub topic: &'a str,
    /// Payload.
    pub payload: Bytes,
    /// QoS on the uplink.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Re-delivery of a packet id the broker may have seen.
    pub dup: bool,
    /// Packet id (0 for QoS 0).
    pub pkid: u16,
    /// MQTT 5 properties to carry.
    pub props: &'a Props,
    /// MQTT 5 remaining expiry interval in seconds.
    pub expiry: Option<u32>,
    /// MQTT 5 stable message id user property.
    pub msg_id: Option<(&'static str, String)>,
}

/// A packet we send.
#[derive(Debug, Clone)]
pub enum Outgoing<'a> {
    /// CONNECT.
    Connect(&'a ConnectSpec),
    /// PUBLISH.
    Publish(OutPublish<'a>),
    /// PUBACK for an inbound QoS 1 publish.
    PubAck(u16),
    /// PUBREC for an inbound QoS 2 publish.
    PubRec(u16),
    /// PUBREL after the broker's PUBREC.
    PubRel(u16),
    /// PUBCOMP after the broker's PUBREL.
    PubComp(u16),
    /// SUBSCRIBE to the inbound filters (no-local on MQTT 5).
    Subscribe(u16, &'a [(String, QoS)]),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT (normal).
    Disconnect,
}

/// The broker's answer to one of our PUBLISHes (MQTT 5 reason codes; 3.1.1 always accepts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken (including "no matching subscribers").
    Accepted,
    /// Over the broker's receive quota: not taken, send it again later.
    QuotaExceeded,
    /// Refused for good (not authorized, invalid topic, ...), with the reason.
    Refused(String),
}

/// A packet we received, reduced to what the uplink needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// CONNACK: `refused` names the reason when the broker refused us.
    ConnAck {
        /// The broker kept our session.
        session_present: bool,
        /// Refusal reason, None on success.
        refused: Option<String>,
        /// MQTT 5 receive maximum of the broker.
        receive_max: Option<u16>,
    },
    /// PUBLISH from the central broker.
    Publish {
        /// Topic at the central broker.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: QoS,
        /// Retain flag.
        retain: bool,
        /// Packet id.
        pkid: u16,
        /// MQTT 5 properties.
        props: Props,
    },
    /// PUBACK, with what the broker did with the message.
    PubAck(u16, Verdict),
    /// PUBREC, with what the broker did with the message.
    PubRec(u16, Verdict),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBACK with the number of refused filters.
    SubAck(u16, usize),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT from the broker, with its reason.
    Disconnect(String),
    /// A packet a client never expects (CONNECT, SUBSCRIBE, ...).
    Unexpected(&'static str),
}

/// Appends the wire form of `packet` to `buf`.
pub fn encode(version: Version, packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
    match version {
        Version::V311 => encode_v4(packet, buf),
        Version::V5 => encode_v5(packet, buf),
    }
}

/// Takes one packet off the front of `buf`; None when it holds only part of one.
pub fn decode(version: Version, buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
    match version {
        Version::V311 => match v4::Packet::read(buf, MAX_INBOUND_PACKET) {
            Ok(p) => Ok(Some(from_v4(p))),
            Err(m4::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
        Version::V5 => match v5::Packet::read(buf, Some(MAX_INBOUND_PACKET as u32)) {
            Ok(p) => Ok(Some(from_v5(p))),
            Err(m5::Error::InsufficientBytes(_)) => Ok(None),
            Err(e) => Err(e.into()),
        },
    }
}

fn qos4(q: QoS) -> m4::QoS {
    match q {
        QoS::AtMostOnce => m4::QoS::AtMostOnce,
        QoS::AtLeastOnce => m4::QoS::AtLeastOnce,
        QoS::ExactlyOnce => m4::QoS::ExactlyOnce,
    }
}

fn qos5(q: QoS) -> m5::QoS {
    match q {
        QoS::AtMostOnce => m5::QoS::AtMostOnce,
        QoS::AtLeastOnce => m5::QoS::AtLeastOnce,
        QoS::ExactlyOnce => m5::QoS::ExactlyOnce,
    }
}

fn encode_v4(packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
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
        c.set_login(user, spec.password.clone().unwrap_or_default());
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

fn encode_v5(packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
    let p = match packet {
        Outgoing::Connect(spec) => connect_v5(spec),
        Outgoing::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: qos5(p.qos),
            retain: p.retain,
            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
            pkid: p.pkid,
            payload: p.payload.clone(),
            properties: publish_props(p),
        }),
        Outgoing::PubAck(id) => v5::Packet::PubAck(v5::PubAck::new(*id, None)),
        Outgoing::PubRec(id) => v5::Packet::PubRec(v5::PubRec::new(*id, None)),
        Outgoing::PubRel(id) => v5::Packet::PubRel(v5::PubRel::new(*id, None)),
        Outgoing::PubComp(id) => v5::Packet::PubComp(v5::PubComp::new(*id, None)),
        Outgoing::Subscribe(id, filters) => {
            let filters = filters.iter().map(|(f, q)| v5::Filter {
                path: f.clone(),
                qos: qos5(*q),
                // Loop prevention: the broker must not echo what we publish.
                nolocal: true,
                preserve_retain: true,
                retain_forward_rule: v5::RetainForwardRule::OnEverySubscribe,
            });
            let mut s = v5::Subscribe::new_many(filters, None);
            s.pkid = *id;
            v5::Packet::Subscribe(s)
        }
        Outgoing::PingReq => v5::Packet::PingReq(v5::PingReq),
        Outgoing::Disconnect => v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        )),
    };
    p.write(buf, None)?;
    Ok(())
}

fn connect_v5(spec: &ConnectSpec) -> v5::Packet {
    let mut props = v5::ConnectProperties::new();
    props.session_expiry_interval = spec.session_expiry;
    let connect = v5::Connect {
        keep_alive: spec.keepalive,
        client_id: spec.client_id.clone(),
        clean_start: spec.clean,
        properties: Some(props),
    };
    let will = spec
        .will
        .as_ref()
        .map(|(t, p)| v5::LastWill::new(t.clone(), p.to_vec(), m5::QoS::AtLeastOnce, true, None));
    let login = (spec.username.is_some() || spec.password.is_some()).then(|| {
        v5::Login::new(
            spec.username.clone().unwrap_or_default(),
            spec.password.clone().unwrap_or_default(),
        )
    });
    v5::Packet::Connect(connect, will, login)
}

fn publish_props(p: &OutPublish) -> Option<v5::PublishProperties> {
    let mut user_properties = p.props.user_properties.clone();
    if let Some((k, v)) = &p.msg_id {
        user_properties.push((k.to_string(), v.clone()));
    }
    let props = v5::PublishProperties {
        payload_format_indicator: p.props.payload_format_indicator,
        message_expiry_interval: p.expiry,
        topic_alias: None,
        response_topic: p.props.response_topic.clone(),
        correlation_data: p.props.correlation_data.clone(),
        user_properties,
        subscription_identifiers: vec![],
        content_type: p.props.content_type.clone(),
    };
    Some(props)
}

fn qos_of4(q: m4::QoS) -> QoS {
    QoS::from_u8(q as u8).unwrap_or(QoS::AtMostOnce)
}

fn qos_of5(q: m5::QoS) -> QoS {
    QoS::from_u8(q as u8).unwrap_or(QoS::AtMostOnce)
}

fn from_v4(p: v4::Packet) -> Incoming {
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

fn from_v5(p: v5::Packet) -> Incoming {
    match p {
        v5::Packet::ConnAck(a) => Incoming::ConnAck {
            session_present: a.session_present,
            refused: (a.code != v5::ConnectReturnCode::Success).then(|| format!("{:?}", a.code)),
            receive_max: a.properties.and_then(|p| p.receive_max),
        },
        v5::Packet::Publish(p) => inbound_v5(p),
        v5::Packet::PubAck(a) => {
            use v5::PubAckReason as R;
            let verdict = match a.reason {
                R::Success | R::NoMatchingSubscribers => Verdict::Accepted,
                R::QuotaExceeded => Verdict::QuotaExceeded,
                other => Verdict::Refused(format!("{other:?}")),
            };
            Incoming::PubAck(a.pkid, verdict)
        }
        v5::Packet::PubRec(a) => {
            use v5::PubRecReason as R;
            let verdict = match a.reason {
                R::Success | R::NoMatchingSubscribers => Verdict::Accepted,
                R::QuotaExceeded => Verdict::QuotaExceeded,
                other => Verdict::Refused(format!("{other:?}")),
            };
            Incoming::PubRec(a.pkid, verdict)
        }
        v5::Packet::PubRel(a) => Incoming::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Incoming::PubComp(a.pkid),
        v5::Packet::SubAck(a) => {
            let failed = a
                .return_codes
                .iter()
                .filter(|c| !matches!(c, v5::SubscribeReasonCode::Success(_)))
                .count();
            Incoming::SubAck(a.pkid, failed)
        }
        v5::Packet::PingResp(_) => Incoming::PingResp,
        v5::Packet::Disconnect(d) => Incoming::Disconnect(format!("{:?}", d.reason_code)),
        v5::Packet::UnsubAck(_) => Incoming::Unexpected("UNSUBACK"),
        v5::Packet::Auth(_) => Incoming::Unexpected("AUTH"),
        v5::Packet::Connect(..) => Incoming::Unexpected("CONNECT"),
        v5::Packet::Subscribe(_) => Incoming::Unexpected("SUBSCRIBE"),
        v5::Packet::Unsubscribe(_) => Incoming::Unexpected("UNSUBSCRIBE"),
        v5::Packet::PingReq(_) => Incoming::Unexpected("PINGREQ"),
    }
}

fn inbound_v5(p: v5::Publish) -> Incoming {
    let mut props = Props::default();
    if let Some(pp) = p.properties {
        props.payload_format_indicator = pp.payload_format_indicator;
        props.expires_at_ms = pp
            .message_expiry_interval
            .map(|s| now_ms() + u64::from(s) * 1000);
        props.content_type = pp.content_type;
        props.response_topic = pp.response_topic;
        props.correlation_data = pp.correlation_data;
        props.user_properties = pp.user_properties;
    }
    Incoming::Publish {
        topic: String::from_utf8_lossy(&p.topic).into_owned(),
        payload: p.payload,
        qos: qos_of5(p.qos),
        retain: p.retain,
        pkid: p.pkid,
        props,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ConnectSpec {
        ConnectSpec {
            client_id: "GW-0001".into(),
            keepalive: 30,
            clean: false,
            username: Some("u".into()),
            password: Some("p".into()),
            will: Some(("s/state".into(), Bytes::from_static(b"0"))),
            bridge_bit: true,
            session_expiry: None,
        }
    }

    #[test]
    fn connect_carries_the_bridge_bit() {
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&spec()), &mut buf).unwrap();
        assert_eq!(&buf[2..9], &[0, 4, b'M', b'Q', b'T', b'T', 0x84]);
        let mut plain = spec();
        plain.bridge_bit = false;
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&plain), &mut buf).unwrap();
        assert_eq!(buf[8], 4);
    }

    #[test]
    fn bridge_bit_with_a_long_remaining_length() {
        let mut s = spec();
        s.will = Some(("t".into(), Bytes::from(vec![b'x'; 300])));
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&s), &mut buf).unwrap();
        assert_eq!(&buf[3..10], &[0, 4, b'M', b'Q', b'T', b'T', 0x84]);
    }

    #[test]
    fn partial_frames_are_read_more_not_errors() {
        let props = Props::default();
        for version in [Version::V311, Version::V5] {
            let mut buf = BytesMut::new();
            let publish = OutPublish {
                topic: "a/b",
                payload: Bytes::from_static(b"hello"),
                qos: QoS::AtLeastOnce,
                retain: false,
                dup: false,
                pkid: 7,
                props: &props,
                expiry: None,
                msg_id: None,
            };
            encode(version, &Outgoing::Publish(publish), &mut buf).unwrap();
            let full = buf.clone();
            for cut in 0..full.len() {
                let mut part = BytesMut::from(&full[..cut]);
                assert!(decode(version, &mut part).unwrap().is_none(), "cut {cut}");
            }
            let got = decode(version, &mut buf).unwrap().unwrap();
            match got {
                Incoming::Publish {
                    topic, pkid, qos, ..
                } => {
                    assert_eq!((topic.as_str(), pkid, qos), ("a/b", 7, QoS::AtLeastOnce))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn oversized_inbound_packet_is_an_error() {
        let mut buf = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(decode(Version::V311, &mut buf).is_err());
    }
}
