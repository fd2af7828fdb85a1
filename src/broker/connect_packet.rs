//! CONNECT decoding for every supported version: MQTT 3.1 (`MQIsdp`), 3.1.1
//! and 5.0, and a bridge's protocol level with bit 7 set. rumqttc's codecs
//! parse the body once the protocol name and level are normalised.

use bytes::{BufMut, Bytes, BytesMut};
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;

use super::frame::{Header, PacketType, put_remaining_len};
use super::packets::{DecodeError, Version, malformed, qos, utf8_topic};
use crate::router::message::{Props, QoS};

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
    super::strict::connect(&frame, header).map_err(|e| malformed(ptype, e))?;
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
            Ok(v5::Packet::Connect(c, will, login)) => connect_from_v5(c, will, login, bridge),
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
) -> Result<ConnectIn, DecodeError> {
    let p = c.properties.unwrap_or_default();
    let will_topic = match &will {
        Some(w) => utf8_topic(PacketType::Connect, &w.topic)?,
        None => String::new(),
    };
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
            topic: will_topic,
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
    Ok(ConnectIn {
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
    })
}
