//! The repo writer: packs → index segment → (the caller's) snapshot, in that order
//! (invariant 2).
//!
//! Sealed blobs go into a [`PackWriter`]; each closed pack is handed to an upload thread
//! that stores it and, every [`INDEX_FLUSH_BLOBS`] blobs and at the end, stores an index
//! segment naming the packs stored so far. Only once a segment is stored does the catalog
//! learn its blobs, so a crash can never leave the catalog vouching for data that is not in
//! the repository. Blobs written but not yet indexed are kept in a bounded in-memory set so
//! that they are not stored twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};

use super::Repo;
use super::object;
use crate::backend::{Backend, ObjectKey, StagedObject};
use crate::blob::{self, SealedBlob};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::config::ChunkerParams;
use crate::format::index_segment::{IndexSegment, IndexedPack};
use crate::id::{BlobId, IndexId, PackId};
use crate::pack::writer::{FinishedPack, PackWriter};

/// Blobs per index segment before it is written mid-run (about 3.2 MiB of segment).
pub const INDEX_FLUSH_BLOBS: usize = 64 * 1024;

enum Upload {
    Pack(FinishedPack),
    Flush,
}

struct Indexed {
    segment: IndexId,
    packs: Vec<IndexedPack>,
}

/// What a writer stored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WriteStats {
    /// Blobs stored.
    pub blobs: u64,
    /// Sealed bytes stored in packs.
    pub stored_bytes: u64,
    /// Plaintext bytes of the blobs stored.
    pub raw_bytes: u64,
    /// Packs stored.
    pub packs: u64,
    /// Index segments stored.
    pub index_segments: u64,
}

/// Stores blobs into a repository. Must be ended with [`RepoWriter::finish`]; dropping it
/// stores the packs already closed and nothing else.
pub struct RepoWriter<'r> {
    repo: &'r mut Repo,
    keys: Arc<Keys>,
    packs: PackWriter,
    pending: HashSet<BlobId>,
    zstd_level: i32,
    to_upload: Option<Sender<Upload>>,
    indexed: Receiver<Result<Indexed>>,
    uploader: Option<JoinHandle<()>>,
    stats: WriteStats,
}

impl std::fmt::Debug for RepoWriter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoWriter")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<'r> RepoWriter<'r> {
    /// A writer compressing at `zstd_level` (the repository default if `None`).
    pub fn new(repo: &'r mut Repo, zstd_level: Option<i32>) -> Self {
        let keys = repo.keys().clone();
        let backend = repo.backend().clone();
        let zstd_level = zstd_level.unwrap_or(repo.config().zstd_level);
        let pack_size = u64::from(repo.config().pack_size);
        // A rendezvous channel: at most one pack being written and one being committed.
        let (to_upload, uploads) = bounded(0);
        let (indexed_tx, indexed) = unbounded();
        let k = keys.clone();
        let uploader = std::thread::Builder::new()
            .name("larder-upload".into())
            .spawn(move || upload_loop(backend.as_ref(), &k, uploads, indexed_tx))
            .expect("spawning the upload thread");
        Self {
            repo,
            keys,
            packs: PackWriter::new(pack_size),
            pending: HashSet::new(),
            zstd_level,
            to_upload: Some(to_upload),
            indexed,
            uploader: Some(uploader),
            stats: WriteStats::default(),
        }
    }

    /// The keys blobs are sealed with.
    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }

    /// The repository's chunker parameters.
    pub fn chunker_params(&self) -> ChunkerParams {
        self.repo.config().chunker
    }

    /// The zstd level in use.
    pub fn zstd_level(&self) -> i32 {
        self.zstd_level
    }

    /// The repository being written (for reading what is already stored, such as a parent
    /// snapshot's trees).
    pub fn repo(&self) -> &Repo {
        self.repo
    }

    /// Claims `id` for storing: `true` if neither the repository nor this writer has it yet
    /// (the caller must then seal and add it), `false` if it is stored or claimed already.
    pub fn claim(&mut self, id: &BlobId) -> Result<bool> {
        if self.pending.contains(id) || self.repo.catalog().contains(id)? {
            return Ok(false);
        }
        self.pending.insert(*id);
        Ok(true)
    }

    /// [`RepoWriter::claim`] for a batch of ids, in order; returns which the caller must
    /// store. Repeats within the batch are claimed once.
    pub fn claim_many(&mut self, ids: &[BlobId]) -> Result<Vec<bool>> {
        let stored = self.repo.catalog().contains_many(ids)?;
        Ok(ids
            .iter()
            .zip(stored)
            .map(|(id, stored)| !stored && self.pending.insert(*id))
            .collect())
    }

    /// Adds a sealed blob (claimed before) to the open pack.
    pub fn add_sealed(&mut self, blob: SealedBlob) -> Result<()> {
        self.stats.blobs += 1;
        self.stats.stored_bytes += blob.bytes.len() as u64;
        self.stats.raw_bytes += u64::from(blob.raw_len);
        let closed = self
            .packs
            .add(self.repo.backend().as_ref(), &self.keys, &blob)?;
        drop(blob);
        if let Some(pack) = closed {
            self.send(Upload::Pack(pack))?;
        }
        self.merge_indexed(false)
    }

    /// Stores one blob if it is new; returns its id (the single-blob path, for content
    /// lists).
    pub fn store_blob(&mut self, kind: BlobKind, plain: &[u8]) -> Result<BlobId> {
        let id = self.keys.blob_id(kind, plain);
        if self.claim(&id)? {
            let sealed = blob::seal(&self.keys, kind, id, plain, self.zstd_level)
                .map_err(|e| e.sealing(id))?;
            self.add_sealed(sealed)?;
        }
        Ok(id)
    }

    /// Closes the open pack, stores it and a final index segment, merges everything into the
    /// catalog and returns what was stored. After this returns, every blob added is durable
    /// and indexed: a snapshot may refer to them.
    pub fn finish(mut self) -> Result<WriteStats> {
        if let Some(pack) = self.packs.finish(&self.keys)? {
            self.send(Upload::Pack(pack))?;
        }
        self.send(Upload::Flush)?;
        self.to_upload = None;
        if let Some(t) = self.uploader.take() {
            t.join().map_err(|_| {
                Error::Internal("the upload thread panicked; nothing was indexed".into())
            })?;
        }
        self.merge_indexed(true)?;
        Ok(self.stats)
    }

    fn send(&mut self, u: Upload) -> Result<()> {
        let sent = self.to_upload.as_ref().map(|t| t.send(u).is_ok());
        if sent == Some(true) {
            return Ok(());
        }
        // The upload thread stopped: it reported why.
        self.merge_indexed(true)?;
        Err(Error::Internal("the upload thread stopped".into()))
    }

    /// Merges stored index segments into the catalog and forgets their blobs from the
    /// pending set. With `all`, waits for every report the upload thread will send.
    fn merge_indexed(&mut self, all: bool) -> Result<()> {
        loop {
            let next = if all {
                match self.indexed.recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            } else {
                match self.indexed.try_recv() {
                    Ok(r) => r,
                    Err(_) => return Ok(()),
                }
            };
            let Indexed { segment, packs } = next?;
            self.repo.catalog_mut().add_segment(&segment, &packs)?;
            for p in &packs {
                self.stats.packs += 1;
                for b in &p.blobs {
                    self.pending.remove(&b.id);
                }
            }
            self.stats.index_segments += 1;
        }
    }
}

/// Commits a pack under its name; a pack already there has the same bytes (its name is their
/// hash).
fn commit_pack(staged: Box<dyn StagedObject>, id: &PackId) -> Result<()> {
    match staged.commit(&ObjectKey::pack(id)) {
        Ok(()) | Err(crate::backend::Error::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Stores packs as they come and an index segment every `INDEX_FLUSH_BLOBS` blobs and on
/// `Flush`. Stops at the first error, after reporting it.
fn upload_loop(
    b: &dyn Backend,
    keys: &Keys,
    uploads: Receiver<Upload>,
    indexed: Sender<Result<Indexed>>,
) {
    let mut acc: Vec<IndexedPack> = Vec::new();
    let mut acc_blobs = 0usize;
    let flush = |acc: &mut Vec<IndexedPack>| -> Result<()> {
        if acc.is_empty() {
            return Ok(());
        }
        let seg = IndexSegment {
            packs: std::mem::take(acc),
        };
        let segment = object::store_index_segment(b, keys, &seg)?;
        let _ = indexed.send(Ok(Indexed {
            segment,
            packs: seg.packs,
        }));
        Ok(())
    };
    for u in uploads {
        let r = match u {
            Upload::Pack(p) => commit_pack(p.staged, &p.id).and_then(|()| {
                acc_blobs += p.blobs.len();
                acc.push(IndexedPack {
                    id: p.id,
                    length: p.length,
                    blobs: p.blobs,
                });
                if acc_blobs >= INDEX_FLUSH_BLOBS {
                    acc_blobs = 0;
                    flush(&mut acc)
                } else {
                    Ok(())
                }
            }),
            Upload::Flush => {
                acc_blobs = 0;
                flush(&mut acc)
            }
        };
        if let Err(e) = r {
            let _ = indexed.send(Err(e));
            return;
        }
    }
}
