//! The local MQTT broker: listeners accept connections, each connection runs
//! a handshake and then a client loop over its session; everything published
//! goes through the shared [`crate::router::Router`].

pub mod client;
pub mod connect;
pub mod connect_packet;
pub mod connection;
pub mod encode;
pub mod frame;
pub mod inbound;
pub mod listener;
mod outbound;
pub mod packets;
pub mod pending;
pub mod persist;
pub mod session;
pub mod stats;
pub mod strict;
pub mod will;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::Auth;
use crate::config::model::Limits;
use crate::router::Router;
use crate::store::Store;
use crate::tls::ServerTls;

/// State shared by every listener and connection.
pub struct Broker {
    /// The router.
    pub router: Arc<Router>,
    /// Limits from the config.
    pub limits: Limits,
    /// Counters.
    pub stats: stats::Stats,
    /// The sled store, if it opened.
    pub store: Option<Store>,
    /// When the broker started.
    pub started: Instant,
    /// Cancelled on shutdown.
    pub shutdown: CancellationToken,
    /// Tracks connection and will tasks so shutdown can wait for them.
    pub tracker: TaskTracker,
    conn_gen: AtomicUsize,
}

impl Broker {
    /// A broker over `router`.
    pub fn new(
        router: Arc<Router>,
        limits: Limits,
        store: Option<Store>,
        shutdown: CancellationToken,
    ) -> Arc<Broker> {
        Arc::new(Broker {
            router,
            limits,
            stats: stats::Stats::default(),
            store,
            started: Instant::now(),
            shutdown,
            tracker: TaskTracker::new(),
            conn_gen: AtomicUsize::new(1),
        })
    }

    /// A fresh, non-zero connection generation.
    pub fn next_gen(&self) -> u64 {
        self.conn_gen.fetch_add(1, Ordering::Relaxed) as u64
    }
}

/// Per-listener settings a connection needs.
pub struct ListenerCtx {
    /// The bind string, for logs.
    pub bind: String,
    /// Anonymous clients allowed here.
    pub anonymous: bool,
    /// Password and ACL checks for this listener.
    pub auth: Arc<Auth>,
    /// TLS, if this is a TLS listener.
    pub tls: Option<Arc<ServerTls>>,
    /// The client certificate's CN becomes the username.
    pub identity_as_username: bool,
}
