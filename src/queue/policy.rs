//! Queue bounds: max_bytes with the overflow policy (drop-oldest makes room, drop-newest
//! refuses) and max_age (dropped when read and by the writer's sweep). Drops are counted in
//! [`Counters`](super::index::Counters); the queue logs them.

use super::entry::{Entry, Reason};
use super::index::Index;
use crate::config::model::Overflow;

impl Index {
    /// Makes room for a record of `len` bytes: true when it fits (after drop-oldest if
    /// needed), false when it must be refused (drop-newest, or larger than max_bytes).
    pub fn admit(&mut self, len: u64) -> bool {
        if self.live_bytes + len <= self.max_bytes {
            return true;
        }
        if self.overflow == Overflow::DropNewest || len > self.max_bytes {
            self.counters.dropped_overflow += 1;
            return false;
        }
        while self.live_bytes + len > self.max_bytes && !self.entries.is_empty() {
            self.finish(0, Reason::Overflow);
            self.pop_done();
        }
        true
    }

    /// Drops the oldest records until the live bytes fit max_bytes (after recovery).
    pub fn enforce_max_bytes(&mut self) {
        while self.live_bytes > self.max_bytes && !self.entries.is_empty() {
            self.finish(0, Reason::Overflow);
            self.pop_done();
        }
    }

    pub(super) fn expired(&self, e: &Entry, now_ms: u64) -> bool {
        // Corrected: a clock step after the stamp is no age (crate::clock).
        crate::clock::corrected(e.enqueued_ms).saturating_add(self.max_age_ms) < now_ms
    }

    /// Drops expired records at the front (the sweep).
    pub fn sweep(&mut self, now_ms: u64) -> u64 {
        let mut n = 0;
        while self
            .entries
            .front()
            .is_some_and(|e| self.expired(e, now_ms))
        {
            self.finish(0, Reason::Age);
            self.pop_done();
            n += 1;
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::{NewRecord, Pick, Place, Reason};
    use super::super::index::Index;
    use crate::config::model::Overflow;
    use bytes::Bytes;
    use std::sync::Arc;

    fn entry(key: Option<&str>, len: u64, t: u64) -> NewRecord {
        NewRecord {
            enqueued_ms: t,
            key: key.map(Arc::from),
            len,
            place: Place::Memory,
            data: Some(Bytes::from_static(b"x")),
        }
    }

    fn seqs(b: &[Pick]) -> Vec<u64> {
        b.iter().map(|p| p.seq).collect()
    }

    #[test]
    fn out_of_order_acks_move_the_cursor_to_the_lowest_unacked() {
        let mut ix = Index::new(10, 1000, u64::MAX, Overflow::DropOldest);
        for _ in 0..4 {
            ix.push(entry(None, 10, 0));
        }
        assert_eq!(seqs(&ix.take_batch(10, 0)), vec![10, 11, 12, 13]);
        ix.end(12, Reason::Acked);
        ix.end(11, Reason::Acked);
        assert_eq!(ix.cursor(), 10);
        ix.end(10, Reason::Acked);
        assert_eq!(ix.cursor(), 13);
        ix.rewind();
        assert_eq!(seqs(&ix.take_batch(10, 0)), vec![13]);
        assert_eq!(ix.counters.acked, 3);
        assert_eq!((ix.len(), ix.bytes()), (1, 10));
    }

    #[test]
    fn overflow_policies() {
        let mut ix = Index::new(0, 30, u64::MAX, Overflow::DropOldest);
        for _ in 0..5 {
            assert!(ix.admit(10));
            ix.push(entry(None, 10, 0));
        }
        assert_eq!(seqs(&ix.take_batch(10, 0)), vec![2, 3, 4]);
        assert_eq!(ix.counters.dropped_overflow, 2);
        let mut ix = Index::new(0, 30, u64::MAX, Overflow::DropNewest);
        for _ in 0..5 {
            if ix.admit(10) {
                ix.push(entry(None, 10, 0));
            }
        }
        assert_eq!(seqs(&ix.take_batch(10, 0)), vec![0, 1, 2]);
        assert_eq!(ix.counters.dropped_overflow, 2);
    }

    #[test]
    fn coalesce_supersedes_only_unsent() {
        let mut ix = Index::new(0, 1000, u64::MAX, Overflow::DropOldest);
        ix.push(entry(Some("a"), 10, 0));
        ix.push(entry(Some("b"), 10, 0));
        assert_eq!(seqs(&ix.take_batch(1, 0)), vec![0]);
        ix.push(entry(Some("a"), 10, 0)); // 0 already sent: kept
        ix.push(entry(Some("b"), 10, 0)); // supersedes 1
        ix.push(entry(Some("a"), 10, 0)); // supersedes 2
        assert_eq!(seqs(&ix.take_batch(10, 0)), vec![3, 4]);
        assert_eq!(ix.counters.coalesced, 2);
        assert_eq!(ix.len(), 3);
    }

    #[test]
    fn max_age_drops_when_reading_and_sweeping() {
        let mut ix = Index::new(0, 1000, 100, Overflow::DropOldest);
        ix.push(entry(None, 10, 1000));
        ix.push(entry(None, 10, 1050));
        ix.push(entry(None, 10, 1200));
        assert_eq!(seqs(&ix.take_batch(10, 1120)), vec![1, 2]);
        assert_eq!(ix.counters.dropped_age, 1);
        assert_eq!(ix.sweep(1160), 1);
        assert_eq!(ix.counters.dropped_age, 2);
        assert_eq!(ix.oldest_enqueued_ms(), Some(1200));
        assert!(!ix.has_sendable(1160));
    }
}
