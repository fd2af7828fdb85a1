//! External tools the tests drive (mosquitto, openssl, systemd-analyze…): whether one is here.
//! Included with `#[path]` by the test crates that need it.

use std::process::{Command, Stdio};

/// Whether `tool` is installed. A missing tool fails the test under CI=true (CI must run every
/// test); elsewhere it prints a note and the caller skips.
pub fn have_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{tool} is required when CI=true"
        );
        eprintln!("note: {tool} not installed; skipping this test");
    }
    found
}
