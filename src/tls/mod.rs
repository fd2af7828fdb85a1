//! rustls server and client configurations: native, bundled or file roots,
//! client certificates, reload on SIGHUP, the peer's common name, and log
//! text that names the failed check. All rustls code of edgemq lives here:
//! client side here, the listener side in `server`, the peer name in `cn`,
//! readable handshake failures in `describe`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::model::BridgeTls;

mod cn;
mod describe;
mod server;

pub use cn::peer_common_name;
pub use describe::{describe_io_error, describe_tls_error};
pub use server::ServerTls;

/// A certificate, key or TLS setting that could not be used; every variant names the file or check.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM certificate file could not be read or parsed.
    #[error("cannot read certificate file {path}: {reason}")]
    ReadCert {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A PEM file holds no certificate.
    #[error("no PEM certificate found in {path}")]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// A private key file could not be read or holds no key.
    #[error("cannot read private key file {path}: {reason}")]
    ReadKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A CA certificate was rejected as a trust anchor.
    #[error("CA file {path}: certificate rejected: {reason}")]
    BadCa {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// ca = "native" found no usable root in the system store.
    #[error("ca = \"native\": no usable root certificate in the system store ({reason})")]
    NoNativeRoots {
        /// The loader's errors.
        reason: String,
    },
    /// A certificate and its key do not fit together (or rustls refused them).
    #[error("certificate {cert} with key {key}: {reason}")]
    CertKey {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        reason: String,
    },
    /// Only one of cert/key is set for a client certificate.
    #[error("client certificate needs both cert and key (only {given} is set)")]
    HalfClientCert {
        /// Which of the two is set.
        given: &'static str,
    },
    /// The client CA could not build a verifier.
    #[error("client_ca {path}: {reason}")]
    ClientCa {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The name to verify is neither a DNS name nor an IP address.
    #[error("server name {name:?} is not a valid DNS name or IP address")]
    ServerName {
        /// The rejected name.
        name: String,
    },
    /// The protocol version selection was refused.
    #[error("TLS protocol versions: {reason}")]
    Versions {
        /// What rustls said.
        reason: String,
    },
}

/// Installs ring as the process-wide rustls provider; later calls do nothing.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the client configuration of a bridge: roots, client certificate, versions, ALPN.
pub fn client_config(tls: &BridgeTls) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = root_store(&tls.ca)?;
    let versions: &[&rustls::SupportedProtocolVersion] = if tls.tls13_only {
        &[&rustls::version::TLS13]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Versions {
            reason: e.to_string(),
        })?
        .with_root_certificates(roots);
    let mut config = match (&tls.cert, &tls.key) {
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert)?;
            let private = load_key(key)?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| TlsError::CertKey {
                    cert: cert.clone(),
                    key: key.clone(),
                    reason: e.to_string(),
                })?
        }
        (Some(_), None) => return Err(TlsError::HalfClientCert { given: "cert" }),
        (None, Some(_)) => return Err(TlsError::HalfClientCert { given: "key" }),
        (None, None) => builder.with_no_client_auth(),
    };
    config.alpn_protocols = tls.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(Arc::new(config))
}

/// The name the server certificate must carry: `server_name`, else the address's host.
pub fn server_name(tls: &BridgeTls, host: &str) -> Result<ServerName<'static>, TlsError> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(bare.to_string()).map_err(|_| TlsError::ServerName {
        name: name.to_string(),
    })
}

fn root_store(ca: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca {
        "bundled" => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        "native" => add_native_roots(&mut roots)?,
        path => {
            let path = Path::new(path);
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::BadCa {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                })?;
            }
        }
    }
    Ok(roots)
}

/// Adds every usable root of the system store (not only the first) and logs what failed.
fn add_native_roots(roots: &mut RootCertStore) -> Result<(), TlsError> {
    let found = rustls_native_certs::load_native_certs();
    for err in &found.errors {
        tracing::warn!(error = %err, "system certificate store: could not load part of it");
    }
    let (added, rejected) = roots.add_parsable_certificates(found.certs);
    if rejected > 0 {
        tracing::warn!(
            rejected,
            "system certificate store: roots rejected as unparsable"
        );
    }
    tracing::info!(added, "system certificate store loaded");
    if added == 0 {
        let reason = match found.errors.first() {
            Some(e) => e.to_string(),
            None => "the store is empty; install ca-certificates or use ca = \"bundled\"".into(),
        };
        return Err(TlsError::NoNativeRoots { reason });
    }
    Ok(())
}

fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let read_err = |e: rustls::pki_types::pem::Error| TlsError::ReadCert {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// PKCS#1, PKCS#8 or SEC1, whichever the file holds first.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::ReadKey {
        path: path.to_path_buf(),
        reason: match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no PEM private key in it".into(),
            other => other.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use std::io;

    use rustls::{AlertDescription, CertificateError};

    use super::*;

    #[test]
    fn missing_files_name_the_file() {
        let tls = BridgeTls {
            ca: "/nonexistent/ca.pem".into(),
            cert: None,
            key: None,
            server_name: None,
            tls13_only: true,
            alpn: vec![],
        };
        let err = client_config(&tls).unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn bundled_roots_build_and_half_client_cert_is_refused() {
        install_crypto_provider();
        install_crypto_provider();
        let mut tls = BridgeTls {
            ca: "bundled".into(),
            cert: None,
            key: None,
            server_name: None,
            tls13_only: false,
            alpn: vec!["mqtt".into()],
        };
        let config = client_config(&tls).unwrap();
        assert_eq!(config.alpn_protocols, vec![b"mqtt".to_vec()]);
        tls.cert = Some("/x.crt".into());
        let err = client_config(&tls).unwrap_err().to_string();
        assert!(err.contains("both cert and key"), "{err}");
    }

    #[test]
    fn handshake_errors_name_the_check() {
        let unknown = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe_tls_error(&unknown).contains("unknown CA"));
        let name = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        assert!(describe_tls_error(&name).contains("name mismatch"));
        let expired = rustls::Error::AlertReceived(AlertDescription::CertificateExpired);
        assert!(describe_tls_error(&expired).contains("expired certificate"));
        let io = io::Error::new(io::ErrorKind::InvalidData, expired);
        assert!(describe_io_error(&io).contains("expired certificate"));
        let eof = io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed");
        assert!(describe_io_error(&eof).contains("closed by the peer"));
    }
}
