//! The listener side: server configs with optional client-certificate
//! verification, swapped atomically on SIGHUP.

use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::server::WebPkiClientVerifier;

use super::{TlsError, load_certs, load_key, provider, root_store};
use crate::config::model::ListenerTls;

/// A listener's TLS setup; `reload` swaps in new files and keeps the old on error.
pub struct ServerTls {
    source: ListenerTls,
    // std Mutex: held only to clone or replace an Arc, never across an await.
    current: Mutex<Arc<ServerConfig>>,
}

impl ServerTls {
    /// Reads the certificate, key and optional client CA of a listener.
    pub fn load(tls: &ListenerTls) -> Result<ServerTls, TlsError> {
        let config = server_config(tls)?;
        Ok(ServerTls {
            source: tls.clone(),
            current: Mutex::new(config),
        })
    }

    /// An acceptor for the configuration in force now.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = match self.current.lock() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        tokio_rustls::TlsAcceptor::from(config)
    }

    /// Re-reads the files (SIGHUP); on error the previous configuration stays in force.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = server_config(&self.source)?;
        match self.current.lock() {
            Ok(mut guard) => *guard = config,
            Err(poisoned) => *poisoned.into_inner() = config,
        }
        Ok(())
    }
}

fn server_config(tls: &ListenerTls) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(&tls.cert)?;
    let key = load_key(&tls.key)?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| TlsError::Versions {
            reason: e.to_string(),
        })?;
    let builder = match &tls.client_ca {
        Some(ca) => {
            let roots = root_store(&ca.to_string_lossy())?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .map_err(|e| TlsError::ClientCa {
                    path: ca.clone(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::CertKey {
            cert: tls.cert.clone(),
            key: tls.key.clone(),
            reason: e.to_string(),
        })?;
    Ok(Arc::new(config))
}
