//! rustls server and client configurations: native, bundled or file roots,
//! client certificates, reload on SIGHUP, the peer's common name, and log
//! text that names the failed check. All rustls code of edgemq lives here.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore, ServerConfig};

use crate::config::model::{BridgeTls, ListenerTls};

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

/// Explains a failed TLS connection or session naming the check, e.g. "unknown CA".
pub fn describe_io_error(err: &io::Error) -> String {
    match err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>())
    {
        Some(tls) => describe_tls_error(tls),
        // rustls' own text for this points at its manual; say what happened.
        None if err.kind() == io::ErrorKind::UnexpectedEof => {
            "connection closed by the peer (without TLS close_notify)".into()
        }
        None => err.to_string(),
    }
}

/// Names the check behind a rustls error (ours, or the alert the peer sent).
pub fn describe_tls_error(err: &rustls::Error) -> String {
    match err {
        rustls::Error::InvalidCertificate(cert) => {
            format!("server certificate rejected: {}", certificate_check(cert))
        }
        rustls::Error::AlertReceived(alert) => {
            format!("peer refused the TLS session: {}", alert_check(*alert))
        }
        rustls::Error::NoCertificatesPresented => "server presented no certificate".into(),
        other => format!("TLS error: {other}"),
    }
}

fn certificate_check(err: &CertificateError) -> String {
    use CertificateError as E;
    match err {
        E::UnknownIssuer => "unknown CA (not signed by a trusted CA; check `ca`)".into(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            format!(
                "name mismatch (the certificate is not valid for this server name; check the address or `server_name`): {err}"
            )
        }
        E::Expired | E::ExpiredContext { .. } => format!("expired certificate: {err}"),
        E::NotValidYet | E::NotValidYetContext { .. } => {
            format!("certificate not valid yet (check the clock): {err}")
        }
        E::BadSignature => "bad signature on the certificate".into(),
        E::Revoked => "certificate revoked".into(),
        other => format!("{other}"),
    }
}

fn alert_check(alert: AlertDescription) -> String {
    match alert {
        AlertDescription::CertificateExpired => {
            "expired certificate (our client certificate has expired)".into()
        }
        AlertDescription::UnknownCA => {
            "unknown CA (our client certificate is not signed by the CA the server trusts)".into()
        }
        AlertDescription::BadCertificate | AlertDescription::UnsupportedCertificate => {
            "bad certificate (the server rejected our client certificate)".into()
        }
        AlertDescription::CertificateRequired => {
            "certificate required (configure `cert` and `key`)".into()
        }
        AlertDescription::CertificateRevoked => "our client certificate is revoked".into(),
        other => format!("{other:?}"),
    }
}

/// The CN of the leaf certificate's subject (for `identity_as_username`).
pub fn peer_common_name(certs: &[CertificateDer]) -> Option<String> {
    der::subject_common_name(certs.first()?.as_ref())
}

/// A minimal DER walker: just enough of X.509 to reach the subject's CN.
mod der {
    const SEQUENCE: u8 = 0x30;
    const SET: u8 = 0x31;
    const OID: u8 = 0x06;
    const EXPLICIT_0: u8 = 0xa0;
    const OID_CN: &[u8] = &[0x55, 0x04, 0x03];

    /// Splits one TLV off `input`: (tag, contents, rest).
    pub fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (usize::from(first), rest)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            let len = rest[..n]
                .iter()
                .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
            (len, &rest[n..])
        };
        if rest.len() < len {
            return None;
        }
        Some((tag, &rest[..len], &rest[len..]))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (t, body, rest) = tlv(input)?;
        (t == tag).then_some((body, rest))
    }

    /// Certificate → tbsCertificate → [version] serial sigAlg issuer validity subject.
    pub fn subject_common_name(cert: &[u8]) -> Option<String> {
        let (certificate, _) = expect(cert, SEQUENCE)?;
        let (mut tbs, _) = expect(certificate, SEQUENCE)?;
        if tbs.first() == Some(&EXPLICIT_0) {
            tbs = tlv(tbs)?.2;
        }
        let mut field = tbs;
        for _ in 0..4 {
            field = tlv(field)?.2; // serial, signature, issuer, validity
        }
        let (subject, _) = expect(field, SEQUENCE)?;
        common_name(subject)
    }

    /// The last CN in a Name (the most specific one, as OpenSSL reports it).
    fn common_name(mut name: &[u8]) -> Option<String> {
        let mut found = None;
        while !name.is_empty() {
            let (rdn, rest) = expect(name, SET)?;
            name = rest;
            let mut attrs = rdn;
            while !attrs.is_empty() {
                let (attr, rest) = expect(attrs, SEQUENCE)?;
                attrs = rest;
                let (oid, value) = expect(attr, OID)?;
                if oid == OID_CN {
                    let (tag, body, _) = tlv(value)?;
                    found = Some(decode_string(tag, body)?);
                }
            }
        }
        found
    }

    fn decode_string(tag: u8, body: &[u8]) -> Option<String> {
        match tag {
            // UTF8String, PrintableString, IA5String, TeletexString (ASCII in practice)
            0x0c | 0x13 | 0x16 | 0x14 => String::from_utf8(body.to_vec()).ok(),
            // BMPString: UCS-2 big endian
            0x1e => {
                let units: Vec<u16> = body
                    .chunks_exact(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                String::from_utf16(&units).ok()
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes
    /// -subj "/C=DK/O=MBusGateway/CN=GW-0001" -days 3650`
    const GW_CERT: &str = include_str!("../tests/bridge_support/gw0001_cert.pem");

    fn der_of(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    #[test]
    fn common_name_of_a_real_certificate() {
        let cert = der_of(GW_CERT);
        assert_eq!(peer_common_name(&[cert]).as_deref(), Some("GW-0001"));
    }

    #[test]
    fn no_certificate_no_name() {
        assert_eq!(peer_common_name(&[]), None);
    }

    #[test]
    fn truncated_certificates_give_none_not_panics() {
        let cert = der_of(GW_CERT);
        let bytes = cert.as_ref();
        for cut in 0..bytes.len() {
            let part = CertificateDer::from(bytes[..cut].to_vec());
            assert_eq!(peer_common_name(&[part]), None, "cut at {cut}");
        }
    }

    #[test]
    fn tlv_long_form_lengths() {
        let mut input = vec![0x04, 0x82, 0x01, 0x00];
        input.extend(std::iter::repeat_n(7u8, 256));
        input.push(0xff);
        let (tag, body, rest) = der::tlv(&input).unwrap();
        assert_eq!((tag, body.len(), rest), (0x04, 256, &[0xff][..]));
        assert!(
            der::tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]).is_none(),
            "5-byte length"
        );
        assert!(der::tlv(&[0x04, 0x03, 1]).is_none(), "short body");
    }

    #[test]
    fn bmp_and_utf8_names() {
        // Name ::= SET { SEQ { OID 2.5.4.3, BMPString "Zé" } }
        let name = [
            0x31, 0x0d, 0x30, 0x0b, 0x06, 0x03, 0x55, 0x04, 0x03, 0x1e, 0x04, 0x00, 0x5a, 0x00,
            0xe9,
        ];
        let mut cert = vec![];
        // Wrap into Certificate/tbs with dummy serial, alg, issuer, validity.
        let mut tbs = vec![0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30];
        tbs.push(name.len() as u8);
        tbs.extend_from_slice(&name);
        let mut tbs_seq = vec![0x30, tbs.len() as u8];
        tbs_seq.extend(tbs);
        cert.push(0x30);
        cert.push(tbs_seq.len() as u8);
        cert.extend(tbs_seq);
        assert_eq!(der::subject_common_name(&cert).as_deref(), Some("Zé"));
    }

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
