//! Inbound packets, protocol-version neutral. MQTT 3.1.1 and 5.0 bodies are
//! parsed by rumqttc's `mqttbytes` codecs; the cases they reject although
//! they are valid (MQTT 3.1 `MQIsdp` CONNECTs, a bridge's protocol level
//! with bit 7 set, an MQTT 5 DISCONNECT with no body) are handled here.

use bytes::{BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::frame::{Header, PacketType, put_remaining_len};
use crate::router::message::{Props, QoS, now_ms};
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

/// A will message as the client registered it.
#[derive(Debug, Clone)]
pub struct WillIn {
    /// Will topic.
    pub topic: String,
    /// Will payload.
    pub payload: Bytes,
    /// Will QoS.
    pub qos: QoS,
    /// Will retain flag.
    pub retain: bool,
    /// MQTT 5 will properties (expiry is relative here, made absolute when published).
    pub props: Props,
    /// MQTT 5 message expiry interval in seconds.
    pub expiry: Option<u32>,
    /// MQTT 5 will delay interval in seconds.
    pub delay: u32,
}

/// A CONNECT packet.
#[derive(Debug, Clone)]
pub struct ConnectIn {
    /// Protocol version.
    pub version: Version,
    /// The peer announced itself as a bridge (protocol level bit 7).
    pub bridge: bool,
    /// Client identifier (may be empty).
    pub client_id: String,
    /// Clean session (3.1.1) / clean start (5).
    pub clean_start: bool,
    /// Keepalive in seconds (0 = none).
    pub keep_alive: u16,
    /// Username.
    pub username: Option<String>,
    /// Password.
    pub password: Option<Bytes>,
    /// Will message.
    pub will: Option<WillIn>,
    /// MQTT 5 session expiry interval (seconds).
    pub session_expiry: u32,
    /// MQTT 5 receive maximum of the client.
    pub receive_maximum: u16,
    /// MQTT 5 maximum packet size the client accepts.
    pub max_packet_size: Option<u32>,
    /// MQTT 5 topic alias maximum the client accepts.
    pub topic_alias_max: u16,
    /// MQTT 5 enhanced authentication method (unsupported).
    pub auth_method: Option<String>,
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

fn malformed(ptype: PacketType, e: impl std::fmt::Display) -> DecodeError {
    DecodeError::Malformed {
        ptype,
        reason: e.to_string(),
    }
}

fn qos(q: u8) -> QoS {
    QoS::from_u8(q).unwrap_or(QoS::AtMostOnce)
}

/// Reads the protocol name and level of a CONNECT frame without parsing the rest.
fn protocol_of<'a>(frame: &'a [u8], header: &Header) -> Option<(&'a [u8], u8)> {
    let body = frame.get(header.header_len..)?;
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let name = body.get(2..2 + n)?;
    Some((name, *body.get(2 + n)?))
}

/// Rebuilds a CONNECT frame with protocol name "MQTT" and `level`, so that
/// the 3.1.1 codec can parse an MQTT 3.1 (or bridge-flagged) CONNECT.
fn normalise_connect(frame: &[u8], header: &Header, level: u8) -> Option<BytesMut> {
    let body = frame.get(header.header_len..)?;
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    let rest = body.get(3 + n..)?;
    let remaining = 2 + 4 + 1 + rest.len();
    let mut out = BytesMut::with_capacity(remaining + 5);
    out.put_u8(0x10);
    put_remaining_len(&mut out, remaining);
    out.put_u16(4);
    out.put_slice(b"MQTT");
    out.put_u8(level);
    out.put_slice(rest);
    Some(out)
}

/// Parses a CONNECT frame of any supported version.
pub fn decode_connect(
    header: &Header,
    frame: BytesMut,
    max: usize,
) -> Result<ConnectIn, DecodeError> {
    let ptype = PacketType::Connect;
    let (name, raw_level) =
        protocol_of(&frame, header).ok_or_else(|| malformed(ptype, "truncated variable header"))?;
    let bridge = raw_level & 0x80 != 0;
    let level = raw_level & 0x7f;
    let version = match (name, level) {
        (b"MQIsdp", 3) => Version::V31,
        (b"MQTT", 4) => Version::V311,
        (b"MQTT", 5) => Version::V5,
        _ => {
            return Err(DecodeError::Protocol {
                name: String::from_utf8_lossy(name).into_owned(),
                level: raw_level,
            });
        }
    };
    if version == Version::V5 {
        let mut f = if bridge {
            normalise_connect(&frame, header, 5).ok_or_else(|| malformed(ptype, "truncated"))?
        } else {
            frame
        };
        return match v5::Packet::read(&mut f, Some(max as u32)) {
            Ok(v5::Packet::Connect(c, will, login)) => Ok(connect_from_v5(c, will, login, bridge)),
            Ok(_) => Err(malformed(ptype, "not a CONNECT")),
            Err(e) => Err(malformed(ptype, e)),
        };
    }
    let mut f = if version == Version::V31 || bridge {
        normalise_connect(&frame, header, 4).ok_or_else(|| malformed(ptype, "truncated"))?
    } else {
        frame
    };
    match v4::Packet::read(&mut f, max) {
        Ok(v4::Packet::Connect(c)) => Ok(connect_from_v4(c, version, bridge)),
        Ok(_) => Err(malformed(ptype, "not a CONNECT")),
        Err(e) => Err(malformed(ptype, e)),
    }
}

fn connect_from_v4(c: v4::Connect, version: Version, bridge: bool) -> ConnectIn {
    let (username, password) = match c.login {
        Some(l) => (
            Some(l.username),
            (!l.password.is_empty()).then(|| Bytes::from(l.password)),
        ),
        None => (None, None),
    };
    ConnectIn {
        version,
        bridge,
        client_id: c.client_id,
        clean_start: c.clean_session,
        keep_alive: c.keep_alive,
        username: username.filter(|u| !u.is_empty()),
        password,
        will: c.last_will.map(|w| WillIn {
            topic: w.topic,
            payload: w.message,
            qos: qos(w.qos as u8),
            retain: w.retain,
            props: Props::default(),
            expiry: None,
            delay: 0,
        }),
        session_expiry: 0,
        receive_maximum: u16::MAX,
        max_packet_size: None,
        topic_alias_max: 0,
        auth_method: None,
    }
}

fn connect_from_v5(
    c: v5::Connect,
    will: Option<v5::LastWill>,
    login: Option<v5::Login>,
    bridge: bool,
) -> ConnectIn {
    let p = c.properties.unwrap_or_default();
    let will = will.map(|w| {
        let (props, expiry, delay) = match w.properties {
            Some(wp) => (
                Props {
                    payload_format_indicator: wp.payload_format_indicator,
                    expires_at_ms: None,
                    content_type: wp.content_type,
                    response_topic: wp.response_topic,
                    correlation_data: wp.correlation_data,
                    user_properties: wp.user_properties,
                },
                wp.message_expiry_interval,
                wp.delay_interval.unwrap_or(0),
            ),
            None => (Props::default(), None, 0),
        };
        WillIn {
            topic: String::from_utf8_lossy(&w.topic).into_owned(),
            payload: w.message,
            qos: qos(w.qos as u8),
            retain: w.retain,
            props,
            expiry,
            delay,
        }
    });
    let (username, password) = match login {
        Some(l) => (
            Some(l.username),
            (!l.password.is_empty()).then(|| Bytes::from(l.password)),
        ),
        None => (None, None),
    };
    ConnectIn {
        version: Version::V5,
        bridge,
        client_id: c.client_id,
        clean_start: c.clean_start,
        keep_alive: c.keep_alive,
        username: username.filter(|u| !u.is_empty()),
        password,
        will,
        session_expiry: p.session_expiry_interval.unwrap_or(0),
        receive_maximum: p.receive_maximum.unwrap_or(u16::MAX),
        max_packet_size: p.max_packet_size,
        topic_alias_max: p.topic_alias_max.unwrap_or(0),
        auth_method: p.authentication_method,
    }
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
        _ => {}
    }
    if version.is_v5() {
        let p = v5::Packet::read(&mut frame, Some(max as u32))
            .map_err(|e| malformed(header.ptype, e))?;
        Ok(from_v5(p))
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

fn from_v5(p: v5::Packet) -> Inbound {
    match p {
        v5::Packet::Publish(p) => {
            let pp = p.properties.unwrap_or_default();
            let now = now_ms();
            Inbound::Publish(PublishIn {
                topic: String::from_utf8_lossy(&p.topic).into_owned(),
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
        v5::Packet::PubAck(a) => Inbound::PubAck(a.pkid),
        v5::Packet::PubRec(a) => Inbound::PubRec(a.pkid, a.reason as u8),
        v5::Packet::PubRel(a) => Inbound::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Inbound::PubComp(a.pkid),
        v5::Packet::Subscribe(s) => {
            let id = s.properties.as_ref().and_then(|p| p.id).map(|i| i as u32);
            Inbound::Subscribe(
                s.pkid,
                s.filters
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
                    .collect(),
            )
        }
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
    }
}
