//! The queue's limits: overflow policies, max_age (on read and by the sweep), coalescing.

use super::*;

#[tokio::test]
async fn overflow_policies_are_enforced_and_counted() {
    let frame = segment::frame_len(None, powercut::RECORD_BYTES);
    for (overflow, kept) in [(Overflow::DropOldest, 5..15), (Overflow::DropNewest, 0..10)] {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::open(
            dir.path(),
            QueueOptions {
                max_bytes: 10 * frame,
                overflow,
                ..opts(1 << 20)
            },
        )
        .unwrap();
        let mut full = 0;
        for n in 0..15 {
            match q.append(record(n)) {
                Ok(c) => c.await.unwrap().unwrap(),
                Err(QueueError::Full) => full += 1,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(drain_numbers(&q), kept.collect::<Vec<_>>(), "{overflow:?}");
        let s = q.stats();
        assert_eq!(
            (s.dropped_overflow, s.messages, s.bytes),
            (5, 10, 10 * frame),
            "{overflow:?}"
        );
        assert_eq!(
            full,
            if overflow == Overflow::DropNewest {
                5
            } else {
                0
            }
        );
        q.close().unwrap();
    }
}

#[tokio::test]
async fn max_age_drops_on_read_and_by_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(
        dir.path(),
        QueueOptions {
            max_age: Duration::from_millis(300),
            ..opts(1 << 20)
        },
    )
    .unwrap();
    let old = |n| Record {
        enqueued_ms: now_ms() - 10_000,
        ..record(n)
    };
    for n in 0..5 {
        q.append(old(n)).unwrap().await.unwrap().unwrap();
    }
    append_all(&q, 5..8).await;
    assert_eq!(drain_numbers(&q), vec![5, 6, 7]);
    assert_eq!(q.stats().dropped_age, 5);
    q.rewind();
    // Unread records expire too: the writer's sweep drops them within a tick.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let s = q.stats();
    assert_eq!(
        (s.messages, s.dropped_age, s.oldest_enqueued_ms),
        (0, 8, None)
    );
    q.close().unwrap();
}

#[tokio::test]
async fn coalesce_keeps_the_newest_unsent_per_key() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    for n in 0..100 {
        let key = if n % 2 == 0 { "state/a" } else { "state/b" };
        q.append(keyed(key, n)).unwrap().await.unwrap().unwrap();
    }
    append_all(&q, 100..101).await;
    assert_eq!(q.stats().coalesced, 98);
    assert_eq!(drain_numbers(&q), vec![98, 99, 100]);
    // Sent records are not superseded: they may already be at the central broker.
    q.append(keyed("state/a", 101))
        .unwrap()
        .await
        .unwrap()
        .unwrap();
    q.rewind();
    assert_eq!(drain_numbers(&q), vec![98, 99, 100, 101]);
    q.close().unwrap();
    // Coalescing holds after a restart too.
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(drain_numbers(&q), vec![99, 100, 101]);
    q.close().unwrap();
}
