//! Throughput scenarios: 1 → 1 at QoS 0 and QoS 1, fan-out 1 → N at QoS 0,
//! fan-in N → 1 at QoS 1. Rates run from the publisher's first write to the
//! last message received (and, at QoS 1, acknowledged).

use std::rc::Rc;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::flow::{Flow, Tap};
use crate::load::{PubSpec, PubStats, SubSpec, SubStats, publish, receive};
use crate::procfs::cpu_us;
use crate::report::Report;
use crate::wire::Conn;

/// A subscriber gives up after this long without a message.
const IDLE: Duration = Duration::from_secs(3);
/// Messages a QoS 1 publisher may be ahead of delivery (1 → 1).
const WINDOW_ONE: u64 = 64;
/// Messages a QoS 0 publisher may be ahead of the slowest subscriber: deep
/// enough to keep the pipe full, below both brokers' 1000-message queues.
const WINDOW_QOS0: u64 = 500;
/// Messages each fan-in publisher may be ahead of delivery (100 × 8 < 1000).
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
    /// The broker's pid, when known: its CPU time per message is reported.
    pub pid: Option<u32>,
}

/// Broker CPU time over a run: robust where the machine is shared, unlike rates.
struct CpuMeter(Option<(u32, u64)>);

impl CpuMeter {
    fn start(pid: Option<u32>) -> CpuMeter {
        CpuMeter(pid.and_then(|p| cpu_us(p).ok().map(|t| (p, t))))
    }

    fn report(&self, out: &mut Report, name: &str, msgs: u64) {
        if let Some((pid, t0)) = self.0
            && let Ok(t1) = cpu_us(pid)
        {
            out.add(
                &format!("{name}_cpu_us_per_msg"),
                (t1 - t0) as f64 / msgs.max(1) as f64,
                "us",
            );
        }
    }
}

/// 1 publisher → 1 subscriber at `qos`.
pub async fn one_to_one(p: &Params, qos: u8, out: &mut Report) -> Result<()> {
    let topic = format!("bench/one/q{qos}");
    let deadline = Instant::now() + p.limit;
    let flow = Flow::new(1, 1, p.count, 0);
    let mut sub = Conn::connect(&p.addr, "bench-sub", true).await?;
    sub.subscribe(&topic, qos).await?;
    let mut pubc = Conn::connect(&p.addr, "bench-pub", true).await?;
    let window = if qos == 0 { WINDOW_QOS0 } else { WINDOW_ONE };
    let spec = pub_spec(
        topic,
        qos,
        p.count,
        0,
        p.payload,
        window,
        Some((flow.clone(), 0)),
    );
    let sspec = sub_spec(0, p.count, deadline, Some(Tap { flow, sub: 0 }));
    let cpu = CpuMeter::start(p.pid);
    let (ps, ss) = tokio::try_join!(
        publish(&mut pubc, &spec, deadline),
        receive(&mut sub, sspec)
    )?;
    let name = if qos == 0 { "qos0" } else { "qos1" };
    report_rate(out, name, "msg/s", &ps, &ss, p.count);
    cpu.report(out, name, ss.unique);
    Ok(())
}

/// 1 publisher → `clients` subscribers, QoS 0; the rate counts deliveries.
pub async fn fan_out(p: &Params, out: &mut Report) -> Result<()> {
    let topic = "bench/fanout".to_string();
    let deadline = Instant::now() + p.limit;
    let flow = Flow::new(1, p.clients as usize, p.count, 0);
    let mut subs = JoinSet::new();
    for i in 0..p.clients {
        let mut c = Conn::connect(&p.addr, &format!("bench-fo-{i}"), true).await?;
        c.subscribe(&topic, 0).await?;
        let tap = Tap {
            flow: flow.clone(),
            sub: i as usize,
        };
        let s = sub_spec(0, p.count, deadline, Some(tap));
        subs.spawn_local(async move { receive(&mut c, s).await });
    }
    let mut pubc = Conn::connect(&p.addr, "bench-fo-pub", true).await?;
    let spec = pub_spec(
        topic,
        0,
        p.count,
        0,
        p.payload,
        WINDOW_QOS0,
        Some((flow, 0)),
    );
    let cpu = CpuMeter::start(p.pid);
    let ps = publish(&mut pubc, &spec, deadline).await?;
    let all = merge(subs).await?;
    let deliveries = p.count * p.clients;
    report_rate(out, "fanout", "deliveries/s", &ps, &all, deliveries);
    cpu.report(out, "fanout", all.unique);
    Ok(())
}

/// A publisher's spec for the throughput scenarios (no pacing).
fn pub_spec(
    topic: String,
    qos: u8,
    count: u64,
    seq0: u64,
    payload: usize,
    window: u64,
    flow: Option<(Rc<Flow>, usize)>,
) -> PubSpec {
    PubSpec {
        topic,
        qos,
        count,
        seq0,
        payload,
        window,
        rate: None,
        flow,
    }
}

/// A subscriber's spec for the throughput scenarios.
fn sub_spec(seq0: u64, expected: u64, deadline: Instant, tap: Option<Tap>) -> SubSpec {
    SubSpec {
        seq0,
        expected,
        idle: IDLE,
        first: IDLE,
        deadline,
        latency_from: u64::MAX,
        tap,
    }
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
    let flow = Flow::new(p.clients as usize, 1, each, 0);
    let cpu = CpuMeter::start(p.pid);
    let mut set = JoinSet::new();
    for (i, mut c) in pubs.into_iter().enumerate() {
        let seq0 = i as u64 * each;
        let flow = Some((flow.clone(), i));
        let spec = pub_spec(
            format!("bench/fanin/{i}"),
            1,
            each,
            seq0,
            p.payload,
            WINDOW_EACH,
            flow,
        );
        set.spawn_local(async move { publish(&mut c, &spec, deadline).await });
    }
    let sspec = sub_spec(0, total, deadline, Some(Tap { flow, sub: 0 }));
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
    cpu.report(out, "fanin", ss.unique);
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
