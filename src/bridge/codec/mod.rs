//! MQTT framing for the uplink: protocol-neutral packets translated to and
//! from rumqttc's MQTT 3.1.1 (`mqttbytes::v4`) and 5.0 (`v5::mqttbytes::v5`)
//! codecs over a `BytesMut`, so the uplink state machine is written once.

mod v311;
mod v5;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes as m4;
use rumqttc::v5::mqttbytes as m5;

use crate::config::model::Secret;
use crate::router::message::{Props, QoS};

/// Largest packet accepted from the central broker.
pub const MAX_INBOUND_PACKET: usize = 1 << 20;

/// The MQTT version spoken on the uplink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// MQTT 3.1.1
    V311,
    /// MQTT 5.0
    V5,
}

/// Why a packet could not be framed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// MQTT 3.1.1 codec error.
    #[error("MQTT 3.1.1 packet: {0}")]
    V4(#[from] m4::Error),
    /// MQTT 5 codec error.
    #[error("MQTT 5 packet: {0}")]
    V5(#[from] m5::Error),
    /// CONNECT came out in an unexpected layout.
    #[error("cannot set the bridge bit in CONNECT")]
    BridgeBit,
}

/// What we put in CONNECT.
#[derive(Debug, Clone)]
pub struct ConnectSpec {
    /// Client id at the central broker.
    pub client_id: String,
    /// Keepalive in seconds (0: none).
    pub keepalive: u16,
    /// Clean session (3.1.1) / clean start (5).
    pub clean: bool,
    /// Username.
    pub username: Option<String>,
    /// Password (never logged).
    pub password: Option<Secret>,
    /// Retained QoS 1 will: topic and payload.
    pub will: Option<(String, Bytes)>,
    /// 3.1.1: mark the connection as a bridge (protocol level 0x84).
    pub bridge_bit: bool,
    /// 5: session expiry in seconds when not clean.
    pub session_expiry: Option<u32>,
}

/// One outgoing PUBLISH.
#[derive(Debug, Clone)]
pub struct OutPublish<'a> {
    /// Topic at the central broker.
    pub topic: &'a str,
    /// Payload.
    pub payload: Bytes,
    /// QoS on the uplink.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
    /// Re-delivery of a packet id the broker may have seen.
    pub dup: bool,
    /// Packet id (0 for QoS 0).
    pub pkid: u16,
    /// MQTT 5 properties to carry.
    pub props: &'a Props,
    /// MQTT 5 remaining expiry interval in seconds.
    pub expiry: Option<u32>,
    /// MQTT 5 stable message id user property.
    pub msg_id: Option<(&'static str, String)>,
}

/// A packet we send.
#[derive(Debug, Clone)]
pub enum Outgoing<'a> {
    /// CONNECT.
    Connect(&'a ConnectSpec),
    /// PUBLISH.
    Publish(OutPublish<'a>),
    /// PUBACK for an inbound QoS 1 publish.
    PubAck(u16),
    /// PUBREC for an inbound QoS 2 publish.
    PubRec(u16),
    /// PUBREL after the broker's PUBREC.
    PubRel(u16),
    /// PUBCOMP after the broker's PUBREL.
    PubComp(u16),
    /// SUBSCRIBE to the inbound filters (no-local on MQTT 5).
    Subscribe(u16, &'a [(String, QoS)]),
    /// PINGREQ.
    PingReq,
    /// DISCONNECT (normal).
    Disconnect,
}

/// The broker's answer to one of our PUBLISHes (MQTT 5 reason codes; 3.1.1 always accepts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Taken (including "no matching subscribers").
    Accepted,
    /// Over the broker's receive quota: not taken, send it again later.
    QuotaExceeded,
    /// Refused for good (not authorized, invalid topic, ...), with the reason.
    Refused(String),
}

/// A packet we received, reduced to what the uplink needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// CONNACK: `refused` names the reason when the broker refused us.
    ConnAck {
        /// The broker kept our session.
        session_present: bool,
        /// Refusal reason, None on success.
        refused: Option<String>,
        /// MQTT 5 receive maximum of the broker.
        receive_max: Option<u16>,
    },
    /// PUBLISH from the central broker.
    Publish {
        /// Topic at the central broker.
        topic: String,
        /// Payload.
        payload: Bytes,
        /// QoS.
        qos: QoS,
        /// Retain flag.
        retain: bool,
        /// Packet id.
        pkid: u16,
        /// MQTT 5 properties.
        props: Props,
    },
    /// PUBACK, with what the broker did with the message.
    PubAck(u16, Verdict),
    /// PUBREC, with what the broker did with the message.
    PubRec(u16, Verdict),
    /// PUBREL.
    PubRel(u16),
    /// PUBCOMP.
    PubComp(u16),
    /// SUBACK with the number of refused filters.
    SubAck(u16, usize),
    /// PINGRESP.
    PingResp,
    /// DISCONNECT from the broker, with its reason.
    Disconnect(String),
    /// A packet a client never expects (CONNECT, SUBSCRIBE, ...).
    Unexpected(&'static str),
}

/// Appends the wire form of `packet` to `buf`.
pub fn encode(version: Version, packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
    match version {
        Version::V311 => v311::encode(packet, buf),
        Version::V5 => v5::encode(packet, buf),
    }
}

/// Takes one packet off the front of `buf`; None when it holds only part of one.
pub fn decode(version: Version, buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
    match version {
        Version::V311 => v311::decode(buf),
        Version::V5 => v5::decode(buf),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ConnectSpec {
        ConnectSpec {
            client_id: "GW-0001".into(),
            keepalive: 30,
            clean: false,
            username: Some("u".into()),
            password: Some(Secret("p".into())),
            will: Some(("s/state".into(), Bytes::from_static(b"0"))),
            bridge_bit: true,
            session_expiry: None,
        }
    }

    #[test]
    fn connect_carries_the_bridge_bit() {
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&spec()), &mut buf).unwrap();
        assert_eq!(&buf[2..9], &[0, 4, b'M', b'Q', b'T', b'T', 0x84]);
        let mut plain = spec();
        plain.bridge_bit = false;
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&plain), &mut buf).unwrap();
        assert_eq!(buf[8], 4);
    }

    #[test]
    fn bridge_bit_with_a_long_remaining_length() {
        let mut s = spec();
        s.will = Some(("t".into(), Bytes::from(vec![b'x'; 300])));
        let mut buf = BytesMut::new();
        encode(Version::V311, &Outgoing::Connect(&s), &mut buf).unwrap();
        assert_eq!(&buf[3..10], &[0, 4, b'M', b'Q', b'T', b'T', 0x84]);
    }

    #[test]
    fn partial_frames_are_read_more_not_errors() {
        let props = Props::default();
        for version in [Version::V311, Version::V5] {
            let mut buf = BytesMut::new();
            let publish = OutPublish {
                topic: "a/b",
                payload: Bytes::from_static(b"hello"),
                qos: QoS::AtLeastOnce,
                retain: false,
                dup: false,
                pkid: 7,
                props: &props,
                expiry: None,
                msg_id: None,
            };
            encode(version, &Outgoing::Publish(publish), &mut buf).unwrap();
            let full = buf.clone();
            for cut in 0..full.len() {
                let mut part = BytesMut::from(&full[..cut]);
                assert!(decode(version, &mut part).unwrap().is_none(), "cut {cut}");
            }
            let got = decode(version, &mut buf).unwrap().unwrap();
            match got {
                Incoming::Publish {
                    topic, pkid, qos, ..
                } => {
                    assert_eq!((topic.as_str(), pkid, qos), ("a/b", 7, QoS::AtLeastOnce))
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn oversized_inbound_packet_is_an_error() {
        let mut buf = BytesMut::from(&[0x30u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(decode(Version::V311, &mut buf).is_err());
    }
}
