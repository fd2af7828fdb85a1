//! sled for sessions, retained messages and metadata, with an fsync after each flush.
//!
//! sled 0.34.7's `flush` writes its buffers but does not fsync them
//! (spacejam/sled#1452): in a simulated power cut it lost acknowledged data in
//! most runs. [`Store::flush`] therefore fsyncs sled's files itself. An open
//! that fails or panics (a corrupt file after a power cut) sets the directory
//! aside and starts empty (`open.rs`), loudly: a broker that never starts is worse than a
//! broker that lost its retained messages.
//!
//! Every call here blocks on disk I/O; async callers use `spawn_blocking`.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use tracing::{error, warn};

use crate::router::message::Message;
use open::{OpenFailure, set_aside, try_open};

mod open;

/// Name of sled's directory inside `data_dir`.
pub const STORE_DIR: &str = "store";
/// sled page cache: small, for 256 MB routers.
pub const CACHE_CAPACITY: u64 = 3 * 1024 * 1024;

/// A record written (and fsynced) when the store is created, in sled's default tree.
/// sled 0.34 opens some garbage files as an empty database instead of failing; an
/// existing store without this record is such a case and is set aside like a failed open.
const MARKER_KEY: &[u8] = b"edgemq.store";
const MARKER_VALUE: &[u8] = b"1";

const TREE_RETAINED: &str = "retained";
const TREE_SESSIONS: &str = "sessions";
const TREE_SESSION_MSGS: &str = "session_msgs";
const TREE_META: &str = "meta";

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled reported an error.
    #[error("store database: {0}")]
    Sled(#[from] sled::Error),
    /// A file-system operation on the store failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done.
        op: &'static str,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// Even a fresh store could not be opened (after setting the old one aside).
    #[error("cannot open a fresh store at {}: {reason}", path.display())]
    Unusable {
        /// The store directory.
        path: PathBuf,
        /// The sled error or panic message.
        reason: String,
    },
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// The persistent store: cheap to clone, shared by the router, sessions and bridges.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: sled::Db,
    dir: PathBuf,
    // Kept open so each flush can fsync it without reopening.
    db_file: File,
    retained: sled::Tree,
    sessions: sled::Tree,
    session_msgs: sled::Tree,
    meta: sled::Tree,
}

impl Store {
    /// Opens `data_dir/store`, setting a corrupt one aside as `store.broken-<unix ts>`.
    pub fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(io_err("create", data_dir))?;
        warn_if_tmpfs(data_dir);
        let dir = data_dir.join(STORE_DIR);
        let db = match try_open(data_dir, &dir) {
            Ok(db) => db,
            Err(OpenFailure::Environment(e)) => return Err(e.into()),
            Err(OpenFailure::Broken { reason, aside }) => {
                let aside = match aside {
                    Some(aside) => aside,
                    None => set_aside(data_dir, &dir)?,
                };
                error!(
                    store = %dir.display(),
                    moved_to = %aside.display(),
                    %reason,
                    "STORE BROKEN: could not open the store; moved it aside and starting EMPTY \
                     (retained messages and persistent sessions are lost)"
                );
                try_open(data_dir, &dir).map_err(|f| StoreError::Unusable {
                    path: dir.clone(),
                    reason: match f {
                        OpenFailure::Environment(e) => e.to_string(),
                        OpenFailure::Broken { reason, .. } => reason,
                    },
                })?
            }
        };
        let store = Self::from_db(db, dir)?;
        if store.inner.db.get(MARKER_KEY)?.is_none() {
            store.inner.db.insert(MARKER_KEY, MARKER_VALUE)?;
            store.flush()?;
            // The new directory's entry must survive a power cut too.
            sync_path(data_dir)?;
        }
        Ok(store)
    }

    fn from_db(db: sled::Db, dir: PathBuf) -> Result<Store, StoreError> {
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io_err("open", &db_path))?;
        Ok(Store {
            inner: Arc::new(Inner {
                retained: db.open_tree(TREE_RETAINED)?,
                sessions: db.open_tree(TREE_SESSIONS)?,
                session_msgs: db.open_tree(TREE_SESSION_MSGS)?,
                meta: db.open_tree(TREE_META)?,
                db,
                dir,
                db_file,
            }),
        })
    }

    /// Makes every write so far durable: sled's flush, then an fsync of its files.
    pub fn flush(&self) -> Result<(), StoreError> {
        self.inner.db.flush()?;
        let dir = &self.inner.dir;
        self.inner
            .db_file
            .sync_all()
            .map_err(io_err("fsync", &dir.join("db")))?;
        sync_path(&dir.join("conf"))?;
        let blobs = dir.join("blobs");
        if blobs.is_dir() {
            let entries = std::fs::read_dir(&blobs).map_err(io_err("list", &blobs))?;
            for entry in entries {
                let path = entry.map_err(io_err("list", &blobs))?.path();
                sync_path(&path)?;
            }
            sync_path(&blobs)?;
        }
        sync_path(dir)
    }

    /// Stores (replaces) the retained message for its topic.
    pub fn put_retained(&self, msg: &Message) -> Result<(), StoreError> {
        let value = msg.to_bytes();
        self.inner
            .retained
            .insert(msg.topic.as_bytes(), value.as_ref())?;
        Ok(())
    }

    /// Removes the retained message of `topic`, if any.
    pub fn delete_retained(&self, topic: &str) -> Result<(), StoreError> {
        self.inner.retained.remove(topic.as_bytes())?;
        Ok(())
    }

    /// Every retained message; undecodable records are logged and skipped.
    pub fn load_retained(&self) -> Result<Vec<Message>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.retained.iter() {
            let (key, value) = item?;
            if let Some(msg) = decode_logged(&key, &value, TREE_RETAINED) {
                out.push(msg);
            }
        }
        Ok(out)
    }

    /// Stores the opaque session state of `client_id`.
    pub fn put_session(&self, client_id: &str, state: &[u8]) -> Result<(), StoreError> {
        self.inner.sessions.insert(client_id.as_bytes(), state)?;
        Ok(())
    }

    /// Every stored session as (client id, state).
    pub fn sessions(&self) -> Result<Vec<(String, Bytes)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.sessions.iter() {
            let (key, value) = item?;
            match String::from_utf8(key.to_vec()) {
                Ok(id) => out.push((id, Bytes::copy_from_slice(&value))),
                Err(_) => warn!(key = ?&*key, "skipping a session with a non-UTF-8 client id"),
            }
        }
        Ok(out)
    }

    /// Removes the session of `client_id` and all its queued messages.
    pub fn delete_session(&self, client_id: &str) -> Result<(), StoreError> {
        // Called at every clean-session connect and disconnect: when there is nothing to
        // delete, write nothing (sled logs even an empty batch, a flash write per connection).
        let mut batch = sled::Batch::default();
        let mut any = false;
        for key in self
            .inner
            .session_msgs
            .scan_prefix(msg_prefix(client_id))
            .keys()
        {
            batch.remove(key?);
            any = true;
        }
        if any {
            self.inner.session_msgs.apply_batch(batch)?;
        }
        if self.inner.sessions.contains_key(client_id.as_bytes())? {
            self.inner.sessions.remove(client_id.as_bytes())?;
        }
        Ok(())
    }

    /// Stores message `seq` queued for `client_id`.
    pub fn put_session_msg(
        &self,
        client_id: &str,
        seq: u64,
        msg: &Message,
    ) -> Result<(), StoreError> {
        let value = msg.to_bytes();
        self.inner
            .session_msgs
            .insert(msg_key(client_id, seq), value.as_ref())?;
        Ok(())
    }

    /// Removes message `seq` queued for `client_id`.
    pub fn delete_session_msg(&self, client_id: &str, seq: u64) -> Result<(), StoreError> {
        self.inner.session_msgs.remove(msg_key(client_id, seq))?;
        Ok(())
    }

    /// The messages queued for `client_id`, ordered by seq; undecodable ones are logged and skipped.
    pub fn session_msgs(&self, client_id: &str) -> Result<Vec<(u64, Message)>, StoreError> {
        let prefix = msg_prefix(client_id);
        let mut out = Vec::new();
        for item in self.inner.session_msgs.scan_prefix(&prefix) {
            let (key, value) = item?;
            let Ok(seq_bytes) = <[u8; 8]>::try_from(&key[prefix.len()..]) else {
                warn!(client_id, key = ?&*key, "skipping a session message with a malformed key");
                continue;
            };
            if let Some(msg) = decode_logged(&key, &value, TREE_SESSION_MSGS) {
                out.push((u64::from_be_bytes(seq_bytes), msg));
            }
        }
        Ok(out)
    }

    /// Stores a metadata value (e.g. bridge state).
    pub fn put_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.inner.meta.insert(key.as_bytes(), value)?;
        Ok(())
    }

    /// Reads a metadata value.
    pub fn get_meta(&self, key: &str) -> Result<Option<Bytes>, StoreError> {
        Ok(self
            .inner
            .meta
            .get(key.as_bytes())?
            .map(|v| Bytes::copy_from_slice(&v)))
    }

    /// Bytes sled occupies on disk (0 if it cannot tell).
    pub fn size_on_disk(&self) -> u64 {
        self.inner.db.size_on_disk().unwrap_or(0)
    }
}

/// Session message keys: client id, 0x00 (never in an MQTT string), seq big-endian.
fn msg_prefix(client_id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(client_id.len() + 9);
    k.extend_from_slice(client_id.as_bytes());
    k.push(0);
    k
}

fn msg_key(client_id: &str, seq: u64) -> Vec<u8> {
    let mut k = msg_prefix(client_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

fn decode_logged(key: &[u8], value: &[u8], tree: &str) -> Option<Message> {
    match Message::decode(Bytes::copy_from_slice(value)) {
        Ok(m) => Some(m),
        Err(e) => {
            error!(tree, key = %String::from_utf8_lossy(key), error = %e, "skipping an undecodable stored message");
            None
        }
    }
}

/// fsyncs a file or directory by path.
fn sync_path(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err("fsync", path))
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn warn_if_tmpfs(data_dir: &Path) {
    use nix::sys::statfs::{TMPFS_MAGIC, statfs};
    if let Ok(fs) = statfs(data_dir)
        && fs.filesystem_type() == TMPFS_MAGIC
    {
        warn!(
            data_dir = %data_dir.display(),
            "data_dir is on tmpfs: retained messages, sessions and queued messages are lost at reboot"
        );
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn warn_if_tmpfs(_data_dir: &Path) {}
