//! The sled store against real files: reopen, a corrupt directory set aside, a tmpfs
//! warning, and a crash loop of SIGKILLed writers (examples/store_powercut.rs's writer).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use edgemq::router::message::{Message, Origin, QoS};
use edgemq::store::{STORE_DIR, Store};

// The writer and verifier shared with tests/powercut/store.sh.
#[path = "../examples/store_powercut.rs"]
#[allow(dead_code)]
mod powercut;

/// Crash-loop rounds.
const CRASH_ROUNDS: usize = 20;
/// How long a writer may take to report its first flush.
const FIRST_FLUSH_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound of the random time a writer runs after its first flush.
const MAX_RUN_MS: u64 = 150;

fn msg(topic: &str, payload: &str) -> Message {
    Message::new(
        topic,
        payload.as_bytes().to_vec(),
        QoS::AtLeastOnce,
        true,
        Origin::Client("pub".into()),
    )
}

/// Log lines written while `f` runs.
fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(Arc::default());
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

fn broken_dirs(data_dir: &Path) -> Vec<PathBuf> {
    let prefix = format!("{STORE_DIR}.broken-");
    std::fs::read_dir(data_dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
        .map(|e| e.path())
        .collect()
}

#[test]
fn reopen_keeps_retained_sessions_and_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("not/yet/there");
    {
        let s = Store::open(&data).unwrap();
        s.put_retained(&msg("a/b", "1")).unwrap();
        s.put_retained(&msg("a/b", "2")).unwrap();
        s.put_retained(&msg("gone", "x")).unwrap();
        s.delete_retained("gone").unwrap();
        s.put_session("c", b"state-c").unwrap();
        s.put_session("c2", b"state-c2").unwrap();
        // Out of order and across a byte boundary: big-endian keys sort numerically.
        for seq in [300u64, 2, 256, 1, 255] {
            s.put_session_msg("c", seq, &msg("t", &seq.to_string()))
                .unwrap();
        }
        s.put_session_msg("c2", 7, &msg("t", "c2")).unwrap();
        s.delete_session_msg("c", 2).unwrap();
        s.put_meta("bridge.x", b"meta").unwrap();
        s.flush().unwrap();
        assert!(s.size_on_disk() > 0);
    }
    let s = Store::open(&data).unwrap();
    let retained = s.load_retained().unwrap();
    assert_eq!(retained.len(), 1);
    assert_eq!(&*retained[0].topic, "a/b");
    assert_eq!(&retained[0].payload[..], b"2");
    let mut sessions = s.sessions().unwrap();
    sessions.sort();
    assert_eq!(sessions.len(), 2);
    assert_eq!(
        (sessions[0].0.as_str(), &sessions[0].1[..]),
        ("c", &b"state-c"[..])
    );
    let seqs: Vec<u64> = s
        .session_msgs("c")
        .unwrap()
        .iter()
        .map(|(q, _)| *q)
        .collect();
    assert_eq!(seqs, [1, 255, 256, 300]);
    let (seq, m) = &s.session_msgs("c").unwrap()[3];
    assert_eq!((*seq, &m.payload[..]), (300, &b"300"[..]));
    assert_eq!(
        s.get_meta("bridge.x").unwrap().as_deref(),
        Some(&b"meta"[..])
    );
    assert_eq!(s.get_meta("nope").unwrap(), None);

    s.delete_session("c").unwrap();
    assert!(s.session_msgs("c").unwrap().is_empty());
    assert_eq!(
        s.session_msgs("c2").unwrap().len(),
        1,
        "a longer id sharing the prefix is kept"
    );
    assert_eq!(s.sessions().unwrap().len(), 1);
    assert!(broken_dirs(&data).is_empty());
}

#[test]
fn undecodable_records_are_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = Store::open(tmp.path()).unwrap();
        s.put_retained(&msg("ok", "1")).unwrap();
        s.flush().unwrap();
    }
    {
        // Write a garbage value into the retained tree through sled itself.
        let db = sled::open(tmp.path().join(STORE_DIR)).unwrap();
        db.open_tree("retained")
            .unwrap()
            .insert("bad", &b"\x09garbage"[..])
            .unwrap();
        db.flush().unwrap();
    }
    let s = Store::open(tmp.path()).unwrap();
    let (loaded, logs) = capture_logs(|| s.load_retained().unwrap());
    assert_eq!(loaded.len(), 1);
    assert!(logs.contains("undecodable"), "logs: {logs}");
}

#[test]
fn corrupt_store_is_set_aside_and_a_fresh_one_opens() {
    let tmp = tempfile::tempdir().unwrap();
    {
        let s = Store::open(tmp.path()).unwrap();
        s.put_retained(&msg("a", "1")).unwrap();
        s.flush().unwrap();
    }
    let db = tmp.path().join(STORE_DIR).join("db");
    let garbage: Vec<u8> = (0..256 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&db, garbage).unwrap();

    let (s, logs) = capture_logs(|| Store::open(tmp.path()));
    let s = s.expect("a fresh store opens");
    assert!(s.load_retained().unwrap().is_empty(), "starts empty");
    let broken = broken_dirs(tmp.path());
    assert_eq!(broken.len(), 1, "the broken store is kept for inspection");
    assert!(broken[0].join("db").exists());
    assert!(
        logs.contains("ERROR") && logs.contains("STORE BROKEN"),
        "logs: {logs}"
    );
    s.put_retained(&msg("b", "2")).unwrap();
    s.flush().unwrap();
    drop(s);
    assert_eq!(
        Store::open(tmp.path())
            .unwrap()
            .load_retained()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn tmpfs_data_dir_is_warned_about() {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        println!("note: no /dev/shm here, tmpfs warning not tested");
        return;
    }
    let tmp = tempfile::tempdir_in(shm).unwrap();
    let (s, logs) = capture_logs(|| Store::open(tmp.path()));
    s.unwrap();
    assert!(
        logs.contains("WARN") && logs.contains("tmpfs"),
        "logs: {logs}"
    );
    let disk = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let (s, logs) = capture_logs(|| Store::open(disk.path()));
    s.unwrap();
    assert!(!logs.contains("tmpfs"), "no warning on a disk: {logs}");
}

/// The writer process of the crash loop: this test binary run again with the data dir in
/// this variable and only `crash_loop_writer_process` selected.
const WRITER_DIR_ENV: &str = "EDGEMQ_STORE_WRITER_DIR";

/// Not a test by itself: the body of the crash loop's writer process (a no-op otherwise).
#[test]
fn crash_loop_writer_process() {
    if let Some(dir) = std::env::var_os(WRITER_DIR_ENV) {
        powercut::write(Path::new(&dir)).unwrap();
    }
}

/// A small xorshift: random cut times without a dependency.
fn next_rand(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Runs the writer, kills it at a random moment after its first flush; the last "F n".
fn run_and_kill(data: &Path, run_ms: u64) -> u64 {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_loop_writer_process", "--nocapture"])
        .env(WRITER_DIR_ENV, data)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("F ").and_then(|n| n.parse::<u64>().ok()) {
                let _ = tx.send(n);
            }
        }
    });
    let first = rx.recv_timeout(FIRST_FLUSH_TIMEOUT);
    std::thread::sleep(Duration::from_millis(run_ms));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    let first = first.expect("the writer flushed at least once");
    rx.try_iter().fold(first, u64::max)
}

#[test]
fn crash_loop_keeps_every_flushed_record() {
    // A SIGKILL loses no page cache, so the disk adds nothing but fsync latency here
    // (tests/powercut/store.sh covers the disk); tmpfs keeps 20 rounds to seconds.
    let shm = Path::new("/dev/shm");
    let tmp = if shm.is_dir() {
        tempfile::tempdir_in(shm).unwrap()
    } else {
        tempfile::tempdir().unwrap()
    };
    let data = tmp.path().join("data");
    let mut seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    let mut total = 0;
    for round in 1..=CRASH_ROUNDS {
        let run_ms = next_rand(&mut seed) % MAX_RUN_MS;
        let last = run_and_kill(&data, run_ms);
        total += last;
        if let Err(e) = powercut::verify(&data, last) {
            panic!(
                "round {round} (killed {run_ms} ms after the first flush, last durable {last}): {e:#}"
            );
        }
    }
    assert!(total >= CRASH_ROUNDS as u64, "the writers flushed: {total}");
    assert!(broken_dirs(&data).is_empty(), "no round needed a set-aside");
}
