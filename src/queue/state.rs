//! The queue's state under its one lock: the index, the frames pending for the writer with
//! who waits on each, and the log-once bookkeeping; plus the two operations on it that move
//! records between memory and disk (a spill to the writer, a run read back for the uplink).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;

use super::entry::{Pick, Place};
use super::index::Index;
use super::{QueueError, forward_error, reader, segment};
use crate::router::forward::ForwardError;

/// Bytes read back from a segment with one read while draining a backlog.
const READ_RUN_MAX: u64 = 256 << 10;
/// Drops are logged at most this often (with the count since the last line).
const DROP_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// After a failed write the queue refuses records bound for disk this long. The failed
/// records' publishers are closed (or get a negative PUBACK) and send them again; records
/// their sessions had already routed behind them must not be written first. Re-sends
/// within this time fail at once, without another write to a full disk.
pub(super) const REFUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

/// Who is told whether one appended record became durable.
#[derive(Debug)]
pub(super) enum Waiter {
    /// `append`'s [`Commit`].
    Commit(oneshot::Sender<Result<(), QueueError>>),
    /// A publisher's [`Durable`] through bridge `.1`, told by the writer thread itself: no task
    /// per message relays it, and one commit wakes each waiting client once, not once per record.
    Forward(oneshot::Sender<Result<(), ForwardError>>, Arc<str>),
}

impl Waiter {
    pub(super) fn send(self, outcome: &Result<(), QueueError>) {
        match self {
            Waiter::Commit(tx) => {
                let _ = tx.send(outcome.clone());
            }
            Waiter::Forward(tx, bridge) => {
                let r = outcome.clone().map_err(|e| forward_error(&bridge, e));
                let _ = tx.send(r);
            }
        }
    }
}

/// One frame handed to the writer.
#[derive(Debug)]
pub(super) struct PendingItem {
    pub(super) seq: u64,
    pub(super) len: u64,
    /// None for a record spilled from memory (nobody waits for it).
    pub(super) waiter: Option<Waiter>,
}

/// Frames handed to the writer, in sequence order, encoded back to back.
#[derive(Debug, Default)]
pub(super) struct Pending {
    pub(super) buf: Vec<u8>,
    pub(super) items: Vec<PendingItem>,
}

impl Pending {
    pub(super) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(super) fn push(
        &mut self,
        seq: u64,
        rec: (u64, Option<&str>, &[u8]),
        waiter: Option<Waiter>,
    ) {
        let start = self.buf.len();
        segment::encode(&mut self.buf, seq, rec.0, rec.1, rec.2);
        let len = (self.buf.len() - start) as u64;
        self.items.push(PendingItem { seq, len, waiter });
    }
}

/// Everything behind the queue's lock. A std Mutex: nothing awaits while holding it, and the
/// writer thread is not a tokio task.
#[derive(Debug)]
pub(super) struct Inner {
    pub(super) index: Index,
    pub(super) pending: Pending,
    /// Segment files on disk: first seq -> one past the last seq written to it.
    pub(super) segments: std::collections::BTreeMap<u64, u64>,
    /// One open segment for reading records back.
    pub(super) reader: Option<(u64, std::fs::File)>,
    pub(super) uplink_up: bool,
    pub(super) closed: bool,
    /// Successful group commits.
    pub(super) flushes: u64,
    /// Drop counters (overflow, age) as last logged, and when.
    pub(super) drops_logged: (u64, u64),
    pub(super) drops_logged_at: Option<std::time::Instant>,
    /// "outage": the in-memory backlog is at its bound and new records go to disk.
    pub(super) memory_full: bool,
    /// Until when records bound for disk are refused, and why: the last failed write.
    pub(super) refusing: Option<(std::time::Instant, QueueError)>,
}

impl Inner {
    /// The error a record bound for disk is refused with, while a failed write is recent;
    /// a refusal is counted as not stored.
    pub(super) fn refusal(&mut self) -> Option<QueueError> {
        let (until, e) = self.refusing.as_ref()?;
        if std::time::Instant::now() < *until {
            self.index.counters.not_stored += 1;
            return Some(e.clone());
        }
        self.refusing = None;
        None
    }

    /// Logs drops since the last report, at most once per [`DROP_LOG_INTERVAL`].
    pub(super) fn report_drops(&mut self, dir: &Path) {
        let c = self.index.counters;
        let now = (c.dropped_overflow, c.dropped_age);
        let recent = self
            .drops_logged_at
            .is_some_and(|t| t.elapsed() < DROP_LOG_INTERVAL);
        if now == self.drops_logged || recent {
            return;
        }
        tracing::warn!(dir = %dir.display(),
            dropped_overflow = now.0 - self.drops_logged.0, dropped_age = now.1 - self.drops_logged.1,
            total_overflow = now.0, total_age = now.1, "bridge queue dropped messages");
        self.drops_logged = now;
        self.drops_logged_at = Some(std::time::Instant::now());
    }

    /// Whether an "outage" record of `len` bytes may stay in memory under `bound`. Once full,
    /// records go to disk until the memory backlog drained to half the bound (no flapping, one
    /// log line each way).
    pub(super) fn memory_room(&mut self, len: u64, bound: u64, dir: &Path) -> bool {
        let held = self.index.memory_bytes();
        if self.memory_full && held <= bound / 2 {
            self.memory_full = false;
            tracing::info!(dir = %dir.display(), "bridge queue: the in-memory backlog has room again");
        }
        if !self.memory_full && held + len > bound {
            self.memory_full = true;
            tracing::info!(dir = %dir.display(), memory_bytes = held,
                "bridge queue: the uplink is slower than the publishers; the backlog beyond \
                 its memory bound goes to disk until it drains");
        }
        !self.memory_full
    }
}

/// Reads each run of consecutive on-disk records among `picks` with one read, into their data
/// (a backlog drains with a read per batch, not per record). A run that fails to read is left
/// to the per-record reads, which report the record that is bad.
pub(super) fn prefetch(dir: &Path, st: &mut Inner, picks: &mut [Pick]) {
    let on_disk = |p: &Pick| match (&p.data, p.place) {
        (None, Place::Disk { seg, offset }) => Some((seg, offset)),
        _ => None,
    };
    let mut i = 0;
    while i < picks.len() {
        let Some((seg, start)) = on_disk(&picks[i]) else {
            i += 1;
            continue;
        };
        let (mut j, mut end) = (i + 1, start + picks[i].len);
        while j < picks.len() && end - start < READ_RUN_MAX {
            match on_disk(&picks[j]) {
                Some((s, o)) if s == seg && o == end => end += picks[j].len,
                _ => break,
            }
            j += 1;
        }
        if j - i >= 2 {
            let lens: Vec<u64> = picks[i..j].iter().map(|p| p.len).collect();
            if let Ok(run) = reader::read_run(dir, &mut st.reader, seg, start, &lens) {
                for (p, d) in picks[i..j].iter_mut().zip(run) {
                    p.data = Some(d);
                }
            }
        }
        i = j;
    }
}

pub(super) fn spill(st: &mut Inner) {
    for (seq, enqueued_ms, key, data) in st.index.spill() {
        st.pending
            .push(seq, (enqueued_ms, key.as_deref(), &data), None);
    }
}
