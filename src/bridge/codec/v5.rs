//! MQTT 5 side of the uplink codec: neutral packets to and from rumqttc's
//! `v5::mqttbytes::v5`, with properties, reason codes and no-local subscriptions.

use bytes::{Bytes, BytesMut};
use rumqttc::v5::mqttbytes::{self as m5, v5};

use super::{CodecError, ConnectSpec, Incoming, MAX_INBOUND_PACKET, OutPublish, Outgoing, Verdict};
use crate::clock::now_ms;
use crate::router::message::{Props, QoS};

fn qos5(q: QoS) -> m5::QoS {
    match q {
        QoS::AtMostOnce => m5::QoS::AtMostOnce,
        QoS::AtLeastOnce => m5::QoS::AtLeastOnce,
        QoS::ExactlyOnce => m5::QoS::ExactlyOnce,
    }
}

pub(super) fn encode(packet: &Outgoing, buf: &mut BytesMut) -> Result<(), CodecError> {
    let p = match packet {
        Outgoing::Connect(spec) => connect_v5(spec),
        Outgoing::Publish(p) => v5::Packet::Publish(v5::Publish {
            dup: p.dup,
            qos: qos5(p.qos),
            retain: p.retain,
            topic: Bytes::copy_from_slice(p.topic.as_bytes()),
            pkid: p.pkid,
            payload: p.payload.clone(),
            properties: publish_props(p),
        }),
        Outgoing::PubAck(id) => v5::Packet::PubAck(v5::PubAck::new(*id, None)),
        Outgoing::PubRec(id) => v5::Packet::PubRec(v5::PubRec::new(*id, None)),
        Outgoing::PubRel(id) => v5::Packet::PubRel(v5::PubRel::new(*id, None)),
        Outgoing::PubComp(id) => v5::Packet::PubComp(v5::PubComp::new(*id, None)),
        Outgoing::Subscribe(id, filters) => {
            let filters = filters.iter().map(|(f, q)| v5::Filter {
                path: f.clone(),
                qos: qos5(*q),
                // Loop prevention: the broker must not echo what we publish.
                nolocal: true,
                preserve_retain: true,
                retain_forward_rule: v5::RetainForwardRule::OnEverySubscribe,
            });
            let mut s = v5::Subscribe::new_many(filters, None);
            s.pkid = *id;
            v5::Packet::Subscribe(s)
        }
        Outgoing::PingReq => v5::Packet::PingReq(v5::PingReq),
        Outgoing::Disconnect => v5::Packet::Disconnect(v5::Disconnect::new(
            v5::DisconnectReasonCode::NormalDisconnection,
        )),
    };
    p.write(buf, None)?;
    Ok(())
}

fn connect_v5(spec: &ConnectSpec) -> v5::Packet {
    let mut props = v5::ConnectProperties::new();
    props.session_expiry_interval = spec.session_expiry;
    let connect = v5::Connect {
        keep_alive: spec.keepalive,
        client_id: spec.client_id.clone(),
        clean_start: spec.clean,
        properties: Some(props),
    };
    let will = spec
        .will
        .as_ref()
        .map(|(t, p)| v5::LastWill::new(t.clone(), p.to_vec(), m5::QoS::AtLeastOnce, true, None));
    let login = (spec.username.is_some() || spec.password.is_some()).then(|| {
        v5::Login::new(
            spec.username.clone().unwrap_or_default(),
            spec.password.as_ref().map_or("", |p| p.expose()),
        )
    });
    v5::Packet::Connect(connect, will, login)
}

fn publish_props(p: &OutPublish) -> Option<v5::PublishProperties> {
    let mut user_properties = p.props.user_properties.clone();
    if let Some((k, v)) = &p.msg_id {
        user_properties.push((k.to_string(), v.clone()));
    }
    let props = v5::PublishProperties {
        payload_format_indicator: p.props.payload_format_indicator,
        message_expiry_interval: p.expiry,
        topic_alias: None,
        response_topic: p.props.response_topic.clone(),
        correlation_data: p.props.correlation_data.clone(),
        user_properties,
        subscription_identifiers: vec![],
        content_type: p.props.content_type.clone(),
    };
    Some(props)
}

fn qos_of5(q: m5::QoS) -> QoS {
    QoS::from_u8(q as u8).unwrap_or(QoS::AtMostOnce)
}

fn decoded(p: v5::Packet) -> Incoming {
    match p {
        v5::Packet::ConnAck(a) => Incoming::ConnAck {
            session_present: a.session_present,
            refused: (a.code != v5::ConnectReturnCode::Success).then(|| format!("{:?}", a.code)),
            receive_max: a.properties.and_then(|p| p.receive_max),
        },
        v5::Packet::Publish(p) => inbound_v5(p),
        v5::Packet::PubAck(a) => {
            use v5::PubAckReason as R;
            let verdict = match a.reason {
                R::Success | R::NoMatchingSubscribers => Verdict::Accepted,
                R::QuotaExceeded => Verdict::QuotaExceeded,
                other => Verdict::Refused(format!("{other:?}")),
            };
            Incoming::PubAck(a.pkid, verdict)
        }
        v5::Packet::PubRec(a) => {
            use v5::PubRecReason as R;
            let verdict = match a.reason {
                R::Success | R::NoMatchingSubscribers => Verdict::Accepted,
                R::QuotaExceeded => Verdict::QuotaExceeded,
                other => Verdict::Refused(format!("{other:?}")),
            };
            Incoming::PubRec(a.pkid, verdict)
        }
        v5::Packet::PubRel(a) => Incoming::PubRel(a.pkid),
        v5::Packet::PubComp(a) => Incoming::PubComp(a.pkid),
        v5::Packet::SubAck(a) => {
            let failed = a
                .return_codes
                .iter()
                .filter(|c| !matches!(c, v5::SubscribeReasonCode::Success(_)))
                .count();
            Incoming::SubAck(a.pkid, failed)
        }
        v5::Packet::PingResp(_) => Incoming::PingResp,
        v5::Packet::Disconnect(d) => Incoming::Disconnect(format!("{:?}", d.reason_code)),
        v5::Packet::UnsubAck(_) => Incoming::Unexpected("UNSUBACK"),
        v5::Packet::Auth(_) => Incoming::Unexpected("AUTH"),
        v5::Packet::Connect(..) => Incoming::Unexpected("CONNECT"),
        v5::Packet::Subscribe(_) => Incoming::Unexpected("SUBSCRIBE"),
        v5::Packet::Unsubscribe(_) => Incoming::Unexpected("UNSUBSCRIBE"),
        v5::Packet::PingReq(_) => Incoming::Unexpected("PINGREQ"),
    }
}

fn inbound_v5(p: v5::Publish) -> Incoming {
    let mut props = Props::default();
    if let Some(pp) = p.properties {
        props.payload_format_indicator = pp.payload_format_indicator;
        props.expires_at_ms = pp
            .message_expiry_interval
            .map(|s| now_ms() + u64::from(s) * 1000);
        props.content_type = pp.content_type;
        props.response_topic = pp.response_topic;
        props.correlation_data = pp.correlation_data;
        props.user_properties = pp.user_properties;
    }
    Incoming::Publish {
        topic: String::from_utf8_lossy(&p.topic).into_owned(),
        payload: p.payload,
        qos: qos_of5(p.qos),
        retain: p.retain,
        pkid: p.pkid,
        props,
    }
}

/// Takes one packet off the front of `buf`; None when it holds only part of one.
pub(super) fn decode(buf: &mut BytesMut) -> Result<Option<Incoming>, CodecError> {
    match v5::Packet::read(buf, Some(MAX_INBOUND_PACKET as u32)) {
        Ok(p) => Ok(Some(decoded(p))),
        Err(m5::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
