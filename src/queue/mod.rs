//! The durable FIFO per bridge: a segmented append-only log in a directory.
//!
//! `append` indexes a record and hands its frame to a writer thread that writes every pending
//! frame with one write and one fdatasync (group commit) before resolving their [`Commit`]s.
//! `next_batch`/`ack`/`rewind` drive the uplink; the lowest unacked record is the cursor, stored
//! now and then, and whole segments below it are deleted. On open every segment is scanned and a
//! torn or corrupt tail is truncated (see `log.rs`).

mod cursor;
pub mod log;
pub mod policy;
pub mod segment;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use crate::config::model::{Durability, Overflow, QueueConfig};
use policy::{Entry, Index, Place, Reason, State};

/// Segment size unless the queue is small: a few MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 4 << 20;
/// Smallest segment size, so a tiny max_bytes does not mean a file per record.
pub const MIN_SEGMENT_BYTES: u64 = 64 << 10;
/// Segments per max_bytes when that makes them smaller than the default.
const SEGMENTS_PER_QUEUE: u64 = 8;

/// Bounds and durability of one queue.
#[derive(Debug, Clone)]
pub struct QueueOptions {
    /// Frame bytes of live records kept at most.
    pub max_bytes: u64,
    /// Records older than this are dropped (counted).
    pub max_age: Duration,
    /// What a full queue does with one more record.
    pub overflow: Overflow,
    /// When records reach the disk.
    pub durability: Durability,
    /// Size at which a new segment file is started.
    pub segment_bytes: u64,
}

impl QueueOptions {
    /// The options a `[bridge.queue]` section asks for.
    pub fn from_config(q: &QueueConfig) -> Self {
        let max_bytes = q.max_bytes.bytes();
        QueueOptions {
            max_bytes,
            max_age: q.max_age.get(),
            overflow: q.overflow,
            durability: q.durability,
            segment_bytes: (max_bytes / SEGMENTS_PER_QUEUE)
                .clamp(MIN_SEGMENT_BYTES, DEFAULT_SEGMENT_BYTES),
        }
    }
}

/// One queued message as the bridge sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Records with the same key supersede older unsent ones (`coalesce = true`).
    pub coalesce_key: Option<Arc<str>>,
    /// Wall-clock enqueue time, ms since the epoch (max_age is measured from it).
    pub enqueued_ms: u64,
    /// The encoded message.
    pub data: Bytes,
}

/// What can go wrong with a queue.
#[derive(Debug, Clone, thiserror::Error)]
pub enum QueueError {
    /// The record does not fit (drop-newest policy, or larger than max_bytes).
    #[error("bridge queue full")]
    Full,
    /// A file operation failed.
    #[error("bridge queue I/O error on {}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The error.
        #[source]
        source: Arc<io::Error>,
    },
    /// The queue was closed.
    #[error("bridge queue closed")]
    Closed,
    /// Bytes on disk are not what was written.
    #[error("corrupt bridge queue record in {} at offset {offset}: {reason}", path.display())]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Offset of the bad frame.
        offset: u64,
        /// What is wrong.
        reason: &'static str,
    },
}

impl QueueError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: io::Error) -> Self {
        QueueError::Io {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}

/// Resolves once the appended record is as durable as the queue's durability asks.
pub type Commit = oneshot::Receiver<Result<(), QueueError>>;

/// A snapshot of a queue's figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Live records.
    pub messages: u64,
    /// Frame bytes of live records.
    pub bytes: u64,
    /// Enqueue time of the oldest live record.
    pub oldest_enqueued_ms: Option<u64>,
    /// Dropped by the overflow policy.
    pub dropped_overflow: u64,
    /// Dropped for exceeding max_age.
    pub dropped_age: u64,
    /// Superseded by a newer record with the same key.
    pub coalesced: u64,
    /// Accepted by append.
    pub appended: u64,
    /// Acknowledged by the central broker.
    pub acked: u64,
    /// Lost to a failed write (the Commit said so) or an unreadable record.
    pub io_lost: u64,
}

/// Frames handed to the writer, in sequence order.
#[derive(Debug, Default)]
struct Pending {
    buf: Vec<u8>,
    /// (seq, frame length, spilled from memory rather than appended)
    items: Vec<(u64, u64, bool)>,
    waiters: Vec<oneshot::Sender<Result<(), QueueError>>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    fn push(&mut self, seq: u64, enqueued_ms: u64, key: Option<&str>, data: &[u8], spilled: bool) {
        let start = self.buf.len();
        segment::encode(&mut self.buf, seq, enqueued_ms, key, data);
        let len = (self.buf.len() - start) as u64;
        self.items.push((seq, len, spilled));
    }
}

/// Everything behind the queue's lock. A std Mutex: nothing awaits while holding it, and the
/// writer thread is not a tokio task.
#[derive(Debug)]
struct Inner {
    index: Index,
    pending: Pending,
    /// Segment files on disk: first seq -> durable length.
    segments: std::collections::BTreeMap<u64, u64>,
    /// One open segment for reading records back.
    reader: Option<(u64, std::fs::File)>,
    uplink_up: bool,
    closed: bool,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    opts: QueueOptions,
    inner: Mutex<Inner>,
    wake_writer: Condvar,
    readable: Notify,
    writer: Mutex<Option<JoinHandle<Result<(), QueueError>>>>,
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

/// Milliseconds since the epoch by the wall clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn spill(st: &mut Inner) {
    for (seq, enqueued_ms, key, data) in st.index.spill() {
        st.pending
            .push(seq, enqueued_ms, key.as_deref(), &data, true);
    }
}

impl Queue {
    /// Opens (creating if needed) the queue in `dir`, recovering what the log holds.
    pub fn open(dir: &Path, opts: QueueOptions) -> Result<Queue, QueueError> {
        let recovered = log::recover(dir, &opts)?;
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
            }),
            wake_writer: Condvar::new(),
            readable: Notify::new(),
            writer: Mutex::new(None),
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
        let key = rec
            .coalesce_key
            .filter(|k| !k.is_empty() && k.len() <= segment::MAX_KEY);
        let len = segment::frame_len(key.as_deref(), rec.data.len());
        if len > segment::FRAME_HEADER + segment::MAX_PAYLOAD {
            return Err(QueueError::Full);
        }
        let (tx, rx) = oneshot::channel();
        let mut st = self.shared.lock();
        if st.closed {
            return Err(QueueError::Closed);
        }
        if !st.index.admit(len) {
            drop(st);
            tracing::debug!(dir = %self.shared.dir.display(), "bridge queue full: newest dropped");
            return Err(QueueError::Full);
        }
        let in_memory = self.shared.opts.durability == Durability::Outage && st.uplink_up;
        let entry = Entry {
            seq: 0,
            enqueued_ms: rec.enqueued_ms,
            key: key.clone(),
            len,
            place: if in_memory {
                Place::Memory
            } else {
                Place::Pending
            },
            state: State::Unsent,
            data: Some(Box::new(rec.data.clone())),
        };
        let seq = st.index.push(entry);
        if in_memory {
            let _ = tx.send(Ok(()));
        } else {
            st.pending
                .push(seq, rec.enqueued_ms, key.as_deref(), &rec.data, false);
            st.pending.waiters.push(tx);
            self.shared.wake_writer.notify_one();
        }
        drop(st);
        self.shared.readable.notify_waiters();
        Ok(rx)
    }

    /// Up to `max` records after the send cursor, in order, skipping coalesced-away and expired
    /// ones; advances the send cursor.
    pub fn next_batch(&self, max: usize) -> Vec<(u64, Record)> {
        let mut st = self.shared.lock();
        let picks = st.index.take_batch(max, now_ms());
        let mut out = Vec::with_capacity(picks.len());
        for p in picks {
            let data = match (p.data, p.place) {
                (Some(d), _) => d,
                (None, Place::Disk { seg, offset }) => {
                    match log::read_record(&self.shared.dir, &mut st.reader, seg, offset, p.len) {
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
        out
    }

    /// Resolves when next_batch would return something (or the queue is closed).
    pub async fn wait_nonempty(&self) {
        loop {
            let notified = self.shared.readable.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut st = self.shared.lock();
                if st.closed || st.index.has_sendable(now_ms()) {
                    return;
                }
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
            oldest_enqueued_ms: st.index.oldest_enqueued_ms(),
            dropped_overflow: c.dropped_overflow,
            dropped_age: c.dropped_age,
            coalesced: c.coalesced,
            appended: c.appended,
            acked: c.acked,
            io_lost: c.io_lost,
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
        match handle.map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(QueueError::io(
                &self.shared.dir,
                io::Error::other("queue writer thread panicked"),
            )),
            None => Ok(()),
        }
    }
}
