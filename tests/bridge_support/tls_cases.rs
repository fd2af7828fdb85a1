//! TLS cases that need certificates made by openssl: the listener side
//! (mutual TLS, CN as identity, reload keeping the old files on error) and
//! client keys in every PEM flavour.

use std::path::Path;
use std::process::Command;

use edgemq::config::model::{BridgeTls, ListenerTls};
use edgemq::tls::{self, ServerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{Pki, have_tools};

fn client_tls(pki: &Pki, client: &str) -> BridgeTls {
    BridgeTls {
        ca: pki.path("ca.crt"),
        cert: Some(pki.path(&format!("{client}.crt")).into()),
        key: Some(pki.path(&format!("{client}.key")).into()),
        server_name: None,
        tls13_only: false,
        alpn: vec![],
    }
}

/// One handshake against `server`; returns the CN the server saw.
async fn handshake(server: &ServerTls, client: &BridgeTls) -> Result<Option<String>, String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = server.acceptor();
    let accept = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor
            .accept(tcp)
            .await
            .map_err(|e| tls::describe_io_error(&e))?;
        let cn = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(tls::peer_common_name);
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok::<_, String>(cn)
    });
    let config = tls::client_config(client).map_err(|e| e.to_string())?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tcp = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let name = tls::server_name(client, "127.0.0.1").unwrap();
    let mut stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| tls::describe_io_error(&e))?;
    let _ = stream.write_all(b"x").await;
    let _ = stream.flush().await;
    accept.await.unwrap()
}

#[tokio::test]
async fn listener_tls_mutual_identity_and_reload() {
    if !have_tools() {
        return;
    }
    tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::generate(dir.path());
    let listener = ListenerTls {
        cert: pki.path("server.crt").into(),
        key: pki.path("server.key").into(),
        client_ca: Some(pki.path("ca.crt").into()),
        identity_as_username: true,
    };
    let server = ServerTls::load(&listener).unwrap();
    let cn = handshake(&server, &client_tls(&pki, "GW-0001"))
        .await
        .unwrap();
    assert_eq!(cn.as_deref(), Some("GW-0001"));

    let expired = handshake(&server, &client_tls(&pki, "expired")).await;
    assert!(expired.is_err(), "an expired client certificate is refused");

    // A broken certificate file on SIGHUP: the error names it, the old one stays in force.
    std::fs::write(dir.path().join("server.crt"), "not a certificate").unwrap();
    let err = server.reload().unwrap_err().to_string();
    assert!(err.contains("server.crt"), "{err}");
    let cn = handshake(&server, &client_tls(&pki, "GW-0001"))
        .await
        .unwrap();
    assert_eq!(cn.as_deref(), Some("GW-0001"));
}

fn sh(dir: &Path, script: &str) {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn client_keys_in_every_pem_flavour() {
    if !have_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let flavours = [
        (
            "rsa-pkcs1",
            "openssl genrsa -traditional -out rsa-pkcs1.key 2048",
            "BEGIN RSA PRIVATE KEY",
        ),
        (
            "rsa-pkcs8",
            "openssl genpkey -algorithm RSA -out rsa-pkcs8.key",
            "BEGIN PRIVATE KEY",
        ),
        (
            "ec-sec1",
            "openssl ecparam -name prime256v1 -genkey -noout -out ec-sec1.key",
            "BEGIN EC PRIVATE KEY",
        ),
        (
            "ec-pkcs8",
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec-pkcs8.key",
            "BEGIN PRIVATE KEY",
        ),
        (
            "ed25519",
            "openssl genpkey -algorithm ed25519 -out ed25519.key",
            "BEGIN PRIVATE KEY",
        ),
    ];
    sh(
        dir.path(),
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.crt -subj /CN=ca -days 2",
    );
    for (name, genkey, marker) in flavours {
        sh(dir.path(), genkey);
        sh(
            dir.path(),
            &format!("openssl req -x509 -key {name}.key -out {name}.crt -subj /CN={name} -days 2"),
        );
        let pem = std::fs::read_to_string(dir.path().join(format!("{name}.key"))).unwrap();
        assert!(pem.contains(marker), "{name} is really {marker}");
        let config = BridgeTls {
            ca: dir.path().join("ca.crt").display().to_string(),
            cert: Some(dir.path().join(format!("{name}.crt"))),
            key: Some(dir.path().join(format!("{name}.key"))),
            server_name: None,
            tls13_only: true,
            alpn: vec![],
        };
        tls::client_config(&config).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    // A key file without a key names the file.
    let config = BridgeTls {
        ca: dir.path().join("ca.crt").display().to_string(),
        cert: Some(dir.path().join("ca.crt")),
        key: Some(dir.path().join("ca.crt")),
        server_name: None,
        tls13_only: false,
        alpn: vec![],
    };
    let err = tls::client_config(&config).unwrap_err().to_string();
    assert!(
        err.contains("ca.crt") && err.contains("private key"),
        "{err}"
    );
}
