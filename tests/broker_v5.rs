//! The local broker speaking MQTT 5: reason codes, properties, session and
//! message expiry, topic aliases, receive maximum, maximum packet size,
//! subscription options, shared subscriptions, will delay. rumqttc v5 where
//! a real client fits, raw sockets where the test needs exact bytes.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::raw::{self, Raw, p_u16, p_u32, p_var};
use common::{QUIET, TestBroker, V5, WAIT, v5, v5_opts};
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::mqttbytes::v5::{Packet, Publish, PublishProperties, SubscribeReasonCode};

#[path = "broker_v5/support.rs"]
mod support;
use support::*;
#[path = "broker_v5/flow.rs"]
mod flow;
#[path = "broker_v5/options.rs"]
mod options;
#[path = "broker_v5/properties.rs"]
mod properties;
#[path = "broker_v5/sessions.rs"]
mod sessions;
