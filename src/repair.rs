//! `repair`: rebuild what can be rebuilt, under an exclusive lock.
//!
//! - **index**: new index segments from the pack headers (every pack in `packs/` whose
//!   header authenticates), written before the old segments are deleted; a pack whose
//!   header cannot be read is reported and left out (its blobs are lost unless stored
//!   elsewhere too).
//! - **snapshots**: runs `check` and marks every snapshot that depends on damage as damaged
//!   (a new snapshot object with `damaged` set replaces the old one): kept and listed, never
//!   used by `restore` or `latest`. With `forget`, damaged snapshots (found now or marked
//!   before) are deleted instead, and unreadable snapshot objects too. Nothing is deleted
//!   otherwise.

use std::collections::{BTreeMap, HashSet};

use crate::backend::{ObjectKey, Prefix};
use crate::check::{self, CheckOptions, Object, ProblemKind, ReadData};
use crate::error::Result;
use crate::format::index_segment::{IndexSegment, IndexedPack};
use crate::format::snapshot::Damage;
use crate::id::{IndexId, PackId, SnapshotId};
use crate::progress::NoProgress;
use crate::repo::lock::ExclusiveLock;
use crate::repo::{Repo, object};

/// Blobs per rebuilt index segment.
const SEGMENT_BLOBS: usize = 65_536;

/// What `repair index` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct IndexRepair {
    /// Packs whose header was read and indexed.
    pub packs: u64,
    /// Blobs they hold.
    pub blobs: u64,
    /// Packs whose header could not be read, and why.
    pub unreadable: Vec<(PackId, String)>,
    /// Index segments written.
    pub segments_written: u64,
    /// Old index segments deleted.
    pub segments_deleted: u64,
}

/// Rebuilds the index from pack headers.
pub fn index(repo: &mut Repo, lock: &ExclusiveLock) -> Result<IndexRepair> {
    let b = repo.backend().clone();
    let keys = repo.keys().clone();
    let old: Vec<IndexId> = b
        .list(Prefix::Index)?
        .into_iter()
        .filter_map(|o| o.key.name().parse().ok())
        .collect();
    let mut report = IndexRepair::default();
    let mut segment = IndexSegment::default();
    let mut in_segment = 0;
    let mut written = HashSet::new();
    let mut packs = b.list(Prefix::Packs)?;
    packs.sort_by(|a, b| a.key.cmp(&b.key));
    for o in packs {
        let Ok(id) = o.key.name().parse::<PackId>() else {
            continue;
        };
        match crate::pack::reader::read_header_at(b.as_ref(), &keys, &id, o.size) {
            Ok(h) => {
                report.packs += 1;
                report.blobs += h.blobs.len() as u64;
                in_segment += h.blobs.len();
                segment.packs.push(IndexedPack {
                    id,
                    length: o.size,
                    blobs: h.blobs,
                });
            }
            Err(e) if e.kind() == crate::error::ErrorKind::Integrity => {
                report.unreadable.push((id, e.to_string()));
            }
            Err(e) => return Err(e),
        }
        if in_segment >= SEGMENT_BLOBS {
            written.insert(object::store_index_segment(b.as_ref(), &keys, &segment)?);
            segment = IndexSegment::default();
            in_segment = 0;
        }
    }
    if !segment.packs.is_empty() {
        written.insert(object::store_index_segment(b.as_ref(), &keys, &segment)?);
    }
    report.segments_written = written.len() as u64;
    lock.ensure_held()?;
    for id in old.iter().filter(|id| !written.contains(*id)) {
        b.delete(&ObjectKey::index(id))?;
        report.segments_deleted += 1;
    }
    repo.resync()?;
    Ok(report)
}

/// What `repair snapshots` did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SnapshotRepair {
    /// Problems `check` found.
    pub problems: u64,
    /// Snapshots newly marked damaged: (old id, new id).
    pub marked: Vec<(SnapshotId, SnapshotId)>,
    /// Snapshots already marked.
    pub already_marked: Vec<SnapshotId>,
    /// Snapshots deleted (`forget`).
    pub forgotten: Vec<SnapshotId>,
    /// Snapshot objects that cannot be read (deleted only with `forget`).
    pub unreadable: Vec<SnapshotId>,
}

/// Marks (or with `forget`, deletes) the snapshots that depend on damage that `check`
/// finds (reading every pack with `read_data`, which finds corrupt data chunks too).
pub fn snapshots(
    repo: &mut Repo,
    lock: &ExclusiveLock,
    forget: bool,
    read_data: bool,
) -> Result<SnapshotRepair> {
    repo.resync()?;
    let found = check::run(
        repo,
        &CheckOptions {
            read_data: if read_data {
                ReadData::All
            } else {
                ReadData::None
            },
        },
        &NoProgress,
    )?;
    let mut report = SnapshotRepair {
        problems: found.problems.len() as u64,
        ..Default::default()
    };
    // Each affected snapshot with the first problem under it and how many there are.
    let mut affected: BTreeMap<SnapshotId, (u64, String)> = BTreeMap::new();
    for p in &found.problems {
        if p.kind == ProblemKind::SnapshotUnreadable
            && let Object::Snapshot(id) = p.object
        {
            report.unreadable.push(id);
            continue;
        }
        for s in &p.snapshots {
            let e = affected
                .entry(*s)
                .or_insert_with(|| (0, format!("{}: {}", p.object, p.message)));
            e.0 += 1;
        }
    }
    let snaps: BTreeMap<_, _> = repo.catalog().snapshots()?.into_iter().collect();
    let b = repo.backend().clone();
    lock.ensure_held()?;
    for (id, (problems, first)) in affected {
        let Some(snap) = snaps.get(&id) else { continue };
        if forget {
            b.delete(&ObjectKey::snapshot(&id))?;
            report.forgotten.push(id);
            continue;
        }
        if snap.damaged.is_some() {
            report.already_marked.push(id);
            continue;
        }
        let mut marked = snap.clone();
        marked.damaged = Some(Damage {
            marked: jiff::Timestamp::now(),
            problems,
            first,
        });
        // The marked copy first, then the original: a crash leaves both, never neither.
        let new = object::store_snapshot(b.as_ref(), repo.keys(), &marked)?;
        b.delete(&ObjectKey::snapshot(&id))?;
        report.marked.push((id, new));
    }
    if forget {
        // Snapshots marked by an earlier run go too, whether or not this check saw their
        // damage (a corrupt data chunk shows only with `read_data`).
        for (id, snap) in &snaps {
            if snap.damaged.is_some() && !report.forgotten.contains(id) {
                b.delete(&ObjectKey::snapshot(id))?;
                report.forgotten.push(*id);
            }
        }
        for id in &report.unreadable {
            b.delete(&ObjectKey::snapshot(id))?;
            report.forgotten.push(*id);
        }
    }
    repo.resync()?;
    Ok(report)
}
