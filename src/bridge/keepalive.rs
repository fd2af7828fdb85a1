//! Keepalive bookkeeping of the uplink: when to send PINGREQ, and when a
//! link that says nothing is dead (1.5× keepalive without a packet from the
//! broker: a pulled cable or an expired NAT entry never closes the socket).

use std::time::Duration;

use tokio::time::Instant;

/// What the keepalive wants done now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Nothing yet.
    Nothing,
    /// Send PINGREQ.
    Ping,
    /// Nothing received for this long: the link is dead.
    Dead(Duration),
}

/// Send and receive times of one link.
#[derive(Debug)]
pub struct Keepalive {
    period: Option<Duration>,
    last_rx: Instant,
    last_tx: Instant,
    ping_outstanding: bool,
}

impl Keepalive {
    /// Starts now; a zero period disables pings and dead-link detection.
    pub fn new(period: Duration) -> Keepalive {
        let now = Instant::now();
        Keepalive {
            period: (!period.is_zero()).then_some(period),
            last_rx: now,
            last_tx: now,
            ping_outstanding: false,
        }
    }

    /// The keepalive period, if any.
    pub fn period(&self) -> Option<Duration> {
        self.period
    }

    /// Bytes arrived from the broker.
    pub fn received(&mut self) {
        self.last_rx = Instant::now();
    }

    /// Bytes were written to the broker.
    pub fn sent(&mut self) {
        self.last_tx = Instant::now();
    }

    /// PINGRESP arrived.
    pub fn pong(&mut self) {
        self.ping_outstanding = false;
    }

    /// PINGREQ was queued.
    pub fn pinged(&mut self) {
        self.ping_outstanding = true;
    }

    /// The next instant at which `due` may change, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        let k = self.period?;
        let mut at = (self.last_tx + k).min(self.last_rx + k * 3 / 2);
        if !self.ping_outstanding {
            at = at.min(self.last_rx + k);
        }
        Some(at)
    }

    /// What to do now. We ping when we have sent nothing for a period (the
    /// broker's own timer) or heard nothing for one (so an answer can arrive
    /// before the 1.5× deadline).
    pub fn due(&self, now: Instant) -> Due {
        let Some(k) = self.period else {
            return Due::Nothing;
        };
        let silent = now.saturating_duration_since(self.last_rx);
        if silent >= k * 3 / 2 {
            return Due::Dead(silent);
        }
        let idle_tx = now >= self.last_tx + k;
        let quiet_rx = silent >= k && !self.ping_outstanding;
        if idle_tx || quiet_rx {
            Due::Ping
        } else {
            Due::Nothing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K: Duration = Duration::from_secs(10);

    #[tokio::test(start_paused = true)]
    async fn silent_link_is_dead_within_one_and_a_half_periods() {
        let mut ka = Keepalive::new(K);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(ka.due(Instant::now()), Due::Nothing);
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(ka.due(Instant::now()), Due::Ping);
        ka.pinged();
        ka.sent();
        assert_eq!(
            ka.next_deadline(),
            Some(Instant::now() + Duration::from_secs(5))
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(ka.due(Instant::now()), Due::Dead(Duration::from_secs(15)));
    }

    #[tokio::test(start_paused = true)]
    async fn answered_pings_keep_it_alive() {
        let mut ka = Keepalive::new(K);
        for _ in 0..5 {
            tokio::time::advance(K).await;
            assert_eq!(ka.due(Instant::now()), Due::Ping);
            ka.pinged();
            ka.sent();
            tokio::time::advance(Duration::from_millis(50)).await;
            ka.received();
            ka.pong();
            assert_eq!(ka.due(Instant::now()), Due::Nothing);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn busy_sending_but_deaf_still_pings_and_dies() {
        let mut ka = Keepalive::new(K);
        for _ in 0..9 {
            tokio::time::advance(Duration::from_secs(1)).await;
            ka.sent(); // publishes keep going out; no acks come back
        }
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(
            ka.due(Instant::now()),
            Due::Ping,
            "heard nothing for a period"
        );
        ka.pinged();
        ka.sent();
        tokio::time::advance(Duration::from_secs(5)).await;
        assert!(matches!(ka.due(Instant::now()), Due::Dead(_)));
    }

    #[test]
    fn zero_disables() {
        let ka = Keepalive::new(Duration::ZERO);
        assert_eq!(ka.next_deadline(), None);
        assert_eq!(ka.due(Instant::now()), Due::Nothing);
    }
}
