//! The queue's in-memory index and its bounds: max_bytes with the overflow policy, max_age,
//! coalescing, the send cursor and out-of-order acks.
//!
//! The index keeps one small entry per record (seq, place on disk, key, enqueue time); payloads
//! stay in memory only while not yet on disk or within a small read cache, so a large backlog
//! costs tens of bytes per record, not its payload.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;

use crate::config::model::Overflow;

/// Payload bytes of written records kept in memory so live traffic is not re-read from disk.
pub const HOT_CACHE_BYTES: u64 = 1 << 20;

/// Where a record's bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Only in memory ("outage" durability while the uplink is up).
    Memory,
    /// Handed to the writer, not yet durable.
    Pending,
    /// Durable in segment `seg` at `offset`.
    Disk {
        /// First sequence number of the segment (its name).
        seg: u64,
        /// Offset of the frame.
        offset: u64,
    },
}

/// Lifecycle of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting to be sent.
    Unsent,
    /// Handed out by next_batch, waiting for the central broker's ack.
    Sent,
    /// Acked, dropped, expired or coalesced away: no longer live.
    Done,
}

/// One record in the index.
#[derive(Debug)]
pub struct Entry {
    /// Sequence number.
    pub seq: u64,
    /// Wall-clock enqueue time, ms since the epoch.
    pub enqueued_ms: u64,
    /// Coalesce key.
    pub key: Option<Arc<str>>,
    /// Frame length on disk (the unit of byte accounting).
    pub len: u64,
    /// Where its bytes are.
    pub place: Place,
    /// Lifecycle state.
    pub state: State,
    /// The payload while in memory.
    pub data: Option<Box<Bytes>>,
}

/// Counters of what happened to records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records accepted by append.
    pub appended: u64,
    /// Records acknowledged by the central broker.
    pub acked: u64,
    /// Records dropped by the overflow policy.
    pub dropped_overflow: u64,
    /// Records dropped for exceeding max_age.
    pub dropped_age: u64,
    /// Records superseded by a newer one with the same key.
    pub coalesced: u64,
    /// Records lost because they could not be written or read back.
    pub io_lost: u64,
}

/// Why a record stops being live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Acknowledged.
    Acked,
    /// Dropped by the overflow policy.
    Overflow,
    /// Older than max_age.
    Age,
    /// Superseded by a newer record with the same key.
    Coalesced,
    /// Could not be written or read back.
    Io,
}

/// A record picked for sending; `data` is None when it must be read from disk.
#[derive(Debug)]
pub struct Pick {
    /// Sequence number.
    pub seq: u64,
    /// Wall-clock enqueue time.
    pub enqueued_ms: u64,
    /// Coalesce key.
    pub key: Option<Arc<str>>,
    /// Frame length.
    pub len: u64,
    /// Where it is.
    pub place: Place,
    /// The payload if in memory.
    pub data: Option<Bytes>,
}

/// The ordered index of live (and not yet popped) records with its bounds.
#[derive(Debug)]
pub struct Index {
    entries: VecDeque<Entry>,
    latest_by_key: HashMap<Arc<str>, u64>,
    next_seq: u64,
    send_next: u64,
    live: u64,
    live_bytes: u64,
    cache_bytes: u64,
    max_bytes: u64,
    max_age_ms: u64,
    overflow: Overflow,
    /// What happened so far.
    pub counters: Counters,
}

impl Index {
    /// An empty index whose first record will get `next_seq`.
    pub fn new(next_seq: u64, max_bytes: u64, max_age_ms: u64, overflow: Overflow) -> Self {
        Index {
            entries: VecDeque::new(),
            latest_by_key: HashMap::new(),
            next_seq,
            send_next: next_seq,
            live: 0,
            live_bytes: 0,
            cache_bytes: 0,
            max_bytes,
            max_age_ms,
            overflow,
            counters: Counters::default(),
        }
    }

    /// Live records.
    pub fn len(&self) -> u64 {
        self.live
    }

    /// True when no record is live.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// Frame bytes of live records.
    pub fn bytes(&self) -> u64 {
        self.live_bytes
    }

    /// The sequence number the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Sets the next sequence number after recovery (never lowers it).
    pub fn bump_next_seq(&mut self, seq: u64) {
        self.next_seq = self.next_seq.max(seq);
        if self.entries.is_empty() {
            self.send_next = self.send_next.max(seq);
        }
    }

    /// Enqueue time of the oldest live record.
    pub fn oldest_enqueued_ms(&self) -> Option<u64> {
        self.entries.front().map(|e| e.enqueued_ms)
    }

    /// The durable cursor: every record below it is done.
    pub fn cursor(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }

    /// Makes room for a record of `len` bytes: Ok(true) when it fits (after drop-oldest if
    /// needed), Ok(false) when it must be refused (drop-newest, or larger than max_bytes).
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

    /// Adds a record with the next sequence number and returns that number.
    pub fn push(&mut self, mut entry: Entry) -> u64 {
        entry.seq = self.next_seq;
        self.next_seq += 1;
        self.insert(entry, true)
    }

    /// Adds a recovered record (its own sequence number, strictly increasing).
    pub fn push_recovered(&mut self, entry: Entry) {
        self.next_seq = self.next_seq.max(entry.seq + 1);
        if self.entries.is_empty() {
            self.send_next = entry.seq;
        }
        self.insert(entry, false);
    }

    fn insert(&mut self, entry: Entry, count: bool) -> u64 {
        let seq = entry.seq;
        if let Some(key) = &entry.key {
            if let Some(old) = self.latest_by_key.insert(key.clone(), seq) {
                if let Some(i) = self.position(old) {
                    if self.entries[i].state == State::Unsent {
                        self.finish(i, Reason::Coalesced);
                        if !count {
                            self.counters.coalesced -= 1;
                        }
                    }
                }
            }
        }
        if self.entries.is_empty() {
            self.send_next = self.send_next.min(seq);
        }
        self.live += 1;
        self.live_bytes += entry.len;
        if count {
            self.counters.appended += 1;
        }
        self.entries.push_back(entry);
        self.pop_done();
        seq
    }

    fn position(&self, seq: u64) -> Option<usize> {
        let i = self.entries.partition_point(|e| e.seq < seq);
        (self.entries.get(i)?.seq == seq).then_some(i)
    }

    /// Ends the life of the record at position `i`, counting why.
    fn finish(&mut self, i: usize, why: Reason) {
        let e = &mut self.entries[i];
        if e.state == State::Done {
            return;
        }
        e.state = State::Done;
        if e.data.take().is_some() && matches!(e.place, Place::Disk { .. }) {
            self.cache_bytes -= e.len;
        }
        self.live -= 1;
        self.live_bytes -= e.len;
        let c = &mut self.counters;
        match why {
            Reason::Acked => c.acked += 1,
            Reason::Overflow => c.dropped_overflow += 1,
            Reason::Age => c.dropped_age += 1,
            Reason::Coalesced => c.coalesced += 1,
            Reason::Io => c.io_lost += 1,
        }
    }

    /// Pops done records off the front so the front is always live.
    fn pop_done(&mut self) {
        while let Some(e) = self.entries.front() {
            if e.state != State::Done {
                break;
            }
            if let Some(key) = &e.key {
                if self.latest_by_key.get(key) == Some(&e.seq) {
                    self.latest_by_key.remove(key);
                }
            }
            self.entries.pop_front();
        }
    }

    /// Ends the record `seq` for `why` (no-op when it is not live).
    pub fn end(&mut self, seq: u64, why: Reason) {
        if let Some(i) = self.position(seq) {
            self.finish(i, why);
            self.pop_done();
        }
    }

    fn expired(&self, e: &Entry, now_ms: u64) -> bool {
        e.enqueued_ms.saturating_add(self.max_age_ms) < now_ms
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

    /// Up to `max` unsent records in order, marked sent; expired ones met are dropped.
    pub fn take_batch(&mut self, max: usize, now_ms: u64) -> Vec<Pick> {
        let mut out = Vec::new();
        let mut i = self.entries.partition_point(|e| e.seq < self.send_next);
        while out.len() < max && i < self.entries.len() {
            if self.entries[i].state == State::Unsent && self.expired(&self.entries[i], now_ms) {
                self.finish(i, Reason::Age);
            }
            let e = &mut self.entries[i];
            self.send_next = e.seq + 1;
            i += 1;
            if e.state != State::Unsent {
                continue;
            }
            e.state = State::Sent;
            let data = match e.place {
                Place::Disk { .. } => e.data.take().map(|b| {
                    self.cache_bytes -= e.len;
                    *b
                }),
                _ => e.data.as_deref().cloned(),
            };
            out.push(Pick {
                seq: e.seq,
                enqueued_ms: e.enqueued_ms,
                key: e.key.clone(),
                len: e.len,
                place: e.place,
                data,
            });
        }
        self.pop_done();
        out
    }

    /// True when take_batch would return something (drops expired records it meets).
    pub fn has_sendable(&mut self, now_ms: u64) -> bool {
        let mut i = self.entries.partition_point(|e| e.seq < self.send_next);
        while i < self.entries.len() {
            let e = &self.entries[i];
            if e.state == State::Unsent {
                if !self.expired(e, now_ms) {
                    return true;
                }
                self.finish(i, Reason::Age);
            }
            self.send_next = self.entries[i].seq + 1;
            i += 1;
        }
        self.pop_done();
        false
    }

    /// Sends everything unacked again, from the lowest unacked record.
    pub fn rewind(&mut self) {
        for e in self.entries.iter_mut() {
            if e.state == State::Sent {
                e.state = State::Unsent;
            }
        }
        self.send_next = self.cursor();
    }

    /// The live records that are only in memory, marked pending (for a spill to disk).
    pub fn spill(&mut self) -> Vec<(u64, u64, Option<Arc<str>>, Bytes)> {
        let mut out = Vec::new();
        for e in self.entries.iter_mut() {
            if e.place == Place::Memory && e.state != State::Done {
                if let Some(data) = e.data.as_deref() {
                    e.place = Place::Pending;
                    out.push((e.seq, e.enqueued_ms, e.key.clone(), data.clone()));
                }
            }
        }
        out
    }

    /// Records that `seq` is durable at `seg`/`offset`; keeps its payload cached if room.
    pub fn placed(&mut self, seq: u64, seg: u64, offset: u64) {
        let Some(i) = self.position(seq) else { return };
        let e = &mut self.entries[i];
        e.place = Place::Disk { seg, offset };
        if e.data.is_some() {
            if e.state == State::Unsent && self.cache_bytes + e.len <= HOT_CACHE_BYTES {
                self.cache_bytes += e.len;
            } else {
                e.data = None;
            }
        }
    }

    /// A write of `seq` failed: a spilled record goes back to memory, an appended one is lost
    /// (its Commit reports the error, so its publisher was not acknowledged).
    pub fn write_failed(&mut self, seq: u64, spilled: bool) {
        let Some(i) = self.position(seq) else { return };
        if spilled {
            self.entries[i].place = Place::Memory;
        } else {
            self.finish(i, Reason::Io);
            self.pop_done();
        }
    }

    /// Frame length of record `seq`, if it is still indexed.
    pub fn len_of(&self, seq: u64) -> Option<u64> {
        self.position(seq).map(|i| self.entries[i].len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: Option<&str>, len: u64, t: u64) -> Entry {
        Entry {
            seq: 0,
            enqueued_ms: t,
            key: key.map(Arc::from),
            len,
            place: Place::Memory,
            state: State::Unsent,
            data: Some(Box::new(Bytes::from_static(b"x"))),
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
