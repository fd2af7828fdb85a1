//! Writer and verifier for the store's crash and power-cut tests
//! (tests/store.rs, tests/powercut/store.sh).
//!
//! ```text
//! store_powercut write  [DATA_DIR]         # put_retained + put_session_msg, flush every BATCH, print "F <n>"
//! store_powercut write-nosync [DATA_DIR]   # baseline: the same records through bare sled, flush without fsync
//! store_powercut verify [DATA_DIR [LAST]]  # every record 1..=LAST present and intact, in order
//! ```
//! DATA_DIR and LAST default to the environment variables DATA_DIR and LAST_DURABLE.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use bytes::Bytes;
use edgemq::router::message::{Message, Origin, QoS};
use edgemq::store::{STORE_DIR, Store};

/// Records per flush (one "F <n>" line each).
const BATCH: u64 = 10;
/// Payload bytes per record (about 300 bytes encoded, like the reference FIFO test).
const PAYLOAD_LEN: usize = 240;
/// The writer stops by itself after this many records, if nobody kills it first.
const MAX_RECORDS: u64 = 2_000_000;
/// Client id whose session queue the writer fills.
const CLIENT: &str = "powercut";

fn topic(n: u64) -> String {
    format!("pc/{}/{n}", n % 16)
}

fn payload(n: u64) -> Bytes {
    let unit = format!("{n:012};");
    Bytes::from(unit.repeat(PAYLOAD_LEN / unit.len()))
}

fn record(n: u64) -> Message {
    let mut m = Message::new(
        &topic(n),
        payload(n),
        QoS::AtLeastOnce,
        true,
        Origin::Client(CLIENT.into()),
    );
    m.received_ms = n;
    m
}

pub fn write(dir: &Path) -> anyhow::Result<()> {
    let store = Store::open(dir)?;
    let mut out = std::io::stdout().lock();
    for n in 1..=MAX_RECORDS {
        let m = record(n);
        store.put_retained(&m)?;
        store.put_session_msg(CLIENT, n, &m)?;
        if n % BATCH == 0 {
            store.put_meta("last", &n.to_be_bytes())?;
            store.flush()?;
            writeln!(out, "F {n}")?;
            out.flush()?;
        }
    }
    Ok(())
}

/// Same records and layout as `write`, through bare sled whose flush does not fsync.
pub fn write_nosync(dir: &Path) -> anyhow::Result<()> {
    // Created (and its marker made durable) the normal way, then written without fsyncs.
    drop(Store::open(dir)?);
    let db = sled::Config::new()
        .path(dir.join(STORE_DIR))
        .cache_capacity(3 * 1024 * 1024)
        .open()?;
    let retained = db.open_tree("retained")?;
    let msgs = db.open_tree("session_msgs")?;
    let mut out = std::io::stdout().lock();
    for n in 1..=MAX_RECORDS {
        let v = record(n).to_bytes();
        retained.insert(topic(n).as_bytes(), v.as_ref())?;
        let mut key = CLIENT.as_bytes().to_vec();
        key.push(0);
        key.extend_from_slice(&n.to_be_bytes());
        msgs.insert(key, v.as_ref())?;
        if n % BATCH == 0 {
            db.flush()?;
            writeln!(out, "F {n}")?;
            out.flush()?;
        }
    }
    Ok(())
}

pub fn verify(dir: &Path, last: u64) -> anyhow::Result<()> {
    let broken = has_broken_store(dir);
    let store = Store::open(dir)?;
    let retained: HashMap<String, Message> = store
        .load_retained()?
        .into_iter()
        .map(|m| (m.topic.to_string(), m))
        .collect();
    let msgs = store.session_msgs(CLIENT)?;
    for n in 1..=last {
        let want = record(n);
        match retained.get(&*want.topic) {
            Some(m) if m.payload == want.payload && m.retain => {}
            Some(_) => bail!("retained record {n} is corrupt"),
            None => bail!(
                "retained record {n} of {last} missing ({} present)",
                retained.len()
            ),
        }
    }
    for (i, (seq, m)) in msgs.iter().take(last as usize).enumerate() {
        let n = i as u64 + 1;
        if *seq != n || m.payload != payload(n) {
            bail!("session message {n}: found seq {seq} (order or content wrong)");
        }
    }
    if (msgs.len() as u64) < last {
        bail!("session messages: {} of {last} present", msgs.len());
    }
    if broken {
        bail!("the store had been set aside before this run");
    }
    println!(
        "ok: last durable {last}; {} retained, {} session messages present",
        retained.len(),
        msgs.len()
    );
    Ok(())
}

fn has_broken_store(dir: &Path) -> bool {
    let prefix = format!("{STORE_DIR}.broken-");
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with(&prefix))
    })
}

fn data_dir(arg: Option<String>) -> anyhow::Result<PathBuf> {
    arg.or_else(|| std::env::var("DATA_DIR").ok())
        .map(PathBuf::from)
        .context("DATA_DIR missing (argument or environment)")
}

fn run() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_default();
    let dir = data_dir(args.next())?;
    match mode.as_str() {
        "write" => write(&dir),
        "write-nosync" => write_nosync(&dir),
        "verify" => {
            let last = args
                .next()
                .or_else(|| std::env::var("LAST_DURABLE").ok())
                .unwrap_or_else(|| "0".into());
            verify(&dir, last.parse().context("LAST is not a number")?)
        }
        other => bail!("unknown mode {other:?}: write | write-nosync | verify"),
    }
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("store_powercut: {e:#}");
            ExitCode::FAILURE
        }
    }
}
