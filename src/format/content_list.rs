//! `format-spec/content-list.md`: one content-list blob, a node of a stream's list tree.
//!
//! ```text
//! body   = level u8 ‖ count u32 ‖ entry[count]
//! entry  = id [32] ‖ size u64
//! ```
//! At level 0 entries are data chunks and `size` is the chunk's length; at level n > 0 they
//! are content-list blobs of level n-1 and `size` is the stream bytes they cover.

use super::{DecodeError, Reader};
use crate::id::{BlobId, ID_LEN};

/// Bytes of one entry.
pub const ENTRY_LEN: usize = ID_LEN + 8;

/// The deepest list tree a decoder accepts (a fan-out of 2 at 8 levels of 2^16 is still
/// beyond any stream; this bounds recursion on forged input).
pub const MAX_LEVEL: u8 = 16;

/// One entry of a content list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct ListEntry {
    /// A data chunk (level 0) or a lower content list (level > 0).
    pub id: BlobId,
    /// Stream bytes it covers.
    pub size: u64,
}

/// A decoded content-list blob.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ContentListBlob {
    /// 0 for a list of data chunks.
    pub level: u8,
    /// The entries, in stream order.
    pub entries: Vec<ListEntry>,
}

impl ContentListBlob {
    /// Encodes the blob's plaintext.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(5 + self.entries.len() * ENTRY_LEN);
        out.push(self.level);
        let n =
            u32::try_from(self.entries.len()).expect("a list blob holds fewer than 2^32 entries");
        out.extend_from_slice(&n.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(e.id.as_bytes());
            out.extend_from_slice(&e.size.to_le_bytes());
        }
        out
    }

    /// Decodes a blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let level = r.u8("level")?;
        if level > MAX_LEVEL {
            return Err(DecodeError::Invalid("content list level"));
        }
        let n = r.count(ENTRY_LEN, "entry count")?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            entries.push(ListEntry {
                id: BlobId(r.id("entry id")?),
                size: r.u64("entry size")?,
            });
        }
        r.finish()?;
        Ok(Self { level, entries })
    }

    /// Stream bytes this blob covers; `None` on overflow (forged sizes).
    pub fn total(&self) -> Option<u64> {
        self.entries
            .iter()
            .try_fold(0u64, |a, e| a.checked_add(e.size))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_limits() {
        let b = ContentListBlob {
            level: 1,
            entries: vec![ListEntry {
                id: BlobId([5; 32]),
                size: 1 << 40,
            }],
        };
        assert_eq!(ContentListBlob::decode(&b.encode()).unwrap(), b);
        let mut bad = b.encode();
        bad[0] = MAX_LEVEL + 1;
        assert!(ContentListBlob::decode(&bad).is_err());
        assert!(ContentListBlob::decode(&b.encode()[..10]).is_err());
    }
}
