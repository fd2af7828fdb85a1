//! Opening the queue log: the directory lock, the stored cursor, and a scan of every segment
//! that truncates a torn or corrupt tail (with a warning naming the file and offset) and indexes
//! the records at or after the cursor.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};

use super::cursor::CursorFile;
use super::entry::{NewRecord, Place};
use super::index::Index;
use super::log::sync_dir;
use super::segment;
use super::{QueueError, QueueOptions};

/// Name of the cursor file inside the queue directory.
pub const CURSOR_FILE: &str = "cursor";
/// Name of the lock file: one process, one queue handle per directory.
pub const LOCK_FILE: &str = "lock";

/// What open found on disk.
pub(super) struct Recovered {
    pub index: Index,
    pub segments: BTreeMap<u64, u64>,
    pub cursor: CursorFile,
    pub lock: Flock<File>,
}

/// Takes the directory's lock: two writers on one log would interleave their frames.
fn lock_dir(dir: &Path) -> Result<Flock<File>, QueueError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| QueueError::io(&path, e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        let why = io::Error::new(
            io::ErrorKind::WouldBlock,
            format!("queue directory already in use by another queue handle ({errno})"),
        );
        QueueError::io(&path, why)
    })
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, QueueError> {
    let mut firsts = Vec::new();
    for ent in fs::read_dir(dir).map_err(|e| QueueError::io(dir, e))? {
        let ent = ent.map_err(|e| QueueError::io(dir, e))?;
        if let Some(first) = ent.file_name().to_str().and_then(segment::parse_file_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    Ok(firsts)
}

/// Scans every segment in `dir`, truncating torn tails, and indexes records at or after the
/// stored cursor.
pub(super) fn recover(dir: &Path, opts: &QueueOptions) -> Result<Recovered, QueueError> {
    fs::create_dir_all(dir).map_err(|e| QueueError::io(dir, e))?;
    let lock = lock_dir(dir)?;
    let cursor_path = dir.join(CURSOR_FILE);
    let cursor = CursorFile::open(&cursor_path).map_err(|e| QueueError::io(&cursor_path, e))?;
    let max_age_ms = opts.max_age.as_millis().min(u128::from(u64::MAX)) as u64;
    let mut index = Index::new(cursor.value(), opts.max_bytes, max_age_ms, opts.overflow);
    let mut segments = BTreeMap::new();
    let mut last_seq: Option<u64> = None;
    for first in list_segments(dir)? {
        let path = dir.join(segment::file_name(first));
        let mut stale = false;
        let end = segment::scan(&path, |r| {
            if r.seq < first || last_seq.is_some_and(|l| r.seq <= l) {
                stale = r.seq < first;
                return false;
            }
            last_seq = Some(r.seq);
            if r.seq >= cursor.value() {
                let rec = NewRecord {
                    enqueued_ms: r.enqueued_ms,
                    key: r.key.map(Arc::from),
                    len: r.frame_len,
                    place: Place::Disk {
                        seg: first,
                        offset: r.offset,
                    },
                    data: None,
                };
                index.push_recovered(r.seq, rec);
            }
            true
        })
        .map_err(|e| QueueError::io(&path, e))?;
        if let Some(problem) = end.problem {
            mend_tail(&path, end.valid_len, end.file_len, problem, stale)?;
        }
        if end.valid_len == 0 {
            fs::remove_file(&path).map_err(|e| QueueError::io(&path, e))?;
        } else {
            segments.insert(first, last_seq.map_or(first, |l| l + 1));
        }
    }
    // Makes the lock and cursor files (if new) and any deletion above durable.
    sync_dir(dir)?;
    index.bump_next_seq(cursor.value());
    index.enforce_max_bytes();
    Ok(Recovered {
        index,
        segments,
        cursor,
        lock,
    })
}

/// Cuts a segment back to its last whole record, saying why at the level the cause deserves.
fn mend_tail(
    path: &Path,
    valid_len: u64,
    file_len: u64,
    problem: &str,
    stale: bool,
) -> Result<(), QueueError> {
    // The writer extends segments with zeros ahead of the records, or writes over a consumed
    // segment's older records: either is the clean end of a segment, anything else a torn or
    // corrupt one.
    if stale {
        tracing::debug!(file = %path.display(), offset = valid_len,
            "segment ends where a recycled file's older records begin");
    } else if tail_is_zero(path, valid_len).map_err(|e| QueueError::io(path, e))? {
        tracing::debug!(file = %path.display(), offset = valid_len, "segment ends in zeros");
    } else {
        tracing::warn!(file = %path.display(), offset = valid_len, file_len,
            problem, "bridge queue: truncating a torn or corrupt segment tail");
    }
    truncate(path, valid_len)
}

/// True when every byte of the file from `from` on is zero.
fn tail_is_zero(path: &Path, from: u64) -> io::Result<bool> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut buf = vec![0u8; 64 << 10];
    loop {
        match file.read(&mut buf)? {
            0 => return Ok(true),
            n if buf[..n].iter().any(|&b| b != 0) => return Ok(false),
            _ => {}
        }
    }
}

fn truncate(path: &Path, len: u64) -> Result<(), QueueError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
        .map_err(|e| QueueError::io(path, e))
}
