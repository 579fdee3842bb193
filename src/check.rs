//! `check`: does the repository hold everything its snapshots need, intact?
//!
//! **Structure** (always; reads index segments, snapshots, pack headers and the tree and
//! content-list blobs, never data chunks):
//!
//! 1. every index segment listed in `index/` is read again, its name checked against its
//!    hash, authenticated and decoded;
//! 2. every pack a segment names is in the `packs/` listing with the indexed length, and the
//!    header at its tail (one range read, two if the header is longer than the index
//!    implies) authenticates and lists exactly the blobs the segment lists;
//! 3. every snapshot object is read again and authenticated, and its root is walked: tree
//!    and content-list blobs are loaded and verified (invariant 4), data chunks are looked
//!    up in the catalog, and every blob must be indexed with the kind its reference implies.
//!
//! **Read data** ([`ReadData`]): the selected packs are downloaded whole, their BLAKE3 must
//! equal their name, and every blob in them is opened (AEAD, bounded decompression, re-hash).
//!
//! Every problem names the object, the blob when there is one, and every snapshot that
//! depends on it (invariant 4): the walk records, per tree or content-list blob, which
//! damage lies beneath it, memoised so that what many snapshots share is walked once.
//! Memory is bounded by the number of distinct tree and content-list blobs, never by data.
//!
//! Packs that no index segment names are warnings, not damage: invariant 2 allows them as
//! leftovers of interrupted runs, which prune removes. The exception is a pack holding a
//! blob some snapshot needs and no index names: that is damage (the index lost it), and
//! the warning "prune removes it" would be wrong.
//!
//! Read-only; the caller holds a shared lock so that prune cannot delete under it. The plain
//! check does not look at the first bytes of packs (magic, version): `--read-data` does.

mod data;
mod index;
mod walk;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::backend::{self, Backend, ObjectKey, Prefix};
use crate::crypto::Keys;
use crate::error::{Error, ErrorKind, Result};
use crate::format::pack::BlobEntry;
use crate::id::{BlobId, EventId, IndexId, PackId, SnapshotId};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::repo::object;
use rayon::prelude::*;

/// Which packs `check` downloads and verifies blob by blob.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum ReadData {
    /// None: the structure check only.
    #[default]
    None,
    /// Every pack the index names.
    All,
    /// Subset `n` of `m` (1-based): the packs whose id, its first 8 bytes read as a
    /// little-endian integer, is `n - 1` modulo `m`. Fixed by the ids, so running `1/m`
    /// to `m/m` reads every pack exactly once.
    Fraction {
        /// Which subset, `1..=m`.
        n: u32,
        /// How many subsets.
        m: u32,
    },
    /// This percentage of the packs (`0 < p <= 100`, rounded up to whole packs), chosen at
    /// random afresh on every run.
    Percent(f64),
    /// Packs chosen at random afresh on every run, as many as fit in this many bytes (at
    /// most; packs larger than what is left are skipped).
    Bytes(u64),
}

/// What `check` does beyond the structure check.
#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    /// Which packs to download and verify blob by blob.
    pub read_data: ReadData,
}

/// A repository object a problem is about. Serialised (and shown) as its key in the
/// repository, e.g. `packs/3f/3fa2…`; a blob no pack is known to hold as `blob <id>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Object {
    /// `packs/<xx>/<id>`
    Pack(PackId),
    /// `index/<id>`
    IndexSegment(IndexId),
    /// `snapshots/<id>`
    Snapshot(SnapshotId),
    /// `events/<id>`
    Event(EventId),
    /// A blob that is in no pack the index names.
    Blob(BlobId),
}

impl fmt::Display for Object {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Object::Pack(id) => ObjectKey::pack(id).fmt(f),
            Object::IndexSegment(id) => ObjectKey::index(id).fmt(f),
            Object::Snapshot(id) => ObjectKey::snapshot(id).fmt(f),
            Object::Event(id) => ObjectKey::event(id).fmt(f),
            Object::Blob(id) => write!(f, "blob {id}"),
        }
    }
}

impl serde::Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What is wrong (the `kind` field of a problem in `--json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// An index segment does not match its name, fails authentication or does not decode.
    IndexSegmentUnreadable,
    /// A pack the index names is not in the repository.
    PackMissing,
    /// A pack's length differs from the indexed length (truncated or appended to).
    PackLength,
    /// A pack's header fails authentication or does not decode.
    PackHeaderUnreadable,
    /// A pack's header and the index disagree about its blobs.
    PackHeaderMismatch,
    /// A pack no index segment names holds blobs that snapshots need.
    PackNotIndexed,
    /// A pack's bytes do not hash to its name (`--read-data`).
    PackHashMismatch,
    /// A blob fails authentication, decompression or its id check, or lies beyond its pack.
    BlobCorrupt,
    /// A blob a snapshot needs is in no index segment (and no unreferenced pack).
    BlobMissing,
    /// A blob is indexed with another kind than its reference implies.
    BlobWrongKind,
    /// A tree or content-list blob opens but does not decode, or disagrees with the entry
    /// that refers to it (level, size).
    BlobInvalid,
    /// A snapshot object does not match its name, fails authentication or does not decode.
    SnapshotUnreadable,
    /// An event object (a run, drill or prune record) does not match its name, fails
    /// authentication or does not decode. No snapshot depends on it; `status` loses a line of
    /// history.
    EventUnreadable,
}

/// One piece of damage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Problem {
    /// What is wrong.
    pub kind: ProblemKind,
    /// The object it is in.
    pub object: Object,
    /// The blob, when the problem is about one.
    pub blob: Option<BlobId>,
    /// Every snapshot that depends on it, oldest first.
    pub snapshots: Vec<SnapshotId>,
    /// What is wrong, one lowercase line (without the object's name).
    pub message: String,
    /// The damage groups whose snapshots this problem affects.
    #[serde(skip)]
    groups: Vec<u32>,
}

/// What a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// A pack no index segment names and no snapshot needs (left by an interrupted run).
    UnreferencedPack,
    /// Something in `packs/`, `index/` or `snapshots/` whose name is not an object's.
    UnknownObject,
    /// Damage that only snapshots already marked damaged by `repair snapshots` depend on.
    KnownDamage,
}

/// Something worth knowing that is not damage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The key in the repository.
    pub object: String,
    /// Its size in bytes.
    pub size: u64,
    /// One lowercase line.
    pub message: String,
}

/// What `check` looked at and found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct CheckReport {
    /// Index segments read.
    pub index_segments: u64,
    /// Packs the index names.
    pub packs: u64,
    /// Their total indexed length in bytes.
    pub pack_bytes: u64,
    /// Snapshots checked.
    pub snapshots: u64,
    /// Distinct tree blobs loaded and walked.
    pub trees: u64,
    /// Distinct content-list blobs loaded and walked.
    pub content_lists: u64,
    /// References to data chunks looked up (not distinct: counted per list or tree visited).
    pub chunk_refs: u64,
    /// Packs downloaded whole (`--read-data`).
    pub packs_read: u64,
    /// Blobs opened in them.
    pub blobs_read: u64,
    /// Bytes downloaded for that.
    pub bytes_read: u64,
    /// The packs downloaded, sorted.
    pub read_packs: Vec<PackId>,
    /// Backend requests made (lists, gets, range gets).
    pub requests: u64,
    /// Seconds taken.
    pub duration: f64,
    /// Damage, in the order found. Empty means the repository passed.
    pub problems: Vec<Problem>,
    /// Findings that are not damage.
    pub warnings: Vec<Warning>,
}

/// Checks the repository (see the module docs); `progress` counts the bytes of packs read.
/// Damage is reported in the returned report, not as an error: an error means the check
/// itself could not go on (storage unreachable, catalog failure).
pub fn run(repo: &Repo, opts: &CheckOptions, progress: &dyn Progress) -> Result<CheckReport> {
    validate(opts.read_data)?;
    let started = Instant::now();
    let store = Store {
        backend: repo.backend().as_ref(),
        keys: repo.keys(),
        requests: AtomicU64::new(0),
    };
    let mut c = Checker {
        repo,
        store: &store,
        progress,
        report: CheckReport::default(),
        group_count: 0,
        pack_groups: HashMap::new(),
        blob_groups: HashMap::new(),
        unindexed: HashMap::new(),
        not_indexed: HashMap::new(),
        nodes: HashMap::new(),
        unwalked: 0,
    };
    // `index/` before `packs/`: packs are written before the segment naming them, so every
    // pack a listed segment names is already in the later listing.
    let segments: Vec<IndexId> = c.list_ids(Prefix::Index)?;
    let listed = c.list_packs()?;
    let indexed = c.check_index(&segments, &listed)?;
    let unreferenced = c.scan_unreferenced(&listed, &indexed.named)?;
    let selected = select(&indexed.present, opts.read_data);
    c.read_packs(&selected)?;
    let snapshots = c.check_snapshots()?;
    c.check_events()?;
    c.warn_unreferenced(unreferenced);
    c.attribute(&snapshots);
    known_damage(repo, &mut c.report)?;
    c.report.requests = store.requests.load(Ordering::Relaxed);
    c.report.duration = started.elapsed().as_secs_f64();
    Ok(c.report)
}

/// Damage that only snapshots marked damaged by `repair snapshots` depend on is known and
/// reported as a warning, so that a repaired repository checks clean.
fn known_damage(repo: &Repo, report: &mut CheckReport) -> Result<()> {
    let marked: std::collections::HashSet<SnapshotId> = repo
        .catalog()
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| s.damaged.is_some())
        .map(|(id, _)| id)
        .collect();
    if marked.is_empty() {
        return Ok(());
    }
    let (known, open): (Vec<Problem>, Vec<Problem>) = std::mem::take(&mut report.problems)
        .into_iter()
        .partition(|p| !p.snapshots.is_empty() && p.snapshots.iter().all(|s| marked.contains(s)));
    report.problems = open;
    for p in known {
        report.warnings.push(Warning {
            kind: WarningKind::KnownDamage,
            object: p.object.to_string(),
            size: 0,
            message: format!(
                "{} (only snapshots marked damaged depend on it: {})",
                p.message,
                p.snapshots
                    .iter()
                    .map(|s| s.short())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    Ok(())
}

fn validate(r: ReadData) -> Result<()> {
    let ok = match r {
        ReadData::None | ReadData::All => true,
        ReadData::Fraction { n, m } => n >= 1 && n <= m,
        ReadData::Percent(p) => p > 0.0 && p <= 100.0,
        ReadData::Bytes(b) => b > 0,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(format!(
            "invalid read-data subset {r:?}: use n/m with 1 <= n <= m, a percentage in (0, 100], or a size above 0"
        )))
    }
}

/// The packs to download: the candidates' selection for `how`, sorted by id.
fn select(candidates: &[(PackId, u64)], how: ReadData) -> Vec<(PackId, u64)> {
    let mut out: Vec<(PackId, u64)> = match how {
        ReadData::None => Vec::new(),
        ReadData::All => candidates.to_vec(),
        ReadData::Fraction { n, m } => candidates
            .iter()
            .filter(|(id, _)| subset_of(id, m) == n.saturating_sub(1))
            .copied()
            .collect(),
        ReadData::Percent(p) => {
            let want = (candidates.len() as f64 * p / 100.0).ceil();
            #[allow(
                clippy::cast_possible_truncation,
                reason = "clamped to 0..=len before the cast"
            )]
            let k = want.clamp(0.0, candidates.len() as f64) as usize;
            shuffled(candidates).into_iter().take(k).collect()
        }
        ReadData::Bytes(budget) => {
            let mut left = budget;
            shuffled(candidates)
                .into_iter()
                .filter(|(_, len)| {
                    let fits = *len <= left;
                    if fits {
                        left -= len;
                    }
                    fits
                })
                .collect()
        }
    };
    out.sort_unstable();
    out
}

/// Which of `m` fixed subsets a pack belongs to (`0..m`).
fn subset_of(id: &PackId, m: u32) -> u32 {
    let b = id.as_bytes();
    let n = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    u32::try_from(n % u64::from(m.max(1))).expect("a remainder modulo a u32 fits in a u32")
}

/// The packs in a random order: sorted by a BLAKE3 keyed with 32 fresh random bytes.
fn shuffled(packs: &[(PackId, u64)]) -> Vec<(PackId, u64)> {
    let mut seed = [0u8; 32];
    crate::crypto::random_fill(&mut seed);
    let mut out = packs.to_vec();
    out.sort_by_cached_key(|(id, _)| *blake3::keyed_hash(&seed, id.as_bytes()).as_bytes());
    out
}

/// What a failure to read an object says about it, without its name (the problem names
/// it); `part` is empty or names the part read (`"its header "`). Failures that are not
/// damage (I/O, the catalog) stop the check.
fn failure(e: Error, part: &str) -> Result<String> {
    Ok(match e {
        Error::UnauthenticObject { .. } => {
            format!("{part}failed authentication (corrupt or tampered)")
        }
        Error::CorruptObject { source, .. } => format!("{part}is corrupt: {source}"),
        Error::MissingPack { .. } | Error::Backend(backend::Error::NotFound { .. }) => {
            format!("{part}vanished while being checked")
        }
        e if e.kind() == ErrorKind::Integrity => e.to_string(),
        e => return Err(e),
    })
}

/// The backend and keys, shareable across threads; counts requests.
struct Store<'a> {
    backend: &'a dyn Backend,
    keys: &'a Keys,
    requests: AtomicU64,
}

impl Store<'_> {
    fn counted(&self, n: u64) {
        self.requests.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self, key: &ObjectKey) -> Result<Vec<u8>, backend::Error> {
        self.counted(1);
        self.backend.get(key)
    }

    fn get_range(
        &self,
        key: &ObjectKey,
        range: std::ops::Range<u64>,
    ) -> Result<Vec<u8>, backend::Error> {
        self.counted(1);
        self.backend.get_range(key, range)
    }

    fn list(&self, prefix: Prefix) -> Result<Vec<backend::ObjectInfo>, backend::Error> {
        self.counted(1);
        self.backend.list(prefix)
    }
}

/// One run of `check`.
///
/// Damage is tracked in *groups*: one per damaged pack, one per damaged or missing blob,
/// one per unreadable snapshot object. The walk records which groups lie beneath each tree
/// and content list, so each snapshot knows the groups it depends on, and each problem the
/// snapshots of its groups.
struct Checker<'a> {
    repo: &'a Repo,
    store: &'a Store<'a>,
    progress: &'a dyn Progress,
    report: CheckReport,
    group_count: u32,
    pack_groups: HashMap<PackId, u32>,
    blob_groups: HashMap<BlobId, u32>,
    /// Blobs no index segment names, with the unreferenced pack whose header lists them.
    unindexed: HashMap<BlobId, (PackId, BlobEntry)>,
    /// `PackNotIndexed` problems: the problem's position and how many needed blobs it holds.
    not_indexed: HashMap<PackId, (usize, u64)>,
    /// Tree and content-list blobs walked.
    nodes: HashMap<BlobId, walk::Walked>,
    /// Tree and content-list blobs that could not be loaded: what they reference is unknown.
    unwalked: u64,
}

impl Checker<'_> {
    fn new_group(&mut self) -> u32 {
        self.group_count += 1;
        self.group_count - 1
    }

    fn pack_group(&mut self, pack: PackId) -> u32 {
        if let Some(g) = self.pack_groups.get(&pack) {
            return *g;
        }
        let g = self.new_group();
        self.pack_groups.insert(pack, g);
        g
    }

    fn problem(
        &mut self,
        kind: ProblemKind,
        object: Object,
        blob: Option<BlobId>,
        message: String,
        groups: Vec<u32>,
    ) -> usize {
        self.report.problems.push(Problem {
            kind,
            object,
            blob,
            snapshots: Vec::new(),
            message,
            groups,
        });
        self.report.problems.len() - 1
    }

    /// Every event object reads (they are few and small: prune keeps the newest of each
    /// kind and series).
    fn check_events(&mut self) -> Result<()> {
        let ids: Vec<EventId> = self.list_ids(Prefix::Events)?;
        let store = self.store;
        let loaded: Vec<_> = ids
            .par_iter()
            .map(|id| {
                store.counted(1);
                object::load_event(store.backend, store.keys, id).map(|_| ())
            })
            .collect();
        for (id, r) in ids.iter().zip(loaded) {
            if let Err(e) = r {
                let msg = failure(e, "")?;
                let g = self.new_group();
                self.problem(
                    ProblemKind::EventUnreadable,
                    Object::Event(*id),
                    None,
                    msg,
                    vec![g],
                );
            }
        }
        Ok(())
    }

    fn pack_problem(&mut self, kind: ProblemKind, pack: PackId, msg: String) {
        let g = self.pack_group(pack);
        self.problem(kind, Object::Pack(pack), None, msg, vec![g]);
    }

    /// A problem about one blob; returns its group. A blob with a problem already gets no
    /// second one.
    fn blob_problem(
        &mut self,
        kind: ProblemKind,
        object: Object,
        blob: BlobId,
        msg: impl FnOnce() -> String,
    ) -> u32 {
        if let Some(g) = self.blob_groups.get(&blob) {
            return *g;
        }
        let g = self.new_group();
        self.blob_groups.insert(blob, g);
        self.problem(kind, object, Some(blob), msg(), vec![g]);
        g
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(n: u8) -> Vec<(PackId, u64)> {
        (0..n)
            .map(|i| {
                let id = PackId(*blake3::hash(&[i]).as_bytes());
                (id, 100 + u64::from(i))
            })
            .collect()
    }

    #[test]
    fn fractions_cover_every_pack_once() {
        let all = packs(200);
        for m in [1u32, 2, 3, 7] {
            let mut seen: Vec<(PackId, u64)> = (1..=m)
                .flat_map(|n| select(&all, ReadData::Fraction { n, m }))
                .collect();
            seen.sort_unstable();
            let mut want = all.clone();
            want.sort_unstable();
            assert_eq!(seen, want, "m = {m}");
        }
    }

    #[test]
    fn percent_and_bytes_choose_within_bounds() {
        let all = packs(50);
        assert_eq!(select(&all, ReadData::Percent(10.0)).len(), 5);
        assert_eq!(select(&all, ReadData::Percent(1.0)).len(), 1);
        assert_eq!(select(&all, ReadData::Percent(100.0)).len(), 50);
        let some = select(&all, ReadData::Bytes(1000));
        let total: u64 = some.iter().map(|p| p.1).sum();
        assert!(total <= 1000 && total > 1000 - 150, "{total}");
        assert!(select(&all, ReadData::Bytes(99)).is_empty());
        assert!(select(&all, ReadData::None).is_empty());
        assert_eq!(select(&all, ReadData::All).len(), 50);
    }

    #[test]
    fn invalid_subsets_are_refused() {
        for r in [
            ReadData::Fraction { n: 0, m: 3 },
            ReadData::Fraction { n: 4, m: 3 },
            ReadData::Percent(0.0),
            ReadData::Percent(100.5),
            ReadData::Percent(f64::NAN),
            ReadData::Bytes(0),
        ] {
            assert!(validate(r).is_err(), "{r:?}");
        }
        assert!(validate(ReadData::Fraction { n: 3, m: 3 }).is_ok());
    }
}
