//! The bridge queue against a real directory: order across segments and reopen, out-of-order
//! acks and the persisted cursor, segment deletion, torn-tail recovery, limits, "outage"
//! durability, a failing disk, and a crash loop of SIGKILLed writer processes.

#[path = "../examples/queue_powercut.rs"]
mod powercut;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgemq::config::model::{Durability, Overflow};
use edgemq::queue::{Queue, QueueError, QueueOptions, Record, now_ms, segment};
use powercut::{drain_numbers, number, record};

fn opts(segment_bytes: u64) -> QueueOptions {
    QueueOptions {
        segment_bytes,
        ..powercut::options()
    }
}

fn keyed(key: &str, n: u64) -> Record {
    Record {
        coalesce_key: Some(Arc::from(key)),
        ..record(n)
    }
}

/// Appends records `range` and waits until all are durable.
async fn append_all(q: &Queue, range: std::ops::Range<u64>) {
    let commits: Vec<_> = range.map(|n| q.append(record(n)).unwrap()).collect();
    for c in commits {
        c.await.unwrap().unwrap();
    }
}

fn segment_files(dir: &Path) -> Vec<(String, u64)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| segment::parse_file_name(e.file_name().to_str().unwrap()).is_some())
        .map(|e| {
            (
                e.file_name().into_string().unwrap(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    out.sort();
    out
}

fn segment_bytes_on_disk(dir: &Path) -> u64 {
    segment_files(dir).iter().map(|(_, len)| len).sum()
}

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

#[tokio::test]
async fn a_failing_disk_fails_the_commit_and_the_queue_recovers() {
    let dir = tempfile::tempdir().unwrap();
    // The first segment the queue creates is /dev/full: every write to it fails with ENOSPC.
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    std::os::unix::fs::symlink("/dev/full", dir.path().join(segment::file_name(0))).unwrap();
    let failed = q.append(record(0)).unwrap().await.unwrap();
    match failed {
        Err(QueueError::Io { path, source }) => {
            assert!(path.ends_with(segment::file_name(0)), "{path:?}");
            assert_eq!(source.raw_os_error(), Some(nix::libc::ENOSPC));
        }
        other => panic!("expected an I/O error, got {other:?}"),
    }
    let s = q.stats();
    assert_eq!((s.messages, s.not_stored, s.io_lost), (0, 1, 0));
    // Right after a failed write, records bound for disk are refused at once (their
    // publishers re-send them behind the failed one), without another write.
    match q.append(record(1)) {
        Err(QueueError::Io { source, .. }) => {
            assert_eq!(source.raw_os_error(), Some(nix::libc::ENOSPC));
        }
        Err(other) => panic!("expected the write's I/O error, got {other:?}"),
        Ok(_) => panic!("a record was taken right after a failed write"),
    }
    assert_eq!((q.stats().messages, q.stats().not_stored), (0, 2));
    // Space is back (a fresh segment): a second later the queue goes on, without the failed
    // records.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    append_all(&q, 1..4).await;
    q.close().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    assert_eq!(drain_numbers(&q), vec![1, 2, 3]);
    q.close().unwrap();
}

#[tokio::test]
async fn one_flush_covers_every_append_that_arrived_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    append_all(&q, 0..2000).await;
    let s = q.stats();
    assert_eq!(s.appended, 2000);
    // How many flushes the appends span depends on the machine (fsync time against append
    // time: 24 seen on a loaded CI-sized host); one per record would be 2,000.
    assert!(
        s.flushes >= 1 && s.flushes * 10 <= s.appended,
        "{} flushes for 2000 appends: fewer than ten records per flush",
        s.flushes
    );
    // Waiting for each commit before the next append: one flush per record.
    for n in 2000..2010 {
        q.append(record(n)).unwrap().await.unwrap().unwrap();
    }
    assert_eq!(q.stats().flushes, s.flushes + 10);
    q.close().unwrap();
}

#[tokio::test]
async fn wait_nonempty_wakes_on_append() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    let waiter = tokio::spawn({
        let q = q.clone();
        async move { q.wait_nonempty().await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiter.is_finished());
    let _commit = q
        .append(Record {
            data: Bytes::from_static(b"x"),
            ..record(0)
        })
        .unwrap();
    tokio::time::timeout(Duration::from_secs(2), waiter)
        .await
        .unwrap()
        .unwrap();
    // Rewind makes sent records sendable again; once drained and closed it stays pending.
    assert_eq!(q.next_batch(10).len(), 1);
    let idle = tokio::time::timeout(Duration::from_millis(100), q.wait_nonempty()).await;
    assert!(idle.is_err());
    q.rewind();
    tokio::time::timeout(Duration::from_secs(2), q.wait_nonempty())
        .await
        .unwrap();
    assert_eq!(q.next_batch(10).len(), 1);
    q.close().unwrap();
    let closed = tokio::time::timeout(Duration::from_millis(100), q.wait_nonempty()).await;
    assert!(closed.is_err(), "wait_nonempty must not spin after close");
}

/// Opens `dir` once a dropped queue's writer has let go of it.
fn reopen_when_released(dir: &Path, o: QueueOptions) -> Queue {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Queue::open(dir, o.clone()) {
            Ok(q) => return q,
            Err(e) if Instant::now() < deadline => {
                assert!(e.to_string().contains("already in use"), "{e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn one_handle_per_directory() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(dir.path(), opts(1 << 20)).unwrap();
    let second = Queue::open(dir.path(), opts(1 << 20));
    assert!(
        matches!(&second, Err(QueueError::Io { path, .. }) if path.ends_with("lock")),
        "{second:?}"
    );
    q.close().unwrap();
    Queue::open(dir.path(), opts(1 << 20))
        .unwrap()
        .close()
        .unwrap();
}

/// Path of this test binary's crash-loop child: the example's writer, run by `child_writer`.
fn spawn_writer(dir: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_writer",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("QUEUE_CHILD_DIR", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The writer process of the crash loop (runs only when spawned by it).
#[tokio::test]
#[ignore = "child process of crash_loop_keeps_every_committed_record"]
async fn child_writer() {
    let dir = std::env::var("QUEUE_CHILD_DIR").expect("run by the crash loop");
    powercut::write(Path::new(&dir)).await.unwrap();
}

#[test]
fn crash_loop_keeps_every_committed_record() {
    use std::io::{BufRead, BufReader};
    const ROUNDS: usize = 30;
    let dir = tempfile::tempdir().unwrap();
    let (mut durable, mut acked) = (None::<u64>, None::<u64>);
    let mut seed = now_ms();
    for round in 0..ROUNDS {
        let mut child = spawn_writer(dir.path());
        let reader = std::thread::spawn({
            let out = child.stdout.take().unwrap();
            move || {
                let (mut f, mut a) = (None, None);
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    match line.split_once(' ') {
                        Some(("F", n)) => f = n.parse::<u64>().ok(),
                        Some(("A", n)) => a = n.parse::<u64>().ok(),
                        _ => {}
                    }
                }
                (f, a)
            }
        });
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(150 + (seed >> 33) % 350));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let (f, a) = reader.join().unwrap();
        durable = durable.max(f);
        acked = acked.max(a);
        let q = Queue::open(dir.path(), powercut::options()).unwrap();
        let nums = drain_numbers(&q);
        q.close().unwrap();
        if let Err(e) = powercut::check(&nums, durable, acked) {
            panic!("round {round}: {e} (durable {durable:?}, acked {acked:?})");
        }
    }
    assert!(
        durable.is_some_and(|d| d > 1000),
        "the writer made too little progress: {durable:?}"
    );
}
