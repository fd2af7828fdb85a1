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

/// A bound listening socket. Bound with std before the runtime starts, so
/// privileges can be dropped while the process is still single-threaded.
pub enum Bound {
    /// TCP, IPv4 or IPv6.
    Tcp(std::net::TcpListener),
    /// Unix domain socket.
    Unix(std::os::unix::net::UnixListener, std::path::PathBuf),
}

/// The same socket registered with tokio.
enum Live {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Bound {
    /// Binds "host:port" or "unix:PATH" (a stale socket file is replaced).
    pub fn bind(bind: &str) -> io::Result<Bound> {
        if let Some(path) = bind.strip_prefix("unix:") {
            let path = std::path::PathBuf::from(path);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
            let l = std::os::unix::net::UnixListener::bind(&path)?;
            l.set_nonblocking(true)?;
            return Ok(Bound::Unix(l, path));
        }
        let l = std::net::TcpListener::bind(bind)?;
        l.set_nonblocking(true)?;
        Ok(Bound::Tcp(l))
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> String {
        match self {
            Bound::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Bound::Unix(_, p) => format!("unix:{}", p.display()),
        }
    }

    fn live(&self) -> io::Result<Live> {
        Ok(match self {
            Bound::Tcp(l) => Live::Tcp(TcpListener::from_std(l.try_clone()?)?),
            Bound::Unix(l, _) => Live::Unix(UnixListener::from_std(l.try_clone()?)?),
        })
    }
}

impl Live {
    async fn accept(&self) -> io::Result<(Box<dyn Io>, String)> {
        match self {
            Live::Tcp(l) => {
                let (s, peer) = l.accept().await?;
                // Latency over throughput: MQTT packets are small and flushed per wakeup anyway.
                let _ = s.set_nodelay(true);
                Ok((Box::new(s), peer.to_string()))
            }
            Live::Unix(l) => {
                let (s, _) = l.accept().await?;
                Ok((Box::new(s), "unix".into()))
            }
        }
    }
}

/// Accepts connections until shutdown.
pub async fn run(
    bound: Bound,
    ctx: Arc<ListenerCtx>,
    broker: Arc<Broker>,
    permits: Arc<Semaphore>,
) {
    let live = match bound.live() {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listener = %ctx.bind, error = %e, "cannot register listener");
            return;
        }
    };
    let mut backoff = ACCEPT_BACKOFF_MIN;
    loop {
        let accepted = tokio::select! {
            _ = broker.shutdown.cancelled() => break,
            r = live.accept() => r,
        };
        match accepted {
            Ok((io, peer)) => {
                backoff = ACCEPT_BACKOFF_MIN;
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    Stats::add(&broker.stats.connections_refused, 1);
                    tracing::warn!(peer = %peer, limit = broker.limits.max_connections, "connection limit reached; refused");
                    continue;
                };
                broker
                    .tracker
                    .spawn(serve(io, peer, ctx.clone(), broker.clone(), permit));
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

async fn serve(
    io: Box<dyn Io>,
    peer: String,
    ctx: Arc<ListenerCtx>,
    broker: Arc<Broker>,
    _permit: OwnedSemaphorePermit,
) {
    // Error level so the span is enabled at every log level: with log_level
    // "warn" an info span is filtered out, and the warnings about a client's
    // violations would no longer name the client.
    let span = tracing::error_span!("conn", peer = %peer, client_id = tracing::field::Empty);
    async move {
        let limit = broker.limits.connect_timeout.get();
        let (io, peer_cn) = match &ctx.tls {
            None => (io, None),
            Some(tls) => match tokio::time::timeout(limit, tls.acceptor().accept(io)).await {
                Ok(Ok(s)) => {
                    let cn = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(crate::tls::peer_common_name);
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
