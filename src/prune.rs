//! `prune`: mark every blob reachable from a snapshot, then delete packs that hold nothing
//! live and repack packs whose unused share exceeds `max_unused`. Under an exclusive lock,
//! in an order that makes a crash at any instant harmless (`format-spec/repository.md`):
//!
//! 1. repack: copy live blobs of mostly-dead packs into new packs (verified before they are
//!    copied) and index them;
//! 2. write new index segments for every pack that stays;
//! 3. delete the old index segments;
//! 4. delete dead packs, repacked packs and packs no segment names.
//!
//! Until step 3 the old index still names every old pack; from step 3 on, the new segments
//! name every live blob. A kill at any point leaves, at worst, unreferenced packs or
//! duplicate index entries, which the next prune removes.

use std::collections::HashSet;
use std::time::Instant;

use rayon::prelude::*;

use crate::backend::{ObjectKey, Prefix};
use crate::blob::{self, SealedBlob};
use crate::content_list;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::content_list::ContentListBlob;
use crate::format::event::EventKind;
use crate::format::index_segment::{IndexSegment, IndexedPack};
use crate::format::snapshot::Root;
use crate::format::tree::{Content, EntryKind, Tree};
use crate::id::{BlobId, IndexId, PackId};
use crate::progress::Progress;
use crate::repo::lock::ExclusiveLock;
use crate::repo::writer::RepoWriter;
use crate::repo::{Repo, object};

/// Blobs per rewritten index segment.
const SEGMENT_BLOBS: usize = 65_536;

/// How to prune.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PruneOptions {
    /// Repack a pack when more than this fraction of it is unused (0.05 by default).
    pub max_unused: f64,
    /// Repack at most this many bytes of packs in one run.
    pub max_repack_bytes: Option<u64>,
}

impl Default for PruneOptions {
    fn default() -> Self {
        Self {
            max_unused: 0.05,
            max_repack_bytes: None,
        }
    }
}

/// One pack in a plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PlannedPack {
    /// The pack.
    pub id: PackId,
    /// Its length.
    pub length: u64,
    /// Sealed bytes of its live blobs.
    pub live_bytes: u64,
}

/// What prune will do; shown by `--dry-run`, then applied.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PrunePlan {
    /// Snapshots marked from.
    pub snapshots: usize,
    /// Live blobs.
    pub live_blobs: u64,
    /// Packs with nothing live: deleted.
    pub delete: Vec<PlannedPack>,
    /// Packs mostly unused: their live blobs are copied, then they are deleted.
    pub repack: Vec<PlannedPack>,
    /// Packs no index segment names (left by interrupted runs): deleted.
    pub unindexed: Vec<PlannedPack>,
    /// Packs that stay as they are.
    pub keep: usize,
    /// Packs over `max_unused` left for a later run by `max_repack_bytes`.
    pub repack_deferred: usize,
    /// Index segments to be replaced.
    pub old_segments: Vec<IndexId>,
}

impl PrunePlan {
    /// Bytes freed once applied (the repacked live bytes are written again).
    pub fn bytes_freed(&self) -> u64 {
        let gone: u64 = self
            .delete
            .iter()
            .chain(&self.repack)
            .chain(&self.unindexed)
            .map(|p| p.length)
            .sum();
        gone.saturating_sub(self.bytes_repacked())
    }

    /// Live bytes copied into new packs.
    pub fn bytes_repacked(&self) -> u64 {
        self.repack.iter().map(|p| p.live_bytes).sum()
    }

    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.repack.is_empty() && self.unindexed.is_empty()
    }
}

/// What prune did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PruneReport {
    /// Packs deleted (dead, repacked and unindexed).
    pub packs_deleted: u64,
    /// Packs written by repacking.
    pub packs_written: u64,
    /// Index segments written (repack and rewrite).
    pub segments_written: u64,
    /// Index segments deleted.
    pub segments_deleted: u64,
    /// Seconds taken.
    pub duration: f64,
}

/// Event objects `trim_events` keeps per kind and series (format-spec/event.md).
pub const EVENTS_KEPT: usize = 30;

/// Deletes all but the newest [`EVENTS_KEPT`] events of each kind and series (prunes count
/// as one series): history for `status`, bounded. Returns how many were deleted.
pub fn trim_events(repo: &mut Repo, lock: &ExclusiveLock) -> Result<u64> {
    let events = repo.catalog().events()?; // oldest first
    let mut seen: std::collections::HashMap<(EventKind, Option<String>), usize> =
        std::collections::HashMap::new();
    let mut old = Vec::new();
    for (id, e) in events.iter().rev() {
        let n = seen.entry((e.kind, e.series.clone())).or_default();
        *n += 1;
        if *n > EVENTS_KEPT {
            old.push(*id);
        }
    }
    if old.is_empty() {
        return Ok(0);
    }
    lock.ensure_held()?;
    for id in &old {
        repo.backend().delete(&ObjectKey::event(id))?;
    }
    repo.catalog_mut().remove_events(&old)?;
    Ok(old.len() as u64)
}

/// Walks every snapshot and marks the blobs it reaches in the catalog's live set.
fn mark(repo: &Repo) -> Result<usize> {
    let cat = repo.catalog();
    cat.live_reset()?;
    let snaps = cat.snapshots()?;
    for (_, s) in &snaps {
        match s.root {
            Root::Stream { content_list, .. } => mark_list(repo, content_list)?,
            Root::Tree { tree } => mark_tree(repo, tree)?,
        }
    }
    Ok(snaps.len())
}

fn mark_list(repo: &Repo, id: BlobId) -> Result<()> {
    if !repo.catalog().live_mark(&[id])?[0] {
        return Ok(());
    }
    let bytes = repo.load_blob(&id, content_list::KIND)?;
    let node = ContentListBlob::decode(&bytes)
        .map_err(|e| Error::corrupt(format!("content list {id}"), e))?;
    let ids: Vec<BlobId> = node.entries.iter().map(|e| e.id).collect();
    if node.level == 0 {
        repo.catalog().live_mark(&ids)?;
    } else {
        for id in ids {
            mark_list(repo, id)?;
        }
    }
    Ok(())
}

fn mark_tree(repo: &Repo, id: BlobId) -> Result<()> {
    if !repo.catalog().live_mark(&[id])?[0] {
        return Ok(());
    }
    let bytes = repo.load_blob(&id, BlobKind::Tree)?;
    let tree = Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {id}"), e))?;
    for e in &tree.entries {
        match &e.kind {
            EntryKind::Dir(sub) => mark_tree(repo, *sub)?,
            EntryKind::File(Content::Inline(chunks)) => {
                let ids: Vec<BlobId> = chunks.iter().map(|c| c.id).collect();
                repo.catalog().live_mark(&ids)?;
            }
            EntryKind::File(Content::List(root)) => mark_list(repo, *root)?,
            _ => {}
        }
    }
    Ok(())
}

/// Marks, then decides what to delete and repack. Nothing is written.
pub fn plan(repo: &mut Repo, opts: &PruneOptions) -> Result<PrunePlan> {
    let mut plan = PrunePlan {
        old_segments: repo
            .backend()
            .list(Prefix::Index)?
            .into_iter()
            .filter_map(|o| o.key.name().parse().ok())
            .collect(),
        ..Default::default()
    };
    plan.snapshots = mark(repo)?;
    let missing = repo.catalog().live_unindexed(5)?;
    if let Some(first) = missing.first() {
        return Err(Error::Internal(format!(
            "snapshots reference blob {first} (and maybe others) that no index segment names; \
             refusing to prune a damaged repository (run `larder check`)"
        )));
    }
    let usage = repo.catalog().pack_usage()?;
    let indexed: HashSet<PackId> = usage.iter().map(|u| u.id).collect();
    let mut candidates = Vec::new();
    for u in &usage {
        plan.live_blobs += u.live_blobs;
        let p = PlannedPack {
            id: u.id,
            length: u.length,
            live_bytes: u.live_bytes,
        };
        if u.live_blobs == 0 {
            plan.delete.push(p);
        } else {
            // The share of the pack's blob bytes that nothing needs (its header and prefix
            // are not "unused": a repacked pack would have them too).
            let unused =
                u.blob_bytes.saturating_sub(u.live_bytes) as f64 / u.blob_bytes.max(1) as f64;
            if unused > opts.max_unused {
                candidates.push((unused, p));
            } else {
                plan.keep += 1;
            }
        }
    }
    // Most wasteful first, up to the repack budget.
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut budget = opts.max_repack_bytes.unwrap_or(u64::MAX);
    for (_, p) in candidates {
        if p.length <= budget {
            budget -= p.length;
            plan.repack.push(p);
        } else {
            plan.repack_deferred += 1;
            plan.keep += 1;
        }
    }
    for o in repo.backend().list(Prefix::Packs)? {
        if let Ok(id) = o.key.name().parse::<PackId>()
            && !indexed.contains(&id)
        {
            plan.unindexed.push(PlannedPack {
                id,
                length: o.size,
                live_bytes: 0,
            });
        }
    }
    Ok(plan)
}

/// Applies a plan made by [`plan`] under the same lock, in the crash-safe order above.
pub fn apply(
    repo: &mut Repo,
    plan: &PrunePlan,
    lock: &ExclusiveLock,
    progress: &dyn Progress,
) -> Result<PruneReport> {
    let started = Instant::now();
    let mut report = PruneReport::default();
    if plan.is_empty() {
        report.duration = started.elapsed().as_secs_f64();
        return Ok(report);
    }
    lock.ensure_held()?;
    let gone: HashSet<PackId> = plan
        .delete
        .iter()
        .chain(&plan.repack)
        .chain(&plan.unindexed)
        .map(|p| p.id)
        .collect();

    // 1. Repack: every copied blob is opened (AEAD, decompress, re-hash) before it is copied.
    let mut keep_entries = Vec::new();
    for u in repo.catalog().pack_usage()? {
        if !gone.contains(&u.id) {
            keep_entries.push(IndexedPack {
                id: u.id,
                length: u.length,
                blobs: repo.catalog().pack_entries(&u.id, false)?,
            });
        }
    }
    let mut to_copy = Vec::new();
    for p in &plan.repack {
        to_copy.push((p.id, repo.catalog().pack_entries(&p.id, true)?));
    }
    if !to_copy.is_empty() {
        let backend = repo.backend().clone();
        let keys = repo.keys().clone();
        let mut w = RepoWriter::new(repo, None);
        for (pack, entries) in &to_copy {
            let bytes =
                object::read_named(backend.as_ref(), &ObjectKey::pack(pack), pack.as_bytes())
                    .map_err(|e| match e {
                        Error::Backend(b) => Error::reading_pack(*pack)(b),
                        e => e,
                    })?;
            // Open every blob (in parallel) before any of it is copied.
            let verified: Vec<SealedBlob> = entries
                .par_iter()
                .map(|e| {
                    let r = e.range();
                    let sealed = usize::try_from(r.start)
                        .ok()
                        .zip(usize::try_from(r.end).ok())
                        .and_then(|(s, t)| bytes.get(s..t))
                        .ok_or(Error::CorruptBlob {
                            pack: *pack,
                            blob: e.id,
                            reason: "range outside the pack",
                        })?;
                    blob::open(&keys, e.kind, e.id, e.compression, e.raw_len, sealed).map_err(
                        |err| Error::CorruptBlob {
                            pack: *pack,
                            blob: e.id,
                            reason: err.reason(),
                        },
                    )?;
                    Ok(SealedBlob {
                        id: e.id,
                        kind: e.kind,
                        compression: e.compression,
                        raw_len: e.raw_len,
                        bytes: sealed.to_vec(),
                    })
                })
                .collect::<Result<_>>()?;
            for b in verified {
                progress.bytes(b.bytes.len() as u64);
                w.add_sealed(b)?;
            }
        }
        let stats = w.finish()?;
        report.packs_written = stats.packs;
        report.segments_written += stats.index_segments;
    }

    // 2. New index segments for every pack that stays.
    let mut segment = IndexSegment::default();
    let mut in_segment = 0;
    for p in keep_entries {
        in_segment += p.blobs.len();
        segment.packs.push(p);
        if in_segment >= SEGMENT_BLOBS {
            object::store_index_segment(repo.backend().as_ref(), repo.keys(), &segment)?;
            report.segments_written += 1;
            segment = IndexSegment::default();
            in_segment = 0;
        }
    }
    if !segment.packs.is_empty() {
        object::store_index_segment(repo.backend().as_ref(), repo.keys(), &segment)?;
        report.segments_written += 1;
    }

    // 3. Old index segments.
    lock.ensure_held()?;
    for id in &plan.old_segments {
        repo.backend().delete(&ObjectKey::index(id))?;
        report.segments_deleted += 1;
    }

    // 4. Packs nothing names any more.
    lock.ensure_held()?;
    for id in &gone {
        repo.backend().delete(&ObjectKey::pack(id))?;
        report.packs_deleted += 1;
    }
    repo.resync()?;
    report.duration = started.elapsed().as_secs_f64();
    Ok(report)
}
