//! Certificates made with the real `openssl` (a CA and server certificates it
//! signs, as a Let's Encrypt renewal replaces one), and a rustls client that
//! reports which certificate the server presented.

use std::io;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// A TLS stream to the broker.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const EC: [&str; 4] = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];

/// Creates `ca.crt`/`ca.key` in `dir`.
pub fn make_ca(dir: &Path) -> PathBuf {
    let mut args = vec!["req", "-x509", "-nodes", "-days", "2"];
    args.extend(EC);
    args.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=edgemq test CA",
    ]);
    openssl(dir, &args);
    dir.join("ca.crt")
}

/// Creates `<name>.crt`/`<name>.key` for localhost/127.0.0.1, signed by the CA in `dir`.
pub fn make_server_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, csr, crt) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.crt"),
    );
    let ext = dir.join(format!("{name}.ext"));
    std::fs::write(
        &ext,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("write ext");
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(EC);
    let subj = format!("/CN=localhost {name}");
    args.extend(["-keyout", &key, "-out", &csr, "-subj", &subj]);
    openssl(dir, &args);
    let ext = ext.to_str().expect("utf-8");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "1",
            "-out",
            &crt,
            "-extfile",
            ext,
        ],
    );
    (dir.join(crt), dir.join(key))
}

/// The first certificate in a PEM file, DER-encoded.
pub fn cert_der(path: &Path) -> Vec<u8> {
    CertificateDer::from_pem_file(path)
        .expect("PEM certificate")
        .as_ref()
        .to_vec()
}

/// Connects to `addr` trusting only `ca`, completes the handshake, and returns
/// the stream with the DER of the certificate the server presented.
pub fn connect(addr: &str, ca: &Path) -> io::Result<(TlsStream, Vec<u8>)> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(ca).map_err(io::Error::other)?)
        .map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    let mut conn = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let mut tcp = super::mqtt::tcp(addr)?;
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp)?;
    }
    let served = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.as_ref().to_vec())
        .ok_or_else(|| io::Error::other("no server certificate"))?;
    Ok((StreamOwned::new(conn, tcp), served))
}
