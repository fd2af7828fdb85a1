//! Latency at a fixed rate: 1 → 1 at QoS 0, each payload stamped with its
//! scheduled send time (not the time it was written), so a stalled broker
//! shows up as latency instead of silently slowing the publisher
//! (no coordinated omission).

use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::Instant;

use crate::load::{PubSpec, SubSpec, publish, receive};
use crate::report::Report;
use crate::wire::Conn;

/// A subscriber gives up after this long without a message.
const IDLE: Duration = Duration::from_secs(3);
/// Share of the run discarded as warm-up (connection buffers, allocator).
const WARMUP_FRACTION: u64 = 10;

/// Publishes `count` messages at `rate`/s and reports p50/p99/p99.9/max in µs.
pub async fn run(
    addr: &str,
    rate: f64,
    count: u64,
    payload: usize,
    limit: Duration,
    out: &mut Report,
) -> Result<()> {
    if rate.is_nan() || rate <= 0.0 {
        bail!("latency needs --rate > 0");
    }
    let deadline = Instant::now() + limit;
    let topic = "bench/latency".to_string();
    let mut sub = Conn::connect(addr, "bench-lat-sub", true).await?;
    sub.subscribe(&topic, 0).await?;
    let mut pubc = Conn::connect(addr, "bench-lat-pub", true).await?;
    let spec = PubSpec {
        topic,
        qos: 0,
        count,
        seq0: 0,
        payload,
        window: 1,
        rate: Some(rate),
        flow: None,
    };
    let sspec = SubSpec {
        seq0: 0,
        expected: count,
        idle: IDLE,
        first: IDLE,
        deadline,
        latency_from: count / WARMUP_FRACTION,
        tap: None,
    };
    let (ps, ss) = tokio::try_join!(
        publish(&mut pubc, &spec, deadline),
        receive(&mut sub, sspec)
    )?;
    if ss.hist.len() == 0 {
        bail!("latency: no message was delivered");
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    let secs = ps.end_ns.saturating_sub(ps.start_ns) as f64 / 1e9;
    out.add("latency_rate", ps.sent as f64 / secs.max(1e-9), "msg/s");
    out.add("latency_p50", us(ss.hist.quantile(0.50)), "us");
    out.add("latency_p99", us(ss.hist.quantile(0.99)), "us");
    out.add("latency_p999", us(ss.hist.quantile(0.999)), "us");
    out.add("latency_max", us(ss.hist.max()), "us");
    out.add(
        "latency_lost",
        (count - ss.unique.min(count)) as f64,
        "msgs",
    );
    Ok(())
}
