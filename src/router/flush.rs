//! Group commit for the sled store: a retained QoS 1/2 message is
//! acknowledged only after the store was flushed and fsynced. One flush
//! covers every request that arrived while the previous one ran.

use std::sync::mpsc;
use std::thread;

use tokio::sync::oneshot;

use super::forward::{Durable, ForwardError};
use crate::store::Store;

type Waiter = oneshot::Sender<Result<(), ForwardError>>;

/// Handle to the flusher thread; the thread ends when the last handle drops.
#[derive(Clone, Debug)]
pub struct Flusher {
    tx: mpsc::Sender<Waiter>,
}

impl Flusher {
    /// Starts the flusher thread for `store`.
    pub fn start(store: Store) -> std::io::Result<Flusher> {
        let (tx, rx) = mpsc::channel::<Waiter>();
        thread::Builder::new()
            .name("store-flush".into())
            .spawn(move || run(store, rx))?;
        Ok(Flusher { tx })
    }

    /// Resolves once everything written to the store so far is on disk.
    pub fn request(&self) -> Durable {
        let (tx, rx) = oneshot::channel();
        if let Err(mpsc::SendError(tx)) = self.tx.send(tx) {
            let _ = tx.send(Err(closed()));
        }
        rx
    }
}

fn closed() -> ForwardError {
    ForwardError::Closed {
        bridge: "store".into(),
    }
}

fn run(store: Store, rx: mpsc::Receiver<Waiter>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter());
        let result = store.flush().map_err(|e| {
            tracing::error!(error = %e, "store flush failed: retained messages are not acknowledged");
            ForwardError::Storage { bridge: "store".into(), reason: e.to_string() }
        });
        for w in batch {
            let _ = w.send(result.clone());
        }
    }
}
