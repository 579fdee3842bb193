//! `format-spec/lock.md`: a lock object.
//!
//! ```text
//! object = magic "LARDERLK" ‖ version u16 ‖ sealed(body)      (ObjectKind::Lock)
//! body   = JSON, see `LockBody`; unknown fields are ignored
//! ```

use super::DecodeError;

/// Magic at the start of every lock object.
pub const MAGIC: &[u8; 8] = b"LARDERLK";

/// Shared (snapshot, restore, check) or exclusive (forget, prune, repair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LockKind {
    /// Any number of shared holders at once; none while an exclusive lock is held.
    Shared,
    /// One holder, alone.
    Exclusive,
}

/// The decrypted body of a lock object.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LockBody {
    /// Shared or exclusive.
    pub kind: LockKind,
    /// The holder's hostname.
    pub host: String,
    /// The holder's process id on that host.
    pub pid: u32,
    /// What the holder is doing (`snapshot`, `prune`, …).
    pub command: String,
    /// When the lock was first taken.
    pub created: jiff::Timestamp,
    /// When this object was written: the holder writes a new one at least every
    /// `REFRESH_SECS` and deletes the previous one.
    pub refreshed: jiff::Timestamp,
    /// Random bytes (hex) so that two locks taken in the same nanosecond differ.
    pub nonce: String,
}

impl LockBody {
    /// Encodes the plaintext body.
    pub fn encode_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("lock serializes")
    }

    /// Decodes the plaintext body.
    pub fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
