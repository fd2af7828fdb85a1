//! Footprint scenarios: RSS of an idle broker, RSS with N idle
//! connections, and the time from spawn to the first CONNACK.

use std::time::Duration;

use anyhow::{Context, Result};

use crate::procfs::rss_kib;
use crate::report::Report;
use crate::spawn::{Bins, Broker, Kind};
use crate::wire::Conn;

/// Connections opened at once while building up the idle set.
const CONNECT_BURST: usize = 50;
/// Time the broker gets to settle before its RSS is read.
const SETTLE: Duration = Duration::from_millis(1000);

/// RSS with no clients, then with `conns` idle connections (KiB).
pub async fn idle(addr: &str, pid: u32, conns: usize, out: &mut Report) -> Result<()> {
    tokio::time::sleep(SETTLE).await;
    out.add("idle_rss", rss_kib(pid)? as f64, "KiB");
    let mut held = Vec::with_capacity(conns);
    while held.len() < conns {
        let mut burst = tokio::task::JoinSet::new();
        for i in held.len()..(held.len() + CONNECT_BURST).min(conns) {
            let addr = addr.to_string();
            burst.spawn_local(async move {
                Conn::connect(&addr, &format!("bench-idle-{i}"), true).await
            });
        }
        while let Some(c) = burst.join_next().await {
            held.push(c?.context("idle connection")?);
        }
    }
    tokio::time::sleep(SETTLE).await;
    let rss = rss_kib(pid)?;
    out.add("conns_rss", rss as f64, "KiB");
    out.add("conns_count", held.len() as f64, "conns");
    drop(held);
    Ok(())
}

/// Median over `runs` of spawn → first CONNACK, fresh store each time (ms).
pub async fn startup(kind: Kind, bins: &Bins, runs: usize, out: &mut Report) -> Result<()> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs.max(1) {
        let b = Broker::start(kind, bins, true, None).await?;
        times.push(b.startup.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    out.add("startup_ms", times[times.len() / 2], "ms");
    out.add("startup_max_ms", times[times.len() - 1], "ms");
    Ok(())
}
