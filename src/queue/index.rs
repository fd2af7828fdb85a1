//! The queue's in-memory index: record order, the send cursor, out-of-order acks, coalescing,
//! and where each record's bytes are (the bounds are in `policy.rs`).
//!
//! The index keeps one 40-byte entry per record (seq, enqueue time, length, place on disk);
//! coalesce keys and payloads live in side maps, payloads only while not yet on disk or within a
//! small read cache, so a large backlog costs tens of bytes per record, not its payload.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use bytes::Bytes;

use super::entry::{Counters, Entry, NewRecord, Pick, Place, Reason, Slot, State, slot};
use crate::config::model::Overflow;

/// Payload bytes of written records kept in memory so live traffic is not re-read from disk.
pub const HOT_CACHE_BYTES: u64 = 1 << 20;
/// Index capacity (entries) below which compact() does not bother.
const COMPACT_MIN: usize = 4096;

/// Hashes the queue's own sequence numbers (never input from the network, so no SipHash
/// against collision attacks is needed): one multiplication, on the per-record path.
#[derive(Debug, Default)]
pub struct SeqHasher(u64);

impl Hasher for SeqHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(FIB);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(FIB);
    }
}

/// 2^64 / golden ratio: spreads consecutive keys over the high bits hashbrown looks at.
const FIB: u64 = 0x9E37_79B9_7F4A_7C15;

/// A map keyed by sequence number.
type SeqMap<V> = HashMap<u64, V, BuildHasherDefault<SeqHasher>>;

/// The ordered index of live (and not yet popped) records with its bounds.
#[derive(Debug)]
pub struct Index {
    pub(super) entries: VecDeque<Entry>,
    keys: SeqMap<Arc<str>>,
    data: SeqMap<Bytes>,
    latest_by_key: HashMap<Arc<str>, u64>,
    next_seq: u64,
    send_next: u64,
    live: u64,
    pub(super) live_bytes: u64,
    cache_bytes: u64,
    /// Payload bytes of live records held only in memory ("outage" with the uplink up).
    memory_bytes: u64,
    pub(super) max_bytes: u64,
    pub(super) max_age_ms: u64,
    pub(super) overflow: Overflow,
    /// What happened so far.
    pub counters: Counters,
}

impl Index {
    /// An empty index whose first record will get `next_seq`.
    pub fn new(next_seq: u64, max_bytes: u64, max_age_ms: u64, overflow: Overflow) -> Self {
        Index {
            entries: VecDeque::new(),
            keys: SeqMap::default(),
            data: SeqMap::default(),
            latest_by_key: HashMap::new(),
            next_seq,
            send_next: next_seq,
            live: 0,
            live_bytes: 0,
            cache_bytes: 0,
            memory_bytes: 0,
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

    /// Frame bytes of live records.
    pub fn bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Frame bytes of live records held only in memory.
    pub fn memory_bytes(&self) -> u64 {
        self.memory_bytes
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

    /// Adds a record with the next sequence number and returns that number.
    pub fn push(&mut self, rec: NewRecord) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.counters.appended += 1;
        self.insert(seq, rec, true);
        seq
    }

    /// Adds a recovered record (its own sequence number, strictly increasing).
    pub fn push_recovered(&mut self, seq: u64, rec: NewRecord) {
        self.next_seq = self.next_seq.max(seq + 1);
        if self.entries.is_empty() {
            self.send_next = seq;
        }
        self.insert(seq, rec, false);
    }

    fn insert(&mut self, seq: u64, rec: NewRecord, count: bool) {
        if let Some(key) = &rec.key {
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
        self.live_bytes += rec.len;
        let keyed = rec.key.is_some();
        if let Some(key) = rec.key {
            self.keys.insert(seq, key);
        }
        if let Some(data) = rec.data {
            match rec.place {
                Place::Disk { .. } => self.cache_bytes += rec.len,
                Place::Memory => self.memory_bytes += rec.len,
                Place::Pending => {}
            }
            self.data.insert(seq, data);
        }
        self.entries.push_back(Entry {
            seq,
            enqueued_ms: rec.enqueued_ms,
            len: u32::try_from(rec.len).unwrap_or(u32::MAX),
            slot: slot(seq, rec.place),
            state: State::Unsent,
            keyed,
        });
        self.pop_done();
    }

    fn position(&self, seq: u64) -> Option<usize> {
        // Entries hold consecutive sequence numbers unless recovery skipped some: try the
        // offset from the front before searching.
        let first = self.entries.front()?.seq;
        let guess = usize::try_from(seq.checked_sub(first)?).ok()?;
        if self.entries.get(guess).is_some_and(|e| e.seq == seq) {
            return Some(guess);
        }
        let i = self.entries.partition_point(|e| e.seq < seq);
        (self.entries.get(i)?.seq == seq).then_some(i)
    }

    /// Drops the in-memory payload of `e`, keeping the cache accounting right.
    fn forget_data(&mut self, i: usize) -> Option<Bytes> {
        let e = &self.entries[i];
        let data = self.data.remove(&e.seq)?;
        match e.slot {
            Slot::Disk { .. } => self.cache_bytes -= u64::from(e.len),
            Slot::Memory => self.memory_bytes -= u64::from(e.len),
            _ => {}
        }
        Some(data)
    }

    /// Ends the life of the record at position `i`, counting why.
    pub(super) fn finish(&mut self, i: usize, why: Reason) {
        if self.entries[i].state == State::Done {
            return;
        }
        self.forget_data(i);
        let e = &mut self.entries[i];
        e.state = State::Done;
        self.live -= 1;
        self.live_bytes -= u64::from(e.len);
        let c = &mut self.counters;
        match why {
            Reason::Acked => c.acked += 1,
            Reason::Overflow => c.dropped_overflow += 1,
            Reason::Age => c.dropped_age += 1,
            Reason::Coalesced => c.coalesced += 1,
            Reason::Io => c.io_lost += 1,
            Reason::NotStored => c.not_stored += 1,
        }
    }

    /// Pops done records off the front so the front is always live.
    pub(super) fn pop_done(&mut self) {
        while let Some(e) = self.entries.front() {
            if e.state != State::Done {
                break;
            }
            if e.keyed {
                if let Some(key) = self.keys.remove(&e.seq) {
                    if self.latest_by_key.get(&key) == Some(&e.seq) {
                        self.latest_by_key.remove(&key);
                    }
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

    /// Gives memory back after a backlog drained (called on the writer's tick).
    pub fn compact(&mut self) {
        if self.entries.capacity() > COMPACT_MIN && self.entries.len() < self.entries.capacity() / 4
        {
            self.entries.shrink_to(self.entries.len() * 2);
        }
        if self.keys.capacity() > COMPACT_MIN && self.keys.len() < self.keys.capacity() / 4 {
            self.keys.shrink_to(self.keys.len() * 2);
            self.latest_by_key.shrink_to(self.latest_by_key.len() * 2);
        }
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
            let (seq, on_disk) = (e.seq, matches!(e.slot, Slot::Disk { .. }));
            let mut pick = Pick {
                seq,
                enqueued_ms: e.enqueued_ms,
                key: None,
                len: u64::from(e.len),
                place: e.place(),
                data: None,
            };
            pick.key = self.keys.get(&seq).cloned();
            // A sent record's cached payload is not needed again unless rewound: free it.
            pick.data = if on_disk {
                self.forget_data(i - 1)
            } else {
                self.data.get(&seq).cloned()
            };
            out.push(pick);
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
            if e.slot == Slot::Memory && e.state != State::Done {
                if let Some(data) = self.data.get(&e.seq) {
                    e.slot = Slot::Pending;
                    self.memory_bytes -= u64::from(e.len);
                    let key = self.keys.get(&e.seq).cloned();
                    out.push((e.seq, e.enqueued_ms, key, data.clone()));
                }
            }
        }
        out
    }

    /// Records that `seq` is durable at `seg`/`offset`; keeps its payload cached if room.
    pub fn placed(&mut self, seq: u64, seg: u64, offset: u64) {
        let Some(i) = self.position(seq) else { return };
        let e = &mut self.entries[i];
        e.slot = slot(seq, Place::Disk { seg, offset });
        let len = u64::from(e.len);
        if e.state == State::Unsent && self.cache_bytes + len <= HOT_CACHE_BYTES {
            if self.data.contains_key(&seq) {
                self.cache_bytes += len;
            }
        } else {
            self.data.remove(&seq);
        }
    }

    /// A write of `seq` failed: a spilled record goes back to memory, an appended one is lost
    /// (its Commit reports the error, so its publisher was not acknowledged).
    pub fn write_failed(&mut self, seq: u64, spilled: bool) {
        let Some(i) = self.position(seq) else { return };
        if spilled {
            self.entries[i].slot = Slot::Memory;
            if self.data.contains_key(&seq) {
                self.memory_bytes += u64::from(self.entries[i].len);
            }
        } else {
            self.finish(i, Reason::NotStored);
            self.pop_done();
        }
    }
}
