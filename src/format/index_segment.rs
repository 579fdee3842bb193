//! `format-spec/index-segment.md`: which blob lives in which pack.
//!
//! ```text
//! object  = magic "LARDERIX" ‖ version u16 ‖ sealed(body)      (ObjectKind::IndexSegment)
//! body    = pack_count u32 ‖ pack[pack_count]
//! pack    = pack_id [32] ‖ pack_len u64 ‖ blob_count u32 ‖ entry[blob_count]   (entry: pack.md)
//! ```

use super::pack::{BlobEntry, ENTRY_LEN};
use super::{DecodeError, Reader};
use crate::id::{ID_LEN, PackId};

/// Magic at the start of every index segment.
pub const MAGIC: &[u8; 8] = b"LARDERIX";

/// One pack and the blobs it holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IndexedPack {
    /// The pack.
    pub id: PackId,
    /// Its length in bytes.
    pub length: u64,
    /// Its blobs, as in its header.
    pub blobs: Vec<BlobEntry>,
}

/// The plaintext of an index segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndexSegment {
    /// The packs it names.
    pub packs: Vec<IndexedPack>,
}

const PACK_RECORD_MIN: usize = ID_LEN + 8 + 4;

impl IndexSegment {
    /// Encodes the plaintext body.
    pub fn encode(&self) -> Vec<u8> {
        let blobs: usize = self.packs.iter().map(|p| p.blobs.len()).sum();
        let mut out =
            Vec::with_capacity(4 + self.packs.len() * PACK_RECORD_MIN + blobs * ENTRY_LEN);
        let n = u32::try_from(self.packs.len()).expect("a segment names fewer than 2^32 packs");
        out.extend_from_slice(&n.to_le_bytes());
        for p in &self.packs {
            out.extend_from_slice(p.id.as_bytes());
            out.extend_from_slice(&p.length.to_le_bytes());
            let n = u32::try_from(p.blobs.len()).expect("a pack holds fewer than 2^32 blobs");
            out.extend_from_slice(&n.to_le_bytes());
            for b in &p.blobs {
                b.encode_into(&mut out);
            }
        }
        out
    }

    /// Decodes a plaintext body; every blob must lie inside its pack's length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.count(PACK_RECORD_MIN, "pack count")?;
        let mut packs = Vec::with_capacity(n);
        for _ in 0..n {
            let id = PackId(r.id("pack id")?);
            let length = r.u64("pack length")?;
            let m = r.count(ENTRY_LEN, "blob count")?;
            let mut blobs = Vec::with_capacity(m);
            for _ in 0..m {
                let e = BlobEntry::decode_from(&mut r)?;
                if e.range().end > length {
                    return Err(DecodeError::Invalid("blob range beyond pack length"));
                }
                blobs.push(e);
            }
            packs.push(IndexedPack { id, length, blobs });
        }
        r.finish()?;
        Ok(Self { packs })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BlobKind, Compression};
    use crate::id::BlobId;

    #[test]
    fn round_trip() {
        let s = IndexSegment {
            packs: vec![IndexedPack {
                id: PackId([3; 32]),
                length: 1000,
                blobs: vec![BlobEntry {
                    id: BlobId([4; 32]),
                    kind: BlobKind::ContentList,
                    compression: Compression::None,
                    offset: 10,
                    stored_len: 90,
                    raw_len: 50,
                }],
            }],
        };
        assert_eq!(IndexSegment::decode(&s.encode()).unwrap(), s);
        let mut bad = s.clone();
        bad.packs[0].length = 50;
        assert!(IndexSegment::decode(&bad.encode()).is_err());
    }
}
