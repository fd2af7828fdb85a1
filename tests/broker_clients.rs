//! Other people's clients against edgemq: Debian's mosquitto_pub /
//! mosquitto_sub / mosquitto_passwd and Python paho-mqtt (tests/paho/).
//! Missing tools skip with a note, or fail when CI=true.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{BinBroker, TestBroker, have_paho, have_tools, v4, v4_opts};
use rumqttc::QoS;

/// Runs a command to completion within `limit` (killed otherwise).
fn run(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, limit)
}

fn wait_output(mut child: Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn mosquitto_pub(port: u16, args: &[&str]) -> Output {
    run(
        Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args),
        Duration::from_secs(5),
    )
}

/// Starts mosquitto_sub and waits until the broker holds its subscription.
async fn mosquitto_sub(b: &TestBroker, args: &[&str]) -> Child {
    let before = b.broker.router.subscription_count();
    let child = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &b.port.to_string()])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + common::WAIT;
    while b.broker.router.subscription_count() == before {
        assert!(Instant::now() < deadline, "mosquitto_sub never subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_qos_0_1_2_in_both_protocol_versions() {
    if !have_tools(&["mosquitto_sub", "mosquitto_pub"]) {
        return;
    }
    let b = TestBroker::start().await;
    for v in ["mqttv311", "mqttv5"] {
        let topic = format!("mc/{v}");
        let sub = mosquitto_sub(
            &b,
            &[
                "-V",
                v,
                "-t",
                &format!("{topic}/#"),
                "-q",
                "2",
                "-C",
                "3",
                "-W",
                "5",
                "-v",
            ],
        )
        .await;
        for q in ["0", "1", "2"] {
            let o = mosquitto_pub(
                b.port,
                &[
                    "-V",
                    v,
                    "-t",
                    &format!("{topic}/{q}"),
                    "-q",
                    q,
                    "-m",
                    &format!("qos{q}"),
                ],
            );
            assert!(o.status.success(), "{}", text(&o));
        }
        let o = wait_output(sub, Duration::from_secs(6));
        assert!(o.status.success(), "{}", text(&o));
        let lines = String::from_utf8(o.stdout).unwrap();
        assert_eq!(
            lines,
            format!("{topic}/0 qos0\n{topic}/1 qos1\n{topic}/2 qos2\n")
        );
    }
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_retained_and_will() {
    if !have_tools(&["mosquitto_sub", "mosquitto_pub"]) {
        return;
    }
    let b = TestBroker::start().await;
    let o = mosquitto_pub(b.port, &["-t", "mr/x", "-m", "kept", "-r", "-q", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(
        Command::new("mosquitto_sub").args([
            "-h",
            "127.0.0.1",
            "-p",
            &b.port.to_string(),
            "-t",
            "mr/#",
            "-C",
            "1",
            "-W",
            "5",
            "-v",
            "--retained-only",
        ]),
        Duration::from_secs(6),
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "mr/x kept\n",
        "{}",
        text(&o)
    );
    // mosquitto_sub with a will, killed: its will reaches a rumqttc watcher.
    let mut watch = v4(v4_opts("will-watch", b.port)).await;
    watch.subscribe("mw/#", QoS::AtLeastOnce).await;
    let mut dying = mosquitto_sub(
        &b,
        &[
            "-t",
            "nothing",
            "--will-topic",
            "mw/sub",
            "--will-payload",
            "bye",
            "--will-qos",
            "1",
        ],
    )
    .await;
    dying.kill().unwrap();
    dying.wait().unwrap();
    let m = watch.expect_publish().await;
    assert_eq!((m.topic.as_str(), &m.payload[..]), ("mw/sub", &b"bye"[..]));
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_passwd_files_both_hash_kinds() {
    if !have_tools(&["mosquitto_passwd", "mosquitto_pub"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("passwd");
    let pws = pw.to_str().unwrap();
    for (args, user) in [
        (&["-c", "-b"][..], "pbkdf2"),
        (&["-H", "sha512", "-b"][..], "sha512"),
    ] {
        let o = run(
            Command::new("mosquitto_passwd")
                .args(args)
                .args([pws, user, "s3cret"]),
            Duration::from_secs(5),
        );
        assert!(o.status.success(), "{}", text(&o));
    }
    let file = std::fs::read_to_string(&pw).unwrap();
    assert!(
        file.contains("pbkdf2:$7$") && file.contains("sha512:$6$"),
        "{file}"
    );
    let b = TestBroker::with("", &format!("[auth]\npassword_file = {pws:?}\n")).await;
    for user in ["pbkdf2", "sha512"] {
        let o = mosquitto_pub(
            b.port,
            &[
                "-u", user, "-P", "s3cret", "-t", "pw/ok", "-m", "x", "-q", "1",
            ],
        );
        assert!(o.status.success(), "{user}: {}", text(&o));
        let o = mosquitto_pub(
            b.port,
            &[
                "-u", user, "-P", "wrong", "-t", "pw/ok", "-m", "x", "-q", "1",
            ],
        );
        assert!(!o.status.success(), "{user} with a wrong password got in");
    }
    b.stop().await;
}

fn paho(case: &str, port: u16, proto: &str) {
    let o = run(
        Command::new("python3")
            .arg(common::paho_script("check.py"))
            .args([case, &port.to_string(), proto]),
        Duration::from_secs(20),
    );
    assert!(
        o.status.success(),
        "paho {case} (MQTT {proto}): {}",
        text(&o)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_qos2_will_and_retained() {
    if !have_paho() {
        return;
    }
    let b = TestBroker::start().await;
    let port = b.port;
    tokio::task::spawn_blocking(move || {
        for proto in ["311", "5"] {
            for case in ["qos2", "will", "retained"] {
                paho(case, port, proto);
            }
        }
    })
    .await
    .unwrap();
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_persistent_session_across_a_broker_restart() {
    if !have_paho() {
        return;
    }
    for proto in ["311", "5"] {
        let dir = tempfile::tempdir().unwrap();
        let mut b = BinBroker::start(dir.path(), "", "");
        let port = b.port;
        tokio::task::spawn_blocking(move || paho("persist-subscribe", port, proto))
            .await
            .unwrap();
        let mut p = v4(v4_opts("paho-feeder", b.port)).await;
        for m in ["p1", "p2", "p3"] {
            p.publish("paho/p/x", QoS::AtLeastOnce, false, m.as_bytes())
                .await;
        }
        drop(p);
        b.restart();
        tokio::task::spawn_blocking(move || paho("persist-receive", port, proto))
            .await
            .unwrap();
    }
}
