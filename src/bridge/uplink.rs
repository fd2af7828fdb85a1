//! The connection to the central broker: our own small MQTT client (not
//! rumqttc's event loop, which drops unacknowledged publishes when the remote
//! session is gone). Reconnects with backoff and jitter, fails over through
//! the address list and back to the first, and after every reconnect rewinds
//! the queue so every unacknowledged record is sent again.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::backoff::{Backoff, Failover, HEALTHY_SESSION};
use super::codec::Version;
use super::connect::{self, Link, TlsSlot};
use super::inflight::Inflight;
use super::notify;
use super::pace::Pace;
use super::session::{Carry, End, Session, Shared};
use crate::config::model::{Bridge, Protocol};

/// How one connection attempt went.
enum Outcome {
    /// Shutdown requested.
    Stop,
    /// No session came about.
    Failed,
    /// A session ran and ended; `healthy` if it lasted long enough to reset the backoff.
    Ended { healthy: bool, failback: bool },
}

/// The uplink task of one bridge.
pub struct Uplink {
    /// The bridge's configuration.
    pub cfg: Bridge,
    /// Client id at the central broker.
    pub client_id: String,
    /// What sessions share with the handle.
    pub shared: Shared,
    /// Client TLS configuration.
    pub tls: Arc<TlsSlot>,
}

impl Uplink {
    /// Connects, runs sessions, reconnects, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        self.local_state(false).await;
        let mut failover = Failover::new(self.cfg.addresses.clone());
        let mut backoff = Backoff::new(self.cfg.reconnect_min.get(), self.cfg.reconnect_max.get());
        let mut carry = Carry {
            inflight: Inflight::default(),
            max_sent_seq: None,
            pace: Pace::new(self.cfg.queue.replay_rate),
            inbound_qos2: Default::default(),
        };
        while let Some(address) = failover.current().map(str::to_string) {
            let span = tracing::info_span!("link", address = %address);
            let outcome = self
                .attempt(&address, &mut carry, failover.on_backup(), &shutdown)
                .instrument(span)
                .await;
            let pause = match outcome {
                Outcome::Stop => break,
                Outcome::Failed if failover.failed() => backoff.next_delay(),
                Outcome::Failed => Duration::ZERO,
                Outcome::Ended { healthy, failback } => {
                    failover.connected();
                    if healthy {
                        backoff.reset();
                    }
                    if failback {
                        failover.to_first();
                        Duration::ZERO
                    } else {
                        backoff.next_delay()
                    }
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(pause) => {}
            }
        }
        self.shared.queue.set_uplink_up(false);
        // close() blocks for one flush; keep it off the async workers.
        let queue = self.shared.queue.clone();
        match tokio::task::spawn_blocking(move || queue.close()).await {
            Ok(Ok(())) => tracing::info!("bridge stopped, queue closed"),
            Ok(Err(e)) => tracing::error!(error = %e, "bridge queue close failed"),
            Err(e) => tracing::error!(error = %e, "bridge queue close panicked"),
        }
    }

    /// One connection attempt to `address` and, if it succeeds, its session.
    async fn attempt(
        &self,
        address: &str,
        carry: &mut Carry,
        on_backup: bool,
        shutdown: &CancellationToken,
    ) -> Outcome {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return Outcome::Stop,
            attempt = self.establish(address) => attempt,
        };
        let (link, accepted) = match attempt {
            Ok(ok) => ok,
            Err(reason) => {
                tracing::warn!(error = %reason, "cannot connect to the central broker");
                self.shared.counters.disconnected(address, &reason);
                return Outcome::Failed;
            }
        };
        self.shared.counters.connected(address);
        let started = Instant::now();
        let end = self
            .session(link, accepted, carry, on_backup, shutdown)
            .await;
        let healthy = started.elapsed() >= HEALTHY_SESSION;
        match end {
            End::Shutdown => {
                self.shared.counters.disconnected(address, "shutting down");
                Outcome::Stop
            }
            End::Failback => {
                tracing::info!("failing back to the first address");
                self.shared
                    .counters
                    .disconnected(address, "failing back to the first address");
                Outcome::Ended {
                    healthy,
                    failback: true,
                }
            }
            End::Lost(reason) => {
                tracing::warn!(error = %reason, "uplink lost");
                self.shared.counters.disconnected(address, &reason);
                Outcome::Ended {
                    healthy,
                    failback: false,
                }
            }
        }
    }

    async fn establish(&self, address: &str) -> Result<(Link, connect::Accepted), String> {
        let spec = connect::connect_spec(&self.cfg, &self.client_id)?;
        let stream = connect::dial(address, &self.tls).await?;
        let version = match self.cfg.protocol {
            Protocol::Mqtt311 => Version::V311,
            Protocol::Mqtt5 => Version::V5,
        };
        connect::handshake(stream, version, &spec).await
    }

    /// One connected session, from CONNACK to its end.
    async fn session(
        &self,
        link: Link,
        accepted: connect::Accepted,
        carry: &mut Carry,
        on_backup: bool,
        shutdown: &CancellationToken,
    ) -> End {
        let kept = if accepted.session_present {
            carry.inflight.keep_queued()
        } else {
            carry.inflight.clear();
            carry.inbound_qos2.clear();
            Vec::new()
        };
        let window = usize::from(self.cfg.inflight)
            .min(accepted.receive_max.map_or(usize::MAX, usize::from));
        let queue = &self.shared.queue;
        queue.set_uplink_up(true);
        // Everything not acknowledged goes out again, oldest first.
        queue.rewind();
        tracing::info!(
            session_present = accepted.session_present,
            window,
            "uplink connected"
        );
        self.local_state(true).await;
        let mut session = Session::new(link, &self.shared, carry, window, self.cfg.keepalive.get());
        let failback_at = on_backup.then(|| Instant::now() + self.cfg.failback_after.get());
        let end = match session.open(kept).await {
            Ok(()) => session.run(shutdown, failback_at).await,
            Err(end) => end,
        };
        queue.set_uplink_up(false);
        self.local_state(false).await;
        end
    }

    async fn local_state(&self, up: bool) {
        if !self.cfg.notifications {
            return;
        }
        let topic = notify::state_topic(&self.cfg, &self.client_id);
        if self
            .shared
            .inbound
            .send(notify::local_state(&topic, up))
            .await
            .is_err()
        {
            tracing::debug!("router is gone; local state notification not sent");
        }
    }
}
