//! The restore pipeline for streams:
//!
//! ```text
//! snapshot -> content list -> catalog lookup -> pack range reads -> AEAD unseal
//!          -> bounded zstd -> verify id -> sink (stdout | file)
//! ```
//!
//! A walker thread descends the content list and looks every chunk up in the catalog (its own
//! connection); batches of locations are loaded on rayon, adjacent blobs of one pack in one
//! range read; the sink writes batch *k* while batch *k+1* loads. Every blob is verified
//! before a byte of it is written (invariant 4).

pub mod dir;

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use crate::backend::{Backend, ObjectKey};
use crate::blob;
use crate::catalog::BlobLocation;
use crate::content_list::{self, ContentListReader, StreamRoot};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::content_list::ListEntry;
use crate::format::snapshot::{Root, Snapshot};
use crate::format::tree::Content;
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repo::{self, Repo};

/// Chunks per batch handed from the walker to the loaders, at most.
pub(crate) const BATCH_CHUNKS: usize = 512;

/// Plaintext bytes per batch, at most (one chunk more): with large chunks the batch, not
/// the chunk count, bounds memory.
pub(crate) const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Whether a batch of `chunks` chunks and `bytes` bytes is full.
pub(crate) fn batch_full(chunks: usize, bytes: u64) -> bool {
    chunks >= BATCH_CHUNKS || bytes >= BATCH_BYTES
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct RestoreStats {
    /// Bytes written to the sink.
    pub bytes: u64,
    /// Chunks verified and written.
    pub chunks: u64,
    /// Seconds taken.
    pub duration: f64,
}

/// The stream root of a snapshot; a directory snapshot is a usage error here.
pub fn stream_root(snap: &Snapshot) -> Result<StreamRoot> {
    match snap.root {
        Root::Stream { content_list, size } => Ok(StreamRoot { content_list, size }),
        Root::Tree { .. } => Err(Error::InvalidArgument(format!(
            "snapshot of {} is a directory snapshot: restore it with --target DIR, or one file \
             with `larder dump`",
            snap.name
        ))),
    }
}

/// One chunk to load: where it is and how long the content list says it is.
type Located = (BlobLocation, u64);

/// Splits a batch into runs: blobs of one pack in increasing offsets, each at most
/// `max_gap` bytes after the previous one, spanning at most `max_run` bytes (unless one blob
/// is larger); the backend's [`IoProfile`](crate::backend::IoProfile) sets both.
fn runs(batch: &[Located], max_run: u64, max_gap: u64) -> Vec<&[Located]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=batch.len() {
        let split = i == batch.len() || {
            let (a, b) = (&batch[i - 1].0, &batch[i].0);
            let end = a.entry.range().end;
            a.pack != b.pack
                || b.entry.offset < end
                || b.entry.offset - end > max_gap
                || b.entry.range().end - batch[start].0.entry.offset > max_run
        };
        if split {
            out.push(&batch[start..i]);
            start = i;
        }
    }
    out
}

/// Loads a batch of chunks, verified, in the batch's order. Reads go in pack and offset
/// order, so that a stream interleaving an older snapshot's packs with its own new ones (a
/// changed dump) costs a few range reads per pack and batch, not one per switch; a blob
/// that occurs several times in the batch is read once.
fn load_batch(
    b: &dyn Backend,
    keys: &Keys,
    io: crate::backend::IoProfile,
    batch: &[Located],
) -> Result<Vec<Vec<u8>>> {
    let mut order: Vec<usize> = (0..batch.len()).collect();
    order.sort_by_key(|&i| (batch[i].0.pack, batch[i].0.entry.offset));
    // The distinct blobs in read order, and for each batch position its distinct index.
    let mut unique: Vec<Located> = Vec::with_capacity(batch.len());
    let mut slot = vec![0usize; batch.len()];
    for &i in &order {
        let (at, _) = &batch[i];
        let same = unique
            .last()
            .is_some_and(|(u, _)| u.pack == at.pack && u.entry.offset == at.entry.offset);
        if !same {
            unique.push(batch[i]);
        }
        slot[i] = unique.len() - 1;
    }
    let parts: Vec<Vec<Vec<u8>>> = runs(&unique, io.max_read_run, io.max_read_gap)
        .par_iter()
        .map(|run| load_run(b, keys, run))
        .collect::<Result<_>>()?;
    let mut loaded: Vec<Vec<u8>> = parts.into_iter().flatten().collect();
    // Uses left of each distinct blob: the last one takes it, earlier ones copy it.
    let mut uses = vec![0usize; loaded.len()];
    for &u in &slot {
        uses[u] += 1;
    }
    Ok(slot
        .into_iter()
        .map(|u| {
            uses[u] -= 1;
            if uses[u] == 0 {
                std::mem::take(&mut loaded[u])
            } else {
                loaded[u].clone()
            }
        })
        .collect())
}

/// Reads one run with a single range request and opens each blob in it.
fn load_run(b: &dyn Backend, keys: &Keys, run: &[Located]) -> Result<Vec<Vec<u8>>> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(Vec::new());
    };
    let base = first.0.entry.offset;
    let mut bytes = b
        .get_range(
            &ObjectKey::pack(&first.0.pack),
            base..last.0.entry.range().end,
        )
        .map_err(Error::reading_pack(first.0.pack))?;
    // Blobs of a run are in increasing order, with gaps between some: cut the buffer into
    // one disjoint slice per blob, dropping the gaps, and open them in parallel (a run can
    // be a whole batch when a stream was stored in one go).
    let mut slices = Vec::with_capacity(run.len());
    let mut rest = bytes.as_mut_slice();
    let mut pos = base;
    for (at, _) in run {
        let r = at.entry.range();
        let outside = || Error::CorruptBlob {
            pack: at.pack,
            blob: at.entry.id,
            reason: "range outside the read",
        };
        let gap = r
            .start
            .checked_sub(pos)
            .and_then(|g| usize::try_from(g).ok())
            .ok_or_else(outside)?;
        let len = usize::try_from(r.end - r.start).unwrap_or(usize::MAX);
        if gap.saturating_add(len) > rest.len() {
            return Err(outside());
        }
        let (_, from) = std::mem::take(&mut rest).split_at_mut(gap);
        let (head, tail) = from.split_at_mut(len);
        slices.push(head);
        rest = tail;
        pos = r.end;
    }
    slices
        .into_par_iter()
        .zip(run.par_iter())
        .map(|(sealed, (at, size))| {
            let corrupt = |reason| Error::CorruptBlob {
                pack: at.pack,
                blob: at.entry.id,
                reason,
            };
            if at.entry.kind != BlobKind::Data {
                return Err(corrupt(
                    "indexed as a content list where a data chunk belongs",
                ));
            }
            let plain = blob::open_in_place(
                keys,
                at.entry.kind,
                at.entry.id,
                at.entry.compression,
                at.entry.raw_len,
                sealed,
            )
            .map_err(|e| corrupt(e.reason()))?;
            if plain.len() as u64 != *size {
                return Err(corrupt("length differs from the content list"));
            }
            Ok(plain)
        })
        .collect()
}

/// Streams a snapshot's bytes into `sink`, verifying every blob first. `target` names the
/// sink in errors. On error the sink may hold a prefix of the stream: callers writing files
/// use [`restore_to_file`], which never leaves a short file.
pub fn restore_stream(
    repo: &Repo,
    snap: &Snapshot,
    sink: &mut (dyn Write + Send),
    target: &str,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    restore_list(repo, stream_root(snap)?, sink, target, progress)
}

/// Writes a file's content (`format-spec/tree.md`) into `sink`, verifying every blob first.
pub fn restore_content(
    repo: &Repo,
    content: &Content,
    size: u64,
    sink: &mut (dyn Write + Send),
    target: &str,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let chunks = match content {
        Content::List(root) => {
            let root = StreamRoot {
                content_list: *root,
                size,
            };
            return restore_list(repo, root, sink, target, progress);
        }
        Content::Inline(chunks) => chunks,
    };
    let started = Instant::now();
    let ids: Vec<_> = chunks.iter().map(|c| c.id).collect();
    let batch = repo
        .catalog()
        .locate_many(&ids)?
        .into_iter()
        .zip(chunks)
        .map(|(at, c)| Ok((at.ok_or(Error::MissingBlob { blob: c.id })?, c.size)))
        .collect::<Result<Vec<Located>>>()?;
    let mut stats = RestoreStats::default();
    let io = repo.backend().io_profile();
    for chunk in load_batch(repo.backend().as_ref(), repo.keys(), io, &batch)? {
        sink.write_all(&chunk).map_err(|source| Error::SinkWrite {
            target: target.to_owned(),
            source,
        })?;
        progress.bytes(chunk.len() as u64);
        stats.chunks += 1;
        stats.bytes += chunk.len() as u64;
    }
    if stats.bytes != size {
        return Err(Error::Internal(format!(
            "{target}: inline chunks hold {} bytes, the entry says {size}",
            stats.bytes
        )));
    }
    stats.duration = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Streams the bytes of a content-list tree into `sink`, verifying every blob first.
pub fn restore_list(
    repo: &Repo,
    root: StreamRoot,
    sink: &mut (dyn Write + Send),
    target: &str,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let started = Instant::now();
    let backend = repo.backend().clone();
    let keys = repo.keys().clone();
    let io = backend.io_profile();
    let walker_catalog = repo.open_catalog()?;
    let (tx, rx) = crossbeam_channel::bounded::<Result<Vec<Located>>>(2);
    let mut stats = RestoreStats::default();
    std::thread::scope(|s| -> Result<()> {
        // Owned by this closure: an early error return drops it, which unblocks the walker's
        // `send` so that the scope can join it.
        let rx = rx;
        let (b, k) = (backend.clone(), keys.clone());
        s.spawn(move || {
            let walk = || -> Result<()> {
                let cat = &walker_catalog;
                let mut list = ContentListReader::new(root, |id| {
                    repo::load_blob(cat, b.as_ref(), &k, id, content_list::KIND)
                })?;
                let mut entries = Vec::with_capacity(BATCH_CHUNKS);
                let mut bytes = 0;
                loop {
                    let next = list.next_chunk()?;
                    let end = next.is_none();
                    bytes += next.map_or(0, |e| e.size);
                    entries.extend(next);
                    if !batch_full(entries.len(), bytes) && !end {
                        continue;
                    }
                    bytes = 0;
                    let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
                    let batch = cat
                        .locate_many(&ids)?
                        .into_iter()
                        .zip(entries.drain(..))
                        .map(|(at, e)| Ok((at.ok_or(Error::MissingBlob { blob: e.id })?, e.size)))
                        .collect::<Result<Vec<Located>>>()?;
                    if end {
                        if !batch.is_empty() {
                            let _ = tx.send(Ok(batch));
                        }
                        return Ok(());
                    }
                    if tx.send(Ok(batch)).is_err() {
                        return Ok(());
                    }
                }
            };
            if let Err(e) = walk() {
                let _ = tx.send(Err(e));
            }
        });
        let mut ready: Option<Vec<Vec<u8>>> = None;
        loop {
            let next = match rx.recv() {
                Ok(b) => Some(b?),
                Err(_) => None,
            };
            if next.is_none() && ready.is_none() {
                break;
            }
            let (written, loaded) = rayon::join(
                || -> Result<()> {
                    for chunk in ready.iter().flatten() {
                        sink.write_all(chunk).map_err(|source| Error::SinkWrite {
                            target: target.to_owned(),
                            source,
                        })?;
                        progress.bytes(chunk.len() as u64);
                    }
                    Ok(())
                },
                || {
                    next.map(|batch| load_batch(backend.as_ref(), &keys, io, &batch))
                        .transpose()
                },
            );
            written?;
            if let Some(done) = ready.take() {
                stats.chunks += done.len() as u64;
                stats.bytes += done.iter().map(|c| c.len() as u64).sum::<u64>();
            }
            ready = loaded?;
        }
        Ok(())
    })?;
    sink.flush().map_err(|source| Error::SinkWrite {
        target: target.to_owned(),
        source,
    })?;
    if stats.bytes != root.size {
        return Err(Error::corrupt(
            format!("content list {}", root.content_list),
            crate::format::DecodeError::Invalid("stream length differs from the snapshot"),
        ));
    }
    stats.duration = started.elapsed().as_secs_f64();
    Ok(stats)
}

/// Reads verified chunks of stored content, with its own catalog connection so that it can
/// run on a thread of its own (`copy` feeds another repository's chunker from it).
pub(crate) struct ChunkSource {
    catalog: crate::catalog::Catalog,
    backend: std::sync::Arc<dyn Backend>,
    keys: std::sync::Arc<Keys>,
    io: crate::backend::IoProfile,
}

impl ChunkSource {
    /// A source reading from `repo`.
    pub(crate) fn new(repo: &Repo) -> Result<Self> {
        Ok(Self {
            catalog: repo.open_catalog()?,
            backend: repo.backend().clone(),
            keys: repo.keys().clone(),
            io: repo.backend().io_profile(),
        })
    }

    /// The plaintext of data chunks, verified, in order: adjacent blobs read together and
    /// opened in parallel.
    pub(crate) fn load(&self, entries: &[ListEntry]) -> Result<Vec<Vec<u8>>> {
        let ids: Vec<_> = entries.iter().map(|e| e.id).collect();
        let batch = self
            .catalog
            .locate_many(&ids)?
            .into_iter()
            .zip(entries)
            .map(|(at, e)| Ok((at.ok_or(Error::MissingBlob { blob: e.id })?, e.size)))
            .collect::<Result<Vec<Located>>>()?;
        load_batch(self.backend.as_ref(), &self.keys, self.io, &batch)
    }

    /// A verified blob of another kind (content list or tree).
    pub(crate) fn load_blob(&self, id: &BlobId, kind: BlobKind) -> Result<Vec<u8>> {
        repo::load_blob(&self.catalog, self.backend.as_ref(), &self.keys, id, kind)
    }

    /// Every data chunk of a content, in order and in batches, as list entries; `f` returns
    /// `false` to stop early.
    pub(crate) fn each_entries(
        &self,
        content: &Content,
        size: u64,
        f: &mut dyn FnMut(Vec<ListEntry>) -> Result<bool>,
    ) -> Result<()> {
        let root = match content {
            Content::Inline(chunks) => {
                if chunks.iter().map(|c| c.size).sum::<u64>() != size {
                    return Err(Error::corrupt(
                        "a file's inline chunk list".to_owned(),
                        crate::format::DecodeError::Invalid("sizes differ from the entry's"),
                    ));
                }
                f(chunks.clone())?;
                return Ok(());
            }
            Content::List(root) => StreamRoot {
                content_list: *root,
                size,
            },
        };
        let mut list = ContentListReader::new(root, |id| self.load_blob(id, content_list::KIND))?;
        let mut entries = Vec::with_capacity(BATCH_CHUNKS);
        let mut bytes = 0;
        loop {
            let next = list.next_chunk()?;
            let end = next.is_none();
            bytes += next.map_or(0, |e| e.size);
            entries.extend(next);
            let full = batch_full(entries.len(), bytes) || (end && !entries.is_empty());
            if full {
                bytes = 0;
                if !f(std::mem::take(&mut entries))? {
                    return Ok(());
                }
            }
            if end {
                return Ok(());
            }
        }
    }
}

/// Why a [`ContentReader`] ended its stream early, kept for whoever consumed it.
#[derive(Clone, Default)]
pub(crate) struct ReadFailure(std::sync::Arc<std::sync::Mutex<Option<Error>>>);

impl ReadFailure {
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Error>> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The error, if the stream failed (once).
    pub(crate) fn take(&self) -> Option<Error> {
        self.slot().take()
    }
}

/// Stored content as a byte stream (`Read`), every chunk verified: a thread of its own
/// loads batches one ahead (not on rayon's workers, so a consumer that needs them cannot
/// starve it). A failure ends the stream with an I/O error; [`ContentReader::failure`]
/// keeps what it was.
pub(crate) struct ContentReader {
    batches: crossbeam_channel::Receiver<Vec<Vec<u8>>>,
    current: Vec<Vec<u8>>,
    chunk: usize,
    pos: usize,
    failed: ReadFailure,
}

impl ContentReader {
    /// Starts reading `content` (`size` bytes) from `source`.
    pub(crate) fn spawn(
        source: std::sync::Arc<std::sync::Mutex<ChunkSource>>,
        content: Content,
        size: u64,
    ) -> Self {
        let (tx, batches) = crossbeam_channel::bounded(1);
        let failed = ReadFailure::default();
        let slot = failed.clone();
        std::thread::Builder::new()
            .name("larder-read".into())
            .spawn(move || {
                let source = source
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let mut send = |entries: Vec<ListEntry>| -> Result<bool> {
                    Ok(tx.send(source.load(&entries)?).is_ok())
                };
                if let Err(e) = source.each_entries(&content, size, &mut send) {
                    *slot.slot() = Some(e);
                }
            })
            .expect("spawning a reader thread");
        Self {
            batches,
            current: Vec::new(),
            chunk: 0,
            pos: 0,
            failed,
        }
    }

    /// Where the reason for an early end will be.
    pub(crate) fn failure(&self) -> ReadFailure {
        self.failed.clone()
    }
}

impl std::io::Read for ContentReader {
    /// Fills `buf` from as many chunks of the current batch as fit (one call per chunk
    /// would make a consumer with a large buffer loop needlessly).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            if let Some(c) = self.current.get(self.chunk) {
                let take = (buf.len() - n).min(c.len() - self.pos);
                buf[n..n + take].copy_from_slice(&c[self.pos..self.pos + take]);
                n += take;
                self.pos += take;
                if self.pos == c.len() {
                    self.chunk += 1;
                    self.pos = 0;
                }
                continue;
            }
            if n > 0 {
                return Ok(n);
            }
            match self.batches.recv() {
                Ok(b) => {
                    self.current = b;
                    self.chunk = 0;
                    self.pos = 0;
                }
                Err(_) if self.failed.slot().is_some() => {
                    return Err(std::io::Error::other(
                        "reading the source repository failed",
                    ));
                }
                Err(_) => return Ok(0),
            }
        }
        Ok(n)
    }
}

/// Restores into `path` through a temporary file in the same directory, fsynced and renamed
/// into place only after every byte was verified and written: a failed restore never leaves
/// a short file that looks whole.
pub fn restore_to_file(
    repo: &Repo,
    snap: &Snapshot,
    path: &Path,
    progress: &dyn Progress,
) -> Result<RestoreStats> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let io = |what: &'static str| {
        move |source| Error::LocalIo {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let tmp = tempfile::Builder::new()
        .prefix(".larder-restore-")
        .tempfile_in(&dir)
        .map_err(io("cannot create a temporary file beside"))?;
    let mut file = std::io::BufWriter::with_capacity(1 << 20, tmp);
    let stats = restore_stream(repo, snap, &mut file, &path.display().to_string(), progress)?;
    let tmp = file
        .into_inner()
        .map_err(|e| io("cannot write")(e.into_error()))?;
    tmp.as_file().sync_all().map_err(io("cannot fsync"))?;
    tmp.persist(path)
        .map_err(|e| io("cannot rename into")(e.error))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot fsync the directory of"))?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::crypto::MasterKey;
    use crate::id::RepoId;
    use crate::pack::writer::PackWriter;

    /// Four blobs in one pack of a local backend: their locations and plaintexts.
    fn pack(b: &LocalBackend, keys: &Keys) -> (Vec<Located>, Vec<Vec<u8>>) {
        let plains: Vec<Vec<u8>> = (0u8..4).map(|i| vec![i; 1000 + usize::from(i)]).collect();
        let mut w = PackWriter::new(1 << 30);
        for p in &plains {
            let id = keys.blob_id(BlobKind::Data, p);
            let sealed = blob::seal(keys, BlobKind::Data, id, p, 1).unwrap();
            assert!(w.add(b, keys, &sealed).unwrap().is_none());
        }
        let done = w.finish(keys).unwrap().unwrap();
        done.staged.commit(&ObjectKey::pack(&done.id)).unwrap();
        let located = done
            .blobs
            .iter()
            .map(|e| {
                let at = BlobLocation {
                    pack: done.id,
                    entry: *e,
                };
                (at, u64::from(e.raw_len))
            })
            .collect();
        (located, plains)
    }

    #[test]
    fn runs_read_across_small_gaps_forward_only() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::create(dir.path().join("r")).unwrap();
        let keys = Keys::derive(RepoId([4; 32]), MasterKey::generate());
        let (at, plains) = pack(&b, &keys);
        // Blobs 0, 2, 3, then 1 (backwards): a gap of one blob between 0 and 2.
        let batch = vec![at[0], at[2], at[3], at[1]];
        let blob_len = at[1].0.entry.range().end - at[1].0.entry.offset;
        let lens = |runs: Vec<&[Located]>| runs.iter().map(|r| r.len()).collect::<Vec<_>>();
        assert_eq!(lens(runs(&batch, 1 << 20, 0)), [1, 2, 1]);
        assert_eq!(lens(runs(&batch, 1 << 20, blob_len)), [3, 1]);
        assert_eq!(lens(runs(&batch, 1 << 20, blob_len - 1)), [1, 2, 1]);
        // The span limit still splits.
        assert_eq!(lens(runs(&batch, blob_len * 2, blob_len)), [1, 2, 1]);
        let mut got = Vec::new();
        for run in runs(&batch, 1 << 20, blob_len) {
            got.extend(load_run(&b, &keys, run).unwrap());
        }
        let want = [0, 2, 3, 1].map(|i: usize| plains[i].clone());
        assert_eq!(got, want);
    }

    #[test]
    fn a_batch_is_read_in_pack_order_once_per_blob_and_returned_in_its_own_order() {
        let dir = tempfile::tempdir().unwrap();
        let local = std::sync::Arc::new(LocalBackend::create(dir.path().join("r")).unwrap());
        let keys = Keys::derive(RepoId([5; 32]), MasterKey::generate());
        let (at, plains) = pack(&local, &keys);
        let counts = std::sync::Arc::new(crate::backend::counting::RequestCounts::default());
        let b = crate::backend::counting::CountingBackend::new(local, counts.clone());
        let io = crate::backend::IoProfile {
            max_read_gap: 1 << 20,
            ..crate::backend::IoProfile::LOCAL
        };
        let order = [3usize, 1, 0, 1, 2, 3];
        let batch: Vec<Located> = order.iter().map(|&i| at[i]).collect();
        let got = load_batch(&b, &keys, io, &batch).unwrap();
        let want: Vec<Vec<u8>> = order.iter().map(|&i| plains[i].clone()).collect();
        assert_eq!(got, want);
        assert_eq!(counts.snapshot().get, 1, "one read for the whole pack");
        // Without gaps allowed, still one read per distinct run, never one per repeat.
        let io = crate::backend::IoProfile::LOCAL;
        let before = counts.snapshot().get;
        assert_eq!(load_batch(&b, &keys, io, &batch).unwrap(), want);
        assert_eq!(counts.snapshot().get - before, 1);
    }
}
