//! Every invalid fixture names file, line and key; the valid ones load; TOML and UCI of the
//! full fixture are one model; an empty file is the built-in defaults.

use super::*;

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
