//! The queue log on disk: recovery on open (scan every segment, truncate a torn or corrupt
//! tail), the writer thread (group commit: every pending frame in one write and one fdatasync),
//! cursor persistence, and deletion of segments whose records are all done.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::cursor::CursorFile;
use super::policy::{Entry, Index, Place, State};
use super::segment::{self, ReadError};
use super::{Inner, Pending, QueueError, QueueOptions, Shared, now_ms};

/// Name of the cursor file inside the queue directory.
pub const CURSOR_FILE: &str = "cursor";
/// How often the writer wakes without work: age sweep, cursor, segment deletion.
const TICK: Duration = Duration::from_millis(500);
/// The cursor is stored at most this often (and at close, and before deleting segments).
const CURSOR_INTERVAL: Duration = Duration::from_secs(1);
/// A drained queue starts a new segment once the active one holds this share of segment_bytes,
/// so the directory shrinks back after an outage.
const DRAINED_ROTATE_DIVISOR: u64 = 4;

/// What open found on disk.
pub(super) struct Recovered {
    pub index: Index,
    pub segments: BTreeMap<u64, u64>,
    pub cursor: CursorFile,
}

/// Fsyncs a directory so created or deleted entries survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QueueError::io(dir, e))
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
    let cursor_path = dir.join(CURSOR_FILE);
    let cursor = CursorFile::open(&cursor_path).map_err(|e| QueueError::io(&cursor_path, e))?;
    let max_age_ms = opts.max_age.as_millis().min(u128::from(u64::MAX)) as u64;
    let mut index = Index::new(cursor.value(), opts.max_bytes, max_age_ms, opts.overflow);
    let mut segments = BTreeMap::new();
    let mut dir_changed = false;
    let mut last_seq: Option<u64> = None;
    for first in list_segments(dir)? {
        let path = dir.join(segment::file_name(first));
        let end = segment::scan(&path, |r| {
            if r.seq < first || last_seq.is_some_and(|l| r.seq <= l) {
                return false;
            }
            last_seq = Some(r.seq);
            if r.seq >= cursor.value() {
                index.push_recovered(Entry {
                    seq: r.seq,
                    enqueued_ms: r.enqueued_ms,
                    key: r.key.map(Arc::from),
                    len: r.frame_len,
                    place: Place::Disk {
                        seg: first,
                        offset: r.offset,
                    },
                    state: State::Unsent,
                    data: None,
                });
            }
            true
        })
        .map_err(|e| QueueError::io(&path, e))?;
        if let Some(problem) = end.problem {
            tracing::warn!(file = %path.display(), offset = end.valid_len, file_len = end.file_len,
                problem, "bridge queue: truncating a torn or corrupt segment tail");
            truncate(&path, end.valid_len)?;
        }
        if end.valid_len == 0 {
            fs::remove_file(&path).map_err(|e| QueueError::io(&path, e))?;
            dir_changed = true;
        } else {
            segments.insert(first, end.valid_len);
        }
    }
    if dir_changed || segments.is_empty() {
        sync_dir(dir)?;
    }
    index.bump_next_seq(cursor.value());
    index.enforce_max_bytes();
    Ok(Recovered {
        index,
        segments,
        cursor,
    })
}

fn truncate(path: &Path, len: u64) -> Result<(), QueueError> {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len).and_then(|()| f.sync_all()))
        .map_err(|e| QueueError::io(path, e))
}

/// Reads record data back from segment `seg`, keeping that segment open for the next read.
pub(super) fn read_record(
    dir: &Path,
    reader: &mut Option<(u64, File)>,
    seg: u64,
    offset: u64,
    len: u64,
) -> Result<Bytes, QueueError> {
    let path = dir.join(segment::file_name(seg));
    if reader.as_ref().is_none_or(|(s, _)| *s != seg) {
        *reader = Some((
            seg,
            File::open(&path).map_err(|e| QueueError::io(&path, e))?,
        ));
    }
    let Some((_, file)) = reader.as_ref() else {
        return Err(QueueError::io(&path, io::Error::other("segment not open")));
    };
    match segment::read_at(file, offset, len) {
        Ok(d) => Ok(d.data),
        Err(ReadError::Io(e)) => Err(QueueError::io(&path, e)),
        Err(ReadError::Corrupt(reason)) => Err(QueueError::Corrupt {
            path,
            offset,
            reason,
        }),
    }
}

/// The segment being appended to.
struct Active {
    file: File,
    first: u64,
    size: u64,
    path: PathBuf,
}

/// The writer thread's state.
pub(super) struct Writer {
    shared: Arc<Shared>,
    active: Option<Active>,
    cursor: CursorFile,
    cursor_stored: Instant,
}

impl Writer {
    /// A writer that starts a fresh segment at its first write.
    pub(super) fn new(shared: Arc<Shared>, cursor: CursorFile) -> Self {
        Writer {
            shared,
            active: None,
            cursor,
            cursor_stored: Instant::now(),
        }
    }

    /// Runs until the queue is closed and everything pending is written.
    pub(super) fn run(mut self) -> Result<(), QueueError> {
        loop {
            let (batch, closing) = self.wait();
            if let Some(batch) = batch {
                self.commit(batch);
            }
            let maintained = self.maintain(closing);
            if let Err(e) = &maintained {
                tracing::error!(error = %e, "bridge queue maintenance failed");
            }
            if closing {
                return maintained;
            }
        }
    }

    fn wait(&self) -> (Option<Pending>, bool) {
        let mut st = self.shared.lock();
        if st.pending.is_empty() && !st.closed {
            st = match self.shared.wake_writer.wait_timeout(st, TICK) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        let batch = (!st.pending.is_empty()).then(|| std::mem::take(&mut st.pending));
        (batch, st.closed)
    }

    /// Writes one batch durably and tells its records and waiters how it went.
    fn commit(&mut self, batch: Pending) {
        let first_seq = batch.items.first().map_or(0, |i| i.0);
        let result = self.write(&batch.buf, first_seq);
        let mut st = self.shared.lock();
        match &result {
            Ok((seg, base)) => {
                let mut offset = *base;
                for &(seq, len, _) in &batch.items {
                    st.index.placed(seq, *seg, offset);
                    offset += len;
                }
                st.segments.insert(*seg, offset);
            }
            Err(e) => {
                tracing::error!(error = %e, records = batch.items.len(),
                    "bridge queue write failed; their publishers are not acknowledged");
                for &(seq, _, spilled) in &batch.items {
                    st.index.write_failed(seq, spilled);
                }
            }
        }
        drop(st);
        let outcome = result.map(|_| ());
        for w in batch.waiters {
            let _ = w.send(outcome.clone());
        }
    }

    /// Appends `buf` to the active segment with one write and one fdatasync.
    fn write(&mut self, buf: &[u8], first_seq: u64) -> Result<(u64, u64), QueueError> {
        let full = self.active.as_ref().is_none_or(|a| {
            a.size > 0 && a.size + buf.len() as u64 > self.shared.opts.segment_bytes
        });
        if full {
            self.rotate(first_seq)?;
        }
        let Some(a) = self.active.as_mut() else {
            return Err(QueueError::io(
                &self.shared.dir,
                io::Error::other("no active segment"),
            ));
        };
        let base = a.size;
        match a
            .file
            .write_all_at(buf, base)
            .and_then(|()| a.file.sync_data())
        {
            Ok(()) => {
                a.size += buf.len() as u64;
                Ok((a.first, base))
            }
            Err(e) => {
                // Never leave a partial frame that later appends would hide behind; after a
                // failed fdatasync the file's state is unknown, so start a new one next time.
                let rewound = a.file.set_len(base).is_ok();
                let err = QueueError::io(&a.path, e);
                let enospc = matches!(&err, QueueError::Io { source, .. }
                    if source.raw_os_error() == Some(nix::libc::ENOSPC));
                if !rewound || !enospc {
                    self.active = None;
                }
                Err(err)
            }
        }
    }

    fn rotate(&mut self, first_seq: u64) -> Result<(), QueueError> {
        self.active = None;
        let path = self.shared.dir.join(segment::file_name(first_seq));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| QueueError::io(&path, e))?;
        sync_dir(&self.shared.dir)?;
        self.active = Some(Active {
            file,
            first: first_seq,
            size: 0,
            path,
        });
        Ok(())
    }

    /// Age sweep, cursor storage and deletion of consumed segments.
    fn maintain(&mut self, closing: bool) -> Result<(), QueueError> {
        let (cursor, doomed) = {
            let shared = self.shared.clone();
            let mut st = shared.lock();
            let swept = st.index.sweep(now_ms());
            if swept > 0 {
                tracing::warn!(
                    dropped = swept,
                    "bridge queue: records older than max_age dropped"
                );
            }
            self.seal_if_drained(&st, closing);
            let cursor = st.index.cursor();
            (cursor, self.consumed_segments(&st, cursor))
        };
        let due = closing || !doomed.is_empty() || self.cursor_stored.elapsed() >= CURSOR_INTERVAL;
        if cursor != self.cursor.value() && due {
            let path = self.cursor.path().to_path_buf();
            self.cursor
                .store(cursor)
                .map_err(|e| QueueError::io(&path, e))?;
            self.cursor_stored = Instant::now();
        }
        if doomed.is_empty() {
            return Ok(());
        }
        {
            let mut st = self.shared.lock();
            for first in &doomed {
                st.segments.remove(first);
            }
            if st.reader.as_ref().is_some_and(|(s, _)| doomed.contains(s)) {
                st.reader = None;
            }
        }
        for first in &doomed {
            let path = self.shared.dir.join(segment::file_name(*first));
            fs::remove_file(&path).map_err(|e| QueueError::io(&path, e))?;
        }
        sync_dir(&self.shared.dir)
    }

    /// Stops appending to the active segment when every record is done and it is big enough
    /// (any size at close), so it can be deleted.
    fn seal_if_drained(&mut self, st: &Inner, closing: bool) {
        let threshold = if closing {
            1
        } else {
            self.shared.opts.segment_bytes / DRAINED_ROTATE_DIVISOR
        };
        let drained = st.index.is_empty() && st.pending.is_empty();
        if drained && self.active.as_ref().is_some_and(|a| a.size >= threshold) {
            self.active = None;
        }
    }

    /// Sealed segments whose records all lie below the cursor.
    fn consumed_segments(&self, st: &Inner, cursor: u64) -> Vec<u64> {
        let active = self.active.as_ref().map(|a| a.first);
        let firsts: Vec<u64> = st.segments.keys().copied().collect();
        let mut doomed = Vec::new();
        for (i, &first) in firsts.iter().enumerate() {
            if Some(first) == active {
                break;
            }
            let end = firsts.get(i + 1).copied().unwrap_or(st.index.next_seq());
            if end > cursor {
                break;
            }
            doomed.push(first);
        }
        doomed
    }
}
