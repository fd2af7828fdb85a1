//! The seed stories' configs and Debian's default: each imports, loads, and keeps what matters.

use super::*;

#[test]
fn every_fixture_imports_loads_and_names_what_it_left_behind() {
    let dirs = fixture_dirs();
    assert!(dirs.len() >= 10, "fixtures missing: {dirs:?}");
    for dir in dirs {
        let (text, config) = import_file(&dir.join("mosquitto.conf"));
        assert!(
            !config.listeners.is_empty(),
            "{}: no listener",
            dir.display()
        );
        for line in not_carried(&text) {
            let (_, loc) = line
                .rsplit_once(" [")
                .unwrap_or_else(|| panic!("no [file:line] in {line}"));
            let (file, lineno) = loc
                .trim_end_matches(']')
                .rsplit_once(':')
                .expect("file:line");
            assert!(
                Path::new(file).is_file(),
                "{line}: {file} is not the original file"
            );
            assert!(lineno.parse::<usize>().is_ok_and(|n| n > 0), "{line}");
        }
    }
}

#[test]
fn seed_000_central_tls_with_client_certificates_and_acl() {
    let (text, c) = import("000_central_tls_acl");
    let tls_listener = c
        .listeners
        .iter()
        .find(|l| l.bind == "0.0.0.0:8883")
        .expect("8883");
    let tls = tls_listener.tls.as_ref().expect("TLS on 8883");
    assert_eq!(tls.cert, Path::new("/etc/mosquitto/certs/server.crt"));
    assert_eq!(tls.key, Path::new("/etc/mosquitto/certs/server.key"));
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(Path::new("/etc/mosquitto/certs/ca.crt"))
    );
    assert!(tls.identity_as_username);
    assert_eq!(
        c.auth.acl_file.as_deref(),
        Some(Path::new("/etc/mosquitto/acl.conf"))
    );
    let local = c
        .listeners
        .iter()
        .find(|l| l.bind == "127.0.0.1:1883")
        .expect("local");
    assert!(local.tls.is_none());
    // Without per_listener_settings, the later `allow_anonymous true` is global.
    assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(true)));
    assert!(text.contains("allow_anonymous is global"), "{text}");
    assert_eq!(c.log_level, "warn");
    assert_eq!(not_carried(&text).len(), 1, "only log_dest: {text}");
    assert!(not_carried(&text)[0].contains("log_dest file /var/log/mosquitto/mosquitto.log"));
}

#[test]
fn seed_001_include_dir_bind_address_and_public_tls_listener() {
    let (text, c) = import("001_central_include_dir");
    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    // Mosquitto appends its default listener (bind_address) after the others.
    assert_eq!(binds, ["203.0.113.10:1883", "127.0.0.1:1883"]);
    let tls = c.listeners[0].tls.as_ref().expect("TLS");
    assert_eq!(
        tls.cert,
        Path::new("/etc/mosquitto/certs/central-broker.crt")
    );
    assert_eq!(
        tls.client_ca, None,
        "no require_certificate: no client certificates"
    );
    assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(false)));
    assert_eq!(
        c.auth.password_file.as_deref(),
        Some(Path::new("/etc/mosquitto/mosquitto.passwd"))
    );
    assert_eq!(c.data_dir, Path::new("/var/lib/mosquitto/"));
    let left = not_carried(&text).join("\n");
    assert!(
        left.contains("cafile /etc/mosquitto/ca_certificates/ca.crt"),
        "{left}"
    );
    assert!(left.contains("pid_file /var/run/mosquitto.pid"), "{left}");
    assert!(left.contains("central-broker.conf:6]"), "{left}");
}

#[test]
fn seed_002_openwrt_luci_bridge() {
    let (text, c) = import("002_openwrt_bridge");
    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    assert_eq!(binds, ["0.0.0.0:1888", "0.0.0.0:1883"]);
    assert_eq!(c.bridges.len(), 1);
    let b = &c.bridges[0];
    assert_eq!(
        b.name, "mqtt-subutux-be",
        "edgemq bridge names are directory names"
    );
    assert_eq!(b.addresses, ["mqtt.server.domain:1883"]);
    assert_eq!(b.username.as_deref(), Some("username"));
    assert_eq!(
        b.password.as_ref().map(|p| p.expose()),
        Some("long-password-here")
    );
    assert!(b.notifications && b.try_private && !b.clean_session);
    assert_eq!(b.protocol, Protocol::Mqtt311);
    assert_eq!(b.tls.as_ref().map(|t| t.ca.as_str()), Some("native"));
    assert_eq!(b.topics.len(), 1);
    let t = &b.topics[0];
    assert_eq!(
        (t.pattern.as_str(), t.direction, t.qos),
        ("#", Direction::Out, 2)
    );
    assert_eq!(
        (t.local_prefix.as_str(), t.remote_prefix.as_str()),
        ("", "")
    );
    // The LuCI config has no password_file: mosquitto refused every client
    // on these listeners, and `edgemq check` will too; the output says so.
    let trailer = &text[text.find(CHECK_REFUSES).expect("check trailer")..];
    assert!(trailer.contains("listener[0].allow_anonymous"), "{trailer}");
    assert!(!trailer.contains("bridge"), "{trailer}");
    // The blog's "# This one is important" must not become part of the path.
    assert!(
        text.contains("inline comment cut from `bridge_capath"),
        "{text}"
    );
}

#[test]
fn seed_002_central_conf_d_in_lexical_order_with_letsencrypt_chain() {
    let (text, c) = import("002_central_conf_d");
    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    assert_eq!(binds, ["127.0.0.1:1883", "0.0.0.0:1883"]);
    let tls = c.listeners[1]
        .tls
        .as_ref()
        .expect("TLS on the public listener");
    assert_eq!(
        tls.cert,
        Path::new("/etc/letsencrypt/live/mqtt.server.domain/fullchain.pem")
    );
    assert_eq!(
        tls.key,
        Path::new("/etc/letsencrypt/live/mqtt.server.domain/privkey.pem")
    );
    assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(false)));
    assert_eq!(
        c.auth.password_file.as_deref(),
        Some(Path::new("/etc/mosquitto/passwd"))
    );
    let read = text.find("0-security.conf").expect("0-security read");
    assert!(read < text.find("10-listener-localhost.conf").expect("10 read"));
    assert!(
        text.contains("overlap"),
        "both on port 1883 must be flagged: {text}"
    );
}

#[test]
fn seed_003_orange_pi_variants() {
    let (_, c) = import("003_orangepi_certbot");
    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    assert_eq!(binds, ["0.0.0.0:1883", "0.0.0.0:8883"]);
    let tls = c.listeners[1].tls.as_ref().expect("TLS on 8883");
    assert_eq!(
        tls.cert,
        Path::new("/etc/letsencrypt/live/mqtt.example.com/fullchain.pem")
    );
    assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(false)));
    assert_eq!(
        c.auth.password_file.as_deref(),
        Some(Path::new("/etc/mosquitto/passwd"))
    );

    let (text, c) = import("003_orangepi_lego");
    let tls = c.listeners[1].tls.as_ref().expect("TLS on 8883");
    assert_eq!(
        tls.cert,
        Path::new("/etc/lego/certificates/mqtt.example.com.crt")
    );
    assert!(
        not_carried(&text)
            .iter()
            .any(|l| l.contains("mqtt.example.com.issuer.crt"))
    );

    // No listener at all: Mosquitto 2.0's local-only mode; the explicit
    // `allow_anonymous false` is kept.
    let (_, c) = import("003_orangepi_password_only");
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].bind, "127.0.0.1:1883");
    assert_eq!(c.listeners[0].allow_anonymous, Some(false));
}

#[test]
fn seed_004_step_ca_mutual_tls() {
    let (_, c) = import("004_stepca_mtls");
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!(l.bind, "0.0.0.0:8883", "socket_domain ipv4");
    assert_eq!(l.allow_anonymous, Some(false));
    let tls = l.tls.as_ref().expect("TLS");
    assert_eq!(
        tls.client_ca.as_deref(),
        Some(Path::new("/mosquitto/certs/root_ca.crt"))
    );
    assert!(tls.identity_as_username);
    assert_eq!(
        c.auth.acl_file.as_deref(),
        Some(Path::new("/mosquitto/config/acl.conf"))
    );
}

#[test]
fn debian_default_config() {
    let (text, c) = import("debian");
    assert_eq!(c.data_dir, Path::new("/var/lib/mosquitto/"));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.listeners[0].bind, "127.0.0.1:1883");
    assert_eq!(c.listeners[0].allow_anonymous, Some(true));
    let left = not_carried(&text).join("\n");
    assert!(
        left.contains("pid_file /run/mosquitto/mosquitto.pid"),
        "{left}"
    );
    assert!(
        left.contains("log_dest file /var/log/mosquitto/mosquitto.log"),
        "{left}"
    );
}
