//! A switchable TCP forwarder between the broker under test's bridge and the
//! central broker. Closed, its port refuses connections and every forwarded
//! connection is cut: an uplink outage, while the central broker (and the
//! subscriber counting what arrives there) stays up.

use anyhow::{Context, Result};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::spawn::free_port;

/// The forwarder; starts closed.
pub struct Gate {
    port: u16,
    target: String,
    task: Option<JoinHandle<()>>,
}

impl Gate {
    /// A closed gate on a fresh loopback port, forwarding to `target` once opened.
    pub fn new(target: &str) -> Result<Gate> {
        Ok(Gate {
            port: free_port()?,
            target: target.to_string(),
            task: None,
        })
    }

    /// The address the bridge should dial.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts accepting and forwarding.
    pub async fn open(&mut self) -> Result<()> {
        if self.task.is_some() {
            return Ok(());
        }
        let l = TcpListener::bind(self.addr())
            .await
            .with_context(|| format!("bind gate {}", self.addr()))?;
        let target = self.target.clone();
        self.task = Some(tokio::task::spawn_local(async move {
            // Dropping this set (on close) aborts every forwarded connection.
            let mut conns = JoinSet::new();
            while let Ok((mut a, _)) = l.accept().await {
                let target = target.clone();
                conns.spawn_local(async move {
                    if let Ok(mut b) = TcpStream::connect(&target).await {
                        let _ = a.set_nodelay(true);
                        let _ = b.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
                    }
                });
            }
        }));
        Ok(())
    }

    /// Stops accepting and cuts every forwarded connection.
    pub fn close(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.close();
    }
}
