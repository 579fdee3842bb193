//! The backup pipeline for files and directories:
//!
//! ```text
//! paths -> walk (lstat, sorted names, exclusions) -> unchanged since the parent? reuse its content
//!       -> else chunk -> keyed id -> dedup -> zstd -> AEAD -> pack writer       (backup.rs)
//!       -> tree blobs, bottom-up -> index segment -> snapshot object
//! ```
//!
//! One entry at a time on this thread; a large file's chunks are hashed and sealed on rayon
//! as for a stream. Entries that cannot be read are reported through [`Note`], counted, and
//! left out; everything else is saved (`format-spec/tree.md`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use globset::{Glob, GlobSet, GlobSetBuilder};

use super::{BATCH_BYTES, SnapshotOptions, SnapshotReport, prepare, seal_fresh, store_chunks};
use crate::chunker::{Batch, Chunker};
use crate::content_list::{self, ContentListBuilder};
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::content_list::ListEntry;
use crate::format::snapshot::{ProducerStatus, Root, Snapshot, Source, TreeCounts};
use crate::format::tree::{Content, EntryKind, Time, Tree, TreeEntry};
use crate::id::{BlobId, SnapshotId};
use crate::progress::Progress;
use crate::repo::Repo;
use crate::repo::writer::RepoWriter;

/// Files up to this size are read whole, and several of them are hashed and sealed together
/// as one batch (in parallel, like a stream's batch).
const SMALL_FILE: u64 = 1024 * 1024;

/// What to read and how.
#[derive(Debug, Clone, Default)]
pub struct DirOptions {
    /// The paths to save (made absolute; each must exist).
    pub paths: Vec<PathBuf>,
    /// Glob patterns: one without `/` matches a base name, one with `/` the absolute path.
    pub exclude: Vec<String>,
    /// Skip a directory that contains an entry with one of these names.
    pub exclude_if_present: Vec<String>,
    /// Do not descend into directories on another file system than their source path.
    pub one_file_system: bool,
    /// The parent snapshot; `None` picks the newest tree snapshot of the same name and host.
    pub parent: Option<SnapshotId>,
    /// Read every file, even those unchanged since the parent.
    pub force: bool,
}

/// Something the walk reports while it goes on.
#[derive(Debug)]
pub enum Note {
    /// Could not be read; left out of the snapshot and counted as an error.
    Unreadable {
        /// The path.
        path: PathBuf,
        /// Why.
        error: String,
    },
    /// Deliberately not saved (sockets).
    Skipped {
        /// The path.
        path: PathBuf,
        /// Why.
        why: &'static str,
    },
    /// The parent snapshot used for unchanged files.
    Parent(SnapshotId),
}

/// Glob exclusions, compiled once.
#[derive(Debug)]
pub struct Exclusion {
    base: GlobSet,
    full: GlobSet,
}

impl Exclusion {
    /// Compiles `patterns`; a bad pattern is a usage error naming it.
    pub fn new(patterns: &[String]) -> Result<Self> {
        let (mut base, mut full) = (GlobSetBuilder::new(), GlobSetBuilder::new());
        for p in patterns {
            let glob = Glob::new(p.trim_end_matches('/')).map_err(|e| {
                Error::InvalidArgument(format!("bad exclude pattern {p:?}: {}", e.kind()))
            })?;
            if p.contains('/') {
                full.add(glob);
            } else {
                base.add(glob);
            }
        }
        let build = |b: GlobSetBuilder| {
            b.build()
                .map_err(|e| Error::InvalidArgument(format!("bad exclude pattern: {e}")))
        };
        Ok(Self {
            base: build(base)?,
            full: build(full)?,
        })
    }

    /// Whether `path` (absolute) is excluded.
    pub fn excludes(&self, path: &Path) -> bool {
        (!self.base.is_empty() && path.file_name().is_some_and(|n| self.base.is_match(n)))
            || (!self.full.is_empty() && self.full.is_match(path))
    }
}

/// Which parts of the file system a snapshot covers: the absolute source paths as a tree of
/// names; a `whole` node is saved with everything below it.
#[derive(Debug, Default)]
struct Selection {
    whole: bool,
    children: BTreeMap<Vec<u8>, Selection>,
}

impl Selection {
    fn add(&mut self, path: &Path) {
        let mut node = self;
        for c in path.components() {
            if let std::path::Component::Normal(name) = c {
                node = node.children.entry(name.as_bytes().to_vec()).or_default();
            }
        }
        node.whole = true;
    }
}

/// Makes `p` absolute and lexically clean (no `.`, no `..`, no trailing `/`).
fn absolute(p: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(p).map_err(|source| Error::LocalIo {
        what: "cannot make absolute",
        path: p.to_path_buf(),
        source,
    })?;
    let mut out = PathBuf::from("/");
    for c in abs.components() {
        match c {
            std::path::Component::Normal(n) => out.push(n),
            std::path::Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Resolves uid and gid to names once each.
#[derive(Debug, Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
                    .filter(|n| n.len() <= 255)
                    .unwrap_or_default()
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
                    .filter(|n| n.len() <= 255)
                    .unwrap_or_default()
            })
            .clone()
    }
}

/// Reads a path's extended attributes (not following symlinks), sorted by name. A file
/// system without them gives none.
fn read_xattrs(path: &Path) -> std::io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for name in names {
        if let Some(value) = xattr::get(path, &name)? {
            out.push((name.as_bytes().to_vec(), value));
        }
    }
    out.sort();
    Ok(out)
}

fn time(secs: i64, nanos: i64) -> Time {
    Time {
        secs,
        nanos: u32::try_from(nanos).unwrap_or(0).min(999_999_999),
    }
}

/// What a walk came to.
#[derive(Debug, Default)]
struct Totals {
    counts: TreeCounts,
    errors: u64,
    bytes_read: u64,
    chunks: u64,
    new_chunks: u64,
}

struct Walker<'a, 'r> {
    w: &'a mut RepoWriter<'r>,
    opts: &'a DirOptions,
    exclusion: Exclusion,
    progress: &'a dyn Progress,
    note: &'a mut dyn FnMut(Note),
    totals: Totals,
    /// (device, inode) of files with more than one link → the first one's snapshot path.
    links: HashMap<(u64, u64), Vec<u8>>,
    names: Names,
    /// Cuts small files already in memory.
    cutter: Chunker<std::io::Empty>,
    /// Small files read but not stored yet: their bytes back to back.
    pending: Vec<u8>,
    /// Each pending file: its entry's index in the directory being built, its bytes' range.
    pending_files: Vec<(usize, std::ops::Range<usize>)>,
    /// Set by `file` when it read a small file into `pending` instead of storing it.
    just_read: Option<std::ops::Range<usize>>,
}

/// Where a regular file's content stands after `Walker::file`.
enum FileContent {
    /// Stored (or taken from the parent).
    Stored(Content, u64),
    /// Read into the pending batch; stored by the next flush.
    Pending(std::ops::Range<usize>),
}

impl Walker<'_, '_> {
    fn unreadable(&mut self, path: &Path, error: impl std::fmt::Display) {
        self.totals.errors += 1;
        (self.note)(Note::Unreadable {
            path: path.to_path_buf(),
            error: error.to_string(),
        });
    }

    /// The parent's subtree for a directory entry, if it has one that loads.
    fn parent_subtree(&mut self, parent: Option<&TreeEntry>) -> Option<Tree> {
        let EntryKind::Dir(id) = &parent?.kind else {
            return None;
        };
        let bytes = self.w.repo().load_blob(id, BlobKind::Tree).ok()?;
        Tree::decode(&bytes).ok()
    }

    fn store_tree(&mut self, tree: &Tree) -> Result<BlobId> {
        let bytes = tree
            .encode()
            .map_err(|e| Error::Internal(format!("tree: {e}")))?;
        self.w.store_blob(BlobKind::Tree, &bytes)
    }

    /// The metadata every kind of entry carries.
    fn base(&mut self, name: &[u8], m: &std::fs::Metadata, kind: EntryKind) -> TreeEntry {
        TreeEntry {
            name: name.to_vec(),
            kind,
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            user: self.names.user(m.uid()),
            group: self.names.group(m.gid()),
            mtime: time(m.mtime(), m.mtime_nsec()),
            ctime: time(m.ctime(), m.ctime_nsec()),
            inode: m.ino(),
            device: m.dev(),
            size: 0,
            sparse: false,
            xattrs: Vec::new(),
        }
    }

    /// A selected path that is not saved whole: a directory holding only the selected names.
    fn selected(
        &mut self,
        path: &Path,
        sel: &Selection,
        parent: Option<&Tree>,
    ) -> Result<Option<Tree>> {
        let mut entries = Vec::new();
        for (name, child) in &sel.children {
            let child_path = path.join(OsStr::from_bytes(name));
            let parent_entry = parent.and_then(|t| t.get(name));
            self.flush(&mut entries)?;
            let entry = if child.whole {
                let m = match std::fs::symlink_metadata(&child_path) {
                    Ok(m) => m,
                    Err(e) => {
                        return Err(Error::LocalIo {
                            what: "cannot read",
                            path: child_path,
                            source: e,
                        });
                    }
                };
                self.entry(&child_path, name, &m, parent_entry, m.dev())?
            } else {
                // A directory on the way to a selected path: its own metadata (following a
                // symlink on the way, as the path itself does), only the selected children.
                let m = std::fs::metadata(&child_path).map_err(|source| Error::LocalIo {
                    what: "cannot read",
                    path: child_path.clone(),
                    source,
                })?;
                let sub_parent = self.parent_subtree(parent_entry);
                let sub = self
                    .selected(&child_path, child, sub_parent.as_ref())?
                    .unwrap_or_default();
                let id = self.store_tree(&sub)?;
                self.totals.counts.dirs += 1;
                let mut e = self.base(name, &m, EntryKind::Dir(id));
                e.xattrs = read_xattrs(&child_path).unwrap_or_default();
                Some(e)
            };
            self.push(&mut entries, entry)?;
        }
        self.flush(&mut entries)?;
        Ok(Some(Tree { entries }))
    }

    /// One entry, read in full; `None` if it is left out (excluded, unreadable, a socket).
    fn entry(
        &mut self,
        path: &Path,
        name: &[u8],
        m: &std::fs::Metadata,
        parent: Option<&TreeEntry>,
        dev0: u64,
    ) -> Result<Option<TreeEntry>> {
        let ft = m.file_type();
        let mut e = if ft.is_file() {
            let key = (m.dev(), m.ino());
            if m.nlink() > 1
                && let Some(first) = self.links.get(&key)
            {
                let first = first.clone();
                self.totals.counts.others += 1;
                let mut e = self.base(name, m, EntryKind::Hardlink(first));
                e.size = m.len();
                return Ok(Some(e));
            }
            let read = self.file(path, m, parent)?;
            if m.nlink() > 1 && read.is_some() {
                // Only a name that is in the snapshot can be linked to.
                self.links.insert(key, path.as_os_str().as_bytes().to_vec());
            }
            match read {
                Some((FileContent::Stored(content, size), sparse)) => {
                    let mut e = self.base(name, m, EntryKind::File(content));
                    e.size = size;
                    e.sparse = sparse;
                    e
                }
                Some((FileContent::Pending(r), sparse)) => {
                    // Filled in by `flush`.
                    let mut e = self.base(name, m, EntryKind::File(Content::Inline(Vec::new())));
                    e.sparse = sparse;
                    self.just_read = Some(r);
                    e
                }
                None => return Ok(None),
            }
        } else if ft.is_dir() {
            if self
                .opts
                .exclude_if_present
                .iter()
                .any(|f| path.join(f).symlink_metadata().is_ok())
            {
                return Ok(None);
            }
            self.totals.counts.dirs += 1;
            let id = if self.opts.one_file_system && m.dev() != dev0 {
                self.store_tree(&Tree::default())?
            } else {
                let sub_parent = self.parent_subtree(parent);
                self.dir(path, sub_parent.as_ref(), dev0)?
            };
            self.base(name, m, EntryKind::Dir(id))
        } else if ft.is_symlink() {
            let target = match std::fs::read_link(path) {
                Ok(t) => t.into_os_string().into_vec(),
                Err(err) => {
                    self.unreadable(path, err);
                    return Ok(None);
                }
            };
            self.totals.counts.others += 1;
            let size = target.len() as u64;
            let mut e = self.base(name, m, EntryKind::Symlink(target));
            e.size = size;
            e
        } else if ft.is_fifo() {
            self.totals.counts.others += 1;
            self.base(name, m, EntryKind::Fifo)
        } else if ft.is_char_device() {
            self.totals.counts.others += 1;
            self.base(name, m, EntryKind::CharDevice(m.rdev()))
        } else if ft.is_block_device() {
            self.totals.counts.others += 1;
            self.base(name, m, EntryKind::BlockDevice(m.rdev()))
        } else {
            (self.note)(Note::Skipped {
                path: path.to_path_buf(),
                why: "a socket is not saved",
            });
            return Ok(None);
        };
        match read_xattrs(path) {
            Ok(x) => e.xattrs = x,
            Err(err) => self.unreadable(path, format!("extended attributes: {err}")),
        }
        Ok(Some(e))
    }

    /// A regular file's content: the parent's if the file is unchanged, else read now.
    /// Returns (content, size, sparse), or `None` if it could not be read.
    fn file(
        &mut self,
        path: &Path,
        m: &std::fs::Metadata,
        parent: Option<&TreeEntry>,
    ) -> Result<Option<(FileContent, bool)>> {
        if let Some(p) = parent
            && let EntryKind::File(content) = &p.kind
            && !self.opts.force
            && p.size == m.len()
            && p.mtime == time(m.mtime(), m.mtime_nsec())
            && p.ctime == time(m.ctime(), m.ctime_nsec())
            && p.inode == m.ino()
        {
            self.totals.counts.files_unmodified += 1;
            return Ok(Some((
                FileContent::Stored(content.clone(), p.size),
                p.sparse,
            )));
        }
        let was = matches!(parent.map(|p| &p.kind), Some(EntryKind::File(_)));
        let mut f = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(err) => {
                self.unreadable(path, err);
                return Ok(None);
            }
        };
        if m.len() <= SMALL_FILE {
            let start = self.pending.len();
            if let Err(err) = f.read_to_end(&mut self.pending) {
                self.pending.truncate(start);
                self.unreadable(path, err);
                return Ok(None);
            }
            let end = self.pending.len();
            self.count_read(was);
            let sparse = end > start && m.blocks().saturating_mul(512) < (end - start) as u64;
            return Ok(Some((FileContent::Pending(start..end), sparse)));
        }
        let mut list = ContentListBuilder::new();
        let what = path.display().to_string();
        let cut = super::chunking::Cut::fixed(self.w.chunker_params());
        let stored = store_chunks(self.w, f, &cut, &what, self.progress, &mut list);
        let (chunks, new_chunks) = match stored {
            Ok(s) => (s.chunks, s.new_chunks),
            // A file that fails mid-read is left out; what was stored of it stays
            // unreferenced until prune.
            Err(Error::SourceRead { source, .. }) => {
                self.unreadable(path, source);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let w = &mut *self.w;
        let mut store = |plain: &[u8]| w.store_blob(content_list::KIND, plain);
        let (content, size) = list.finish_content(&mut store)?;
        self.totals.chunks += chunks;
        self.totals.new_chunks += new_chunks;
        self.totals.bytes_read += size;
        self.count_read(was);
        let sparse = size > 0 && m.blocks().saturating_mul(512) < size;
        Ok(Some((FileContent::Stored(content, size), sparse)))
    }

    /// Counts a file that was read: changed if the parent had a file of that name.
    fn count_read(&mut self, was_file: bool) {
        if was_file {
            self.totals.counts.files_changed += 1;
        } else {
            self.totals.counts.files_new += 1;
        }
    }

    /// Stores the pending small files as one batch (ids and seals in parallel) and fills in
    /// their entries in `entries`, the directory they belong to.
    fn flush(&mut self, entries: &mut [TreeEntry]) -> Result<()> {
        if self.pending_files.is_empty() {
            return Ok(());
        }
        let data = std::mem::take(&mut self.pending);
        let mut chunks = Vec::new();
        let mut spans = Vec::with_capacity(self.pending_files.len());
        for (_, r) in &self.pending_files {
            let first = chunks.len();
            self.cutter
                .cut_whole(&data[r.clone()], r.start, &mut chunks);
            spans.push(first..chunks.len());
        }
        let p = prepare(self.w, Batch { data, chunks })?;
        let keys = self.w.keys().clone();
        for b in seal_fresh(&keys, self.w.zstd_level(), &p)? {
            self.progress.added(b.bytes.len() as u64);
            self.w.add_sealed(b)?;
        }
        self.totals.chunks += p.ids.len() as u64;
        self.totals.new_chunks += p.fresh.len() as u64;
        self.totals.bytes_read += p.batch.len() as u64;
        self.progress.bytes(p.batch.len() as u64);
        let w = &mut *self.w;
        let mut store = |plain: &[u8]| w.store_blob(content_list::KIND, plain);
        for ((idx, _), span) in self.pending_files.drain(..).zip(spans) {
            let mut list = ContentListBuilder::new();
            for i in span {
                let r = &p.batch.chunks[i];
                let size = (r.end - r.start) as u64;
                list.push(ListEntry { id: p.ids[i], size }, &mut store)?;
            }
            let (content, size) = list.finish_content(&mut store)?;
            let e = &mut entries[idx];
            e.kind = EntryKind::File(content);
            e.size = size;
        }
        // Keep the buffer for the next batch.
        self.pending = p.batch.data;
        self.pending.clear();
        Ok(())
    }

    /// Adds an entry to the directory being built; a small file read into the pending batch
    /// is recorded, and the batch stored once it is full.
    fn push(&mut self, entries: &mut Vec<TreeEntry>, e: Option<TreeEntry>) -> Result<()> {
        let Some(e) = e else {
            self.just_read = None;
            return Ok(());
        };
        entries.push(e);
        if let Some(r) = self.just_read.take() {
            self.pending_files.push((entries.len() - 1, r));
            if self.pending.len() >= BATCH_BYTES {
                self.flush(entries)?;
            }
        }
        Ok(())
    }

    /// A directory's tree blob, entries sorted by name.
    fn dir(&mut self, path: &Path, parent: Option<&Tree>, dev0: u64) -> Result<BlobId> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        match std::fs::read_dir(path) {
            Ok(rd) => {
                for d in rd {
                    match d {
                        Ok(d) => names.push(d.file_name().into_vec()),
                        Err(err) => {
                            self.unreadable(path, err);
                            break;
                        }
                    }
                }
            }
            Err(err) => self.unreadable(path, err),
        }
        names.sort();
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let child = path.join(OsStr::from_bytes(&name));
            if self.exclusion.excludes(&child) {
                continue;
            }
            let m = match std::fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(err) => {
                    self.unreadable(&child, err);
                    continue;
                }
            };
            if m.is_dir() {
                // The pending batch belongs to this directory's entries: store it before
                // descending.
                self.flush(&mut entries)?;
            }
            let parent_entry = parent.and_then(|t| t.get(&name));
            let e = self.entry(&child, &name, &m, parent_entry, dev0)?;
            self.push(&mut entries, e)?;
        }
        self.flush(&mut entries)?;
        self.store_tree(&Tree { entries })
    }
}

use std::os::unix::ffi::OsStringExt;

/// The parent for a directory snapshot: the one asked for, or the newest tree snapshot of the
/// same name and host.
fn find_parent(
    repo: &Repo,
    opts: &SnapshotOptions,
    host: &str,
    asked: Option<SnapshotId>,
) -> Result<Option<(SnapshotId, BlobId)>> {
    let all = repo.catalog().snapshots()?;
    if let Some(id) = asked {
        let (_, s) = all
            .into_iter()
            .find(|(i, _)| *i == id)
            .ok_or_else(|| Error::NoSnapshot(format!("parent {id}")))?;
        return match s.root {
            Root::Tree { tree } => Ok(Some((id, tree))),
            Root::Stream { .. } => Err(Error::InvalidArgument(format!(
                "parent {id} is a stream snapshot, not a directory snapshot"
            ))),
        };
    }
    Ok(all
        .into_iter()
        .filter(|(_, s)| s.name == opts.name && s.host == host)
        .filter_map(|(id, s)| match s.root {
            Root::Tree { tree } => Some((s.time, id, tree)),
            Root::Stream { .. } => None,
        })
        .max_by_key(|(t, id, _)| (*t, *id))
        .map(|(_, id, tree)| (id, tree)))
}

/// Saves files and directories as one snapshot. Entries that cannot be read are reported
/// through `note`, left out and counted in the snapshot's `errors`; the caller turns a
/// non-zero count into its own exit code.
pub fn snapshot_dirs(
    repo: &mut Repo,
    dir: &DirOptions,
    opts: &SnapshotOptions,
    progress: &dyn Progress,
    note: &mut dyn FnMut(Note),
) -> Result<SnapshotReport> {
    let started = Instant::now();
    let time = opts.time.unwrap_or_else(jiff::Timestamp::now);
    if dir.paths.is_empty() {
        return Err(Error::InvalidArgument("no path to save".into()));
    }
    let exclusion = Exclusion::new(&dir.exclude)?;
    let mut selection = Selection::default();
    let mut shown = Vec::new();
    for p in &dir.paths {
        let abs = absolute(p)?;
        std::fs::symlink_metadata(&abs).map_err(|source| Error::LocalIo {
            what: "cannot read",
            path: abs.clone(),
            source,
        })?;
        shown.push(abs.to_string_lossy().into_owned());
        selection.add(&abs);
    }
    let host = opts
        .host
        .clone()
        .unwrap_or_else(crate::snapshot::default_host);
    let parent = find_parent(repo, opts, &host, dir.parent)?;
    let parent_tree = match parent {
        Some((id, tree)) => {
            note(Note::Parent(id));
            let bytes = repo.load_blob(&tree, BlobKind::Tree)?;
            Some(Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {tree}"), e))?)
        }
        None => None,
    };
    let mut w = RepoWriter::new(repo, opts.zstd_level);
    let params = w.chunker_params();
    let gear = *w.keys().gear();
    let walked = {
        let mut walker = Walker {
            w: &mut w,
            opts: dir,
            exclusion,
            progress,
            note,
            totals: Totals::default(),
            links: HashMap::new(),
            names: Names::default(),
            cutter: Chunker::new(std::io::empty(), &params, &gear),
            pending: Vec::new(),
            pending_files: Vec::new(),
            just_read: None,
        };
        if selection.whole {
            // "/" itself was given (it was read above).
            let dev = std::fs::symlink_metadata("/").map_or(0, |m| m.dev());
            walker
                .dir(Path::new("/"), parent_tree.as_ref(), dev)
                .map(|id| (id, walker.totals))
        } else {
            walker
                .selected(Path::new("/"), &selection, parent_tree.as_ref())
                .and_then(|t| {
                    let id = walker.store_tree(&t.unwrap_or_default())?;
                    Ok((id, walker.totals))
                })
        }
    };
    // Whatever happened, what was stored is indexed so that a retry deduplicates.
    let written = w.finish();
    let (root, totals) = walked?;
    let write = written?;
    let snapshot = Snapshot {
        time,
        duration: started.elapsed().as_secs_f64(),
        host,
        name: opts.name.clone(),
        tags: opts.tags.clone(),
        source: Source::Paths { paths: shown },
        producer_status: ProducerStatus::Unknown,
        root: Root::Tree { tree: root },
        bytes_read: totals.bytes_read,
        bytes_added: write.stored_bytes,
        raw_bytes_added: write.raw_bytes,
        chunks: totals.chunks,
        new_chunks: totals.new_chunks,
        larder_version: env!("CARGO_PKG_VERSION").to_owned(),
        errors: totals.errors,
        parent: parent.map(|(id, _)| id),
        tree_counts: Some(totals.counts),
        damaged: None,
        original: None,
        quarantined: None,
        warnings: Vec::new(),
        chunker: None,
    };
    super::commit(repo, opts, snapshot, write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_matches_base_names_and_full_paths() {
        let x = Exclusion::new(&["*.tmp".into(), "/srv/cache".into(), "/a/**/b".into()]).unwrap();
        assert!(x.excludes(Path::new("/x/y/file.tmp")));
        assert!(!x.excludes(Path::new("/x/y/file.tmpx")));
        assert!(x.excludes(Path::new("/srv/cache")));
        assert!(!x.excludes(Path::new("/srv/cache2")));
        assert!(x.excludes(Path::new("/a/q/r/b")));
        assert!(Exclusion::new(&["[".into()]).is_err());
    }

    #[test]
    fn absolute_is_lexically_clean() {
        assert_eq!(
            absolute(Path::new("/a/./b/../c/")).unwrap(),
            Path::new("/a/c")
        );
    }
}
