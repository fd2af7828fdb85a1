//! rumqttc v4 and v5 clients driven by a task, with helpers that wait
//! (bounded) for CONNACK, SUBACK, acknowledgements and PUBLISHes.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{QUIET, WAIT, free_port};

/// A rumqttc v4 client whose event loop runs in a task; incoming packets arrive on `rx`.
pub struct V4 {
    /// The client handle.
    pub client: rumqttc::AsyncClient,
    /// Incoming packets, in order.
    pub rx: mpsc::UnboundedReceiver<rumqttc::Packet>,
    /// The event loop task (ends at the first connection error).
    pub task: JoinHandle<Option<rumqttc::ConnectionError>>,
    /// Packets that arrived while [`V4::publish`] waited for its acknowledgement.
    stash: std::collections::VecDeque<rumqttc::Packet>,
}

/// Connects a v4 client and waits for its CONNACK.
pub async fn v4(opts: rumqttc::MqttOptions) -> V4 {
    let (client, mut el) = rumqttc::AsyncClient::new(opts, 1024);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return None;
                    }
                }
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    });
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(rumqttc::Packet::ConnAck(_))) => {}
        other => panic!("no CONNACK: {other:?}"),
    }
    V4 {
        client,
        rx,
        task,
        stash: Default::default(),
    }
}

/// Options for a v4 client on localhost.
pub fn v4_opts(id: &str, port: u16) -> rumqttc::MqttOptions {
    let mut o = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

impl V4 {
    /// Subscribes and waits for the SUBACK; returns its return codes.
    pub async fn subscribe(
        &mut self,
        filter: &str,
        qos: rumqttc::QoS,
    ) -> Vec<rumqttc::SubscribeReasonCode> {
        self.client.subscribe(filter, qos).await.unwrap();
        loop {
            match self.next().await {
                Some(rumqttc::Packet::SubAck(s)) => return s.return_codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Next incoming packet within [`WAIT`].
    pub async fn next(&mut self) -> Option<rumqttc::Packet> {
        if let Some(p) = self.stash.pop_front() {
            return Some(p);
        }
        tokio::time::timeout(WAIT, self.rx.recv()).await.ok()?
    }

    /// Next PUBLISH within `t`, skipping other packets.
    pub async fn publish_within(&mut self, t: Duration) -> Option<rumqttc::Publish> {
        while let Some(p) = self.stash.pop_front() {
            if let rumqttc::Packet::Publish(p) = p {
                return Some(p);
            }
        }
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(rumqttc::Packet::Publish(p))) => return Some(p),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Next PUBLISH within [`WAIT`], or panic.
    pub async fn expect_publish(&mut self) -> rumqttc::Publish {
        self.publish_within(WAIT).await.expect("no PUBLISH arrived")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_none(&mut self) {
        if let Some(p) = self.publish_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }

    /// Publishes and, for QoS ≥ 1, waits for the PUBACK / PUBCOMP.
    pub async fn publish(&mut self, topic: &str, qos: rumqttc::QoS, retain: bool, payload: &[u8]) {
        self.client
            .publish(topic, qos, retain, payload.to_vec())
            .await
            .unwrap();
        let want_ack = |p: &rumqttc::Packet| match qos {
            rumqttc::QoS::AtMostOnce => true,
            rumqttc::QoS::AtLeastOnce => matches!(p, rumqttc::Packet::PubAck(_)),
            rumqttc::QoS::ExactlyOnce => matches!(p, rumqttc::Packet::PubComp(_)),
        };
        if qos == rumqttc::QoS::AtMostOnce {
            return;
        }
        loop {
            let p = tokio::time::timeout(WAIT, self.rx.recv())
                .await
                .ok()
                .flatten()
                .expect("no acknowledgement");
            if want_ack(&p) {
                return;
            }
            self.stash.push_back(p);
        }
    }
}

/// A rumqttc v5 client whose event loop runs in a task.
pub struct V5 {
    /// The client handle.
    pub client: rumqttc::v5::AsyncClient,
    /// Incoming packets, in order (the CONNACK already consumed into `connack`).
    pub rx: mpsc::UnboundedReceiver<rumqttc::v5::mqttbytes::v5::Packet>,
    /// The CONNACK.
    pub connack: rumqttc::v5::mqttbytes::v5::ConnAck,
    /// The event loop task.
    pub task: JoinHandle<Option<rumqttc::v5::ConnectionError>>,
}

/// Options for a v5 client on localhost.
pub fn v5_opts(id: &str, port: u16) -> rumqttc::v5::MqttOptions {
    let mut o = rumqttc::v5::MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o
}

/// Connects a v5 client and waits for its CONNACK.
pub async fn v5(opts: rumqttc::v5::MqttOptions) -> V5 {
    use rumqttc::v5::mqttbytes::v5::Packet;
    let (client, mut el) = rumqttc::v5::AsyncClient::new(opts, 1024);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(rumqttc::v5::Event::Incoming(p)) => {
                    if tx.send(p).is_err() {
                        return None;
                    }
                }
                Ok(_) => {}
                Err(e) => return Some(e),
            }
        }
    });
    let connack = match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Packet::ConnAck(c))) => c,
        other => panic!("no CONNACK: {other:?}"),
    };
    V5 {
        client,
        rx,
        connack,
        task,
    }
}

impl V5 {
    /// Next incoming packet within [`WAIT`].
    pub async fn next(&mut self) -> Option<rumqttc::v5::mqttbytes::v5::Packet> {
        tokio::time::timeout(WAIT, self.rx.recv()).await.ok()?
    }

    /// Waits for the next SUBACK, returning its reason codes.
    pub async fn suback(&mut self) -> Vec<rumqttc::v5::mqttbytes::v5::SubscribeReasonCode> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        loop {
            match self.next().await {
                Some(Packet::SubAck(s)) => return s.return_codes,
                Some(_) => continue,
                None => panic!("no SUBACK"),
            }
        }
    }

    /// Next PUBLISH within `t`.
    pub async fn publish_within(
        &mut self,
        t: Duration,
    ) -> Option<rumqttc::v5::mqttbytes::v5::Publish> {
        use rumqttc::v5::mqttbytes::v5::Packet;
        let deadline = tokio::time::Instant::now() + t;
        loop {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(Packet::Publish(p))) => return Some(p),
                Ok(Some(_)) => continue,
                _ => return None,
            }
        }
    }

    /// Next PUBLISH within [`WAIT`], or panic.
    pub async fn expect_publish(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        self.publish_within(WAIT).await.expect("no PUBLISH arrived")
    }

    /// Asserts that no PUBLISH arrives within [`QUIET`].
    pub async fn expect_none(&mut self) {
        if let Some(p) = self.publish_within(QUIET).await {
            panic!("unexpected PUBLISH {p:?}");
        }
    }
}

/// Reads a retained `$SYS/broker/...` value through a fresh subscriber.
pub async fn sys_value(port: u16, topic: &str) -> String {
    sys_until(port, topic, |_| true).await
}

/// Waits (a few sys_intervals at most) for a `$SYS` value that satisfies `ok`.
pub async fn sys_until(port: u16, topic: &str, ok: impl Fn(&str) -> bool) -> String {
    let mut c = v4(v4_opts(&format!("sys-{}", free_port()), port)).await;
    c.subscribe(topic, rumqttc::QoS::AtMostOnce).await;
    let mut seen = Vec::new();
    while let Some(p) = c.publish_within(WAIT).await {
        let v = String::from_utf8(p.payload.to_vec()).unwrap();
        if ok(&v) {
            return v;
        }
        seen.push(v);
    }
    panic!("{topic}: no acceptable value within {WAIT:?}; saw {seen:?}");
}
