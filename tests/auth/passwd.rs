//! Password files: written by mosquitto_passwd and read by edgemq, written by `edgemq passwd`
//! and accepted by Mosquitto, updates, deletes, exit codes, the terminal prompt.

use super::*;

#[test]
fn files_written_by_mosquitto_passwd_verify() {
    if !have("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    mosquitto_passwd(&["-c", "-b", s(&f), "dflt", "pw-default"]);
    mosquitto_passwd(&[
        "-H",
        "sha512-pbkdf2",
        "-b",
        s(&f),
        "pbkdf2",
        "pw:with:colons",
    ]);
    mosquitto_passwd(&["-H", "sha512", "-b", s(&f), "sha", "pw sha €"]);
    let text = std::fs::read_to_string(&f).unwrap();
    assert!(
        text.contains("dflt:$7$101$")
            && text.contains("pbkdf2:$7$101$")
            && text.contains("sha:$6$"),
        "{text}"
    );

    let file = PasswordFile::load(&f).unwrap();
    assert_eq!(file.len(), 3);
    for (user, pw) in [
        ("dflt", "pw-default"),
        ("pbkdf2", "pw:with:colons"),
        ("sha", "pw sha €"),
    ] {
        let h = file.get(user).unwrap();
        assert!(h.verify(pw.as_bytes()), "{user}");
        assert!(!h.verify(format!("{pw}x").as_bytes()), "{user}");
        assert!(!h.verify(b""), "{user}");
    }

    let auth = Auth::load(&model::Auth {
        password_file: Some(f),
        ..Default::default()
    })
    .unwrap();
    assert!(auth.has_users());
    assert_eq!(
        auth.authenticate(Some("sha"), Some("pw sha €".as_bytes())),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("sha"), Some(b"nope")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("sha"), None),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("ghost"), Some(b"x")),
        AuthOutcome::NoSuchUser
    );
    assert_eq!(auth.authenticate(None, None), AuthOutcome::NoSuchUser);
}

#[test]
fn file_written_by_edgemq_passwd_is_accepted_by_mosquitto() {
    if !have("mosquitto") || !have("mosquitto_pub") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    let out = edgemq_passwd(&[s(&f), "GW-0001"], "first secret\n");
    assert!(out.status.success(), "{out:?}");
    let out = edgemq_passwd(&[s(&f), "ha"], "p@ss:word\r\n");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        lines(&f).iter().all(|l| l.contains(":$7$101$")),
        "{:?}",
        lines(&f)
    );

    let broker = Mosquitto::start(
        dir.path(),
        &format!("allow_anonymous false\npassword_file {}\n", s(&f)),
    );
    assert!(broker.publish("GW-0001", "first secret"));
    assert!(broker.publish("ha", "p@ss:word"));
    assert!(!broker.publish("GW-0001", "first secreT"));
    assert!(!broker.publish("GW-0001", "p@ss:word"));
    assert!(!broker.publish("nobody", "first secret"));
}

#[test]
fn update_leaves_other_users_byte_identical() {
    if !have("mosquitto_passwd") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    mosquitto_passwd(&["-c", "-b", s(&f), "alice", "a-pw"]);
    mosquitto_passwd(&["-H", "sha512", "-b", s(&f), "bob", "b-pw"]);
    mosquitto_passwd(&["-b", s(&f), "carol", "c-pw"]);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
    let before = lines(&f);

    let out = edgemq_passwd(&[s(&f), "bob"], "b-new\n");
    assert!(out.status.success(), "{out:?}");
    let after = lines(&f);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], before[0], "alice's line must not change");
    assert_eq!(after[2], before[2], "carol's line must not change");
    assert_ne!(after[1], before[1]);
    assert!(after[1].starts_with("bob:$7$101$"));
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(verify(&f, "bob", "b-new") && !verify(&f, "bob", "b-pw"));
    assert!(verify(&f, "alice", "a-pw") && verify(&f, "carol", "c-pw"));

    // Adding appends; mosquitto_passwd still reads and extends what we wrote.
    assert!(edgemq_passwd(&[s(&f), "dave"], "d-pw").status.success());
    assert_eq!(lines(&f)[..3], after[..]);
    mosquitto_passwd(&["-b", s(&f), "erin", "e-pw"]);
    assert!(verify(&f, "dave", "d-pw") && verify(&f, "erin", "e-pw") && verify(&f, "bob", "b-new"));
}

#[test]
fn delete_and_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    std::fs::write(&f, "# keep me\nalice:$6$c2FsdHNhbHRzYWx0$upfVVfdk1wuq4oaO0WskiLMD8f29DsnYAbie2XwdOw4NXP6IO55bx2FJikHnOlHKP4NSNTDTTlFFWzDMm6RxhA==\nbob:plain\n").unwrap();
    let original = std::fs::read(&f).unwrap();

    let out = edgemq_passwd(&["-D", s(&f), "nobody"], "");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
    assert_eq!(std::fs::read(&f).unwrap(), original);

    let out = edgemq_passwd(&[s(&f), "carol"], "\n");
    assert_eq!(out.status.code(), Some(1), "empty password: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty password"));
    let out = edgemq_passwd(&[s(&f), "bad:name"], "pw\n");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(std::fs::read(&f).unwrap(), original);

    let out = edgemq_passwd(&["-D", s(&f), "bob"], "");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(lines(&f), lines(&f)[..2].to_vec());
    assert_eq!(
        std::fs::read_to_string(&f).unwrap(),
        String::from_utf8_lossy(&original).replace("bob:plain\n", "")
    );

    let missing_dir = dir.path().join("no/such/dir/passwd");
    let out = edgemq_passwd(&[s(&missing_dir), "carol"], "pw\n");
    assert_eq!(out.status.code(), Some(2), "I/O failure: {out:?}");
    let out = edgemq_passwd(&[s(dir.path()), "carol"], "pw\n");
    assert_eq!(
        out.status.code(),
        Some(2),
        "a directory is not a password file: {out:?}"
    );
    let out = edgemq_passwd(&[s(&f)], "");
    assert_eq!(out.status.code(), Some(1), "missing USER: {out:?}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().count() == 1,
        "no temporary files left behind"
    );
}

#[test]
fn terminal_prompts_twice_with_echo_off() {
    if !have("script") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("passwd");
    // `script` gives the command a pseudo-terminal; the pauses let it turn echo off first.
    let run = |second: &str| {
        let cmd = format!(
            "{} passwd {} tty-user; echo rc=$?",
            env!("CARGO_BIN_EXE_edgemq"),
            s(&f)
        );
        let feed = format!(
            "sleep 0.5; printf 'Tty-Secret1\\n'; sleep 0.3; printf '{second}\\n'; sleep 0.3"
        );
        let out = Command::new("sh")
            .args(["-c", &format!("({feed}) | script -qec '{cmd}' /dev/null")])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let out = run("Tty-Secret2");
    assert!(
        out.contains("Password:") && out.contains("passwords do not match") && out.contains("rc=1"),
        "{out}"
    );
    assert!(!f.exists());
    let out = run("Tty-Secret1");
    assert!(
        out.contains("Reenter password:") && out.contains("rc=0"),
        "{out}"
    );
    assert!(
        !out.contains("Tty-Secret"),
        "the password was echoed: {out}"
    );
    assert!(verify(&f, "tty-user", "Tty-Secret1"));
}
