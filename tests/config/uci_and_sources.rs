//! UCI quoting, comments and detection; which file `run` picks; the summary; and seeded random
//! configs that load to the same model from TOML and from UCI.

use super::*;

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
