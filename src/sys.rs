//! `$SYS/broker/...` topics as Mosquitto publishes them (retained, only when
//! a value changed, every `sys_interval`), the session-expiry sweep, and the
//! status socket in data_dir that `edgemq status` reads.
//!
//! Status protocol: the client may write one request line, `json` or `text`,
//! then shut down its write half; the daemon answers and closes. No request
//! (EOF, silence, or anything else) means text, so `socat - UNIX-CONNECT:...`
//! keeps working.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixListener;

use crate::bridge::BridgeHandle;
use crate::broker::stats::Stats;
use crate::broker::{Broker, persist};
use crate::clock::now_ms;
use crate::config::Config;
use crate::json::Json;
use crate::router::message::{Message, Origin, QoS};

/// File name of the status socket inside data_dir.
pub const STATUS_SOCKET: &str = "edgemq.status.sock";
/// Sessions are checked for expiry at least this often.
const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// How long the status socket waits for a request line before answering in text.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(300);
/// How long the status socket may take to write its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest request line read (`json\n` with room to spare).
const REQUEST_MAX: usize = 16;
/// The request line asking for [`status_json`].
pub const REQUEST_JSON: &str = "json";

/// Path of the status socket for `data_dir`.
pub fn status_socket(data_dir: &Path) -> PathBuf {
    data_dir.join(STATUS_SOCKET)
}

/// Starts the $SYS publisher, the expiry sweep and the status socket.
pub fn start(broker: &Arc<Broker>, bridges: &[Arc<BridgeHandle>], config: &Config) {
    let interval = config.sys_interval.get().max(Duration::from_secs(1));
    let (b, br) = (broker.clone(), bridges.to_vec());
    broker.tracker.spawn(async move {
        let mut last: HashMap<String, String> = HashMap::new();
        let mut tick = tokio::time::interval(interval.min(SWEEP_EVERY));
        let mut next_sys = Instant::now();
        loop {
            tokio::select! {
                _ = b.shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            sweep_expired(&b);
            if Instant::now() >= next_sys {
                next_sys = Instant::now() + interval;
                for (topic, value) in figures(&b, &br) {
                    if last.get(&topic) != Some(&value) {
                        let m = Message::new(
                            &topic,
                            value.clone().into_bytes(),
                            QoS::AtMostOnce,
                            true,
                            Origin::Broker,
                        );
                        drop(b.router.publish(m));
                        last.insert(topic, value);
                    }
                }
            }
        }
    });
    let path = status_socket(&config.data_dir);
    let _ = std::fs::remove_file(&path);
    match UnixListener::bind(&path) {
        Ok(l) => {
            let (b, br) = (broker.clone(), bridges.to_vec());
            tokio::spawn(serve_status(l, b, br));
        }
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "status socket unavailable; `edgemq status` will not work")
        }
    }
}

async fn serve_status(l: UnixListener, broker: Arc<Broker>, bridges: Vec<Arc<BridgeHandle>>) {
    loop {
        let accepted = tokio::select! {
            _ = broker.shutdown.cancelled() => return,
            r = l.accept() => r,
        };
        if let Ok((mut s, _)) = accepted {
            let req = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut s)).await;
            let answer = match req {
                Ok(r) if r.trim_ascii() == REQUEST_JSON.as_bytes() => {
                    status_json(&broker, &bridges)
                }
                _ => status_text(&broker, &bridges),
            };
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, s.write_all(answer.as_bytes())).await;
        }
    }
}

/// Reads the request line: up to a newline, EOF or [`REQUEST_MAX`] bytes.
async fn read_request(s: &mut tokio::net::UnixStream) -> Vec<u8> {
    let mut buf = Vec::with_capacity(REQUEST_MAX);
    let mut chunk = [0u8; REQUEST_MAX];
    while buf.len() < REQUEST_MAX && !buf.contains(&b'\n') {
        match s.read(&mut chunk[..REQUEST_MAX - buf.len()]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf
}

/// Ends persistent sessions whose client stayed away longer than their expiry.
fn sweep_expired(broker: &Broker) {
    for s in broker.router.sessions() {
        if s.is_expired() {
            tracing::info!(client_id = %s.id, "session expired");
            broker.router.remove_session(&s);
            if let Some(store) = &broker.store {
                persist::delete_session(store, &s.id);
            }
        }
    }
}

fn figures(b: &Broker, bridges: &[Arc<BridgeHandle>]) -> Vec<(String, String)> {
    let mut v = broker_figures(b);
    for br in bridges {
        v.extend(bridge_figures(br));
    }
    v.into_iter()
        .map(|(k, val)| (format!("$SYS/broker/{k}"), val))
        .collect()
}

/// The broker's own figures, named as Mosquitto names them.
fn broker_figures(b: &Broker) -> Vec<(String, String)> {
    let st = &b.stats;
    let sessions = b.router.sessions().len();
    let connected = Stats::get(&st.clients_connected);
    fn n(key: &str, value: impl std::fmt::Display) -> (String, String) {
        (key.to_string(), value.to_string())
    }
    vec![
        n(
            "version",
            format_args!("edgemq version {}", env!("CARGO_PKG_VERSION")),
        ),
        n(
            "uptime",
            format_args!("{} seconds", b.started.elapsed().as_secs()),
        ),
        n("clients/connected", connected),
        n("clients/active", connected),
        n("clients/maximum", Stats::get(&st.clients_maximum)),
        n("clients/total", sessions.max(connected)),
        n("clients/disconnected", sessions.saturating_sub(connected)),
        n("messages/received", Stats::get(&st.msgs_received)),
        n("messages/sent", Stats::get(&st.msgs_sent)),
        n("publish/messages/received", Stats::get(&st.msgs_received)),
        n("publish/messages/sent", Stats::get(&st.msgs_sent)),
        n(
            "publish/messages/dropped",
            Stats::get(&b.router.stats.dropped),
        ),
        n("bytes/received", Stats::get(&st.bytes_received)),
        n("bytes/sent", Stats::get(&st.bytes_sent)),
        n("subscriptions/count", b.router.subscription_count()),
        n("retained messages/count", b.router.retained_count()),
    ]
}

/// One bridge's figures, under `bridge/<name>/`.
fn bridge_figures(br: &BridgeHandle) -> Vec<(String, String)> {
    let s = br.status();
    let p = format!("bridge/{}", s.name);
    let n = |key: &str, value: u64| (format!("{p}/{key}"), value.to_string());
    vec![
        n("connected", u64::from(s.connected)),
        n("queue/messages", s.queue_messages),
        n("queue/bytes", s.queue_bytes),
        n("queue/oldest_age", s.oldest_age_ms.map_or(0, |a| a / 1000)),
        n("sent", s.sent),
        n("acked", s.acked),
        n("dropped", s.dropped),
        n("storage_refused", s.storage_refused),
        n("duplicates", s.duplicates),
    ]
}

fn ago(ms: u64) -> String {
    let s = now_ms().saturating_sub(ms) / 1000;
    match s {
        0..=119 => format!("{s}s"),
        120..=7199 => format!("{}m", s / 60),
        7200..=172_799 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The text `edgemq status` prints.
pub fn status_text(b: &Broker, bridges: &[Arc<BridgeHandle>]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "edgemq {} up {}s; clients connected: {}, sessions: {}, retained messages: {}",
        env!("CARGO_PKG_VERSION"),
        b.started.elapsed().as_secs(),
        Stats::get(&b.stats.clients_connected),
        b.router.sessions().len(),
        b.router.retained_count()
    );
    if bridges.is_empty() {
        let _ = writeln!(t, "no bridges configured");
    }
    for br in bridges {
        let s = br.status();
        let addr = s.address.as_deref().unwrap_or("-");
        let state = if s.connected {
            format!("connected to {addr}")
        } else {
            format!("disconnected (last address {addr})")
        };
        let since = s.since_ms.map_or_else(
            || "no connection attempt finished yet".to_string(),
            |ms| format!("since {} ago", ago(ms)),
        );
        let _ = writeln!(t, "bridge {}: {state} {since}", s.name);
        if let (false, Some(e)) = (s.connected, &s.last_error) {
            let _ = writeln!(t, "  last error: {e}");
        }
        let oldest = s
            .oldest_age_ms
            .map_or("-".to_string(), |a| format!("{}s", a / 1000));
        let _ = writeln!(
            t,
            "  queue: {} messages, {} bytes, oldest {oldest}; sent {}, acked {}, dropped {}, duplicates {}",
            s.queue_messages, s.queue_bytes, s.sent, s.acked, s.dropped, s.duplicates
        );
        if s.storage_refused > 0 {
            let _ = writeln!(
                t,
                "  not stored after a storage error (disk full?): {} (their publishers got no acknowledgement)",
                s.storage_refused
            );
        }
    }
    t
}

/// What `edgemq status --json` prints: the figures of [`status_text`], with
/// `null` where the text shows "-". Times are ages as well as epoch ms, since
/// a router without an RTC may not know the date.
pub fn status_json(b: &Broker, bridges: &[Arc<BridgeHandle>]) -> String {
    let mut j = Json::new();
    j.begin(None, '{');
    j.field("version", env!("CARGO_PKG_VERSION"));
    j.field("uptime_s", b.started.elapsed().as_secs());
    j.field("clients", Stats::get(&b.stats.clients_connected) as u64);
    j.field("sessions", b.router.sessions().len() as u64);
    j.field("retained", b.router.retained_count() as u64);
    j.begin(Some("bridges"), '[');
    for br in bridges {
        let s = br.status();
        let since = s.since_ms;
        j.begin(None, '{');
        j.field("name", s.name.as_str());
        j.field("connected", s.connected);
        j.field("address", s.address.as_deref());
        j.field("since_ms", since);
        j.field(
            "since_s_ago",
            since.map(|t| now_ms().saturating_sub(t) / 1000),
        );
        j.field("last_error", s.last_error.as_deref());
        j.field("queue_messages", s.queue_messages);
        j.field("queue_bytes", s.queue_bytes);
        j.field("oldest_age_ms", s.oldest_age_ms);
        j.field("sent", s.sent);
        j.field("acked", s.acked);
        j.field("dropped", s.dropped);
        j.field("storage_refused", s.storage_refused);
        j.field("duplicates", s.duplicates);
        j.end('}');
    }
    j.end(']');
    j.end('}');
    let mut out = j.finish();
    out.push('\n');
    out
}
