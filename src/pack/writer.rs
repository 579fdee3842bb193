//! Collects sealed blobs into a pack and closes it once it reaches the target size.
//!
//! Data path: seal → **pack writer** → backend. Blobs are written through to a staged object
//! as they come (a local repository never holds a pack in memory) while the pack's BLAKE3
//! name is computed on the way; closing appends the sealed header and hands the staged object
//! to the caller, who commits it under its name.

use crate::backend::{Backend, Prefix, StagedObject};
use crate::blob::SealedBlob;
use crate::crypto::Keys;
use crate::error::Result;
use crate::format::ObjectKind;
use crate::format::pack::{self, BlobEntry, PackHeader};
use crate::id::PackId;

/// A closed pack, written but not yet committed under its name.
#[derive(Debug)]
pub struct FinishedPack {
    /// BLAKE3 of the pack's bytes.
    pub id: PackId,
    /// Its length in bytes.
    pub length: u64,
    /// Its blobs, as its header lists them.
    pub blobs: Vec<BlobEntry>,
    /// The written bytes; `commit(&ObjectKey::pack(&id))` makes them the pack.
    pub staged: Box<dyn StagedObject>,
}

#[derive(Debug)]
struct OpenPack {
    staged: Box<dyn StagedObject>,
    hash: blake3::Hasher,
    length: u64,
    blobs: Vec<BlobEntry>,
}

impl OpenPack {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.staged.write(bytes)?;
        self.hash.update(bytes);
        self.length += bytes.len() as u64;
        Ok(())
    }
}

/// Builds one pack at a time.
#[derive(Debug)]
pub struct PackWriter {
    target: u64,
    open: Option<OpenPack>,
}

impl PackWriter {
    /// A writer that closes packs once their blobs reach `target` bytes.
    pub fn new(target: u64) -> Self {
        Self { target, open: None }
    }

    /// Appends a blob; returns the pack it closed, if it reached the target size.
    pub fn add(
        &mut self,
        backend: &dyn Backend,
        keys: &Keys,
        blob: &SealedBlob,
    ) -> Result<Option<FinishedPack>> {
        let p = match &mut self.open {
            Some(p) => p,
            None => {
                let mut p = OpenPack {
                    staged: backend.stage(Prefix::Packs)?,
                    hash: blake3::Hasher::new(),
                    length: 0,
                    blobs: Vec::new(),
                };
                let mut prefix = Vec::with_capacity(crate::format::PREFIX_LEN);
                crate::format::put_prefix(&mut prefix, pack::MAGIC);
                p.write(&prefix)?;
                self.open.insert(p)
            }
        };
        let offset = p.length;
        p.write(&blob.bytes)?;
        p.blobs.push(BlobEntry {
            id: blob.id,
            kind: blob.kind,
            compression: blob.compression,
            offset,
            stored_len: u32::try_from(blob.bytes.len()).expect("a sealed blob is below 4 GiB"),
            raw_len: blob.raw_len,
        });
        if p.length >= self.target {
            self.finish(keys)
        } else {
            Ok(None)
        }
    }

    /// Closes the open pack, if any: appends its sealed header and trailer.
    pub fn finish(&mut self, keys: &Keys) -> Result<Option<FinishedPack>> {
        let Some(mut p) = self.open.take() else {
            return Ok(None);
        };
        let blobs_end = p.length;
        let blobs = std::mem::take(&mut p.blobs);
        let header = PackHeader { blobs }.encode();
        let mut tail = Vec::with_capacity(header.len() + crate::crypto::SEAL_OVERHEAD + 4);
        keys.seal_into(
            &mut tail,
            &crate::format::object_ad(ObjectKind::PackHeader, keys.repo_id()),
            &header,
        );
        let header_len = u32::try_from(tail.len()).expect("a pack header is below 4 GiB");
        tail.extend_from_slice(&header_len.to_le_bytes());
        p.write(&tail)?;
        let blobs = PackHeader::decode(&header, blobs_end)
            .expect("a header just encoded decodes")
            .blobs;
        Ok(Some(FinishedPack {
            id: PackId(*p.hash.finalize().as_bytes()),
            length: p.length,
            blobs,
            staged: p.staged,
        }))
    }
}
