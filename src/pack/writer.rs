//! Collects sealed blobs into a pack and closes it once it reaches the target size.
//!
//! Data path: seal → **pack writer** → backend. Pure: builds bytes, does no I/O; the repo
//! writer uploads what it returns.

use crate::blob::SealedBlob;
use crate::crypto::Keys;
use crate::format::ObjectKind;
use crate::format::pack::{self, BlobEntry, PackHeader};
use crate::id::{PackId, object_hash};

/// A closed pack, ready to store under `packs/`.
#[derive(Debug)]
pub struct FinishedPack {
    /// BLAKE3 of `bytes`.
    pub id: PackId,
    /// The whole pack.
    pub bytes: Vec<u8>,
    /// Its blobs, as its header lists them.
    pub blobs: Vec<BlobEntry>,
}

/// Builds one pack at a time.
#[derive(Debug)]
pub struct PackWriter {
    target: usize,
    buf: Vec<u8>,
    blobs: Vec<BlobEntry>,
}

impl PackWriter {
    /// A writer that closes packs once their blobs reach `target` bytes.
    pub fn new(target: usize) -> Self {
        Self {
            target,
            buf: Vec::new(),
            blobs: Vec::new(),
        }
    }

    /// Bytes of blobs in the open pack.
    pub fn pending_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Appends a blob; returns the pack it closed, if it reached the target size.
    pub fn add(&mut self, keys: &Keys, blob: SealedBlob) -> Option<FinishedPack> {
        if self.buf.is_empty() {
            self.buf.reserve(self.target + self.target / 8);
            crate::format::put_prefix(&mut self.buf, pack::MAGIC);
        }
        let offset = self.buf.len() as u64;
        let stored_len = u32::try_from(blob.bytes.len()).expect("a sealed blob is below 4 GiB");
        self.buf.extend_from_slice(&blob.bytes);
        self.blobs.push(BlobEntry {
            id: blob.id,
            kind: blob.kind,
            compression: blob.compression,
            offset,
            stored_len,
            raw_len: blob.raw_len,
        });
        if self.buf.len() >= self.target {
            self.finish(keys)
        } else {
            None
        }
    }

    /// Closes the open pack, if it holds any blob.
    pub fn finish(&mut self, keys: &Keys) -> Option<FinishedPack> {
        if self.blobs.is_empty() {
            return None;
        }
        let mut bytes = std::mem::take(&mut self.buf);
        let blobs = std::mem::take(&mut self.blobs);
        let header = PackHeader { blobs }.encode();
        let start = bytes.len();
        keys.seal_into(
            &mut bytes,
            &crate::format::object_ad(ObjectKind::PackHeader, keys.repo_id()),
            &header,
        );
        let header_len = u32::try_from(bytes.len() - start).expect("a pack header is below 4 GiB");
        bytes.extend_from_slice(&header_len.to_le_bytes());
        let blobs = PackHeader::decode(&header, start as u64)
            .expect("a header just encoded decodes")
            .blobs;
        Some(FinishedPack {
            id: PackId(object_hash(&bytes)),
            bytes,
            blobs,
        })
    }
}
