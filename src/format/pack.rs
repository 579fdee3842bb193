//! `format-spec/pack.md`: a pack file and the header at its end.
//!
//! ```text
//! pack    = magic "LARDERPK" ‖ version u16 ‖ sealed blob* ‖ sealed header ‖ header_len u32
//! header  = count u32 ‖ entry[count]                  (plaintext, sealed as ObjectKind::PackHeader)
//! entry   = id [32] ‖ kind u8 ‖ compression u8 ‖ offset u64 ‖ stored_len u32 ‖ raw_len u32
//! ```

use super::{BlobKind, Compression, DecodeError, PREFIX_LEN, Reader};
use crate::id::{BlobId, ID_LEN};

/// Magic at the start of every pack.
pub const MAGIC: &[u8; 8] = b"LARDERPK";

/// Bytes of one encoded [`BlobEntry`].
pub const ENTRY_LEN: usize = ID_LEN + 1 + 1 + 8 + 4 + 4;

/// Bytes of the trailer: the sealed header's length.
pub const TRAILER_LEN: usize = 4;

/// Where the first blob starts.
pub const FIRST_BLOB_OFFSET: u64 = PREFIX_LEN as u64;

/// One blob's place in a pack; the same record appears in the pack header and in index
/// segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BlobEntry {
    /// The blob's id.
    pub id: BlobId,
    /// Its kind.
    pub kind: BlobKind,
    /// How its payload was encoded before sealing.
    pub compression: Compression,
    /// Byte offset of the sealed blob from the start of the pack.
    pub offset: u64,
    /// Length of the sealed blob (nonce, ciphertext and tag).
    pub stored_len: u32,
    /// Length of the plaintext.
    pub raw_len: u32,
}

impl BlobEntry {
    /// Appends the encoded entry.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.id.as_bytes());
        out.push(self.kind.code());
        out.push(self.compression.code());
        out.extend_from_slice(&self.offset.to_le_bytes());
        out.extend_from_slice(&self.stored_len.to_le_bytes());
        out.extend_from_slice(&self.raw_len.to_le_bytes());
    }

    /// Reads one entry.
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let e = Self {
            id: BlobId(r.id("blob id")?),
            kind: BlobKind::from_code(r.u8("blob kind")?)?,
            compression: Compression::from_code(r.u8("compression")?)?,
            offset: r.u64("offset")?,
            stored_len: r.u32("stored length")?,
            raw_len: r.u32("raw length")?,
        };
        // `range()` adds the two: a forged offset near 2^64 must not overflow it.
        if e.offset.checked_add(u64::from(e.stored_len)).is_none() {
            return Err(DecodeError::Invalid("blob offset"));
        }
        Ok(e)
    }

    /// The byte range of the sealed blob within its pack (saturating: decoded entries are
    /// checked not to overflow).
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset.saturating_add(u64::from(self.stored_len))
    }
}

/// The plaintext of a pack header: every blob in the pack, in file order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PackHeader {
    /// The blobs.
    pub blobs: Vec<BlobEntry>,
}

impl PackHeader {
    /// Encodes the plaintext header.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.blobs.len() * ENTRY_LEN);
        let count = u32::try_from(self.blobs.len()).expect("a pack holds fewer than 2^32 blobs");
        out.extend_from_slice(&count.to_le_bytes());
        for b in &self.blobs {
            b.encode_into(&mut out);
        }
        out
    }

    /// Decodes a plaintext header, checking that every blob lies inside `blobs_end` (the
    /// offset where the sealed header starts) and that blobs do not overlap.
    pub fn decode(bytes: &[u8], blobs_end: u64) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let n = r.count(ENTRY_LEN, "blob count")?;
        let mut blobs = Vec::with_capacity(n);
        let mut next = FIRST_BLOB_OFFSET;
        for _ in 0..n {
            let e = BlobEntry::decode_from(&mut r)?;
            if e.offset < next || e.range().end > blobs_end {
                return Err(DecodeError::Invalid("blob offset"));
            }
            next = e.range().end;
            blobs.push(e);
        }
        r.finish()?;
        Ok(Self { blobs })
    }
}

/// Splits a whole pack into (blob area end, sealed header) after checking its prefix and
/// trailer.
pub fn split_trailer(pack: &[u8]) -> Result<(u64, &[u8]), DecodeError> {
    super::take_prefix(pack, MAGIC)?;
    let len = pack.len();
    if len < PREFIX_LEN + TRAILER_LEN {
        return Err(DecodeError::Truncated("pack trailer"));
    }
    let trailer = <[u8; TRAILER_LEN]>::try_from(&pack[len - TRAILER_LEN..])
        .map_err(|_| DecodeError::Truncated("pack trailer"))?;
    let header_len = usize::try_from(u32::from_le_bytes(trailer))
        .map_err(|_| DecodeError::Invalid("header length"))?;
    let header_start = (len - TRAILER_LEN)
        .checked_sub(header_len)
        .filter(|s| *s >= PREFIX_LEN)
        .ok_or(DecodeError::Invalid("header length"))?;
    Ok((
        u64::try_from(header_start).map_err(|_| DecodeError::Invalid("pack length"))?,
        &pack[header_start..len - TRAILER_LEN],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(offset: u64, len: u32) -> BlobEntry {
        BlobEntry {
            id: BlobId([offset.to_le_bytes()[0]; 32]),
            kind: BlobKind::Data,
            compression: Compression::Zstd,
            offset,
            stored_len: len,
            raw_len: 100,
        }
    }

    #[test]
    fn header_round_trip() {
        let h = PackHeader {
            blobs: vec![entry(10, 50), entry(60, 40)],
        };
        assert_eq!(PackHeader::decode(&h.encode(), 100).unwrap(), h);
    }

    #[test]
    fn entry_range_cannot_overflow() {
        let h = PackHeader {
            blobs: vec![entry(u64::MAX - 5, 50)],
        };
        assert!(matches!(
            PackHeader::decode(&h.encode(), u64::MAX),
            Err(DecodeError::Invalid(_))
        ));
    }

    #[test]
    fn header_rejects_overlap_and_overrun() {
        let h = PackHeader {
            blobs: vec![entry(10, 50), entry(40, 40)],
        };
        assert!(PackHeader::decode(&h.encode(), 1000).is_err());
        let h = PackHeader {
            blobs: vec![entry(10, 50)],
        };
        assert!(PackHeader::decode(&h.encode(), 59).is_err());
    }
}
