//! Structure step 3 of `check`: every snapshot object is read again, and every snapshot's
//! root is walked — tree and content-list blobs loaded and verified, data chunks looked up
//! in the catalog — recording which damage groups lie beneath each blob walked. Then every
//! problem learns the snapshots that depend on it.
//!
//! A blob shared by many snapshots (the usual case: incremental snapshots share most of
//! their lists and trees) is walked once; memory is one small record per distinct tree or
//! content-list blob, never per data chunk. Children of one blob are fetched in parallel,
//! [`FETCH_BATCH`] at a time.

use std::collections::HashSet;

use rayon::prelude::*;

use super::{Checker, Object, ProblemKind, Store};
use crate::backend::{self, ObjectKey, Prefix};
use crate::blob;
use crate::catalog::BlobLocation;
use crate::content_list::{KIND as LIST_KIND, MAX_ENTRIES};
use crate::error::Result;
use crate::format::content_list::ContentListBlob;
use crate::format::snapshot::Root;
use crate::format::tree::{Content, EntryKind, Tree};
use crate::format::{BlobKind, DecodeError};
use crate::id::{BlobId, SnapshotId};
use crate::repo::object;

/// Tree and content-list blobs fetched at once, per level of the walk.
const FETCH_BATCH: usize = 32;

/// Snapshot objects read at once.
const SNAPSHOTS_AT_ONCE: usize = 64;

/// A walked tree or content-list blob.
pub(super) struct Walked {
    /// The kind its first reference expected.
    kind: BlobKind,
    /// For a content list that decoded: its level and the bytes it covers.
    shape: Option<(u8, Option<u64>)>,
    /// The damage groups at or beneath it, sorted.
    groups: Box<[u32]>,
}

/// A reference from a snapshot, tree or content list to a tree or content-list blob, with
/// what the referrer says about it.
#[derive(Debug, Clone, Copy)]
struct NodeRef {
    id: BlobId,
    kind: BlobKind,
    /// The level a content list must have (below a content list of level n: n - 1).
    level: Option<u8>,
    /// The stream bytes a content list must cover.
    size: Option<u64>,
    /// The blob holding the reference (`None`: the snapshot).
    parent: Option<BlobId>,
}

/// A loaded tree or content-list blob.
enum Node {
    List(ContentListBlob),
    Tree(Tree),
}

/// Why a tree or content-list blob could not be loaded.
enum LoadFailure {
    /// Its pack is not there.
    PackMissing,
    /// The storage failed (or the pack is shorter than the blob's range).
    Unreadable(backend::Error),
    /// It failed authentication, decompression or its id check.
    Corrupt(&'static str),
    /// It opened but does not decode.
    Invalid(DecodeError),
}

fn kind_name(k: BlobKind) -> &'static str {
    match k {
        BlobKind::Data => "data chunk",
        BlobKind::ContentList => "content list",
        BlobKind::Tree => "tree",
    }
}

impl Store<'_> {
    /// Loads, opens and decodes one tree or content-list blob at `at`.
    fn load_node(&self, at: &BlobLocation) -> std::result::Result<Node, LoadFailure> {
        let e = &at.entry;
        let sealed = self
            .get_range(&ObjectKey::pack(&at.pack), e.range())
            .map_err(|err| match err {
                backend::Error::NotFound { .. } => LoadFailure::PackMissing,
                err => LoadFailure::Unreadable(err),
            })?;
        let plain = blob::open(self.keys, e.kind, e.id, e.compression, e.raw_len, &sealed)
            .map_err(|err| LoadFailure::Corrupt(err.reason()))?;
        match e.kind {
            BlobKind::Tree => Tree::decode(&plain).map(Node::Tree),
            _ => ContentListBlob::decode(&plain).map(Node::List),
        }
        .map_err(LoadFailure::Invalid)
    }
}

impl Checker<'_> {
    /// Every snapshot object is read again; every snapshot the catalog knows (synced at
    /// open) is walked. Returns the snapshots, oldest first, with the groups each depends
    /// on; then any snapshot object the catalog does not know that fails to read (one that
    /// reads was written after the catalog sync, by a concurrent backup).
    pub(super) fn check_snapshots(&mut self) -> Result<Vec<(SnapshotId, Vec<u32>)>> {
        let snaps = self.repo.catalog().snapshots()?;
        let known: HashSet<SnapshotId> = snaps.iter().map(|(id, _)| *id).collect();
        let listed: Vec<SnapshotId> = self.list_ids(Prefix::Snapshots)?;
        let ids: Vec<SnapshotId> = snaps
            .iter()
            .map(|(id, _)| *id)
            .chain(listed.into_iter().filter(|id| !known.contains(id)))
            .collect();
        let unreadable = self.verify_snapshots(&ids)?;
        let mut out: Vec<(SnapshotId, Vec<u32>)> = Vec::with_capacity(snaps.len());
        let mut extra = Vec::new();
        for (i, (id, g)) in ids.iter().zip(unreadable).enumerate() {
            if i < snaps.len() {
                out.push((*id, g.into_iter().collect()));
            } else if let Some(g) = g {
                extra.push((*id, vec![g]));
            }
        }
        for ((_, snap), (_, groups)) in snaps.iter().zip(out.iter_mut()) {
            let root = match snap.root {
                Root::Stream { content_list, size } => NodeRef {
                    id: content_list,
                    kind: LIST_KIND,
                    level: None,
                    size: Some(size),
                    parent: None,
                },
                Root::Tree { tree } => NodeRef {
                    id: tree,
                    kind: BlobKind::Tree,
                    level: None,
                    size: None,
                    parent: None,
                },
            };
            self.visit(&[root], groups)?;
        }
        out.extend(extra);
        self.report.snapshots = u64::try_from(out.len()).unwrap_or(u64::MAX);
        Ok(out)
    }

    /// Reads snapshot objects again; for each, the group of its problem if it is unreadable.
    fn verify_snapshots(&mut self, ids: &[SnapshotId]) -> Result<Vec<Option<u32>>> {
        let mut out = Vec::with_capacity(ids.len());
        let store = self.store;
        for batch in ids.chunks(SNAPSHOTS_AT_ONCE) {
            let loaded: Vec<_> = batch
                .par_iter()
                .map(|id| {
                    store.counted(1);
                    object::load_snapshot(store.backend, store.keys, id).map(|_| ())
                })
                .collect();
            for (id, r) in batch.iter().zip(loaded) {
                let Err(e) = r else {
                    out.push(None);
                    continue;
                };
                // A snapshot the catalog knows is still walked, from the catalog's copy:
                // which blobs it needs matters to the snapshots that share them.
                let msg = super::failure(e, "")?;
                let g = self.new_group();
                let object = Object::Snapshot(*id);
                self.problem(ProblemKind::SnapshotUnreadable, object, None, msg, vec![g]);
                out.push(Some(g));
            }
        }
        Ok(out)
    }

    /// Walks the blobs `refs` (the children of one blob, or a snapshot's root), loading the
    /// ones not walked yet in parallel, and adds the groups at or beneath them to `out`.
    fn visit(&mut self, refs: &[NodeRef], out: &mut Vec<u32>) -> Result<()> {
        for batch in refs.chunks(FETCH_BATCH) {
            let mut todo: Vec<NodeRef> = Vec::new();
            for r in batch {
                if !self.nodes.contains_key(&r.id) && !todo.iter().any(|t| t.id == r.id) {
                    todo.push(*r);
                }
            }
            let ids: Vec<BlobId> = todo.iter().map(|r| r.id).collect();
            let located = self.repo.catalog().locate_many(&ids)?;
            let mut fetch = Vec::new();
            for (r, at) in todo.into_iter().zip(located) {
                let indexed = at.is_some();
                // A blob only an unreferenced pack holds is still walked from there.
                let at = at.or_else(|| {
                    let (pack, entry) = self.unindexed.get(&r.id)?;
                    Some(BlobLocation {
                        pack: *pack,
                        entry: *entry,
                    })
                });
                let g = match at {
                    None => self.missing_blob(r.id),
                    Some(at) if at.entry.kind != r.kind => self.wrong_kind(&at, r.kind),
                    Some(at) => {
                        if !indexed {
                            self.missing_blob(r.id);
                        }
                        fetch.push((r, at));
                        continue;
                    }
                };
                self.unwalked += 1;
                self.walked(r.id, r.kind, None, vec![g]);
            }
            let store = self.store;
            let loaded: Vec<_> = fetch
                .par_iter()
                .map(|(_, at)| store.load_node(at))
                .collect();
            for ((r, at), node) in fetch.into_iter().zip(loaded) {
                let mut groups = self.location_groups(&at);
                match node {
                    Ok(node) => self.walk(r.id, node, groups)?,
                    Err(f) => {
                        self.unwalked += 1;
                        groups.push(self.load_failure(&at, f)?);
                        self.walked(r.id, r.kind, None, groups);
                    }
                }
            }
            for r in batch {
                self.check_ref(r, out);
            }
        }
        Ok(())
    }

    /// Walks a loaded blob: records it first (a cycle, impossible with hashed ids, would end
    /// there), then the groups of what it references.
    fn walk(&mut self, id: BlobId, node: Node, mut groups: Vec<u32>) -> Result<()> {
        match node {
            Node::List(list) => {
                self.report.content_lists += 1;
                let shape = Some((list.level, list.total()));
                self.walked(id, LIST_KIND, shape, Vec::new());
                if list.level == 0 {
                    let chunks: Vec<BlobId> = list.entries.iter().map(|e| e.id).collect();
                    self.check_chunks(&chunks, &mut groups)?;
                } else {
                    let refs: Vec<NodeRef> = list
                        .entries
                        .iter()
                        .map(|e| NodeRef {
                            id: e.id,
                            kind: LIST_KIND,
                            level: Some(list.level - 1),
                            size: Some(e.size),
                            parent: Some(id),
                        })
                        .collect();
                    drop(list);
                    self.visit(&refs, &mut groups)?;
                }
            }
            Node::Tree(tree) => {
                self.report.trees += 1;
                self.walked(id, BlobKind::Tree, None, Vec::new());
                let mut chunks = Vec::new();
                let mut refs = Vec::new();
                for e in tree.entries {
                    let (child, kind, size) = match e.kind {
                        EntryKind::File(Content::Inline(list)) => {
                            chunks.extend(list.iter().map(|c| c.id));
                            continue;
                        }
                        EntryKind::File(Content::List(list)) => (list, LIST_KIND, Some(e.size)),
                        EntryKind::Dir(tree) => (tree, BlobKind::Tree, None),
                        _ => continue,
                    };
                    refs.push(NodeRef {
                        id: child,
                        kind,
                        level: None,
                        size,
                        parent: Some(id),
                    });
                }
                self.check_chunks(&chunks, &mut groups)?;
                self.visit(&refs, &mut groups)?;
            }
        }
        groups.sort_unstable();
        groups.dedup();
        if let Some(w) = self.nodes.get_mut(&id) {
            w.groups = groups.into();
        }
        Ok(())
    }

    fn walked(
        &mut self,
        id: BlobId,
        kind: BlobKind,
        shape: Option<(u8, Option<u64>)>,
        mut groups: Vec<u32>,
    ) {
        groups.sort_unstable();
        groups.dedup();
        let groups = groups.into();
        self.nodes.insert(
            id,
            Walked {
                kind,
                shape,
                groups,
            },
        );
    }

    /// Adds a walked blob's groups to its referrer's, after checking that it is what the
    /// reference says: the same kind, and for a content list the level and size.
    fn check_ref(&mut self, r: &NodeRef, out: &mut Vec<u32>) {
        let Some(w) = self.nodes.get(&r.id) else {
            return;
        };
        out.extend_from_slice(&w.groups);
        if w.kind != r.kind {
            let (was, now) = (kind_name(w.kind), kind_name(r.kind));
            let g = self.blob_problem(ProblemKind::BlobWrongKind, Object::Blob(r.id), r.id, || {
                format!("is referenced both as a {was} and as a {now}")
            });
            out.push(g);
            return;
        }
        let Some((level, total)) = w.shape else {
            return;
        };
        let level_ok = r.level.is_none_or(|l| l == level);
        let size_ok = r.size.is_none_or(|s| total == Some(s));
        if level_ok && size_ok {
            return;
        }
        let referrer = match r.parent {
            Some(p) => format!("blob {p}"),
            None => "its snapshot".to_owned(),
        };
        let covers = total.map_or_else(|| "more than 2^64".to_owned(), |t| t.to_string());
        let wants_level = r
            .level
            .map_or_else(|| "any level".to_owned(), |l| format!("level {l}"));
        let wants_size = r
            .size
            .map_or_else(|| "any number of".to_owned(), |s| s.to_string());
        let g = self.blob_problem(ProblemKind::BlobInvalid, Object::Blob(r.id), r.id, || {
            format!(
                "is a content list of level {level} covering {covers} bytes, but {referrer} expects {wants_level} covering {wants_size} bytes"
            )
        });
        out.push(g);
    }

    /// The groups a blob at `at` is in already: its pack's and its own.
    fn location_groups(&self, at: &BlobLocation) -> Vec<u32> {
        let mut g = Vec::new();
        g.extend(self.pack_groups.get(&at.pack));
        g.extend(self.blob_groups.get(&at.entry.id));
        g
    }

    /// Looks data chunks up in the catalog: indexed, as data; adds their groups to `out`.
    fn check_chunks(&mut self, ids: &[BlobId], out: &mut Vec<u32>) -> Result<()> {
        let repo = self.repo;
        for part in ids.chunks(MAX_ENTRIES) {
            for (id, at) in part.iter().zip(repo.catalog().locate_many(part)?) {
                self.report.chunk_refs += 1;
                match at {
                    None => out.push(self.missing_blob(*id)),
                    Some(at) => {
                        if at.entry.kind != BlobKind::Data {
                            out.push(self.wrong_kind(&at, BlobKind::Data));
                        }
                        out.extend(self.location_groups(&at));
                    }
                }
            }
            // Many chunks share a pack: keep the list short as it grows.
            out.sort_unstable();
            out.dedup();
        }
        Ok(())
    }

    /// A blob no index segment names: lost with the index if an unreferenced pack holds
    /// it (one problem per such pack), else missing data.
    fn missing_blob(&mut self, id: BlobId) -> u32 {
        if let Some(g) = self.blob_groups.get(&id) {
            return *g;
        }
        let Some((pack, _)) = self.unindexed.get(&id).copied() else {
            return self.blob_problem(ProblemKind::BlobMissing, Object::Blob(id), id, || {
                "is needed, but no index segment names it and no pack holds it (missing data)"
                    .into()
            });
        };
        let g = self.pack_group(pack);
        self.blob_groups.insert(id, g);
        match self.not_indexed.get_mut(&pack) {
            Some((_, n)) => *n += 1,
            None => {
                // The message is written once the count is known (`warn_unreferenced`).
                let object = Object::Pack(pack);
                let at = self.problem(
                    ProblemKind::PackNotIndexed,
                    object,
                    None,
                    String::new(),
                    vec![g],
                );
                self.not_indexed.insert(pack, (at, 1));
            }
        }
        g
    }

    fn wrong_kind(&mut self, at: &BlobLocation, wanted: BlobKind) -> u32 {
        let has = at.entry.kind;
        let object = Object::Pack(at.pack);
        self.blob_problem(ProblemKind::BlobWrongKind, object, at.entry.id, || {
            format!(
                "is indexed as a {} but referenced as a {}",
                kind_name(has),
                kind_name(wanted)
            )
        })
    }

    /// The group of a tree or content-list blob that could not be loaded. A storage failure
    /// stops the check unless the blob's pack is known to be damaged.
    fn load_failure(&mut self, at: &BlobLocation, f: LoadFailure) -> Result<u32> {
        let blob = at.entry.id;
        let what = kind_name(at.entry.kind);
        let object = Object::Pack(at.pack);
        Ok(match f {
            LoadFailure::PackMissing => {
                if !self.pack_groups.contains_key(&at.pack) {
                    let msg = "vanished while being checked".to_owned();
                    self.pack_problem(ProblemKind::PackMissing, at.pack, msg);
                }
                self.pack_group(at.pack)
            }
            LoadFailure::Unreadable(e) => match self.pack_groups.get(&at.pack) {
                Some(g) => *g,
                None => return Err(e.into()),
            },
            LoadFailure::Corrupt(reason) => {
                self.blob_problem(ProblemKind::BlobCorrupt, object, blob, || {
                    format!("{what}: {reason}")
                })
            }
            LoadFailure::Invalid(e) => {
                self.blob_problem(ProblemKind::BlobInvalid, object, blob, || {
                    format!("{what} opens but does not decode: {e}")
                })
            }
        })
    }

    /// Fills in every problem's snapshots from the groups each snapshot depends on.
    ///
    /// A blob problem that no walked snapshot reaches, in a damaged pack, while some tree
    /// or content list could not be loaded, may well be needed below what was lost: it is
    /// given the snapshots of its pack rather than none.
    pub(super) fn attribute(&mut self, snapshots: &[(SnapshotId, Vec<u32>)]) {
        let groups = usize::try_from(self.group_count).unwrap_or(usize::MAX);
        let mut by_group: Vec<Vec<usize>> = vec![Vec::new(); groups];
        for (i, (_, gs)) in snapshots.iter().enumerate() {
            for g in gs {
                if let Some(v) = usize::try_from(*g).ok().and_then(|g| by_group.get_mut(g)) {
                    v.push(i);
                }
            }
        }
        let snapshots_of = |groups: &[u32]| -> Vec<usize> {
            let mut idx: Vec<usize> = groups
                .iter()
                .filter_map(|g| by_group.get(usize::try_from(*g).ok()?))
                .flatten()
                .copied()
                .collect();
            idx.sort_unstable();
            idx.dedup();
            idx
        };
        for p in &mut self.report.problems {
            let mut idx = snapshots_of(&p.groups);
            if let (true, true, Some(_), Object::Pack(pack)) =
                (idx.is_empty(), self.unwalked > 0, p.blob, p.object)
            {
                if let Some(g) = self.pack_groups.get(&pack) {
                    idx = snapshots_of(&[*g]);
                }
            }
            p.snapshots = idx
                .iter()
                .filter_map(|i| snapshots.get(*i))
                .map(|s| s.0)
                .collect();
        }
    }
}
