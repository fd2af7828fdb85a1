//! Log text for TLS failures that names the failed check (unknown CA,
//! name mismatch, expired) instead of rustls's enum names.

use std::io;

use rustls::{AlertDescription, CertificateError};

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
