//! Writer, verifier and benchmark for the bridge queue's crash and power-cut tests
//! (tests/queue.rs includes this file; tests/powercut/queue.sh runs it).
//!
//! ```text
//! queue_powercut write  DIR       append 256-byte records numbered on from what DIR holds;
//!                                 print "F <n>" once n is durable, "A <n>" before acking through n
//! queue_powercut verify DIR       with LAST_DURABLE (and LAST_ACKED) in the environment: the queue
//!                                 opens and holds every record after the ack point up to the last
//!                                 durable one, in order, with no gap
//! queue_powercut backlog DIR N    write N records, reopen, drain and ack them: directory size
//!                                 before and after, peak RSS while draining
//! queue_powercut bench  DIR N [W] append N records with durability "always" at several
//!                                 concurrency levels (or only W appends in flight); print msgs/s
//!                                 (and, with BENCH_BLOCK_DEVICE=loopN, the bytes that reached
//!                                 that device per record), then drain a 100k backlog
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgemq::clock::now_ms;
use edgemq::config::model::{Durability, Overflow};
use edgemq::queue::{Commit, Queue, QueueOptions, Record};

/// Size of every record's data, like a small sensor reading with its topic.
pub const RECORD_BYTES: usize = 256;
/// Appends in flight at once: stands for concurrent publishers and lets group commit gather.
const WINDOW: usize = 64;
/// Records per stretch of the writer's alternating batch sizes.
const SLOW_STRETCH: u64 = 200;
/// Records the writer's consumer leaves unacked, so a backlog always spans segments.
const KEEP: u64 = 3000;
/// Records acked per consumer step.
const ACK_BATCH: usize = 200;
/// Safety cap on a writer run.
const MAX_RECORDS: u64 = 50_000_000;

/// Options for the tests: small segments (rotation and deletion happen often), nothing dropped.
pub fn options() -> QueueOptions {
    QueueOptions {
        max_bytes: 1 << 30,
        max_age: Duration::from_secs(86_400),
        overflow: Overflow::DropNewest,
        durability: Durability::Always,
        segment_bytes: 256 << 10,
        memory_bytes: 4 << 20,
    }
}

/// The record numbered `n`.
pub fn record(n: u64) -> Record {
    let mut data = vec![b'.'; RECORD_BYTES];
    data[..8].copy_from_slice(&n.to_le_bytes());
    Record {
        coalesce_key: None,
        enqueued_ms: now_ms(),
        data: Bytes::from(data),
    }
}

/// The number a record carries.
pub fn number(rec: &Record) -> Option<u64> {
    Some(u64::from_le_bytes(rec.data.get(..8)?.try_into().ok()?))
}

/// Reads every queued record in order and returns their numbers (leaves them sent).
pub fn drain_numbers(q: &Queue) -> Vec<u64> {
    let mut out = Vec::new();
    loop {
        let batch = q.next_batch(1000);
        if batch.is_empty() {
            return out;
        }
        out.extend(batch.iter().map(|(_, r)| number(r).unwrap_or(u64::MAX)));
    }
}

/// Checks the queue's numbers against what the writer reported.
pub fn check(
    nums: &[u64],
    last_durable: Option<u64>,
    last_acked: Option<u64>,
) -> Result<(), String> {
    if let Some(w) = nums.windows(2).find(|w| w[1] != w[0] + 1) {
        return Err(format!(
            "order broken or gap: {} followed by {}",
            w[0], w[1]
        ));
    }
    let Some(durable) = last_durable else {
        return Ok(());
    };
    if last_acked.is_some_and(|a| a >= durable) {
        return Ok(());
    }
    let need_from = last_acked.map_or(0, |a| a + 1);
    match (nums.first(), nums.last()) {
        (Some(&first), Some(&last)) if first <= need_from && last >= durable => Ok(()),
        (first, last) => Err(format!(
            "need {need_from}..={durable}, queue holds {first:?}..={last:?} ({} records)",
            nums.len()
        )),
    }
}

fn emit(line: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Appends numbered records until killed, reporting durability and acks.
pub async fn write(dir: &Path) -> Result<(), String> {
    let q = Queue::open(dir, options()).map_err(|e| e.to_string())?;
    let mut n = drain_numbers(&q).last().map_or(0, |l| l + 1);
    q.rewind();
    let mut window: VecDeque<(u64, Commit)> = VecDeque::new();
    while n < MAX_RECORDS {
        // Every fourth stretch of records goes one flush per record: small batches take the
        // zero-extended write path, large ones the plain one.
        let in_flight = if (n / SLOW_STRETCH) % 4 == 3 {
            1
        } else {
            WINDOW
        };
        while window.len() < in_flight {
            window.push_back((n, q.append(record(n)).map_err(|e| e.to_string())?));
            n += 1;
        }
        let Some((m, commit)) = window.pop_front() else {
            continue;
        };
        match commit.await {
            Ok(Ok(())) => emit(format_args!("F {m}")),
            Ok(Err(e)) => return Err(format!("record {m}: {e}")),
            Err(_) => return Err(format!("record {m}: commit dropped")),
        }
        if q.stats().messages > KEEP {
            let batch = q.next_batch(ACK_BATCH);
            if let Some(last) = batch.last().and_then(|(_, r)| number(r)) {
                emit(format_args!("A {last}"));
            }
            for (seq, _) in batch {
                q.ack(seq);
            }
        }
    }
    q.close().map_err(|e| e.to_string())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.trim().parse().ok()
}

/// Opens the queue and checks it against LAST_DURABLE / LAST_ACKED.
pub fn verify(dir: &Path) -> Result<String, String> {
    let q = Queue::open(dir, options()).map_err(|e| format!("open failed: {e}"))?;
    let nums = drain_numbers(&q);
    let (durable, acked) = (env_u64("LAST_DURABLE"), env_u64("LAST_ACKED"));
    q.close().map_err(|e| e.to_string())?;
    check(&nums, durable, acked)?;
    Ok(format!(
        "ok: {} records {:?}..={:?}, last durable {durable:?}, acked through {acked:?}",
        nums.len(),
        nums.first(),
        nums.last()
    ))
}

/// Bytes written to the block device named by BENCH_BLOCK_DEVICE (e.g. "loop3"), journal
/// included, after a sync; None without it.
fn device_bytes() -> Option<u64> {
    let dev = std::env::var("BENCH_BLOCK_DEVICE").ok()?;
    std::process::Command::new("sync").status().ok()?;
    std::thread::sleep(Duration::from_secs(6)); // past ext4's 5 s journal commit interval
    let stat = std::fs::read_to_string(format!("/sys/block/{dev}/stat")).ok()?;
    let sectors: u64 = stat.split_whitespace().nth(6)?.parse().ok()?;
    Some(sectors * 512)
}

/// Appends `total` records at several concurrency levels and prints rate and write cost.
pub async fn bench(dir: &Path, total: u64, only: Option<usize>) -> Result<(), String> {
    let windows = only.map_or(vec![1usize, 16, 256], |w| vec![w]);
    for window in windows {
        let sub = dir.join(format!("bench-{window}"));
        let q = Queue::open(&sub, options()).map_err(|e| e.to_string())?;
        let written = device_bytes();
        let start = Instant::now();
        let mut inflight: VecDeque<Commit> = VecDeque::new();
        for n in 0..total {
            inflight.push_back(q.append(record(n)).map_err(|e| e.to_string())?);
            if inflight.len() >= window {
                if let Some(c) = inflight.pop_front() {
                    c.await
                        .map_err(|e| e.to_string())?
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        for c in inflight {
            c.await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
        }
        let secs = start.elapsed().as_secs_f64();
        let per_record = match (written, device_bytes()) {
            (Some(before), Some(after)) => format!(
                ", {:.0} bytes reached the device per {RECORD_BYTES}-byte record",
                (after - before) as f64 / total as f64
            ),
            _ => String::new(),
        };
        q.close().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&sub);
        emit(format_args!(
            "{window:>3} appends in flight: {:>6.0} msgs/s{per_record}",
            total as f64 / secs
        ));
    }
    if only.is_some() {
        return Ok(());
    }
    backlog(&dir.join("backlog"), BACKLOG).await
}

/// Records in the backlog phase of the benchmark.
const BACKLOG: u64 = 100_000;

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// A backlog of `total` records: written, reopened (indexed from disk), drained and acked; prints
/// the directory size before and after and the memory the drain took.
pub async fn backlog(dir: &Path, total: u64) -> Result<(), String> {
    let q = Queue::open(dir, options()).map_err(|e| e.to_string())?;
    let mut inflight: VecDeque<Commit> = VecDeque::new();
    for n in 0..total {
        inflight.push_back(q.append(record(n)).map_err(|e| e.to_string())?);
        if inflight.len() >= 256 {
            if let Some(c) = inflight.pop_front() {
                c.await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            }
        }
    }
    for c in inflight {
        c.await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
    }
    q.close().map_err(|e| e.to_string())?;
    drop(q);
    let before = dir_bytes(dir);
    let rss_before = status_kib("VmRSS:");
    let start = Instant::now();
    let q = Queue::open(dir, options()).map_err(|e| e.to_string())?;
    let opened = start.elapsed();
    let (mut drained, mut peak) = (0u64, 0u64);
    loop {
        let batch = q.next_batch(500);
        if batch.is_empty() {
            break;
        }
        drained += batch.len() as u64;
        batch.iter().for_each(|(seq, _)| q.ack(*seq));
        peak = peak.max(status_kib("VmRSS:"));
    }
    let drain = start.elapsed();
    q.close().map_err(|e| e.to_string())?;
    emit(format_args!(
        "backlog {drained} records: {} KiB on disk, open {:.0} ms, open+drain {:.0} ms, \
         RSS {rss_before} KiB before open, {peak} KiB peak while draining, {} KiB on disk after",
        before / 1024,
        opened.as_secs_f64() * 1000.0,
        drain.as_secs_f64() * 1000.0,
        dir_bytes(dir) / 1024
    ));
    Ok(())
}

#[allow(dead_code)] // unused where tests/queue.rs includes this file
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return eprintln!("runtime: {e}"),
    };
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["write", dir] => rt.block_on(write(Path::new(dir))).map(|()| String::new()),
        ["verify", dir] => verify(Path::new(dir)),
        ["backlog", dir, n] => match n.parse() {
            Ok(n) => rt
                .block_on(backlog(Path::new(dir), n))
                .map(|()| String::new()),
            Err(_) => Err(format!("bad count {n}")),
        },
        ["bench", dir, n] | ["bench", dir, n, _] => {
            let window = args.get(3).and_then(|w| w.parse().ok());
            match n.parse() {
                Ok(n) => rt
                    .block_on(bench(Path::new(dir), n, window))
                    .map(|()| String::new()),
                Err(_) => Err(format!("bad count {n}")),
            }
        }
        _ => Err(
            "usage: queue_powercut write DIR | verify DIR | bench DIR N [WINDOW] | backlog DIR N"
                .into(),
        ),
    };
    match result {
        Ok(msg) if msg.is_empty() => {}
        Ok(msg) => println!("{msg}"),
        Err(e) => {
            eprintln!("queue_powercut: {e}");
            std::process::exit(1);
        }
    }
}
