//! Smoke runs of `edgemq-bench` with tiny counts: the tool starts the real
//! broker, runs each scenario and reports a number for every metric. Speed
//! is never asserted here (the benchmark is not part of pass/fail); that the
//! tool works, and that messages arrive, is.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_edgemq-bench");
const EDGEMQ: &str = env!("CARGO_BIN_EXE_edgemq");
const MOSQUITTO: &str = "/usr/sbin/mosquitto";
/// Hard limit per scenario run, in seconds (passed to the tool).
const LIMIT_SECS: &str = "20";

/// The broker-only scenarios, tiny.
const CORE: &[&[&str]] = &[
    &["qos0", "--count", "300"],
    &["qos1", "--count", "300"],
    &["fanout", "--count", "30", "--clients", "5"],
    &["fanin", "--count", "100", "--clients", "5"],
    &["latency", "--count", "300", "--rate", "3000"],
    &["idle", "--conns", "20"],
    &["startup", "--runs", "1"],
];

/// The bridge scenarios, tiny (they need Mosquitto as the central broker).
const BRIDGE: &[&[&str]] = &[
    &["bridge-ingest", "--count", "100", "--payload", "256"],
    &["bridge-unbridged", "--count", "100", "--payload", "256"],
    &["bridge-replay", "--count", "100", "--payload", "256"],
    &[
        "bridge-steady",
        "--count",
        "200",
        "--backlog",
        "50",
        "--payload",
        "256",
    ],
    &[
        "bridge-replay",
        "--kill9",
        "--label",
        "kill9",
        "--count",
        "200",
        "--payload",
        "256",
    ],
];

/// Metrics every run must report, by scenario (or --label), and whether each must be > 0.
fn expected(scenario: &str) -> &'static [(&'static str, bool)] {
    match scenario {
        "qos0" => &[("qos0_rate", true), ("qos0_lost", false)],
        "qos1" => &[("qos1_rate", true), ("qos1_lost", false)],
        "fanout" => &[("fanout_rate", true), ("fanout_lost", false)],
        "fanin" => &[("fanin_rate", true), ("fanin_lost", false)],
        "latency" => &[
            ("latency_p50", true),
            ("latency_p99", true),
            ("latency_p999", true),
        ],
        "idle" => &[("idle_rss", true), ("conns_rss", true)],
        "startup" => &[("startup_ms", true)],
        "bridge-ingest" => &[
            ("ingest_always_rate", true),
            ("ingest_always_lost", false),
            ("ingest_always_store", false),
        ],
        "bridge-unbridged" => &[("unbridged_rate", true)],
        "bridge-replay" => &[
            ("replay_always_rate", true),
            ("replay_always_lost", false),
            ("replay_always_rss_max", true),
        ],
        "bridge-steady" => &[("steady_rate", true), ("steady_store_max", false)],
        "kill9" => &[("kill9_rate", true), ("kill9_lost", false)],
        _ => &[],
    }
}

fn mosquitto_present() -> bool {
    if Path::new(MOSQUITTO).exists() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true and {MOSQUITTO} is missing"
    );
    eprintln!("note: {MOSQUITTO} missing, skipping (install mosquitto)");
    false
}

/// Runs one scenario against `broker` and returns its metrics.
fn run(broker: &str, args: &[&str]) -> HashMap<String, f64> {
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(BENCH)
        .args(args)
        .args([
            "--broker",
            broker,
            "--edgemq",
            EDGEMQ,
            "--mosquitto",
            MOSQUITTO,
            "--limit",
            LIMIT_SECS,
        ])
        .arg("--scratch")
        .arg(scratch.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "edgemq-bench {args:?} against {broker} failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let metrics: HashMap<String, f64> = stdout
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            assert_eq!(f.len(), 3, "malformed result line {l:?}");
            (f[0].to_string(), f[1].parse().unwrap())
        })
        .collect();
    let key = args
        .iter()
        .position(|a| *a == "--label")
        .map_or(args[0], |i| args[i + 1]);
    let want = expected(key);
    assert!(!want.is_empty(), "no expectations for {key}");
    for (name, positive) in want {
        let v = *metrics
            .get(*name)
            .unwrap_or_else(|| panic!("{name} missing from {stdout}"));
        assert!(v.is_finite() && v >= 0.0, "{name} = {v}");
        assert!(!positive || v > 0.0, "{name} = {v}, expected > 0");
        if name.ends_with("_lost") {
            assert_eq!(v, 0.0, "{args:?} against {broker}: {name} = {v}");
        }
    }
    metrics
}

#[test]
fn core_scenarios_against_edgemq() {
    for args in CORE {
        run("edgemq", args);
    }
}

#[test]
fn bridge_scenarios_against_edgemq() {
    if !mosquitto_present() {
        return;
    }
    for args in BRIDGE {
        run("edgemq", args);
    }
}

/// The harness itself, with Mosquitto as the broker under test: proves the
/// tool measures what it claims independently of edgemq.
#[test]
fn core_scenarios_against_mosquitto() {
    if !mosquitto_present() {
        return;
    }
    for args in CORE {
        run("mosquitto", args);
    }
}

/// A Mosquitto bridge drops what exceeds max_queued_messages (10,000 in the
/// bench's config) during an outage; the tool must see and count that loss.
#[test]
fn replay_counts_mosquitto_bridge_loss() {
    if !mosquitto_present() {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let out = Command::new(BENCH)
        .args([
            "bridge-replay",
            "--count",
            "12000",
            "--broker",
            "mosquitto",
            "--mosquitto",
            MOSQUITTO,
        ])
        .args(["--limit", "40", "--scratch"])
        .arg(scratch.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lost: f64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replay_always_lost\t"))
        .and_then(|v| v.split('\t').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!((1000.0..11000.0).contains(&lost), "lost {lost} of 12000");
}
