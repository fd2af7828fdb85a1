//! One connected client after a successful CONNECT: the loop that reads its
//! packets, sends its queued messages within the inflight window (`outbound.rs`), answers
//! acknowledgements once the message is durable, enforces keepalive, and on
//! the way out publishes the will and settles the session.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connect::Accepted;
use super::connection::{Connection, ReadError};
use super::encode::{self, reason};
use super::frame::{FrameError, Header};
use super::packets::{Version, WillIn};
use super::pending::PendingAcks;
use super::session::{Delivery, Session};
use super::stats::Stats;
use super::{Broker, ListenerCtx, persist, will};
use crate::router::forward::ForwardError;
use crate::router::message::QoS;

/// A client that does not take our bytes for this long is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for the final DISCONNECT and close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why the client loop ended.
#[derive(Debug)]
pub enum End {
    /// DISCONNECT with reason 0: no will.
    Normal,
    /// MQTT 5 DISCONNECT 0x04: publish the will.
    WithWill,
    /// The socket closed without DISCONNECT.
    Closed,
    /// Keepalive expired.
    KeepAlive,
    /// Another connection took the session over.
    Takeover,
    /// The broker is shutting down.
    Shutdown,
    /// A protocol violation or I/O failure, with the reason.
    Error(String),
}

/// A connected client.
pub struct Client {
    pub(super) conn: Connection,
    pub(super) broker: Arc<Broker>,
    pub(super) ctx: Arc<ListenerCtx>,
    pub(super) session: Arc<Session>,
    pub(super) version: Version,
    /// Connected with a bridge-flagged protocol level (0x80 | level).
    pub(super) bridge: bool,
    pub(super) client_id: Arc<str>,
    pub(super) username: Option<String>,
    pub(super) generation: u64,
    pub(super) kick: CancellationToken,
    pub(super) keep_alive: Duration,
    pub(super) will: Option<WillIn>,
    pub(super) connect_expiry: u32,
    pub(super) inflight_max: usize,
    pub(super) client_max_packet: usize,
    pub(super) pending: PendingAcks,
    pub(super) aliases_in: HashMap<u16, String>,
    pub(super) aliases_out: HashMap<Arc<str>, u16>,
    pub(super) alias_out_max: u16,
    /// Reused between fills: the deliveries of one batch.
    pub(super) batch: Vec<(u16, Delivery)>,
    /// A write was abandoned (takeover/shutdown) while the client was not reading.
    stalled: bool,
}

/// Serves a client until it goes away; settles its session afterwards.
pub async fn run(conn: Connection, broker: Arc<Broker>, ctx: Arc<ListenerCtx>, acc: Accepted) {
    let c = acc.connect;
    let mut client = Client {
        conn,
        broker: broker.clone(),
        ctx,
        session: acc.session,
        version: c.version,
        bridge: c.bridge,
        client_id: Arc::from(c.client_id.as_str()),
        username: acc.username,
        generation: acc.generation,
        kick: acc.kick,
        keep_alive: Duration::from_millis(u64::from(acc.keep_alive) * 1500),
        will: c.will,
        connect_expiry: c.session_expiry,
        inflight_max: usize::from(broker.limits.max_inflight.min(c.receive_maximum).max(1)),
        client_max_packet: c.max_packet_size.map_or(usize::MAX, |m| m as usize),
        pending: PendingAcks::default(),
        aliases_in: HashMap::new(),
        aliases_out: HashMap::new(),
        alias_out_max: c.topic_alias_max,
        batch: Vec::new(),
        stalled: false,
    };
    broker.stats.connected();
    tracing::info!(version = ?client.version, present = acc.session_present, keepalive = acc.keep_alive, "client connected");
    client.resend_inflight();
    let end = client.serve().await;
    client.finish(end).await;
    broker.stats.disconnected();
}

impl Client {
    async fn serve(&mut self) -> End {
        let mut deadline = Instant::now() + self.keep_alive;
        let mut paused = false;
        loop {
            if let Some(end) = self.ack_ready() {
                return end;
            }
            self.fill();
            if let Some(end) = self.flush_out().await {
                return end;
            }
            // `fill` stops after a batch; if more is sendable now, loop again
            // rather than wait for a wake-up that may never come (one
            // Notify permit covers any number of enqueues).
            let (room, more) = self.sendable();
            // Too many publishes awaiting their acks: stop reading (backpressure).
            // The client's silence is then ours: keepalive restarts once we read again.
            let reading = !self.pending.is_full();
            if reading && std::mem::take(&mut paused) {
                deadline = Instant::now() + self.keep_alive;
            }
            paused |= !reading;
            tokio::select! {
                biased;
                _ = self.kick.cancelled() => return End::Takeover,
                _ = self.broker.shutdown.cancelled() => return End::Shutdown,
                r = self.pending.wait_front(), if !self.pending.is_empty() => {
                    if let Some(end) = self.ack_front(r) { return end; }
                }
                f = self.conn.read_frame(), if reading => match f {
                    Ok(Some((h, bytes))) => {
                        deadline = Instant::now() + self.keep_alive;
                        if let Some(end) = self.handle_buffered(h, bytes) { return end; }
                    }
                    Ok(None) => return End::Closed,
                    Err(e) => {
                        let code = match e {
                            ReadError::Frame(FrameError::TooLarge { .. }) => reason::PACKET_TOO_LARGE,
                            _ => reason::MALFORMED,
                        };
                        return self.violation(code, e.to_string());
                    }
                },
                _ = tokio::time::sleep_until(deadline), if reading && !self.keep_alive.is_zero() => return End::KeepAlive,
                _ = std::future::ready(()), if more => {}
                _ = self.session.wake.notified(), if room => {}
            }
        }
    }

    /// Writes what `fill` queued. A client that stopped reading (half-open TCP) must not delay
    /// its own takeover or the shutdown until the write times out.
    async fn flush_out(&mut self) -> Option<End> {
        if self.conn.pending() == 0 {
            return None;
        }
        let flushed = tokio::select! {
            biased;
            _ = self.kick.cancelled() => {
                self.stalled = true;
                return Some(End::Takeover);
            }
            _ = self.broker.shutdown.cancelled() => {
                self.stalled = true;
                return Some(End::Shutdown);
            }
            r = tokio::time::timeout(WRITE_TIMEOUT, self.conn.flush()) => r,
        };
        match flushed {
            Ok(Ok(n)) => {
                Stats::add(&self.broker.stats.bytes_sent, n);
                None
            }
            Ok(Err(e)) => Some(End::Error(format!("write failed: {e}"))),
            Err(_) => Some(End::Error("client did not read for 30s".into())),
        }
    }

    /// (room in the inflight window, a queued message that could be sent now).
    fn sendable(&self) -> (bool, bool) {
        let s = self.session.lock();
        let room = s.inflight.len() < self.inflight_max;
        let more = s
            .queue
            .front()
            .is_some_and(|d| room || d.qos == QoS::AtMostOnce);
        (room, more)
    }

    /// Handles `first` and every further frame already buffered, so a burst
    /// of publishes is answered with one write instead of one per packet.
    fn handle_buffered(&mut self, h: Header, bytes: BytesMut) -> Option<End> {
        let (mut h, mut bytes) = (h, bytes);
        loop {
            Stats::add(&self.broker.stats.bytes_received, h.frame_len());
            if let Some(end) = self.handle(h, bytes) {
                return Some(end);
            }
            if self.pending.is_full() {
                return None; // the rest stays buffered until acks make room
            }
            match self.conn.buffered_frame() {
                Ok(Some((h2, b2))) => (h, bytes) = (h2, b2),
                Ok(None) => return None,
                Err(e) => {
                    let code = match e {
                        FrameError::TooLarge { .. } => reason::PACKET_TOO_LARGE,
                        _ => reason::MALFORMED,
                    };
                    return Some(self.violation(code, e.to_string()));
                }
            }
        }
    }

    /// Acknowledges, in order, every pending publish that is already durable.
    fn ack_ready(&mut self) -> Option<End> {
        use tokio::sync::oneshot::error::TryRecvError;
        while let Some(front) = self.pending.front_mut() {
            let mut result = Ok(());
            while let Some(rx) = front.waits.last_mut() {
                match rx.try_recv() {
                    Ok(Ok(())) => {
                        front.waits.pop();
                    }
                    Ok(Err(e)) => {
                        result = Err(e);
                        break;
                    }
                    Err(TryRecvError::Empty) => return None,
                    Err(TryRecvError::Closed) => {
                        result = Err(ForwardError::Closed {
                            bridge: "queue".into(),
                        });
                        break;
                    }
                }
            }
            front.waits.clear();
            if let Some(end) = self.ack_front(result) {
                return Some(end);
            }
        }
        None
    }

    /// Sends the acknowledgement of the oldest pending incoming publish.
    fn ack_front(&mut self, r: Result<(), ForwardError>) -> Option<End> {
        let a = self.pending.pop_front()?;
        let first = if a.qos == QoS::ExactlyOnce {
            encode::PUBREC
        } else {
            encode::PUBACK
        };
        match r {
            Ok(()) => encode::ack(self.conn.out(), self.version, first, a.pkid, a.reason),
            Err(e) if self.version.is_v5() => {
                tracing::warn!(error = %e, pkid = a.pkid, "message not stored; negative acknowledgement");
                let code = if matches!(e, ForwardError::QueueFull { .. }) {
                    reason::QUOTA_EXCEEDED
                } else {
                    reason::UNSPECIFIED
                };
                if a.qos == QoS::ExactlyOnce {
                    self.session.lock().incoming_qos2.remove(&a.pkid);
                }
                encode::ack(self.conn.out(), self.version, first, a.pkid, code);
            }
            Err(e) => {
                // MQTT 3.1.1 has no negative PUBACK: close so the client re-sends later.
                return Some(End::Error(format!(
                    "message not stored ({e}); closing so the client re-sends"
                )));
            }
        }
        None
    }

    /// Logs a protocol violation, tells an MQTT 5 client why, and ends the loop.
    pub(super) fn violation(&mut self, code: u8, why: String) -> End {
        tracing::warn!(reason = format!("{code:#04x}"), "closing connection: {why}");
        encode::disconnect(self.conn.out(), self.version, code, Some(&why));
        End::Error(why)
    }

    async fn finish(mut self, end: End) {
        let code = match &end {
            End::Takeover => Some(reason::SESSION_TAKEN_OVER),
            End::Shutdown => Some(reason::SERVER_SHUTTING_DOWN),
            End::KeepAlive => Some(reason::KEEP_ALIVE_TIMEOUT),
            _ => None,
        };
        // A client that stopped reading gets no goodbye: waiting for it
        // would only delay the takeover or the shutdown.
        let close_limit = if self.stalled {
            Duration::ZERO
        } else {
            if let Some(code) = code {
                encode::disconnect(self.conn.out(), self.version, code, None);
            }
            CLOSE_TIMEOUT
        };
        let _ = tokio::time::timeout(close_limit, self.conn.close()).await;
        tracing::info!(end = ?end, "client disconnected");
        let publish_will = !matches!(end, End::Normal | End::Shutdown);
        if let (true, Some(w)) = (publish_will, self.will.take()) {
            let owner = will::Owner {
                client_id: self.client_id.clone(),
                username: self.username.clone(),
            };
            will::schedule(&self.broker, &self.ctx, &self.session, w, owner);
        }
        let (ours, expiry) = {
            let mut s = self.session.lock();
            let ours = s.conn_gen == self.generation;
            if ours {
                s.conn_gen = 0;
                s.kick = None;
                s.disconnected_at = Some(std::time::Instant::now());
            }
            (ours, s.expiry_secs)
        };
        if ours && expiry == 0 {
            self.broker.router.remove_session(&self.session);
            if let Some(store) = &self.broker.store {
                persist::delete_session(store, &self.client_id);
            }
        } else if let (true, Some(store)) = (ours, &self.broker.store) {
            persist::save_session(store, &self.session);
        }
    }
}
