//! Mutation fuzzing of the files edgemq reads: its config (TOML and UCI), Mosquitto password and
//! ACL files, and mosquitto.conf for `import-mosquitto`. The running broker re-reads the first
//! three on SIGHUP, and the release binary aborts on a panic: a damaged file must be an error
//! naming it, never a panic that takes the broker down.
//!
//! Seeded and deterministic; `EDGEMQ_FUZZ_ITERS` (default 1,000 per corpus file) and
//! `EDGEMQ_FUZZ_SEED` widen a run by hand.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use common::rng::{Rng, env_u64};
use edgemq::auth::acl::Acl;
use edgemq::auth::password::{PasswordFile, PasswordHash};
use edgemq::config;
use edgemq::config::mosquitto_import::import;

const ACL: &str = "\
# seed 000: each gateway under its own prefix
topic read $SYS/#
pattern readwrite meters/%u/#
pattern read cmd/%c/+

user admin
topic readwrite #
user GW-0001
topic write meters/GW-0001/data/#
topic deny meters/GW-0001/secret
";

/// Text damaged at the byte level (so invalid UTF-8 appears, as in a file cut by a power
/// loss), a few changes at a time, some of them the characters these formats care about.
fn damage(rng: &mut Rng, text: &str) -> String {
    let mut b = text.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.index(b.len() + 1);
        match rng.below(6) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 => b.insert(at, b"\"'[]=#\\\n\t$%:/+ \xff\xc3"[rng.index(16)]),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 => b.truncate(at),
            4 => {
                // a line duplicated
                let start = b[..at]
                    .iter()
                    .rposition(|&c| c == b'\n')
                    .map_or(0, |p| p + 1);
                let end = b[at..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(b.len(), |p| at + p);
                let line = b[start..end].to_vec();
                b.splice(start..start, line.into_iter().chain([b'\n']));
            }
            _ => {
                // a number somewhere made huge or negative
                let n: &[u8] =
                    [&b"99999999999999999999"[..], b"-1", b"0", b"4294967296"][rng.index(4)];
                b.splice(at..at, n.iter().copied());
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

/// Runs `f` on `iters` damaged variants of `text`; a panic fails the test with the input.
fn fuzz(what: &str, text: &str, seed: u64, mut f: impl FnMut(&str)) {
    let iters = env_u64("EDGEMQ_FUZZ_ITERS", 1_000);
    let mut rng = Rng::new(seed);
    for i in 0..iters {
        let input = damage(&mut rng, text);
        if catch_unwind(AssertUnwindSafe(|| f(&input))).is_err() {
            panic!("{what}, iteration {i} (seed {seed:#x}) panicked on:\n{input:?}");
        }
    }
}

fn fixtures(dir: &str, ext: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *.{ext} in {}", dir.display());
    v
}

#[test]
fn damaged_configs_are_errors_not_panics() {
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0xC0F1);
    let file = Path::new("/etc/edgemq/edgemq.toml");
    for (ext, uci) in [("toml", false), ("uci", true)] {
        for path in fixtures("config/valid", ext) {
            let text = std::fs::read_to_string(&path).expect("fixture");
            fuzz(&path.display().to_string(), &text, seed, |t| {
                let _ = if uci {
                    config::parse_uci(t, file)
                } else {
                    config::parse_toml(t, file)
                };
            });
        }
    }
}

#[test]
fn damaged_acl_and_password_files_are_errors_not_panics() {
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0xAC1);
    let path = Path::new("/etc/edgemq/acl");
    fuzz("ACL file", ACL, seed, |t| {
        if let Ok(acl) = Acl::parse(path, t) {
            // what a reloaded ACL is then asked
            let _ = acl.can_publish(Some("GW-0001"), "GW-0001", "meters/GW-0001/data/x");
            let _ = acl.can_subscribe(None, "c", "cmd/c/#");
        }
    });
    let seven = PasswordHash::new_pbkdf2(b"s3cret").expect("hash").encode();
    let passwords = format!(
        "# users\nalice:{seven}\nbob:$6$c2FsdHNhbHRzYWx0$\
         7nhpQqBZNgXpxQzxVG4wnmRn6EDDG1iOxWpYa8ajRys6JfkOAeGxAPCaR2JNMitIXilJ+kSY0RRzgEYOuOjfFw==\n\
         carol:plain\n"
    );
    fuzz("password file", &passwords, seed, |t| {
        let _ = PasswordFile::parse(Path::new("/etc/edgemq/passwd"), t);
    });
}

#[test]
fn damaged_mosquitto_confs_are_imported_or_refused_not_panics() {
    let seed = env_u64("EDGEMQ_FUZZ_SEED", 0x1A9087);
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("mosquitto.conf");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mosquitto");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path().join("mosquitto.conf")))
        .filter(|p| p.is_file())
        .collect();
    sources.sort();
    for src in sources {
        let text = std::fs::read_to_string(&src).expect("fixture");
        fuzz(&src.display().to_string(), &text, seed, |t| {
            std::fs::write(&conf, t).expect("write");
            let _ = import(&conf);
        });
    }
}
