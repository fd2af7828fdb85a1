//! Mosquitto-compatible password files ($6$ SHA-512 and $7$ PBKDF2-SHA512).
//!
//! Formats, as `mosquitto_passwd` writes them (Mosquitto 2.0, common/password_mosq.c):
//! - `$6$<b64 salt>$<b64 sha512(password || salt)>`
//! - `$7$<iterations>$<b64 salt>$<b64 PBKDF2-HMAC-SHA512(password, salt, iterations, 64)>`
//!
//! with a 12-byte salt (newer Mosquitto writes 64-byte salts; both are read),
//! a 64-byte hash and standard base64 with padding. A line whose password does
//! not start with `$` is a plain-text password, as Mosquitto built without TLS
//! accepted; it is verified but a warning is logged at load.

use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;

use base64::Engine;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use ring::rand::SecureRandom;

use super::file::{self, FileError};

/// Iterations mosquitto_passwd uses for $7$ hashes (PW_DEFAULT_ITERATIONS).
pub const DEFAULT_ITERATIONS: u32 = 101;
/// Salt length mosquitto_passwd 2.0 writes (and the only one 2.0 reads).
pub const SALT_LEN: usize = 12;
/// Salt length newer Mosquitto versions write; accepted when reading.
const LONG_SALT_LEN: usize = 64;
/// SHA-512 output length: every stored hash is this long.
const HASH_LEN: usize = 64;
/// Refuse files that would make every login burn seconds of CPU on a router.
const MAX_ITERATIONS: u32 = 1_000_000;
/// Mosquitto refuses usernames and passwords longer than this.
const MAX_FIELD_LEN: usize = 65_535;

/// base64 as OpenSSL writes it (standard alphabet, padded); padding optional on read.
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A problem with a password file or a single hash.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The file could not be read, or a line in it is refused.
    #[error(transparent)]
    File(#[from] FileError),
    /// A hash string that is not a valid $6$ or $7$ hash.
    #[error("invalid password hash: {0}")]
    Hash(&'static str),
}

/// A stored credential: a Mosquitto hash or a plain-text password.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$6$`: one round of SHA-512 over password || salt.
    Sha512 {
        /// Random salt.
        salt: Vec<u8>,
        /// SHA-512(password || salt).
        hash: [u8; HASH_LEN],
    },
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2Sha512 {
        /// PBKDF2 iteration count.
        iterations: NonZeroU32,
        /// Random salt.
        salt: Vec<u8>,
        /// Derived key, 64 bytes.
        hash: [u8; HASH_LEN],
    },
    /// A plain-text password (legacy files, inline config users).
    Plain(String),
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            PasswordHash::Sha512 { .. } => f.write_str("PasswordHash($6$)"),
            PasswordHash::Pbkdf2Sha512 { iterations, .. } => {
                write!(f, "PasswordHash($7$, {iterations} iterations)")
            }
            PasswordHash::Plain(_) => f.write_str("PasswordHash(plain ***)"),
        }
    }
}

impl PasswordHash {
    /// Parses a `$6$...` or `$7$...` string as Mosquitto does.
    pub fn parse(s: &str) -> Result<PasswordHash, PasswordError> {
        if let Some(rest) = s.strip_prefix("$6$") {
            let (salt, hash) = rest
                .split_once('$')
                .ok_or(PasswordError::Hash("$6$ needs salt$hash"))?;
            return Ok(PasswordHash::Sha512 {
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            });
        }
        if let Some(rest) = s.strip_prefix("$7$") {
            let mut parts = rest.splitn(3, '$');
            let iters = parts.next().unwrap_or_default();
            let salt = parts
                .next()
                .ok_or(PasswordError::Hash("$7$ needs iterations$salt$hash"))?;
            let hash = parts
                .next()
                .ok_or(PasswordError::Hash("$7$ needs iterations$salt$hash"))?;
            let iterations = iters
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= MAX_ITERATIONS)
                .and_then(NonZeroU32::new)
                .ok_or(PasswordError::Hash(
                    "$7$ iteration count must be 1..=1000000",
                ))?;
            return Ok(PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt: decode_salt(salt)?,
                hash: decode_hash(hash)?,
            });
        }
        Err(PasswordError::Hash(
            "unknown hash type (expected $6$ or $7$)",
        ))
    }

    /// A new `$7$` hash of `password` with a random 12-byte salt and 101 iterations.
    pub fn new_pbkdf2(password: &[u8]) -> anyhow::Result<PasswordHash> {
        let mut salt = vec![0u8; SALT_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| anyhow::anyhow!("the system random number generator failed"))?;
        let iterations = NonZeroU32::new(DEFAULT_ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let mut hash = [0u8; HASH_LEN];
        ring::pbkdf2::derive(
            ring::pbkdf2::PBKDF2_HMAC_SHA512,
            iterations,
            &salt,
            password,
            &mut hash,
        );
        Ok(PasswordHash::Pbkdf2Sha512 {
            iterations,
            salt,
            hash,
        })
    }

    /// Whether `password` matches, compared in constant time.
    pub fn verify(&self, password: &[u8]) -> bool {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
                ctx.update(password);
                ctx.update(salt);
                ct_eq(ctx.finish().as_ref(), hash)
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => ring::pbkdf2::verify(
                ring::pbkdf2::PBKDF2_HMAC_SHA512,
                *iterations,
                salt,
                password,
                hash,
            )
            .is_ok(),
            // Digests first, so neither the content nor the length leaks through timing.
            PasswordHash::Plain(p) => {
                ct_eq(sha512(p.as_bytes()).as_ref(), sha512(password).as_ref())
            }
        }
    }

    /// The string stored in a password file (plain passwords as they are).
    pub fn encode(&self) -> String {
        match self {
            PasswordHash::Sha512 { salt, hash } => {
                format!("$6${}${}", B64.encode(salt), B64.encode(hash))
            }
            PasswordHash::Pbkdf2Sha512 {
                iterations,
                salt,
                hash,
            } => {
                format!("$7${iterations}${}${}", B64.encode(salt), B64.encode(hash))
            }
            PasswordHash::Plain(p) => p.clone(),
        }
    }
}

/// A parsed password file: username → credential.
#[derive(Debug, Clone, Default)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
}

impl PasswordFile {
    /// Reads and parses `path`; any malformed line is an error naming file and line.
    pub fn load(path: &Path) -> Result<PasswordFile, PasswordError> {
        Self::parse(path, &file::read_text(path)?)
    }

    /// Parses file content; `path` is only used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<PasswordFile, PasswordError> {
        let mut users: HashMap<String, PasswordHash> = HashMap::new();
        let mut seen_at: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let err = |reason: String| PasswordError::from(FileError::line(path, line_no, reason));
            let Some((user, cred)) = parse_line(raw).map_err(|r| err(r.to_string()))? else {
                continue;
            };
            if let Some(first) = seen_at.get(user) {
                return Err(err(format!(
                    "user {user:?} already defined on line {first}"
                )));
            }
            let cred = if cred.starts_with('$') {
                PasswordHash::parse(cred).map_err(|e| err(format!("user {user:?}: {e}")))?
            } else {
                tracing::warn!(
                    file = %path.display(), line = line_no, user,
                    "plain-text password in password file; run `edgemq passwd` to hash it"
                );
                PasswordHash::Plain(cred.to_string())
            };
            seen_at.insert(user.to_string(), line_no);
            users.insert(user.to_string(), cred);
        }
        Ok(PasswordFile { users })
    }

    /// The credential stored for `user`.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.users.get(user)
    }

    /// Number of users in the file.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file holds no users.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Splits one line into (user, credential); `Ok(None)` for comments and blank lines.
pub fn parse_line(raw: &str) -> Result<Option<(&str, &str)>, &'static str> {
    let line = raw.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (user, cred) = line.split_once(':').ok_or("expected user:password")?;
    let (user, cred) = (user.trim(), cred.trim());
    if user.is_empty() {
        return Err("empty username");
    }
    if cred.is_empty() {
        return Err("empty password");
    }
    if user.len() > MAX_FIELD_LEN || cred.len() > MAX_FIELD_LEN {
        return Err("username or password longer than 65535 bytes");
    }
    Ok(Some((user, cred)))
}

fn decode_salt(s: &str) -> Result<Vec<u8>, PasswordError> {
    let salt = B64
        .decode(s)
        .map_err(|_| PasswordError::Hash("salt is not base64"))?;
    if salt.len() != SALT_LEN && salt.len() != LONG_SALT_LEN {
        return Err(PasswordError::Hash("salt must be 12 or 64 bytes"));
    }
    Ok(salt)
}

fn decode_hash(s: &str) -> Result<[u8; HASH_LEN], PasswordError> {
    let bytes = B64
        .decode(s)
        .map_err(|_| PasswordError::Hash("hash is not base64"))?;
    bytes
        .try_into()
        .map_err(|_| PasswordError::Hash("hash must be 64 bytes"))
}

fn sha512(data: &[u8]) -> ring::digest::Digest {
    ring::digest::digest(&ring::digest::SHA512, data)
}

/// Constant-time equality for equal-length secrets (ring's own is deprecated).
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pbkdf2_round_trip_and_format() {
        let h = PasswordHash::new_pbkdf2(b"s3cret").unwrap();
        let s = h.encode();
        assert!(s.starts_with("$7$101$"), "{s}");
        let parts: Vec<&str> = s.split('$').collect();
        assert_eq!(parts.len(), 5);
        assert_eq!(parts[3].len(), 16, "12-byte salt is 16 base64 chars");
        assert_eq!(parts[4].len(), 88, "64-byte hash is 88 base64 chars");
        let back = PasswordHash::parse(&s).unwrap();
        assert_eq!(back, h);
        assert!(back.verify(b"s3cret"));
        assert!(!back.verify(b"s3cret "));
        assert!(!back.verify(b""));
    }

    #[test]
    fn known_vectors() {
        // Computed with openssl dgst -sha512 and Python's hashlib.pbkdf2_hmac,
        // salt "saltsaltsalt" (c2FsdHNhbHRzYWx0).
        let six = "$6$c2FsdHNhbHRzYWx0$upfVVfdk1wuq4oaO0WskiLMD8f29DsnYAbie2XwdOw4NXP6IO55bx2FJikHnOlHKP4NSNTDTTlFFWzDMm6RxhA==";
        let seven = "$7$101$c2FsdHNhbHRzYWx0$7nhpQqBZNgXpxQzxVG4wnmRn6EDDG1iOxWpYa8ajRys6JfkOAeGxAPCaR2JNMitIXilJ+kSY0RRzgEYOuOjfFw==";
        let h6 = PasswordHash::parse(six).unwrap();
        assert!(h6.verify(b"pw"));
        assert!(!h6.verify(b"pw2"));
        assert_eq!(h6.encode(), six);
        let h7 = PasswordHash::parse(seven).unwrap();
        assert!(h7.verify(b"s3cret"));
        assert!(!h7.verify(b"s3creT"));
        assert_eq!(h7.encode(), seven);
    }

    #[test]
    fn rejects_bad_hashes() {
        for bad in [
            "$6$",
            "$6$abc",
            "$6$!!!$abc",
            "$7$0$c2FsdHNhbHRzYWx0$AAAA",
            "$7$x$c2FsdHNhbHRzYWx0$AAAA",
            "$7$101$c2FsdHNhbHRzYWx0$AAAA",
            "$7$101$c2FsdA==$AAAA",
            "$5$abc$def",
        ] {
            assert!(PasswordHash::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn file_parsing_errors_name_the_line() {
        let p = Path::new("/etc/edgemq/passwd");
        let f = PasswordFile::parse(p, "# comment\n\n  \nalice:plain\r\nbob : other \n").unwrap();
        assert_eq!(f.len(), 2);
        assert!(f.get("alice").unwrap().verify(b"plain"));
        assert!(f.get("bob").unwrap().verify(b"other"));
        let e = PasswordFile::parse(p, "alice:x\nnocolon\n")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/etc/edgemq/passwd:2: expected user:password");
        let e = PasswordFile::parse(p, "a:x\nb:$7$1$zz$zz\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/edgemq/passwd:2: user \"b\": invalid password hash"),
            "{e}"
        );
        let e = PasswordFile::parse(p, "a:x\na:y\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains(":2:") && e.contains("line 1"), "{e}");
    }

    #[test]
    fn debug_hides_secrets() {
        let s = format!("{:?}", PasswordHash::Plain("hunter2".into()));
        assert!(!s.contains("hunter2"));
    }
}
