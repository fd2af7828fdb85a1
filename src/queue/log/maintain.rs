//! The queue writer's upkeep between commits: the age sweep, storing the cursor, sealing a
//! drained active segment, and deleting (or, under "always", keeping one as the spare) the
//! segments whose records are all done.

use std::fs;
use std::time::{Duration, Instant};

use super::{SPARE_FILE, Writer, sync_dir};
use crate::clock::checked_now_ms;
use crate::config::model::Durability;
use crate::queue::segment;
use crate::queue::{Inner, QueueError};

/// The cursor is stored at most this often (and at close, and before deleting segments).
const CURSOR_INTERVAL: Duration = Duration::from_secs(1);
/// A drained queue starts a new segment once the active one holds this share of segment_bytes,
/// so the directory shrinks back after an outage.
const DRAINED_ROTATE_DIVISOR: u64 = 4;

impl Writer {
    /// Age sweep, cursor storage and deletion of consumed segments.
    pub(super) fn maintain(&mut self, closing: bool) -> Result<(), QueueError> {
        let (cursor, doomed, on_disk) = {
            let shared = self.shared.clone();
            let mut st = shared.lock();
            st.index.sweep(checked_now_ms());
            st.index.compact();
            st.report_drops(&shared.dir);
            let cursor = st.index.cursor();
            self.seal_if_consumed(&st, cursor, closing);
            (
                cursor,
                self.consumed_segments(&st, cursor),
                !st.segments.is_empty(),
            )
        };
        // With no segment on disk a stale cursor skips nothing: not writing it keeps "outage"
        // durability at zero writes while the uplink is up.
        let due = closing || !doomed.is_empty() || self.cursor_stored.elapsed() >= CURSOR_INTERVAL;
        if cursor != self.cursor.value() && due && on_disk {
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
        // Under "always" the longest of them (replacing any older spare) becomes the next
        // segment's file. "outage" writes only while the uplink is down: its directory shrinks
        // back to nothing instead.
        let path_of = |first: u64| self.shared.dir.join(segment::file_name(first));
        let recycle = self.shared.opts.durability == Durability::Always;
        let kept = doomed
            .iter()
            .copied()
            .filter(|_| recycle)
            .max_by_key(|&f| fs::metadata(path_of(f)).map_or(0, |m| m.len()));
        for &first in &doomed {
            let path = path_of(first);
            if Some(first) == kept {
                let spare = self.shared.dir.join(SPARE_FILE);
                fs::rename(&path, &spare).map_err(|e| QueueError::io(&path, e))?;
            } else {
                fs::remove_file(&path).map_err(|e| QueueError::io(&path, e))?;
            }
        }
        sync_dir(&self.shared.dir)
    }

    /// Stops appending to the active segment once all its records are done and it is big enough
    /// (any size at close, or while "outage" keeps new records in memory), so it can be deleted.
    fn seal_if_consumed(&mut self, st: &Inner, cursor: u64, closing: bool) {
        let Some(a) = &self.active else { return };
        let in_memory = self.shared.opts.durability == Durability::Outage && st.uplink_up;
        let threshold = if closing || in_memory {
            1
        } else {
            self.shared.opts.segment_bytes / DRAINED_ROTATE_DIVISOR
        };
        let consumed = st.segments.get(&a.first).is_some_and(|&end| end <= cursor);
        if consumed && a.size >= threshold {
            self.active = None;
        }
    }

    /// Sealed segments whose records all lie below the cursor.
    fn consumed_segments(&self, st: &Inner, cursor: u64) -> Vec<u64> {
        let active = self.active.as_ref().map(|a| a.first);
        st.segments
            .iter()
            .filter(|&(&first, &end)| end <= cursor && Some(first) != active)
            .map(|(&first, _)| first)
            .collect()
    }
}
