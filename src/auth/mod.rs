//! Authentication (password files, inline users) and authorisation (ACL files),
//! behind one facade the broker shares between connections and reloads on SIGHUP.
//!
//! A reload builds a complete new snapshot off to the side and swaps it in
//! only when every file parsed, so a broken file never leaves the broker with
//! half a configuration (or none).

pub mod acl;
pub mod file;
pub mod password;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

use anyhow::Context;

use crate::config::model;
use acl::Acl;
use password::{PasswordFile, PasswordHash};

/// A $7$ hash with Mosquitto's default parameters, checked against for unknown users.
const DUMMY: &str = "$7$101$c2FsdHNhbHRzYWx0$7nhpQqBZNgXpxQzxVG4wnmRn6EDDG1iOxWpYa8ajRys6JfkOAeGxAPCaR2JNMitIXilJ+kSY0RRzgEYOuOjfFw==";
static DUMMY_HASH: LazyLock<Option<PasswordHash>> =
    LazyLock::new(|| PasswordHash::parse(DUMMY).ok());

/// Result of checking a username and password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// The credentials are valid.
    Allowed,
    /// The user exists but the password is wrong or missing.
    BadCredentials,
    /// No such user (or no username given); the listener's anonymous policy decides.
    NoSuchUser,
}

/// Everything loaded from the config and the files at one point in time.
#[derive(Debug, Default)]
struct Snapshot {
    inline: HashMap<String, Option<PasswordHash>>,
    file: Option<PasswordFile>,
    acl: Option<Acl>,
}

/// The reloadable authentication and authorisation state.
#[derive(Debug)]
pub struct Auth {
    cfg: model::Auth,
    current: RwLock<Arc<Snapshot>>,
}

impl Auth {
    /// Loads the inline users, the password file and the ACL file named in `cfg`.
    pub fn load(cfg: &model::Auth) -> anyhow::Result<Auth> {
        let snapshot = build(cfg)?;
        Ok(Auth {
            cfg: cfg.clone(),
            current: RwLock::new(Arc::new(snapshot)),
        })
    }

    /// Re-reads the password and ACL files (SIGHUP); inline users stay as given to
    /// [`Auth::load`]. On any error the previous state stays in force.
    pub fn reload(&self) -> anyhow::Result<()> {
        let fresh = Arc::new(build(&self.cfg)?);
        // A poisoned lock only means a panic elsewhere while swapping an Arc; the data is whole.
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Checks credentials: inline users first, then the password file.
    pub fn authenticate(&self, username: Option<&str>, password: Option<&[u8]>) -> AuthOutcome {
        let Some(username) = username else {
            return AuthOutcome::NoSuchUser;
        };
        let snap = self.snapshot();
        let stored = match snap.inline.get(username) {
            // A config user with neither password nor hash can never log in.
            Some(cred) => cred.as_ref(),
            None => match snap.file.as_ref().and_then(|f| f.get(username)) {
                Some(cred) => Some(cred),
                None => {
                    // Spend the time a real check takes, so timing does not reveal who exists.
                    if let (Some(dummy), Some(pw)) = (DUMMY_HASH.as_ref(), password) {
                        std::hint::black_box(dummy.verify(pw));
                    }
                    return AuthOutcome::NoSuchUser;
                }
            },
        };
        match (stored, password) {
            (Some(cred), Some(pw)) if cred.verify(pw) => AuthOutcome::Allowed,
            _ => AuthOutcome::BadCredentials,
        }
    }

    /// Whether any credential source (inline users or a password file) is configured.
    pub fn has_users(&self) -> bool {
        let snap = self.snapshot();
        !snap.inline.is_empty() || snap.file.is_some()
    }

    /// Whether the client may publish to `topic`; true when there is no ACL file.
    pub fn can_publish(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.snapshot()
            .acl
            .as_ref()
            .is_none_or(|a| a.can_publish(username, client_id, topic))
    }

    /// Whether the client may subscribe to `filter`; true when there is no ACL file.
    pub fn can_subscribe(&self, username: Option<&str>, client_id: &str, filter: &str) -> bool {
        self.snapshot()
            .acl
            .as_ref()
            .is_none_or(|a| a.can_subscribe(username, client_id, filter))
    }

    /// Whether a message on `topic` may be delivered to the client (deny rules inside a
    /// granted subscription take effect here); true when there is no ACL file.
    pub fn can_receive(&self, username: Option<&str>, client_id: &str, topic: &str) -> bool {
        self.snapshot()
            .acl
            .as_ref()
            .is_none_or(|a| a.can_receive(username, client_id, topic))
    }
}

fn build(cfg: &model::Auth) -> anyhow::Result<Snapshot> {
    let mut inline = HashMap::new();
    for u in &cfg.users {
        let cred = match (&u.password_hash, &u.password) {
            (Some(h), _) => Some(
                PasswordHash::parse(h)
                    .with_context(|| format!("auth user {:?}: password_hash", u.username))?,
            ),
            (None, Some(p)) => Some(PasswordHash::Plain(p.expose().to_string())),
            (None, None) => None,
        };
        inline.insert(u.username.clone(), cred);
    }
    let file = match &cfg.password_file {
        Some(p) => Some(PasswordFile::load(p).context("password_file")?),
        None => None,
    };
    let acl = match &cfg.acl_file {
        Some(p) => Some(Acl::load(p).context("acl_file")?),
        None => None,
    };
    Ok(Snapshot { inline, file, acl })
}
