//! The Mosquitto options edgemq has no equivalent for, each with the reason
//! a user reads in the `# not carried over` comment, and the bridge keys.

/// The reason `key` is not carried over, from one of the tables below.
pub fn reason(table: &[(&str, &'static str)], key: &str) -> Option<&'static str> {
    table.iter().find(|(k, _)| *k == key).map(|(_, why)| *why)
}

/// Whether `key` is a bridge option (valid only after `connection`).
pub fn is_bridge_key(key: &str) -> bool {
    const KEYS: &[&str] = &[
        "address",
        "addresses",
        "topic",
        "clientid",
        "remote_clientid",
        "username",
        "remote_username",
        "password",
        "remote_password",
        "bridge_protocol_version",
        "cleansession",
        "keepalive_interval",
        "notifications",
        "notification_topic",
        "try_private",
        "bridge_cafile",
        "bridge_capath",
        "bridge_certfile",
        "bridge_keyfile",
        "bridge_insecure",
        "bridge_tls_version",
        "bridge_alpn",
        "restart_timeout",
        "start_type",
    ];
    KEYS.contains(&key) || BRIDGE.iter().any(|(k, _)| *k == key)
}

/// Global options edgemq has no equivalent for, and why.
pub const GLOBAL: &[(&str, &str)] = &[
    (
        "pid_file",
        "procd/systemd track the process; edgemq writes no pid file",
    ),
    (
        "log_dest",
        "edgemq logs to stderr, which procd/syslog and journald collect",
    ),
    ("log_timestamp", "procd/syslog and journald add timestamps"),
    (
        "log_timestamp_format",
        "procd/syslog and journald add timestamps",
    ),
    ("log_facility", "edgemq logs to stderr"),
    (
        "connection_messages",
        "edgemq logs connections at info level",
    ),
    ("persistence_file", "edgemq keeps its own store in data_dir"),
    ("autosave_interval", "edgemq writes its store as it goes"),
    ("autosave_on_changes", "edgemq writes its store as it goes"),
    ("message_size_limit", "use limits.max_packet_size"),
    (
        "max_inflight_bytes",
        "edgemq bounds inflight messages by count (limits.max_inflight)",
    ),
    (
        "max_queued_bytes",
        "edgemq bounds client queues by count (limits.max_queued_messages)",
    ),
    (
        "memory_limit",
        "edgemq bounds memory through its per-client and per-bridge limits",
    ),
    (
        "queue_qos0_messages",
        "edgemq does not queue QoS 0 messages for offline clients",
    ),
    (
        "retain_available",
        "edgemq always supports retained messages",
    ),
    ("set_tcp_nodelay", "edgemq always sets TCP_NODELAY"),
    (
        "upgrade_outgoing_qos",
        "edgemq delivers at the subscription's QoS as MQTT specifies",
    ),
    ("allow_duplicate_messages", "removed in mosquitto 2.0"),
    ("retry_interval", "removed in mosquitto 2.0"),
    (
        "check_retain_source",
        "edgemq checks the ACL when the retained message is published",
    ),
    (
        "clientid_prefixes",
        "edgemq does not filter client ids by prefix; use the ACL",
    ),
    (
        "auto_id_prefix",
        "edgemq names clients without an id itself",
    ),
    (
        "allow_zero_length_clientid",
        "edgemq assigns an id to clients that send none (MQTT 5 and 3.1.1)",
    ),
    (
        "auth_plugin",
        "edgemq loads no plugins; use password_file/acl_file",
    ),
    (
        "plugin",
        "edgemq loads no plugins; use password_file/acl_file",
    ),
    ("auth_plugin_deny_special_chars", "edgemq loads no plugins"),
    ("websockets_log_level", "edgemq has no WebSockets"),
    ("websockets_headers_size", "edgemq has no WebSockets"),
    (
        "include_dir",
        "mosquitto reads include_dir only in the main file",
    ),
];

/// Listener options edgemq has no equivalent for, and why.
pub const LISTENER: &[(&str, &str)] = &[
    ("mount_point", "edgemq has no per-listener topic prefix"),
    (
        "bind_interface",
        "edgemq binds addresses, not interfaces: use the interface's address in bind",
    ),
    ("http_dir", "edgemq serves no HTTP"),
    ("ciphers", "edgemq uses rustls' safe default cipher suites"),
    (
        "ciphers_tls1.3",
        "edgemq uses rustls' safe default cipher suites",
    ),
    ("tls_version", "edgemq listeners accept TLS 1.2 and 1.3"),
    ("crlfile", "edgemq does not check CRLs"),
    ("dhparamfile", "rustls uses ECDHE only"),
    ("psk_hint", "edgemq has no TLS-PSK"),
    ("psk_file", "edgemq has no TLS-PSK"),
    (
        "use_subject_as_username",
        "edgemq maps only the certificate CN (identity_as_username)",
    ),
    (
        "use_username_as_clientid",
        "edgemq keeps the client's own client id",
    ),
    ("tls_engine", "edgemq has no OpenSSL engines"),
    ("tls_engine_kpass_sha1", "edgemq has no OpenSSL engines"),
    ("tls_keyform", "edgemq reads PEM keys only"),
    ("max_qos", "edgemq accepts every QoS"),
    ("maximum_qos", "edgemq accepts every QoS"),
    (
        "accept_protocol_versions",
        "edgemq accepts MQTT 3.1.1 and 5",
    ),
    (
        "enable_proxy_protocol",
        "edgemq has no PROXY protocol support",
    ),
];

/// Bridge options edgemq has no equivalent for, and why.
pub const BRIDGE: &[(&str, &str)] = &[
    (
        "local_clientid",
        "edgemq's bridge is inside the broker and needs no local client",
    ),
    (
        "local_username",
        "edgemq's bridge is inside the broker and needs no local login",
    ),
    (
        "local_password",
        "edgemq's bridge is inside the broker and needs no local login",
    ),
    (
        "local_cleansession",
        "edgemq's bridge is inside the broker and has no local session",
    ),
    (
        "notifications_local_only",
        "edgemq publishes the state locally and at the central broker",
    ),
    (
        "idle_timeout",
        "edgemq bridges stay connected (no lazy start)",
    ),
    ("threshold", "edgemq bridges stay connected (no lazy start)"),
    (
        "round_robin",
        "edgemq tries the addresses in order and returns to the first after failback_after",
    ),
    (
        "bridge_attempt_unsubscribe",
        "edgemq subscribes only to `in`/`both` topics",
    ),
    (
        "bridge_outgoing_retain",
        "edgemq forwards the retain flag as published",
    ),
    (
        "bridge_max_packet_size",
        "edgemq uses limits.max_packet_size",
    ),
    (
        "bridge_bind_address",
        "edgemq lets the system pick the source address",
    ),
    ("bridge_identity", "edgemq has no TLS-PSK"),
    ("bridge_psk", "edgemq has no TLS-PSK"),
    ("bridge_require_ocsp", "edgemq does not check OCSP"),
    (
        "bridge_receive_maximum",
        "edgemq uses inflight for the uplink window",
    ),
    (
        "bridge_session_expiry_interval",
        "edgemq keeps the default session expiry at the central broker",
    ),
];
