//! Every problem of a file reported at once, in line order: misspelt keys, bad values, wrong
//! types (a required key's included), and never a secret's value.

use super::*;

#[test]
fn every_problem_is_reported_at_once_in_line_order() {
    let text = "log_level = \"loud\"\nworker_threads = 0\n[[listener]]\nbind = \"nope\"\n[[bridge]]\nname = \"a b\"\naddresses = []\n";
    let err: ConfigError = config::parse_toml(text, Path::new("many.toml")).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "log_level",
            "worker_threads",
            "listener[0].bind",
            "bridge[0].topic",
            "bridge[0].name",
            "bridge[0].addresses"
        ]
    );
    let lines: Vec<Option<usize>> = err.problems.iter().map(|p| p.line).collect();
    assert_eq!(
        lines,
        [Some(1), Some(2), Some(4), Some(5), Some(6), Some(7)]
    );
    assert_eq!(err.to_string().lines().count(), 6);
}

#[test]
fn misspelt_keys_and_bad_values_are_reported_together() {
    // serde stops at its first error; the loader goes on past each one.
    let text = "[[listener]]\nbind = \"127.0.0.1:1883\"\nbogus = 1\n[[bridge]]\nname = \"c\"\n\
                addresses = [\"h:8883\"]\nextra = [\n  1,\n  2,\n]\n[bridge.queue]\n\
                durability = \"sometimes\"\nmax_bytes = \"lots\"\n";
    let err = config::parse_toml(text, Path::new("typos.toml")).unwrap_err();
    let got = lines_and_keys(&err);
    assert_eq!(
        got,
        [
            (Some(3), "listener[0].bogus"),
            (Some(7), "bridge[0].extra"),
            (Some(12), "bridge[0].queue.durability"),
            (Some(13), "bridge[0].queue.max_bytes"),
        ],
        "{err}"
    );
}

#[test]
fn a_bad_required_value_is_not_also_reported_missing() {
    let text = "[[bridge]]\nname = 7\naddresses = [\"h:8883\"]\n";
    let err = config::parse_toml(text, Path::new("name.toml")).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].key, "bridge[0].name");
    assert!(
        err.problems[0].message.contains("expected a string"),
        "{err}"
    );
}

#[test]
fn a_wrong_typed_required_key_does_not_hide_the_problems_after_it() {
    // The wrong value stands in as one of the right type, so checking goes on; a line with
    // a multi-byte character blanked before it must not shift the later lines.
    let text = "[[listener]]\nbind = \"127.0.0.1:1883\"\nallow_anonymous = \"oui, très\"\n\
                [[bridge]]\nname = 5\naddresses = \"h:8883\"\n[limits]\nmax_connections = \"many\"\n";
    let err = config::parse_toml(text, Path::new("types.toml")).unwrap_err();
    let got = lines_and_keys(&err);
    assert_eq!(
        got,
        [
            (Some(3), "listener[0].allow_anonymous"),
            (Some(5), "bridge[0].name"),
            (Some(6), "bridge[0].addresses"),
            (Some(8), "limits.max_connections"),
        ],
        "{err}"
    );
    assert!(!err.to_string().contains("missing"), "{err}");
}

#[test]
fn type_errors_never_echo_a_secret() {
    let text = "[[auth.user]]\nusername = \"u\"\npassword_hash = 987654321\n";
    let err = config::parse_toml(text, Path::new("s.toml")).unwrap_err();
    assert_eq!(err.problems[0].key, "auth.user[0].password_hash");
    assert!(!err.to_string().contains("987654321"), "{err}");
    let path = fixture("invalid/password_wrong_type.toml");
    assert!(
        !config::load(&path)
            .unwrap_err()
            .to_string()
            .contains("12345678")
    );
}

/// Each problem's (line, key), in the order reported.
fn lines_and_keys(err: &ConfigError) -> Vec<(Option<usize>, &str)> {
    err.problems
        .iter()
        .map(|p| (p.line, p.key.as_str()))
        .collect()
}
