//! Accept loops. A semaphore caps connections across all listeners; accept
//! errors back off instead of spinning; the TLS handshake runs inside the
//! connection's own task with a timeout, so a slow client never stalls
//! the accept loop.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::Instrument;

use super::connection::{Connection, Io};
use super::stats::Stats;
use super::{Broker, ListenerCtx, client, connect};

/// First delay after a failed accept (e.g. EMFILE).
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest delay between accept retries.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// A bound listening socket.
pub enum Bound {
    /// TCP, IPv4 or IPv6.
    Tcp(TcpListener),
    /// Unix domain socket.
    Unix(UnixListener, std::path::PathBuf),
}

impl Bound {
    /// Binds "host:port" or "unix:PATH" (a stale socket file is replaced).
    pub async fn bind(bind: &str) -> io::Result<Bound> {
        if let Some(path) = bind.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            return Ok(Bound::Unix(UnixListener::bind(&path)?, path));
        }
        Ok(Bound::Tcp(TcpListener::bind(bind).await?))
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> String {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Bound::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    async fn accept(&self) -> io::Result<(Box<dyn Io>, String)> {
        match self {
            Bound::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // Latency over throughput: MQTT packets are small and flushed per wakeup anyway.
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), peer.to_string()))
            }
            Bound::Unix(l, _) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), "unix".into()))
            }
        }
    }
}

/// Accepts connections until shutdown.
pub async fn run(bound: Bound, ctx: Arc<ListenerCtx>, broker: Arc<Broker>, permits: Arc<Semaphore>) {
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            r = bound.accept() => r,
        };
        match accepted {
            Ok((io, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    Stats::add(&broker.stats.connections_refused, 1);
                    tracing::warn!(peer = %peer, limit = broker.limits.max_connections, "connection limit reached; refused");
                    continue;
                };
                broker.tracker.spawn(serve(io, peer, ctx.clone(), broker.clone(), permit));
            }
            Err(e) => {
                tracing::warn!(listener = %ctx.bind, error = %e, delay = ?backoff, "accept failed; backing off");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    if let Bound::Unix(_, path) = &bound {
        let _ = std::fs::remove_file(path);
    }
}

async fn serve(io: Box<dyn Io>, peer: String, ctx: Arc<ListenerCtx>, broker: Arc<Broker>, _permit: OwnedSemaphorePermit) {
    let span = tracing::info_span!("conn", peer = %peer, client_id = tracing::field::Empty);
    async move {
        let limit = broker.limits.connect_timeout.get();
        let (io, peer_cn) = match &ctx.tls {
            None => (io, None),
            Some(tls) => match tokio::time::timeout(limit, tls.acceptor().accept(io)).await {
                Ok(Ok(s)) => {
                    let cn = s.get_ref().1.peer_certificates().and_then(crate::tls::peer_common_name);
                    (Box::new(s) as Box<dyn Io>, cn)
                }
                Ok(Err(e)) => {
                    Stats::add(&broker.stats.connections_refused, 1);
                    tracing::info!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    Stats::add(&broker.stats.connections_refused, 1);
                    tracing::info!(timeout = ?limit, "TLS handshake timed out");
                    return;
                }
            },
        };
        let mut conn = Connection::new(io, broker.limits.max_packet_size.bytes() as usize);
        match connect::handshake(&mut conn, &broker, &ctx, peer_cn).await {
            Ok(acc) => {
                tracing::Span::current().record("client_id", acc.connect.client_id.as_str());
                client::run(conn, broker, ctx, acc).await;
            }
            Err(e) => {
                Stats::add(&broker.stats.connections_refused, 1);
                tracing::info!(reason = %e, "connection refused");
            }
        }
    }
    .instrument(span)
    .await
}
