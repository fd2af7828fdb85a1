//! The reloadable `Auth` facade: a broken file keeps the old snapshot, inline users first.

use super::*;

#[test]
fn reload_keeps_the_old_snapshot_when_a_file_is_broken() {
    let dir = tempfile::tempdir().unwrap();
    let (pw, aclf) = (dir.path().join("passwd"), dir.path().join("acl"));
    write(&pw, "alice:one\n");
    write(&aclf, "user alice\ntopic a/#\n");
    let cfg = model::Auth {
        password_file: Some(pw.clone()),
        acl_file: Some(aclf.clone()),
        users: vec![],
    };
    let auth = Auth::load(&cfg).unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed
    );

    write(&pw, "alice:two\nbroken line\n");
    let e = format!("{:#}", auth.reload().unwrap_err());
    assert!(e.contains("passwd:2:"), "{e}");
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed
    );

    write(&pw, "alice:two\n");
    write(&aclf, "user alice\ntopic nonsense a/#\n");
    assert!(auth.reload().is_err());
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::Allowed,
        "all or nothing"
    );
    assert!(auth.can_publish(Some("alice"), "c", "a/x"));

    write(&aclf, "user alice\ntopic b/#\n");
    auth.reload().unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"two")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"one")),
        AuthOutcome::BadCredentials
    );
    assert!(
        !auth.can_publish(Some("alice"), "c", "a/x") && auth.can_publish(Some("alice"), "c", "b/x")
    );

    std::fs::remove_file(&pw).unwrap();
    assert!(auth.reload().is_err(), "a vanished file is an error too");
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"two")),
        AuthOutcome::Allowed
    );
    assert!(Auth::load(&cfg).is_err(), "load fails outright");
}

#[test]
fn inline_users_come_first() {
    fn shared_between_connection_tasks<T: Send + Sync + 'static>() {}
    shared_between_connection_tasks::<Auth>();
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    write(&pw, "alice:from-file\nbob:bob-file\n");
    let user = |name: &str, password: Option<&str>, hash: Option<&str>| model::User {
        username: name.into(),
        password: password.map(|p| model::Secret(p.into())),
        password_hash: hash.map(String::from),
    };
    let six = "$6$c2FsdHNhbHRzYWx0$upfVVfdk1wuq4oaO0WskiLMD8f29DsnYAbie2XwdOw4NXP6IO55bx2FJikHnOlHKP4NSNTDTTlFFWzDMm6RxhA==";
    let cfg = model::Auth {
        password_file: Some(pw),
        acl_file: None,
        users: vec![
            user("alice", Some("inline"), None),
            user("hash", None, Some(six)),
            user("nopw", None, None),
        ],
    };
    let auth = Auth::load(&cfg).unwrap();
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"inline")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("alice"), Some(b"from-file")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("bob"), Some(b"bob-file")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("hash"), Some(b"pw")),
        AuthOutcome::Allowed
    );
    assert_eq!(
        auth.authenticate(Some("hash"), Some(b"pW")),
        AuthOutcome::BadCredentials
    );
    assert_eq!(
        auth.authenticate(Some("nopw"), Some(b"")),
        AuthOutcome::BadCredentials
    );
    assert!(
        auth.can_publish(None, "c", "anything"),
        "no acl_file: everything allowed"
    );
    assert!(auth.can_subscribe(None, "c", "#"));

    let bad = model::Auth {
        users: vec![user("x", None, Some("$6$nope"))],
        ..Default::default()
    };
    assert!(format!("{:#}", Auth::load(&bad).unwrap_err()).contains("password_hash"));
    let none = Auth::load(&model::Auth::default()).unwrap();
    assert!(!none.has_users());
}
