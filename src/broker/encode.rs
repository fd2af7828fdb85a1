//! Outbound packets, written straight into the connection's write buffer.
//! PUBLISH is the hot path: one pass, no intermediate allocation beyond the
//! MQTT 5 property block.

use bytes::{BufMut, BytesMut};

use super::frame::{put_remaining_len, remaining_len_len};
use super::packets::Version;
use crate::router::message::{Message, QoS};

/// Reason codes the broker sends (MQTT 5; 3.1.1 maps the CONNACK ones).
pub mod reason {
    /// Success / normal disconnection / granted QoS 0.
    pub const SUCCESS: u8 = 0x00;
    /// No matching subscribers (PUBACK, informational).
    pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
    /// Unspecified error.
    pub const UNSPECIFIED: u8 = 0x80;
    /// Malformed packet.
    pub const MALFORMED: u8 = 0x81;
    /// Protocol error.
    pub const PROTOCOL_ERROR: u8 = 0x82;
    /// Implementation specific error.
    pub const IMPLEMENTATION_SPECIFIC: u8 = 0x83;
    /// Unsupported protocol version.
    pub const UNSUPPORTED_PROTOCOL: u8 = 0x84;
    /// Client identifier not valid.
    pub const CLIENT_ID_NOT_VALID: u8 = 0x85;
    /// Bad user name or password.
    pub const BAD_CREDENTIALS: u8 = 0x86;
    /// Not authorized.
    pub const NOT_AUTHORIZED: u8 = 0x87;
    /// Server shutting down.
    pub const SERVER_SHUTTING_DOWN: u8 = 0x8B;
    /// Bad authentication method.
    pub const BAD_AUTH_METHOD: u8 = 0x8C;
    /// Keep alive timeout.
    pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8D;
    /// Session taken over.
    pub const SESSION_TAKEN_OVER: u8 = 0x8E;
    /// Topic filter invalid.
    pub const TOPIC_FILTER_INVALID: u8 = 0x8F;
    /// Topic name invalid.
    pub const TOPIC_NAME_INVALID: u8 = 0x90;
    /// Packet identifier not found.
    pub const PACKET_ID_NOT_FOUND: u8 = 0x92;
    /// Receive maximum exceeded.
    pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
    /// Topic alias invalid.
    pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
    /// Packet too large.
    pub const PACKET_TOO_LARGE: u8 = 0x95;
    /// Quota exceeded.
    pub const QUOTA_EXCEEDED: u8 = 0x97;
    /// Server unavailable (CONNACK).
    pub const SERVER_UNAVAILABLE: u8 = 0x88;
    /// Shared subscriptions not supported / wildcard etc. are supported: unused.
    pub const SUBSCRIPTION_IDS_NOT_SUPPORTED: u8 = 0xA1;
}

/// MQTT 5 property identifiers used here.
mod prop {
    pub const PAYLOAD_FORMAT: u8 = 0x01;
    pub const MESSAGE_EXPIRY: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_ID: u8 = 0x0B;
    pub const SESSION_EXPIRY: u8 = 0x11;
    pub const ASSIGNED_CLIENT_ID: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_AVAILABLE: u8 = 0x28;
    pub const SUB_IDS_AVAILABLE: u8 = 0x29;
    pub const SHARED_AVAILABLE: u8 = 0x2A;
}

fn put_str(b: &mut BytesMut, s: &str) {
    b.put_u16(s.len() as u16);
    b.put_slice(s.as_bytes());
}

fn put_bin(b: &mut BytesMut, s: &[u8]) {
    b.put_u16(s.len() as u16);
    b.put_slice(s);
}

/// Everything a PUBLISH to one subscriber needs besides the message.
#[derive(Debug, Clone, Copy)]
pub struct PublishOut<'a> {
    /// QoS granted for this delivery.
    pub qos: QoS,
    /// Retain flag as delivered.
    pub retain: bool,
    /// Duplicate flag (re-delivery).
    pub dup: bool,
    /// Packet id (ignored for QoS 0).
    pub pkid: u16,
    /// MQTT 5 subscription identifiers.
    pub sub_ids: &'a [u32],
    /// MQTT 5 topic alias: (alias, send the topic too).
    pub alias: Option<(u16, bool)>,
}

fn publish_props(m: &Message, o: &PublishOut, now_ms: u64, p: &mut BytesMut) {
    let mp = &m.props;
    if let Some(v) = mp.payload_format_indicator {
        p.put_u8(prop::PAYLOAD_FORMAT);
        p.put_u8(v);
    }
    if let Some(s) = m.remaining_expiry(now_ms) {
        p.put_u8(prop::MESSAGE_EXPIRY);
        p.put_u32(s.max(1));
    }
    if let Some((alias, _)) = o.alias {
        p.put_u8(prop::TOPIC_ALIAS);
        p.put_u16(alias);
    }
    if let Some(v) = &mp.content_type {
        p.put_u8(prop::CONTENT_TYPE);
        put_str(p, v);
    }
    if let Some(v) = &mp.response_topic {
        p.put_u8(prop::RESPONSE_TOPIC);
        put_str(p, v);
    }
    if let Some(v) = &mp.correlation_data {
        p.put_u8(prop::CORRELATION_DATA);
        put_bin(p, v);
    }
    for id in o.sub_ids {
        p.put_u8(prop::SUBSCRIPTION_ID);
        put_remaining_len(p, *id as usize);
    }
    for (k, v) in &mp.user_properties {
        p.put_u8(prop::USER_PROPERTY);
        put_str(p, k);
        put_str(p, v);
    }
}

/// Writes a PUBLISH; returns false (writing nothing) when it would exceed `max_size`.
pub fn publish(
    out: &mut BytesMut,
    v: Version,
    m: &Message,
    o: &PublishOut,
    now_ms: u64,
    max_size: usize,
) -> bool {
    let mut props = BytesMut::new();
    if v.is_v5() {
        publish_props(m, o, now_ms, &mut props);
    }
    let topic: &str = match o.alias {
        Some((_, false)) => "",
        _ => &m.topic,
    };
    let mut remaining = 2 + topic.len() + m.payload.len();
    if o.qos != QoS::AtMostOnce {
        remaining += 2;
    }
    if v.is_v5() {
        remaining += remaining_len_len(props.len()) + props.len();
    }
    if 1 + remaining_len_len(remaining) + remaining > max_size {
        return false;
    }
    let flags = (u8::from(o.dup && o.qos != QoS::AtMostOnce) << 3)
        | ((o.qos as u8) << 1)
        | u8::from(o.retain);
    out.reserve(5 + remaining);
    out.put_u8(0x30 | flags);
    put_remaining_len(out, remaining);
    put_str(out, topic);
    if o.qos != QoS::AtMostOnce {
        out.put_u16(o.pkid);
    }
    if v.is_v5() {
        put_remaining_len(out, props.len());
        out.put_slice(&props);
    }
    out.put_slice(&m.payload);
    true
}

/// PUBACK / PUBREC / PUBREL / PUBCOMP with an optional MQTT 5 reason code.
pub fn ack(out: &mut BytesMut, v: Version, first_byte: u8, pkid: u16, reason_code: u8) {
    if v.is_v5() && reason_code != reason::SUCCESS {
        out.put_slice(&[first_byte, 3]);
        out.put_u16(pkid);
        out.put_u8(reason_code);
    } else {
        out.put_slice(&[first_byte, 2]);
        out.put_u16(pkid);
    }
}

/// First bytes of the four publish acknowledgements.
pub const PUBACK: u8 = 0x40;
/// PUBREC first byte.
pub const PUBREC: u8 = 0x50;
/// PUBREL first byte (flags 0b0010).
pub const PUBREL: u8 = 0x62;
/// PUBCOMP first byte.
pub const PUBCOMP: u8 = 0x70;

/// SUBACK with one code per filter (granted QoS or a failure code).
pub fn suback(out: &mut BytesMut, v: Version, pkid: u16, codes: &[u8]) {
    let props = usize::from(v.is_v5());
    out.put_u8(0x90);
    put_remaining_len(out, 2 + props + codes.len());
    out.put_u16(pkid);
    if v.is_v5() {
        out.put_u8(0);
    }
    for &c in codes {
        // 3.1.1 knows only 0x80 as failure.
        out.put_u8(if !v.is_v5() && c >= 0x80 { 0x80 } else { c });
    }
}

/// UNSUBACK; MQTT 5 carries one reason per filter.
pub fn unsuback(out: &mut BytesMut, v: Version, pkid: u16, codes: &[u8]) {
    if v.is_v5() {
        out.put_u8(0xB0);
        put_remaining_len(out, 3 + codes.len());
        out.put_u16(pkid);
        out.put_u8(0);
        out.put_slice(codes);
    } else {
        out.put_slice(&[0xB0, 2]);
        out.put_u16(pkid);
    }
}

/// PINGRESP.
pub fn pingresp(out: &mut BytesMut) {
    out.put_slice(&[0xD0, 0]);
}

/// What the broker tells an MQTT 5 client in CONNACK.
#[derive(Debug, Clone, Default)]
pub struct ConnAckProps {
    /// Session expiry the broker applies, when it differs from the request.
    pub session_expiry: Option<u32>,
    /// Broker's receive maximum.
    pub receive_maximum: u16,
    /// Largest packet the broker accepts.
    pub max_packet_size: u32,
    /// Topic aliases the client may use.
    pub topic_alias_max: u16,
    /// Client id the broker generated.
    pub assigned_client_id: Option<String>,
    /// Keepalive the broker imposes.
    pub server_keep_alive: Option<u16>,
    /// Human-readable reason.
    pub reason_string: Option<String>,
}

/// CONNACK. For 3.1.1 `code` must already be a 3.1.1 return code.
pub fn connack(out: &mut BytesMut, v: Version, session_present: bool, code: u8, p: &ConnAckProps) {
    if !v.is_v5() {
        out.put_slice(&[0x20, 2, u8::from(session_present), code]);
        return;
    }
    let mut props = BytesMut::new();
    if let Some(s) = p.session_expiry {
        props.put_u8(prop::SESSION_EXPIRY);
        props.put_u32(s);
    }
    if code == reason::SUCCESS {
        props.put_u8(prop::RECEIVE_MAXIMUM);
        props.put_u16(p.receive_maximum);
        props.put_u8(prop::MAXIMUM_PACKET_SIZE);
        props.put_u32(p.max_packet_size);
        props.put_u8(prop::TOPIC_ALIAS_MAXIMUM);
        props.put_u16(p.topic_alias_max);
        for id in [
            prop::RETAIN_AVAILABLE,
            prop::WILDCARD_AVAILABLE,
            prop::SUB_IDS_AVAILABLE,
            prop::SHARED_AVAILABLE,
        ] {
            props.put_u8(id);
            props.put_u8(1);
        }
    }
    if let Some(id) = &p.assigned_client_id {
        props.put_u8(prop::ASSIGNED_CLIENT_ID);
        put_str(&mut props, id);
    }
    if let Some(k) = p.server_keep_alive {
        props.put_u8(prop::SERVER_KEEP_ALIVE);
        props.put_u16(k);
    }
    if let Some(r) = &p.reason_string {
        props.put_u8(prop::REASON_STRING);
        put_str(&mut props, r);
    }
    out.put_u8(0x20);
    put_remaining_len(out, 2 + remaining_len_len(props.len()) + props.len());
    out.put_u8(u8::from(session_present));
    out.put_u8(code);
    put_remaining_len(out, props.len());
    out.put_slice(&props);
}

/// Server-sent DISCONNECT: MQTT 5 only (3.1.1 has none; the socket just closes).
pub fn disconnect(out: &mut BytesMut, v: Version, reason_code: u8, reason_string: Option<&str>) {
    if !v.is_v5() {
        return;
    }
    let mut props = BytesMut::new();
    if let Some(r) = reason_string {
        props.put_u8(prop::REASON_STRING);
        put_str(&mut props, r);
    }
    out.put_u8(0xE0);
    put_remaining_len(out, 1 + remaining_len_len(props.len()) + props.len());
    out.put_u8(reason_code);
    put_remaining_len(out, props.len());
    out.put_slice(&props);
}

/// Maps an MQTT 5 CONNACK reason to the nearest 3.1.1 return code.
pub fn connack_code_v311(reason_code: u8) -> u8 {
    match reason_code {
        reason::SUCCESS => 0,
        reason::UNSUPPORTED_PROTOCOL => 1,
        reason::CLIENT_ID_NOT_VALID => 2,
        reason::SERVER_UNAVAILABLE | reason::SERVER_SHUTTING_DOWN => 3,
        reason::BAD_CREDENTIALS => 4,
        _ => 5,
    }
}
