//! The durable FIFO per bridge: a segmented append-only log in a directory.
//!
//! `append` indexes a record and hands its frame to a writer thread that writes every pending
//! frame with one write and one fdatasync (group commit) before resolving their [`Commit`]s.
//! `next_batch`/`ack`/`rewind` drive the uplink; the lowest unacked record is the cursor, stored
//! now and then, and whole segments below it are deleted. On open every segment is scanned and a
//! torn or corrupt tail is truncated (`recover.rs`); the writer thread lives in `log.rs`.

mod cursor;
mod entry;
mod index;
pub mod log;
mod model;
mod policy;
mod reader;
mod recover;
#[cfg(test)]
mod recycle_tests;
pub mod segment;
mod state;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use tokio::sync::{Notify, oneshot};

use crate::clock::checked_now_ms;
use crate::config::model::Durability;
use crate::router::forward::Durable;
use entry::{NewRecord, Place, Reason};
pub use model::{
    Commit, DEFAULT_SEGMENT_BYTES, MIN_SEGMENT_BYTES, QueueError, QueueOptions, QueueStats, Record,
    forward_error,
};
use state::{Inner, Pending, PendingItem, Waiter, prefetch, spill};

/// Bounds open() puts on segment_bytes: offsets inside a segment are stored as u32.
const SEGMENT_BYTES_RANGE: (u64, u64) = (4 << 10, 1 << 30);

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    opts: QueueOptions,
    inner: Mutex<Inner>,
    wake_writer: Condvar,
    readable: Notify,
    writer: Mutex<Option<JoinHandle<Result<(), QueueError>>>>,
    /// Held until close (or the last handle is gone and the writer has stopped).
    dir_lock: Mutex<Option<nix::fcntl::Flock<std::fs::File>>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves the index consistent enough to go on.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn shutdown(&self) {
        let mut st = self.lock();
        if self.opts.durability == Durability::Outage {
            spill(&mut st);
        }
        st.closed = true;
        drop(st);
        self.wake_writer.notify_all();
        self.readable.notify_waiters();
    }
}

/// Stops the writer when the last handle goes away without close().
#[derive(Debug)]
struct CloseOnDrop(Arc<Shared>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.shutdown();
    }
}

/// A handle to one bridge's durable queue; clones share it.
#[derive(Debug, Clone)]
pub struct Queue {
    shared: Arc<Shared>,
    _guard: Arc<CloseOnDrop>,
}

impl Queue {
    /// Opens (creating if needed) the queue in `dir`, recovering what the log holds.
    pub fn open(dir: &Path, mut opts: QueueOptions) -> Result<Queue, QueueError> {
        let (lo, hi) = SEGMENT_BYTES_RANGE;
        opts.segment_bytes = opts.segment_bytes.clamp(lo, hi);
        let recovered = recover::recover(dir, &opts)?;
        let shared = Arc::new(Shared {
            dir: dir.to_path_buf(),
            opts,
            inner: Mutex::new(Inner {
                index: recovered.index,
                pending: Pending::default(),
                segments: recovered.segments,
                reader: None,
                uplink_up: false,
                closed: false,
                flushes: 0,
                drops_logged: (0, 0),
                drops_logged_at: None,
                memory_full: false,
                refusing: None,
            }),
            wake_writer: Condvar::new(),
            readable: Notify::new(),
            writer: Mutex::new(None),
            dir_lock: Mutex::new(Some(recovered.lock)),
        });
        let writer = log::Writer::new(shared.clone(), recovered.cursor);
        let handle = std::thread::Builder::new()
            .name("edgemq-queue".into())
            .spawn(move || writer.run())
            .map_err(|e| QueueError::io(dir, e))?;
        *shared.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(Queue {
            _guard: Arc::new(CloseOnDrop(shared.clone())),
            shared,
        })
    }

    /// Queues a record. Full only under drop-newest (drop-oldest makes room, counted); the
    /// Commit resolves when the record is durable, at once under "outage" while the uplink is up.
    pub fn append(&self, rec: Record) -> Result<Commit, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.append_for(rec, Waiter::Commit(tx))?;
        Ok(rx)
    }

    /// [`Queue::append`] for the router: the [`Durable`] a publisher of bridge `bridge` waits on.
    pub fn append_durable(&self, rec: Record, bridge: &Arc<str>) -> Result<Durable, QueueError> {
        let (tx, rx) = oneshot::channel();
        self.append_for(rec, Waiter::Forward(tx, bridge.clone()))?;
        Ok(rx)
    }

    fn append_for(&self, rec: Record, waiter: Waiter) -> Result<(), QueueError> {
        let key = rec
            .coalesce_key
            .filter(|k| !k.is_empty() && k.len() <= segment::MAX_KEY);
        let len = segment::frame_len(key.as_deref(), rec.data.len());
        if len > segment::FRAME_HEADER + segment::MAX_PAYLOAD {
            return Err(QueueError::Full);
        }
        let mut st = self.shared.lock();
        if st.closed {
            return Err(QueueError::Closed);
        }
        let admitted = st.index.admit(len);
        st.report_drops(&self.shared.dir);
        if !admitted {
            return Err(QueueError::Full);
        }
        let outage_up = self.shared.opts.durability == Durability::Outage && st.uplink_up;
        let in_memory =
            outage_up && st.memory_room(len, self.shared.opts.memory_bytes, &self.shared.dir);
        if !in_memory {
            if let Some(e) = st.refusal() {
                return Err(e);
            }
        }
        let frame_key = if in_memory { None } else { key.clone() };
        let seq = st.index.push(NewRecord {
            enqueued_ms: rec.enqueued_ms,
            key,
            len,
            place: if in_memory {
                Place::Memory
            } else {
                Place::Pending
            },
            data: Some(rec.data.clone()),
        });
        // Under "outage" with the uplink up the publisher is acknowledged at once, whether
        // the record stays in memory or, past the memory bound, goes to disk like a spill.
        let (durable_waiter, ack_now) = if outage_up {
            (None, Some(waiter))
        } else {
            (Some(waiter), None)
        };
        if in_memory {
            drop(st);
        } else {
            let frame = (rec.enqueued_ms, frame_key.as_deref(), &rec.data[..]);
            let wake = st.pending.is_empty();
            st.pending.push(seq, frame, durable_waiter);
            drop(st);
            // The writer only sleeps on the condvar with nothing pending.
            if wake {
                self.shared.wake_writer.notify_one();
            }
        }
        if let Some(w) = ack_now {
            w.send(&Ok(()));
        }
        self.shared.readable.notify_waiters();
        Ok(())
    }

    /// Up to `max` records after the send cursor, in order, skipping coalesced-away and expired
    /// ones; advances the send cursor.
    pub fn next_batch(&self, max: usize) -> Vec<(u64, Record)> {
        let mut st = self.shared.lock();
        let mut picks = st.index.take_batch(max, checked_now_ms());
        prefetch(&self.shared.dir, &mut st, &mut picks);
        let mut out = Vec::with_capacity(picks.len());
        for p in picks {
            let data = match (p.data, p.place) {
                (Some(d), _) => d,
                (None, Place::Disk { seg, offset }) => {
                    match reader::read_record(&self.shared.dir, &mut st.reader, seg, offset, p.len)
                    {
                        Ok(d) => d,
                        Err(e) => {
                            tracing::error!(error = %e, seq = p.seq, "bridge queue record lost");
                            st.index.end(p.seq, Reason::Io);
                            continue;
                        }
                    }
                }
                (None, _) => continue,
            };
            let rec = Record {
                coalesce_key: p.key,
                enqueued_ms: p.enqueued_ms,
                data,
            };
            out.push((p.seq, rec));
        }
        st.report_drops(&self.shared.dir);
        out
    }

    /// Resolves when next_batch would return something. After close it stays pending unless
    /// records remain, so a select loop around it cannot spin.
    pub async fn wait_nonempty(&self) {
        loop {
            let notified = self.shared.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().index.has_sendable(checked_now_ms()) {
                return;
            }
            notified.await;
        }
    }

    /// The central broker acknowledged `seq` (acks may come in any order).
    pub fn ack(&self, seq: u64) {
        self.shared.lock().index.end(seq, Reason::Acked);
    }

    /// After a reconnect: send again from the lowest unacked record.
    pub fn rewind(&self) {
        self.shared.lock().index.rewind();
        self.shared.readable.notify_waiters();
    }

    /// Under "outage" durability: going down spills the in-memory backlog to the log (durably,
    /// by the writer); while up, new records stay in memory.
    pub fn set_uplink_up(&self, up: bool) {
        let mut st = self.shared.lock();
        let was_up = std::mem::replace(&mut st.uplink_up, up);
        if self.shared.opts.durability == Durability::Outage && was_up && !up && !st.closed {
            spill(&mut st);
            self.shared.wake_writer.notify_one();
        }
    }

    /// The queue's figures now.
    pub fn stats(&self) -> QueueStats {
        let st = self.shared.lock();
        let c = st.index.counters;
        QueueStats {
            messages: st.index.len(),
            bytes: st.index.bytes(),
            memory_bytes: st.index.memory_bytes(),
            oldest_enqueued_ms: st.index.oldest_enqueued_ms(),
            dropped_overflow: c.dropped_overflow,
            dropped_age: c.dropped_age,
            coalesced: c.coalesced,
            appended: c.appended,
            acked: c.acked,
            io_lost: c.io_lost,
            not_stored: c.not_stored,
            flushes: st.flushes,
        }
    }

    /// Writes what is pending, stores the cursor and stops the writer; appends fail afterwards.
    /// Blocks for one flush: call it from a blocking context or at shutdown.
    pub fn close(&self) -> Result<(), QueueError> {
        self.shared.shutdown();
        let handle = self
            .shared
            .writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let result = handle.map(JoinHandle::join);
        // The writer is gone: the directory may be opened again.
        drop(
            self.shared
                .dir_lock
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take(),
        );
        match result {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(QueueError::io(
                &self.shared.dir,
                io::Error::other("queue writer thread panicked"),
            )),
            None => Ok(()),
        }
    }
}
