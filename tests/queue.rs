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
use edgemq::clock::now_ms;
use edgemq::config::model::{Durability, Overflow};
use edgemq::queue::{Queue, QueueError, QueueOptions, Record, segment};
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

#[path = "queue/durability.rs"]
mod durability;
#[path = "queue/limits.rs"]
mod limits;
#[path = "queue/log.rs"]
mod log;
#[path = "queue/writer.rs"]
mod writer;

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
