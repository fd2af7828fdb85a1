//! A raw MQTT socket: byte-exact packets out (hand-encoded, so tests can
//! send what no well-behaved client would), whole frames in, decoded with
//! rumqttc's codecs when a test wants structure.

use std::time::Duration;

use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// One raw connection.
pub struct Raw {
    /// The socket.
    pub s: TcpStream,
    buf: BytesMut,
}

/// What reading a frame gave.
#[derive(Debug)]
pub enum Got {
    /// A whole frame (fixed header included).
    Frame(BytesMut),
    /// Nothing within the time allowed.
    Timeout,
    /// The broker closed (or reset) the connection.
    Closed,
}

impl Raw {
    /// Connects the TCP socket only.
    pub async fn tcp(port: u16) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        s.set_nodelay(true).unwrap();
        Raw {
            s,
            buf: BytesMut::new(),
        }
    }

    /// TCP + an MQTT 3.1.1 CONNECT; asserts CONNACK accepted.
    pub async fn v4(port: u16, id: &str, clean: bool, keepalive: u16) -> Raw {
        let mut r = Raw::tcp(port).await;
        r.send(&connect4(id, clean, keepalive)).await;
        let f = r.frame().await;
        assert_eq!(&f[..], &[0x20, 2, f[2], 0], "CONNACK refused");
        r
    }

    /// TCP + an MQTT 5 CONNECT with `props`; returns the CONNACK (asserted success).
    pub async fn v5(
        port: u16,
        id: &str,
        clean: bool,
        keepalive: u16,
        props: &[u8],
    ) -> (Raw, v5::ConnAck) {
        let mut r = Raw::tcp(port).await;
        r.send(&connect5(id, clean, keepalive, props)).await;
        match r.v5_packet().await {
            v5::Packet::ConnAck(c) => {
                assert_eq!(c.code, v5::ConnectReturnCode::Success, "CONNACK refused");
                (r, c)
            }
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Writes bytes.
    pub async fn send(&mut self, b: &[u8]) {
        self.s.write_all(b).await.unwrap();
    }

    /// Writes bytes, ignoring errors (the broker may have closed already).
    pub async fn try_send(&mut self, b: &[u8]) -> bool {
        self.s.write_all(b).await.is_ok()
    }

    /// Next frame within `t`.
    pub async fn recv(&mut self, t: Duration) -> Got {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            if let Some(n) = frame_len(&self.buf) {
                if self.buf.len() >= n {
                    return Got::Frame(self.buf.split_to(n));
                }
            }
            match tokio::time::timeout_at(deadline, self.s.read_buf(&mut self.buf)).await {
                Err(_) => return Got::Timeout,
                Ok(Ok(0)) | Ok(Err(_)) => return Got::Closed,
                Ok(Ok(_)) => {}
            }
        }
    }

    /// Next frame within [`WAIT`], or panic.
    pub async fn frame(&mut self) -> BytesMut {
        match self.recv(WAIT).await {
            Got::Frame(f) => f,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// Next packet, decoded as MQTT 5.
    pub async fn v5_packet(&mut self) -> v5::Packet {
        let mut f = self.frame().await;
        v5::Packet::read(&mut f, None).unwrap()
    }

    /// Next packet, decoded as MQTT 3.1.1.
    pub async fn v4_packet(&mut self) -> v4::Packet {
        let mut f = self.frame().await;
        v4::Packet::read(&mut f, usize::MAX).unwrap()
    }

    /// True if the broker closes the connection within `t` (packets before that are skipped).
    pub async fn closed_within(&mut self, t: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + t;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.recv(left).await {
                Got::Closed => return true,
                Got::Timeout => return false,
                Got::Frame(_) => {}
            }
        }
    }

    /// Skips frames until one whose first byte's type nibble is `ptype`.
    pub async fn until_type(&mut self, ptype: u8) -> BytesMut {
        loop {
            let f = self.frame().await;
            if f[0] >> 4 == ptype {
                return f;
            }
        }
    }
}

/// Length of the frame at the start of `b`, when its header is complete.
pub fn frame_len(b: &[u8]) -> Option<usize> {
    let mut len = 0usize;
    for i in 1..=4 {
        let byte = *b.get(i)?;
        len |= usize::from(byte & 0x7f) << (7 * (i - 1));
        if byte & 0x80 == 0 {
            return Some(1 + i + len);
        }
    }
    Some(usize::MAX)
}

/// Variable byte integer.
pub fn varint(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            return out;
        }
    }
}

/// Length-prefixed string.
pub fn mstr(s: &str) -> Vec<u8> {
    mbin(s.as_bytes())
}

/// Length-prefixed bytes.
pub fn mbin(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u16).to_be_bytes().to_vec();
    v.extend_from_slice(s);
    v
}

/// A packet: first byte, remaining length, body.
pub fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![first];
    v.extend(varint(body.len()));
    v.extend_from_slice(body);
    v
}

/// An MQTT 5 property block (length-prefixed) from concatenated properties.
pub fn props(parts: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = parts.concat();
    let mut v = varint(body.len());
    v.extend(body);
    v
}

/// Property with a u32 value.
pub fn p_u32(id: u8, v: u32) -> Vec<u8> {
    let mut p = vec![id];
    p.extend(v.to_be_bytes());
    p
}

/// Property with a u16 value.
pub fn p_u16(id: u8, v: u16) -> Vec<u8> {
    let mut p = vec![id];
    p.extend(v.to_be_bytes());
    p
}

/// Property with a variable-byte-integer value.
pub fn p_var(id: u8, v: usize) -> Vec<u8> {
    let mut p = vec![id];
    p.extend(varint(v));
    p
}

/// CONNECT with any protocol name/level and flags; `props` (MQTT 5) goes after keepalive.
pub fn connect_raw(
    name: &str,
    level: u8,
    flags: u8,
    keepalive: u16,
    props: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = mstr(name);
    b.push(level);
    b.push(flags);
    b.extend(keepalive.to_be_bytes());
    if let Some(p) = props {
        b.extend_from_slice(p);
    }
    b.extend_from_slice(payload);
    frame(0x10, &b)
}

/// MQTT 3.1.1 CONNECT.
pub fn connect4(id: &str, clean: bool, keepalive: u16) -> Vec<u8> {
    connect_raw("MQTT", 4, u8::from(clean) << 1, keepalive, None, &mstr(id))
}

/// MQTT 5 CONNECT; `props` are the concatenated properties (no length prefix).
pub fn connect5(id: &str, clean: bool, keepalive: u16, p: &[u8]) -> Vec<u8> {
    connect_raw(
        "MQTT",
        5,
        u8::from(clean) << 1,
        keepalive,
        Some(&props(&[p.to_vec()])),
        &mstr(id),
    )
}

/// PUBLISH; `props` is None for 3.1.1, the concatenated properties for 5.
pub fn publish(
    topic: &str,
    qos: u8,
    pkid: u16,
    dup: bool,
    retain: bool,
    p: Option<&[u8]>,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = mstr(topic);
    if qos > 0 {
        b.extend(pkid.to_be_bytes());
    }
    if let Some(p) = p {
        b.extend(props(&[p.to_vec()]));
    }
    b.extend_from_slice(payload);
    frame(
        0x30 | (u8::from(dup) << 3) | (qos << 1) | u8::from(retain),
        &b,
    )
}

/// SUBSCRIBE of one filter with an options byte; `props` as for [`publish`].
pub fn subscribe(pkid: u16, filter: &str, opts: u8, p: Option<&[u8]>) -> Vec<u8> {
    let mut b = pkid.to_be_bytes().to_vec();
    if let Some(p) = p {
        b.extend(props(&[p.to_vec()]));
    }
    b.extend(mstr(filter));
    b.push(opts);
    frame(0x82, &b)
}

/// PUBACK (0x40), PUBREC (0x50), PUBREL (0x62) or PUBCOMP (0x70).
pub fn ack(first: u8, pkid: u16) -> Vec<u8> {
    frame(first, &pkid.to_be_bytes())
}

/// DISCONNECT (3.1.1 form; also a valid MQTT 5 normal disconnect).
pub fn disconnect() -> Vec<u8> {
    vec![0xE0, 0]
}

/// Packet id of a QoS>0 PUBLISH frame (after the topic).
pub fn publish_pkid(f: &[u8]) -> u16 {
    let mut i = 1;
    while f[i] & 0x80 != 0 {
        i += 1;
    }
    let start = i + 1;
    let tlen = usize::from(u16::from_be_bytes([f[start], f[start + 1]]));
    let at = start + 2 + tlen;
    u16::from_be_bytes([f[at], f[at + 1]])
}
