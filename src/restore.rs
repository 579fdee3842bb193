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
use crate::format::snapshot::{Root, Snapshot};
use crate::format::tree::Content;
use crate::progress::Progress;
use crate::repo::{self, Repo};

/// Chunks per batch handed from the walker to the loaders.
const BATCH_CHUNKS: usize = 512;

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

/// Splits a batch into runs of adjacent blobs in one pack, each at most `max_run` bytes
/// (the backend's [`IoProfile`](crate::backend::IoProfile)) unless one blob is larger.
fn runs(batch: &[Located], max_run: u64) -> Vec<&[Located]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=batch.len() {
        let split = i == batch.len() || {
            let (a, b) = (&batch[i - 1].0, &batch[i].0);
            a.pack != b.pack
                || a.entry.range().end != b.entry.offset
                || b.entry.range().end - batch[start].0.entry.offset > max_run
        };
        if split {
            out.push(&batch[start..i]);
            start = i;
        }
    }
    out
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
    // Blobs of a run are adjacent: cut the buffer into one disjoint slice per blob and open
    // them in parallel (a run can be a whole batch when a stream was stored in one go).
    let mut slices = Vec::with_capacity(run.len());
    let mut rest = bytes.as_mut_slice();
    let mut pos = base;
    for (at, _) in run {
        let r = at.entry.range();
        let len = usize::try_from(r.end - r.start).unwrap_or(usize::MAX);
        if r.start != pos || len > rest.len() {
            return Err(Error::CorruptBlob {
                pack: at.pack,
                blob: at.entry.id,
                reason: "range outside the read",
            });
        }
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(len);
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
    for run in runs(&batch, repo.backend().io_profile().max_read_run) {
        for chunk in load_run(repo.backend().as_ref(), repo.keys(), run)? {
            sink.write_all(&chunk).map_err(|source| Error::SinkWrite {
                target: target.to_owned(),
                source,
            })?;
            progress.bytes(chunk.len() as u64);
            stats.chunks += 1;
            stats.bytes += chunk.len() as u64;
        }
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
    let max_run = backend.io_profile().max_read_run;
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
                loop {
                    let next = list.next_chunk()?;
                    let end = next.is_none();
                    entries.extend(next);
                    if entries.len() < BATCH_CHUNKS && !end {
                        continue;
                    }
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
                    next.map(|batch| {
                        let parts: Vec<Vec<Vec<u8>>> = runs(&batch, max_run)
                            .par_iter()
                            .map(|run| load_run(backend.as_ref(), &keys, run))
                            .collect::<Result<_>>()?;
                        Ok::<_, Error>(parts.into_iter().flatten().collect::<Vec<_>>())
                    })
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
