//! A gateway's full config (per-listener settings, a Unix socket, WebSockets, two bridges),
//! include_dir's rules, and a missing file.

use super::*;

#[test]
fn gateway_with_per_listener_settings_unix_socket_and_websockets() {
    let (_, c) = import("edge_gateway_full");
    assert_eq!(c.user.as_deref(), Some("mosquitto"));
    assert_eq!(c.data_dir, Path::new("/srv/usb/mosquitto"));
    assert_eq!(c.sys_interval.get().as_secs(), 30);
    assert_eq!(c.log_level, "info");
    let lim = &c.limits;
    assert_eq!(
        (
            lim.max_connections,
            lim.max_inflight,
            lim.max_queued_messages
        ),
        (200, 10, 5000)
    );
    assert_eq!(
        (lim.max_packet_size.bytes(), lim.max_keepalive),
        (262_144, 120)
    );
    assert_eq!(
        lim.session_expiry.get().as_secs(),
        60 * 86_400,
        "2m is two months in mosquitto"
    );

    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    assert_eq!(
        binds,
        ["192.168.1.1:1883", "unix:/run/mosquitto/mosquitto.sock"],
        "websockets left out"
    );
    let lan = c.listeners[0].auth.as_ref().expect("per-listener auth");
    assert_eq!(
        lan.password_file.as_deref(),
        Some(Path::new("/etc/mosquitto/lan.passwd"))
    );
    assert_eq!(
        lan.acl_file.as_deref(),
        Some(Path::new("/etc/mosquitto/lan.acl"))
    );
    assert_eq!(c.listeners[0].allow_anonymous, Some(false));
    assert_eq!(c.listeners[1].allow_anonymous, Some(true));
    assert_eq!(c.listeners[1].auth, None);
    assert_eq!(
        c.auth,
        Default::default(),
        "per_listener_settings: nothing global"
    );
}

#[test]
fn gateway_bridges_with_tls_prefixes_and_secrets_kept_out_of_comments() {
    let (text, c) = import("edge_gateway_full");
    let central = &c.bridges[0];
    assert_eq!(
        central.addresses,
        ["central-a.example.com:8883", "central-b.example.com:8883"]
    );
    assert_eq!(central.client_id.as_deref(), Some("GW-0001"));
    assert_eq!(central.protocol, Protocol::Mqtt5);
    assert_eq!(central.keepalive.get().as_secs(), 30);
    assert_eq!(
        central.notification_topic.as_deref(),
        Some("gateways/GW-0001/bridge")
    );
    assert!(!central.try_private);
    assert_eq!(
        (
            central.reconnect_min.get().as_secs(),
            central.reconnect_max.get().as_secs()
        ),
        (2, 120)
    );
    let tls = central.tls.as_ref().expect("bridge TLS");
    assert_eq!(tls.ca, "/etc/mosquitto/ca/central-ca.pem");
    assert_eq!(
        tls.cert.as_deref(),
        Some(Path::new("/etc/mosquitto/certs/GW-0001.crt"))
    );
    assert!(tls.tls13_only);
    assert_eq!(tls.alpn, ["mqtt"]);
    let rules: Vec<_> = central
        .topics
        .iter()
        .map(|t| {
            (
                t.pattern.as_str(),
                t.direction,
                t.qos,
                t.local_prefix.as_str(),
                t.remote_prefix.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rules,
        [
            ("meters/#", Direction::Out, 1, "", "site7/"),
            ("cmd/GW-0001/#", Direction::In, 1, "local/", ""),
            ("status", Direction::Both, 0, "gw/", "central/gw/"),
            ("", Direction::Out, 1, "alarms/all", "site7/alarms/all"),
        ]
    );

    let backup = &c.bridges[1];
    assert_eq!(backup.addresses, ["198.51.100.7:1883"]);
    assert_eq!(
        backup.topics[0].qos, 0,
        "mosquitto's topic QoS defaults to 0"
    );
    assert_eq!(backup.tls.as_ref().map(|t| t.ca.as_str()), Some("native"));

    let left = not_carried(&text).join("\n");
    for expected in [
        "protocol websockets",
        "http_dir",
        "bridge_insecure true",
        "start_type lazy",
        "local_password ***",
    ] {
        assert!(left.contains(expected), "{expected} missing from:\n{left}");
    }
    assert!(left.contains("edgemq always verifies"), "{left}");
    assert!(!text.contains("l0cal-s3cret"), "secrets never in comments");
    assert_eq!(
        text.matches("s3cr3t-Pa55").count(),
        1,
        "the bridge password only as its key"
    );
}

#[test]
fn include_dir_reads_only_conf_files_sorted_and_resets_context_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    let write = |name: &str, text: &str| std::fs::write(d.join(name), text).unwrap();
    write(
        "mosquitto.conf",
        "listener 1000\ninclude_dir conf.d\ncertfile /main.crt\nkeyfile /main.key\n",
    );
    write(
        "conf.d/b.conf",
        "listener 2000\nconnection up\naddress up.example\ntopic a/# out 1\n",
    );
    // A new file forgets the current bridge: this `topic` is outside a connection.
    write(
        "conf.d/C.conf",
        "topic lost/# out\nlistener 3000\ninclude_dir /nonexistent\n",
    );
    write("conf.d/a.conf", "listener 1500\n");
    write("conf.d/skipped.txt", "listener 9999\n");
    let (text, c) = import_file(&d.join("mosquitto.conf"));
    let binds: Vec<&str> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
    assert_eq!(
        binds,
        [
            "0.0.0.0:1000",
            "0.0.0.0:1500",
            "0.0.0.0:2000",
            "0.0.0.0:3000"
        ]
    );
    // After include_dir the main file continues with its own listener.
    assert!(c.listeners[0].tls.is_some(), "{text}");
    assert!(c.listeners[1..].iter().all(|l| l.tls.is_none()));
    assert_eq!(c.bridges[0].topics.len(), 1);
    let left = not_carried(&text).join("\n");
    assert!(
        left.contains("topic lost/# out (bridge option outside a `connection`"),
        "{left}"
    );
    assert!(
        left.contains(
            "include_dir /nonexistent (mosquitto reads include_dir only in the main file)"
        ),
        "{left}"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = run(Path::new("/nonexistent/mosquitto.conf"));
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read mosquitto config /nonexistent/mosquitto.conf"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file"), "{stderr}");
}
