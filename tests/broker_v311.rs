//! The local broker speaking MQTT 3.1.1 (and 3.1) to real clients: rumqttc
//! v4 and raw sockets against the in-process server on an ephemeral port.

mod common;

use std::time::{Duration, Instant};

use common::raw::{self, Raw};
use common::{TestBroker, WAIT, v4, v4_opts};
use rumqttc::{LastWill, QoS, SubscribeReasonCode};

#[path = "broker_v311/support.rs"]
mod support;
use support::*;
#[path = "broker_v311/connect.rs"]
mod connect;
#[path = "broker_v311/delivery.rs"]
mod delivery;
#[path = "broker_v311/retained.rs"]
mod retained;
#[path = "broker_v311/sessions.rs"]
mod sessions;
