//! When and where to reconnect: exponential backoff with jitter between
//! reconnect_min and reconnect_max (reset after a healthy session), and the
//! ordered address list with failback to the first address.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A session that lasted this long resets the backoff to reconnect_min.
pub const HEALTHY_SESSION: Duration = Duration::from_secs(30);

/// Exponential reconnect delays with jitter, so a fleet of gateways does not
/// reconnect in lockstep after the central broker restarts.
#[derive(Debug)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    rng: u64,
}

impl Backoff {
    /// Delays from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.max(Duration::from_millis(1));
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x9E37_79B9_7F4A_7C15);
        Backoff {
            min,
            max: max.max(min),
            next: min,
            rng: seed | 1,
        }
    }

    /// The delay before the next attempt: the current step, jittered down to half of it.
    pub fn next_delay(&mut self) -> Duration {
        let step = self.next;
        self.next = (self.next * 2).min(self.max);
        let half = step / 2;
        let jitter_ms = half.as_millis() as u64;
        let extra = if jitter_ms == 0 {
            0
        } else {
            self.random() % (jitter_ms + 1)
        };
        (half + Duration::from_millis(extra)).max(self.min)
    }

    /// Back to reconnect_min (after a healthy session).
    pub fn reset(&mut self) {
        self.next = self.min;
    }

    // xorshift64: jitter needs spread, not cryptographic quality.
    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// The ordered address list: try them in order, come back to the first.
#[derive(Debug)]
pub struct Failover {
    addresses: Vec<String>,
    index: usize,
    tried_in_round: usize,
}

impl Failover {
    /// Starts at the first address.
    pub fn new(addresses: Vec<String>) -> Failover {
        Failover {
            addresses,
            index: 0,
            tried_in_round: 0,
        }
    }

    /// The address to try now.
    pub fn current(&self) -> Option<&str> {
        self.addresses.get(self.index).map(String::as_str)
    }

    /// True when connected to a later address, which failback should leave.
    pub fn on_backup(&self) -> bool {
        self.index > 0
    }

    /// The current address failed: move to the next one. Returns true when
    /// every address failed once in this round (time to back off).
    pub fn failed(&mut self) -> bool {
        if self.addresses.is_empty() {
            return true;
        }
        self.index = (self.index + 1) % self.addresses.len();
        self.tried_in_round += 1;
        if self.tried_in_round >= self.addresses.len() {
            self.tried_in_round = 0;
            return true;
        }
        false
    }

    /// A connection succeeded: a new round starts from here.
    pub fn connected(&mut self) {
        self.tried_in_round = 0;
    }

    /// Go back to the first address (failback).
    pub fn to_first(&mut self) {
        self.index = 0;
        self.tried_in_round = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_caps_and_resets() {
        let min = Duration::from_millis(100);
        let max = Duration::from_millis(1000);
        let mut b = Backoff::new(min, max);
        let mut steps = vec![];
        for _ in 0..8 {
            steps.push(b.next_delay());
        }
        for (i, d) in steps.iter().enumerate() {
            let step = (min * 2u32.pow(i as u32)).min(max);
            assert!(*d >= step / 2 && *d <= step, "step {i}: {d:?} vs {step:?}");
        }
        assert!(steps[7] >= max / 2, "capped at max");
        b.reset();
        assert!(b.next_delay() <= min);
    }

    #[test]
    fn jitter_spreads() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(8));
        for _ in 0..8 {
            b.next_delay();
        }
        let delays: std::collections::HashSet<_> = (0..20).map(|_| b.next_delay()).collect();
        assert!(delays.iter().all(|d| *d >= Duration::from_secs(4)));
        assert!(delays.len() > 5, "{delays:?}");
    }

    #[test]
    fn failover_walks_the_list_and_reports_full_rounds() {
        let mut f = Failover::new(vec!["a".into(), "b".into(), "c".into()]);
        assert_eq!(f.current(), Some("a"));
        assert!(!f.failed());
        assert_eq!(f.current(), Some("b"));
        f.connected();
        assert!(f.on_backup());
        assert!(!f.failed());
        assert!(!f.failed());
        assert_eq!(f.current(), Some("a"));
        assert!(f.failed(), "all three failed in this round");
        assert_eq!(f.current(), Some("b"));
        f.to_first();
        assert_eq!(f.current(), Some("a"));
        assert!(!f.on_backup());
    }
}
