//! `edgemq passwd [-D] FILE USER`: adds, updates or deletes one user in a
//! Mosquitto-compatible password file.
//!
//! Unlike `mosquitto_passwd` it reads the password from stdin when stdin is not
//! a terminal (seed 001: scripts could not set a password), and it never
//! touches another user's line: every other line is written back byte for byte,
//! so existing hashes are never re-hashed. The file is replaced atomically
//! (temporary file, fsync, rename) keeping its mode and owner; a new file is 0600.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::auth::password::{PasswordHash, parse_line};

/// Mode of a password file this command creates.
const NEW_FILE_MODE: u32 = 0o600;
/// Mosquitto refuses longer usernames and passwords.
const MAX_FIELD_LEN: usize = 65_535;

/// Why the command failed, which decides the exit code.
#[derive(Debug, thiserror::Error)]
enum PasswdError {
    /// Bad arguments or input: exit 1.
    #[error("{0}")]
    Usage(String),
    /// The file system failed: exit 2.
    #[error("{0:#}")]
    Io(#[from] anyhow::Error),
}

/// Entry point of `edgemq passwd [-D] FILE USER`.
pub fn main(file: &Path, user: &str, delete: bool) -> ExitCode {
    match run(file, user, delete) {
        Ok(done) => {
            eprintln!("edgemq passwd: {done} user {user:?} in {}", file.display());
            ExitCode::SUCCESS
        }
        Err(PasswdError::Usage(msg)) => {
            eprintln!("edgemq passwd: {msg}");
            ExitCode::from(1)
        }
        Err(PasswdError::Io(e)) => {
            eprintln!("edgemq passwd: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(file: &Path, user: &str, delete: bool) -> Result<&'static str, PasswdError> {
    check_username(user)?;
    let target = resolve(file)?;
    let existing = match fs::read(&target) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("reading {}", target.display()))
                .into());
        }
    };
    let lines = existing.as_deref().map(split_lines).unwrap_or_default();
    let (content, done) = if delete {
        if existing.is_none() {
            return Err(PasswdError::Usage(format!(
                "{} does not exist",
                target.display()
            )));
        }
        (delete_user(&lines, user)?, "deleted")
    } else {
        let password = read_password()?;
        let hash = PasswordHash::new_pbkdf2(password.as_bytes())?;
        let entry = format!("{user}:{}", hash.encode());
        let (content, replaced) = set_user(&lines, user, entry.as_bytes());
        (content, if replaced { "updated" } else { "added" })
    };
    write_atomically(&target, &content)?;
    Ok(done)
}

fn check_username(user: &str) -> Result<(), PasswdError> {
    let bad = |why: &str| {
        Err(PasswdError::Usage(format!(
            "invalid username {user:?}: {why}"
        )))
    };
    if user.is_empty() {
        return bad("empty");
    }
    if user.contains(':') {
        return bad("contains ':'");
    }
    if user.chars().any(char::is_control) || user.trim() != user {
        return bad("contains control characters or surrounding spaces");
    }
    if user.starts_with('#') {
        return bad("starts with '#', which would make the line a comment");
    }
    if user.len() > MAX_FIELD_LEN {
        return bad("longer than 65535 bytes");
    }
    Ok(())
}

/// Follows a symlink so the rename replaces the file, not the link.
fn resolve(file: &Path) -> Result<PathBuf, PasswdError> {
    match fs::canonicalize(file) {
        Ok(p) => Ok(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(file.to_path_buf()),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("resolving {}", file.display()))
            .into()),
    }
}

/// Lines including their terminating `\n` (the last one may lack it).
fn split_lines(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.split_inclusive(|b| *b == b'\n').collect()
}

/// The user a line defines, if it is a well-formed `user:password` line.
fn line_user(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    parse_line(&text).ok().flatten().map(|(u, _)| u.to_string())
}

/// Replaces USER's first line (dropping any later duplicates) or appends one.
fn set_user(lines: &[&[u8]], user: &str, entry: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut replaced = false;
    for line in lines {
        if line_user(line).as_deref() != Some(user) {
            out.extend_from_slice(line);
            continue;
        }
        if !replaced {
            out.extend_from_slice(entry);
            out.push(b'\n');
            replaced = true;
        }
    }
    if !replaced {
        if out.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
        out.extend_from_slice(entry);
        out.push(b'\n');
    }
    (out, replaced)
}

fn delete_user(lines: &[&[u8]], user: &str) -> Result<Vec<u8>, PasswdError> {
    let kept: Vec<&[u8]> = lines
        .iter()
        .copied()
        .filter(|l| line_user(l).as_deref() != Some(user))
        .collect();
    if kept.len() == lines.len() {
        return Err(PasswdError::Usage(format!("user {user:?} not found")));
    }
    Ok(kept.concat())
}

/// From a terminal: prompted twice with echo off. Otherwise: the first line of stdin.
fn read_password() -> Result<String, PasswdError> {
    let stdin = io::stdin();
    let password = if stdin.is_terminal() {
        let first = prompt_hidden("Password: ")?;
        let second = prompt_hidden("Reenter password: ")?;
        if first != second {
            return Err(PasswdError::Usage("passwords do not match".into()));
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        trim_newline(line)
    };
    if password.is_empty() {
        return Err(PasswdError::Usage("empty password".into()));
    }
    if password.len() > MAX_FIELD_LEN {
        return Err(PasswdError::Usage(
            "password longer than 65535 bytes".into(),
        ));
    }
    Ok(password)
}

fn trim_newline(mut s: String) -> String {
    while s.ends_with(['\n', '\r']) {
        s.pop();
    }
    s
}

/// Restores the terminal settings when dropped, even on an early return.
struct EchoGuard {
    saved: nix::sys::termios::Termios,
}

impl Drop for EchoGuard {
    fn drop(&mut self) {
        use nix::sys::termios::{SetArg, tcsetattr};
        // Nothing sensible is left to do if restoring the terminal fails.
        let _ = tcsetattr(io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

fn prompt_hidden(prompt: &str) -> Result<String, PasswdError> {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let saved = tcgetattr(io::stdin()).context("reading terminal settings")?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ECHONL);
    let guard = EchoGuard { saved };
    tcsetattr(io::stdin(), SetArg::TCSANOW, &quiet).context("turning terminal echo off")?;
    eprint!("{prompt}");
    io::stderr().flush().context("writing the prompt")?;
    let mut line = String::new();
    io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password")?;
    drop(guard);
    Ok(trim_newline(line))
}

/// Writes `content` to a temporary file beside `target`, fsyncs it and renames it over
/// `target`, keeping the old file's mode and owner.
fn write_atomically(target: &Path, content: &[u8]) -> anyhow::Result<()> {
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .context("the password file path has no file name")?;
    let tmp = dir.join(format!(
        ".{}.edgemq-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let old = fs::metadata(target).ok();
    let mode = old
        .as_ref()
        .map_or(NEW_FILE_MODE, |m| m.permissions().mode() & 0o7777);
    let result = write_tmp(&tmp, content, mode, old.as_ref())
        .and_then(|()| {
            fs::rename(&tmp, target).with_context(|| format!("replacing {}", target.display()))
        })
        .and_then(|()| {
            File::open(&dir)
                .and_then(|d| d.sync_all())
                .context("syncing the directory")
        });
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

fn write_tmp(
    tmp: &Path,
    content: &[u8],
    mode: u32,
    old: Option<&fs::Metadata>,
) -> anyhow::Result<()> {
    let ctx = || format!("writing {}", tmp.display());
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(tmp)
        .with_context(ctx)?;
    // The umask may have narrowed the mode given to open().
    f.set_permissions(fs::Permissions::from_mode(mode))
        .with_context(ctx)?;
    if let Some(m) = old {
        let meta = f.metadata().with_context(ctx)?;
        if (meta.uid(), meta.gid()) != (m.uid(), m.gid()) {
            if let Err(e) = std::os::unix::fs::fchown(&f, Some(m.uid()), Some(m.gid())) {
                eprintln!("edgemq passwd: warning: could not keep the file's owner: {e}");
            }
        }
    }
    f.write_all(content).with_context(ctx)?;
    f.sync_all().with_context(ctx)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_other_lines_byte_identical() {
        let file = b"# users\nalice:$6$x$y\r\nbob:$7$1$a$b\ncarol:plain";
        let lines = split_lines(file);
        let (out, replaced) = set_user(&lines, "bob", b"bob:NEW");
        assert!(replaced);
        assert_eq!(out, b"# users\nalice:$6$x$y\r\nbob:NEW\ncarol:plain");
        let (out, replaced) = set_user(&lines, "dave", b"dave:NEW");
        assert!(!replaced);
        assert_eq!(
            out,
            b"# users\nalice:$6$x$y\r\nbob:$7$1$a$b\ncarol:plain\ndave:NEW\n"
        );
    }

    #[test]
    fn delete_and_missing_user() {
        let file = b"alice:a\nbob:b\nbob:c\n";
        let lines = split_lines(file);
        assert_eq!(delete_user(&lines, "bob").unwrap(), b"alice:a\n");
        assert!(matches!(
            delete_user(&lines, "zed"),
            Err(PasswdError::Usage(_))
        ));
    }

    #[test]
    fn usernames() {
        for bad in ["", "a:b", "a\nb", " a", "#a"] {
            assert!(check_username(bad).is_err(), "{bad:?}");
        }
        assert!(check_username("GW-0001").is_ok());
    }
}
