//! The two halves of every scenario: a publisher (QoS 0 as fast as TCP
//! allows, QoS 1 with an inflight window, or paced at a fixed rate) and a
//! subscriber that counts unique, duplicate and late messages by the
//! sequence number in each payload and records latency from its timestamp.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::{Instant, sleep, timeout_at};

use crate::flow::{Flow, Tap};
use crate::hist::Histogram;
use crate::wire::{Conn, Frame, now_ns, pkid_for, put_puback, put_publish, scan};

/// Bytes of encoded publishes gathered before one write.
const BATCH_BYTES: usize = 64 * 1024;
/// Read buffer reserve per read.
const READ_RESERVE: usize = 256 * 1024;
/// A paced publisher yields instead of sleeping when its next message is this close.
const SPIN_BELOW: Duration = Duration::from_millis(2);

/// What one publisher sends.
#[derive(Clone, Debug)]
pub struct PubSpec {
    /// Topic of every message.
    pub topic: String,
    /// 0 or 1.
    pub qos: u8,
    /// Messages to send.
    pub count: u64,
    /// Sequence number of the first message (publishers of one run use disjoint ranges).
    pub seq0: u64,
    /// Payload bytes (at least the 16-byte stamp).
    pub payload: usize,
    /// QoS 1 messages in flight at most.
    pub window: u64,
    /// Messages per second; None: as fast as the broker takes them.
    pub rate: Option<f64>,
    /// End-to-end window: (flow, this publisher's index); None: PUBACKs only.
    pub flow: Option<(Rc<Flow>, usize)>,
}

/// What a publisher saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct PubStats {
    /// Messages written.
    pub sent: u64,
    /// PUBACKs received (QoS 1).
    pub acked: u64,
    /// now_ns() before the first write.
    pub start_ns: u64,
    /// now_ns() when the last message was written (QoS 0) or acknowledged (QoS 1).
    pub end_ns: u64,
}

/// Sends `spec.count` messages over `conn` and, for QoS 1, waits for every PUBACK until `deadline`.
pub async fn publish(conn: &mut Conn, spec: &PubSpec, deadline: Instant) -> Result<PubStats> {
    let own = Notify::new();
    let wake = match &spec.flow {
        Some((f, i)) => f.wake(*i),
        None => &own,
    };
    let acks = Acks {
        n: Cell::new(0),
        wake,
        sent: Cell::new(None),
        writer_done: Notify::new(),
    };
    let start_ns = now_ns();
    let (mut rd, mut wr) = conn.stream.split();
    let writer = write_all_msgs(&mut wr, spec, &acks, start_ns, deadline);
    let reader = read_acks(&mut rd, &mut conn.rbuf, spec, &acks, deadline);
    let ((sent, written_ns), acked_ns) = tokio::try_join!(writer, reader)?;
    let end_ns = if spec.qos == 0 { written_ns } else { acked_ns };
    Ok(PubStats {
        sent,
        acked: acks.n.get(),
        start_ns,
        end_ns,
    })
}

/// PUBACKs counted by the reader half, waited on by the writer half.
struct Acks<'a> {
    n: Cell<u64>,
    wake: &'a Notify,
    /// Set by the writer when it stopped, with how many it sent.
    sent: Cell<Option<u64>>,
    writer_done: Notify,
}

/// The writer half: batches of encoded publishes, within the window and the rate.
async fn write_all_msgs<W: AsyncWrite + Unpin>(
    wr: &mut W,
    spec: &PubSpec,
    acks: &Acks<'_>,
    start_ns: u64,
    deadline: Instant,
) -> Result<(u64, u64)> {
    let mut buf = BytesMut::with_capacity(BATCH_BYTES * 2);
    let scheduled = |i: u64| spec.rate.map(|r| start_ns + (i as f64 * 1e9 / r) as u64);
    let mut sent = 0u64;
    while sent < spec.count {
        if spec.flow.as_ref().is_some_and(|(f, _)| f.is_closed()) {
            break;
        }
        let by_window = match (&spec.flow, spec.qos) {
            (Some((f, i)), 0) => f.delivered(*i) + spec.window,
            (Some((f, i)), _) => f.delivered(*i).min(acks.n.get()) + spec.window,
            (None, 0) => spec.count,
            (None, _) => acks.n.get() + spec.window,
        };
        let by_rate = spec.rate.map_or(spec.count, |r| due(start_ns, r));
        let upto = spec.count.min(by_window).min(by_rate);
        if upto <= sent {
            match scheduled(sent) {
                Some(at) if by_rate <= sent => pace(at).await,
                _ => timeout_at(deadline, acks.wake.notified())
                    .await
                    .context("publisher starved of PUBACKs or deliveries")?,
            }
            continue;
        }
        let stamp = now_ns();
        while sent < upto && buf.len() < BATCH_BYTES {
            let ts = scheduled(sent).unwrap_or(stamp);
            let (topic, qos) = (&spec.topic, spec.qos);
            put_publish(
                &mut buf,
                topic,
                qos,
                pkid_for(sent),
                spec.payload,
                spec.seq0 + sent,
                ts,
            );
            sent += 1;
        }
        wr.write_all(&buf).await.context("publish write")?;
        buf.clear();
    }
    acks.sent.set(Some(sent));
    acks.writer_done.notify_one();
    Ok((sent, now_ns()))
}

/// The reader half: counts PUBACKs until all `spec.count` arrived (QoS 1).
async fn read_acks<R: AsyncRead + Unpin>(
    rd: &mut R,
    rbuf: &mut BytesMut,
    spec: &PubSpec,
    acks: &Acks<'_>,
    deadline: Instant,
) -> Result<u64> {
    if spec.qos == 0 {
        return Ok(0);
    }
    loop {
        let target = acks.sent.get().unwrap_or(spec.count);
        if acks.n.get() >= target {
            break;
        }
        rbuf.reserve(READ_RESERVE);
        let n = tokio::select! {
            r = timeout_at(deadline, rd.read_buf(rbuf)) => r.context("waiting for PUBACKs")??,
            // The writer stopped early (a subscriber gave up): fewer acks to wait for.
            () = acks.writer_done.notified() => continue,
        };
        if n == 0 {
            bail!("broker closed the publisher's connection");
        }
        let mut got = 0;
        scan(rbuf, |f| {
            if let Frame::PubAck = f {
                got += 1;
            }
        })?;
        acks.n.set(acks.n.get() + got);
        acks.wake.notify_one();
    }
    Ok(now_ns())
}

/// Waits until `at_ns`: sleeping while far (the timer has 1 ms
/// granularity), yielding when close so the subscriber keeps running.
async fn pace(at_ns: u64) {
    let left = at_ns.saturating_sub(now_ns());
    if left > SPIN_BELOW.as_nanos() as u64 {
        sleep(Duration::from_nanos(left) - SPIN_BELOW).await;
    } else {
        tokio::task::yield_now().await;
    }
}

fn due(start_ns: u64, rate: f64) -> u64 {
    ((now_ns().saturating_sub(start_ns)) as f64 * rate / 1e9) as u64 + 1
}

/// How long a subscriber waits for more.
#[derive(Clone, Debug)]
pub struct SubSpec {
    /// Distinct sequence numbers expected, seq0..seq0+expected.
    pub expected: u64,
    /// First expected sequence number.
    pub seq0: u64,
    /// Give up after this long without a message.
    pub idle: Duration,
    /// Give up if the first message takes longer than this.
    pub first: Duration,
    /// Give up at this point in any case.
    pub deadline: Instant,
    /// Record latency of messages with seq >= this (u64::MAX: none).
    pub latency_from: u64,
    /// Where receipts are reported for end-to-end flow control.
    pub tap: Option<Tap>,
}

/// What a subscriber saw.
#[derive(Default)]
pub struct SubStats {
    /// Every PUBLISH received.
    pub received: u64,
    /// Those whose sequence number was in the expected range.
    pub in_range: u64,
    /// Distinct sequence numbers among them.
    pub unique: u64,
    /// now_ns() at the first and last PUBLISH.
    pub first_ns: u64,
    /// See `first_ns`.
    pub last_ns: u64,
    /// Delivery latency (now - payload timestamp).
    pub hist: Histogram,
}

impl SubStats {
    /// Receives with duplicates counted.
    pub fn dups(&self) -> u64 {
        self.in_range - self.unique
    }

    /// Counts one PUBLISH received at `now` carrying `seq`, `latency_ns` after its stamp;
    /// `seen` is a bitmap of the expected range.
    fn count(&mut self, seen: &mut [u64], spec: &SubSpec, seq: u64, latency_ns: u64, now: u64) {
        self.received += 1;
        if self.first_ns == 0 {
            self.first_ns = now;
        }
        self.last_ns = now;
        let Some(i) = seq.checked_sub(spec.seq0).filter(|i| *i < spec.expected) else {
            return;
        };
        self.in_range += 1;
        let (w, b) = ((i / 64) as usize, i % 64);
        if seen[w] & (1 << b) == 0 {
            seen[w] |= 1 << b;
            self.unique += 1;
        }
        if seq >= spec.latency_from {
            self.hist.record(latency_ns);
        }
    }
}

/// Reads publishes (acking QoS 1) until all expected arrived, or idle/deadline.
pub async fn receive(conn: &mut Conn, spec: SubSpec) -> Result<SubStats> {
    let mut seen = vec![0u64; (spec.expected / 64 + 1) as usize];
    let mut st = SubStats::default();
    let mut acks = BytesMut::new();
    while st.unique < spec.expected {
        conn.rbuf.reserve(READ_RESERVE);
        let until = Instant::now()
            + if st.received == 0 {
                spec.first
            } else {
                spec.idle
            };
        let read = timeout_at(
            until.min(spec.deadline),
            conn.stream.read_buf(&mut conn.rbuf),
        )
        .await;
        let Ok(n) = read else { break };
        if n.context("subscriber read")? == 0 {
            bail!("broker closed the subscriber's connection");
        }
        let now = now_ns();
        scan(&mut conn.rbuf, |f| {
            let Frame::Publish(p) = f else { return };
            if p.qos > 0 {
                put_puback(&mut acks, p.pkid);
            }
            let (seq, ts) = p.stamp();
            if let Some(t) = &spec.tap {
                t.flow.received(t.sub, seq);
            }
            st.count(&mut seen, &spec, seq, now.saturating_sub(ts), now);
        })?;
        if let Some(t) = &spec.tap {
            t.flow.wake_all();
        }
        if !acks.is_empty() {
            conn.stream
                .write_all(&acks)
                .await
                .context("subscriber PUBACK write")?;
            acks.clear();
        }
    }
    if let Some(t) = &spec.tap {
        t.flow.close();
    }
    Ok(st)
}
