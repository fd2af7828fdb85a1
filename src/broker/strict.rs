//! Byte-level rules that rumqttc's codec does not enforce but MQTT requires
//! a server to treat as malformed: checked on the raw frame before the
//! codec parses (and forgets) the bits in question.

use super::frame::Header;

/// The protocol name, level and connect flags of a CONNECT frame.
fn connect_header<'a>(frame: &'a [u8], header: &Header) -> Option<(&'a [u8], u8, u8)> {
    let body = frame.get(header.header_len..)?;
    let n = usize::from(u16::from_be_bytes([*body.first()?, *body.get(1)?]));
    Some((body.get(2..2 + n)?, *body.get(2 + n)?, *body.get(3 + n)?))
}

/// CONNECT flags: the reserved bit is 0 (§3.1.2.3); without a will, will QoS
/// and will retain are 0 (§3.1.2.11); before MQTT 5 a password needs a user name (§3.1.2.22).
pub fn connect(frame: &[u8], header: &Header) -> Result<(), &'static str> {
    let (_, level, flags) = connect_header(frame, header).ok_or("truncated variable header")?;
    if flags & 0x01 != 0 {
        return Err("reserved connect flag set");
    }
    if flags & 0x04 == 0 && flags & 0x38 != 0 {
        return Err("will QoS or retain set without a will");
    }
    if (flags >> 3) & 3 == 3 {
        return Err("will QoS 3");
    }
    if level & 0x7f < 5 && flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Err("password without a user name");
    }
    Ok(())
}

/// SUBSCRIBE options: reserved bits are 0 (3.1.1 §3.8.3.1: all but QoS; 5.0
/// §3.8.3.1: bits 6 and 7). Properties (MQTT 5) are skipped, not checked.
pub fn subscribe(frame: &[u8], header: &Header, v5: bool) -> Result<(), &'static str> {
    let body = frame.get(header.header_len..).ok_or("truncated")?;
    let mut at = 2;
    if v5 {
        let (len, used) =
            varint(body.get(at..).ok_or("truncated")?).ok_or("bad properties length")?;
        at += used + len;
    }
    let reserved = if v5 { 0xC0 } else { 0xFC };
    while at < body.len() {
        let n = usize::from(u16::from_be_bytes([
            *body.get(at).ok_or("truncated")?,
            *body.get(at + 1).ok_or("truncated")?,
        ]));
        at += 2 + n;
        let opts = *body.get(at).ok_or("filter without options")?;
        if opts & reserved != 0 {
            return Err("reserved subscription option bits set");
        }
        at += 1;
    }
    Ok(())
}

/// Whether a client may publish to `topic` at all, before any ACL: `$SYS`
/// belongs to the broker (except a bridge's own state topic), and `$share/`
/// is only for subscribing — the rules Mosquitto applies, so a client cannot
/// fake the broker's statistics.
pub fn client_may_publish(topic: &str) -> bool {
    if let Some(rest) = topic.strip_prefix("$SYS/broker/connection/") {
        return rest.split('/').nth(1) == Some("state") && rest.split('/').count() == 2;
    }
    !(topic == "$SYS" || topic.starts_with("$SYS/") || topic.starts_with("$share/"))
}

/// A variable byte integer and the bytes it took.
fn varint(b: &[u8]) -> Option<(usize, usize)> {
    let mut v = 0usize;
    for (i, &x) in b.iter().take(4).enumerate() {
        v |= usize::from(x & 0x7f) << (7 * i);
        if x & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::frame::parse_header;

    fn hdr(f: &[u8]) -> Header {
        parse_header(f, usize::MAX).unwrap().unwrap()
    }

    #[test]
    fn subscribe_options() {
        let ok = [0x82, 6, 0, 1, 0, 1, b'a', 0x02];
        assert!(subscribe(&ok, &hdr(&ok), false).is_ok());
        let bad = [0x82, 6, 0, 1, 0, 1, b'a', 0x42];
        assert!(subscribe(&bad, &hdr(&bad), false).is_err());
        let v5_ok = [0x82, 7, 0, 1, 0, 0, 1, b'a', 0x2E];
        assert!(subscribe(&v5_ok, &hdr(&v5_ok), true).is_ok());
        let v5_bad = [0x82, 7, 0, 1, 0, 0, 1, b'a', 0x81];
        assert!(subscribe(&v5_bad, &hdr(&v5_bad), true).is_err());
    }

    #[test]
    fn reserved_topics() {
        assert!(!client_may_publish("$SYS/broker/version"));
        assert!(!client_may_publish("$SYS"));
        assert!(!client_may_publish("$share/g/a"));
        assert!(client_may_publish("$SYS/broker/connection/GW-1/state"));
        assert!(!client_may_publish("$SYS/broker/connection/GW-1/state/x"));
        assert!(client_may_publish("$SYSTEM/x"));
        assert!(client_may_publish("a/$SYS"));
    }

    #[test]
    fn connect_flags() {
        let f = |flags: u8, level: u8| {
            let mut v = vec![0x10, 10, 0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 30];
            v[1] = (v.len() - 2) as u8;
            connect(&v, &hdr(&v))
        };
        assert!(f(0x02, 4).is_ok());
        assert!(f(0x03, 4).is_err());
        assert!(f(0x0A, 4).is_err());
        assert!(f(0x1C, 4).is_err());
        assert!(f(0x42, 4).is_err());
        assert!(f(0x42, 5).is_ok());
        assert!(f(0xC2, 4).is_ok());
    }
}
