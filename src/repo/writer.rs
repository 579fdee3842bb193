//! The repo writer: packs → index segment → (the caller's) snapshot, in that order
//! (invariant 2).
//!
//! Sealed blobs go into a [`PackWriter`]; each closed pack is handed to an upload thread
//! that commits up to the backend's `uploads_in_flight` packs at once (while the next pack
//! is being sealed) and, every [`INDEX_FLUSH_BLOBS`] blobs or [`INDEX_FLUSH_PACKS`] packs
//! and at the end, stores an index segment naming the packs committed so far. A run killed
//! midway thus leaves its data indexed up to the last segment, and the next run reuses it. Only once a segment is stored does the catalog
//! learn its blobs, so a crash can never leave the catalog vouching for data that is not in
//! the repository. Blobs written but not yet indexed are kept in a bounded in-memory set so
//! that they are not stored twice.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Packs per index segment before it is written mid-run (1 GiB of default packs): bounds
/// what a killed run leaves unindexed, which the next run would store again.
pub const INDEX_FLUSH_PACKS: usize = 64;

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
        Self::with_flush_packs(repo, zstd_level, INDEX_FLUSH_PACKS)
    }

    /// [`RepoWriter::new`] storing an index segment every `flush_packs` packs (tests).
    pub(crate) fn with_flush_packs(
        repo: &'r mut Repo,
        zstd_level: Option<i32>,
        flush_packs: usize,
    ) -> Self {
        let keys = repo.keys().clone();
        let backend = repo.backend().clone();
        let zstd_level = zstd_level.unwrap_or(repo.config().zstd_level);
        let pack_size = u64::from(repo.config().pack_size);
        let in_flight = backend.io_profile().uploads_in_flight;
        // A rendezvous channel: the pack being written waits for a free committer.
        let (to_upload, uploads) = bounded(0);
        let (indexed_tx, indexed) = unbounded();
        let k = keys.clone();
        let uploader = std::thread::Builder::new()
            .name("larder-upload".into())
            .spawn(move || {
                let every = (INDEX_FLUSH_BLOBS, flush_packs);
                upload_loop(backend.as_ref(), &k, in_flight, every, uploads, indexed_tx)
            })
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

    /// What this writer has stored so far (blobs handed to it, sealed).
    pub fn stats(&self) -> WriteStats {
        self.stats
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

/// Stores packs as they come, up to `in_flight` at once, and an index segment every
/// `flush_blobs` blobs or `flush_packs` packs, and on `Flush`. A segment names only packs whose commit has
/// returned (invariant 2), whatever order the commits finish in. Stops at the first error,
/// after reporting it; commits already running finish (their packs stay unreferenced).
fn upload_loop(
    b: &dyn Backend,
    keys: &Keys,
    in_flight: usize,
    (flush_blobs, flush_packs): (usize, usize),
    uploads: Receiver<Upload>,
    indexed: Sender<Result<Indexed>>,
) {
    // A rendezvous: a pack is handed over only when a committer is free, so at most
    // `in_flight` packs are committing and the writer waits rather than queueing more.
    let (to_commit, commits) = bounded::<FinishedPack>(0);
    let (committed_tx, committed) = unbounded::<Result<IndexedPack>>();
    // Set at the first failed commit: packs handed over after it are dropped, not
    // uploaded, so a dead server costs one round of timeouts, not one per pack.
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        for _ in 0..in_flight.max(1) {
            let (commits, done, failed) = (commits.clone(), committed_tx.clone(), &failed);
            std::thread::Builder::new()
                .name("larder-commit".into())
                .spawn_scoped(s, move || {
                    for p in commits {
                        let r = if failed.load(Ordering::SeqCst) {
                            Err(Error::Internal(
                                "pack not uploaded: an earlier upload failed".into(),
                            ))
                        } else {
                            commit_pack(p.staged, &p.id).map(|()| {
                                tracing::debug!(pack = %p.id, bytes = p.length, blobs = p.blobs.len(), "pack uploaded");
                                IndexedPack {
                                    id: p.id,
                                    length: p.length,
                                    blobs: p.blobs,
                                }
                            })
                        };
                        // Flagged before the error is sent, so the error the loop reports
                        // first is the real one.
                        if r.is_err() {
                            failed.store(true, Ordering::SeqCst);
                        }
                        if done.send(r).is_err() {
                            return;
                        }
                    }
                })
                .expect("spawning a commit thread");
        }
        drop(committed_tx);
        let mut batcher = SegmentBatcher {
            b,
            keys,
            indexed: &indexed,
            acc: Vec::new(),
            blobs: 0,
            flush_blobs,
            flush_packs,
        };
        let mut running = 0usize;
        let r = (|| -> Result<()> {
            for u in &uploads {
                match u {
                    Upload::Pack(p) => {
                        while let Ok(done) = committed.try_recv() {
                            running -= 1;
                            batcher.committed(done?)?;
                        }
                        if to_commit.send(p).is_err() {
                            return Err(Error::Internal("the commit threads stopped".into()));
                        }
                        running += 1;
                    }
                    Upload::Flush => {
                        while running > 0 {
                            let done = committed.recv().map_err(|_| {
                                Error::Internal("the commit threads stopped".into())
                            })?;
                            running -= 1;
                            batcher.committed(done?)?;
                        }
                        batcher.flush()?;
                    }
                }
            }
            Ok(())
        })();
        // Lets the committers finish what they hold and end.
        drop(to_commit);
        if let Err(e) = r {
            let _ = indexed.send(Err(e));
        }
    });
}

/// Collects committed packs and stores index segments naming them.
struct SegmentBatcher<'a> {
    b: &'a dyn Backend,
    keys: &'a Keys,
    indexed: &'a Sender<Result<Indexed>>,
    acc: Vec<IndexedPack>,
    blobs: usize,
    flush_blobs: usize,
    flush_packs: usize,
}

impl SegmentBatcher<'_> {
    fn committed(&mut self, p: IndexedPack) -> Result<()> {
        self.blobs += p.blobs.len();
        self.acc.push(p);
        if self.blobs >= self.flush_blobs || self.acc.len() >= self.flush_packs {
            self.flush()
        } else {
            Ok(())
        }
    }

    fn flush(&mut self) -> Result<()> {
        self.blobs = 0;
        if self.acc.is_empty() {
            return Ok(());
        }
        let seg = IndexSegment {
            packs: std::mem::take(&mut self.acc),
        };
        let segment = object::store_index_segment(self.b, self.keys, &seg)?;
        tracing::debug!(segment = %segment, packs = seg.packs.len(), "index segment stored");
        let _ = self.indexed.send(Ok(Indexed {
            segment,
            packs: seg.packs,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::backend::{ObjectInfo, Prefix};
    use crate::crypto::key_slot::Password;
    use crate::format::key_slot::KdfParams;
    use crate::repo::InitOptions;
    use std::ops::Range;
    use std::path::Path;
    use std::sync::atomic::AtomicUsize;
    use std::sync::{Mutex, OnceLock};
    use std::time::Duration;

    /// A local backend whose pack commits finish out of order (every third one is slow) and
    /// which checks, at every index segment put, that each pack it names is already stored.
    #[derive(Debug)]
    struct Shuffled {
        inner: Arc<LocalBackend>,
        keys: OnceLock<Arc<Keys>>,
        commits: Arc<AtomicUsize>,
        unstored: Mutex<Vec<String>>,
        segments: AtomicUsize,
        fail_commits: bool,
    }

    #[derive(Debug)]
    struct SlowStaged(Box<dyn StagedObject>, Arc<AtomicUsize>, bool);

    impl StagedObject for SlowStaged {
        fn write(&mut self, data: &[u8]) -> Result<(), crate::backend::Error> {
            self.0.write(data)
        }
        fn commit(self: Box<Self>, key: &ObjectKey) -> Result<(), crate::backend::Error> {
            if self.1.fetch_add(1, Ordering::SeqCst) % 3 == 0 || self.2 {
                std::thread::sleep(Duration::from_millis(30));
            }
            if self.2 {
                return Err(crate::backend::Error::Io {
                    op: "write",
                    key: key.to_string(),
                    source: std::io::Error::other("the server went away"),
                });
            }
            self.0.commit(key)
        }
    }

    impl Backend for Shuffled {
        fn location(&self) -> String {
            self.inner.location()
        }
        fn put(&self, key: &ObjectKey, data: &[u8]) -> Result<(), crate::backend::Error> {
            self.inner.put(key, data)?;
            if key.as_str().starts_with("index/") {
                self.segments.fetch_add(1, Ordering::SeqCst);
                let keys = self.keys.get().expect("keys set before writing");
                let id: IndexId = key.name().parse().expect("an index key names its id");
                let seg = object::load_index_segment(self.inner.as_ref(), keys, &id)
                    .expect("a segment just stored loads");
                for p in seg.packs {
                    let k = ObjectKey::pack(&p.id);
                    if self.inner.get_range(&k, 0..0).is_err() {
                        self.unstored.lock().unwrap().push(k.to_string());
                    }
                }
            }
            Ok(())
        }
        fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, crate::backend::Error> {
            self.inner.get(key)
        }
        fn get_range(
            &self,
            key: &ObjectKey,
            range: Range<u64>,
        ) -> Result<Vec<u8>, crate::backend::Error> {
            self.inner.get_range(key, range)
        }
        fn list(&self, prefix: Prefix) -> Result<Vec<ObjectInfo>, crate::backend::Error> {
            self.inner.list(prefix)
        }
        fn delete(&self, key: &ObjectKey) -> Result<(), crate::backend::Error> {
            self.inner.delete(key)
        }
        fn stage(&self, prefix: Prefix) -> Result<Box<dyn StagedObject>, crate::backend::Error> {
            Ok(Box::new(SlowStaged(
                self.inner.stage(prefix)?,
                self.commits.clone(),
                self.fail_commits,
            )))
        }
        fn io_profile(&self) -> crate::backend::IoProfile {
            crate::backend::IoProfile {
                uploads_in_flight: 4,
                ..crate::backend::IoProfile::LOCAL
            }
        }
    }

    fn shuffled(dir: &Path, fail_commits: bool) -> (Arc<Shuffled>, Repo) {
        let local = Arc::new(LocalBackend::create(dir.join("repo")).unwrap());
        let pw = Password::new(b"pw".to_vec());
        let opts = InitOptions {
            pack_size: 1 << 20,
            kdf: KdfParams::FLOOR,
            ..InitOptions::default()
        };
        crate::repo::init(local.as_ref(), &pw, &opts).unwrap();
        let b = Arc::new(Shuffled {
            inner: local,
            keys: OnceLock::new(),
            commits: Arc::default(),
            unstored: Mutex::default(),
            segments: AtomicUsize::new(0),
            fail_commits,
        });
        let repo = Repo::open(b.clone(), &pw, &dir.join("cache")).unwrap();
        b.keys.set(repo.keys().clone()).unwrap();
        (b, repo)
    }

    /// Incompressible 400 KiB blobs: three fill a 1 MiB pack.
    fn blob(i: u64) -> Vec<u8> {
        let mut plain = vec![0u8; 400 << 10];
        crate::crypto::random_fill(&mut plain);
        plain[..8].copy_from_slice(&i.to_le_bytes());
        plain
    }

    #[test]
    fn segments_name_only_committed_packs_when_commits_finish_out_of_order() {
        let dir = tempfile::tempdir().unwrap();
        let (b, mut repo) = shuffled(dir.path(), false);
        let mut w = RepoWriter::with_flush_packs(&mut repo, Some(1), 3);
        let mut ids = Vec::new();
        for i in 0..48u64 {
            ids.push(w.store_blob(BlobKind::Data, &blob(i)).unwrap());
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.blobs, ids.len() as u64);
        assert_eq!(stats.packs, 16, "{stats:?}");
        // Five mid-run segments of three packs and the last one.
        assert_eq!(b.segments.load(Ordering::SeqCst), 6);
        assert_eq!(*b.unstored.lock().unwrap(), Vec::<String>::new());
        for id in &ids {
            assert!(repo.catalog().contains(id).unwrap());
            repo.load_blob(id, BlobKind::Data).unwrap();
        }
    }

    #[test]
    fn after_a_failed_commit_no_further_pack_is_uploaded() {
        let dir = tempfile::tempdir().unwrap();
        let (b, mut repo) = shuffled(dir.path(), true);
        let mut w = RepoWriter::new(&mut repo, Some(1));
        let mut err = None;
        for i in 0..60u64 {
            if let Err(e) = w.store_blob(BlobKind::Data, &blob(i)) {
                err = Some(e);
                break;
            }
        }
        let err = match err {
            Some(e) => e,
            None => w.finish().unwrap_err(),
        };
        assert!(err.to_string().contains("the server went away"), "{err}");
        // The packs in flight when the first failed, and none after.
        let tried = b.commits.load(Ordering::SeqCst);
        assert!(tried <= 4, "{tried} commits tried");
        assert_eq!(b.segments.load(Ordering::SeqCst), 0);
    }
}
