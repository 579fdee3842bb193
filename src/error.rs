//! `larder::Error`: every failure the library reports, and the `ErrorKind` that picks the
//! CLI's exit code (`src/cli/exit.rs`, README "Exit codes").
//!
//! Corrupt, missing, I/O, wrong password, producer failure and usage stay distinct variants so
//! that cron and monitoring can tell them apart.

use std::path::PathBuf;

use crate::backend;
use crate::format::DecodeError;
use crate::id::{BlobId, PackId};

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What class of failure an error is; each maps to one exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Anything not covered below (I/O, full disk, unreachable storage).
    Failure,
    /// The request itself is wrong: bad flag value, no such snapshot, ambiguous prefix.
    Usage,
    /// No repository at the given location.
    RepoNotFound,
    /// No key slot opens with the given password.
    WrongPassword,
    /// The producer command failed or the source could not be read: no snapshot was written.
    ProducerFailed,
    /// Stored data failed authentication, hashing or decoding.
    Integrity,
    /// The repository is locked by another process.
    Locked,
}

/// Every error the library returns. Messages are one lowercase line naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Another process holds a lock that conflicts with the one wanted.
    #[error(
        "repository is locked: {holder} (waited {waited_secs} s; use --lock-wait to wait longer)"
    )]
    RepoLocked {
        /// Who holds it: kind, host, pid, command, since when.
        holder: String,
        /// How long this process waited for it.
        waited_secs: u64,
    },
    /// A backend operation failed; the backend error names the object.
    #[error(transparent)]
    Backend(#[from] backend::Error),
    /// A stored object could not be decoded (after authentication, or its clear header).
    #[error("{object} is corrupt: {source}")]
    CorruptObject {
        /// Which object, e.g. `index/3fa2…`.
        object: String,
        /// What was wrong with it.
        source: DecodeError,
    },
    /// A stored object failed authentication: corrupt, tampered, or from another repository.
    #[error("{object} failed authentication (corrupt or tampered)")]
    UnauthenticObject {
        /// Which object, e.g. `snapshots/3fa2…`.
        object: String,
    },
    /// A blob failed authentication, decompression or its id check.
    #[error("blob {blob} in pack {pack} is corrupt: {reason}")]
    CorruptBlob {
        /// The pack holding it.
        pack: PackId,
        /// The blob.
        blob: BlobId,
        /// What check failed.
        reason: &'static str,
    },
    /// A blob is referenced but no index segment names it.
    #[error("blob {blob} is not in any index segment (missing data)")]
    MissingBlob {
        /// The blob.
        blob: BlobId,
    },
    /// A pack the index names is not in the repository.
    #[error("pack {pack} is missing from the repository (the index names it)")]
    MissingPack {
        /// The pack.
        pack: PackId,
    },
    /// There is no repository at the location.
    #[error("no repository at {location} (run `larder init` first?)")]
    RepoNotFound {
        /// The repository location as given.
        location: String,
    },
    /// `init` found something already there.
    #[error("a repository already exists at {location}")]
    RepoExists {
        /// The repository location as given.
        location: String,
    },
    /// No key slot opened with the password.
    #[error("wrong password: no key slot of this repository opens with it")]
    WrongPassword,
    /// No way to get a password: no flag, no variable, not a terminal.
    #[error(
        "no password given: set LARDER_PASSWORD, LARDER_PASSWORD_FILE or LARDER_PASSWORD_COMMAND, or run on a terminal"
    )]
    NoPassword,
    /// The password source itself failed.
    #[error("cannot read the password: {0}")]
    PasswordSource(String),
    /// Argon2id parameters below the floor or above the ceiling.
    #[error("key derivation parameters {0} are outside the allowed range")]
    KdfParams(String),
    /// The producer command exited non-zero or was killed.
    #[error("source command `{cmd}` {status}; no snapshot written")]
    SourceFailed {
        /// The command line as given.
        cmd: String,
        /// How it ended, e.g. `exited with status 1`.
        status: String,
    },
    /// larder killed the producer: it ran past `timeout` or wrote nothing for
    /// `stall_timeout`.
    #[error("source command `{cmd}` {why} and was killed; no snapshot written")]
    SourceTimeout {
        /// The command line as given.
        cmd: String,
        /// `ran longer than its timeout (2h)` or `wrote nothing for 10m (stall_timeout)`.
        why: String,
    },
    /// The producer command could not be started.
    #[error("cannot start source command `{cmd}`: {source}")]
    SourceSpawn {
        /// The command line as given.
        cmd: String,
        /// Why.
        source: std::io::Error,
    },
    /// Reading the source stream failed.
    #[error("reading {what} failed: {source}; no snapshot written")]
    SourceRead {
        /// `standard input` or the command.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// Writing restored data failed (broken pipe, full disk).
    #[error("writing to {target} failed: {source}")]
    SinkWrite {
        /// `standard output` or the file.
        target: String,
        /// Why.
        source: std::io::Error,
    },
    /// A local file or directory (cache, output) could not be used.
    #[error("{what} {}: {source}", path.display())]
    LocalIo {
        /// What was being done, e.g. `cannot create cache directory`.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The SQLite catalog failed.
    #[error("catalog {}: {source}", path.display())]
    Catalog {
        /// The catalog file.
        path: PathBuf,
        /// Why.
        source: rusqlite::Error,
    },
    /// No snapshot matches the selection.
    #[error("no snapshot matches {0}")]
    NoSnapshot(String),
    /// A snapshot id prefix matches more than one snapshot.
    #[error("snapshot id prefix `{0}` is ambiguous")]
    AmbiguousSnapshot(String),
    /// A key slot selection failed or would leave the repository unopenable.
    #[error("{0}")]
    KeySlot(String),
    /// A blob failed its own check before being written (compress, seal, then open and
    /// re-hash): a compressor or memory fault. Nothing with it was stored.
    #[error("blob {blob} failed its check before upload: {reason}; nothing was stored with it")]
    SealFailed {
        /// The blob.
        blob: BlobId,
        /// What check failed.
        reason: &'static str,
    },
    /// An internal stage of the pipeline stopped (a bug, not bad input).
    #[error("internal error: {0}")]
    Internal(String),
    /// A request that cannot be carried out as given.
    #[error("{0}")]
    InvalidArgument(String),
    /// The configuration file is unreadable or invalid.
    #[error("config {}{}: {message}", path.display(), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Config {
        /// The file.
        path: PathBuf,
        /// The 1-based line, when known.
        line: Option<usize>,
        /// What is wrong, naming the key.
        message: String,
    },
    /// Opening the repository found index segments or snapshots it cannot read; only
    /// `check` and `repair` go on in that state.
    #[error(
        "{first} ({count} unreadable index segments or snapshots; `larder check` reports them, `larder repair` recovers what it can)"
    )]
    UnreadableObjects {
        /// How many.
        count: usize,
        /// The first, as its error line.
        first: String,
    },
    /// The snapshot was marked damaged by `repair snapshots`.
    #[error(
        "snapshot {id} was marked damaged by `larder repair snapshots` ({problems} problems; the first: {first}); restore another snapshot"
    )]
    DamagedSnapshot {
        /// The snapshot.
        id: crate::id::SnapshotId,
        /// How many problems.
        problems: u64,
        /// The first.
        first: String,
    },
    /// `check` found damage; its report (printed before this error) lists every problem.
    #[error("check found {problems} {}; the first: {first}", if *.problems == 1 { "problem" } else { "problems" })]
    CheckFailed {
        /// How many problems the report lists.
        problems: usize,
        /// The first of them, as one line.
        first: String,
    },
}

impl Error {
    /// The class of this error, which selects the exit code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Backend(_) => ErrorKind::Failure,
            Error::RepoLocked { .. } => ErrorKind::Locked,
            Error::CorruptObject { .. }
            | Error::UnauthenticObject { .. }
            | Error::CorruptBlob { .. }
            | Error::MissingBlob { .. }
            | Error::MissingPack { .. }
            | Error::CheckFailed { .. }
            | Error::DamagedSnapshot { .. }
            | Error::UnreadableObjects { .. } => ErrorKind::Integrity,
            Error::RepoNotFound { .. } => ErrorKind::RepoNotFound,
            Error::WrongPassword => ErrorKind::WrongPassword,
            Error::SourceFailed { .. }
            | Error::SourceTimeout { .. }
            | Error::SourceSpawn { .. }
            | Error::SourceRead { .. } => ErrorKind::ProducerFailed,
            Error::NoSnapshot(_)
            | Error::AmbiguousSnapshot(_)
            | Error::InvalidArgument(_)
            | Error::Config { .. }
            | Error::KeySlot(_)
            | Error::KdfParams(_)
            | Error::RepoExists { .. }
            | Error::NoPassword => ErrorKind::Usage,
            Error::PasswordSource(_)
            | Error::SinkWrite { .. }
            | Error::LocalIo { .. }
            | Error::Catalog { .. }
            | Error::SealFailed { .. }
            | Error::Internal(_) => ErrorKind::Failure,
        }
    }

    /// Maps a backend error on reading pack `pack`: a missing pack is an integrity error.
    pub fn reading_pack(pack: PackId) -> impl FnOnce(backend::Error) -> Self {
        move |e| match e {
            backend::Error::NotFound { .. } => Error::MissingPack { pack },
            e => Error::Backend(e),
        }
    }

    /// A decode failure of the named object.
    pub fn corrupt(object: impl Into<String>, source: DecodeError) -> Self {
        Error::CorruptObject {
            object: object.into(),
            source,
        }
    }
}
