//! `format-spec/snapshot.md`: a snapshot object.
//!
//! ```text
//! object = magic "LARDERSN" ‖ version u16 ‖ sealed(body)      (ObjectKind::Snapshot)
//! body   = JSON, see `Snapshot`; unknown fields are ignored (added fields are optional)
//! ```

use super::DecodeError;
use crate::id::BlobId;

/// Magic at the start of every snapshot object.
pub const MAGIC: &[u8; 8] = b"LARDERSN";

/// Where a snapshot's bytes came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// `--stdin`: larder cannot see the producer.
    Stdin,
    /// `-- CMD ARGS…`: larder ran the producer.
    Command {
        /// The producer's argv.
        argv: Vec<String>,
    },
    /// Files and directories: the absolute paths given (lossy UTF-8 for display; the tree
    /// holds the exact bytes).
    Paths {
        /// The paths, as given after making them absolute.
        paths: Vec<String>,
    },
}

/// How the producer ended, as far as larder knows.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ProducerStatus {
    /// Stdin mode: the producer is on the other side of a pipe.
    Unknown,
    /// The producer exited with this code (not 0 only in a quarantined snapshot).
    Exited {
        /// The exit code.
        code: i32,
    },
    /// The producer was killed by a signal (only in a quarantined snapshot).
    Killed {
        /// The signal number.
        signal: i32,
    },
}

impl ProducerStatus {
    /// Whether the producer succeeded (or, for stdin, whether nothing says it failed).
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            ProducerStatus::Unknown | ProducerStatus::Exited { code: 0 }
        )
    }
}

/// What a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Root {
    /// One stream: the root of its content-list tree and its length.
    Stream {
        /// The top content-list blob.
        content_list: BlobId,
        /// Stream length in bytes.
        size: u64,
    },
    /// Files and directories: the root tree blob (`format-spec/tree.md`), whose entries
    /// mirror the absolute source paths.
    Tree {
        /// The root tree blob.
        tree: BlobId,
    },
}

/// What a directory snapshot found, beside its byte counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TreeCounts {
    /// Regular files read because they are new since the parent snapshot (or there is none).
    pub files_new: u64,
    /// Regular files read again because they changed.
    pub files_changed: u64,
    /// Regular files whose content was taken from the parent snapshot without reading them.
    pub files_unmodified: u64,
    /// Directories.
    pub dirs: u64,
    /// Other entries: symlinks, hardlinks, fifos, devices.
    pub others: u64,
}

/// The decrypted body of a snapshot object.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    /// When the snapshot started (UTC, nanoseconds).
    pub time: jiff::Timestamp,
    /// Seconds from start to the snapshot being written.
    pub duration: f64,
    /// The host it is grouped under (`--host`, default the hostname).
    pub host: String,
    /// The series name (`--name`).
    pub name: String,
    /// Free-form tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where the bytes came from.
    pub source: Source,
    /// How the producer ended.
    pub producer_status: ProducerStatus,
    /// What the snapshot holds.
    pub root: Root,
    /// Bytes read from the source.
    pub bytes_read: u64,
    /// Stored bytes (sealed, in packs) that this snapshot added to the repository.
    pub bytes_added: u64,
    /// Plaintext bytes of the chunks this snapshot added.
    pub raw_bytes_added: u64,
    /// Chunks in the stream.
    pub chunks: u64,
    /// Chunks not already stored.
    pub new_chunks: u64,
    /// The larder version that wrote it.
    pub larder_version: String,
    /// Entries that could not be read and are missing from the snapshot (directory
    /// snapshots; absent means 0).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub errors: u64,
    /// The parent snapshot a directory snapshot reused unchanged files from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<crate::id::SnapshotId>,
    /// Directory snapshots: what the walk found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree_counts: Option<TreeCounts>,
    /// Set by `repair snapshots` when data this snapshot needs is missing or corrupt: the
    /// snapshot is kept and listed, but `restore` refuses it and `latest` passes it over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damaged: Option<Damage>,
    /// Set by `copy`: the snapshot this one is a copy of, in the repository it came from
    /// (for a copy of a copy, the first one). `copy` skips a snapshot whose original the
    /// destination already holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original: Option<crate::id::SnapshotId>,
    /// Set when the stream failed its dump check or its producer failed: the snapshot is
    /// kept for inspection, but retention never counts it as a good snapshot, `latest`
    /// passes over it and `status` reports the series as failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quarantined: Option<Quarantine>,
    /// Things an operator should look at although the snapshot is good: a stream much
    /// smaller than the previous one of its series, input that looks compressed or
    /// encrypted (it will not deduplicate). One line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Stream snapshots: the coarse chunk sizes, when the stream ended cut with them (from
    /// the start or after a switch; chunker.md, "Coarse chunking"). Readers never need it;
    /// the next snapshot of the series is planned from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunker: Option<super::config::ChunkerParams>,
}

/// Why a snapshot is quarantined.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Quarantine {
    /// The check that failed: a dump kind (`"pg_dump"`, …) or `"producer"`.
    pub check: String,
    /// What was wrong, as one line.
    pub reason: String,
}

/// Why `repair snapshots` marked a snapshot damaged.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Damage {
    /// When it was marked.
    pub marked: jiff::Timestamp,
    /// How many problems `check` found under it.
    pub problems: u64,
    /// The first of them, as one line.
    pub first: String,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Snapshot {
    /// Whether retention may count it and `latest` may pick it: not quarantined, not
    /// marked damaged.
    pub fn is_good(&self) -> bool {
        self.quarantined.is_none() && self.damaged.is_none()
    }

    /// Encodes the plaintext body.
    pub fn encode_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("snapshot serializes")
    }

    /// Decodes the plaintext body.
    pub fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let s: Snapshot = serde_json::from_slice(bytes)?;
        if !(s.duration.is_finite() && s.duration >= 0.0) {
            return Err(DecodeError::Invalid("duration"));
        }
        Ok(s)
    }
}

#[cfg(test)]
impl Snapshot {
    /// A stream snapshot of `name` on `host` at `secs` (Unix time), every count zero: the
    /// starting point of unit tests that only look at times, names and hosts.
    pub(crate) fn for_tests(name: &str, host: &str, secs: i64) -> Self {
        Snapshot {
            time: jiff::Timestamp::from_second(secs).expect("a test time in range"),
            duration: 0.0,
            host: host.into(),
            name: name.into(),
            tags: vec![],
            source: Source::Stdin,
            producer_status: ProducerStatus::Unknown,
            root: Root::Stream {
                content_list: BlobId([0; 32]),
                size: 0,
            },
            bytes_read: 0,
            bytes_added: 0,
            raw_bytes_added: 0,
            chunks: 0,
            new_chunks: 0,
            larder_version: "t".into(),
            errors: 0,
            parent: None,
            tree_counts: None,
            damaged: None,
            original: None,
            quarantined: None,
            warnings: vec![],
            chunker: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_must_be_finite_and_non_negative() {
        let body = |d: &str| {
            format!(
                r#"{{"time":"2026-11-21T00:00:00Z","duration":{d},"host":"h","name":"n","source":{{"kind":"stdin"}},
                "producer_status":{{"state":"unknown"}},"root":{{"kind":"stream","content_list":"{}","size":0}},
                "bytes_read":0,"bytes_added":0,"raw_bytes_added":0,"chunks":0,"new_chunks":0,"larder_version":"t"}}"#,
                "00".repeat(32)
            )
        };
        assert!(Snapshot::decode_body(body("1.5").as_bytes()).is_ok());
        assert!(Snapshot::decode_body(body("-1").as_bytes()).is_err());
        // Floats survive a round trip exactly (serde_json's float_roundtrip).
        let s = Snapshot::decode_body(body("1.947700395895162e-169").as_bytes()).unwrap();
        assert_eq!(Snapshot::decode_body(&s.encode_body()).unwrap(), s);
    }
}
