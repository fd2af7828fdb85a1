//! ACL decisions against the real `mosquitto` broker with the same files.

use super::*;

/// Lines printed by a running `mosquitto_sub -v`, read on a thread.
fn spawn_sub(port: u16, user: &str, pw: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    use std::io::BufRead;
    let mut child = Command::new("mosquitto_sub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-u",
            user,
            "-P",
            pw,
            "-v",
            "-t",
            "#",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    (child, rx)
}

#[test]
fn acl_publish_decisions_match_real_mosquitto() {
    if !have("mosquitto")
        || !have("mosquitto_pub")
        || !have("mosquitto_sub")
        || !have("mosquitto_passwd")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (pw, aclf) = (dir.path().join("passwd"), dir.path().join("acl"));
    mosquitto_passwd(&["-c", "-b", s(&pw), "admin", "pw"]);
    for user in ["GW-0001", "GW-0002"] {
        mosquitto_passwd(&["-b", s(&pw), user, "pw"]);
    }
    let acl_text = "pattern readwrite meters/%u/#\nuser admin\ntopic readwrite #\nuser GW-0002\ntopic deny meters/GW-0002/secret\ntopic write shared/in\n";
    write(&aclf, acl_text);
    let broker = Mosquitto::start(
        dir.path(),
        &format!(
            "allow_anonymous false\npassword_file {}\nacl_file {}\n",
            s(&pw),
            s(&aclf)
        ),
    );
    let (mut sub, lines) = spawn_sub(broker.port, "admin", "pw");
    let publish = |user: &str, topic: &str, payload: &str| {
        let ok = Command::new("mosquitto_pub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-u",
                user,
                "-P",
                "pw",
                "-q",
                "1",
            ])
            .args(["-t", topic, "-m", payload])
            .status()
            .unwrap()
            .success();
        assert!(ok, "mosquitto_pub {user} {topic}");
    };
    // Wait until the subscription is live.
    let deadline = Instant::now() + BROKER_START_TIMEOUT;
    loop {
        publish("admin", "sync", "ready");
        if lines.recv_timeout(Duration::from_millis(100)).is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "mosquitto_sub never received anything"
        );
    }
    while lines.try_recv().is_ok() {}
    let cases = [
        ("GW-0001", "meters/GW-0001/data"),
        ("GW-0001", "meters/GW-0001"),
        ("GW-0001", "meters/GW-0002/data"),
        ("GW-0001", "other/x"),
        ("GW-0002", "meters/GW-0002/data"),
        ("GW-0002", "meters/GW-0002/secret"),
        ("GW-0002", "shared/in"),
        ("GW-0001", "shared/in"),
    ];
    for (i, (user, topic)) in cases.iter().enumerate() {
        publish(user, topic, &format!("case{i}"));
    }
    publish("admin", "sync", "done");
    let mut delivered = Vec::new();
    loop {
        let line = lines
            .recv_timeout(BROKER_START_TIMEOUT)
            .expect("the final sync message");
        if line == "sync done" {
            break;
        }
        delivered.push(line);
    }
    let _ = sub.kill();
    let _ = sub.wait();
    let ours = acl(acl_text);
    for (i, (user, topic)) in cases.iter().enumerate() {
        let by_mosquitto = delivered.contains(&format!("{topic} case{i}"));
        assert_eq!(
            ours.can_publish(Some(user), "cid", topic),
            by_mosquitto,
            "{user} -> {topic}"
        );
    }
    assert_eq!(delivered.len(), 4, "{delivered:?}");
}
