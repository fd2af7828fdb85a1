//! Inbound packets, protocol-version neutral. MQTT 3.1.1 and 5.0 bodies are
//! parsed by rumqttc's `mqttbytes` codecs; the cases they reject although
//! they are valid (MQTT 3.1 `MQIsdp` CONNECTs, a bridge's protocol level
//! with bit 7 set, an MQTT 5 DISCONNECT with no body) are handled here.

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

pub use super::connect_packet::{ConnectIn, WillIn, decode_connect};
use super::frame::{Header, PacketType};
use crate::clock::now_ms;
use crate::router::message::{Props, QoS};
use crate::router::subscriptions::SubOptions;

/// Protocol version of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1 (`MQIsdp`, level 3), served with 3.1.1 semantics.
    V31,
    /// MQTT 3.1.1 (level 4).
    V311,
    /// MQTT 5.0 (level 5).
    V5,
}

impl Version {
    /// True for MQTT 5.
    pub fn is_v5(self) -> bool {
        self == Version::V5
    }
}

/// A PUBLISH from a client.
#[derive(Debug, Clone)]
pub struct PublishIn {
    /// Topic (empty when an MQTT 5 alias stands for it).
    pub topic: String,
    /// Payload.
    pub payload: Bytes,
    /// QoS.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Duplicate flag.
    pub dup: bool,
    /// Packet id (0 for QoS 0).
    pub pkid: u16,
    /// MQTT 5 topic alias.
    pub topic_alias: Option<u16>,
    /// MQTT 5 properties.
    pub props: Props,
}

/// Every packet a client may send after CONNECT.
#[derive(Debug, Clone)]
pub enum Inbound {
    /// PUBLISH
    Publish(PublishIn),
    /// PUBACK (packet id, reason)
    PubAck(u16),
    /// PUBREC (packet id, reason code)
    PubRec(u16, u8),
    /// PUBREL
    PubRel(u16),
    /// PUBCOMP
    PubComp(u16),
    /// SUBSCRIBE (packet id, filters with options; the identifier is in the options)
    Subscribe(u16, Vec<(String, SubOptions)>),
    /// UNSUBSCRIBE
    Unsubscribe(u16, Vec<String>),
    /// PINGREQ
    PingReq,
    /// DISCONNECT (reason code, new session expiry)
    Disconnect(u8, Option<u32>),
    /// A second CONNECT: a protocol violation.
    Connect,
    /// AUTH (enhanced authentication is not supported).
    Auth,
}

/// Why a packet body is not acceptable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DecodeError {
    /// The body does not parse.
    #[error("malformed {ptype:?}: {reason}")]
    Malformed {
        /// Packet type.
        ptype: PacketType,
        /// What the codec said.
        reason: String,
    },
    /// A packet only the server sends.
    #[error("{0:?} is a server-to-client packet")]
    WrongDirection(PacketType),
    /// CONNECT with a protocol this broker does not speak.
    #[error("unsupported protocol {name:?} level {level}")]
    Protocol {
        /// Protocol name.
        name: String,
        /// Protocol level.
        level: u8,
    },
}

pub(super) fn malformed(ptype: PacketType, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        ptype,
        reason: e.to_string(),
    }
}

pub(super) fn qos(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or(QoS::AtMostOnce)
}

/// Parses any packet a client sends after CONNECT.
pub fn decode(
    header: &Header,
    mut frame: BytesMut,
    version: Version,
    max: usize,
) -> Result<Inbound, DecodeError> {
    use PacketType as T;
    match header.ptype {
        T::Connect => return Ok(Inbound::Connect),
        T::PingReq => return Ok(Inbound::PingReq),
        // MQTT 5 allows a DISCONNECT of just a reason code; rumqttc wants properties too.
        T::Disconnect if header.remaining <= 1 => {
            return Ok(Inbound::Disconnect(
                frame.get(header.header_len).copied().unwrap_or(0),
                None,
            ));
        }
        T::ConnAck | T::SubAck | T::UnsubAck | T::PingResp => {
            return Err(DecodeError::WrongDirection(header.ptype));
        }
        T::Auth => return Ok(Inbound::Auth),
        T::Subscribe => super::strict::subscribe(&frame, header, version.is_v5())
            .map_err(|e| malformed(header.ptype, e))?,
        _ => {}
    }
    if version.is_v5() {
        let p = v5::Packet::read(&mut frame, Some(max as u32))
            .map_err(|e| malformed(header.ptype, e))?;
        from_v5(p)
    } else {
        let p = v4::Packet::read(&mut frame, max).map_err(|e| malformed(header.ptype, e))?;
        Ok(from_v4(p))
    }
}

fn from_v4(p: v4::Packet) -> Inbound {
    match p {
        v4::Packet::Publish(p) => Inbound::Publish(PublishIn {
            topic: p.topic,
            payload: p.payload,
            qos: qos(p.qos as u8),
            retain: p.retain,
            dup: p.dup,
            pkid: p.pkid,
            topic_alias: None,
            props: Props::default(),
        }),
        v4::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v4::Packet::PubRec(a) => Inbound::PubRec(a.pkid, 0),
        v4::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v4::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v4::Packet::Subscribe(s) => Inbound::Subscribe(
            s.pkid,
            s.filters
                .into_iter()
                .map(|f| {
                    (
                        f.path,
                        SubOptions {
                            qos: qos(f.qos as u8),
                            ..SubOptions::default()
                        },
                    )
                })
                .collect(),
        ),
        v4::Packet::Unsubscribe(u) => Inbound::Unsubscribe(u.pkid, u.topics),
        v4::Packet::PingReq => Inbound::PingReq,
        v4::Packet::Disconnect => Inbound::Disconnect(0, None),
        v4::Packet::Connect(_) => Inbound::Connect,
        v4::Packet::ConnAck(_)
        | v4::Packet::SubAck(_)
        | v4::Packet::UnsubAck(_)
        | v4::Packet::PingResp => Inbound::Auth,
    }
}

/// A topic from rumqttc's v5 codec, which leaves it as bytes: ill-formed
/// UTF-8 is a malformed packet (MQTT 5 §1.5.4), never "fixed" lossily.
pub(super) fn utf8_topic(ptype: PacketType, topic: &[u8]) -> Result<String, DecodeError> {
    String::from_utf8(topic.to_vec()).map_err(|_| malformed(ptype, "topic is not valid UTF-8"))
}

fn from_v5(p: v5::Packet) -> Result<Inbound, DecodeError> {
    Ok(match p {
        v5::Packet::Publish(p) => Inbound::Publish(publish_v5(p)?),
        v5::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v5::Packet::PubRec(a) => Inbound::PubRec(a.pkid, a.reason as u8),
        v5::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => subscribe_v5(s)?,
        v5::Packet::Unsubscribe(u) => Inbound::Unsubscribe(u.pkid, u.filters),
        v5::Packet::PingReq(_) => Inbound::PingReq,
        v5::Packet::Disconnect(d) => Inbound::Disconnect(
            d.reason_code as u8,
            d.properties.and_then(|p| p.session_expiry_interval),
        ),
        v5::Packet::Connect(..) => Inbound::Connect,
        v5::Packet::Auth(_) => Inbound::Auth,
        v5::Packet::ConnAck(_)
        | v5::Packet::SubAck(_)
        | v5::Packet::UnsubAck(_)
        | v5::Packet::PingResp(_) => Inbound::Auth,
    })
}

fn publish_v5(p: v5::Publish) -> Result<PublishIn, DecodeError> {
    let pp = p.properties.unwrap_or_default();
    if !pp.subscription_identifiers.is_empty() {
        // MQTT 5 §3.3.4: only the server puts subscription identifiers in a PUBLISH.
        return Err(malformed(
            PacketType::Publish,
            "subscription identifier from a client",
        ));
    }
    let now = now_ms();
    Ok(PublishIn {
        topic: utf8_topic(PacketType::Publish, &p.topic)?,
        payload: p.payload,
        qos: qos(p.qos as u8),
        retain: p.retain,
        dup: p.dup,
        pkid: p.pkid,
        topic_alias: pp.topic_alias,
        props: Props {
            payload_format_indicator: pp.payload_format_indicator,
            expires_at_ms: pp
                .message_expiry_interval
                .map(|s| now + u64::from(s) * 1000),
            content_type: pp.content_type,
            response_topic: pp.response_topic,
            correlation_data: pp.correlation_data,
            user_properties: pp.user_properties,
        },
    })
}

fn subscribe_v5(s: v5::Subscribe) -> Result<Inbound, DecodeError> {
    let id = s.properties.as_ref().and_then(|p| p.id).map(|i| i as u32);
    if id == Some(0) {
        return Err(malformed(
            PacketType::Subscribe,
            "subscription identifier 0",
        ));
    }
    let filters = s
        .filters
        .into_iter()
        .map(|f| {
            let opts = SubOptions {
                qos: qos(f.qos as u8),
                no_local: f.nolocal,
                retain_as_published: f.preserve_retain,
                retain_handling: match f.retain_forward_rule {
                    v5::RetainForwardRule::OnEverySubscribe => 0,
                    v5::RetainForwardRule::OnNewSubscribe => 1,
                    v5::RetainForwardRule::Never => 2,
                },
                id,
            };
            (f.path, opts)
        })
        .collect();
    Ok(Inbound::Subscribe(s.pkid, filters))
}
