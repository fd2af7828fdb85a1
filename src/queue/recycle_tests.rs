//! Tests of segment recycling: a consumed segment becomes the next segment's file, and its
//! older records end that segment on reopen instead of coming back.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::{Queue, QueueOptions, Record};
use crate::clock::now_ms;
use crate::config::model::{Durability, Overflow};

const SEGMENT: u64 = 64 << 10;
const SPARE: &str = "spare.seg";

fn opts() -> QueueOptions {
    QueueOptions {
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(86_400),
        overflow: Overflow::DropNewest,
        durability: Durability::Always,
        segment_bytes: SEGMENT,
        memory_bytes: 1 << 20,
    }
}

fn record(n: u64) -> Record {
    let mut data = vec![b'.'; 256];
    data[..8].copy_from_slice(&n.to_le_bytes());
    Record {
        coalesce_key: None,
        enqueued_ms: now_ms(),
        data: Bytes::from(data),
    }
}

async fn append_all(q: &Queue, range: std::ops::Range<u64>) {
    let commits: Vec<_> = range.map(|n| q.append(record(n)).unwrap()).collect();
    for c in commits {
        c.await.unwrap().unwrap();
    }
}

fn drain_numbers(q: &Queue, ack: bool) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let batch = q.next_batch(1000);
        if batch.is_empty() {
            return out;
        }
        for (seq, r) in &batch {
            out.push(u64::from_le_bytes(r.data[..8].try_into().unwrap()));
            if ack {
                q.ack(*seq);
            }
        }
    }
}

fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| super::segment::parse_file_name(n).is_some())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_consumed_segment_is_written_over_and_its_old_records_stay_gone() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts()).unwrap();
    append_all(&q, 0..1000).await;
    assert_eq!(drain_numbers(&q, true), (0..1000).collect::<Vec<_>>());
    // The writer's maintenance may run mid-drain and set a spare aside before the active
    // segment is consumed; the next append goes to a new segment only once that one is
    // sealed and gone too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(dir.path().join(SPARE).exists() && segments(dir.path()).is_empty())
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let spare_len = std::fs::metadata(dir.path().join(SPARE)).unwrap().len();
    assert!(spare_len >= SEGMENT / 2, "spare of {spare_len} bytes");

    // The next segment takes the spare's place, older records and all, at the same length.
    append_all(&q, 1000..1010).await;
    assert!(!dir.path().join(SPARE).exists());
    let newest = segments(dir.path()).pop().unwrap();
    let bytes = std::fs::read(dir.path().join(&newest)).unwrap();
    assert!(bytes.len() as u64 >= spare_len);
    let ours = 10 * super::segment::frame_len(None, 256) as usize;
    assert!(
        bytes[ours..].iter().any(|&b| b != 0),
        "no older records after ours"
    );
    q.close().unwrap();

    let q = Queue::open(dir.path(), opts()).unwrap();
    assert_eq!(drain_numbers(&q, false), (1000..1010).collect::<Vec<_>>());
    q.close().unwrap();
}
