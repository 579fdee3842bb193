//! The backup pipeline for streams:
//!
//! ```text
//! source (stdin | command) -> chunker -> keyed id -> dedup lookup -> zstd -> AEAD
//!        -> pack writer -> backend -> index segment -> snapshot object
//! ```
//!
//! The chunker runs on its own thread, one batch ahead; hashing, compression and sealing run
//! on rayon, software-pipelined so that batch *k* is sealed while batch *k+1* is hashed and
//! looked up. At most a fixed number of batches is in flight, whatever the stream's size.
//! Invariant 3: a snapshot is written only if the source was read completely and the
//! producer (if larder ran it) exited 0.

pub mod chunking;
pub mod dir;
pub mod inspect;
pub mod source;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;

use crate::blob::{self, SealedBlob};
use crate::chunker::{Batch, Chunker};
use crate::content_list::{self, ContentListBuilder, StreamRoot};
use crate::dump_check::Verdict;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::content_list::ListEntry;
use crate::format::snapshot::{ProducerStatus, Quarantine, Root, Snapshot, Source};
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repo::writer::{RepoWriter, WriteStats};
use crate::repo::{Repo, object};
use chunking::{Cut, Previous};

/// Bytes the chunker reads per batch. With the chunker one batch ahead and one batch being
/// sealed, about four batches are in memory at once.
pub const BATCH_BYTES: usize = 2 * 1024 * 1024;

/// What a snapshot is and where it goes.
#[derive(Debug, Clone, Default)]
pub struct SnapshotOptions {
    /// Series name (`--name`).
    pub name: String,
    /// Host to group under (`--host`; default the hostname).
    pub host: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// zstd level for this snapshot (default: the repository's).
    pub zstd_level: Option<i32>,
    /// Time to record instead of now (`--time`, for imports and tests).
    pub time: Option<jiff::Timestamp>,
    /// The shared lock the snapshot runs under: checked before the snapshot object is
    /// written, so that a writer whose lock was taken over (suspended past the stale time)
    /// never commits a snapshot that a concurrent prune may have pulled data from under.
    pub lock: Option<crate::repo::lock::LockCheck>,
    /// Streams: the dump check (`--verify`); a stream that fails it is quarantined.
    pub verify: Option<crate::dump_check::DumpKind>,
    /// Producer mode: kill the producer after this long (no snapshot).
    pub timeout: Option<std::time::Duration>,
    /// Producer mode: kill the producer when it writes nothing for this long (no snapshot).
    pub stall_timeout: Option<std::time::Duration>,
    /// Producer mode: keep the tail of the producer's stderr here (it is still passed
    /// through); `None` leaves stderr inherited.
    pub stderr_tail: Option<source::StderrTail>,
}

/// What a stored stream came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamStats {
    /// The root of its content list.
    pub root: StreamRoot,
    /// Chunks in the stream.
    pub chunks: u64,
    /// Chunks that were not stored yet.
    pub new_chunks: u64,
    /// Where the chunker changed to the coarse sizes, if it did.
    pub switched_at: Option<u64>,
}

/// The result of a snapshot.
#[derive(Debug, Clone)]
pub struct SnapshotReport {
    /// The snapshot's id.
    pub id: SnapshotId,
    /// The snapshot as stored.
    pub snapshot: Snapshot,
    /// What the writer stored (data and content lists).
    pub write: WriteStats,
}

pub(crate) struct Prepared {
    pub(crate) batch: Batch,
    pub(crate) ids: Vec<BlobId>,
    pub(crate) fresh: Vec<usize>,
}

/// Hashes a batch (in parallel) and claims the ids not stored yet (one thread, point
/// queries).
pub(crate) fn prepare(w: &mut RepoWriter<'_>, batch: Batch) -> Result<Prepared> {
    let keys = w.keys().clone();
    let ids: Vec<BlobId> = batch
        .chunks
        .par_iter()
        .map(|r| keys.blob_id(BlobKind::Data, &batch.data[r.clone()]))
        .collect();
    let fresh = w
        .claim_many(&ids)?
        .into_iter()
        .enumerate()
        .filter_map(|(i, new)| new.then_some(i))
        .collect();
    Ok(Prepared { batch, ids, fresh })
}

/// Compresses, seals and verifies the fresh chunks of a batch, in parallel, in order.
pub(crate) fn seal_fresh(
    keys: &crate::crypto::Keys,
    level: i32,
    p: &Prepared,
) -> Result<Vec<SealedBlob>> {
    p.fresh
        .par_iter()
        .map(|&i| {
            blob::seal(keys, BlobKind::Data, p.ids[i], p.batch.chunk(i), level)
                .map_err(|e| e.sealing(p.ids[i]))
        })
        .collect()
}

/// source → chunker (cutting as `cut` says) → id → dedup → zstd → AEAD → pack writer.
/// Returns the stream's root once every chunk and content-list blob has been handed to the
/// writer (the caller's `finish` makes them durable).
pub fn store_stream(
    w: &mut RepoWriter<'_>,
    src: impl Read + Send,
    cut: &Cut,
    what: &str,
    progress: &dyn Progress,
) -> Result<StreamStats> {
    let mut list = ContentListBuilder::new();
    let stored = store_chunks(w, src, cut, what, progress, &mut list)?;
    let mut store = |plain: &[u8]| w.store_blob(content_list::KIND, plain);
    let root = list.finish(&mut store)?;
    Ok(StreamStats {
        root,
        chunks: stored.chunks,
        new_chunks: stored.new_chunks,
        switched_at: stored.switched_at,
    })
}

/// What [`store_chunks`] handed to the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// Chunks.
    pub chunks: u64,
    /// Chunks not stored before.
    pub new_chunks: u64,
    /// Where the chunker changed to the coarse sizes (`Cut::switch`), if it did.
    pub switched_at: Option<u64>,
}

/// Hands every chunk of `src`, cut as `cut` says, to the writer (new ones sealed) and its
/// entry to `list`. The chunker runs on its own thread, one batch ahead.
pub fn store_chunks(
    w: &mut RepoWriter<'_>,
    src: impl Read + Send,
    cut: &Cut,
    what: &str,
    progress: &dyn Progress,
    list: &mut ContentListBuilder,
) -> Result<Stored> {
    let Cut { params, switch, .. } = *cut;
    let keys = w.keys().clone();
    let level = w.zstd_level();
    let (tx, rx) = crossbeam_channel::bounded::<std::io::Result<Batch>>(1);
    // Spent batch buffers go back to the reader for reuse.
    let (recycle, recycled) = crossbeam_channel::bounded::<Vec<u8>>(4);
    // Set once `switch` is due; the chunker cuts its next batch with the coarse sizes and
    // records the stream offset it changed at (u64::MAX: not yet).
    let switch_now = AtomicBool::new(false);
    let switched_at = AtomicU64::new(u64::MAX);
    let start = w.stats();
    std::thread::scope(|s| {
        // Owned by this closure: an early error return drops it, which unblocks the reader
        // thread's `send` so that the scope can join it.
        let rx = rx;
        let (switch_now, switched_at) = (&switch_now, &switched_at);
        s.spawn(move || {
            let mut c = Chunker::new(src, &params, keys.gear());
            let mut handed = 0u64;
            loop {
                if let Some(sw) = &switch
                    && switched_at.load(Ordering::Relaxed) == u64::MAX
                    && switch_now.load(Ordering::Relaxed)
                {
                    c.set_params(&sw.to);
                    switched_at.store(handed, Ordering::Relaxed);
                }
                let buf = recycled.try_recv().unwrap_or_default();
                let next = c.next_batch_into(BATCH_BYTES, buf).transpose();
                let Some(next) = next else { break };
                if let Ok(b) = &next {
                    handed += b.len() as u64;
                }
                let failed = next.is_err();
                if tx.send(next).is_err() || failed {
                    break;
                }
            }
        });
        let keys = w.keys().clone();
        let mut stats = (0u64, 0u64);
        let mut read = 0u64;
        let mut prev: Option<Prepared> = None;
        loop {
            let next = match rx.recv() {
                Ok(Ok(b)) => Some(b),
                Ok(Err(source)) => {
                    return Err(Error::SourceRead {
                        what: what.to_owned(),
                        source,
                    });
                }
                Err(_) => None,
            };
            if next.is_none() && prev.is_none() {
                break;
            }
            let (sealed, prepared) = rayon::join(
                || {
                    prev.as_ref()
                        .map(|p| seal_fresh(&keys, level, p))
                        .transpose()
                },
                || next.map(|b| prepare(w, b)).transpose(),
            );
            let (sealed, prepared) = (sealed?, prepared?);
            if let (Some(p), Some(sealed)) = (prev.take(), sealed) {
                add_prepared(w, &p, sealed, list, progress, &mut stats)?;
                read += p.batch.len() as u64;
                let _ = recycle.try_send(p.batch.data);
                if let Some(sw) = &switch
                    && !switch_now.load(Ordering::Relaxed)
                {
                    let now = w.stats();
                    let cost = (now.stored_bytes - start.stored_bytes)
                        + chunking::ENTRY_COST * (now.blobs - start.blobs);
                    if sw.due(read, cost) {
                        tracing::info!(read, cost, ratio = sw.ratio, "changing to coarse chunks");
                        switch_now.store(true, Ordering::Relaxed);
                    }
                }
            }
            prev = prepared;
        }
        let at = switched_at.load(Ordering::Relaxed);
        Ok(Stored {
            chunks: stats.0,
            new_chunks: stats.1,
            switched_at: (at != u64::MAX).then_some(at),
        })
    })
}

/// Hands a prepared batch's sealed chunks to the writer and its entries to the list.
pub(crate) fn add_prepared(
    w: &mut RepoWriter<'_>,
    p: &Prepared,
    sealed: Vec<SealedBlob>,
    list: &mut ContentListBuilder,
    progress: &dyn Progress,
    stats: &mut (u64, u64),
) -> Result<()> {
    for b in sealed {
        progress.added(b.bytes.len() as u64);
        w.add_sealed(b)?;
    }
    stats.0 += p.ids.len() as u64;
    stats.1 += p.fresh.len() as u64;
    let mut store = |plain: &[u8]| w.store_blob(content_list::KIND, plain);
    for (id, r) in p.ids.iter().zip(&p.batch.chunks) {
        let size = (r.end - r.start) as u64;
        list.push(ListEntry { id: *id, size }, &mut store)?;
    }
    progress.bytes(p.batch.len() as u64);
    Ok(())
}

/// Stores `src` (seen by `inspector` on the way) and writes the snapshot. `status` is
/// called once the stream has ended: an error means no snapshot (the producer could not be
/// waited for, or larder killed it); a producer that failed on its own after writing bytes,
/// or a stream that fails its dump check, gives a snapshot marked quarantined (invariant 3:
/// never a quiet truncated one). Whatever happens, the data already written is indexed so
/// that a retry deduplicates against it; without a snapshot it stays unreferenced until
/// prune.
pub fn snapshot_stream(
    repo: &mut Repo,
    src: impl Read + Send,
    source: Source,
    inspector: &inspect::Inspector,
    status: impl FnOnce(&Result<StreamStats>) -> Result<ProducerStatus>,
    opts: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(jiff::Timestamp::now);
    let what = match &source {
        Source::Stdin => "standard input".to_owned(),
        Source::Command { argv } => format!("the output of `{}`", argv.join(" ")),
        Source::Paths { paths } => paths.join(", "),
    };
    let host = opts
        .host
        .clone()
        .unwrap_or_else(crate::snapshot::default_host);
    // The head decides the chunk sizes (chunking.rs); it is then chunked like the rest. A
    // failure here still goes through `status` below, which reaps the producer.
    let mut reader = inspector.reader(src);
    let planned = chunking::read_sample(&mut reader)
        .map_err(|source| Error::SourceRead {
            what: what.clone(),
            source,
        })
        .and_then(|head| {
            let series = series_snapshots(repo, &opts.name, &host)?;
            let previous = series_previous(repo, &series);
            let config = repo.config();
            let ratio = chunking::sample_ratio(&head);
            let cut = chunking::plan(
                &config.chunker,
                config.coarse_chunking.as_ref(),
                previous.as_ref(),
                ratio,
            );
            tracing::info!(
                coarse = cut.coarse,
                may_switch = cut.switch.is_some(),
                sample_ratio = ratio,
                "chunk sizes chosen"
            );
            Ok((head, cut, series))
        });
    let mut w = RepoWriter::new(repo, opts.zstd_level);
    let mut coarse = None;
    let mut series = Vec::new();
    let stored = planned.and_then(|(head, cut, s)| {
        series = s;
        let src = chunking::Prefixed::new(head, reader);
        let stored = store_stream(&mut w, src, &cut, &what, progress)?;
        coarse = match (cut.coarse, cut.switch, stored.switched_at) {
            (true, _, _) => Some(cut.params),
            (false, Some(sw), Some(at)) => {
                tracing::info!(at, "the stream is cut coarse from this byte on");
                Some(sw.to)
            }
            _ => None,
        };
        Ok(stored)
    });
    let producer = status(&stored);
    let written = w.finish();
    let stream = stored?;
    let producer_status = producer?;
    let write = written?;
    let inspection = inspector.finish();
    let quarantined = if !producer_status.is_success() {
        if stream.root.size == 0 {
            // Nothing to keep: a plain failure.
            return Err(Error::SourceFailed {
                cmd: match &source {
                    Source::Command { argv } => argv.join(" "),
                    _ => what,
                },
                status: describe_status(&producer_status),
            });
        }
        let cmd = match &source {
            Source::Command { argv } => argv.join(" "),
            _ => what.clone(),
        };
        Some(Quarantine {
            check: "producer".into(),
            reason: format!("`{cmd}` {}", describe_status(&producer_status)),
        })
    } else {
        match &inspection.verdict {
            Some((kind, Verdict::Failed { reason })) => Some(Quarantine {
                check: kind.name().into(),
                reason: reason.clone(),
            }),
            _ => None,
        }
    };
    let mut warnings = inspection.warnings;
    if let Some(w) = shrink_warning(&series, stream.root.size) {
        warnings.push(w);
    }
    let snapshot = Snapshot {
        time,
        duration: started.elapsed().as_secs_f64(),
        host,
        name: opts.name.clone(),
        tags: opts.tags.clone(),
        source,
        producer_status,
        root: Root::Stream {
            content_list: stream.root.content_list,
            size: stream.root.size,
        },
        bytes_read: stream.root.size,
        bytes_added: write.stored_bytes,
        raw_bytes_added: write.raw_bytes,
        chunks: stream.chunks,
        new_chunks: stream.new_chunks,
        larder_version: env!("CARGO_PKG_VERSION").to_owned(),
        errors: 0,
        parent: None,
        tree_counts: None,
        damaged: None,
        original: None,
        quarantined,
        warnings,
        chunker: coarse,
    };
    commit(repo, opts, snapshot, write)
}

/// How a failed producer ended, in words.
fn describe_status(s: &ProducerStatus) -> String {
    match s {
        ProducerStatus::Exited { code } => format!("exited with status {code}"),
        ProducerStatus::Killed { signal } => format!("was killed by signal {signal}"),
        ProducerStatus::Unknown => "ended in an unknown way".into(),
    }
}

/// The snapshots of a series (name and host), newest first.
fn series_snapshots(repo: &Repo, name: &str, host: &str) -> Result<Vec<(SnapshotId, Snapshot)>> {
    let mut all = repo.catalog().snapshots()?;
    all.retain(|(_, s)| s.name == name && s.host == host);
    all.reverse();
    Ok(all)
}

/// What the newest stream snapshot of a series (`series`, newest first) tells the chunker:
/// `None` when there is none.
fn series_previous(repo: &Repo, series: &[(SnapshotId, Snapshot)]) -> Option<Previous> {
    let coarse = repo.config().coarse_chunking.map(|c| c.chunker);
    let (_, s) = series
        .iter()
        .find(|(_, s)| matches!(s.root, Root::Stream { .. }))?;
    Some(Previous {
        // Sizes this config does not name (a copy from elsewhere) count as default.
        coarse: s.chunker.is_some() && s.chunker == coarse,
        bytes_read: s.bytes_read,
        raw_bytes_added: s.raw_bytes_added,
    })
}

/// A warning when a stream is less than half the size of the newest good snapshot of its
/// series (`series`, newest first): a dump that lost a table often still ends cleanly.
fn shrink_warning(series: &[(SnapshotId, Snapshot)], size: u64) -> Option<String> {
    let (id, p) = series.iter().find(|(_, s)| s.is_good())?;
    (size.saturating_mul(2) < p.bytes_read).then(|| {
        format!(
            "the stream is {size} bytes, less than half the {} bytes of the previous snapshot {} of this series",
            p.bytes_read,
            id.short()
        )
    })
}

/// Writes the snapshot object (last, after its data is indexed) once the lock it ran under
/// is confirmed still ours, and tells the catalog.
pub(crate) fn commit(
    repo: &mut Repo,
    opts: &SnapshotOptions,
    snapshot: Snapshot,
    write: WriteStats,
) -> Result<SnapshotReport> {
    if let Some(l) = &opts.lock {
        l.ensure_held()?;
    }
    let id = object::store_snapshot(repo.backend().as_ref(), repo.keys(), &snapshot)?;
    repo.catalog_mut()
        .add_snapshots(&[(id, snapshot.clone())])?;
    Ok(SnapshotReport {
        id,
        snapshot,
        write,
    })
}
