//! The queue log's writer thread: group commit (every pending frame in one write and one
//! fdatasync, split only at segment boundaries, briefly lingering for more records) and segment
//! rotation (over a recycled consumed segment when there is one). The upkeep between commits
//! (cursor persistence, deletion of segments whose records are all done) is in
//! `log/maintain.rs`, reads back in `reader.rs`.

use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use super::cursor::CursorFile;
use super::segment;
use super::state::REFUSE_AFTER_FAILURE;
use super::{Inner, Pending, PendingItem, QueueError, Shared};

mod maintain;

/// The file is extended in zero-filled steps of this size: an fdatasync that does not change
/// the file's length needs no journal commit, which at one record per flush cuts the bytes
/// reaching flash by about three quarters.
const ZERO_CHUNK: u64 = 64 << 10;
/// Only batches up to this size extend the file with zeros: a large batch pays its journal
/// commit over many records, and padding it would write more than it saves.
const PAD_BATCHES_UP_TO: u64 = 16 << 10;
/// Group commit lingers at most this long for more records before its write and fdatasync.
/// Each flush rewrites the partly filled last 4 KiB block, so at 6–20 records per flush that
/// rewrite alone costs 200–700 B per 256 B record; waiting this little for the publishers'
/// next records roughly halves it, well under a QoS 1 round trip over any real link.
const LINGER_MAX: Duration = Duration::from_millis(1);
/// While lingering the writer looks for new records this often; a look that finds none ends
/// the linger (the publishers have nothing more in flight).
const LINGER_POLL: Duration = Duration::from_micros(100);
/// A batch of this many records (or LINGER_BYTES) is written without lingering.
const LINGER_RECORDS: usize = 32;
/// A batch of this many bytes is written without lingering: the block rewrite is amortised.
const LINGER_BYTES: usize = 16 << 10;
/// Only a flush this soon after the previous one lingers: a lone record after a quiet spell
/// is written at once.
const LINGER_RECENT: Duration = Duration::from_millis(2);
/// Under "always", a consumed segment is kept under this name (no segment's) for the next
/// rotation to write over: its blocks are allocated and written, so appends into it change no
/// file length and skip both the zero padding (as many bytes again as the records) and the
/// journal commit that extending a file costs. Its old frames all have sequence numbers
/// below the new segment's first, which recovery's scan rejects, so they end the segment.
/// The directory keeps at most this one consumed segment.
const SPARE_FILE: &str = "spare.seg";
/// How often the writer wakes without work: age sweep, cursor, segment deletion.
const TICK: Duration = Duration::from_millis(500);

/// Fsyncs a directory so created or deleted entries survive a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), QueueError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| QueueError::io(dir, e))
}

fn is_enospc(e: &io::Error) -> bool {
    e.raw_os_error() == Some(nix::libc::ENOSPC)
}

/// The segment being appended to.
struct Active {
    file: File,
    first: u64,
    /// Bytes of records written (the next write's offset).
    size: u64,
    /// File length: records, then zeros up to a ZERO_CHUNK boundary.
    zeroed_to: u64,
    path: PathBuf,
}

/// The writer thread's state.
pub(super) struct Writer {
    shared: Arc<Shared>,
    active: Option<Active>,
    cursor: CursorFile,
    cursor_stored: Instant,
    /// When the last batch was written, and how many records it held: the records it acked
    /// are the ones publishers are about to replace, so the next batch waits for as many.
    last_flush: Option<(Instant, usize)>,
}

impl Writer {
    /// A writer that starts a fresh segment at its first write.
    pub(super) fn new(shared: Arc<Shared>, cursor: CursorFile) -> Self {
        Writer {
            shared,
            active: None,
            cursor,
            cursor_stored: Instant::now(),
            last_flush: None,
        }
    }

    /// Runs until the queue is closed and everything pending is written.
    pub(super) fn run(mut self) -> Result<(), QueueError> {
        loop {
            let (batch, closing) = self.wait();
            if let Some(batch) = batch {
                let records = batch.items.len();
                self.commit(batch);
                self.last_flush = Some((Instant::now(), records));
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
        if !st.pending.is_empty() && !st.closed {
            st = self.linger(st);
        }
        let batch = (!st.pending.is_empty()).then(|| std::mem::take(&mut st.pending));
        (batch, st.closed)
    }

    /// Holds a small batch back while records keep arriving, up to LINGER_MAX, so one write and
    /// fdatasync covers more of them. Lingers only right after a flush of several records
    /// (publishers with more in flight); a lone publisher waiting on each ack never waits.
    fn linger<'a>(&'a self, mut st: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        let Some((flushed, last)) = self.last_flush else {
            return st;
        };
        let target = last.min(LINGER_RECORDS);
        let start = Instant::now();
        if target < 2 || start.duration_since(flushed) > LINGER_RECENT {
            return st;
        }
        let mut seen = st.pending.items.len();
        while seen < target && st.pending.buf.len() < LINGER_BYTES && !st.closed {
            if start.elapsed() + LINGER_POLL > LINGER_MAX {
                break;
            }
            drop(st);
            std::thread::sleep(LINGER_POLL);
            st = self.shared.lock();
            let now = st.pending.items.len();
            if now == seen {
                break;
            }
            seen = now;
        }
        st
    }

    /// Writes one batch durably, in as few writes as segment boundaries allow (usually one),
    /// and tells its records and waiters how it went.
    fn commit(&mut self, batch: Pending) {
        let mut items = batch.items.into_iter().peekable();
        let mut start = 0usize;
        while items.peek().is_some() {
            let room = self.room();
            let mut chunk = Vec::new();
            let mut len = 0u64;
            while let Some(item) = items.next_if(|i| chunk.is_empty() || len + i.len <= room) {
                len += item.len;
                chunk.push(item);
            }
            let end = start + len as usize;
            let first_seq = chunk.first().map_or(0, |i| i.seq);
            let result = self.write(&batch.buf[start..end], first_seq);
            start = end;
            let Err(e) = &result else {
                self.settle(chunk, result);
                continue;
            };
            // Nothing queued behind a failed record may be written before that record is
            // sent again: on a full disk a smaller, later write can still fit, and would
            // overtake the publisher's re-sent messages. The rest of the batch and every
            // record already waiting fail with it, and records bound for disk are refused
            // for a while, from before any publisher hears of the failure.
            let e = e.clone();
            let mut rest: Vec<_> = items.collect();
            {
                let mut st = self.shared.lock();
                rest.append(&mut std::mem::take(&mut st.pending).items);
                st.refusing = Some((Instant::now() + REFUSE_AFTER_FAILURE, e.clone()));
            }
            self.settle(chunk, result);
            if !rest.is_empty() {
                self.settle(rest, Err(e));
            }
            return;
        }
    }

    /// Bytes that fit before a new segment is started (a whole one if it starts now).
    fn room(&self) -> u64 {
        let seg = self.shared.opts.segment_bytes;
        match &self.active {
            Some(a) if a.size < seg => seg - a.size,
            _ => seg,
        }
    }

    fn settle(&mut self, chunk: Vec<PendingItem>, result: Result<(u64, u64), QueueError>) {
        let mut st = self.shared.lock();
        match &result {
            Ok((seg, base)) => {
                let mut offset = *base;
                for item in &chunk {
                    st.index.placed(item.seq, *seg, offset);
                    offset += item.len;
                }
                if let Some(last) = chunk.last() {
                    st.segments.insert(*seg, last.seq + 1);
                }
                st.flushes += 1;
            }
            Err(e) => {
                tracing::error!(error = %e, records = chunk.len(),
                    "bridge queue write failed; their publishers are not acknowledged");
                for item in &chunk {
                    st.index.write_failed(item.seq, item.waiter.is_none());
                }
            }
        }
        drop(st);
        let outcome = result.map(|_| ());
        // Newest first: a publisher's task waits on its oldest record only, so it wakes once,
        // after all of its records in this chunk resolved, and acks them in one write.
        for w in chunk.into_iter().rev().filter_map(|i| i.waiter) {
            w.send(&outcome);
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
        let end = base + buf.len() as u64;
        let (bytes, mut zeroed_to) = if end <= a.zeroed_to {
            (Cow::Borrowed(buf), a.zeroed_to)
        } else if buf.len() as u64 > PAD_BATCHES_UP_TO {
            (Cow::Borrowed(buf), end)
        } else {
            let seg = self.shared.opts.segment_bytes;
            let to = (end.div_ceil(ZERO_CHUNK) * ZERO_CHUNK).min(seg.max(end));
            let mut v = Vec::with_capacity((to - base) as usize);
            v.extend_from_slice(buf);
            v.resize((to - base) as usize, 0);
            (Cow::Owned(v), to)
        };
        let attempt = |file: &File, bytes: &[u8]| {
            file.write_all_at(bytes, base)
                .and_then(|()| file.sync_data())
        };
        let mut result = attempt(&a.file, &bytes);
        if bytes.len() > buf.len() && result.as_ref().is_err_and(is_enospc) {
            // Room for the records but not the zero padding: write just the records.
            let _ = a.file.set_len(base);
            result = attempt(&a.file, buf);
            zeroed_to = end;
        }
        match result {
            Ok(()) => {
                a.size = end;
                a.zeroed_to = zeroed_to;
                Ok((a.first, base))
            }
            Err(e) => {
                // Never leave a partial frame that later appends would hide behind; after a
                // failed fdatasync the file's state is unknown, so start a new one next time.
                let rewound = a.file.set_len(base).is_ok();
                a.zeroed_to = base;
                let err = QueueError::io(&a.path, e);
                if !rewound || !matches!(&err, QueueError::Io { source, .. } if is_enospc(source)) {
                    self.active = None;
                }
                Err(err)
            }
        }
    }

    fn rotate(&mut self, first_seq: u64) -> Result<(), QueueError> {
        self.active = None;
        let path = self.shared.dir.join(segment::file_name(first_seq));
        let spare = self.shared.dir.join(SPARE_FILE);
        let (file, zeroed_to) = match fs::rename(&spare, &path) {
            Ok(()) => {
                let file = OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .map_err(|e| QueueError::io(&path, e))?;
                let len = file.metadata().map_err(|e| QueueError::io(&path, e))?.len();
                (file, len)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let file = OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .map_err(|e| QueueError::io(&path, e))?;
                (file, 0)
            }
            Err(e) => return Err(QueueError::io(&spare, e)),
        };
        sync_dir(&self.shared.dir)?;
        self.active = Some(Active {
            file,
            first: first_seq,
            size: 0,
            zeroed_to,
            path,
        });
        Ok(())
    }
}
