//! The `edgemq check` binary: exit codes and output, the docs' examples, mangled files, and the
//! password, ACL and certificate files a config names.

use super::*;

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
