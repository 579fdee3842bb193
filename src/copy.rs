//! `copy`: snapshots from one repository into another (an offsite replica), with the
//! destination's own keys, deduplicated against what it already holds.
//!
//! ```text
//! source snapshot -> its blobs (verified on read) -> [re-chunk] -> destination writer
//!        -> packs -> index segment -> snapshot object (with `original` = the source's id)
//! ```
//!
//! Two methods, chosen by [`Method::between`]:
//! - **blobs**: the two repositories share their chunk identity (blob id and chunker keys,
//!   `init --copy-chunker-params`) and chunker parameters, so a blob has the same id in both.
//!   Only blobs the destination lacks are read, re-sealed with its encryption key and stored;
//!   a second copy of a barely changed dump reads and writes only the changed chunks.
//! - **rechunk**: otherwise every file and stream is read through (verified) and cut again by
//!   the destination's chunker; the destination stores only the chunks it lacks.
//!
//! Idempotent and resumable: a source snapshot is skipped when the destination holds it
//! (its id or `original` matches), and each copied snapshot is written only after its data
//! is indexed (invariant 2). A copy killed midway leaves no snapshot; what its index segments
//! already name (they are written every [`INDEX_FLUSH_PACKS`] packs) is reused by the next
//! run, and the rest is unreferenced data for prune.
//!
//! [`INDEX_FLUSH_PACKS`]: crate::repo::writer::INDEX_FLUSH_PACKS

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rayon::prelude::*;

use crate::backup::{self, SnapshotOptions, SnapshotReport};
use crate::blob::{self, SealedBlob};
use crate::content_list::{self, ContentListBuilder, ContentListReader, StreamRoot};
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::config::ChunkerParams;
use crate::format::content_list::ListEntry;
use crate::format::snapshot::{Root, Snapshot};
use crate::format::tree::{Content, EntryKind, Tree};
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::repo::lock::LockCheck;
use crate::repo::writer::RepoWriter;
use crate::restore::{ChunkSource, ContentReader};

/// How blobs get from the source into the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Same chunk identity and chunker parameters: blobs move by id.
    Blobs,
    /// Different: content is read through and cut again by the destination's chunker.
    Rechunk,
}

impl Method {
    /// The method two repositories allow.
    pub fn between(src: &Repo, dst: &Repo) -> Method {
        if src.keys().identity() == dst.keys().identity()
            && src.config().chunker == dst.config().chunker
        {
            Method::Blobs
        } else {
            Method::Rechunk
        }
    }
}

/// What a copy run will do.
#[derive(Debug, Clone, Default)]
pub struct CopyPlan {
    /// Source snapshots to copy, oldest first.
    pub copy: Vec<(SnapshotId, Snapshot)>,
    /// Source snapshots the destination holds already: (source id, destination id).
    pub present: Vec<(SnapshotId, SnapshotId)>,
    /// Source snapshots marked damaged by `repair snapshots`: never copied.
    pub damaged: Vec<SnapshotId>,
}

/// Which of `selected` (source snapshots) the destination, holding `dst`, lacks.
pub fn plan(selected: Vec<(SnapshotId, Snapshot)>, dst: &[(SnapshotId, Snapshot)]) -> CopyPlan {
    let held = held(dst);
    let mut plan = CopyPlan::default();
    let mut selected = selected;
    selected.sort_by_key(|(id, s)| (s.time, *id));
    for (id, s) in selected {
        if let Some(d) = held
            .get(&id)
            .or_else(|| s.original.as_ref().and_then(|o| held.get(o)))
        {
            plan.present.push((id, *d));
        } else if s.damaged.is_some() {
            plan.damaged.push(id);
        } else {
            plan.copy.push((id, s));
        }
    }
    plan
}

/// Every id a destination snapshot stands for (its own and its `original`) → its id.
fn held(dst: &[(SnapshotId, Snapshot)]) -> HashMap<SnapshotId, SnapshotId> {
    let mut held = HashMap::new();
    for (id, s) in dst {
        held.insert(*id, *id);
        if let Some(o) = s.original {
            held.insert(o, *id);
        }
    }
    held
}

/// How to copy.
#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// [`Method::between`] the two repositories (or `Rechunk`, which always works).
    pub method: Method,
    /// zstd level for the blobs stored (default: the destination's).
    pub zstd_level: Option<i32>,
    /// The destination lock the copy runs under, checked before each snapshot is written.
    pub lock: Option<LockCheck>,
}

/// Work already done in this run: subtrees and lists whose blobs the destination holds
/// (durably: recorded only after the snapshot that stored them was written).
#[derive(Debug, Default)]
pub struct CopySession {
    /// Blobs method: tree and content-list roots walked completely.
    walked: HashSet<BlobId>,
    /// Rechunk method: source tree id → destination tree id.
    trees: HashMap<BlobId, BlobId>,
}

/// One copied snapshot.
#[derive(Debug, Clone)]
pub struct Copied {
    /// The source snapshot's id.
    pub source: SnapshotId,
    /// The snapshot written in the destination and what storing it took.
    pub report: SnapshotReport,
}

/// Copies one source snapshot into `dst`. `dst_snapshots` are the destination's snapshots
/// (to point `parent` at the copy of the source's parent).
pub fn copy_snapshot(
    src: &Repo,
    dst: &mut Repo,
    (id, snap): (&SnapshotId, &Snapshot),
    session: &mut CopySession,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<Copied> {
    let started = Instant::now();
    let parent = match snap.parent {
        Some(p) => {
            let dst_snaps = dst.catalog().snapshots()?;
            held(&dst_snaps).get(&p).copied()
        }
        None => None,
    };
    let source = Arc::new(Mutex::new(ChunkSource::new(src)?));
    let what = format!("snapshot {} of {}", id.short(), src.backend().location());
    // Rechunk method: a stream cut coarse in the source is cut coarse here too, if this
    // repository has coarse chunking (files are always cut with the default chunker).
    let dst_config = dst.config();
    let coarse = match (&snap.chunker, &dst_config.coarse_chunking) {
        (Some(_), Some(c)) if matches!(snap.root, Root::Stream { .. }) => Some(c.chunker),
        _ => None,
    };
    let stream_params = coarse.unwrap_or(dst_config.chunker);
    let mut w = RepoWriter::new(dst, opts.zstd_level);
    let mut work = Work {
        source: &source,
        w: &mut w,
        progress,
        what: &what,
        walked: HashSet::new(),
        trees: HashMap::new(),
        session,
        chunks: 0,
        new_chunks: 0,
    };
    let root = match (opts.method, &snap.root) {
        (Method::Blobs, Root::Stream { content_list, size }) => work
            .content_blobs(&Content::List(*content_list), *size)
            .map(|()| snap.root),
        (Method::Blobs, Root::Tree { tree }) => work.tree_blobs(tree).map(|()| snap.root),
        (Method::Rechunk, Root::Stream { content_list, size }) => {
            let mut list = ContentListBuilder::new();
            work.content_rechunk(
                &Content::List(*content_list),
                *size,
                &stream_params,
                &mut list,
            )
            .and_then(|()| {
                let mut store = |plain: &[u8]| work.w.store_blob(content_list::KIND, plain);
                let root = list.finish(&mut store)?;
                Ok(Root::Stream {
                    content_list: root.content_list,
                    size: root.size,
                })
            })
        }
        (Method::Rechunk, Root::Tree { tree }) => {
            work.tree_rechunk(tree).map(|tree| Root::Tree { tree })
        }
    };
    let (walked, trees, chunks, new_chunks) =
        (work.walked, work.trees, work.chunks, work.new_chunks);
    // Whatever happened, index what was stored: a retry reuses it.
    let written = w.finish();
    let root = root?;
    let write = written?;
    let (chunks, chunker) = match opts.method {
        Method::Blobs => (snap.chunks, snap.chunker),
        Method::Rechunk => (chunks, coarse),
    };
    let snapshot = Snapshot {
        duration: started.elapsed().as_secs_f64(),
        root,
        bytes_added: write.stored_bytes,
        raw_bytes_added: write.raw_bytes,
        chunks,
        new_chunks,
        larder_version: env!("CARGO_PKG_VERSION").to_owned(),
        parent,
        damaged: None,
        original: Some(snap.original.unwrap_or(*id)),
        chunker,
        ..snap.clone()
    };
    let commit = SnapshotOptions {
        lock: opts.lock.clone(),
        ..SnapshotOptions::default()
    };
    let report = backup::commit(dst, &commit, snapshot, write)?;
    session.walked.extend(walked);
    session.trees.extend(trees);
    Ok(Copied {
        source: *id,
        report,
    })
}

/// The state of copying one snapshot.
struct Work<'a, 'w, 'r> {
    source: &'a Arc<Mutex<ChunkSource>>,
    w: &'w mut RepoWriter<'r>,
    progress: &'a dyn Progress,
    what: &'a str,
    /// Blobs method: roots walked in this snapshot.
    walked: HashSet<BlobId>,
    /// Rechunk method: trees rebuilt in this snapshot.
    trees: HashMap<BlobId, BlobId>,
    session: &'a CopySession,
    chunks: u64,
    new_chunks: u64,
}

impl Work<'_, '_, '_> {
    fn source(&self) -> std::sync::MutexGuard<'_, ChunkSource> {
        self.source
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Blobs method: a tree, its subtrees and their files' blobs, children first.
    fn tree_blobs(&mut self, id: &BlobId) -> Result<()> {
        if self.session.walked.contains(id) || !self.walked.insert(*id) {
            return Ok(());
        }
        let plain = self.source().load_blob(id, BlobKind::Tree)?;
        let tree = Tree::decode(&plain).map_err(|e| Error::corrupt(format!("tree {id}"), e))?;
        for e in &tree.entries {
            match &e.kind {
                EntryKind::File(c) => self.content_blobs(c, e.size)?,
                EntryKind::Dir(d) => self.tree_blobs(d)?,
                _ => {}
            }
        }
        self.store_same(BlobKind::Tree, id, &plain)
    }

    /// Blobs method: the data chunks of a content and the content-list nodes above them.
    fn content_blobs(&mut self, content: &Content, size: u64) -> Result<()> {
        let root = match content {
            Content::Inline(chunks) => return self.chunks_blobs(chunks),
            Content::List(root) => *root,
        };
        if self.session.walked.contains(&root) || !self.walked.insert(root) {
            return Ok(());
        }
        let source = self.source.clone();
        // Nodes as the reader loads them (verified), stored once their entries are handed on.
        let nodes: RefCell<Vec<(BlobId, Vec<u8>)>> = RefCell::new(Vec::new());
        let load = |id: &BlobId| {
            let plain = source
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .load_blob(id, content_list::KIND)?;
            nodes.borrow_mut().push((*id, plain.clone()));
            Ok(plain)
        };
        let mut list = ContentListReader::new(
            StreamRoot {
                content_list: root,
                size,
            },
            load,
        )?;
        let mut batch = Vec::with_capacity(crate::restore::BATCH_CHUNKS);
        let mut bytes = 0;
        loop {
            let next = list.next_chunk()?;
            let end = next.is_none();
            bytes += next.map_or(0, |e| e.size);
            batch.extend(next);
            if crate::restore::batch_full(batch.len(), bytes) || end {
                self.chunks_blobs(&batch)?;
                batch.clear();
                bytes = 0;
            }
            let loaded: Vec<_> = nodes.borrow_mut().drain(..).collect();
            for (id, plain) in loaded {
                self.store_same(content_list::KIND, &id, &plain)?;
            }
            if end {
                return Ok(());
            }
        }
    }

    /// Blobs method: data chunks the destination lacks, read, re-sealed and stored.
    fn chunks_blobs(&mut self, entries: &[ListEntry]) -> Result<()> {
        let ids: Vec<BlobId> = entries.iter().map(|e| e.id).collect();
        let fresh: Vec<ListEntry> = self
            .w
            .claim_many(&ids)?
            .into_iter()
            .zip(entries)
            .filter_map(|(new, e)| new.then_some(*e))
            .collect();
        self.progress
            .bytes(entries.iter().map(|e| e.size).sum::<u64>());
        if fresh.is_empty() {
            return Ok(());
        }
        let plain = self.source().load(&fresh)?;
        let keys = self.w.keys().clone();
        let level = self.w.zstd_level();
        let sealed: Vec<SealedBlob> = fresh
            .par_iter()
            .zip(plain.par_iter())
            .map(|(e, p)| {
                blob::seal(&keys, BlobKind::Data, e.id, p, level).map_err(|err| err.sealing(e.id))
            })
            .collect::<Result<_>>()?;
        self.new_chunks += sealed.len() as u64;
        for b in sealed {
            self.progress.added(b.bytes.len() as u64);
            self.w.add_sealed(b)?;
        }
        Ok(())
    }

    /// Stores a verified source blob under the same id in the destination (blobs method:
    /// the ids agree because the chunk identities do).
    fn store_same(&mut self, kind: BlobKind, id: &BlobId, plain: &[u8]) -> Result<()> {
        let stored = self.w.store_blob(kind, plain)?;
        if &stored != id {
            return Err(Error::Internal(format!(
                "blob {id} has id {stored} in the destination although both repositories share \
                 their chunk identity"
            )));
        }
        Ok(())
    }

    /// Rechunk method: a content read through and cut by the destination's chunker (with
    /// `params`) into `list`.
    fn content_rechunk(
        &mut self,
        content: &Content,
        size: u64,
        params: &ChunkerParams,
        list: &mut ContentListBuilder,
    ) -> Result<()> {
        let reader = ContentReader::spawn(self.source.clone(), content.clone(), size);
        let failure = reader.failure();
        let cut = backup::chunking::Cut::fixed(*params);
        let stored = backup::store_chunks(self.w, reader, &cut, self.what, self.progress, list);
        let (chunks, new_chunks) = match stored {
            Ok(n) => (n.chunks, n.new_chunks),
            // The reader's own error says what went wrong in the source repository.
            Err(Error::SourceRead { source, .. }) => {
                return Err(failure.take().unwrap_or(Error::SourceRead {
                    what: self.what.to_owned(),
                    source,
                }));
            }
            Err(e) => return Err(e),
        };
        self.chunks += chunks;
        self.new_chunks += new_chunks;
        Ok(())
    }

    /// Rechunk method: a tree rebuilt with its files cut again; returns its new id.
    fn tree_rechunk(&mut self, id: &BlobId) -> Result<BlobId> {
        if let Some(done) = self.session.trees.get(id).or_else(|| self.trees.get(id)) {
            return Ok(*done);
        }
        let plain = self.source().load_blob(id, BlobKind::Tree)?;
        let mut tree = Tree::decode(&plain).map_err(|e| Error::corrupt(format!("tree {id}"), e))?;
        for e in &mut tree.entries {
            match &e.kind {
                EntryKind::File(c) => {
                    let mut list = ContentListBuilder::new();
                    let params = self.w.chunker_params();
                    self.content_rechunk(c, e.size, &params, &mut list)?;
                    let w = &mut *self.w;
                    let mut store = |plain: &[u8]| w.store_blob(content_list::KIND, plain);
                    let (content, size) = list.finish_content(&mut store)?;
                    if size != e.size {
                        return Err(Error::Internal(format!(
                            "{}: copied {size} bytes of a {}-byte file",
                            String::from_utf8_lossy(&e.name),
                            e.size
                        )));
                    }
                    e.kind = EntryKind::File(content);
                }
                EntryKind::Dir(d) => {
                    let d = *d;
                    e.kind = EntryKind::Dir(self.tree_rechunk(&d)?);
                }
                _ => {}
            }
        }
        let bytes = tree
            .encode()
            .map_err(|e| Error::Internal(format!("re-encoding tree {id}: {e}")))?;
        let new = self.w.store_blob(BlobKind::Tree, &bytes)?;
        self.trees.insert(*id, new);
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(secs: i64, original: Option<SnapshotId>, damaged: bool) -> Snapshot {
        Snapshot {
            damaged: damaged.then(|| crate::format::snapshot::Damage {
                marked: jiff::Timestamp::UNIX_EPOCH,
                problems: 1,
                first: "x".into(),
            }),
            original,
            ..Snapshot::for_tests("db", "h", secs)
        }
    }

    #[test]
    fn plan_skips_what_the_destination_holds_by_id_or_original() {
        let (a, b, c, d) = (
            SnapshotId([1; 32]),
            SnapshotId([2; 32]),
            SnapshotId([3; 32]),
            SnapshotId([4; 32]),
        );
        let (a2, x) = (SnapshotId([11; 32]), SnapshotId([12; 32]));
        // The destination holds a copy of `a`, and `x`, of which the source's `c` is a copy.
        let dst = vec![(a2, snap(1, Some(a), false)), (x, snap(3, None, false))];
        let src = vec![
            (d, snap(4, None, true)),
            (b, snap(2, None, false)),
            (a, snap(1, None, false)),
            (c, snap(3, Some(x), false)),
        ];
        let p = plan(src, &dst);
        assert_eq!(
            p.copy.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![b]
        );
        assert_eq!(p.present, vec![(a, a2), (c, x)]);
        assert_eq!(p.damaged, vec![d]);
    }
}
