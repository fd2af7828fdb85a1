//! One segment file of the queue log: the record frame, the scan that finds a torn or corrupt
//! tail on open, and random reads of one record.
//!
//! Frame (little endian): `len u32 | crc32 u32 | payload`, the CRC covering the length bytes and
//! the payload, so a zeroed or half-written header fails it too. Payload:
//! `seq u64 | enqueued_ms u64 | key_len u16 | key | data`.

use std::fs::File;
use std::io::{self, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;

/// Bytes before each payload: length and CRC32.
pub const FRAME_HEADER: u64 = 8;
/// Fixed part of a payload: seq, enqueued_ms, key length.
pub const RECORD_HEADER: u64 = 18;
/// Longest coalesce key stored (an MQTT topic is at most 65535 bytes).
pub const MAX_KEY: usize = u16::MAX as usize;
/// Largest payload a frame may carry: an MQTT packet (256 MiB) plus key and header.
pub const MAX_PAYLOAD: u64 = (256 << 20) + MAX_KEY as u64 + RECORD_HEADER;
/// Read buffer of the open-time scan.
const SCAN_BUFFER: usize = 64 << 10;
const SUFFIX: &str = ".seg";
const NAME_DIGITS: usize = 20;

/// File name of the segment whose first record has `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{SUFFIX}")
}

/// The first sequence number a segment file name stands for, if it is one.
pub fn parse_file_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(SUFFIX)?;
    if stem.len() != NAME_DIGITS || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Bytes a record takes on disk, frame header included.
pub fn frame_len(key: Option<&str>, data_len: usize) -> u64 {
    FRAME_HEADER + RECORD_HEADER + key.map_or(0, str::len) as u64 + data_len as u64
}

/// Appends the frame of one record to `out`. The key must be at most [`MAX_KEY`] bytes.
pub fn encode(out: &mut Vec<u8>, seq: u64, enqueued_ms: u64, key: Option<&str>, data: &[u8]) {
    let key = key.unwrap_or("").as_bytes();
    let payload_len = (RECORD_HEADER as usize + key.len() + data.len()) as u32;
    let start = out.len();
    out.extend_from_slice(&payload_len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&enqueued_ms.to_le_bytes());
    out.extend_from_slice(&(key.len() as u16).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(data);
    let crc = checksum(&out[start..start + 4], &out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

fn checksum(len: &[u8], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len);
    h.update(payload);
    h.finalize()
}

/// The header fields of a payload and where its key and data are.
struct Parsed<'a> {
    seq: u64,
    enqueued_ms: u64,
    key: Option<&'a str>,
    data_start: usize,
}

fn parse(payload: &[u8]) -> Result<Parsed<'_>, &'static str> {
    let fixed = RECORD_HEADER as usize;
    if payload.len() < fixed {
        return Err("payload shorter than its header");
    }
    let u64_at = |i: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[i..i + 8]);
        u64::from_le_bytes(b)
    };
    let key_len = u16::from_le_bytes([payload[16], payload[17]]) as usize;
    let data_start = fixed + key_len;
    if data_start > payload.len() {
        return Err("key longer than the record");
    }
    let key = std::str::from_utf8(&payload[fixed..data_start]).map_err(|_| "key is not UTF-8")?;
    Ok(Parsed {
        seq: u64_at(0),
        enqueued_ms: u64_at(8),
        key: (!key.is_empty()).then_some(key),
        data_start,
    })
}

/// One record met by [`scan`].
pub struct Scanned<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Wall-clock enqueue time, ms since the epoch.
    pub enqueued_ms: u64,
    /// Coalesce key.
    pub key: Option<&'a str>,
    /// Offset of the frame in the file.
    pub offset: u64,
    /// Length of the frame, header included.
    pub frame_len: u64,
}

/// Where a scan stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Length of the prefix made of whole, valid records.
    pub valid_len: u64,
    /// Length of the file.
    pub file_len: u64,
    /// Why the scan stopped before the end of the file.
    pub problem: Option<&'static str>,
}

/// Reads every record of a segment in order, handing each to `visit` (which returns false to
/// reject it, e.g. a sequence number going backwards); stops at the first invalid frame.
pub fn scan(path: &Path, mut visit: impl FnMut(Scanned<'_>) -> bool) -> io::Result<ScanEnd> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(SCAN_BUFFER, file);
    let mut payload = Vec::new();
    let mut offset = 0u64;
    let end = |valid_len, problem| ScanEnd {
        valid_len,
        file_len,
        problem,
    };
    loop {
        let left = file_len - offset;
        if left == 0 {
            return Ok(end(offset, None));
        }
        if left < FRAME_HEADER {
            return Ok(end(offset, Some("torn frame header")));
        }
        let mut header = [0u8; FRAME_HEADER as usize];
        reader.read_exact(&mut header)?;
        let len = u64::from(u32::from_le_bytes([
            header[0], header[1], header[2], header[3],
        ]));
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if !(RECORD_HEADER..=MAX_PAYLOAD).contains(&len) {
            return Ok(end(offset, Some("impossible record length")));
        }
        if len > left - FRAME_HEADER {
            return Ok(end(offset, Some("torn record (file ends inside it)")));
        }
        payload.resize(len as usize, 0);
        reader.read_exact(&mut payload)?;
        if checksum(&header[..4], &payload) != crc {
            return Ok(end(offset, Some("CRC mismatch")));
        }
        let parsed = match parse(&payload) {
            Ok(p) => p,
            Err(why) => return Ok(end(offset, Some(why))),
        };
        let frame_len = FRAME_HEADER + len;
        let accepted = visit(Scanned {
            seq: parsed.seq,
            enqueued_ms: parsed.enqueued_ms,
            key: parsed.key,
            offset,
            frame_len,
        });
        if !accepted {
            return Ok(end(offset, Some("sequence number out of order")));
        }
        offset += frame_len;
    }
}

/// A record read back from a segment.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// Sequence number.
    pub seq: u64,
    /// Wall-clock enqueue time, ms since the epoch.
    pub enqueued_ms: u64,
    /// Coalesce key.
    pub key: Option<Arc<str>>,
    /// The record's data.
    pub data: Bytes,
}

/// Why a record could not be read back.
#[derive(Debug)]
pub enum ReadError {
    /// The read itself failed.
    Io(io::Error),
    /// The bytes are not the record that was written there.
    Corrupt(&'static str),
}

/// Reads and verifies the frame of `frame_len` bytes at `offset`.
pub fn read_at(file: &File, offset: u64, frame_len: u64) -> Result<Decoded, ReadError> {
    let mut decoded = read_run(file, offset, &[frame_len])?;
    decoded.pop().ok_or(ReadError::Corrupt("no record"))
}

/// Reads the consecutive frames of `frame_lens` bytes starting at `offset` with one read, and
/// verifies each. The records' data share the one buffer.
pub fn read_run(file: &File, offset: u64, frame_lens: &[u64]) -> Result<Vec<Decoded>, ReadError> {
    let possible = FRAME_HEADER + RECORD_HEADER..=FRAME_HEADER + MAX_PAYLOAD;
    if frame_lens.iter().any(|l| !possible.contains(l)) {
        return Err(ReadError::Corrupt("impossible record length"));
    }
    let total: u64 = frame_lens.iter().sum();
    let mut buf =
        vec![0u8; usize::try_from(total).map_err(|_| ReadError::Corrupt("run too long"))?];
    file.read_exact_at(&mut buf, offset)
        .map_err(ReadError::Io)?;
    let buf = Bytes::from(buf);
    let mut out = Vec::with_capacity(frame_lens.len());
    let mut at = 0usize;
    for &len in frame_lens {
        let end = at + len as usize;
        out.push(verify(buf.slice(at..end))?);
        at = end;
    }
    Ok(out)
}

/// Checks one whole frame (length, CRC, record header) and decodes it.
fn verify(frame: Bytes) -> Result<Decoded, ReadError> {
    let len = u32::from_le_bytes([frame[0], frame[1], frame[2], frame[3]]);
    let crc = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
    if u64::from(len) + FRAME_HEADER != frame.len() as u64 {
        return Err(ReadError::Corrupt("record length changed on disk"));
    }
    if checksum(&frame[..4], &frame[8..]) != crc {
        return Err(ReadError::Corrupt("CRC mismatch"));
    }
    let parsed = parse(&frame[8..]).map_err(ReadError::Corrupt)?;
    let (seq, enqueued_ms) = (parsed.seq, parsed.enqueued_ms);
    let key = parsed.key.map(Arc::from);
    let data_start = 8 + parsed.data_start;
    Ok(Decoded {
        seq,
        enqueued_ms,
        key,
        data: frame.slice(data_start..),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_records(path: &Path, n: u64) -> Vec<u8> {
        let mut buf = Vec::new();
        for seq in 0..n {
            encode(
                &mut buf,
                seq,
                1000 + seq,
                Some("k/1"),
                format!("data {seq}").as_bytes(),
            );
        }
        File::create(path).unwrap().write_all(&buf).unwrap();
        buf
    }

    fn scan_all(path: &Path) -> (Vec<u64>, ScanEnd) {
        let mut seqs = Vec::new();
        let end = scan(path, |r| {
            seqs.push(r.seq);
            true
        })
        .unwrap();
        (seqs, end)
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(parse_file_name(&file_name(42)), Some(42));
        assert_eq!(parse_file_name(&file_name(u64::MAX)), Some(u64::MAX));
        assert_eq!(parse_file_name("42.seg"), None);
        assert_eq!(parse_file_name("cursor"), None);
    }

    #[test]
    fn scan_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        let buf = write_records(&path, 5);
        let (seqs, end) = scan_all(&path);
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        assert_eq!(end.valid_len, buf.len() as u64);
        assert_eq!(end.problem, None);
        let one = frame_len(Some("k/1"), 6);
        let rec = read_at(&File::open(&path).unwrap(), one, one).unwrap();
        assert_eq!((rec.seq, rec.enqueued_ms), (1, 1001));
        assert_eq!(rec.key.as_deref(), Some("k/1"));
        assert_eq!(&rec.data[..], b"data 1");
    }

    #[test]
    fn a_run_is_read_with_one_read_and_checked_per_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        let mut buf = write_records(&path, 4);
        let one = frame_len(Some("k/1"), 6);
        let file = File::open(&path).unwrap();
        let run = read_run(&file, one, &[one, one, one]).unwrap();
        let seqs: Vec<u64> = run.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3]);
        assert_eq!(&run[2].data[..], b"data 3");
        // A flipped byte in the middle record fails the run.
        let mid = (2 * one + one - 1) as usize;
        buf[mid] ^= 0xff;
        File::create(&path).unwrap().write_all(&buf).unwrap();
        let file = File::open(&path).unwrap();
        assert!(matches!(
            read_run(&file, one, &[one, one, one]),
            Err(ReadError::Corrupt("CRC mismatch"))
        ));
        assert!(read_at(&file, one, one).is_ok());
    }

    #[test]
    fn torn_and_flipped_tails_stop_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(0));
        let buf = write_records(&path, 5);
        let one = frame_len(Some("k/1"), 6) as usize;
        for cut in [buf.len() - 1, buf.len() - one + 3, buf.len() - one + 9] {
            std::fs::write(&path, &buf[..cut]).unwrap();
            let (seqs, end) = scan_all(&path);
            assert_eq!(seqs, vec![0, 1, 2, 3], "cut at {cut}");
            assert_eq!(end.valid_len, (4 * one) as u64);
            assert!(end.problem.is_some());
        }
        let mut flipped = buf.clone();
        flipped[2 * one + 20] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        let (seqs, end) = scan_all(&path);
        assert_eq!(seqs, vec![0, 1]);
        assert_eq!(end.problem, Some("CRC mismatch"));
        let mut zeroed = buf;
        zeroed.extend_from_slice(&[0u8; 64]);
        std::fs::write(&path, &zeroed).unwrap();
        assert_eq!(scan_all(&path).0.len(), 5);
    }
}
