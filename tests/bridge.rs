//! The store-and-forward bridge against a real Mosquitto central broker
//! configured like seed 000, driven in-process through `bridge::start` and
//! `Forwarder::offer`, observed by a subscriber at the central broker.

mod bridge_support;

use std::time::{Duration, Instant};

use bridge_support::edge::{Edge, OUT_RULE, World, indexes, next_matching};
use bridge_support::proxy::{Gate, Proxy};
use bridge_support::{Observer, WAIT, assert_ordered_complete, have_tools};
use edgemq::router::forward::{Durable, Forwarder};
use edgemq::router::message::{Message, Origin, QoS};

#[path = "bridge/links.rs"]
mod links;
#[path = "bridge/outages.rs"]
mod outages;
#[path = "bridge/queueing.rs"]
mod queueing;
