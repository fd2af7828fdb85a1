//! End to end with the real `edgemq` binary as the edge: a local QoS 1
//! publisher counts the edge's PUBACKs, a real Mosquitto central broker
//! (seed 000: TLS 1.3, client certificate as username, `pattern readwrite
//! meters/%u/#`) is observed by a subscriber. What the edge PUBACKed must
//! reach the central broker, in order, through outages and SIGKILLs.

mod bridge_support;
#[path = "bridge_support/edge_proc.rs"]
mod edge_proc;

use std::collections::{BTreeSet, HashSet};
use std::time::{Duration, Instant};

use bridge_support::edge::{World, indexes};
use bridge_support::proxy::{Gate, Proxy};
use bridge_support::{Observer, WAIT, assert_ordered_complete, have_tools};
use edge_proc::{Acked, EdgeProc, publish_counted, tree_bytes, tree_files};

/// Where the edge's bridge sends data/<x>.
const REMOTE: &str = "meters/GW-0001/data/";
/// Crash-loop rounds.
const CRASH_ROUNDS: usize = 30;
/// Messages offered per crash-loop round (the edge dies before most rounds finish).
const CRASH_BATCH: u64 = 800;
/// Latest moment of a crash-loop SIGKILL after the round starts publishing.
const CRASH_MAX_MS: u64 = 300;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// The rounds' generator, seeded from `E2E_SEED` or the clock, and the seed printed, so a
/// failing run can be replayed.
fn seeded() -> Rng {
    let seed = std::env::var("E2E_SEED").ok().and_then(|s| s.parse().ok());
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("E2E_SEED={seed}");
    Rng::new(seed)
}

/// Receives at the observer until every number in `want` has arrived on
/// `REMOTE`seq (or WAIT passed); returns every arrival in order, duplicates included.
async fn receive_all(observer: &mut Observer, got: &mut Vec<u64>, want: &BTreeSet<u64>) {
    let mut missing: HashSet<u64> = want
        .difference(&got.iter().copied().collect())
        .copied()
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, observer.rx.recv()).await {
            Ok(Some((topic, payload))) if topic.starts_with(REMOTE) => {
                let seq: u64 = String::from_utf8_lossy(&payload).parse().unwrap();
                missing.remove(&seq);
                got.push(seq);
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => break,
        }
    }
}

/// At-least-once in order: every acknowledged number arrived, and no number
/// arrived for the first time after a higher one (re-sends repeat earlier runs).
/// Returns the number of duplicate arrivals.
fn assert_acked_delivered_in_order(arrivals: &[u64], acked: &BTreeSet<u64>) -> usize {
    let mut seen = HashSet::new();
    let mut highest = None;
    let mut duplicates = 0;
    for &s in arrivals {
        if !seen.insert(s) {
            duplicates += 1;
            continue;
        }
        assert!(
            highest.is_none_or(|h| s > h),
            "{s} arrived for the first time after {highest:?}"
        );
        highest = Some(s);
    }
    let lost: Vec<u64> = acked
        .iter()
        .filter(|s| !seen.contains(*s))
        .copied()
        .collect();
    assert!(
        lost.is_empty(),
        "{} PUBACKed messages lost, first {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    duplicates
}

/// The queue depth `edgemq status` reports ("queue: N messages").
fn queue_depth(status: &str) -> u64 {
    let after = status
        .split("queue: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no queue in {status:?}"));
    after.split(' ').next().unwrap().parse().unwrap()
}

fn acked_set(acked: &Acked) -> BTreeSet<u64> {
    acked.lock().unwrap().iter().copied().collect()
}

async fn publish_all(edge: &EdgeProc, range: std::ops::Range<u64>) -> BTreeSet<u64> {
    let n = range.end - range.start;
    let acked = Acked::default();
    publish_counted(edge.port, "data/seq", range, acked.clone()).await;
    let set = acked_set(&acked);
    assert_eq!(set.len() as u64, n, "the edge PUBACKed every message");
    set
}

fn assert_store_healthy(edge: &EdgeProc) {
    let log = edge.log();
    for bad in [
        "set aside",
        "store unusable",
        "panicked",
        "cannot open its queue",
    ] {
        assert!(!log.contains(bad), "edge log says {bad:?}:\n{log}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_edge_delivers_2000_qos1_in_order() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let edge = EdgeProc::start(&w.dir.path().join("edge"), &w.pki, &w.central.address(), "");
    let start = Instant::now();
    publish_all(&edge, 0..2000).await;
    let acked_in = start.elapsed();
    let got = observer.collect(REMOTE, 2000, WAIT).await;
    let took = start.elapsed();
    assert!(got.iter().all(|(t, _)| t == "meters/GW-0001/data/seq"));
    assert_ordered_complete(&indexes(&got), 2000);
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    eprintln!(
        "2000 QoS 1 through the edge binary: all PUBACKed in {acked_in:?}, all at central in {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_outage_loses_nothing_acked() {
    if !have_tools() {
        return;
    }
    let mut w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let mut edge = EdgeProc::start(&w.dir.path().join("edge"), &w.pki, &proxy.address(), "");
    let mut want = publish_all(&edge, 0..10).await;
    let mut got = Vec::new();
    receive_all(&mut observer, &mut got, &want).await;

    w.central.kill();
    proxy.set_gate(Gate::Closed);
    edge.wait_status("disconnected", |s| s.contains("disconnected"))
        .await;
    want.extend(publish_all(&edge, 10..5010).await);
    let status = edge.status();
    edge.kill();
    eprintln!("before SIGKILL: {status}");

    let restarted = Instant::now();
    edge.restart();
    let reopened = restarted.elapsed();
    let queued = edge.wait_status("status", |s| s.contains("queue: ")).await;
    assert!(queue_depth(&queued) >= 5000, "{queued}");
    w.central.restart();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let replay = Instant::now();
    proxy.set_gate(Gate::Open);
    receive_all(&mut observer, &mut got, &want).await;
    let took = replay.elapsed();
    let duplicates = assert_acked_delivered_in_order(&got, &want);
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    assert_store_healthy(&edge);
    eprintln!(
        "SIGKILL during outage: restart listened after {reopened:?}; 5000 queued replayed in {took:?} \
         ({:.0} msg/s incl. reconnect); {duplicates} duplicate arrivals",
        5000.0 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_durability_writes_nothing_while_up_and_spills_when_down() {
    if !have_tools() {
        return;
    }
    let mut w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let queue = "durability = \"outage\"";
    // $SYS every second: its figures must not reach the disk either.
    let top = "sys_interval = \"1s\"";
    let dir = w.dir.path().join("edge");
    let edge = EdgeProc::start_with(&dir, &w.pki, &proxy.address(), top, queue);
    let bridge_dir = edge.data_dir.join("bridge");
    edge.wait_status("connected", |s| s.contains("connected to"))
        .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (size0, wb0) = (tree_bytes(&bridge_dir), edge.write_bytes());
    let files0 = tree_files(&edge.data_dir);
    let mut want = publish_all(&edge, 0..2000).await;
    let mut got = Vec::new();
    receive_all(&mut observer, &mut got, &want).await;
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (size1, wb1) = (tree_bytes(&bridge_dir), edge.write_bytes());
    // Every file of data_dir (the sled store's too): same size, same mtime.
    assert_eq!(
        tree_files(&edge.data_dir),
        files0,
        "data_dir written while up"
    );
    eprintln!(
        "outage durability, uplink up, 2000 messages: data/bridge {size0} -> {size1} bytes; \
         process write_bytes +{}",
        wb1 - wb0
    );
    assert_eq!(size1, size0, "bytes written under data_dir/bridge while up");
    // Secondary: the whole process (sled store included) wrote less than the
    // queue alone would have: 2000 records of >= 40 bytes, a page per group commit.
    assert!(wb1 - wb0 < 64 * 1024, "write_bytes +{}", wb1 - wb0);

    w.central.kill();
    proxy.set_gate(Gate::Closed);
    proxy.drop_all();
    edge.wait_status("disconnected", |s| s.contains("disconnected"))
        .await;
    let wb_down = edge.write_bytes();
    want.extend(publish_all(&edge, 2000..2500).await);
    let size2 = tree_bytes(&bridge_dir);
    // The secondary signal does see the queue's writes when they happen.
    let spilled_wb = edge.write_bytes() - wb_down;
    assert!(
        spilled_wb >= size2,
        "write_bytes +{spilled_wb} for {size2} spilled"
    );
    assert!(
        size2 > size1 + 500 * 10,
        "the backlog spilled to disk: {size2} bytes"
    );
    w.central.restart();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    proxy.set_gate(Gate::Open);
    receive_all(&mut observer, &mut got, &want).await;
    let duplicates = assert_acked_delivered_in_order(&got, &want);
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    let drained = Instant::now();
    while tree_bytes(&bridge_dir) >= size2 && drained.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (size3, removed_after) = (tree_bytes(&bridge_dir), drained.elapsed());
    assert!(size3 < size2, "consumed segments deleted: {size3} bytes");
    eprintln!(
        "outage durability, uplink down, 500 messages: spilled {size2} bytes (write_bytes +{spilled_wb}), \
         all arrived ({duplicates} duplicates); {size3} bytes left {removed_after:?} after the drain"
    );

    // Up again: back to writing nothing.
    let wb3 = edge.write_bytes();
    want.extend(publish_all(&edge, 2500..3500).await);
    receive_all(&mut observer, &mut got, &want).await;
    assert_acked_delivered_in_order(&got, &want);
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    let (size4, wb4) = (tree_bytes(&bridge_dir), edge.write_bytes());
    eprintln!(
        "outage durability, up after the outage, 1000 messages: data/bridge {size3} -> {size4} bytes; \
         process write_bytes +{}",
        wb4 - wb3
    );
    assert_eq!(
        size4, size3,
        "bytes written under data_dir/bridge after the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_durability_clean_stop_keeps_what_was_only_in_memory() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let queue = "durability = \"outage\"";
    let mut edge = EdgeProc::start(&w.dir.path().join("edge"), &w.pki, &proxy.address(), queue);
    edge.wait_status("connected", |s| s.contains("connected to"))
        .await;
    // A silent link: the uplink still counts as up, so these stay in memory, unacknowledged.
    proxy.freeze();
    proxy.set_gate(Gate::Closed);
    let want = publish_all(&edge, 0..300).await;
    assert_eq!(
        tree_bytes(&edge.data_dir.join("bridge")),
        0,
        "nothing on disk yet"
    );
    edge.terminate();
    let spilled = tree_bytes(&edge.data_dir.join("bridge"));
    assert!(spilled > 300 * 10, "spilled at shutdown: {spilled} bytes");
    proxy.drop_frozen();
    edge.restart();
    proxy.set_gate(Gate::Open);
    let mut got = Vec::new();
    receive_all(&mut observer, &mut got, &want).await;
    let duplicates = assert_acked_delivered_in_order(&got, &want);
    eprintln!(
        "outage durability, SIGTERM with 300 in memory on a silent link: {spilled} bytes spilled, \
         all arrived after restart ({duplicates} duplicates)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_of_sigkills_keeps_every_acked_message_in_order() {
    if !have_tools() {
        return;
    }
    let w = World::new();
    let proxy = Proxy::start(w.central.tls_port, Gate::Open).await;
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let mut edge = EdgeProc::start(&w.dir.path().join("edge"), &w.pki, &proxy.address(), "");
    let mut rng = seeded();
    let mut want = BTreeSet::new();
    let mut got = Vec::new();
    let mut next = 0u64;
    let started = Instant::now();
    for round in 0..CRASH_ROUNDS {
        if round > 0 {
            edge.restart();
        }
        // A third of the rounds run with the central broker unreachable: a backlog builds.
        let gate = if rng.below(3) == 0 {
            Gate::Closed
        } else {
            Gate::Open
        };
        proxy.set_gate(gate);
        let acked = Acked::default();
        let publisher = tokio::spawn(publish_counted(
            edge.port,
            "data/seq",
            next..next + CRASH_BATCH,
            acked.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(rng.below(CRASH_MAX_MS))).await;
        edge.kill();
        proxy.drop_all();
        tokio::time::timeout(WAIT, publisher)
            .await
            .unwrap()
            .unwrap();
        let round_acked = acked_set(&acked);
        want.extend(&round_acked);
        next += CRASH_BATCH;
    }
    let rounds_took = started.elapsed();
    edge.restart();
    proxy.set_gate(Gate::Open);
    let drain = Instant::now();
    receive_all(&mut observer, &mut got, &want).await;
    let duplicates = assert_acked_delivered_in_order(&got, &want);
    edge.wait_status("drained", |s| s.contains("queue: 0 messages"))
        .await;
    assert_store_healthy(&edge);
    eprintln!(
        "crash loop: {CRASH_ROUNDS} SIGKILLs in {rounds_took:?}; {} PUBACKed of {} offered, all delivered in order \
         ({} arrivals, {duplicates} duplicates); final drain {:?}",
        want.len(),
        next,
        got.len(),
        drain.elapsed()
    );
}

/// Seed 000 as a service: edgemq starts as root with `user = "edgemq"` and
/// the gateway's key is root's alone (0600, as step-ca and certbot leave
/// them). The bridge must read it before the privilege drop, like the
/// listeners do, or it could never connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_only_bridge_key_is_read_before_dropping_root() {
    use std::os::unix::fs::PermissionsExt;
    if !have_tools() || !nix::unistd::Uid::effective().is_root() {
        return;
    }
    let w = World::new();
    // The unprivileged user must reach its data_dir; the key stays root's.
    std::fs::set_permissions(w.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let key = w.pki.path("GW-0001.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut observer = Observer::start(w.central.plain_port, "meters/#").await;
    let edge = EdgeProc::start_with(
        &w.dir.path().join("edge"),
        &w.pki,
        &w.central.address(),
        "user = \"nobody\"",
        "",
    );
    publish_all(&edge, 0..20).await;
    let got = observer.collect(REMOTE, 20, WAIT).await;
    assert_ordered_complete(&indexes(&got), 20);
    let log = edge.log();
    assert!(log.contains("dropped root privileges"), "{log}");
    assert!(!log.contains("ermission denied"), "{log}");
}
