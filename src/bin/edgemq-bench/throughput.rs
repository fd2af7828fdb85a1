//! Throughput scenarios: 1 → 1 at QoS 0 and QoS 1, fan-out 1 → N at QoS 0,
//! fan-in N → 1 at QoS 1. Rates run from the publisher's first write to the
//! last message received (and, at QoS 1, acknowledged).

use std::time::Duration;

use anyhow::{Result, bail};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::load::{PubSpec, PubStats, SubSpec, SubStats, publish, receive};
use crate::report::Report;
use crate::wire::Conn;

/// A subscriber gives up after this long without a message.
const IDLE: Duration = Duration::from_secs(3);
/// Inflight window of the single QoS 1 publisher.
const WINDOW_ONE: u64 = 64;
/// Inflight window of each fan-in publisher.
const WINDOW_EACH: u64 = 8;

/// Sizes of one throughput run.
#[derive(Clone, Debug)]
pub struct Params {
    /// Broker address.
    pub addr: String,
    /// Messages published in total.
    pub count: u64,
    /// Payload bytes.
    pub payload: usize,
    /// Subscribers (fan-out) or publishers (fan-in).
    pub clients: u64,
    /// Hard limit on the whole run.
    pub limit: Duration,
}

/// 1 publisher → 1 subscriber at `qos`.
pub async fn one_to_one(p: &Params, qos: u8, out: &mut Report) -> Result<()> {
    let topic = format!("bench/one/q{qos}");
    let deadline = Instant::now() + p.limit;
    let mut sub = Conn::connect(&p.addr, "bench-sub", true).await?;
    sub.subscribe(&topic, qos).await?;
    let mut pubc = Conn::connect(&p.addr, "bench-pub", true).await?;
    let spec = PubSpec {
        topic,
        qos,
        count: p.count,
        seq0: 0,
        payload: p.payload,
        window: WINDOW_ONE,
        rate: None,
    };
    let sspec = SubSpec {
        seq0: 0,
        expected: p.count,
        idle: IDLE,
        first: IDLE,
        deadline,
        latency_from: u64::MAX,
    };
    let (ps, ss) = tokio::try_join!(
        publish(&mut pubc, &spec, deadline),
        receive(&mut sub, sspec)
    )?;
    let name = if qos == 0 { "qos0" } else { "qos1" };
    report_rate(out, name, "msg/s", &ps, &ss, p.count);
    Ok(())
}

/// 1 publisher → `clients` subscribers, QoS 0; the rate counts deliveries.
pub async fn fan_out(p: &Params, out: &mut Report) -> Result<()> {
    let topic = "bench/fanout".to_string();
    let deadline = Instant::now() + p.limit;
    let mut subs = JoinSet::new();
    for i in 0..p.clients {
        let mut c = Conn::connect(&p.addr, &format!("bench-fo-{i}"), true).await?;
        c.subscribe(&topic, 0).await?;
        let s = SubSpec {
            seq0: 0,
            expected: p.count,
            idle: IDLE,
            first: IDLE,
            deadline,
            latency_from: u64::MAX,
        };
        subs.spawn_local(async move { receive(&mut c, s).await });
    }
    let mut pubc = Conn::connect(&p.addr, "bench-fo-pub", true).await?;
    let spec = PubSpec {
        topic,
        qos: 0,
        count: p.count,
        seq0: 0,
        payload: p.payload,
        window: 1,
        rate: None,
    };
    let ps = publish(&mut pubc, &spec, deadline).await?;
    let all = merge(subs).await?;
    report_rate(
        out,
        "fanout",
        "deliveries/s",
        &ps,
        &all,
        p.count * p.clients,
    );
    Ok(())
}

/// `clients` publishers → 1 subscriber, QoS 1.
pub async fn fan_in(p: &Params, out: &mut Report) -> Result<()> {
    let deadline = Instant::now() + p.limit;
    let each = (p.count / p.clients).max(1);
    let total = each * p.clients;
    let mut sub = Conn::connect(&p.addr, "bench-fi-sub", true).await?;
    sub.subscribe("bench/fanin/+", 1).await?;
    let mut pubs = Vec::new();
    for i in 0..p.clients {
        pubs.push(Conn::connect(&p.addr, &format!("bench-fi-{i}"), true).await?);
    }
    let mut set = JoinSet::new();
    for (i, mut c) in pubs.into_iter().enumerate() {
        let i = i as u64;
        let spec = PubSpec {
            topic: format!("bench/fanin/{i}"),
            qos: 1,
            count: each,
            seq0: i * each,
            payload: p.payload,
            window: WINDOW_EACH,
            rate: None,
        };
        set.spawn_local(async move { publish(&mut c, &spec, deadline).await });
    }
    let sspec = SubSpec {
        seq0: 0,
        expected: total,
        idle: IDLE,
        first: IDLE,
        deadline,
        latency_from: u64::MAX,
    };
    let ss = receive(&mut sub, sspec).await?;
    let mut ps = PubStats {
        start_ns: u64::MAX,
        ..Default::default()
    };
    while let Some(r) = set.join_next().await {
        let s = r??;
        ps.sent += s.sent;
        ps.acked += s.acked;
        ps.start_ns = ps.start_ns.min(s.start_ns);
        ps.end_ns = ps.end_ns.max(s.end_ns);
    }
    report_rate(out, "fanin", "msg/s", &ps, &ss, total);
    Ok(())
}

async fn merge(mut subs: JoinSet<Result<SubStats>>) -> Result<SubStats> {
    let mut all = SubStats::default();
    while let Some(r) = subs.join_next().await {
        let s = r??;
        all.received += s.received;
        all.in_range += s.in_range;
        all.unique += s.unique;
        all.last_ns = all.last_ns.max(s.last_ns);
    }
    Ok(all)
}

fn report_rate(
    out: &mut Report,
    name: &str,
    unit: &str,
    ps: &PubStats,
    ss: &SubStats,
    expected: u64,
) {
    let end = ss.last_ns.max(ps.end_ns);
    let secs = end.saturating_sub(ps.start_ns) as f64 / 1e9;
    out.add(
        &format!("{name}_rate"),
        ss.unique as f64 / secs.max(1e-9),
        unit,
    );
    out.add(
        &format!("{name}_lost"),
        (expected - ss.unique.min(expected)) as f64,
        "msgs",
    );
    out.add(&format!("{name}_dups"), ss.dups() as f64, "msgs");
}

/// Fails a run that delivered nothing: a number from zero messages means nothing.
pub fn check_delivered(out: &Report, name: &str) -> Result<()> {
    match out.get(&format!("{name}_rate")) {
        Some(r) if r > 0.0 => Ok(()),
        _ => bail!("{name}: no message was delivered"),
    }
}
