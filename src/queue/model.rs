//! The queue's public types: options, the record, errors, the commit handle and statistics.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::config::model::{Durability, Overflow, QueueConfig};
use crate::router::forward::ForwardError;

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
    /// Under "outage": frame bytes held in memory while the uplink is up; records beyond it
    /// (an uplink slower than the publishers) go to disk, so RAM stays bounded on small boards.
    pub memory_bytes: u64,
}

/// [`QueueOptions::memory_bytes`] of a configured queue: a few seconds of a busy gateway's
/// traffic, small next to a 256 MB board's RAM.
pub const OUTAGE_MEMORY_BYTES: u64 = 4 << 20;

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
            memory_bytes: OUTAGE_MEMORY_BYTES,
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

/// What the router's publisher learns when the queue refused or failed a record of `bridge`.
pub fn forward_error(bridge: &str, e: QueueError) -> ForwardError {
    let bridge = bridge.to_string();
    match e {
        QueueError::Full => ForwardError::QueueFull { bridge },
        QueueError::Closed => ForwardError::Closed { bridge },
        other => ForwardError::Storage {
            bridge,
            reason: other.to_string(),
        },
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
    /// Of those, held only in memory ("outage" with the uplink up).
    pub memory_bytes: u64,
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
    /// Lost: acknowledged once, then unreadable from disk.
    pub io_lost: u64,
    /// Not taken: the write failed (disk full, I/O error) and the Commit said so, so no
    /// publisher was acknowledged for them.
    pub not_stored: u64,
    /// Group commits: writes ended by one fdatasync each (appended / flushes = group size).
    pub flushes: u64,
}
