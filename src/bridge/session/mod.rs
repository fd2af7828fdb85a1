//! One connected session with the central broker: drains the queue into
//! PUBLISHes within the inflight window and the replay pace, acks queue
//! records only on PUBACK / PUBCOMP, answers inbound PUBLISHes, and keeps the
//! link honest with PINGREQ and a dead-link deadline of 1.5× keepalive.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

mod outbound;

use super::codec::{self, Incoming, OutPublish, Outgoing, Verdict};
use super::connect::Link;
use super::inflight::{Inflight, Pending, Stage};
use super::keepalive::{Due, Keepalive};
use super::pace::Pace;
use super::rules::Rules;
use super::status::Counters;
use super::{inbound, notify};
use crate::queue::{Queue, Record};
use crate::router::message::{Message, Props, QoS};

/// Writes to a link with no keepalive must still finish within this.
const WRITE_TIMEOUT_NO_KEEPALIVE: Duration = Duration::from_secs(60);
/// Time given to the goodbye (state "0" and DISCONNECT) at shutdown.
const GOODBYE_TIMEOUT: Duration = Duration::from_secs(2);
/// Timer horizon when nothing is due.
const IDLE_HORIZON: Duration = Duration::from_secs(3600);

/// Everything a session needs that outlives it.
pub struct Shared {
    /// Bridge name.
    pub name: Arc<str>,
    /// The durable outbound queue.
    pub queue: Arc<Queue>,
    /// Topic rules.
    pub rules: Arc<Rules>,
    /// Figures for status.
    pub counters: Arc<Counters>,
    /// Inbound messages to the local router.
    pub inbound: mpsc::Sender<Message>,
    /// Remote state topic, when notifications are on.
    pub state_topic: Option<String>,
    /// Add the message id user property (MQTT 5).
    pub message_id_property: bool,
}

/// State that survives reconnects.
pub struct Carry {
    /// Packet ids in flight (kept when the broker keeps our session).
    pub inflight: Inflight,
    /// Highest queue sequence ever sent: anything at or below it sent again is a duplicate.
    pub max_sent_seq: Option<u64>,
    /// replay_rate limiter.
    pub pace: Pace,
    /// Inbound QoS 2 packet ids delivered, awaiting PUBREL (kept with the session).
    pub inbound_qos2: HashSet<u16>,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// Shutdown was requested.
    Shutdown,
    /// Time to try the first address again.
    Failback,
    /// The link failed, with the reason.
    Lost(String),
}

/// A connected session.
pub struct Session<'a> {
    link: Link,
    shared: &'a Shared,
    carry: &'a mut Carry,
    window: usize,
    keepalive: Keepalive,
    acks_after_write: Vec<u64>,
    /// Records taken from the queue but not sent yet: a QoS 2 one while
    /// QOS2_INFLIGHT_MAX are in flight, and every record after it (order is
    /// kept). At most a window's worth; a new session gets them again from
    /// the queue's rewind.
    held: VecDeque<(u64, Record)>,
}

impl<'a> Session<'a> {
    /// A session over `link`, with the window the broker allows.
    pub fn new(
        link: Link,
        shared: &'a Shared,
        carry: &'a mut Carry,
        window: usize,
        keepalive: Duration,
    ) -> Session<'a> {
        Session {
            link,
            shared,
            carry,
            window: window.max(1),
            keepalive: Keepalive::new(keepalive),
            acks_after_write: Vec::new(),
            held: VecDeque::new(),
        }
    }

    /// Subscribes to the inbound filters, publishes the remote "1" state and
    /// re-sends what a kept session still has in flight.
    pub async fn open(&mut self, kept: Vec<(u16, Pending)>) -> Result<(), End> {
        let filters = self.shared.rules.subscriptions();
        if !filters.is_empty() {
            let pending = Pending::control(Stage::SubAck);
            if let Some(pkid) = self.carry.inflight.insert(pending) {
                self.encode(&Outgoing::Subscribe(pkid, &filters))?;
            }
        }
        if let Some(topic) = self.shared.state_topic.clone() {
            self.publish_state(&topic, true)?;
        }
        self.resume(kept)?;
        self.flush().await
    }

    fn publish_state(&mut self, topic: &str, up: bool) -> Result<(), End> {
        // "1" is acknowledged so it survives; "0" at goodbye cannot wait for an ack.
        let pending = Pending::control(Stage::PubAck);
        let pkid = if up {
            self.carry.inflight.insert(pending)
        } else {
            None
        };
        let props = Props::default();
        let payload = if up { notify::ONLINE } else { notify::OFFLINE };
        self.encode(&Outgoing::Publish(OutPublish {
            topic,
            payload: Bytes::from_static(payload),
            qos: if pkid.is_some() {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            },
            retain: true,
            dup: false,
            pkid: pkid.unwrap_or(0),
            props: &props,
            expiry: None,
            msg_id: None,
        }))
    }

    /// Runs until the link fails, shutdown, or failback time.
    pub async fn run(mut self, shutdown: &CancellationToken, failback_at: Option<Instant>) -> End {
        let failback = failback_at.unwrap_or_else(|| Instant::now() + IDLE_HORIZON);
        loop {
            if let Err(end) = self.release_held().await {
                return end;
            }
            let free = self.free_slots();
            // With messages in flight, wait for half the window before refilling: acks come
            // back one by one, and refilling after each would cost a write per message.
            let refill_at = (self.window / 2).max(1);
            let batch_ready = free >= refill_at || self.carry.inflight.is_empty();
            let can_pull = free > 0 && batch_ready && self.carry.pace.available(1) > 0;
            let timer = self.next_timer(free > 0);
            let step = tokio::select! {
                _ = shutdown.cancelled() => {
                    self.goodbye().await;
                    return End::Shutdown;
                }
                _ = sleep_until(failback), if failback_at.is_some() => {
                    self.goodbye().await;
                    return End::Failback;
                }
                read = self.link.stream.read_buf(&mut self.link.rbuf) => self.on_read(read).await,
                _ = self.shared.queue.wait_nonempty(), if can_pull => self.pull(free).await,
                _ = sleep_until(timer) => self.tick().await,
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    fn next_timer(&mut self, window_open: bool) -> Instant {
        let mut at = Instant::now() + IDLE_HORIZON;
        if let Some(deadline) = self.keepalive.next_deadline() {
            at = at.min(deadline);
        }
        if window_open {
            if let Some(token) = self.carry.pace.next_token_at() {
                at = at.min(token);
            }
        }
        at
    }

    async fn tick(&mut self) -> Result<(), End> {
        match self.keepalive.due(Instant::now()) {
            Due::Nothing => Ok(()),
            Due::Dead(silent) => Err(End::Lost(format!(
                "nothing from the central broker for {silent:?} (keepalive {:?}): link is dead",
                self.keepalive.period().unwrap_or_default()
            ))),
            Due::Ping => {
                self.encode(&Outgoing::PingReq)?;
                self.keepalive.pinged();
                self.flush().await
            }
        }
    }

    async fn on_read(&mut self, read: std::io::Result<usize>) -> Result<(), End> {
        match read {
            Ok(0) => return Err(End::Lost("connection closed by the central broker".into())),
            Ok(_) => self.keepalive.received(),
            Err(e) => return Err(End::Lost(crate::tls::describe_io_error(&e))),
        }
        loop {
            match codec::decode(self.link.version, &mut self.link.rbuf) {
                Ok(Some(packet)) => self.on_packet(packet).await?,
                Ok(None) => break,
                Err(e) => {
                    return Err(End::Lost(format!(
                        "bad packet from the central broker: {e}"
                    )));
                }
            }
        }
        self.flush().await
    }

    async fn on_packet(&mut self, packet: Incoming) -> Result<(), End> {
        match packet {
            Incoming::PubAck(_, Verdict::QuotaExceeded)
            | Incoming::PubRec(_, Verdict::QuotaExceeded) => {
                // Not taken: reconnecting re-sends it from the queue.
                return Err(End::Lost(
                    "central broker quota exceeded (receive maximum)".into(),
                ));
            }
            Incoming::PubAck(pkid, Verdict::Refused(reason))
            | Incoming::PubRec(pkid, Verdict::Refused(reason)) => {
                self.completed(pkid, Some(reason))
            }
            Incoming::PubAck(pkid, Verdict::Accepted) => self.completed(pkid, None),
            Incoming::PubRec(pkid, Verdict::Accepted) => {
                // A repeated PUBREC for an id already released gets its PUBREL again.
                if self.carry.inflight.released(pkid)
                    || self.carry.inflight.stage(pkid) == Some(Stage::PubComp)
                {
                    self.encode(&Outgoing::PubRel(pkid))?;
                }
            }
            Incoming::PubComp(pkid) => self.completed(pkid, None),
            Incoming::PubRel(pkid) => {
                self.carry.inbound_qos2.remove(&pkid);
                self.encode(&Outgoing::PubComp(pkid))?;
            }
            Incoming::Publish {
                topic,
                payload,
                qos,
                retain,
                pkid,
                props,
            } => {
                self.inbound_publish(topic, payload, qos, retain, pkid, props)
                    .await?
            }
            Incoming::SubAck(pkid, failed) => {
                self.carry.inflight.complete(pkid);
                if failed > 0 {
                    tracing::warn!(
                        failed,
                        "central broker refused inbound subscriptions (check its ACL)"
                    );
                }
            }
            Incoming::PingResp => self.keepalive.pong(),
            Incoming::Disconnect(reason) => {
                return Err(End::Lost(format!(
                    "central broker sent DISCONNECT: {reason}"
                )));
            }
            Incoming::ConnAck { .. } => {
                return Err(End::Lost("protocol error: a second CONNACK".into()));
            }
            Incoming::Unexpected(name) => {
                return Err(End::Lost(format!(
                    "protocol error: the central broker sent an unexpected {name}"
                )));
            }
        }
        Ok(())
    }

    /// A PUBLISH from the central broker: delivered locally (a QoS 2 one once), then
    /// acknowledged.
    async fn inbound_publish(
        &mut self,
        topic: String,
        payload: Bytes,
        qos: QoS,
        retain: bool,
        pkid: u16,
        props: Props,
    ) -> Result<(), End> {
        let fresh = qos != QoS::ExactlyOnce || self.carry.inbound_qos2.insert(pkid);
        if fresh {
            inbound::deliver(self.shared, &topic, payload, qos, retain, props).await;
        }
        match qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.encode(&Outgoing::PubAck(pkid))?,
            QoS::ExactlyOnce => self.encode(&Outgoing::PubRec(pkid))?,
        }
        Ok(())
    }

    fn encode(&mut self, packet: &Outgoing) -> Result<(), End> {
        codec::encode(self.link.version, packet, &mut self.link.wbuf)
            .map_err(|e| End::Lost(format!("cannot encode a packet: {e}")))
    }

    /// Writes what is buffered; a write that stalls past the dead-link
    /// deadline means the link is dead (a full send buffer on a silent link).
    async fn flush(&mut self) -> Result<(), End> {
        if self.link.wbuf.is_empty() {
            return Ok(());
        }
        let limit = self
            .keepalive
            .period()
            .map_or(WRITE_TIMEOUT_NO_KEEPALIVE, |k| k * 3 / 2);
        let link = &mut self.link;
        let write = async {
            link.stream.write_all(&link.wbuf).await?;
            link.stream.flush().await
        };
        match timeout(limit, write).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(End::Lost(crate::tls::describe_io_error(&e))),
            Err(_) => {
                return Err(End::Lost(format!(
                    "write stalled for {limit:?}: link is dead"
                )));
            }
        }
        self.link.wbuf.clear();
        self.keepalive.sent();
        // QoS 0 records are done once written.
        let written = self.acks_after_write.len() as u64;
        for seq in self.acks_after_write.drain(..) {
            self.shared.queue.ack(seq);
        }
        self.shared.counters.acked(written);
        Ok(())
    }

    async fn goodbye(&mut self) {
        if let Some(topic) = self.shared.state_topic.clone() {
            let _ = self.publish_state(&topic, false);
        }
        let _ = self.encode(&Outgoing::Disconnect);
        let _ = timeout(GOODBYE_TIMEOUT, self.flush()).await;
        let _ = timeout(GOODBYE_TIMEOUT, self.link.stream.shutdown()).await;
    }
}
