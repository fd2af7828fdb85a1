//! MQTT 3.1.1 on the wire for the load generator. CONNECT and SUBSCRIBE go
//! through rumqttc's codec; PUBLISH and PUBACK are encoded and scanned in
//! place, because the generator must stay much faster than the broker it
//! measures: no allocation and no parse into owned types per message.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::{Buf, BufMut, BytesMut};
use rumqttc::mqttbytes::QoS;
use rumqttc::mqttbytes::v4::{ConnAck, Connect, ConnectReturnCode, Packet, Subscribe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Keepalive announced by every bench client; longer than any scenario.
const KEEPALIVE_SECS: u16 = 600;
/// Time allowed for CONNACK and SUBACK.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest packet the bench accepts from a broker.
const MAX_PACKET: usize = 1 << 20;
/// Read buffer growth step.
const READ_CHUNK: usize = 256 * 1024;
/// Bytes the payload needs for its sequence number and timestamp.
pub const STAMP_LEN: usize = 16;

/// Nanoseconds since the first call in this process (monotonic).
pub fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// One MQTT connection with a read buffer.
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet consumed.
    pub rbuf: BytesMut,
}

impl Conn {
    /// Opens a TCP connection and completes CONNECT/CONNACK.
    pub async fn connect(addr: &str, client_id: &str, clean: bool) -> Result<Conn> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect to {addr}"))?;
        stream.set_nodelay(true)?;
        let mut conn = Conn {
            stream,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
        };
        let mut c = Connect::new(client_id);
        c.keep_alive = KEEPALIVE_SECS;
        c.clean_session = clean;
        conn.send(Packet::Connect(c)).await?;
        match conn.next_control().await? {
            Packet::ConnAck(ConnAck {
                code: ConnectReturnCode::Success,
                ..
            }) => Ok(conn),
            other => bail!("{addr}: expected a successful CONNACK, got {other:?}"),
        }
    }

    /// Subscribes to one filter and waits for the SUBACK.
    pub async fn subscribe(&mut self, filter: &str, qos: u8) -> Result<()> {
        let q = if qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        let mut sub = Subscribe::new(filter, q);
        sub.pkid = 1; // 0 is not a valid packet id
        self.send(Packet::Subscribe(sub)).await?;
        match self.next_control().await? {
            Packet::SubAck(_) => Ok(()),
            other => bail!("expected SUBACK, got {other:?}"),
        }
    }

    /// Sends DISCONNECT; errors are irrelevant at that point.
    pub async fn disconnect(mut self) {
        let _ = self.stream.write_all(&[0xe0, 0]).await;
    }

    async fn send(&mut self, p: Packet) -> Result<()> {
        let mut buf = BytesMut::new();
        p.write(&mut buf, MAX_PACKET)
            .map_err(|e| anyhow::anyhow!("encode: {e:?}"))?;
        self.stream.write_all(&buf).await?;
        Ok(())
    }

    async fn next_control(&mut self) -> Result<Packet> {
        loop {
            match Packet::read(&mut self.rbuf, MAX_PACKET) {
                Ok(p) => return Ok(p),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
                Err(e) => bail!("bad packet from broker: {e:?}"),
            }
            self.rbuf.reserve(READ_CHUNK);
            let n = timeout(HANDSHAKE_TIMEOUT, self.stream.read_buf(&mut self.rbuf))
                .await
                .context("broker did not answer in time")??;
            if n == 0 {
                bail!("broker closed the connection");
            }
        }
    }
}

/// A PUBLISH seen in place in a read buffer.
pub struct Pub<'a> {
    /// 0 or 1.
    pub qos: u8,
    /// Packet id (0 for QoS 0).
    pub pkid: u16,
    /// The application payload.
    pub payload: &'a [u8],
}

impl Pub<'_> {
    /// The sequence number and timestamp the bench put at the payload's start.
    pub fn stamp(&self) -> (u64, u64) {
        if self.payload.len() < STAMP_LEN {
            return (u64::MAX, 0);
        }
        let mut p = self.payload;
        (p.get_u64_le(), p.get_u64_le())
    }
}

/// A complete frame: the fixed header's first byte and the body.
pub enum Frame<'a> {
    /// An incoming PUBLISH.
    Publish(Pub<'a>),
    /// A PUBACK.
    PubAck,
    /// Anything else.
    Other,
}

/// Calls `f` for every complete frame at the start of `buf` and consumes them;
/// a partial frame stays for the next read.
pub fn scan(buf: &mut BytesMut, mut f: impl FnMut(Frame<'_>)) -> Result<()> {
    let mut at = 0;
    while let Some((hdr, start, end)) = frame_bounds(&buf[at..])? {
        let body = &buf[at + start..at + end];
        f(decode(hdr, body)?);
        at += end;
    }
    buf.advance(at);
    Ok(())
}

fn frame_bounds(b: &[u8]) -> Result<Option<(u8, usize, usize)>> {
    let mut len = 0usize;
    for i in 0..4 {
        let Some(&byte) = b.get(1 + i) else {
            return Ok(None);
        };
        len |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let start = 2 + i;
            if len > MAX_PACKET {
                bail!("broker sent a {len}-byte packet");
            }
            return Ok((b.len() >= start + len).then_some((b[0], start, start + len)));
        }
    }
    bail!("malformed remaining length from broker")
}

fn decode(hdr: u8, body: &[u8]) -> Result<Frame<'_>> {
    let short = || anyhow::anyhow!("truncated packet type {}", hdr >> 4);
    match hdr >> 4 {
        3 => {
            let qos = (hdr >> 1) & 3;
            let tlen = usize::from(u16::from_be_bytes([
                *body.first().ok_or_else(short)?,
                *body.get(1).ok_or_else(short)?,
            ]));
            let mut at = 2 + tlen;
            let mut pkid = 0;
            if qos > 0 {
                let id = body.get(at..at + 2).ok_or_else(short)?;
                pkid = u16::from_be_bytes([id[0], id[1]]);
                at += 2;
            }
            let payload = body.get(at..).ok_or_else(short)?;
            Ok(Frame::Publish(Pub { qos, pkid, payload }))
        }
        4 if body.len() >= 2 => Ok(Frame::PubAck),
        4 => Err(short()),
        _ => Ok(Frame::Other),
    }
}

/// Appends a PUBLISH whose payload is `len` bytes: seq and timestamp, then zeros.
pub fn put_publish(
    buf: &mut BytesMut,
    topic: &str,
    qos: u8,
    pkid: u16,
    len: usize,
    seq: u64,
    ts: u64,
) {
    let len = len.max(STAMP_LEN);
    let rem = 2 + topic.len() + if qos > 0 { 2 } else { 0 } + len;
    buf.put_u8(0x30 | (qos << 1));
    let mut r = rem;
    loop {
        let mut byte = (r & 0x7f) as u8;
        r >>= 7;
        if r > 0 {
            byte |= 0x80;
        }
        buf.put_u8(byte);
        if r == 0 {
            break;
        }
    }
    buf.put_u16(topic.len() as u16);
    buf.put_slice(topic.as_bytes());
    if qos > 0 {
        buf.put_u16(pkid);
    }
    buf.put_u64_le(seq);
    buf.put_u64_le(ts);
    buf.put_bytes(0, len - STAMP_LEN);
}

/// Appends a PUBACK.
pub fn put_puback(buf: &mut BytesMut, pkid: u16) {
    buf.put_slice(&[0x40, 2]);
    buf.put_u16(pkid);
}

/// The packet id for the n-th QoS 1 message of a connection (never 0).
pub fn pkid_for(n: u64) -> u16 {
    (n % 65_535) as u16 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_round_trips_through_scan_and_rumqttc() {
        let mut buf = BytesMut::new();
        put_publish(&mut buf, "a/b", 1, 7, 300, 42, 99);
        put_puback(&mut buf, 9);
        let copy = buf.clone();
        let mut seen = Vec::new();
        scan(&mut buf, |f| match f {
            Frame::Publish(p) => seen.push((p.qos, p.pkid, p.payload.len(), p.stamp())),
            Frame::PubAck => seen.push((9, 9, 0, (0, 0))),
            Frame::Other => panic!(),
        })
        .unwrap();
        assert!(buf.is_empty());
        assert_eq!(seen, vec![(1, 7, 300, (42, 99)), (9, 9, 0, (0, 0))]);
        let mut copy = copy;
        match Packet::read(&mut copy, MAX_PACKET).unwrap() {
            Packet::Publish(p) => {
                assert_eq!((p.topic.as_str(), p.pkid, p.payload.len()), ("a/b", 7, 300))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn partial_frame_waits() {
        let mut buf = BytesMut::new();
        put_publish(&mut buf, "t", 0, 0, 64, 1, 2);
        let full = buf.len();
        buf.truncate(full - 1);
        let mut n = 0;
        scan(&mut buf, |_| n += 1).unwrap();
        assert_eq!((n, buf.len()), (0, full - 1));
    }
}
