//! Writer, verifier and benchmark for the bridge queue's crash and power-cut tests
//! (tests/queue.rs includes this file; tests/powercut/queue.sh runs it).
//!
//! ```text
//! queue_powercut write  DIR       append 256-byte records numbered on from what DIR holds;
//!                                 print "F <n>" once n is durable, "A <n>" before acking through n
//! queue_powercut verify DIR       with LAST_DURABLE (and LAST_ACKED) in the environment: the queue
//!                                 opens and holds every record after the ack point up to the last
//!                                 durable one, in order, with no gap
//! queue_powercut bench  DIR N     append N records with durability "always" at several
//!                                 concurrency levels; print msgs/s and bytes written per record
//! ```

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use edgemq::config::model::{Durability, Overflow};
use edgemq::queue::{Commit, Queue, QueueOptions, Record, now_ms};

/// Size of every record's data, like a small sensor reading with its topic.
pub const RECORD_BYTES: usize = 256;
/// Appends in flight at once: stands for concurrent publishers and lets group commit gather.
const WINDOW: usize = 64;
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
        while window.len() < WINDOW {
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

/// Bytes this process has caused to be written to storage.
fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Appends `total` records at several concurrency levels and prints rate and write cost.
pub async fn bench(dir: &Path, total: u64) -> Result<(), String> {
    for window in [1usize, 16, 256] {
        let sub = dir.join(format!("bench-{window}"));
        let q = Queue::open(&sub, options()).map_err(|e| e.to_string())?;
        let (start, written) = (Instant::now(), write_bytes());
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
        let per_record = (write_bytes() - written) as f64 / total as f64;
        q.close().map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&sub);
        emit(format_args!(
            "window {window:>3}: {:>8.0} msgs/s, {per_record:.0} bytes written per {RECORD_BYTES}-byte record",
            total as f64 / secs
        ));
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

/// A 100k-record backlog: written, reopened (indexed from disk), drained and acked; prints
/// the directory size before and after and the memory the drain took.
async fn backlog(dir: &Path, total: u64) -> Result<(), String> {
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
        ["bench", dir, n] => match n.parse() {
            Ok(n) => rt
                .block_on(bench(Path::new(dir), n))
                .map(|()| String::new()),
            Err(_) => Err(format!("bad count {n}")),
        },
        _ => Err("usage: queue_powercut write DIR | verify DIR | bench DIR N".into()),
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
