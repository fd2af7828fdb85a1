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

#[test]
fn every_invalid_fixture_names_file_line_and_key() {
    in_package_dir();
    let on_disk = files_in("invalid");
    assert!(!on_disk.is_empty(), "no invalid fixtures found");
    let listed: BTreeSet<String> = INVALID.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(
        on_disk, listed,
        "fixtures on disk and the INVALID table differ"
    );
    let mut failures = Vec::new();
    for (name, key) in INVALID {
        let path = fixture(&format!("invalid/{name}"));
        let line = marked_line(&path);
        let err = match config::load(&path) {
            Ok(_) => {
                failures.push(format!("{name}: loaded without error"));
                continue;
            }
            Err(e) => e,
        };
        let want = format!("{}:{line}: {key}: ", path.display());
        let ok = err.problems.len() == 1 && err.problems[0].to_string().starts_with(&want);
        if !ok {
            failures.push(format!(
                "{name}: want one problem starting {want:?}, got:\n{err}"
            ));
        }
        assert!(
            err.problems
                .iter()
                .all(|p| p.file == path && !p.message.is_empty())
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn valid_fixtures_load() {
    in_package_dir();
    let on_disk = files_in("valid");
    assert!(on_disk.len() >= 6, "valid fixtures missing: {on_disk:?}");
    for name in ["full.toml", "full.uci", "empty.toml", "unix_only.toml"] {
        let path = fixture(&format!("valid/{name}"));
        if let Err(e) = config::load(&path) {
            panic!("{name} should load:\n{e}");
        }
    }
    // These two name files under /etc that a test machine does not have:
    // everything but the filesystem is checked.
    let example = std::fs::read_to_string(fixture("valid/interface_example.toml")).unwrap();
    let cfg = config::parse_toml(&example, Path::new("interface_example.toml")).unwrap();
    assert_eq!(cfg.bridges[0].addresses.len(), 2);
    assert_eq!(cfg.bridges[0].topics[0].pattern, "meters/#");
    let openwrt = std::fs::read_to_string(fixture("valid/openwrt_default.uci")).unwrap();
    let cfg = config::parse_uci(&openwrt, Path::new("/etc/config/edgemq")).unwrap();
    assert_eq!(cfg.listeners[0].bind, "0.0.0.0:1883");
    assert!(
        cfg.bridges.is_empty(),
        "the disabled example bridge must be ignored"
    );
    assert!(
        cfg.auth.users.is_empty(),
        "the disabled example user must be ignored"
    );
}

#[test]
fn full_toml_and_full_uci_are_the_same_model() {
    in_package_dir();
    let t = config::load(&fixture("valid/full.toml")).unwrap();
    let u = config::load(&fixture("valid/full.uci")).unwrap();
    assert_eq!(t, u);
    assert_eq!(t.bridges[0].topics.len(), 2);
    assert_eq!(t.bridges[0].topics[1].pattern, "cmd/+");
    assert_ne!(t, config::Config::default());
}

#[test]
fn empty_file_is_the_builtin_defaults() {
    let cfg = config::parse_toml("", Path::new("e.toml")).unwrap();
    assert_eq!(cfg, config::Config::default());
    assert!(
        cfg.listeners[0].anonymous_allowed(),
        "anonymous on loopback by default"
    );
    let l = config::parse_toml(
        "[[listener]]\nbind = \"0.0.0.0:1883\"\n[auth]\npassword_file = \"p\"\n",
        Path::new("x"),
    );
    assert!(
        !l.unwrap().listeners[0].anonymous_allowed(),
        "not on the LAN by default"
    );
}

#[test]
fn every_problem_is_reported_at_once_in_line_order() {
    let text = "log_level = \"loud\"\nworker_threads = 0\n[[listener]]\nbind = \"nope\"\n[[bridge]]\nname = \"a b\"\naddresses = []\n";
    let err: ConfigError = config::parse_toml(text, Path::new("many.toml")).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "log_level",
            "worker_threads",
            "listener[0].bind",
            "bridge[0].topic",
            "bridge[0].name",
            "bridge[0].addresses"
        ]
    );
    let lines: Vec<Option<usize>> = err.problems.iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        [Some(1), Some(2), Some(4), Some(5), Some(6), Some(7)]
    );
    assert_eq!(err.to_string().lines().count(), 6);
}

#[test]
fn misspelt_keys_and_bad_values_are_reported_together() {
    // serde stops at its first error; the loader goes on past each one.
    let text = "[[listener]]\nbind = \"127.0.0.1:1883\"\nbogus = 1\n[[bridge]]\nname = \"c\"\n\
                addresses = [\"h:8883\"]\nextra = [\n  1,\n  2,\n]\n[bridge.queue]\n\
                durability = \"sometimes\"\nmax_bytes = \"lots\"\n";
    let err = config::parse_toml(text, Path::new("typos.toml")).unwrap_err();
    let got: Vec<(Option<usize>, &str)> = err
        .problems
        .iter()
        .map(|p| (p.line, p.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(3), "listener[0].bogus"),
            (Some(7), "bridge[0].extra"),
            (Some(12), "bridge[0].queue.durability"),
            (Some(13), "bridge[0].queue.max_bytes"),
        ],
        "{err}"
    );
}

#[test]
fn a_bad_required_value_is_not_also_reported_missing() {
    let text = "[[bridge]]\nname = 7\naddresses = [\"h:8883\"]\n";
    let err = config::parse_toml(text, Path::new("name.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].key, "bridge[0].name");
    assert!(
        err.problems[0].message.contains("expected a string"),
        "{err}"
    );
}

#[test]
fn a_wrong_typed_required_key_does_not_hide_the_problems_after_it() {
    // The wrong value stands in as one of the right type, so checking goes on; a line with
    // a multi-byte character blanked before it must not shift the later lines.
    let text = "[[listener]]\nbind = \"127.0.0.1:1883\"\nallow_anonymous = \"oui, très\"\n\
                [[bridge]]\nname = 5\naddresses = \"h:8883\"\n[limits]\nmax_connections = \"many\"\n";
    let err = config::parse_toml(text, Path::new("types.toml")).unwrap_err();
    let got: Vec<(Option<usize>, &str)> = err
        .problems
        .iter()
        .map(|p| (p.line, p.key.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (Some(3), "listener[0].allow_anonymous"),
            (Some(5), "bridge[0].name"),
            (Some(6), "bridge[0].addresses"),
            (Some(8), "limits.max_connections"),
        ],
        "{err}"
    );
    assert!(!err.to_string().contains("missing"), "{err}");
}

#[test]
fn type_errors_never_echo_a_secret() {
    let text = "[[auth.user]]\nusername = \"u\"\npassword_hash = 987654321\n";
    let err = config::parse_toml(text, Path::new("s.toml")).unwrap_err();
    assert_eq!(err.problems[0].key, "auth.user[0].password_hash");
    assert!(!err.to_string().contains("987654321"), "{err}");
    let path = fixture("invalid/password_wrong_type.toml");
    assert!(
        !config::load(&path)
            .unwrap_err()
            .to_string()
            .contains("12345678")
    );
}

#[test]
fn uci_quoting_and_comments() {
    let text = concat!(
        "package edgemq\n",
        "# comment line\n",
        "config edgemq main # trailing comment\n",
        "  option data_dir '/data/it'\\''s here'\n",
        "\toption user \"ed\\\"ge mq\\\\\"\n",
        "\toption log_level deb\"ug\"\n",
        "\n",
        "config listener\n",
        "\toption bind unix:/tmp/a\\ b.sock\n",
    );
    let cfg = config::parse_uci(text, Path::new("edgemq")).unwrap();
    assert_eq!(cfg.data_dir, PathBuf::from("/data/it's here"));
    assert_eq!(cfg.user.as_deref(), Some("ed\"ge mq\\"));
    assert_eq!(cfg.log_level, "debug");
    assert_eq!(cfg.listeners[0].bind, "unix:/tmp/a b.sock");
}

#[test]
fn uci_detection() {
    assert!(config::is_uci(
        "# hi\n\nconfig edgemq 'main'\n",
        Path::new("x.conf")
    ));
    assert!(config::is_uci("", Path::new("/etc/config/edgemq")));
    assert!(!config::is_uci(
        "data_dir = \"x\"\n",
        Path::new("/etc/edgemq/edgemq.toml")
    ));
}

#[test]
fn run_picks_cli_then_toml_then_uci_then_builtin() {
    let dir = tempfile::tempdir().unwrap();
    let toml_path = dir.path().join("edgemq.toml");
    let uci_path = dir.path().join("edgemq");
    let pick = |cli: Option<&Path>| config::load_for_run_from(cli, &toml_path, &uci_path);
    assert_eq!(pick(None).unwrap().1, Source::BuiltIn);
    std::fs::write(
        &uci_path,
        "config edgemq 'main'\n\toption log_level 'warn'\n",
    )
    .unwrap();
    let (cfg, src) = pick(None).unwrap();
    assert_eq!(
        (cfg.log_level.as_str(), src),
        ("warn", Source::File(uci_path.clone()))
    );
    std::fs::write(&toml_path, "log_level = \"trace\"\n").unwrap();
    let (cfg, src) = pick(None).unwrap();
    assert_eq!(
        (cfg.log_level.as_str(), src),
        ("trace", Source::File(toml_path.clone()))
    );
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "log_level = \"error\"\n").unwrap();
    assert_eq!(pick(Some(&other)).unwrap().0.log_level, "error");
    let missing = dir.path().join("missing.toml");
    let err = pick(Some(&missing)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );
}

#[test]
fn summary_shows_the_shape_and_never_secrets() {
    in_package_dir();
    let path = fixture("valid/full.toml");
    let cfg = config::load(&path).unwrap();
    let s = config::summary(&cfg, &Source::File(path));
    for want in [
        "0.0.0.0:1883",
        "unix:/run/edgemq/edgemq.sock",
        "central",
        "backup.example.com:8883",
        "meters/#",
        "16MiB",
    ] {
        assert!(s.contains(want), "summary lacks {want}:\n{s}");
    }
    for secret in ["s3cret-inline", "bridge-secret-pw", "aGFzaA"] {
        assert!(!s.contains(secret), "summary leaks a secret:\n{s}");
    }
    assert!(s.lines().count() < 25, "one screen:\n{s}");
    let b = config::summary(&config::Config::default(), &Source::BuiltIn);
    assert!(
        b.contains("built-in defaults") && b.contains("127.0.0.1:1883"),
        "{b}"
    );
}

#[test]
fn toml_and_uci_renderings_of_random_configs_load_to_the_same_model() {
    let mut rng = config_support::Rng::new(0x5eed_c0f1);
    for i in 0..400 {
        let cfg = config_support::random_config(&mut rng);
        let toml_text = toml::to_string(&cfg).unwrap();
        let from_toml = config::toml_file::parse_located(&toml_text, Path::new("r.toml"))
            .unwrap_or_else(|e| panic!("case {i}: TOML\n{toml_text}\n{e}"))
            .0;
        assert_eq!(from_toml, cfg, "case {i}: TOML\n{toml_text}");
        let uci_text = config_support::to_uci(&cfg, &mut rng);
        let from_uci = config::uci::parse_located(&uci_text, Path::new("r"))
            .unwrap_or_else(|e| panic!("case {i}: UCI\n{uci_text}\n{e}"))
            .0;
        assert_eq!(from_uci, cfg, "case {i}: UCI\n{uci_text}");
    }
}

fn edgemq(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn check_binary_accepts_a_valid_file_and_prints_the_summary() {
    for name in ["full.toml", "full.uci"] {
        let path = fixture(&format!("valid/{name}"));
        let out = edgemq(&["check", "-c", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("central -> mqtt.example.com:8883"),
            "{stdout}"
        );
        assert!(!stdout.contains("bridge-secret-pw") && !stdout.contains("s3cret-inline"));
        assert!(out.stderr.is_empty());
    }
}

#[test]
fn check_binary_rejects_with_one_line_per_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "log_level = \"loud\"\n\n[[listener]]\nbind = \"1883\"\n[limits]\nmax_inflight = 0\n",
    )
    .unwrap();
    let out = edgemq(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let p = path.display();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(
        lines[0].starts_with(&format!("{p}:1: log_level: ")),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with(&format!("{p}:4: listener[0].bind: ")),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with(&format!("{p}:6: limits.max_inflight: ")),
        "{stderr}"
    );
}

#[test]
fn check_binary_fails_on_a_missing_file_and_bad_syntax() {
    let out = edgemq(&["check", "-c", "/nonexistent/edgemq.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("/nonexistent/edgemq.toml: "));
    let path = fixture("invalid/uci_unterminated_quote.uci");
    let out = edgemq(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(&format!("{}:2: (syntax): ", path.display())),
        "{stderr}"
    );
}

#[test]
fn the_docs_example_is_the_same_config_in_toml_and_uci() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let section = doc
        .split("## The same configuration in both formats")
        .nth(1)
        .unwrap();
    let blocks: Vec<&str> = section.split("```").collect();
    let toml_text = blocks[1].strip_prefix("toml\n").unwrap();
    let uci_text = blocks[3].trim_start_matches('\n');
    let t = config::parse_toml(toml_text, Path::new("doc.toml")).unwrap();
    let u = config::parse_uci(uci_text, Path::new("edgemq")).unwrap();
    assert_eq!(t, u);
    assert_eq!(t.bridges[0].addresses.len(), 2);
}

#[test]
fn the_docs_name_every_uci_option_of_the_full_fixture() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/configuration.md"),
    )
    .unwrap();
    let uci = std::fs::read_to_string(fixture("valid/full.uci")).unwrap();
    let options: BTreeSet<&str> = uci
        .lines()
        .filter_map(|l| {
            l.trim()
                .strip_prefix("option ")
                .or_else(|| l.trim().strip_prefix("list "))
        })
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(options.len() > 50, "{options:?}");
    for o in options {
        assert!(
            doc.contains(&format!("`{o}`")) || doc.contains(&format!("`list {o}`")),
            "docs lack UCI option {o}"
        );
    }
}

#[test]
fn mangled_files_give_errors_not_panics() {
    let mut rng = config_support::Rng::new(0xbad_f11e);
    for name in ["full.toml", "full.uci"] {
        let original = std::fs::read_to_string(fixture(&format!("valid/{name}"))).unwrap();
        for _ in 0..150 {
            let text = config_support::mangle(&original, &mut rng);
            let path = Path::new(name);
            let result = if name.ends_with(".uci") {
                config::parse_uci(&text, path)
            } else {
                config::parse_toml(&text, path)
            };
            if let Err(e) = result {
                assert!(!e.problems.is_empty());
                for p in &e.problems {
                    assert!(!p.key.is_empty() && !p.message.is_empty(), "{p}");
                    assert!(
                        p.line.is_some_and(|l| l <= text.lines().count() + 1),
                        "{p}\n{text}"
                    );
                }
            }
        }
    }
}

/// `check` parses the files `run` reads: a malformed password file or a
/// certificate that is not PEM fails `check`, not only `run`.
#[test]
fn check_parses_password_acl_and_certificate_files() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    std::fs::write(&pw, "alice:$7$101$not-base64$x\n").unwrap();
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    let cfg = dir.path().join("edgemq.toml");
    let text = format!(
        "[auth]\npassword_file = {pw:?}\n\n[[listener]]\nbind = \"127.0.0.1:8883\"\nallow_anonymous = false\n[listener.tls]\ncert = {cert:?}\nkey = {key:?}\n"
    );
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("{}: auth", cfg.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}:1", pw.display())),
        "names the password file line: {stderr}"
    );
    assert!(stderr.contains("listener[0].tls"), "{stderr}");
    assert!(
        stderr.contains("server.crt") || stderr.contains("server.key"),
        "names the TLS file: {stderr}"
    );

    std::fs::write(&pw, "").unwrap();
    std::fs::remove_file(&cfg).unwrap();
    std::fs::write(&cfg, format!("[auth]\npassword_file = {pw:?}\n")).unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_edgemq"))
        .arg("check")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}
