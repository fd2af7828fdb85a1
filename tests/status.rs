//! `edgemq status --json` and the status socket's request line, against the
//! real binary: the JSON carries a bridge's figures and parses, a client that
//! asks nothing still gets today's text.

mod daemon_support;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use daemon_support::mqtt;
use daemon_support::{Daemon, basic_config, have_tool, run_to_end, tempdir};

/// A daemon with bridge "central" pointed at a closed port, holding 3 queued
/// messages from a publisher that stays connected.
fn daemon_with_a_stuck_bridge(dir: &Path) -> (Daemon, String, mqtt::Client<TcpStream>) {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let bridge = format!(
        "[[bridge]]\nname = \"central\"\naddresses = [\"{closed}\"]\nclient_id = \"GW-T\"\n\
         [[bridge.topic]]\npattern = \"meters/#\"\ndirection = \"out\"\nqos = 1\n"
    );
    let d = Daemon::start(dir, &format!("{}{bridge}", basic_config(dir, "")));
    let (mut publ, _) = mqtt::connect_tcp(&d.addr(), "meter", true, None).unwrap();
    for i in 0..3 {
        publ.publish("meters/power", format!("{i}").as_bytes(), 1)
            .unwrap();
    }
    (d, closed, publ)
}

fn status(dir: &Path, extra: &[&str]) -> (i32, String, String) {
    let cfg = dir.join("edgemq.toml");
    let mut args = vec!["status", "-c", cfg.to_str().unwrap()];
    args.extend_from_slice(extra);
    run_to_end(dir, &args, None)
}

/// Asks the status socket directly: `request` written (None: nothing, write half left open).
fn ask_socket(dir: &Path, request: Option<&[u8]>) -> String {
    let mut s = UnixStream::connect(dir.join("data/edgemq.status.sock")).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    if let Some(r) = request {
        s.write_all(r).unwrap();
        s.shutdown(Shutdown::Write).unwrap();
    }
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn status_json_carries_the_bridge_figures() {
    let dir = tempdir();
    let (mut d, closed, _publ) = daemon_with_a_stuck_bridge(dir.path());
    let (code, out, err) = status(dir.path(), &["--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("{\"version\":\""), "{out}");
    for part in [
        "\"clients\":1,".to_string(),
        format!("\"name\":\"central\",\"connected\":false,\"address\":\"{closed}\""),
        "\"queue_messages\":3,".to_string(),
        "\"sent\":0,\"acked\":0,\"dropped\":0,\"storage_refused\":0,\"duplicates\":0}]}\n"
            .to_string(),
    ] {
        assert!(out.contains(&part), "{part} in {out}");
    }
    if have_tool("python3") {
        // a real JSON parser: the document is valid and typed as documented
        let check = "import json,sys; d=json.load(sys.stdin); b=d['bridges'][0]; \
            assert isinstance(d['uptime_s'], int) and d['sessions'] >= 1, d; \
            assert b['queue_bytes'] > 0 and b['oldest_age_ms'] >= 0, b; \
            assert b['since_ms'] > 0 and b['since_s_ago'] >= 0, b; \
            assert 'refused' in b['last_error'].lower(), b";
        let mut py = Command::new("python3")
            .args(["-c", check])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        py.stdin.take().unwrap().write_all(out.as_bytes()).unwrap();
        assert!(py.wait().unwrap().success(), "python3 rejected {out}");
    }

    let (code, text, err) = status(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with("edgemq "), "without --json: text {text}");
    assert!(text.contains("queue: 3 messages"), "{text}");
    assert_eq!(d.stop(), 0);

    let (code, out, err) = status(dir.path(), &["--json"]);
    assert_eq!(code, 2, "no daemon: {out}{err}");
    assert!(err.contains("not running"), "{err}");
}

#[test]
fn status_socket_answers_text_unless_asked_for_json() {
    let dir = tempdir();
    let mut d = Daemon::start(dir.path(), &basic_config(dir.path(), ""));
    let p = dir.path();
    let json = ask_socket(p, Some(b"json\n"));
    assert!(json.contains("\"bridges\":[]}"), "{json}");
    assert!(json.starts_with('{'), "{json}");
    for (what, req) in [
        ("EOF", Some(&b""[..])),
        ("text", Some(b"text\n")),
        ("unknown request", Some(b"yaml\n")),
        ("silence", None),
    ] {
        let out = ask_socket(p, req);
        assert!(out.starts_with("edgemq "), "{what}: {out}");
        assert!(out.contains("no bridges configured"), "{what}: {out}");
    }
    // an overlong request is cut off (the reset that may follow is its
    // sender's problem) and the socket keeps serving
    let mut s = UnixStream::connect(p.join("data/edgemq.status.sock")).unwrap();
    let _ = s.write_all(&[b'j'; 4096]);
    drop(s);
    assert!(ask_socket(p, Some(b"json\n")).starts_with('{'));
    assert_eq!(d.stop(), 0);
}

#[test]
fn a_bridge_whose_first_attempt_is_still_running_has_no_age_yet() {
    let dir = tempdir();
    // Accepts TCP (the kernel's backlog) but never answers CONNECT: the first
    // attempt stays open for the bridge's connect timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let bridge = format!(
        "[[bridge]]\nname = \"central\"\naddresses = [\"{addr}\"]\nclient_id = \"GW-S\"\n\
         [[bridge.topic]]\npattern = \"meters/#\"\ndirection = \"out\"\n"
    );
    let mut d = Daemon::start(
        dir.path(),
        &format!("{}{bridge}", basic_config(dir.path(), "")),
    );
    let (code, out, err) = status(dir.path(), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(
            "bridge central: disconnected (last address -) no connection attempt finished yet"
        ),
        "{out}"
    );
    assert!(
        !out.contains(" ago"),
        "no age before the first attempt ended: {out}"
    );
    d.stop();
}
