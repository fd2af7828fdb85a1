//! The records of the queue's index: where a record's bytes are, its lifecycle, and the small
//! packed entry the index keeps per record (a backlog holds one each, so size matters).

use std::sync::Arc;

use bytes::Bytes;

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

/// A record entering the index.
#[derive(Debug)]
pub struct NewRecord {
    /// Wall-clock enqueue time, ms since the epoch.
    pub enqueued_ms: u64,
    /// Coalesce key.
    pub key: Option<Arc<str>>,
    /// Frame length on disk (the unit of byte accounting).
    pub len: u64,
    /// Where its bytes are.
    pub place: Place,
    /// The payload, if in memory.
    pub data: Option<Bytes>,
}

/// Where an entry's bytes are, packed: a segment is named by its first seq, at most u32::MAX
/// records before this one, and is smaller than 4 GiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    Memory,
    Pending,
    Disk { seg_back: u32, offset: u32 },
}

/// One record in the index (kept small: a backlog holds one per record).
#[derive(Debug)]
pub(super) struct Entry {
    pub(super) seq: u64,
    pub(super) enqueued_ms: u64,
    pub(super) len: u32,
    pub(super) slot: Slot,
    pub(super) state: State,
    pub(super) keyed: bool,
}

impl Entry {
    pub(super) fn place(&self) -> Place {
        match self.slot {
            Slot::Memory => Place::Memory,
            Slot::Pending => Place::Pending,
            Slot::Disk { seg_back, offset } => Place::Disk {
                seg: self.seq - u64::from(seg_back),
                offset: u64::from(offset),
            },
        }
    }
}

pub(super) fn slot(seq: u64, place: Place) -> Slot {
    match place {
        Place::Memory => Slot::Memory,
        Place::Pending => Slot::Pending,
        Place::Disk { seg, offset } => Slot::Disk {
            seg_back: u32::try_from(seq - seg).unwrap_or(u32::MAX),
            offset: u32::try_from(offset).unwrap_or(u32::MAX),
        },
    }
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
    /// Records lost because they could not be read back.
    pub io_lost: u64,
    /// Records whose write failed (disk full, I/O error): never acknowledged, so a QoS 1/2
    /// publisher sends them again.
    pub not_stored: u64,
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
    /// Could not be read back.
    Io,
    /// Could not be written; its publisher was not acknowledged.
    NotStored,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_small() {
        assert!(
            std::mem::size_of::<Entry>() <= 40,
            "{}",
            std::mem::size_of::<Entry>()
        );
    }
}
