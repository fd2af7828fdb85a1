//! "outage" durability: nothing written while the uplink keeps up, a bounded backlog in memory
//! and the rest on disk when it does not.

use super::*;

#[tokio::test]
async fn outage_durability_writes_nothing_while_up_and_spills_when_down() {
    let dir = tempfile::tempdir().unwrap();
    let o = QueueOptions {
        durability: Durability::Outage,
        ..opts(1 << 20)
    };
    let q = Queue::open(dir.path(), o.clone()).unwrap();
    q.set_uplink_up(true);
    append_all(&q, 0..100).await;
    let batch = q.next_batch(50);
    batch.iter().for_each(|(seq, _)| q.ack(*seq));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(dir_bytes(dir.path()), 0, "written while the uplink was up");

    q.set_uplink_up(false);
    // Appends while down are durable, and the spill went to the writer before them.
    append_all(&q, 100..110).await;
    let frame = segment::frame_len(None, powercut::RECORD_BYTES);
    assert!(segment_bytes_on_disk(dir.path()) >= 60 * frame);
    q.rewind();
    drop(q); // no close: what is on disk must be enough
    let q = reopen_when_released(dir.path(), o);
    // Back up: the backlog drains, its segment goes, and nothing more is written.
    q.set_uplink_up(true);
    let batch = q.next_batch(100);
    assert_eq!(
        batch
            .iter()
            .filter_map(|(_, r)| number(r))
            .collect::<Vec<_>>(),
        (50..110).collect::<Vec<_>>()
    );
    batch.iter().for_each(|(seq, _)| q.ack(*seq));
    let deadline = Instant::now() + Duration::from_secs(5);
    while segment_bytes_on_disk(dir.path()) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(segment_bytes_on_disk(dir.path()), 0);
    let cursor = std::fs::read(dir.path().join("cursor")).unwrap();
    for n in 200..300 {
        q.append(record(n)).unwrap().await.unwrap().unwrap();
        q.next_batch(1).iter().for_each(|(seq, _)| q.ack(*seq));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(segment_bytes_on_disk(dir.path()), 0);
    assert_eq!(
        std::fs::read(dir.path().join("cursor")).unwrap(),
        cursor,
        "cursor rewritten while up"
    );
    q.close().unwrap();
}

#[tokio::test]
async fn outage_keeps_a_bounded_backlog_in_memory_and_the_rest_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bound = 64 << 10;
    let o = QueueOptions {
        durability: Durability::Outage,
        memory_bytes: bound,
        ..opts(1 << 20)
    };
    let q = Queue::open(dir.path(), o).unwrap();
    q.set_uplink_up(true);
    // An uplink that sends nothing: publishers outrun it by 1,000 records (~270 KiB).
    append_all(&q, 0..1000).await;
    let frame = segment::frame_len(None, powercut::RECORD_BYTES);
    let s = q.stats();
    assert_eq!(s.messages, 1000);
    assert!(
        s.memory_bytes <= bound,
        "memory {} > {bound}",
        s.memory_bytes
    );
    assert!(
        s.memory_bytes >= bound - frame,
        "memory used up to the bound first"
    );
    let on_disk = 1000 * frame - s.memory_bytes;
    let deadline = Instant::now() + Duration::from_secs(5);
    while segment_bytes_on_disk(dir.path()) < on_disk && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        segment_bytes_on_disk(dir.path()) >= on_disk,
        "the rest went to disk"
    );
    // The uplink sees every record once, in order, memory and disk alike.
    let mut got = Vec::new();
    loop {
        let batch = q.next_batch(1000);
        if batch.is_empty() {
            break;
        }
        for (seq, r) in &batch {
            got.extend(number(r));
            q.ack(*seq);
        }
    }
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
    assert_eq!(q.stats().memory_bytes, 0);
    // Drained: the next records stay in memory again.
    append_all(&q, 1000..1010).await;
    assert_eq!(q.stats().memory_bytes, 10 * frame);
    q.close().unwrap();
}

/// Bytes in all files of `dir` (segments, cursor, lock).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}
