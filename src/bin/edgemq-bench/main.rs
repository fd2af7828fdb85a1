//! `edgemq-bench`: the load generator behind scripts/bench.sh. It starts the
//! broker under test (edgemq or Debian's mosquitto, same limits, loopback,
//! optionally pinned with taskset), runs one scenario against it and prints
//! `name<TAB>value<TAB>unit` lines; progress goes to stderr. See BENCHMARKS.md.
#![forbid(unsafe_code)]

mod bridge;
mod disk;
mod flow;
mod footprint;
mod gate;
mod hist;
mod latency;
mod load;
mod procfs;
mod report;
mod spawn;
mod throughput;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use report::Report;
use spawn::{Bins, Broker, Kind};

/// Inflight window of the bridge scenarios' local publisher unless --window says otherwise.
const DEFAULT_WINDOW: u64 = 64;

const USAGE: &str = "usage: edgemq-bench SCENARIO [options]
scenarios:
  qos0 | qos1          1 publisher -> 1 subscriber, msg/s (QoS 1: acknowledged end to end)
  fanout               1 publisher -> --clients subscribers, QoS 0, deliveries/s
  fanin                --clients publishers -> 1 subscriber, QoS 1, msg/s
  latency              QoS 0 at --rate msg/s: p50/p99/p99.9/max in us
  idle                 RSS with no client, then with --conns idle connections
  startup              spawn -> first CONNACK, median of --runs
  bridge-ingest        QoS 1 into a bridged topic, uplink up (--durability); disk bytes/msg
  bridge-unbridged     same workload on a topic no bridge carries
  bridge-replay        --count queued during an outage, then drained (--kill9: SIGKILL+restart first)
  bridge-steady        --count through the bridge, backlog never above --backlog; store size
options:
  --broker edgemq|mosquitto   broker under test (default edgemq)
  --edgemq PATH               default: `edgemq` next to this binary
  --mosquitto PATH            default: /usr/sbin/mosquitto
  --cpu LIST                  pin the broker under test with taskset -c LIST
  --scratch DIR               where configs and stores go (default: /tmp)
  --addr HOST:PORT [--pid N]  use a running broker instead (throughput, latency, idle)
  --count N  --payload BYTES  --clients N  --rate MSG/S  --conns N  --runs N
  --backlog N  --durability always|outage  --label NAME  --kill9  --limit SECS
  --window N                  bridge scenarios: publisher's QoS 1 inflight window (default 64;
                              other values suffix the metric names with _wN)
  --rate MSG/S                also paces bridge-ingest's publisher";

/// Everything the command line can set.
struct Args {
    scenario: String,
    kind: Kind,
    bins: Bins,
    addr: Option<String>,
    pid: Option<u32>,
    count: u64,
    payload: usize,
    clients: u64,
    rate: f64,
    conns: usize,
    runs: usize,
    backlog: u64,
    durability: String,
    label: Option<String>,
    kill9: bool,
    limit: Duration,
    window: u64,
}

fn main() -> ExitCode {
    let args = match parse(lexopt::Parser::from_env()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("edgemq-bench: {e}\n{USAGE}");
            return ExitCode::from(1);
        }
    };
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("edgemq-bench: runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = Report::default();
    let local = tokio::task::LocalSet::new();
    // On SIGINT/SIGTERM the run is dropped, and with it every broker it started.
    let interruptible = async {
        tokio::select! {
            r = run(&args, &mut out) => r,
            s = interrupted() => Err(anyhow::anyhow!("interrupted by {s}")),
        }
    };
    match local.block_on(&rt, interruptible) {
        Ok(()) => {
            out.print();
            ExitCode::SUCCESS
        }
        Err(e) => {
            out.print();
            eprintln!("edgemq-bench {}: {e:#}", args.scenario);
            ExitCode::from(2)
        }
    }
}

async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

async fn run(a: &Args, out: &mut Report) -> Result<()> {
    let s = a.scenario.as_str();
    eprintln!("edgemq-bench {s} against {:?}", a.kind);
    if s == "startup" {
        return footprint::startup(a.kind, &a.bins, a.runs, out).await;
    }
    if let Some(rest) = s.strip_prefix("bridge-") {
        return run_bridge(a, rest, out).await;
    }
    // Broker under test: external, or our own child for the length of the run.
    let (addr, pid, _child) = match &a.addr {
        Some(addr) => (addr.clone(), a.pid, None),
        None => {
            let b = Broker::start(a.kind, &a.bins, true, None).await?;
            (b.addr.clone(), Some(b.pid), Some(b))
        }
    };
    let p = throughput::Params {
        addr: addr.clone(),
        count: a.count,
        payload: a.payload,
        clients: a.clients,
        limit: a.limit,
        pid,
    };
    match s {
        "qos0" => throughput::one_to_one(&p, 0, out).await?,
        "qos1" => throughput::one_to_one(&p, 1, out).await?,
        "fanout" => throughput::fan_out(&p, out).await?,
        "fanin" => throughput::fan_in(&p, out).await?,
        "latency" => return latency::run(&addr, a.rate, a.count, a.payload, a.limit, out).await,
        "idle" => {
            let pid = pid.context("idle needs the broker's --pid")?;
            return footprint::idle(&addr, pid, a.conns, out).await;
        }
        other => bail!("unknown scenario {other:?}"),
    }
    throughput::check_delivered(out, s)
}

async fn run_bridge(a: &Args, what: &str, out: &mut Report) -> Result<()> {
    let base = a.label.clone().unwrap_or_else(|| match what {
        "ingest" => format!("ingest_{}", a.durability),
        "replay" => format!("replay_{}", a.durability),
        other => other.to_string(),
    });
    // The default window keeps the historical metric names.
    let label = if a.window == DEFAULT_WINDOW {
        base
    } else {
        format!("{base}_w{}", a.window)
    };
    let p = bridge::Params {
        kind: a.kind,
        bins: &a.bins,
        count: a.count,
        payload: a.payload,
        durability: a.durability.clone(),
        label,
        limit: a.limit,
        window: a.window,
        rate: (a.rate > 0.0).then_some(a.rate),
    };
    match what {
        "ingest" => bridge::ingest(&p, false, out).await,
        "unbridged" => bridge::ingest(&p, true, out).await,
        "replay" => bridge::replay(&p, a.kill9, out).await,
        "steady" => bridge::steady(&p, a.backlog, out).await,
        other => bail!("unknown scenario bridge-{other}"),
    }
}

/// Every default in one place.
fn defaults() -> Args {
    let here = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(|d| d.join("edgemq")));
    Args {
        scenario: String::new(),
        kind: Kind::Edgemq,
        bins: Bins {
            edgemq: here.unwrap_or_else(|| PathBuf::from("edgemq")),
            mosquitto: PathBuf::from("/usr/sbin/mosquitto"),
            cpu: None,
            scratch: std::env::temp_dir(),
        },
        addr: None,
        pid: None,
        count: 100_000,
        payload: 64,
        clients: 100,
        rate: 0.0,
        conns: 1000,
        runs: 5,
        backlog: 10_000,
        durability: "always".into(),
        label: None,
        kill9: false,
        limit: Duration::from_secs(120),
        window: DEFAULT_WINDOW,
    }
}

fn parse(mut p: lexopt::Parser) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = defaults();
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) if a.scenario.is_empty() => a.scenario = v.string()?,
            Long("broker") => {
                a.kind = match p.value()?.string()?.as_str() {
                    "edgemq" => Kind::Edgemq,
                    "mosquitto" => Kind::Mosquitto,
                    other => return Err(format!("--broker {other:?}: edgemq or mosquitto").into()),
                }
            }
            Long("edgemq") => a.bins.edgemq = p.value()?.into(),
            Long("mosquitto") => a.bins.mosquitto = p.value()?.into(),
            Long("cpu") => a.bins.cpu = Some(p.value()?.string()?),
            Long("scratch") => a.bins.scratch = p.value()?.into(),
            Long("addr") => a.addr = Some(p.value()?.string()?),
            Long("pid") => a.pid = Some(p.value()?.parse()?),
            Long("count") => a.count = p.value()?.parse()?,
            Long("payload") => a.payload = p.value()?.parse()?,
            Long("clients") => a.clients = p.value()?.parse()?,
            Long("rate") => a.rate = p.value()?.parse()?,
            Long("conns") => a.conns = p.value()?.parse()?,
            Long("runs") => a.runs = p.value()?.parse()?,
            Long("backlog") => a.backlog = p.value()?.parse()?,
            Long("durability") => a.durability = p.value()?.string()?,
            Long("label") => a.label = Some(p.value()?.string()?),
            Long("kill9") => a.kill9 = true,
            Long("limit") => a.limit = Duration::from_secs(p.value()?.parse()?),
            Long("window") => a.window = p.value()?.parse()?,
            Long("help") | Short('h') => return Err("help".into()),
            other => return Err(other.unexpected()),
        }
    }
    // Brokers run in their scratch directory: a relative path would no longer resolve there.
    for bin in [&mut a.bins.edgemq, &mut a.bins.mosquitto] {
        if let Ok(abs) = std::fs::canonicalize(&*bin) {
            *bin = abs;
        }
    }
    if a.scenario.is_empty() {
        return Err("missing SCENARIO".into());
    }
    if a.count == 0 || a.clients == 0 || a.window == 0 {
        return Err("--count, --clients and --window must be at least 1".into());
    }
    Ok(a)
}
