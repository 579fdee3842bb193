//! larder: a content-addressed, deduplicating, encrypted backup repository for database
//! dumps and directories.
//!
//! The data path, one module per arrow (DESIGN.md):
//!
//! ```text
//! backup:  source (stdin | command | files) -> chunker (FastCDC, keyed gear) -> id (keyed BLAKE3)
//!          -> dedup lookup (catalog) -> compress (zstd) -> encrypt (XChaCha20-Poly1305)
//!          -> pack writer -> backend (disk | object store) -> index segment -> snapshot object
//! restore: snapshot -> (tree ->) content list -> catalog lookup -> pack range reads -> decrypt
//!          -> decompress -> verify id -> sink (stdout | file | directory)
//! ```
//!
//! | module | owns |
//! |---|---|
//! | [`backup`] | the backup pipeline and its sources (stdin, command, directories) |
//! | [`restore`] | the restore pipeline and its sinks (stdout, file, directory) |
//! | [`dump_check`] | whether a dump stream looks complete (`--verify`) or already compressed |
//! | [`config`] | the configuration file: repository, series, metrics, notifications |
//! | [`status`] | per-series health from the catalog: last good snapshot, age, runs, drills |
//! | [`event`] | recording runs, drills and prunes in the repository (`events/`) |
//! | [`drill`] | restore drills: a snapshot restored into a command, every blob verified |
//! | [`metrics`] | the Prometheus textfile |
//! | [`notify`] | webhooks, Slack and healthchecks pings after a run or drill |
//! | [`diff`] | what changed between two directory snapshots |
//! | [`copy`] | snapshots from one repository into another (offsite replicas), missing ones only |
//! | [`check`] | verifies structure and, on request, data; names damage and the snapshots it affects |
//! | [`chunker`] | FastCDC with a keyed gear table |
//! | [`crypto`] | master key, subkeys, key slots, seal/unseal |
//! | [`compress`] | zstd and bounded decompression |
//! | [`blob`] | seal-and-verify, open-and-verify of one blob |
//! | [`pack`] | building packs and reading their headers |
//! | [`content_list`] | a stream's list of chunks, stored as a tree of blobs |
//! | [`backend`] | object storage: the trait, the local directory and S3 (`object_store`) |
//! | [`catalog`] | the SQLite cache of index segments and snapshots |
//! | [`repo`] | init, open, key slots, the repo writer |
//! | [`snapshot`] | choosing snapshots |
//! | [`retention`] | which snapshots `forget` keeps: restic's `--keep-*` policy, per group |
//! | [`stats`] | stored and raw size, compression and dedup ratios, per series and per snapshot |
//! | [`format`] | pure encode/decode of every stored object (`format-spec/`) |
//! | [`id`] | identifier newtypes |
//! | [`error`] | `Error` and the `ErrorKind` behind exit codes |
//! | [`progress`] | progress reporting |

pub mod backend;
pub mod backup;
pub mod blob;
pub mod catalog;
pub mod check;
pub mod chunker;
pub mod compress;
pub mod config;
pub mod content_list;
pub mod copy;
pub mod crypto;
pub mod diff;
pub mod drill;
pub mod dump_check;
pub mod error;
pub mod event;
pub mod format;
pub mod id;
pub mod metrics;
pub mod notify;
pub mod pack;
pub mod progress;
pub mod prune;
pub mod repair;
pub mod repo;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod stats;
pub mod status;

pub use error::{Error, ErrorKind, Result};
