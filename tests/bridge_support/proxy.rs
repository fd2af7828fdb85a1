//! A TCP proxy in front of the central broker that can refuse new
//! connections (a gate), or freeze the existing ones: stop forwarding in both
//! directions without closing, like a pulled cable or an expired NAT entry.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// What the proxy does with new connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Forward to the target.
    Open,
    /// Accept and close at once.
    Closed,
}

struct Conn {
    freeze: CancellationToken,
    kill: CancellationToken,
}

/// The proxy; dropping it stops accepting.
pub struct Proxy {
    /// Port it listens on (127.0.0.1).
    pub port: u16,
    gate: Arc<Mutex<Gate>>,
    conns: Arc<Mutex<Vec<Conn>>>,
    stop: CancellationToken,
}

impl Proxy {
    /// Listens on an ephemeral port and forwards to 127.0.0.1:`target`.
    pub async fn start(target: u16, gate: Gate) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy {
            port,
            gate: Arc::new(Mutex::new(gate)),
            conns: Arc::new(Mutex::new(Vec::new())),
            stop: CancellationToken::new(),
        };
        let (gate, conns, stop) = (proxy.gate.clone(), proxy.conns.clone(), proxy.stop.clone());
        tokio::spawn(async move {
            loop {
                let (client, _) = tokio::select! {
                    _ = stop.cancelled() => return,
                    accepted = listener.accept() => match accepted {
                        Ok(a) => a,
                        Err(_) => continue,
                    },
                };
                if *gate.lock().unwrap() == Gate::Closed {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let conn = Conn {
                    freeze: CancellationToken::new(),
                    kill: stop.child_token(),
                };
                tokio::spawn(pump(client, server, conn.freeze.clone(), conn.kill.clone()));
                conns.lock().unwrap().push(conn);
            }
        });
        proxy
    }

    /// The address to give the bridge.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Opens or closes the gate for new connections.
    pub fn set_gate(&self, gate: Gate) {
        *self.gate.lock().unwrap() = gate;
    }

    /// Existing connections go silent (sockets stay open); new ones still forward.
    pub fn freeze(&self) {
        for c in self.conns.lock().unwrap().iter() {
            c.freeze.cancel();
        }
    }

    /// Closes every frozen connection.
    pub fn drop_frozen(&self) {
        self.conns.lock().unwrap().retain(|c| {
            if c.freeze.is_cancelled() {
                c.kill.cancel();
                false
            } else {
                true
            }
        });
    }

    /// Closes every connection (a reset link).
    pub fn drop_all(&self) {
        for c in self.conns.lock().unwrap().drain(..) {
            c.kill.cancel();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn pump(
    client: TcpStream,
    server: TcpStream,
    freeze: CancellationToken,
    kill: CancellationToken,
) {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if sw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if cw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = kill.cancelled() => {}
        _ = up => {}
        _ = down => {}
        _ = freeze.cancelled() => {
            // Silent: hold both sockets open, read nothing, send nothing.
            kill.cancelled().await;
        }
    }
}
