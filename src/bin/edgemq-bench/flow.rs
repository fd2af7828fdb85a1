//! End-to-end flow control for the throughput scenarios: a publisher may be
//! at most its window ahead of what the slowest subscriber has received.
//! Without it a publisher outruns delivery, and the figure measures which
//! broker drops (edgemq, past max_queued_messages) or buffers without bound
//! (Mosquitto, for QoS 0) rather than how fast it delivers.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use tokio::sync::Notify;

/// Receipts per (subscriber, publisher), and one wake-up per publisher.
#[derive(Debug)]
pub struct Flow {
    /// Sequence numbers per publisher: publisher i sends seq0 + i*per_pub ..
    per_pub: u64,
    seq0: u64,
    pubs: usize,
    counts: RefCell<Vec<u64>>,
    wake: Vec<Notify>,
    /// Set when a subscriber gave up: publishers stop instead of waiting forever.
    closed: Cell<bool>,
}

/// A subscriber's handle on the flow.
#[derive(Clone, Debug)]
pub struct Tap {
    /// The shared flow.
    pub flow: Rc<Flow>,
    /// This subscriber's index.
    pub sub: usize,
}

impl Flow {
    /// A flow for `pubs` publishers of `per_pub` messages each, `subs` subscribers.
    pub fn new(pubs: usize, subs: usize, per_pub: u64, seq0: u64) -> Rc<Flow> {
        Rc::new(Flow {
            per_pub: per_pub.max(1),
            seq0,
            pubs,
            counts: RefCell::new(vec![0; pubs * subs]),
            wake: (0..pubs).map(|_| Notify::new()).collect(),
            closed: Cell::new(false),
        })
    }

    /// Counts one receipt of `seq` by subscriber `sub`.
    pub fn received(&self, sub: usize, seq: u64) {
        let Some(p) = seq
            .checked_sub(self.seq0)
            .map(|i| (i / self.per_pub) as usize)
        else {
            return;
        };
        if p < self.pubs {
            self.counts.borrow_mut()[sub * self.pubs + p] += 1;
        }
    }

    /// Wakes every publisher (after a batch of receipts).
    pub fn wake_all(&self) {
        self.wake.iter().for_each(Notify::notify_one);
    }

    /// Messages of publisher `p` that every subscriber has received.
    pub fn delivered(&self, p: usize) -> u64 {
        let c = self.counts.borrow();
        c.iter()
            .skip(p)
            .step_by(self.pubs)
            .copied()
            .min()
            .unwrap_or(0)
    }

    /// A subscriber stopped receiving: release every publisher.
    pub fn close(&self) {
        self.closed.set(true);
        self.wake_all();
    }

    /// Whether a subscriber stopped receiving.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Publisher `p`'s wake-up.
    pub fn wake(&self, p: usize) -> &Notify {
        &self.wake[p]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slowest_subscriber_bounds_each_publisher() {
        let f = Flow::new(2, 2, 10, 100);
        for seq in [100, 101, 110] {
            f.received(0, seq);
        }
        f.received(1, 100);
        f.received(1, 999); // foreign: ignored
        assert_eq!((f.delivered(0), f.delivered(1)), (1, 0));
        f.received(1, 111);
        assert_eq!(f.delivered(1), 1);
    }
}
