//! Framing: find one complete MQTT packet in a read buffer. A partial frame
//! is "read more", never an error; a remaining length over the limit is
//! rejected from the header alone, before the body is buffered.

use bytes::BytesMut;

/// The largest remaining length MQTT can encode (268,435,455 bytes).
pub const MQTT_MAX_REMAINING: usize = 268_435_455;

/// Control packet types (the high nibble of the first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketType {
    /// CONNECT
    Connect = 1,
    /// CONNACK
    ConnAck = 2,
    /// PUBLISH
    Publish = 3,
    /// PUBACK
    PubAck = 4,
    /// PUBREC
    PubRec = 5,
    /// PUBREL
    PubRel = 6,
    /// PUBCOMP
    PubComp = 7,
    /// SUBSCRIBE
    Subscribe = 8,
    /// SUBACK
    SubAck = 9,
    /// UNSUBSCRIBE
    Unsubscribe = 10,
    /// UNSUBACK
    UnsubAck = 11,
    /// PINGREQ
    PingReq = 12,
    /// PINGRESP
    PingResp = 13,
    /// DISCONNECT
    Disconnect = 14,
    /// AUTH (MQTT 5)
    Auth = 15,
}

/// Why the bytes on the wire are not MQTT.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Packet type 0 is reserved.
    #[error("reserved packet type 0")]
    ReservedType,
    /// The remaining length uses more than four bytes.
    #[error("malformed remaining length")]
    MalformedLength,
    /// The packet is larger than the configured maximum.
    #[error("packet of {size} bytes exceeds the maximum packet size {max}")]
    TooLarge {
        /// Declared frame size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// Fixed-header flags that the spec fixes to other values.
    #[error("invalid fixed header flags {flags:#x} for {ptype:?}")]
    BadFlags {
        /// The packet type.
        ptype: PacketType,
        /// The low nibble.
        flags: u8,
    },
}

/// A complete packet's fixed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Packet type.
    pub ptype: PacketType,
    /// Low nibble of the first byte.
    pub flags: u8,
    /// Bytes after the fixed header.
    pub remaining: usize,
    /// Bytes of the fixed header (1 + length bytes).
    pub header_len: usize,
}

impl Header {
    /// Fixed header plus body.
    pub fn frame_len(&self) -> usize {
        self.header_len + self.remaining
    }
}

fn packet_type(b: u8) -> Result<PacketType, FrameError> {
    use PacketType::*;
    Ok(match b >> 4 {
        1 => Connect,
        2 => ConnAck,
        3 => Publish,
        4 => PubAck,
        5 => PubRec,
        6 => PubRel,
        7 => PubComp,
        8 => Subscribe,
        9 => SubAck,
        10 => Unsubscribe,
        11 => UnsubAck,
        12 => PingReq,
        13 => PingResp,
        14 => Disconnect,
        15 => Auth,
        _ => return Err(FrameError::ReservedType),
    })
}

/// Parses the fixed header at the start of `buf`.
/// `Ok(None)` means more bytes are needed to know.
pub fn parse_header(buf: &[u8], max_packet: usize) -> Result<Option<Header>, FrameError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let ptype = packet_type(first)?;
    let flags = first & 0x0f;
    check_flags(ptype, flags)?;
    let mut remaining: usize = 0;
    let mut shift = 0;
    for i in 1..=4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        remaining |= usize::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let header = Header {
                ptype,
                flags,
                remaining,
                header_len: 1 + i,
            };
            if header.frame_len() > max_packet {
                return Err(FrameError::TooLarge {
                    size: header.frame_len(),
                    max: max_packet,
                });
            }
            return Ok(Some(header));
        }
        shift += 7;
    }
    Err(FrameError::MalformedLength)
}

/// MQTT fixes the flags of every type but PUBLISH; PUBLISH must not claim QoS 3.
fn check_flags(ptype: PacketType, flags: u8) -> Result<(), FrameError> {
    use PacketType::*;
    let ok = match ptype {
        Publish => (flags >> 1) & 3 != 3,
        PubRel | Subscribe | Unsubscribe => flags == 0x2,
        _ => flags == 0,
    };
    if ok {
        Ok(())
    } else {
        Err(FrameError::BadFlags { ptype, flags })
    }
}

/// Splits one complete frame off the front of `buf`, if there is one.
pub fn take_frame(
    buf: &mut BytesMut,
    max_packet: usize,
) -> Result<Option<(Header, BytesMut)>, FrameError> {
    match parse_header(buf, max_packet)? {
        Some(h) if buf.len() >= h.frame_len() => {
            let frame = buf.split_to(h.frame_len());
            Ok(Some((h, frame)))
        }
        _ => Ok(None),
    }
}

/// Appends the variable-length encoding of `len`.
pub fn put_remaining_len(out: &mut BytesMut, mut len: usize) {
    loop {
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        out.extend_from_slice(&[byte]);
        if len == 0 {
            break;
        }
    }
}

/// Bytes the variable-length encoding of `len` takes.
pub fn remaining_len_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_frames_ask_for_more() {
        let mut b = BytesMut::from(&[0x30u8, 0x05, b'a'][..]);
        assert_eq!(take_frame(&mut b, 1024), Ok(None));
        b.extend_from_slice(&[1, 2, 3, 4]);
        let (h, f) = take_frame(&mut b, 1024).unwrap().unwrap();
        assert_eq!(h.ptype, PacketType::Publish);
        assert_eq!(f.len(), 7);
        assert!(b.is_empty());
    }

    #[test]
    fn oversize_is_rejected_from_the_header() {
        // 0xFF 0xFF 0xFF 0x7F = 268,435,455
        let b = [0x30u8, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(
            parse_header(&b, 1 << 20),
            Err(FrameError::TooLarge { .. })
        ));
        let bad = [0x30u8, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(
            parse_header(&bad, usize::MAX),
            Err(FrameError::MalformedLength)
        );
    }

    #[test]
    fn fixed_flags_are_checked() {
        assert!(parse_header(&[0x82, 0x00], 100).is_ok());
        assert!(parse_header(&[0x80, 0x00], 100).is_err());
        assert!(parse_header(&[0x36, 0x00], 100).is_err());
        assert!(parse_header(&[0x00, 0x00], 100).is_err());
    }

    #[test]
    fn remaining_length_round_trip() {
        for len in [
            0usize,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MQTT_MAX_REMAINING,
        ] {
            let mut b = BytesMut::new();
            b.extend_from_slice(&[0x30]);
            put_remaining_len(&mut b, len);
            assert_eq!(b.len() - 1, remaining_len_len(len));
            let h = parse_header(&b, usize::MAX).unwrap().unwrap();
            assert_eq!(h.remaining, len);
        }
    }
}
