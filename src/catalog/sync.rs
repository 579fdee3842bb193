//! Brings the catalog up to date with the repository's `index/`, `snapshots/` and `events/`
//! listings.
//!
//! Cost is proportional to what is new: one LIST per folder, then one GET per segment or
//! snapshot not merged yet. If a merged segment has disappeared (prune rewrote the index),
//! the index part of the catalog is rebuilt from scratch: it is a cache.

use std::collections::HashSet;

use rayon::prelude::*;

use super::Catalog;
use crate::backend::{Backend, Prefix};
use crate::crypto::Keys;
use crate::error::{ErrorKind, Result};
use crate::id::{EventId, IndexId, SnapshotId};
use crate::repo::object;

/// Segments fetched and decoded at once; bounds memory during a rebuild.
const SEGMENTS_AT_ONCE: usize = 8;

/// What a sync did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SyncStats {
    /// Index segments merged.
    pub segments_added: usize,
    /// Whether the index part was rebuilt from scratch.
    pub rebuilt: bool,
    /// Snapshots learned.
    pub snapshots_added: usize,
    /// Snapshots forgotten because they are gone from the repository.
    pub snapshots_removed: usize,
    /// Events (runs, drills, prunes) learned.
    pub events_added: usize,
    /// Event objects that could not be read: left out of `status` (no snapshot depends on
    /// them, so unlike the above they do not stop other commands); `check` reports them.
    pub unreadable_events: Vec<String>,
    /// Index segments and snapshots that could not be read (corrupt or tampered): skipped,
    /// so that the rest stays usable and `check` / `repair` can run; tried again next time.
    pub unreadable: Vec<String>,
}

fn listed<T: std::str::FromStr + std::hash::Hash + Eq>(
    b: &dyn Backend,
    p: Prefix,
) -> Result<HashSet<T>> {
    Ok(b.list(p)?
        .into_iter()
        .filter_map(|o| o.key.name().parse().ok())
        .collect())
}

/// Merges new index segments and snapshots into the catalog and forgets vanished ones.
pub fn sync(cat: &mut Catalog, b: &dyn Backend, keys: &Keys) -> Result<SyncStats> {
    let mut stats = SyncStats::default();

    let in_repo: HashSet<IndexId> = listed(b, Prefix::Index)?;
    let mut known = cat.segments()?;
    if !known.is_subset(&in_repo) {
        cat.clear_index()?;
        known.clear();
        stats.rebuilt = true;
    }
    let mut new: Vec<IndexId> = in_repo.difference(&known).copied().collect();
    new.sort();
    for group in new.chunks(SEGMENTS_AT_ONCE) {
        let loaded: Vec<_> = group
            .par_iter()
            .map(|id| object::load_index_segment(b, keys, id).map(|s| (*id, s)))
            .collect();
        for l in loaded {
            match l {
                Ok((id, seg)) => {
                    cat.add_segment(&id, &seg.packs)?;
                    stats.segments_added += 1;
                }
                Err(e) if e.kind() == ErrorKind::Integrity => stats.unreadable.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
    }

    let in_repo: HashSet<SnapshotId> = listed(b, Prefix::Snapshots)?;
    let known = cat.snapshot_ids()?;
    let gone: Vec<SnapshotId> = known.difference(&in_repo).copied().collect();
    cat.remove_snapshots(&gone)?;
    stats.snapshots_removed = gone.len();
    let new: Vec<SnapshotId> = in_repo.difference(&known).copied().collect();
    for group in new.chunks(64) {
        let mut loaded = Vec::new();
        for l in group
            .par_iter()
            .map(|id| object::load_snapshot(b, keys, id).map(|s| (*id, s)))
            .collect::<Vec<_>>()
        {
            match l {
                Ok(s) => loaded.push(s),
                Err(e) if e.kind() == ErrorKind::Integrity => stats.unreadable.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        stats.snapshots_added += loaded.len();
        cat.add_snapshots(&loaded)?;
    }

    let in_repo: HashSet<EventId> = listed(b, Prefix::Events)?;
    let known = cat.event_ids()?;
    let gone: Vec<EventId> = known.difference(&in_repo).copied().collect();
    cat.remove_events(&gone)?;
    let new: Vec<EventId> = in_repo.difference(&known).copied().collect();
    for group in new.chunks(64) {
        let mut loaded = Vec::new();
        for l in group
            .par_iter()
            .map(|id| object::load_event(b, keys, id).map(|e| (*id, e)))
            .collect::<Vec<_>>()
        {
            match l {
                Ok(e) => loaded.push(e),
                Err(e) if e.kind() == ErrorKind::Integrity => {
                    stats.unreadable_events.push(e.to_string());
                }
                Err(e) => return Err(e),
            }
        }
        stats.events_added += loaded.len();
        cat.add_events(&loaded)?;
    }
    Ok(stats)
}
