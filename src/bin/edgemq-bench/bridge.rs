//! Bridge scenarios: the broker under test bridges `bench/bridge/#` out at
//! QoS 1 to a local Mosquitto "central", where a subscriber counts what
//! arrives (unique, duplicates, lost). The uplink outage is a closed `Gate`
//! between the two, so the central broker and its subscriber stay up.
//! Disk bytes come from the store device's sectors-written counter (`disk.rs`).

use std::cell::Cell;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::time::{Instant, sleep, timeout};

use crate::disk::{DiskMeter, shrunk_store, store_bytes};
use crate::gate::Gate;
use crate::load::{PubSpec, PubStats, SubSpec, SubStats, publish, receive};
use crate::procfs::{cpu_us, dir_bytes, rss_kib};
use crate::report::Report;
use crate::spawn::{Bins, BridgeSpec, Broker, Kind};
use crate::wire::{Conn, Frame, now_ns, put_puback, put_publish, scan};

/// The central subscriber gives up after this long without a message.
const IDLE: Duration = Duration::from_secs(5);
/// How long the uplink may take to come up (Mosquitto's bridge retries slowly).
const UPLINK_TIMEOUT: Duration = Duration::from_secs(30);
/// RSS sampling period while draining.
const RSS_EVERY: Duration = Duration::from_millis(20);
/// Store-size samples are taken every this many chunks in the steady run.
const SAMPLE_CHUNKS: u64 = 10;

/// One bridge run.
pub struct Params<'a> {
    /// Broker under test.
    pub kind: Kind,
    /// Binaries and pinning.
    pub bins: &'a Bins,
    /// Messages published.
    pub count: u64,
    /// Payload bytes.
    pub payload: usize,
    /// edgemq queue durability: "always" or "outage".
    pub durability: String,
    /// Metric name prefix.
    pub label: String,
    /// Hard limit on the run.
    pub limit: Duration,
    /// QoS 1 messages the local publisher keeps unacknowledged at most.
    pub window: u64,
    /// Ingest: the local publisher's pace in msg/s (None: as fast as acks allow).
    pub rate: Option<f64>,
}

struct Rig {
    central: Broker,
    csub: Conn,
}

async fn central(bins: &Bins) -> Result<Rig> {
    let central = Broker::start(Kind::Mosquitto, bins, false, None)
        .await
        .context("central mosquitto")?;
    let mut csub = Conn::connect(&central.addr, "bench-central-sub", true).await?;
    csub.subscribe("bench/bridge/#", 1).await?;
    Ok(Rig { central, csub })
}

/// QoS 1 into the broker under test with the uplink up: bridged (or, with
/// `unbridged`, on a topic no bridge carries), with disk bytes per message.
pub async fn ingest(p: &Params<'_>, unbridged: bool, out: &mut Report) -> Result<()> {
    let deadline = Instant::now() + p.limit;
    let mut rig = central(p.bins).await?;
    let spec = BridgeSpec {
        central: rig.central.addr.clone(),
        durability: p.durability.clone(),
    };
    let edge = Broker::start(p.kind, p.bins, true, Some(&spec)).await?;
    wait_uplink(&edge.addr, &mut rig.csub).await?;
    let disk = DiskMeter::start(&edge.data_dir);
    let cpu0 = cpu_us(edge.pid).ok();
    let (ps, delivered) = publish_through(p, &edge, &mut rig.csub, unbridged, deadline).await?;
    let l = &p.label;
    let secs = ps.end_ns.saturating_sub(ps.start_ns) as f64 / 1e9;
    out.add(
        &format!("{l}_rate"),
        ps.acked as f64 / secs.max(1e-9),
        "msg/s",
    );
    // Broker CPU (all its threads, the queue writer included) over the run.
    if let (Some(t0), Ok(t1)) = (cpu0, cpu_us(edge.pid)) {
        out.add(
            &format!("{l}_cpu_us_per_msg"),
            t1.saturating_sub(t0) as f64 / ps.acked.max(1) as f64,
            "us",
        );
    }
    if let Some(ss) = delivered {
        out.add(
            &format!("{l}_lost"),
            (p.count - ss.unique.min(p.count)) as f64,
            "msgs",
        );
        out.add(&format!("{l}_dups"), ss.dups() as f64, "msgs");
    }
    if let Some(bytes) = disk.finish(&edge.data_dir) {
        out.add(
            &format!("{l}_disk_per_msg"),
            bytes as f64 / p.count as f64,
            "B",
        );
    }
    out.add(&format!("{l}_store"), dir_bytes(&edge.data_dir) as f64, "B");
    Ok(())
}

/// The ingest run's publishing: to a bridged topic while the central broker's subscriber
/// counts what arrives, or to a local one; (the publisher's figures, the subscriber's).
async fn publish_through(
    p: &Params<'_>,
    edge: &Broker,
    csub: &mut Conn,
    unbridged: bool,
    deadline: Instant,
) -> Result<(PubStats, Option<SubStats>)> {
    let topic = if unbridged {
        "bench/local/x"
    } else {
        "bench/bridge/x"
    };
    let mut pubc = Conn::connect(&edge.addr, "bench-edge-pub", true).await?;
    let ps_spec = PubSpec {
        topic: topic.into(),
        qos: 1,
        count: p.count,
        seq0: 0,
        payload: p.payload,
        window: p.window,
        rate: p.rate,
        flow: None,
    };
    Ok(if unbridged {
        (publish(&mut pubc, &ps_spec, deadline).await?, None)
    } else {
        let s = SubSpec {
            seq0: 0,
            expected: p.count,
            idle: IDLE,
            first: IDLE,
            deadline,
            latency_from: u64::MAX,
            tap: None,
        };
        let (ps, ss) = tokio::try_join!(publish(&mut pubc, &ps_spec, deadline), receive(csub, s))?;
        (ps, Some(ss))
    })
}

/// Queue `count` messages during an outage (optionally SIGKILL and restart
/// the broker), then open the uplink and measure the drain.
pub async fn replay(p: &Params<'_>, kill9: bool, out: &mut Report) -> Result<()> {
    let deadline = Instant::now() + p.limit;
    let mut rig = central(p.bins).await?;
    let mut gate = Gate::new(&rig.central.addr)?;
    let spec = BridgeSpec {
        central: gate.addr(),
        durability: p.durability.clone(),
    };
    let mut edge = Broker::start(p.kind, p.bins, true, Some(&spec)).await?;
    let l = &p.label;
    let rate = publish_into_outage(p, &edge.addr, deadline).await?;
    out.add(&format!("{l}_outage_rate"), rate, "msg/s");
    if kill9 {
        edge.kill9();
        edge.spawn().await.context("restart after SIGKILL")?;
    }
    out.add(
        &format!("{l}_store_peak"),
        store_bytes(&edge.data_dir) as f64,
        "B",
    );
    gate.open().await?;
    let t0 = now_ns();
    let s = SubSpec {
        seq0: 0,
        expected: p.count,
        idle: IDLE,
        first: UPLINK_TIMEOUT,
        deadline,
        latency_from: u64::MAX,
        tap: None,
    };
    let (ss, peak_rss) = drain_sampling_rss(&mut rig.csub, s, edge.pid).await?;
    // From the first delivery: the bridge's reconnect delay is reported on its own.
    let secs = ss.last_ns.saturating_sub(ss.first_ns) as f64 / 1e9;
    out.add(
        &format!("{l}_rate"),
        ss.unique as f64 / secs.max(1e-9),
        "msg/s",
    );
    out.add(
        &format!("{l}_reconnect"),
        ss.first_ns.saturating_sub(t0) as f64 / 1e9,
        "s",
    );
    out.add(
        &format!("{l}_lost"),
        (p.count - ss.unique.min(p.count)) as f64,
        "msgs",
    );
    out.add(&format!("{l}_dups"), ss.dups() as f64, "msgs");
    out.add(&format!("{l}_rss_max"), peak_rss as f64, "KiB");
    out.add(
        &format!("{l}_store_after"),
        shrunk_store(&edge.data_dir).await as f64,
        "B",
    );
    Ok(())
}

/// Publishes the replay's backlog to the edge while its uplink is cut; its rate, msg/s.
async fn publish_into_outage(p: &Params<'_>, edge: &str, deadline: Instant) -> Result<f64> {
    let mut pubc = Conn::connect(edge, "bench-edge-pub", true).await?;
    let spec = PubSpec {
        topic: "bench/bridge/r".into(),
        qos: 1,
        count: p.count,
        seq0: 0,
        payload: p.payload,
        window: p.window,
        rate: None,
        flow: None,
    };
    let ps = publish(&mut pubc, &spec, deadline).await?;
    pubc.disconnect().await;
    let secs = ps.end_ns.saturating_sub(ps.start_ns) as f64 / 1e9;
    Ok(ps.acked as f64 / secs.max(1e-9))
}

/// Receives what `s` expects at the central broker while sampling the edge's RSS: (what
/// arrived, the peak RSS in KiB).
async fn drain_sampling_rss(csub: &mut Conn, s: SubSpec, pid: u32) -> Result<(SubStats, u64)> {
    let peak_rss = Cell::new(0u64);
    let done = Cell::new(false);
    let drain = async {
        let r = receive(csub, s).await;
        done.set(true);
        r
    };
    let sample = async {
        while !done.get() {
            if let Ok(kib) = rss_kib(pid) {
                peak_rss.set(peak_rss.get().max(kib));
            }
            sleep(RSS_EVERY).await;
        }
        anyhow::Ok(())
    };
    let (ss, ()) = tokio::try_join!(drain, sample)?;
    Ok((ss, peak_rss.get()))
}

/// `count` messages through the bridge in chunks of `backlog`, each chunk
/// delivered before the next, so the queue never holds more than `backlog`.
pub async fn steady(p: &Params<'_>, backlog: u64, out: &mut Report) -> Result<()> {
    let deadline = Instant::now() + p.limit;
    let mut rig = central(p.bins).await?;
    let spec = BridgeSpec {
        central: rig.central.addr.clone(),
        durability: p.durability.clone(),
    };
    let edge = Broker::start(p.kind, p.bins, true, Some(&spec)).await?;
    wait_uplink(&edge.addr, &mut rig.csub).await?;
    let mut pubc = Conn::connect(&edge.addr, "bench-edge-pub", true).await?;
    let (chunks, mut lost, mut max_store) = (p.count.div_ceil(backlog.max(1)), 0, 0);
    let t0 = now_ns();
    for i in 0..chunks {
        let seq0 = i * backlog;
        let n = backlog.min(p.count - seq0);
        lost += chunk(&mut pubc, &mut rig.csub, p, seq0, n, deadline).await?;
        if i % SAMPLE_CHUNKS == SAMPLE_CHUNKS - 1 {
            max_store = max_store.max(store_bytes(&edge.data_dir));
        }
    }
    let l = &p.label;
    let secs = now_ns().saturating_sub(t0) as f64 / 1e9;
    out.add(
        &format!("{l}_rate"),
        p.count as f64 / secs.max(1e-9),
        "msg/s",
    );
    out.add(&format!("{l}_lost"), lost as f64, "msgs");
    out.add(
        &format!("{l}_store_max"),
        max_store.max(store_bytes(&edge.data_dir)) as f64,
        "B",
    );
    out.add(
        &format!("{l}_peak_backlog_bytes"),
        (backlog * p.payload as u64) as f64,
        "B",
    );
    Ok(())
}

/// Publishes messages `seq0..seq0 + n` through the bridge and waits for them at the central
/// subscriber; returns how many did not arrive.
async fn chunk(
    pubc: &mut Conn,
    csub: &mut Conn,
    p: &Params<'_>,
    seq0: u64,
    n: u64,
    deadline: Instant,
) -> Result<u64> {
    let ps_spec = PubSpec {
        topic: "bench/bridge/s".into(),
        qos: 1,
        count: n,
        seq0,
        payload: p.payload,
        window: p.window,
        rate: None,
        flow: None,
    };
    let s = SubSpec {
        seq0,
        expected: n,
        idle: IDLE,
        first: IDLE,
        deadline,
        latency_from: u64::MAX,
        tap: None,
    };
    let (_, ss) = tokio::try_join!(publish(pubc, &ps_spec, deadline), receive(csub, s))?;
    Ok(n - ss.unique.min(n))
}

/// Publishes probes on a bridged topic until one reaches the central subscriber.
async fn wait_uplink(edge: &str, csub: &mut Conn) -> Result<()> {
    let mut probe = Conn::connect(edge, "bench-probe-pub", true).await?;
    let t0 = Instant::now();
    while t0.elapsed() < UPLINK_TIMEOUT {
        let mut buf = bytes::BytesMut::new();
        put_publish(&mut buf, "bench/bridge/probe", 0, 0, 16, u64::MAX, 0);
        tokio::io::AsyncWriteExt::write_all(&mut probe.stream, &buf).await?;
        if timeout(Duration::from_millis(200), first_publish(csub))
            .await
            .is_ok()
        {
            return Ok(());
        }
    }
    bail!("the bridge did not deliver a probe to the central broker within {UPLINK_TIMEOUT:?}")
}

async fn first_publish(c: &mut Conn) -> Result<()> {
    loop {
        c.rbuf.reserve(4096);
        if tokio::io::AsyncReadExt::read_buf(&mut c.stream, &mut c.rbuf).await? == 0 {
            bail!("central closed the subscriber");
        }
        let (mut got, mut acks) = (false, bytes::BytesMut::new());
        scan(&mut c.rbuf, |f| {
            if let Frame::Publish(p) = f {
                got = true;
                if p.qos > 0 {
                    put_puback(&mut acks, p.pkid);
                }
            }
        })?;
        tokio::io::AsyncWriteExt::write_all(&mut c.stream, &acks).await?;
        if got {
            return Ok(());
        }
    }
}
