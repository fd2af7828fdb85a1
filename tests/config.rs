//! Config loading end to end: every validation error has a fixture whose
//! problem must name file, line and key; valid fixtures load; TOML and UCI
//! load to the same model (fixed pair and seeded random configs); and the
//! `edgemq check` binary's exit codes and output.

mod config_support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use edgemq::config::{self, ConfigError, Source};

const FIXTURES: &str = "tests/fixtures/config";

/// Each invalid fixture and the key its single problem must name. The line is
/// the one marked `# expect` in the fixture itself.
const INVALID: &[(&str, &str)] = &[
    ("syntax.toml", "(syntax)"),
    ("unknown_top_key.toml", "dat_dir"),
    ("unknown_listener_key.toml", "listener[0].alow_anonymous"),
    ("wrong_type.toml", "worker_threads"),
    ("bad_duration.toml", "sys_interval"),
    ("bad_size.toml", "bridge[0].queue.max_bytes"),
    ("direction_typo.toml", "bridge[0].topic[1].direction"),
    ("missing_pattern.toml", "bridge[0].topic[1].pattern"),
    ("negative_qos.toml", "bridge[0].topic[0].qos"),
    ("duplicate_bridge.toml", "bridge[1].name"),
    ("bridge_no_addresses.toml", "bridge[0].addresses"),
    ("bridge_no_topics.toml", "bridge[0].topic"),
    ("bad_address.toml", "bridge[0].addresses[1]"),
    ("bridge_name_chars.toml", "bridge[0].name"),
    ("tls_cert_unreadable.toml", "listener[0].tls.cert"),
    ("tls_key_unreadable.toml", "listener[0].tls.key"),
    ("tls_key_missing.toml", "listener[0].tls.key"),
    ("tls_client_ca_unreadable.toml", "listener[0].tls.client_ca"),
    (
        "identity_without_client_ca.toml",
        "listener[0].tls.identity_as_username",
    ),
    ("password_file_unreadable.toml", "auth.password_file"),
    ("acl_file_unreadable.toml", "auth.acl_file"),
    ("listener_acl_unreadable.toml", "listener[0].auth.acl_file"),
    ("bridge_ca_bad.toml", "bridge[0].tls.ca"),
    ("bridge_cert_without_key.toml", "bridge[0].tls.key"),
    ("bridge_key_without_cert.toml", "bridge[0].tls.cert"),
    ("bridge_cert_unreadable.toml", "bridge[0].tls.cert"),
    ("bridge_password_and_file.toml", "bridge[0].password_file"),
    (
        "bridge_password_file_unreadable.toml",
        "bridge[0].password_file",
    ),
    ("qos_3.toml", "bridge[0].topic[0].qos"),
    (
        "local_prefix_wildcard.toml",
        "bridge[0].topic[0].local_prefix",
    ),
    (
        "remote_prefix_wildcard.toml",
        "bridge[0].topic[0].remote_prefix",
    ),
    ("bad_pattern.toml", "bridge[0].topic[0].pattern"),
    ("duplicate_bind.toml", "listener[1].bind"),
    ("bad_bind.toml", "listener[0].bind"),
    ("log_level.toml", "log_level"),
    ("worker_threads_zero.toml", "worker_threads"),
    ("max_packet_size_small.toml", "limits.max_packet_size"),
    ("max_packet_size_large.toml", "limits.max_packet_size"),
    ("max_inflight_zero.toml", "limits.max_inflight"),
    ("receive_maximum_zero.toml", "limits.receive_maximum"),
    ("user_without_password.toml", "auth.user[0].password"),
    ("user_both_passwords.toml", "auth.user[0].password_hash"),
    ("no_way_to_authenticate.toml", "listener[0].allow_anonymous"),
    ("password_wrong_type.toml", "bridge[0].password"),
    (
        "notification_topic_wildcard.toml",
        "bridge[0].notification_topic",
    ),
    ("bridge_client_id_empty.toml", "bridge[0].client_id"),
    ("bridge_inflight_zero.toml", "bridge[0].inflight"),
    ("reconnect_min_above_max.toml", "bridge[0].reconnect_min"),
    ("user_twice.toml", "auth.user[1].username"),
    ("tls_on_unix_socket.toml", "listener[0].tls"),
    ("max_connections_zero.toml", "limits.max_connections"),
    ("user_empty.toml", "user"),
    (
        "uci_unknown_option.uci",
        "uci_unknown_option.uci.central.adress",
    ),
    (
        "uci_unknown_section.uci",
        "uci_unknown_section.uci.@brige[0]",
    ),
    ("uci_bad_bool.uci", "uci_bad_bool.uci.lan.allow_anonymous"),
    ("uci_bad_int.uci", "uci_bad_int.uci.central.inflight"),
    ("uci_unterminated_quote.uci", "(syntax)"),
    ("uci_bad_statement.uci", "(syntax)"),
    ("uci_option_before_config.uci", "data_dir"),
    (
        "uci_topic_unknown_bridge.uci",
        "uci_topic_unknown_bridge.uci.@topic[0].bridge",
    ),
    (
        "uci_topic_without_bridge.uci",
        "uci_topic_without_bridge.uci.@topic[0].bridge",
    ),
    (
        "uci_direction_typo.uci",
        "uci_direction_typo.uci.@topic[1].direction",
    ),
    (
        "uci_tls_key_missing.uci",
        "uci_tls_key_missing.uci.tls.tls_key",
    ),
    (
        "uci_duplicate_bridge.uci",
        "uci_duplicate_bridge.uci.b2.name",
    ),
    ("uci_no_topics.uci", "uci_no_topics.uci.central"),
    (
        "uci_list_for_option.uci",
        "uci_list_for_option.uci.central.client_id",
    ),
    ("uci_two_main.uci", "uci_two_main.uci.other"),
    ("uci_bad_address.uci", "uci_bad_address.uci.central.address"),
    ("uci_qos_3.uci", "uci_qos_3.uci.@topic[0].qos"),
    ("uci_log_level.uci", "uci_log_level.uci.main.log_level"),
    (
        "uci_user_without_password.uci",
        "uci_user_without_password.uci.@user[0].password",
    ),
];

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(FIXTURES)
        .join(rel)
}

fn files_in(dir: &str) -> BTreeSet<String> {
    std::fs::read_dir(fixture(dir))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The 1-based line carrying the `# expect` marker.
fn marked_line(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<usize> = (1..)
        .zip(text.lines())
        .filter(|(_, l)| l.contains("# expect"))
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "{}: exactly one `# expect` marker",
        path.display()
    );
    lines[0]
}

/// Fixtures use paths relative to the package root.
fn in_package_dir() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
}

fn edgemq(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[path = "config/check_binary.rs"]
mod check_binary;
#[path = "config/fixtures.rs"]
mod fixtures;
#[path = "config/problems.rs"]
mod problems;
#[path = "config/uci_and_sources.rs"]
mod uci_and_sources;
