//! Reading records back from the segments for the uplink, through one cached open segment
//! (a draining backlog reads a run of consecutive records with one read).

use std::fs::File;
use std::io;
use std::path::Path;

use bytes::Bytes;

use super::QueueError;
use super::segment::{self, ReadError};

/// Reads record data back from segment `seg`, keeping that segment open for the next read.
pub(super) fn read_record(
    dir: &Path,
    reader: &mut Option<(u64, File)>,
    seg: u64,
    offset: u64,
    len: u64,
) -> Result<Bytes, QueueError> {
    let mut run = read_run(dir, reader, seg, offset, &[len])?;
    run.pop()
        .ok_or_else(|| QueueError::io(dir, io::Error::other("empty read")))
}

/// Reads the data of consecutive records (frames of `lens` bytes from `offset`) in one read.
pub(super) fn read_run(
    dir: &Path,
    reader: &mut Option<(u64, File)>,
    seg: u64,
    offset: u64,
    lens: &[u64],
) -> Result<Vec<Bytes>, QueueError> {
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
    match segment::read_run(file, offset, lens) {
        Ok(run) => Ok(run.into_iter().map(|d| d.data).collect()),
        Err(ReadError::Io(e)) => Err(QueueError::io(&path, e)),
        Err(ReadError::Corrupt(reason)) => Err(QueueError::Corrupt {
            path,
            offset,
            reason,
        }),
    }
}
