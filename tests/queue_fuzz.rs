//! Damage anywhere in a bridge queue's directory (bits flipped, bytes overwritten or zeroed,
//! files cut short or gone, the cursor included), as a failing flash card or a power cut in
//! the wrong place leaves it. Opening must never panic (the release binary aborts: the broker
//! would not come up at all), and what the queue then delivers must be records that were
//! written, intact and in order, with every unacknowledged record of the segments before the
//! first damaged one among them.
//!
//! Seeded and deterministic; `EDGEMQ_FUZZ_ITERS` (default 300) and `EDGEMQ_FUZZ_SEED` widen a
//! run by hand.

#[path = "../examples/queue_powercut.rs"]
mod powercut;
#[path = "common/rng.rs"]
mod rng;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use edgemq::queue::{Queue, QueueOptions, segment};
use powercut::{drain_numbers, number, record};
use rng::{Rng, env_u64};

/// Records written, and how many of them the consumer acknowledged before the close.
const RECORDS: u64 = 1_200;
const ACKED: u64 = 150;

fn opts() -> QueueOptions {
    QueueOptions {
        segment_bytes: 64 << 10,
        ..powercut::options()
    }
}

/// Writes the pristine queue; returns each record number's sequence number.
async fn pristine(dir: &Path) -> Vec<u64> {
    let q = Queue::open(dir, opts()).expect("open");
    let commits: Vec<_> = (0..RECORDS)
        .map(|n| q.append(record(n)).expect("append"))
        .collect();
    for c in commits {
        c.await.expect("commit").expect("durable");
    }
    let batch = q.next_batch(RECORDS as usize);
    assert_eq!(batch.len() as u64, RECORDS);
    let mut seq_of = vec![0; RECORDS as usize];
    for (seq, rec) in &batch {
        seq_of[number(rec).expect("number") as usize] = *seq;
    }
    for (seq, _) in &batch[..ACKED as usize] {
        q.ack(*seq);
    }
    q.close().expect("close");
    seq_of
}

/// Damages one file of `files` in place; returns the damaged segment's first sequence number
/// (None for the cursor or another file).
fn damage(rng: &mut Rng, dir: &Path, files: &[String]) -> Option<u64> {
    let name = &files[rng.index(files.len())];
    let path = dir.join(name);
    // a file the previous damage removed
    let Ok(mut b) = std::fs::read(&path) else {
        return None;
    };
    let at = rng.index(b.len().max(1));
    match rng.below(5) {
        0 if !b.is_empty() => b[at] ^= 1 << rng.below(8),
        1 => {
            for i in at..(at + 1 + rng.index(16)).min(b.len()) {
                b[i] = rng.next() as u8;
            }
        }
        2 => {
            let end = (at + 1 + rng.index(4096)).min(b.len());
            b[at..end].fill(0);
        }
        3 => b.truncate(at),
        _ => {
            std::fs::remove_file(&path).expect("remove");
            return segment::parse_file_name(name);
        }
    }
    std::fs::write(&path, &b).expect("write");
    segment::parse_file_name(name)
}

/// Opens the damaged copy and checks what it delivers.
fn check(dir: &Path, seq_of: &[u64], first_damaged: Option<u64>) -> Result<(), String> {
    let q = match Queue::open(dir, opts()) {
        Ok(q) => q,
        // refusing to open is allowed (the log names the file); only a panic is not
        Err(_) => return Ok(()),
    };
    let got = drain_numbers(&q);
    let _ = q.close();
    if let Some(bad) = got.iter().find(|&&n| n >= RECORDS) {
        return Err(format!("delivered a record that was never written: {bad}"));
    }
    if let Some(w) = got.windows(2).find(|w| w[0] >= w[1]) {
        return Err(format!("out of order: {} then {}", w[0], w[1]));
    }
    let limit = first_damaged.unwrap_or(u64::MAX);
    let missing = (ACKED..RECORDS)
        .filter(|&n| seq_of[n as usize] < limit)
        .find(|n| got.binary_search(n).is_err());
    match missing {
        Some(n) => Err(format!(
            "record {n} (sequence {}) lies before the first damaged segment ({limit}) but is gone",
            seq_of[n as usize]
        )),
        None => Ok(()),
    }
}

fn copy_dir(from: &Path, to: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for e in std::fs::read_dir(from).expect("read_dir") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
            names.push(e.file_name().into_string().expect("name"));
        }
    }
    names.sort();
    names
}

#[tokio::test]
async fn damaged_queue_directories_open_without_panicking_and_keep_the_intact_prefix() {
    let iters = env_u64("EDGEMQ_FUZZ_ITERS", 300);
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x0DE7_A11E);
    let base = tempfile::tempdir().expect("tempdir");
    let seq_of = pristine(base.path()).await;
    let segments: BTreeMap<u64, String> = std::fs::read_dir(base.path())
        .expect("read_dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            Some((segment::parse_file_name(&name)?, name))
        })
        .collect();
    assert!(
        segments.len() >= 3,
        "the records should span segments: {segments:?}"
    );
    let mut rng = Rng::new(seed);
    for i in 0..iters {
        let work = tempfile::tempdir().expect("tempdir");
        let files = copy_dir(base.path(), work.path());
        let first_damaged = (0..=rng.below(2))
            .filter_map(|_| damage(&mut rng, work.path(), &files))
            .min();
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            check(work.path(), &seq_of, first_damaged)
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => panic!("iteration {i} (seed {seed:#x}): {why}"),
            Err(_) => panic!("iteration {i} (seed {seed:#x}): opening panicked (printed above)"),
        }
    }
}
