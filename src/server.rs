//! Wiring: config → store → router → bridges → listeners → $SYS, and the
//! orderly shutdown that flushes everything. [`Server::start`] takes already
//! bound listeners so tests can bind port 0.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use crate::auth::Auth;
use crate::broker::listener::{self, Bound};
use crate::broker::{Broker, ListenerCtx, persist};
use crate::config::Config;
use crate::router::Router;
use crate::router::flush::Flusher;
use crate::router::message::Message;
use crate::router::retained::Retained;
use crate::store::Store;
use crate::tls::ServerTls;
use crate::{bridge, sys};

/// How long shutdown waits for connections and bridges to finish.
pub const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(10);
/// Messages from bridges' inbound sides waiting to be routed.
const INBOUND_QUEUE: usize = 1024;

/// A running broker.
pub struct Server {
    /// The broker state.
    pub broker: Arc<Broker>,
    /// The addresses actually bound, in config order.
    pub addresses: Vec<String>,
    /// Listener contexts (auth, TLS) for SIGHUP reloads.
    pub listeners: Vec<Arc<ListenerCtx>>,
    /// The bridges.
    pub bridges: Vec<Arc<bridge::BridgeHandle>>,
    data_dir: std::path::PathBuf,
}

/// Binds every configured listener, in order.
pub fn bind_all(config: &Config) -> anyhow::Result<Vec<Bound>> {
    let mut bound = Vec::with_capacity(config.listeners.len());
    for l in &config.listeners {
        bound.push(Bound::bind(&l.bind).with_context(|| format!("cannot listen on {}", l.bind))?);
    }
    Ok(bound)
}

fn open_store(data_dir: &Path) -> Option<Store> {
    match Store::open(data_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(data_dir = %data_dir.display(), error = %e, "store unusable; running without persistence");
            None
        }
    }
}

/// Bound listeners with their password, ACL and certificate files loaded.
/// `edgemq run` builds this as root, before dropping privileges, so files
/// only root may read (a Let's Encrypt privkey.pem) work; SIGHUP re-reads
/// them later as the unprivileged user.
pub struct Prepared {
    listeners: Vec<(Bound, Arc<ListenerCtx>)>,
    /// Each bridge's TLS files, in `config.bridges` order.
    bridge_tls: Vec<Arc<bridge::TlsSlot>>,
}

/// Loads every listener's auth and TLS files for listeners bound by [`bind_all`].
pub fn prepare(config: &Config, bound: Vec<Bound>) -> anyhow::Result<Prepared> {
    crate::tls::install_crypto_provider();
    let mut listeners = Vec::with_capacity(bound.len());
    for (l, b) in config.listeners.iter().zip(bound) {
        let auth_cfg = l.auth.as_ref().unwrap_or(&config.auth);
        let auth = Arc::new(Auth::load(auth_cfg).with_context(|| format!("listener {}", l.bind))?);
        let tls = match &l.tls {
            Some(t) => Some(Arc::new(
                ServerTls::load(t).with_context(|| format!("listener {} TLS", l.bind))?,
            )),
            None => None,
        };
        let ctx = Arc::new(ListenerCtx {
            bind: l.bind.clone(),
            anonymous: l.anonymous_allowed(),
            auth,
            tls,
            identity_as_username: l.tls.as_ref().is_some_and(|t| t.identity_as_username),
        });
        listeners.push((b, ctx));
    }
    let bridge_tls = config
        .bridges
        .iter()
        .map(|b| Arc::new(bridge::TlsSlot::new(b.tls.clone())))
        .collect();
    Ok(Prepared {
        listeners,
        bridge_tls,
    })
}

impl Server {
    /// Starts everything on listeners bound by [`bind_all`].
    pub async fn start(
        config: Config,
        bound: Vec<Bound>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Server> {
        let prepared = prepare(&config, bound)?;
        Server::start_prepared(config, prepared, shutdown).await
    }

    /// Starts everything on listeners from [`prepare`].
    pub async fn start_prepared(
        config: Config,
        prepared: Prepared,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Server> {
        crate::tls::install_crypto_provider();
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
        // Before anything reads a stamp: steps seen by earlier runs, and this run's first look.
        crate::clock::load(&config.data_dir);
        crate::clock::look();
        let store = open_store(&config.data_dir);
        let retained = Retained::load(store.clone()).context("cannot load retained messages")?;
        let flusher = match &store {
            Some(s) => Some(Flusher::start(s.clone()).context("cannot start the store flusher")?),
            None => None,
        };
        let router = Arc::new(Router::new(retained, flusher));
        let limits = config.limits.clone();
        if let Some(s) = &store {
            let n = persist::restore(s, &router, limits.max_queued_messages, limits.queue_full);
            if n > 0 {
                tracing::info!(sessions = n, "persistent sessions restored");
            }
        }
        let broker = Broker::new(router.clone(), limits, store, shutdown.clone());
        let Prepared {
            listeners,
            bridge_tls,
        } = prepared;
        broker.tracker.spawn(crate::clock::watch(
            config.data_dir.clone(),
            shutdown.clone(),
        ));
        let bridges = start_bridges(&config, bridge_tls, &broker)?;
        let listeners = start_listeners(&config, listeners, &broker);
        sys::start(&broker, &bridges, &config);
        let addresses = listeners.iter().map(|(_, a)| a.clone()).collect();
        let listeners = listeners.into_iter().map(|(c, _)| c).collect();
        Ok(Server {
            broker,
            addresses,
            listeners,
            bridges,
            data_dir: config.data_dir.clone(),
        })
    }

    /// Re-reads password files, ACL files and certificates; keeps the old ones on error.
    pub fn reload(&self) {
        // `{:#}` so the log carries the whole cause chain (file, line, reason),
        // not only the outermost context.
        let mut failed = 0usize;
        for ctx in &self.listeners {
            if let Err(e) = ctx.auth.reload() {
                failed += 1;
                tracing::error!(listener = %ctx.bind, error = format!("{e:#}"), "auth reload failed; keeping the previous files");
            }
            if let Some(tls) = &ctx.tls {
                if let Err(e) = tls.reload() {
                    failed += 1;
                    tracing::error!(listener = %ctx.bind, error = %e, "TLS reload failed; keeping the previous certificate");
                }
            }
        }
        for b in &self.bridges {
            if let Err(e) = b.reload_tls() {
                failed += 1;
                tracing::error!(
                    bridge = b.name(),
                    error = format!("{e:#}"),
                    "bridge TLS reload failed; keeping the previous files"
                );
            }
        }
        if failed == 0 {
            tracing::info!("reloaded passwords, ACLs and certificates");
        } else {
            tracing::warn!(
                failed,
                "reload incomplete; what failed keeps its previous version"
            );
        }
    }

    /// Waits for shutdown, then drains connections and bridges and flushes the store.
    pub async fn wait(self) {
        self.broker.shutdown.cancelled().await;
        tracing::info!("shutting down");
        self.broker.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.broker.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not finish within {SHUTDOWN_DEADLINE:?}");
        }
        if let Some(store) = &self.broker.store {
            let n = persist::snapshot(store, &self.broker.router);
            match store.flush() {
                Ok(()) => tracing::info!(sessions = n, "store flushed"),
                Err(e) => tracing::error!(error = %e, "store flush failed at shutdown"),
            }
        }
        let _ = std::fs::remove_file(sys::status_socket(&self.data_dir));
        tracing::info!("stopped");
    }
}

fn start_bridges(
    config: &Config,
    tls: Vec<Arc<bridge::TlsSlot>>,
    broker: &Arc<Broker>,
) -> anyhow::Result<Vec<Arc<bridge::BridgeHandle>>> {
    let (tx, mut rx) = mpsc::channel::<Message>(INBOUND_QUEUE);
    let mut handles = Vec::new();
    for (b, tls) in config.bridges.iter().zip(tls) {
        let h = bridge::start(
            b,
            tls,
            &config.data_dir,
            tx.clone(),
            broker.shutdown.clone(),
            &broker.tracker,
        )
        .with_context(|| format!("bridge {}", b.name))?;
        broker.router.add_forwarder(h.clone());
        handles.push(h);
    }
    let router = broker.router.clone();
    broker.tracker.spawn(async move {
        while let Some(msg) = rx.recv().await {
            // Inbound messages come from the central broker, which already
            // has them; local durability (retained flush) completes on its own.
            drop(router.publish(msg));
        }
    });
    Ok(handles)
}

fn start_listeners(
    config: &Config,
    listeners: Vec<(Bound, Arc<ListenerCtx>)>,
    broker: &Arc<Broker>,
) -> Vec<(Arc<ListenerCtx>, String)> {
    let permits = Arc::new(Semaphore::new(config.limits.max_connections));
    let mut out = Vec::new();
    for (b, ctx) in listeners {
        let addr = b.local_addr();
        tracing::info!(listener = %addr, tls = ctx.tls.is_some(), anonymous = ctx.anonymous, "listening");
        tokio::spawn(listener::run(
            b,
            ctx.clone(),
            broker.clone(),
            permits.clone(),
        ));
        out.push((ctx, addr));
    }
    out
}
