//! The persisted consumer cursor: every record below it was acknowledged (or dropped).
//!
//! The file holds two 16-byte slots, `seq u64 | generation u32 | crc32 u32`, written in turn
//! with an fdatasync each; a write torn by a power cut spoils at most the slot being written, and
//! open takes the valid slot with the highest generation.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const SLOT: u64 = 16;

/// The cursor file, open for updates.
#[derive(Debug)]
pub struct CursorFile {
    file: File,
    path: PathBuf,
    generation: u32,
    value: u64,
}

fn encode(seq: u64, generation: u32) -> [u8; SLOT as usize] {
    let mut b = [0u8; SLOT as usize];
    b[..8].copy_from_slice(&seq.to_le_bytes());
    b[8..12].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&b[..12]);
    b[12..].copy_from_slice(&crc.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> Option<(u64, u32)> {
    let crc = u32::from_le_bytes(b[12..16].try_into().ok()?);
    if crc32fast::hash(&b[..12]) != crc {
        return None;
    }
    let seq = u64::from_le_bytes(b[..8].try_into().ok()?);
    let generation = u32::from_le_bytes(b[8..12].try_into().ok()?);
    Some((seq, generation))
}

impl CursorFile {
    /// Opens (or creates) the cursor file; an unreadable file means cursor 0, with a warning:
    /// everything still in the log is sent again (at-least-once), nothing is lost.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut buf = vec![0u8; 2 * SLOT as usize];
        let got = read_up_to(&file, &mut buf)?;
        let best = buf[..got]
            .chunks_exact(SLOT as usize)
            .filter_map(decode)
            .max_by_key(|&(_, generation)| generation);
        if best.is_none() && got > 0 {
            tracing::warn!(file = %path.display(), "queue cursor unreadable; replaying the whole log");
        }
        let (value, generation) = best.unwrap_or((0, 0));
        Ok(CursorFile {
            file,
            path: path.to_path_buf(),
            generation,
            value,
        })
    }

    /// The last stored cursor.
    pub fn value(&self) -> u64 {
        self.value
    }

    /// The file's path (for error messages).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stores `seq` durably in the slot not holding the current value.
    pub fn store(&mut self, seq: u64) -> io::Result<()> {
        let generation = self.generation.wrapping_add(1);
        let slot = u64::from(generation % 2) * SLOT;
        self.file.write_all_at(&encode(seq, generation), slot)?;
        self.file.sync_data()?;
        self.generation = generation;
        self.value = seq;
        Ok(())
    }
}

fn read_up_to(file: &File, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], got as u64)? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reopen_and_a_torn_slot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cursor");
        let mut c = CursorFile::open(&path).unwrap();
        assert_eq!(c.value(), 0);
        c.store(5).unwrap();
        c.store(9).unwrap();
        assert_eq!(CursorFile::open(&path).unwrap().value(), 9);
        // Spoil the slot holding 9 (generation 2, slot 0): the previous value survives.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[3] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(CursorFile::open(&path).unwrap().value(), 5);
        std::fs::write(&path, [0xffu8; 32]).unwrap();
        assert_eq!(CursorFile::open(&path).unwrap().value(), 0);
    }
}
