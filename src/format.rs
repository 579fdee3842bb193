//! Pure encode/decode of every stored object, one file per `format-spec/` page. No I/O and
//! no cryptography here: callers seal and unseal; these functions only lay out bytes.
//!
//! Rules shared by all pages (`format-spec/repository.md`): little-endian, explicit widths,
//! every object starts with an 8-byte magic and a `u16` format version; `decode` checks magic,
//! version and lengths before it allocates, and an unknown version is an error naming it.

pub mod config;
pub mod content_list;
pub mod event;
pub mod index_segment;
pub mod key_slot;
pub mod lock;
pub mod pack;
pub mod snapshot;
pub mod tree;

use crate::id::{BlobId, ID_LEN, RepoId};

/// The repository format version this build writes and reads.
pub const VERSION: u16 = 1;

/// Bytes of an object's clear prefix: magic (8) and version (2).
pub const PREFIX_LEN: usize = 8 + 2;

/// Why bytes could not be decoded. Never carries the bytes themselves.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The object does not start with the magic its kind requires.
    #[error("bad magic (expected {expected})")]
    BadMagic {
        /// The magic expected, as text.
        expected: &'static str,
    },
    /// A format version this build does not know.
    #[error("unsupported format version {0} (this larder reads version {VERSION})")]
    UnsupportedVersion(u16),
    /// The bytes end before a field does.
    #[error("truncated at {0}")]
    Truncated(&'static str),
    /// Bytes follow the last field.
    #[error("{0} unexpected trailing bytes")]
    TrailingBytes(usize),
    /// A field holds a value the format does not allow.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// A JSON body did not parse.
    #[error("invalid body: {0}")]
    Json(#[from] serde_json::Error),
}

/// The kinds of whole objects that are sealed; bound into their associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    /// `config`
    Config = 1,
    /// The header at the end of a pack.
    PackHeader = 2,
    /// `index/<id>`
    IndexSegment = 3,
    /// `snapshots/<id>`
    Snapshot = 4,
    /// `keys/<id>` (the wrapped master key)
    KeySlot = 5,
    /// `locks/<id>`
    Lock = 6,
    /// `events/<id>`
    Event = 7,
}

/// Which kind of blob a blob is; bound into its id and its seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum BlobKind {
    /// A chunk of a stream or file.
    Data = 1,
    /// A content list: the ordered ids of a stream (`format-spec/content-list.md`).
    ContentList = 2,
    /// A directory listing with metadata (`format-spec/tree.md`).
    Tree = 3,
}

impl BlobKind {
    /// The on-disk byte.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses the on-disk byte.
    pub fn from_code(c: u8) -> Result<Self, DecodeError> {
        match c {
            1 => Ok(BlobKind::Data),
            2 => Ok(BlobKind::ContentList),
            3 => Ok(BlobKind::Tree),
            _ => Err(DecodeError::Invalid("blob kind")),
        }
    }
}

/// How a blob's payload was encoded before sealing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum Compression {
    /// Stored as is (compression did not make it smaller).
    None = 0,
    /// One zstd frame.
    Zstd = 1,
}

impl Compression {
    /// The on-disk byte.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// Parses the on-disk byte.
    pub fn from_code(c: u8) -> Result<Self, DecodeError> {
        match c {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Zstd),
            _ => Err(DecodeError::Invalid("compression")),
        }
    }
}

/// Domain tag at the start of all associated data.
const AD_TAG: &[u8; 6] = b"larder";

/// Associated data for a sealed object: `"larder" ‖ version u16 ‖ kind u8 ‖ repo_id`.
pub fn object_ad(kind: ObjectKind, repo: &RepoId) -> Vec<u8> {
    let mut ad = Vec::with_capacity(AD_TAG.len() + 2 + 1 + ID_LEN);
    ad.extend_from_slice(AD_TAG);
    ad.extend_from_slice(&VERSION.to_le_bytes());
    ad.push(kind as u8);
    ad.extend_from_slice(repo.as_bytes());
    ad
}

/// Length of a blob's associated data.
pub const BLOB_AD_LEN: usize = 6 + 2 + 1 + ID_LEN + 1 + ID_LEN + 1;

/// Associated data for a sealed blob:
/// `"larder" ‖ version u16 ‖ 0x10 ‖ repo_id ‖ blob kind u8 ‖ blob id ‖ compression u8`.
pub fn blob_ad(
    repo: &RepoId,
    kind: BlobKind,
    id: &BlobId,
    compression: Compression,
) -> [u8; BLOB_AD_LEN] {
    let mut ad = [0u8; BLOB_AD_LEN];
    let mut w = ad.as_mut_slice();
    for part in [
        AD_TAG.as_slice(),
        &VERSION.to_le_bytes(),
        &[BLOB_AD_KIND],
        repo.as_bytes(),
        &[kind.code()],
        id.as_bytes(),
        &[compression.code()],
    ] {
        let (head, tail) = w.split_at_mut(part.len());
        head.copy_from_slice(part);
        w = tail;
    }
    ad
}

/// The object-kind byte used in blob associated data (distinct from every `ObjectKind`).
const BLOB_AD_KIND: u8 = 0x10;

/// Writes an object's clear prefix: magic and format version.
pub fn put_prefix(out: &mut Vec<u8>, magic: &[u8; 8]) {
    out.extend_from_slice(magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
}

/// Checks an object's clear prefix and returns what follows it.
pub fn take_prefix<'a>(
    bytes: &'a [u8],
    magic: &'static [u8; 8],
) -> Result<Reader<'a>, DecodeError> {
    let mut r = Reader::new(bytes);
    let m: [u8; 8] = r.array("magic")?;
    if &m != magic {
        return Err(DecodeError::BadMagic {
            expected: std::str::from_utf8(magic).unwrap_or("?"),
        });
    }
    let v = r.u16("version")?;
    if v != VERSION {
        return Err(DecodeError::UnsupportedVersion(v));
    }
    Ok(r)
}

/// Builds a sealed object: clear prefix followed by the sealed body (index segments,
/// snapshots).
pub fn wrap(magic: &[u8; 8], sealed: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX_LEN + sealed.len());
    put_prefix(&mut out, magic);
    out.extend_from_slice(sealed);
    out
}

/// Checks a sealed object's prefix and returns the sealed body.
pub fn unwrap<'a>(bytes: &'a [u8], magic: &'static [u8; 8]) -> Result<&'a [u8], DecodeError> {
    Ok(take_prefix(bytes, magic)?.rest())
}

/// A checked little-endian cursor over untrusted bytes. Every read names the field it was
/// reading so that a truncation error says where.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Starts at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    pub fn bytes(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.rest.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(N, field)?;
        <[u8; N]>::try_from(b).map_err(|_| DecodeError::Truncated(field))
    }

    /// One byte.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// A little-endian `u16`.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(field)?))
    }

    /// A little-endian `u32`.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(field)?))
    }

    /// A little-endian `u64`.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    /// A little-endian `i64`.
    pub fn i64(&mut self, field: &'static str) -> Result<i64, DecodeError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    /// A 32-byte id.
    pub fn id(&mut self, field: &'static str) -> Result<[u8; ID_LEN], DecodeError> {
        self.array(field)
    }

    /// A count of records of `record_len` bytes each, checked against the bytes left so
    /// that a forged count cannot make the decoder allocate more than the input holds.
    pub fn count(&mut self, record_len: usize, field: &'static str) -> Result<usize, DecodeError> {
        let n = usize::try_from(self.u32(field)?).map_err(|_| DecodeError::Invalid(field))?;
        match n.checked_mul(record_len) {
            Some(need) if need <= self.rest.len() => Ok(n),
            _ => Err(DecodeError::Truncated(field)),
        }
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    /// Fails unless every byte was read.
    pub fn finish(self) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.rest.len()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_rejects_truncation_and_huge_counts() {
        let mut r = Reader::new(&[1, 0, 0]);
        assert!(matches!(r.u32("x"), Err(DecodeError::Truncated("x"))));
        let bytes = u32::MAX.to_le_bytes();
        let mut r = Reader::new(&bytes);
        assert!(r.count(50, "entries").is_err());
    }

    #[test]
    fn prefix_checks_magic_and_version() {
        let mut v = Vec::new();
        put_prefix(&mut v, b"LARDERXX");
        assert!(take_prefix(&v, b"LARDERXX").is_ok());
        assert!(matches!(
            take_prefix(&v, b"LARDERYY"),
            Err(DecodeError::BadMagic { .. })
        ));
        v[8] = 9;
        assert!(matches!(
            take_prefix(&v, b"LARDERXX"),
            Err(DecodeError::UnsupportedVersion(9))
        ));
    }

    #[test]
    fn blob_ad_layout() {
        let ad = blob_ad(
            &RepoId([7; 32]),
            BlobKind::Data,
            &BlobId([9; 32]),
            Compression::Zstd,
        );
        assert_eq!(&ad[..6], b"larder");
        assert_eq!(ad[8], 0x10);
        assert_eq!(ad[BLOB_AD_LEN - 1], 1);
    }
}
