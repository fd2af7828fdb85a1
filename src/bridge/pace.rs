//! The replay_rate cap: a token bucket of one second's worth of messages, so
//! draining a day's backlog does not eat a metered LTE plan in one burst.

use tokio::time::{Duration, Instant};

/// Messages-per-second limiter; `None` rate means unlimited.
#[derive(Debug)]
pub struct Pace {
    rate: Option<u32>,
    tokens: f64,
    last: Instant,
}

impl Pace {
    /// A bucket holding at most one second of `rate`, starting full.
    pub fn new(rate: Option<u32>) -> Pace {
        let rate = rate.filter(|r| *r > 0);
        Pace {
            rate,
            tokens: rate.map_or(0.0, f64::from),
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * f64::from(rate)).min(f64::from(rate));
        }
        self.last = now;
    }

    /// How many messages may be sent now (at most `want`).
    pub fn available(&mut self, want: usize) -> usize {
        match self.rate {
            None => want,
            Some(_) => {
                self.refill(Instant::now());
                want.min(self.tokens.floor() as usize)
            }
        }
    }

    /// Takes `n` tokens for messages just sent.
    pub fn take(&mut self, n: usize) {
        if self.rate.is_some() {
            self.tokens -= n as f64;
        }
    }

    /// When the next token arrives, if the bucket is empty now.
    pub fn next_token_at(&mut self) -> Option<Instant> {
        let rate = self.rate?;
        self.refill(Instant::now());
        if self.tokens >= 1.0 {
            return None;
        }
        let wait = (1.0 - self.tokens) / f64::from(rate);
        Some(self.last + Duration::from_secs_f64(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_gives_everything() {
        let mut p = Pace::new(None);
        assert_eq!(p.available(1000), 1000);
        p.take(1000);
        assert_eq!(p.next_token_at(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn rate_is_capped_and_refills() {
        let mut p = Pace::new(Some(10));
        assert_eq!(p.available(100), 10, "one second of burst");
        p.take(10);
        assert_eq!(p.available(100), 0);
        let at = p.next_token_at().unwrap();
        assert!(at - Instant::now() <= Duration::from_millis(100));
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(p.available(100), 5);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(p.available(100), 10, "bucket does not overfill");
    }
}
