//! A deliberately small MQTT 3.1.1 client over any blocking stream (plain TCP
//! or a rustls stream), so the daemon tests control every byte and timeout.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Socket read timeout; every wait in here is bounded by it or by the caller.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// A received PUBLISH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub topic: String,
    pub payload: Vec<u8>,
    pub qos: u8,
}

/// CONNACK as received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Connack {
    pub session_present: bool,
    pub code: u8,
}

/// One MQTT connection.
pub struct Client<S: Read + Write> {
    s: S,
    next_pid: u16,
    pending: VecDeque<Publish>,
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    let mut n = body.len();
    loop {
        let mut b = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            b |= 0x80;
        }
        out.push(b);
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(body);
    out
}

/// Opens a TCP connection with [`IO_TIMEOUT`] on reads and writes.
pub fn tcp(addr: &str) -> io::Result<TcpStream> {
    let s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(s)
}

/// Connects over TCP; returns the client only when the CONNACK accepted it.
pub fn connect_tcp(
    addr: &str,
    id: &str,
    clean: bool,
    creds: Option<(&str, &str)>,
) -> io::Result<(Client<TcpStream>, Connack)> {
    Client::connect(tcp(addr)?, id, clean, creds)
}

impl<S: Read + Write> Client<S> {
    /// Sends CONNECT on `s` and reads the CONNACK (which may refuse).
    pub fn connect(
        mut s: S,
        id: &str,
        clean: bool,
        creds: Option<(&str, &str)>,
    ) -> io::Result<(Client<S>, Connack)> {
        let mut body = Vec::new();
        string(&mut body, b"MQTT");
        body.push(4);
        let mut flags = if clean { 0x02 } else { 0 };
        if creds.is_some() {
            flags |= 0xC0;
        }
        body.push(flags);
        body.extend_from_slice(&60u16.to_be_bytes());
        string(&mut body, id.as_bytes());
        if let Some((u, p)) = creds {
            string(&mut body, u.as_bytes());
            string(&mut body, p.as_bytes());
        }
        s.write_all(&packet(0x10, &body))?;
        s.flush()?;
        let mut c = Client {
            s,
            next_pid: 1,
            pending: VecDeque::new(),
        };
        let (kind, body) = c.read_packet()?;
        if kind >> 4 != 2 || body.len() != 2 {
            return Err(io::Error::other(format!("expected CONNACK, got {kind:#x}")));
        }
        let ack = Connack {
            session_present: body[0] & 1 == 1,
            code: body[1],
        };
        Ok((c, ack))
    }

    fn read_packet(&mut self) -> io::Result<(u8, Vec<u8>)> {
        let mut b = [0u8; 1];
        self.s.read_exact(&mut b)?;
        let first = b[0];
        let (mut len, mut mult) = (0usize, 1usize);
        loop {
            self.s.read_exact(&mut b)?;
            len += usize::from(b[0] & 0x7f) * mult;
            mult *= 128;
            if b[0] & 0x80 == 0 {
                break;
            }
        }
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body)?;
        Ok((first, body))
    }

    fn pid(&mut self) -> u16 {
        let p = self.next_pid;
        self.next_pid = self.next_pid.wrapping_add(1).max(1);
        p
    }

    /// Reads packets until one of type `want` (upper nibble) arrives; PUBLISHes
    /// seen meanwhile are acknowledged and kept for [`Client::recv`].
    fn expect(&mut self, want: u8) -> io::Result<Vec<u8>> {
        loop {
            let (first, body) = self.read_packet()?;
            match first >> 4 {
                3 => {
                    let p = self.on_publish(first, &body)?;
                    self.pending.push_back(p);
                }
                t if t == want => return Ok(body),
                t => return Err(io::Error::other(format!("unexpected packet type {t}"))),
            }
        }
    }

    fn on_publish(&mut self, first: u8, body: &[u8]) -> io::Result<Publish> {
        let qos = (first >> 1) & 3;
        let tlen = usize::from(u16::from_be_bytes([body[0], body[1]]));
        let topic = String::from_utf8_lossy(&body[2..2 + tlen]).into_owned();
        let mut at = 2 + tlen;
        if qos > 0 {
            let pid = [body[at], body[at + 1]];
            at += 2;
            let ack = if qos == 1 { 0x40 } else { 0x50 };
            self.s.write_all(&packet(ack, &pid))?;
            self.s.flush()?;
        }
        Ok(Publish {
            topic,
            payload: body[at..].to_vec(),
            qos,
        })
    }

    /// Subscribes to `filter`; returns the granted QoS (0x80 = refused).
    pub fn subscribe(&mut self, filter: &str, qos: u8) -> io::Result<u8> {
        let pid = self.pid();
        let mut body = pid.to_be_bytes().to_vec();
        string(&mut body, filter.as_bytes());
        body.push(qos);
        self.s.write_all(&packet(0x82, &body))?;
        self.s.flush()?;
        let ack = self.expect(9)?;
        Ok(ack.get(2).copied().unwrap_or(0x80))
    }

    /// Publishes; for QoS 1 waits for the PUBACK.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: u8) -> io::Result<()> {
        let mut body = Vec::new();
        string(&mut body, topic.as_bytes());
        if qos > 0 {
            let pid = self.pid();
            body.extend_from_slice(&pid.to_be_bytes());
        }
        body.extend_from_slice(payload);
        self.s.write_all(&packet(0x30 | (qos << 1), &body))?;
        self.s.flush()?;
        if qos == 1 {
            self.expect(4)?;
        }
        Ok(())
    }

    /// The next PUBLISH, waiting at most `timeout` (rounded up to the socket timeout).
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Publish> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(p) = self.pending.pop_front() {
                return Ok(p);
            }
            match self.read_packet() {
                Ok((first, body)) if first >> 4 == 3 => return self.on_publish(first, &body),
                Ok(_) => {}
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// PINGREQ/PINGRESP round trip: proves the connection is alive end to end.
    pub fn ping(&mut self) -> io::Result<()> {
        self.s.write_all(&[0xC0, 0])?;
        self.s.flush()?;
        self.expect(13).map(|_| ())
    }

    /// Sends DISCONNECT (a clean goodbye: no will, session kept if persistent).
    pub fn disconnect(mut self) -> io::Result<()> {
        self.s.write_all(&[0xE0, 0])?;
        self.s.flush()
    }
}
