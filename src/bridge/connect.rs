//! Getting a session with the central broker: TCP, TLS, CONNECT and CONNACK,
//! each bounded by a timeout, each failure described in words that name the
//! check that failed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::codec::{self, ConnectSpec, Incoming, Outgoing, Version};
use super::notify;
use crate::config::model::{Bridge, BridgeTls, Protocol, Secret};
use crate::tls::{self, TlsError};

/// TCP connect to one address.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// CONNECT sent until CONNACK received.
pub const CONNACK_TIMEOUT: Duration = Duration::from_secs(10);
/// MQTT 5 session expiry asked for when clean_session = false.
pub const SESSION_EXPIRY_SECS: u32 = 7 * 86_400;
/// Initial read buffer capacity of a link.
const READ_BUFFER: usize = 16 * 1024;

/// A byte stream to the central broker: plain TCP or TLS.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// An established MQTT connection with its buffers.
pub struct Link {
    /// The socket.
    pub stream: Box<dyn Stream>,
    /// Bytes read but not yet framed.
    pub rbuf: BytesMut,
    /// Packets encoded but not yet written.
    pub wbuf: BytesMut,
    /// Protocol version.
    pub version: Version,
}

/// What CONNACK told us.
#[derive(Debug, Clone, Copy)]
pub struct Accepted {
    /// The broker kept our previous session.
    pub session_present: bool,
    /// MQTT 5 receive maximum of the broker.
    pub receive_max: Option<u16>,
}

/// The bridge's client TLS configuration: built when the slot is made (by
/// `edgemq run` as root, before the privilege drop, like the listeners'
/// files), again on first use if that failed, and on reload.
pub struct TlsSlot {
    source: Option<BridgeTls>,
    // std Mutex: only an Arc is cloned or replaced under it.
    built: Mutex<Option<Arc<ClientConfig>>>,
}

impl TlsSlot {
    /// A slot for `source` (None: plain TCP), built now if the files allow.
    /// A failure is not reported here: the bridge retries and reports it.
    pub fn new(source: Option<BridgeTls>) -> TlsSlot {
        let built = source.as_ref().and_then(|s| tls::client_config(s).ok());
        TlsSlot {
            source,
            built: Mutex::new(built),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Arc<ClientConfig>>> {
        self.built.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The configuration to connect with; built now if not yet (or after a failure).
    pub fn get(&self) -> Result<Option<(Arc<ClientConfig>, &BridgeTls)>, TlsError> {
        let Some(source) = &self.source else {
            return Ok(None);
        };
        if let Some(config) = self.lock().clone() {
            return Ok(Some((config, source)));
        }
        let config = tls::client_config(source)?;
        *self.lock() = Some(config.clone());
        Ok(Some((config, source)))
    }

    /// Re-reads the files; on error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        if let Some(source) = &self.source {
            let config = tls::client_config(source)?;
            *self.lock() = Some(config);
        }
        Ok(())
    }
}

/// TCP (and TLS) to `address`; the error names the failed step or check.
pub async fn dial(address: &str, tls: &TlsSlot) -> Result<Box<dyn Stream>, String> {
    let tls = tls.get().map_err(|e| e.to_string())?;
    let tcp = match timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(address)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(format!("TCP connect failed: {e}")),
        Err(_) => {
            return Err(format!(
                "TCP connect timed out after {TCP_CONNECT_TIMEOUT:?}"
            ));
        }
    };
    // Small MQTT packets must not wait for Nagle.
    let _ = tcp.set_nodelay(true);
    let Some((config, source)) = tls else {
        return Ok(Box::new(tcp));
    };
    let host = host_of(address);
    let name = tls::server_name(source, host).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match timeout(TLS_HANDSHAKE_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(e)) => Err(format!(
            "TLS handshake failed: {}",
            tls::describe_io_error(&e)
        )),
        Err(_) => Err(format!(
            "TLS handshake timed out after {TLS_HANDSHAKE_TIMEOUT:?}"
        )),
    }
}

/// The host part of "host:port" or "[v6]:port".
pub fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// What we send in CONNECT for this bridge.
pub fn connect_spec(cfg: &Bridge, client_id: &str) -> Result<ConnectSpec, String> {
    let password = match (&cfg.password, &cfg.password_file) {
        (_, Some(file)) => Some(Secret(read_password_file(file)?)),
        (Some(p), None) => Some(p.clone()),
        (None, None) => None,
    };
    let will = cfg.notifications.then(|| {
        (
            notify::state_topic(cfg, client_id),
            Bytes::from_static(notify::OFFLINE),
        )
    });
    Ok(ConnectSpec {
        client_id: client_id.to_string(),
        keepalive: cfg.keepalive.get().as_secs().min(u64::from(u16::MAX)) as u16,
        clean: cfg.clean_session,
        username: cfg.username.clone(),
        password,
        will,
        bridge_bit: cfg.try_private && cfg.protocol == Protocol::Mqtt311,
        session_expiry: (!cfg.clean_session).then_some(SESSION_EXPIRY_SECS),
    })
}

/// First line of a password file, read at each connect so rotations apply.
fn read_password_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read password_file {}: {e}", path.display()))?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Sends CONNECT and waits for CONNACK.
pub async fn handshake(
    stream: Box<dyn Stream>,
    version: Version,
    spec: &ConnectSpec,
) -> Result<(Link, Accepted), String> {
    let mut link = Link {
        stream,
        rbuf: BytesMut::with_capacity(READ_BUFFER),
        wbuf: BytesMut::new(),
        version,
    };
    codec::encode(version, &Outgoing::Connect(spec), &mut link.wbuf).map_err(|e| e.to_string())?;
    let exchange = async {
        link.stream.write_all(&link.wbuf).await?;
        link.stream.flush().await?;
        link.wbuf.clear();
        read_connack(&mut link).await
    };
    let accepted = match timeout(CONNACK_TIMEOUT, exchange).await {
        Ok(Ok(result)) => result?,
        Ok(Err(e)) => return Err(format!("no CONNACK: {}", tls::describe_io_error(&e))),
        Err(_) => return Err(format!("no CONNACK within {CONNACK_TIMEOUT:?}")),
    };
    Ok((link, accepted))
}

async fn read_connack(link: &mut Link) -> std::io::Result<Result<Accepted, String>> {
    loop {
        match codec::decode(link.version, &mut link.rbuf) {
            Ok(Some(Incoming::ConnAck {
                session_present,
                refused: None,
                receive_max,
            })) => {
                return Ok(Ok(Accepted {
                    session_present,
                    receive_max,
                }));
            }
            Ok(Some(Incoming::ConnAck {
                refused: Some(reason),
                ..
            })) => {
                return Ok(Err(format!(
                    "central broker refused the connection: {reason} (check credentials, client \
                     certificate, and that the ACL allows the notification will topic)"
                )));
            }
            Ok(Some(other)) => return Ok(Err(format!("expected CONNACK, got {other:?}"))),
            Ok(None) => {}
            Err(e) => return Ok(Err(format!("bad CONNACK: {e}"))),
        }
        if link.stream.read_buf(&mut link.rbuf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before CONNACK",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_addresses() {
        assert_eq!(host_of("mqtt.example.com:8883"), "mqtt.example.com");
        assert_eq!(host_of("127.0.0.1:1883"), "127.0.0.1");
        assert_eq!(host_of("[::1]:8883"), "::1");
    }

    #[test]
    fn password_file_first_line_and_missing_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pass");
        std::fs::write(&file, "s3cret\nsecond\n").unwrap();
        let mut cfg: Bridge = toml::from_str("name = \"c\"\naddresses = [\"h:1\"]").unwrap();
        cfg.password_file = Some(file.clone());
        let spec = connect_spec(&cfg, "id").unwrap();
        assert_eq!(spec.password.as_ref().map(Secret::expose), Some("s3cret"));
        assert!(!format!("{spec:?}").contains("s3cret"), "Debug hides it");
        assert!(spec.bridge_bit);
        assert_eq!(spec.will.unwrap().0, "$SYS/broker/connection/id/state");
        cfg.password_file = Some(dir.path().join("missing"));
        let err = connect_spec(&cfg, "id").unwrap_err();
        assert!(err.contains("missing"), "{err}");
    }
}
