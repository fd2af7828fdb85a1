//! Translating a mosquitto.conf (with include_dir) into edgemq TOML, with
//! Mosquitto 2.0's reading rules: per-file listener/bridge context, global
//! security options unless per_listener_settings, bridge `topic` argument
//! semantics. Every option that cannot be carried over becomes a
//! `# not carried over: LINE (WHY) [FILE:LINE]` comment; choices the
//! translation had to make become `# note:` comments.

mod assemble;
mod bridge;
mod keys;
mod listener;
mod reader;
mod render;
mod translate;

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::{Config, ConfigError};
use reader::Directive;

/// The prefix of every comment for an option left behind.
pub const NOT_CARRIED: &str = "# not carried over: ";
/// The heading of the trailing list of problems `edgemq check` will report.
pub const CHECK_REFUSES: &str = "# edgemq check will refuse this file until you fix:";

/// Reads `path` (and its include_dir) and returns the equivalent edgemq TOML
/// text, comments included. The text is checked to load as a [`Config`];
/// what `edgemq check` would still refuse is listed in comments at the end.
pub fn import(path: &Path) -> Result<String> {
    let items = reader::read_all(path)?;
    let translation = translate::translate(items)?;
    let mut text = render::render(&translation, path)?;
    toml::from_str::<Config>(&text).with_context(|| {
        format!("internal error: the translation does not load as edgemq config:\n{text}")
    })?;
    if let Err(e) = crate::config::parse_toml(&text, Path::new("edgemq.toml")) {
        text.push_str(&check_trailer(&e));
    }
    Ok(text)
}

/// What `edgemq check` will refuse until the user decides, as comments at
/// the end (so the line numbers they cite stay right).
fn check_trailer(e: &ConfigError) -> String {
    let mut out = format!("{CHECK_REFUSES}\n");
    for p in &e.problems {
        let line = p.line.map_or(String::new(), |l| format!("line {l}: "));
        out.push_str(&format!("#   {line}{}: {}\n", p.key, p.message));
    }
    out
}

/// A comment for a line that could not be carried over.
fn not_carried(d: &Directive, why: &str) -> String {
    format!("{NOT_CARRIED}{} ({why}) [{}]", d.echo(), d.loc())
}

/// A comment explaining a choice the translation made.
fn note(text: &str) -> String {
    format!("# note: {text}")
}

/// Mosquitto's booleans: true/1 and false/0 only.
fn parse_bool(d: &Directive) -> Option<bool> {
    match d.arg(0) {
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::model::Direction;

    fn run(files: &[(&str, &str)]) -> (String, Config) {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let text = import(&dir.path().join(files[0].0)).unwrap();
        let config = toml::from_str(&text).unwrap();
        (text, config)
    }

    #[test]
    fn a_unit_that_is_not_one_byte_is_a_note_not_a_panic() {
        // found by tests/file_fuzz.rs: the unit was split off as the last byte
        let (text, _) = run(&[("m.conf", "persistent_client_expiration 2\u{e9}\n")]);
        assert!(text.contains("persistent_client_expiration"), "{text}");
        let (_, c) = run(&[("m.conf", "persistent_client_expiration 2d\n")]);
        assert_eq!(c.limits.session_expiry.get().as_secs(), 2 * 86_400);
    }

    #[test]
    fn topic_arguments_follow_mosquitto() {
        let (_, c) = run(&[(
            "m.conf",
            "connection c\naddress a.example:8883, b.example\ntopic # out 2\ntopic t/# in\n\
             topic x both 1 \"\" remote/\ntopic \"\" out 0 local/a remote/b\ntopic y out 1 # comment\n",
        )]);
        let b = &c.bridges[0];
        assert_eq!(b.addresses, ["a.example:8883", "b.example:1883"]);
        let t: Vec<_> = b
            .topics
            .iter()
            .map(|t| {
                (
                    t.pattern.as_str(),
                    t.direction,
                    t.qos,
                    t.local_prefix.as_str(),
                    t.remote_prefix.as_str(),
                )
            })
            .collect();
        assert_eq!(
            t,
            [
                ("#", Direction::Out, 2, "", ""),
                ("t/#", Direction::In, 0, "", ""),
                ("x", Direction::Both, 1, "", "remote/"),
                ("", Direction::Out, 0, "local/a", "remote/b"),
                ("y", Direction::Out, 1, "", ""),
            ]
        );
    }

    #[test]
    fn per_listener_settings_and_include_order() {
        let (text, c) = run(&[
            (
                "m.conf",
                "per_listener_settings true\ninclude_dir d\nlistener 0 /run/e.sock\nallow_anonymous true\n",
            ),
            (
                "d/20-b.conf",
                "listener 8883\npassword_file /p2\nacl_file /a2\n",
            ),
            (
                "d/10-a.conf",
                "listener 1883 localhost\nallow_anonymous true\npassword_file /p1\n",
            ),
            ("d/README", "listener 9999\n"),
        ]);
        let binds: Vec<_> = c.listeners.iter().map(|l| l.bind.as_str()).collect();
        assert_eq!(
            binds,
            ["127.0.0.1:1883", "0.0.0.0:8883", "unix:/run/e.sock"]
        );
        let anon: Vec<_> = c.listeners.iter().map(|l| l.allow_anonymous).collect();
        assert_eq!(anon, [Some(true), Some(false), Some(true)]);
        let auth1 = c.listeners[1].auth.as_ref().unwrap();
        assert_eq!(auth1.acl_file.as_deref(), Some(Path::new("/a2")));
        assert_eq!(c.auth, Default::default());
        assert!(!text.contains("9999"), "{text}");
    }

    #[test]
    fn global_security_applies_to_every_listener() {
        let (text, c) = run(&[(
            "m.conf",
            "listener 8883\nallow_anonymous false\nlistener 1883 127.0.0.1\nallow_anonymous true\nacl_file /acl\n\
             pid_file /run/m.pid\nlocal_password secret123\n",
        )]);
        assert!(c.listeners.iter().all(|l| l.allow_anonymous == Some(true)));
        assert_eq!(c.auth.acl_file.as_deref(), Some(Path::new("/acl")));
        assert!(
            text.contains("# not carried over: pid_file /run/m.pid ("),
            "{text}"
        );
        assert!(text.contains("m.conf:6]"), "{text}");
        assert!(!text.contains("secret123"), "{text}");
    }

    #[test]
    fn identity_needs_client_certificates() {
        let (text, c) = run(&[(
            "m.conf",
            "listener 8883\ncertfile /c.pem\nkeyfile /k.pem\nuse_identity_as_username true\nallow_anonymous false\n",
        )]);
        let tls = c.listeners[0].tls.as_ref().unwrap();
        assert!(!tls.identity_as_username && tls.client_ca.is_none());
        assert!(
            text.contains(
                "# not carried over: use_identity_as_username true (needs require_certificate"
            ),
            "{text}"
        );
        assert!(text.contains("nobody can connect here"), "{text}");
    }
}
