//! The log on disk: order across segments and reopen, out-of-order acks and the persisted
//! cursor, consumed segments deleted, a torn or corrupt tail truncated on open.

use super::*;

#[tokio::test]
async fn order_is_kept_across_segments_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(16 << 10)).unwrap();
    append_all(&q, 0..1000).await;
    assert!(
        segment_files(dir.path()).len() > 5,
        "{:?}",
        segment_files(dir.path())
    );
    assert_eq!(drain_numbers(&q), (0..1000).collect::<Vec<_>>());
    q.close().unwrap();

    let q = Queue::open(dir.path(), opts(16 << 10)).unwrap();
    assert_eq!(q.stats().messages, 1000);
    let batch = q.next_batch(400);
    assert_eq!(
        batch
            .iter()
            .filter_map(|(_, r)| number(r))
            .collect::<Vec<_>>(),
        (0..400).collect::<Vec<_>>()
    );
    batch.iter().for_each(|(seq, _)| q.ack(*seq));
    append_all(&q, 1000..1100).await;
    q.close().unwrap();

    let q = Queue::open(dir.path(), opts(16 << 10)).unwrap();
    assert_eq!(drain_numbers(&q), (400..1100).collect::<Vec<_>>());
    assert!(q.append(record(0)).is_ok());
    q.close().unwrap();
    assert!(matches!(q.append(record(0)), Err(QueueError::Closed)));
}

#[tokio::test]
async fn out_of_order_acks_and_the_persisted_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    append_all(&q, 0..10).await;
    let batch = q.next_batch(10);
    for i in [0, 2, 3, 5] {
        q.ack(batch[i].0);
    }
    assert_eq!(q.stats().messages, 6);
    assert_eq!(q.stats().acked, 4);
    q.rewind();
    assert_eq!(drain_numbers(&q), vec![1, 4, 6, 7, 8, 9]);
    q.close().unwrap();

    // The cursor is the lowest unacked record: 1; acked records after it are sent again.
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    let batch = q.next_batch(100);
    assert_eq!(
        batch
            .iter()
            .filter_map(|(_, r)| number(r))
            .collect::<Vec<_>>(),
        (1..10).collect::<Vec<_>>()
    );
    batch.iter().for_each(|(seq, _)| q.ack(*seq));
    q.close().unwrap();

    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(q.stats().messages, 0);
    assert!(q.next_batch(10).is_empty());
    // Sequence numbers go on from the cursor: nothing old comes back.
    append_all(&q, 10..12).await;
    assert_eq!(drain_numbers(&q), vec![10, 11]);
    q.close().unwrap();
}

#[tokio::test]
async fn consumed_segments_are_deleted_and_the_directory_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let seg = 64 << 10;
    let q = Queue::open(dir.path(), opts(seg)).unwrap();
    append_all(&q, 0..10_000).await;
    let full = segment_bytes_on_disk(dir.path());
    assert!(full > 2_800_000, "backlog on disk: {full}");
    loop {
        let batch = q.next_batch(500);
        if batch.is_empty() {
            break;
        }
        batch.iter().for_each(|(seq, _)| q.ack(*seq));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while segment_bytes_on_disk(dir.path()) > seg && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left = segment_bytes_on_disk(dir.path());
    assert!(
        left <= seg,
        "after draining, {left} bytes of segments remain"
    );
    q.close().unwrap();
    assert_eq!(segment_files(dir.path()), vec![]);
}

#[tokio::test]
async fn a_torn_or_corrupt_tail_is_truncated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    for n in 0..100 {
        // One flush per record: small batches are the ones written ahead with zeros.
        q.append(record(n)).unwrap().await.unwrap().unwrap();
    }
    q.close().unwrap();
    let (name, len) = segment_files(dir.path()).pop().unwrap();
    let path = dir.path().join(&name);
    let frame = segment::frame_len(None, powercut::RECORD_BYTES);
    // Records, then the zeros the writer extends segments with.
    assert!(len > 100 * frame, "{len}");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes[(100 * frame) as usize..].iter().all(|&b| b == 0));
    // A zero tail is a clean end: everything is there, the zeros are trimmed.
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(drain_numbers(&q), (0..100).collect::<Vec<_>>());
    q.close().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 100 * frame);

    // A power cut in the middle of the last record.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100 * frame - 10)
        .unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(drain_numbers(&q), (0..99).collect::<Vec<_>>());
    q.close().unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 99 * frame);

    // A flipped bit inside record 50: recovered up to the last good record before it.
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[(50 * frame + 40) as usize] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(drain_numbers(&q), (0..50).collect::<Vec<_>>());
    append_all(&q, 200..210).await;
    q.close().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    let expected: Vec<u64> = (0..50).chain(200..210).collect();
    assert_eq!(drain_numbers(&q), expected);
    q.close().unwrap();
}
