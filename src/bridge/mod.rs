//! Bridges: router → queue → uplink for out/both rules, central → router for
//! in/both rules. [`start`] opens a bridge's queue and spawns its uplink; the
//! returned [`BridgeHandle`] is the router's [`Forwarder`] for that bridge.

pub mod backoff;
pub mod codec;
pub mod connect;
pub mod inbound;
pub mod inflight;
pub mod keepalive;
pub mod notify;
pub mod pace;
pub mod rules;
pub mod session;
pub mod status;
pub mod uplink;

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::clock::now_ms;
use crate::config::model::Bridge;
use crate::queue::{Queue, QueueOptions, Record, forward_error};
use crate::router::forward::{Durable, Forwarder};
use crate::router::message::{Message, Origin};
pub use connect::TlsSlot;
use rules::Rules;
use session::Shared;
pub use status::BridgeStatus;
use status::Counters;

/// One running bridge: the router offers it messages; status and TLS reload go through it.
pub struct BridgeHandle {
    name: Arc<str>,
    rules: Arc<Rules>,
    queue: Arc<Queue>,
    counters: Arc<Counters>,
    tls: Arc<TlsSlot>,
}

/// Opens the bridge's queue and spawns the uplink on `tracker`.
/// `tls` is `TlsSlot::new(cfg.tls)`, made before any privilege drop.
pub fn start(
    cfg: &Bridge,
    tls: Arc<TlsSlot>,
    data_dir: &Path,
    inbound: mpsc::Sender<Message>,
    shutdown: CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<Arc<BridgeHandle>> {
    anyhow::ensure!(
        !cfg.addresses.is_empty(),
        "bridge {}: no addresses",
        cfg.name
    );
    // tracker.spawn below would panic outside the runtime.
    tokio::runtime::Handle::try_current()
        .context("bridge::start must be called inside the tokio runtime")?;
    let queue = Arc::new(open_queue(cfg, data_dir)?);
    let name: Arc<str> = Arc::from(cfg.name.as_str());
    let rules = Arc::new(Rules::new(&cfg.topics));
    let counters = Arc::new(Counters::default());
    let span = tracing::info_span!("bridge", name = %cfg.name);
    if let Err(e) = tls.get() {
        // Not fatal: the bridge keeps queueing and retries (the file may appear later).
        span.in_scope(|| tracing::error!(error = %e, "bridge TLS configuration unusable"));
    }
    let client_id = cfg.effective_client_id();
    let uplink = uplink::Uplink {
        cfg: cfg.clone(),
        shared: Shared {
            name: name.clone(),
            queue: queue.clone(),
            rules: rules.clone(),
            counters: counters.clone(),
            inbound,
            state_topic: cfg
                .notifications
                .then(|| notify::state_topic(cfg, &client_id)),
            message_id_property: cfg.message_id_property,
        },
        client_id,
        tls: tls.clone(),
    };
    tracker.spawn(uplink.run(shutdown).instrument(span));
    Ok(Arc::new(BridgeHandle {
        name,
        rules,
        queue,
        counters,
        tls,
    }))
}

/// The bridge's queue, in `data_dir/bridge/<name>/`.
fn open_queue(cfg: &Bridge, data_dir: &Path) -> anyhow::Result<Queue> {
    let dir = data_dir.join("bridge").join(&cfg.name);
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("bridge {}: cannot create {}", cfg.name, dir.display()))?;
    Queue::open(&dir, QueueOptions::from_config(&cfg.queue)).with_context(|| {
        format!(
            "bridge {}: cannot open its queue in {}",
            cfg.name,
            dir.display()
        )
    })
}

impl BridgeHandle {
    /// The bridge's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Connection state, queue depth and counters.
    pub fn status(&self) -> BridgeStatus {
        let mut s = self.counters.snapshot(&self.name);
        let q = self.queue.stats();
        s.queue_messages = q.messages;
        s.queue_bytes = q.bytes;
        s.oldest_age_ms = q
            .oldest_enqueued_ms
            .map(|t| now_ms().saturating_sub(crate::clock::corrected(t)));
        s.dropped += q.dropped_overflow + q.dropped_age + q.io_lost;
        s.storage_refused = q.not_stored;
        s
    }

    /// Re-reads the bridge's TLS files (SIGHUP); on error the old configuration stays.
    pub fn reload_tls(&self) -> anyhow::Result<()> {
        self.tls.reload().with_context(|| {
            format!(
                "bridge {}: TLS reload failed, keeping the old files",
                self.name
            )
        })
    }
}

impl Forwarder for BridgeHandle {
    fn offer(&self, msg: &Message) -> Option<Durable> {
        if matches!(&msg.origin, Origin::Bridge(b) if *b == self.name) {
            return None; // came in over this bridge: never send it back
        }
        let route = self.rules.outbound(&msg.topic, msg.qos)?;
        let mut out = msg.clone();
        if let Cow::Owned(remote) = &route.remote_topic {
            out.topic = Arc::from(remote.as_str());
        }
        out.qos = route.qos;
        let record = Record {
            coalesce_key: route.coalesce.then(|| Arc::from(&*route.remote_topic)),
            enqueued_ms: now_ms(),
            data: out.to_bytes(),
        };
        match self.queue.append_durable(record, &self.name) {
            Ok(durable) => Some(durable),
            Err(e) => {
                let (tx, rx) = oneshot::channel();
                let _ = tx.send(Err(forward_error(&self.name, e)));
                Some(rx)
            }
        }
    }
}
