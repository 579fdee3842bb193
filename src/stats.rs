//! `stats`: what the repository stores and what its snapshots hold — stored and raw size,
//! compression and dedup ratios, per series (name) and per snapshot.
//!
//! Read-only and lock-free, like `snapshots`: everything comes from the catalog (synced at
//! open) plus, for directory snapshots, their tree blobs. Three sources of numbers:
//!
//! - the index (catalog SQL, no blob read): packs, pack bytes, blobs by kind with their raw
//!   and stored bytes; the compression ratio is raw / stored over every indexed blob;
//! - the snapshot objects: `bytes_read`, `bytes_added`, `raw_bytes_added`, chunk counts;
//! - the *restore size* of each snapshot (what restoring it writes): a stream's root size,
//!   or for a directory snapshot the file bytes beneath its root tree. A directory snapshot
//!   made with a parent does not read unchanged files, so its `bytes_read` understates what
//!   it holds; the tree walk that finds the restore size loads each distinct tree blob once
//!   (memoized by id: snapshots share unchanged subtrees) and never a data chunk.
//!
//! The *logical size* is the sum of restore sizes (restoring every snapshot), and the dedup
//! ratio is logical / raw bytes: of the whole index for the repository, of the bytes each
//! snapshot added for a snapshot or a series.
//!
//! With [`StatsOptions::unused`], every snapshot's blobs are marked in the catalog's live
//! set, as `prune` marks them (trees and content lists loaded, data chunks only marked), to
//! count what no snapshot references; that walk reads every content list, so it is opt-in.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use crate::backend::{ObjectKey, Prefix};
use crate::blob;
use crate::catalog::live::{BlobTotals, KindTotals};
use crate::content_list::KIND as LIST_KIND;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::content_list::ContentListBlob;
use crate::format::snapshot::{Root, Snapshot};
use crate::format::tree::{Content, EntryKind, Tree};
use crate::id::{BlobId, PackId, SnapshotId};
use crate::repo::Repo;
use crate::snapshot::Selector;

/// Tree and content-list blobs fetched at once.
const FETCH_BATCH: usize = 32;

/// What to report on.
#[derive(Debug, Clone, Default)]
pub struct StatsOptions {
    /// Only snapshots of this name in the series and snapshot lists.
    pub name: Option<String>,
    /// Only snapshots of this host in the series and snapshot lists.
    pub host: Option<String>,
    /// Also walk every snapshot to count the blobs none references (and list `packs/` for
    /// packs no index segment names).
    pub unused: bool,
}

/// Everything `stats` reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StatsReport {
    /// The whole repository, whatever the filters.
    pub repository: RepositoryStats,
    /// Sums over the snapshots that pass the filters.
    pub selected: Totals,
    /// One entry per series name among the selected snapshots, by name.
    pub series: Vec<SeriesStats>,
    /// The selected snapshots, oldest first.
    pub snapshots: Vec<SnapshotStats>,
}

/// The whole repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepositoryStats {
    /// Snapshots.
    pub snapshots: u64,
    /// Indexed packs.
    pub packs: u64,
    /// Their length: the bytes the backend stores for them.
    pub pack_bytes: u64,
    /// Every indexed blob.
    pub blobs: BlobTotals,
    /// The same, by kind.
    pub by_kind: KindTotals,
    /// Logical size: the sum of every snapshot's restore size.
    pub restore_size: u64,
    /// The sum of every snapshot's `bytes_read`.
    pub bytes_read: u64,
    /// Raw / stored bytes of every indexed blob (`None` for an empty index).
    pub compression_ratio: Option<f64>,
    /// Logical size / raw bytes of every indexed blob (`None` for an empty index).
    pub dedup_ratio: Option<f64>,
    /// What no snapshot references; only with [`StatsOptions::unused`].
    pub unused: Option<UnusedStats>,
}

/// What no snapshot references.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UnusedStats {
    /// Indexed blobs no snapshot reaches (left by forget, or by interrupted backups).
    pub blobs: BlobTotals,
    /// The same, by kind.
    pub by_kind: KindTotals,
    /// Packs in `packs/` that no index segment names (interrupted backups, or backups
    /// still running).
    pub unindexed_packs: u64,
    /// Their length.
    pub unindexed_pack_bytes: u64,
}

/// One snapshot.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotStats {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its series name.
    pub name: String,
    /// Its host.
    pub host: String,
    /// When it started.
    pub time: jiff::Timestamp,
    /// What restoring it writes: the stream length, or the file bytes of its tree.
    pub restore_size: u64,
    /// Bytes read from the source when it was made.
    pub bytes_read: u64,
    /// Stored bytes it added to the repository.
    pub bytes_added: u64,
    /// Plaintext bytes of the blobs it added.
    pub raw_bytes_added: u64,
    /// Chunks in its source.
    pub chunks: u64,
    /// Of those, chunks not stored before.
    pub new_chunks: u64,
    /// Restore size / raw bytes added (`None` when it added nothing).
    pub dedup_ratio: Option<f64>,
    /// Raw / stored bytes of what it added (`None` when it added nothing).
    pub compression_ratio: Option<f64>,
}

impl SnapshotStats {
    /// The figures of snapshot `id` whose restore size is `restore_size`.
    pub fn new(id: SnapshotId, s: &Snapshot, restore_size: u64) -> Self {
        Self {
            id,
            name: s.name.clone(),
            host: s.host.clone(),
            time: s.time,
            restore_size,
            bytes_read: s.bytes_read,
            bytes_added: s.bytes_added,
            raw_bytes_added: s.raw_bytes_added,
            chunks: s.chunks,
            new_chunks: s.new_chunks,
            dedup_ratio: ratio(restore_size, s.raw_bytes_added),
            compression_ratio: ratio(s.raw_bytes_added, s.bytes_added),
        }
    }
}

/// Sums over a set of snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Totals {
    /// Snapshots.
    pub snapshots: u64,
    /// Logical size: the sum of their restore sizes.
    pub restore_size: u64,
    /// The sum of their `bytes_read`.
    pub bytes_read: u64,
    /// Stored bytes they added.
    pub bytes_added: u64,
    /// Plaintext bytes of the blobs they added.
    pub raw_bytes_added: u64,
    /// Logical size / raw bytes added: restored bytes per byte these snapshots stored
    /// (`None` when they added nothing; blobs other snapshots added are not counted).
    pub dedup_ratio: Option<f64>,
}

impl Totals {
    fn add(&mut self, s: &SnapshotStats) {
        self.snapshots += 1;
        self.restore_size = self.restore_size.saturating_add(s.restore_size);
        self.bytes_read = self.bytes_read.saturating_add(s.bytes_read);
        self.bytes_added = self.bytes_added.saturating_add(s.bytes_added);
        self.raw_bytes_added = self.raw_bytes_added.saturating_add(s.raw_bytes_added);
        self.dedup_ratio = ratio(self.restore_size, self.raw_bytes_added);
    }
}

/// One series: the snapshots of one name.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SeriesStats {
    /// The series name.
    pub name: String,
    /// The hosts its snapshots were taken on, sorted.
    pub hosts: Vec<String>,
    /// The newest snapshot.
    pub newest: SnapshotId,
    /// When the newest snapshot started.
    pub newest_time: jiff::Timestamp,
    /// The newest snapshot's restore size.
    pub newest_restore_size: u64,
    /// Sums over the series.
    #[serde(flatten)]
    pub totals: Totals,
}

/// `a / b`, or `None` when `b` is 0.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

/// Gathers the report: index totals, restore sizes, and with `opts.unused` the live walk.
/// Takes no lock; a backup running meanwhile is simply not counted (or, with `unused`, its
/// packs show as unindexed).
pub fn report(repo: &Repo, opts: &StatsOptions) -> Result<StatsReport> {
    let cat = repo.catalog();
    let all = cat.snapshots()?;
    let (packs, pack_bytes) = cat.pack_totals()?;
    let by_kind = cat.blob_totals()?;
    let blobs = by_kind.all();

    let sel = Selector {
        name: opts.name.clone(),
        host: opts.host.clone(),
        ..Selector::default()
    };
    let mut trees = TreeSizes {
        repo,
        sizes: HashMap::new(),
    };
    let mut everything = Totals::default();
    let mut selected = Vec::new();
    for (id, s) in &all {
        let restore_size = match s.root {
            Root::Stream { size, .. } => size,
            Root::Tree { tree } => trees.of(tree)?,
        };
        let row = SnapshotStats::new(*id, s, restore_size);
        everything.add(&row);
        if sel.matches(s) {
            selected.push(row);
        }
    }
    drop(trees);

    let unused = if opts.unused {
        Some(unused(repo, &all)?)
    } else {
        None
    };
    let (totals, series) = summarize(&selected);
    Ok(StatsReport {
        repository: RepositoryStats {
            snapshots: everything.snapshots,
            packs,
            pack_bytes,
            blobs,
            by_kind,
            restore_size: everything.restore_size,
            bytes_read: everything.bytes_read,
            compression_ratio: ratio(blobs.raw_bytes, blobs.stored_bytes),
            dedup_ratio: ratio(everything.restore_size, blobs.raw_bytes),
            unused,
        },
        selected: totals,
        series,
        snapshots: selected,
    })
}

/// Sums `rows` (oldest first), in all and per series name.
fn summarize(rows: &[SnapshotStats]) -> (Totals, Vec<SeriesStats>) {
    let mut all = Totals::default();
    let mut by_name: BTreeMap<&str, (SeriesStats, BTreeSet<&str>)> = BTreeMap::new();
    for r in rows {
        all.add(r);
        let (series, hosts) = by_name.entry(&r.name).or_insert_with(|| {
            let series = SeriesStats {
                name: r.name.clone(),
                hosts: Vec::new(),
                newest: r.id,
                newest_time: r.time,
                newest_restore_size: r.restore_size,
                totals: Totals::default(),
            };
            (series, BTreeSet::new())
        });
        series.totals.add(r);
        hosts.insert(&r.host);
        // Oldest first, so a later row is at least as new; `>=` keeps the catalog's order
        // (time, then id) for equal times, as `latest` does.
        if r.time >= series.newest_time {
            series.newest = r.id;
            series.newest_time = r.time;
            series.newest_restore_size = r.restore_size;
        }
    }
    let series = by_name
        .into_values()
        .map(|(mut s, hosts)| {
            s.hosts = hosts.into_iter().map(str::to_owned).collect();
            s
        })
        .collect();
    (all, series)
}

/// The restore size of directory snapshots: the file bytes beneath each tree, memoized by
/// tree id so that a subtree many snapshots share is loaded once. Memory: one entry per
/// distinct tree, plus [`FETCH_BATCH`] loaded trees per directory level being walked.
struct TreeSizes<'r> {
    repo: &'r Repo,
    sizes: HashMap<BlobId, u64>,
}

impl TreeSizes<'_> {
    /// The file bytes beneath tree `root`; hardlinks count once (restore links them).
    fn of(&mut self, root: BlobId) -> Result<u64> {
        self.visit(&[root])?;
        Ok(self.sizes.get(&root).copied().unwrap_or(0))
    }

    fn visit(&mut self, ids: &[BlobId]) -> Result<()> {
        for batch in ids.chunks(FETCH_BATCH) {
            let mut todo: Vec<(BlobId, BlobKind)> = Vec::new();
            for id in batch {
                if !self.sizes.contains_key(id) && !todo.iter().any(|t| t.0 == *id) {
                    todo.push((*id, BlobKind::Tree));
                }
            }
            let loaded = load_many(self.repo, &todo)?;
            for ((id, _), bytes) in todo.iter().zip(loaded) {
                let tree =
                    Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {id}"), e))?;
                let mut size = 0u64;
                let mut dirs = Vec::new();
                for e in &tree.entries {
                    match e.kind {
                        EntryKind::File(_) => size = size.saturating_add(e.size),
                        EntryKind::Dir(sub) => dirs.push(sub),
                        _ => {}
                    }
                }
                drop(tree);
                self.visit(&dirs)?;
                for d in &dirs {
                    size = size.saturating_add(self.sizes.get(d).copied().unwrap_or(0));
                }
                self.sizes.insert(*id, size);
            }
        }
        Ok(())
    }
}

/// Marks every snapshot's blobs in the live set, then counts what is left out, and the
/// packs no index segment names.
fn unused(repo: &Repo, all: &[(SnapshotId, Snapshot)]) -> Result<UnusedStats> {
    let roots = all
        .iter()
        .map(|(_, s)| match s.root {
            Root::Stream { content_list, .. } => (content_list, LIST_KIND),
            Root::Tree { tree } => (tree, BlobKind::Tree),
        })
        .collect();
    mark(repo, roots)?;
    let by_kind = repo.catalog().unused_blob_totals()?;
    let indexed = repo.catalog().pack_ids()?;
    let (mut unindexed_packs, mut unindexed_pack_bytes) = (0u64, 0u64);
    for o in repo.backend().list(Prefix::Packs)? {
        if let Ok(id) = o.key.name().parse::<PackId>()
            && !indexed.contains(&id)
        {
            unindexed_packs += 1;
            unindexed_pack_bytes = unindexed_pack_bytes.saturating_add(o.size);
        }
    }
    Ok(UnusedStats {
        blobs: by_kind.all(),
        by_kind,
        unindexed_packs,
        unindexed_pack_bytes,
    })
}

/// Marks every blob reachable from `roots` in the catalog's live set, as prune does: trees
/// and content lists are loaded ([`FETCH_BATCH`] at once, depth first), data chunks only
/// marked; a tree or list marked already is not walked again.
fn mark(repo: &Repo, roots: Vec<(BlobId, BlobKind)>) -> Result<()> {
    let cat = repo.catalog();
    cat.live_reset()?;
    let mut stack = roots;
    while !stack.is_empty() {
        let batch = stack.split_off(stack.len().saturating_sub(FETCH_BATCH));
        let ids: Vec<BlobId> = batch.iter().map(|r| r.0).collect();
        let fresh = cat.live_mark(&ids)?;
        let todo: Vec<(BlobId, BlobKind)> = batch
            .into_iter()
            .zip(fresh)
            .filter_map(|(r, new)| new.then_some(r))
            .collect();
        let loaded = load_many(repo, &todo)?;
        for ((id, kind), bytes) in todo.into_iter().zip(loaded) {
            if kind == BlobKind::Tree {
                let tree =
                    Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {id}"), e))?;
                let mut chunks = Vec::new();
                for e in tree.entries {
                    match e.kind {
                        EntryKind::Dir(sub) => stack.push((sub, BlobKind::Tree)),
                        EntryKind::File(Content::List(list)) => stack.push((list, LIST_KIND)),
                        EntryKind::File(Content::Inline(list)) => {
                            chunks.extend(list.iter().map(|c| c.id));
                        }
                        _ => {}
                    }
                }
                cat.live_mark(&chunks)?;
            } else {
                let list = ContentListBlob::decode(&bytes)
                    .map_err(|e| Error::corrupt(format!("content list {id}"), e))?;
                let children = list.entries.iter().map(|e| e.id);
                if list.level == 0 {
                    cat.live_mark(&children.collect::<Vec<_>>())?;
                } else {
                    stack.extend(children.map(|c| (c, LIST_KIND)));
                }
            }
        }
    }
    Ok(())
}

/// Loads tree and content-list blobs, each checked against its expected kind: catalog
/// lookups on this thread (the connection is not shared), then range reads, unsealing and
/// re-hashing in parallel. The same steps as [`Repo::load_blob`], batched.
fn load_many(repo: &Repo, refs: &[(BlobId, BlobKind)]) -> Result<Vec<Vec<u8>>> {
    let ids: Vec<BlobId> = refs.iter().map(|r| r.0).collect();
    let located = repo.catalog().locate_many(&ids)?;
    let mut at = Vec::with_capacity(refs.len());
    for ((id, kind), loc) in refs.iter().zip(located) {
        let loc = loc.ok_or(Error::MissingBlob { blob: *id })?;
        if loc.entry.kind != *kind {
            return Err(Error::CorruptBlob {
                pack: loc.pack,
                blob: *id,
                reason: "indexed with the wrong blob kind",
            });
        }
        at.push(loc);
    }
    let backend = repo.backend();
    let keys = repo.keys();
    at.par_iter()
        .map(|loc| {
            let e = &loc.entry;
            let sealed = backend
                .get_range(&ObjectKey::pack(&loc.pack), e.range())
                .map_err(Error::reading_pack(loc.pack))?;
            blob::open(keys, e.kind, e.id, e.compression, e.raw_len, &sealed).map_err(|err| {
                Error::CorruptBlob {
                    pack: loc.pack,
                    blob: e.id,
                    reason: err.reason(),
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream snapshot, decoded from JSON so that optional fields added later need no
    /// change here.
    fn snap(name: &str, host: &str, secs: i64, read: u64, raw: u64, stored: u64) -> Snapshot {
        let body = serde_json::json!({
            "time": jiff::Timestamp::from_second(secs).unwrap(),
            "duration": 1.0,
            "host": host,
            "name": name,
            "source": {"kind": "stdin"},
            "producer_status": {"state": "unknown"},
            "root": {"kind": "stream", "content_list": "00".repeat(32), "size": read},
            "bytes_read": read,
            "bytes_added": stored,
            "raw_bytes_added": raw,
            "chunks": 4,
            "new_chunks": 2,
            "larder_version": "test",
        });
        Snapshot::decode_body(body.to_string().as_bytes()).unwrap()
    }

    fn id(n: u8) -> SnapshotId {
        SnapshotId::from_slice(&[n; 32]).unwrap()
    }

    #[test]
    fn snapshot_ratios() {
        let s = SnapshotStats::new(id(1), &snap("db", "h", 0, 1000, 250, 100), 1000);
        assert_eq!(s.dedup_ratio, Some(4.0));
        assert_eq!(s.compression_ratio, Some(2.5));
        // Nothing added: no ratio rather than infinity (JSON has no infinity).
        let s = SnapshotStats::new(id(2), &snap("db", "h", 0, 1000, 0, 0), 1000);
        assert_eq!(s.dedup_ratio, None);
        assert_eq!(s.compression_ratio, None);
    }

    #[test]
    fn series_sum_per_name_and_keep_the_newest() {
        let rows = [
            SnapshotStats::new(id(1), &snap("db", "a", 10, 100, 100, 50), 100),
            SnapshotStats::new(id(2), &snap("etc", "a", 20, 10, 10, 10), 30),
            SnapshotStats::new(id(3), &snap("db", "b", 30, 120, 20, 10), 120),
        ];
        let (all, series) = summarize(&rows);
        assert_eq!(all.snapshots, 3);
        assert_eq!(all.restore_size, 250);
        assert_eq!(all.bytes_read, 230);
        assert_eq!(all.raw_bytes_added, 130);
        assert_eq!(all.bytes_added, 70);
        let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["db", "etc"]);
        let db = &series[0];
        assert_eq!(db.totals.snapshots, 2);
        assert_eq!(db.totals.restore_size, 220);
        assert_eq!(db.totals.bytes_added, 60);
        assert_eq!(db.totals.dedup_ratio, Some(220.0 / 120.0));
        assert_eq!(db.hosts, ["a", "b"]);
        assert_eq!(db.newest, id(3));
        assert_eq!(db.newest_restore_size, 120);
        let etc = &series[1];
        assert_eq!(etc.totals.restore_size, 30);
        assert_eq!(etc.totals.bytes_read, 10);
        assert_eq!(etc.newest, id(2));
    }

    #[test]
    fn nothing_selected() {
        let (all, series) = summarize(&[]);
        assert_eq!(all, Totals::default());
        assert!(series.is_empty());
    }
}
