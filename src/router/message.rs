//! The application message as it flows listener → session → router → bridge
//! queue → uplink, protocol-version neutral, and its stable binary encoding
//! (used by the sled store and the bridge queue log, so it is versioned).

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// MQTT quality of service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// Fire and forget.
    #[default]
    AtMostOnce = 0,
    /// Acknowledged delivery, duplicates possible.
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

impl QoS {
    /// From the two-bit wire value.
    pub fn from_u8(v: u8) -> Option<QoS> {
        match v {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }
}

/// Who published a message: used for no-local and bridge loop prevention.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Origin {
    /// A local client, by client id.
    Client(Arc<str>),
    /// A bridge's inbound side, by bridge name.
    Bridge(Arc<str>),
    /// The broker itself ($SYS, notifications, wills are `Client`).
    Broker,
}

/// MQTT 5 publish properties carried end to end (empty for 3.1.1 traffic).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Props {
    /// 0 = bytes, 1 = UTF-8.
    pub payload_format_indicator: Option<u8>,
    /// Message expiry as an absolute wall-clock deadline (ms since the epoch).
    pub expires_at_ms: Option<u64>,
    /// MIME type.
    pub content_type: Option<String>,
    /// Request/response topic.
    pub response_topic: Option<String>,
    /// Request/response correlation.
    pub correlation_data: Option<Bytes>,
    /// User properties, in order.
    pub user_properties: Vec<(String, String)>,
}

/// One application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name (no wildcards).
    pub topic: Arc<str>,
    /// Opaque payload.
    pub payload: Bytes,
    /// QoS as published.
    pub qos: QoS,
    /// Retain flag as published.
    pub retain: bool,
    /// MQTT 5 properties.
    pub props: Props,
    /// Who published it.
    pub origin: Origin,
    /// When the broker received it (ms since the epoch); drives max_age.
    pub received_ms: u64,
}

/// Why a stored message could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The record ended early.
    #[error("message record truncated")]
    Truncated,
    /// Unknown format version or field value.
    #[error("message record has unknown format {0}")]
    Format(u8),
    /// A string field is not UTF-8.
    #[error("message record has a non-UTF-8 string")]
    Utf8,
}

const FORMAT_V1: u8 = 1;

impl Message {
    /// A message from `origin` received now, with no properties.
    pub fn new(
        topic: &str,
        payload: impl Into<Bytes>,
        qos: QoS,
        retain: bool,
        origin: Origin,
    ) -> Self {
        Message {
            topic: Arc::from(topic),
            payload: payload.into(),
            qos,
            retain,
            props: Props::default(),
            origin,
            received_ms: crate::clock::now_ms(),
        }
    }

    /// True when the MQTT 5 message expiry has passed.
    pub fn is_expired(&self, now_ms: u64) -> bool {
        self.expires_at().is_some_and(|t| t <= now_ms)
    }

    /// Seconds left of the message expiry interval, for forwarding (at least 1 while unexpired).
    pub fn remaining_expiry(&self, now_ms: u64) -> Option<u32> {
        self.expires_at()
            .map(|t| (t.saturating_sub(now_ms).div_ceil(1000)).min(u32::MAX as u64) as u32)
    }

    /// The expiry deadline, moved on by any clock step since the message arrived, which is
    /// when the deadline was set (crate::clock). The deadline itself is no stamp: it may lie
    /// after a step it was set before.
    fn expires_at(&self) -> Option<u64> {
        let t = self.props.expires_at_ms?;
        let stepped = crate::clock::corrected(self.received_ms) - self.received_ms;
        Some(t.saturating_add(stepped))
    }

    /// Appends the stable binary form to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.put_u8(FORMAT_V1);
        out.put_u8(self.qos as u8 | (u8::from(self.retain) << 2));
        out.put_u64(self.received_ms);
        put_str(out, &self.topic);
        match &self.origin {
            Origin::Client(c) => {
                out.put_u8(0);
                put_str(out, c);
            }
            Origin::Bridge(b) => {
                out.put_u8(1);
                put_str(out, b);
            }
            Origin::Broker => out.put_u8(2),
        }
        let p = &self.props;
        put_opt(out, p.payload_format_indicator, |o, v| o.put_u8(v));
        put_opt(out, p.expires_at_ms, |o, v| o.put_u64(v));
        put_opt(out, p.content_type.as_deref(), put_str);
        put_opt(out, p.response_topic.as_deref(), put_str);
        put_opt(out, p.correlation_data.as_deref(), put_bytes);
        out.put_u32(p.user_properties.len() as u32);
        for (k, v) in &p.user_properties {
            put_str(out, k);
            put_str(out, v);
        }
        put_bytes(out, &self.payload);
    }

    /// The stable binary form as one buffer.
    pub fn to_bytes(&self) -> Bytes {
        // Sized exactly: a short estimate reallocates, and the queue keeps the spare capacity.
        let mut b = BytesMut::with_capacity(self.encoded_len());
        self.encode(&mut b);
        b.freeze()
    }

    /// Bytes [`Message::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let field = |n: usize| 4 + n;
        let origin = match &self.origin {
            Origin::Client(c) | Origin::Bridge(c) => field(c.len()),
            Origin::Broker => 0,
        };
        let p = &self.props;
        let opt = |n: Option<usize>| 1 + n.unwrap_or(0);
        let user: usize = p
            .user_properties
            .iter()
            .map(|(k, v)| field(k.len()) + field(v.len()))
            .sum();
        2 + 8
            + field(self.topic.len())
            + 1
            + origin
            + opt(p.payload_format_indicator.map(|_| 1))
            + opt(p.expires_at_ms.map(|_| 8))
            + opt(p.content_type.as_ref().map(|v| field(v.len())))
            + opt(p.response_topic.as_ref().map(|v| field(v.len())))
            + opt(p.correlation_data.as_ref().map(|v| field(v.len())))
            + 4
            + user
            + field(self.payload.len())
    }

    /// The QoS of an encoded message, read without decoding the rest.
    pub fn peek_qos(b: &[u8]) -> Option<QoS> {
        match b {
            [FORMAT_V1, flags, ..] => QoS::from_u8(flags & 3),
            _ => None,
        }
    }

    /// Parses what [`Message::encode`] wrote.
    pub fn decode(mut b: Bytes) -> Result<Message, DecodeError> {
        let format = get_u8(&mut b)?;
        if format != FORMAT_V1 {
            return Err(DecodeError::Format(format));
        }
        let flags = get_u8(&mut b)?;
        let qos = QoS::from_u8(flags & 3).ok_or(DecodeError::Format(flags))?;
        need(&b, 8)?;
        let received_ms = b.get_u64();
        let topic: Arc<str> = Arc::from(get_str(&mut b)?);
        let origin = match get_u8(&mut b)? {
            0 => Origin::Client(Arc::from(get_str(&mut b)?)),
            1 => Origin::Bridge(Arc::from(get_str(&mut b)?)),
            2 => Origin::Broker,
            t => return Err(DecodeError::Format(t)),
        };
        let payload_format_indicator = get_opt(&mut b, get_u8)?;
        let expires_at_ms = get_opt(&mut b, |b| need(b, 8).map(|_| b.get_u64()))?;
        let content_type = get_opt(&mut b, get_str)?;
        let response_topic = get_opt(&mut b, get_str)?;
        let correlation_data = get_opt(&mut b, get_bytes)?;
        need(&b, 4)?;
        let n = b.get_u32() as usize;
        let mut user_properties = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            user_properties.push((get_str(&mut b)?, get_str(&mut b)?));
        }
        let payload = get_bytes(&mut b)?;
        Ok(Message {
            topic,
            payload,
            qos,
            retain: flags & 4 != 0,
            props: Props {
                payload_format_indicator,
                expires_at_ms,
                content_type,
                response_topic,
                correlation_data,
                user_properties,
            },
            origin,
            received_ms,
        })
    }
}

fn put_str(out: &mut BytesMut, s: &str) {
    put_bytes(out, s.as_bytes());
}
fn put_bytes(out: &mut BytesMut, s: &[u8]) {
    out.put_u32(s.len() as u32);
    out.put_slice(s);
}
fn put_opt<T>(out: &mut BytesMut, v: Option<T>, f: impl FnOnce(&mut BytesMut, T)) {
    match v {
        Some(v) => {
            out.put_u8(1);
            f(out, v);
        }
        None => out.put_u8(0),
    }
}
fn need(b: &Bytes, n: usize) -> Result<(), DecodeError> {
    if b.remaining() < n {
        Err(DecodeError::Truncated)
    } else {
        Ok(())
    }
}
fn get_u8(b: &mut Bytes) -> Result<u8, DecodeError> {
    need(b, 1)?;
    Ok(b.get_u8())
}
fn get_bytes(b: &mut Bytes) -> Result<Bytes, DecodeError> {
    need(b, 4)?;
    let n = b.get_u32() as usize;
    need(b, n)?;
    Ok(b.split_to(n))
}
fn get_str(b: &mut Bytes) -> Result<String, DecodeError> {
    let raw = get_bytes(b)?;
    String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Utf8)
}
fn get_opt<T>(
    b: &mut Bytes,
    f: impl FnOnce(&mut Bytes) -> Result<T, DecodeError>,
) -> Result<Option<T>, DecodeError> {
    match get_u8(b)? {
        0 => Ok(None),
        1 => f(b).map(Some),
        t => Err(DecodeError::Format(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_properties() {
        let mut m = Message::new(
            "a/b",
            &b"hello"[..],
            QoS::ExactlyOnce,
            true,
            Origin::Client("c1".into()),
        );
        m.props.expires_at_ms = Some(42);
        m.props.content_type = Some("text/plain".into());
        m.props.correlation_data = Some(Bytes::from_static(b"\x00\x01"));
        m.props.user_properties = vec![("k".into(), "v".into()), ("k".into(), "w".into())];
        let bytes = m.to_bytes();
        assert_eq!(bytes.len(), m.encoded_len());
        let back = Message::decode(bytes).expect("decodes");
        assert_eq!(back, m);
        let mut plain = Message::new("t", &b"p"[..], QoS::AtMostOnce, false, Origin::Broker);
        assert_eq!(plain.to_bytes().len(), plain.encoded_len());
        plain.props.response_topic = Some("r".into());
        plain.props.payload_format_indicator = Some(1);
        assert_eq!(plain.to_bytes().len(), plain.encoded_len());
    }

    #[test]
    fn truncated_records_are_errors_not_panics() {
        let m = Message::new(
            "t",
            &b"payload"[..],
            QoS::AtLeastOnce,
            false,
            Origin::Broker,
        );
        let full = m.to_bytes();
        for cut in 0..full.len() {
            assert!(Message::decode(full.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
}
