//! Object storage: one small trait (put create-only, get, get range, list by prefix, delete)
//! and its implementations (`format-spec/repository.md` for the key layout).
//!
//! Data path: pack writer → **backend** on the way in; catalog lookup → **backend** range
//! read on the way out. Every object is immutable once put.

pub mod conformance;
pub mod counting;
pub mod local;
#[cfg(feature = "s3")]
pub mod object_store;

use std::fmt;
use std::ops::Range;

use crate::id::{EventId, IndexId, KeyId, LockId, PackId, SnapshotId};

/// A key (path) of an object in the repository.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// `config`
    pub fn config() -> Self {
        Self("config".into())
    }

    /// `keys/<id>`
    pub fn key_slot(id: &KeyId) -> Self {
        Self(format!("{}{id}", Prefix::Keys.as_str()))
    }

    /// `packs/<first two hex digits>/<id>`
    pub fn pack(id: &PackId) -> Self {
        let h = id.to_hex();
        Self(format!("{}{}/{h}", Prefix::Packs.as_str(), &h[..2]))
    }

    /// `index/<id>`
    pub fn index(id: &IndexId) -> Self {
        Self(format!("{}{id}", Prefix::Index.as_str()))
    }

    /// `snapshots/<id>`
    pub fn snapshot(id: &SnapshotId) -> Self {
        Self(format!("{}{id}", Prefix::Snapshots.as_str()))
    }

    /// `locks/<id>`
    pub fn lock(id: &LockId) -> Self {
        Self(format!("{}{id}", Prefix::Locks.as_str()))
    }

    /// `events/<id>`
    pub fn event(id: &EventId) -> Self {
        Self(format!("{}{id}", Prefix::Events.as_str()))
    }

    /// An arbitrary key (tests and listings).
    pub fn from_raw(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The key as a path-like string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last path component: an object's hex id.
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The listable folders of a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prefix {
    /// `keys/`
    Keys,
    /// `packs/` (two levels: `packs/xx/<id>`)
    Packs,
    /// `index/`
    Index,
    /// `snapshots/`
    Snapshots,
    /// `locks/`
    Locks,
    /// `events/`
    Events,
}

impl Prefix {
    /// The prefix with its trailing slash.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Keys => "keys/",
            Prefix::Packs => "packs/",
            Prefix::Index => "index/",
            Prefix::Snapshots => "snapshots/",
            Prefix::Locks => "locks/",
            Prefix::Events => "events/",
        }
    }
}

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its key.
    pub key: ObjectKey,
    /// Its size in bytes.
    pub size: u64,
}

/// What storage does with a create-only put under a key that is already taken: the answer
/// of [`Backend::probe_conditional_writes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionalWrites {
    /// It refuses the put, so an object once stored is never replaced and no two writers
    /// can both believe they created the same lock.
    Honoured,
    /// It replaces the object (an S3-compatible server that ignores `If-None-Match`).
    Ignored {
        /// The server, for messages: its endpoint URL, or `AWS` / `Azure`.
        server: String,
    },
}

/// How a backend likes to be driven: what the writer and the restore pipeline tune to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoProfile {
    /// Packs being committed at once while the next one is written (each a temporary file
    /// and, on object storage, one request in flight).
    pub uploads_in_flight: usize,
    /// Largest single range read: adjacent blobs of one pack are read together up to this.
    pub max_read_run: u64,
    /// Blobs of one pack this far apart (or closer) are still read in one request, the bytes
    /// between them read and dropped: on object storage a request costs more than a few
    /// hundred KiB of transfer.
    pub max_read_gap: u64,
}

impl IoProfile {
    /// A local disk: a second commit overlaps one fsync; a 1 MiB read costs about as much
    /// as two 512 KiB ones.
    pub const LOCAL: IoProfile = IoProfile {
        uploads_in_flight: 2,
        max_read_run: 1024 * 1024,
        max_read_gap: 0,
    };
}

/// Why a backend operation failed. Every variant names the object.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No object under that key.
    #[error("{key} not found in the repository")]
    NotFound {
        /// The key.
        key: String,
    },
    /// A create-only put found an object already there.
    #[error("{key} already exists in the repository")]
    AlreadyExists {
        /// The key.
        key: String,
    },
    /// The storage failed (I/O error, full disk, unreachable server).
    #[error("cannot {op} {key}: {source}")]
    Io {
        /// What was being done: `write`, `read`, `list`, `delete`.
        op: &'static str,
        /// The key or prefix.
        key: String,
        /// Why.
        source: std::io::Error,
    },
}

/// An object being written piece by piece whose name is known only once it is complete (a
/// pack is named by the hash of all its bytes). Dropping it without `commit` discards it.
pub trait StagedObject: Send + fmt::Debug {
    /// Appends bytes.
    fn write(&mut self, data: &[u8]) -> Result<(), Error>;

    /// Makes the object durable under `key`, create-only like [`Backend::put`].
    fn commit(self: Box<Self>, key: &ObjectKey) -> Result<(), Error>;
}

/// Object storage under a repository root. Implementations are safe to share across threads.
pub trait Backend: Send + Sync + fmt::Debug {
    /// Where the repository lives, as the user named it.
    fn location(&self) -> String;

    /// Stores `data` under `key` durably, failing with `AlreadyExists` if the key is taken.
    /// Returns only once the object would survive a power loss.
    fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<(), Error>;

    /// The whole object.
    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, Error>;

    /// Bytes `range` of the object; fails if the object is shorter.
    fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Vec<u8>, Error>;

    /// Every object under `prefix`, in no particular order.
    fn list(&self, prefix: Prefix) -> Result<Vec<ObjectInfo>, Error>;

    /// Removes the object; removing a missing object is not an error.
    fn delete(&self, key: &ObjectKey) -> Result<(), Error>;

    /// Starts an object to be written in pieces and named at the end (packs), so that a
    /// local repository never holds a whole pack in memory.
    fn stage(&self, prefix: Prefix) -> Result<Box<dyn StagedObject>, Error>;

    /// Whether [`put`](Self::put) really is create-only on this storage, which locks rest
    /// on. Storage that keeps it by construction (a local directory) answers without I/O,
    /// the default; a remote server is asked by writing, rewriting and deleting a probe
    /// object. A wrapper around another backend must forward this call.
    fn probe_conditional_writes(&self) -> Result<ConditionalWrites, Error> {
        Ok(ConditionalWrites::Honoured)
    }

    /// How this storage is best driven. A wrapper around another backend must forward this
    /// call.
    fn io_profile(&self) -> IoProfile {
        IoProfile::LOCAL
    }
}
