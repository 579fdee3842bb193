//! The restore pipeline for directory snapshots:
//!
//! ```text
//! snapshot -> root tree -> walk (include / exclude) -> plan (compare with the target)
//!          -> per entry: content (restore.rs: every blob verified) | link | node -> metadata
//!          -> directory metadata, deepest first -> syncfs
//! ```
//!
//! The plan is made in full before anything is written, so a conflict (`--overwrite never`)
//! stops the restore with nothing touched, and `--dry-run` shows exactly what would change.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use nix::sys::stat::{Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;

use crate::backup::dir::Exclusion;
use crate::error::{Error, Result};
use crate::format::BlobKind;
use crate::format::tree::{Content, EntryKind, Tree, TreeEntry};
use crate::id::BlobId;
use crate::progress::Progress;
use crate::repo::Repo;

/// What to do with an existing file at a path being restored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overwrite {
    /// Refuse: the restore fails, naming the first such path, before writing anything.
    #[default]
    Never,
    /// Leave files whose size and modification time already match; rewrite the others.
    IfChanged,
    /// Rewrite every file.
    Always,
}

/// Where and what to restore.
#[derive(Debug, Clone, Default)]
pub struct TreeRestoreOptions {
    /// The directory the snapshot's absolute paths are restored under.
    pub target: PathBuf,
    /// Only these snapshot paths (absolute) and what is below them; empty means everything.
    pub include: Vec<PathBuf>,
    /// Leave out snapshot paths matching these globs (as `snapshot --exclude`).
    pub exclude: Vec<String>,
    /// What to do with existing files.
    pub overwrite: Overwrite,
    /// Plan only; write nothing.
    pub dry_run: bool,
}

/// What the restore does at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Nothing there yet.
    Create,
    /// Something there is replaced.
    Replace,
    /// A file already matching (size and mtime) is left as it is; metadata is set.
    Unchanged,
    /// An existing directory is kept and restored into.
    Merge,
}

/// One planned change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    /// The path in the target (in JSON: lossy UTF-8, as `ls` and `diff` print names).
    #[serde(serialize_with = "lossy_path")]
    pub path: PathBuf,
    /// The entry's kind.
    pub kind: &'static str,
    /// What happens.
    pub action: Action,
    /// Content bytes (files).
    pub size: u64,
}

fn lossy_path<S: serde::Serializer>(
    p: &std::path::Path,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// What a restore did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TreeRestoreStats {
    /// Entries restored (created or replaced).
    pub written: u64,
    /// Files left as they were (`if-changed`).
    pub unchanged: u64,
    /// Content bytes written.
    pub bytes: u64,
    /// Seconds taken.
    pub duration: f64,
    /// Every change, in order (filled for `dry_run`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
}

struct Item {
    /// Absolute path in the snapshot.
    snap_path: Vec<u8>,
    dest: PathBuf,
    entry: TreeEntry,
    action: Action,
}

/// Loads and decodes a tree blob.
pub fn load_tree(repo: &Repo, id: &BlobId) -> Result<Tree> {
    let bytes = repo.load_blob(id, BlobKind::Tree)?;
    Tree::decode(&bytes).map_err(|e| Error::corrupt(format!("tree {id}"), e))
}

/// Finds the entry at absolute snapshot path `path` (`None` for the root itself).
pub fn find(repo: &Repo, root: &BlobId, path: &[u8]) -> Result<Option<TreeEntry>> {
    let mut tree = load_tree(repo, root)?;
    let mut parts = path
        .split(|b| *b == b'/')
        .filter(|p| !p.is_empty())
        .peekable();
    let mut found = None;
    while let Some(name) = parts.next() {
        let Some(e) = tree.get(name).cloned() else {
            return Ok(None);
        };
        if parts.peek().is_some() {
            match &e.kind {
                EntryKind::Dir(id) => tree = load_tree(repo, id)?,
                _ => return Ok(None),
            }
        }
        found = Some(e);
    }
    Ok(found)
}

fn wanted(include: &[Vec<u8>], path: &[u8]) -> bool {
    let under = |a: &[u8], b: &[u8]| a.starts_with(b) && (a.len() == b.len() || a[b.len()] == b'/');
    include.is_empty() || include.iter().any(|i| under(path, i) || under(i, path))
}

struct Planner<'a> {
    repo: &'a Repo,
    opts: &'a TreeRestoreOptions,
    include: Vec<Vec<u8>>,
    exclusion: Exclusion,
    items: Vec<Item>,
}

impl Planner<'_> {
    fn walk(&mut self, tree: &Tree, snap_dir: &[u8]) -> Result<()> {
        for e in &tree.entries {
            let mut snap_path = snap_dir.to_vec();
            snap_path.push(b'/');
            snap_path.extend_from_slice(&e.name);
            let p = Path::new(OsStr::from_bytes(&snap_path));
            if !wanted(&self.include, &snap_path) || self.exclusion.excludes(p) {
                continue;
            }
            let dest = self.opts.target.join(p.strip_prefix("/").unwrap_or(p));
            let action = self.action(e, &dest)?;
            self.items.push(Item {
                snap_path: snap_path.clone(),
                dest,
                entry: e.clone(),
                action,
            });
            if let EntryKind::Dir(id) = &e.kind {
                let sub = load_tree(self.repo, id)?;
                self.walk(&sub, &snap_path)?;
            }
        }
        Ok(())
    }

    fn action(&self, e: &TreeEntry, dest: &Path) -> Result<Action> {
        let existing = match std::fs::symlink_metadata(dest) {
            Ok(m) => m,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Action::Create),
            Err(source) => {
                return Err(Error::LocalIo {
                    what: "cannot read",
                    path: dest.to_path_buf(),
                    source,
                });
            }
        };
        let is_dir = matches!(e.kind, EntryKind::Dir(_));
        if is_dir && existing.is_dir() {
            return Ok(Action::Merge);
        }
        if existing.is_dir() {
            return Err(Error::InvalidArgument(format!(
                "refusing to replace directory {} with a {}",
                dest.display(),
                e.kind.name()
            )));
        }
        match self.opts.overwrite {
            Overwrite::Never => Err(Error::InvalidArgument(format!(
                "refusing to overwrite {}: it exists (use --overwrite if-changed or always)",
                dest.display()
            ))),
            Overwrite::IfChanged => {
                let same = match &e.kind {
                    EntryKind::File(_) | EntryKind::Hardlink(_) => {
                        existing.is_file()
                            && existing.len() == e.size
                            && existing.mtime() == e.mtime.secs
                            && existing.mtime_nsec() == i64::from(e.mtime.nanos)
                    }
                    EntryKind::Symlink(t) => std::fs::read_link(dest)
                        .is_ok_and(|cur| cur.as_os_str().as_bytes() == t.as_slice()),
                    _ => false,
                };
                Ok(if same {
                    Action::Unchanged
                } else {
                    Action::Replace
                })
            }
            Overwrite::Always => Ok(Action::Replace),
        }
    }
}

/// Writes all-zero chunks as holes: the file is restored sparse.
struct SparseFile {
    file: std::fs::File,
    len: u64,
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.iter().all(|b| *b == 0) {
            let n = i64::try_from(buf.len()).map_err(std::io::Error::other)?;
            self.file.seek(SeekFrom::Current(n))?;
        } else {
            self.file.write_all(buf)?;
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Something restore wants the user to know, without failing.
#[derive(Debug)]
pub enum RestoreNote {
    /// Metadata that could not be set.
    Metadata {
        /// The path.
        path: PathBuf,
        /// What and why.
        what: String,
    },
    /// Entries not restored because this process lacks the privilege.
    NotRoot(&'static str),
}

struct Writer<'a> {
    repo: &'a Repo,
    root: BlobId,
    target: PathBuf,
    progress: &'a dyn Progress,
    note: &'a mut dyn FnMut(RestoreNote),
    is_root: bool,
    noted_owner: bool,
    noted_device: bool,
    restored: HashSet<Vec<u8>>,
    stats: TreeRestoreStats,
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> Error + 'p {
    move |source| Error::LocalIo {
        what,
        path: path.to_path_buf(),
        source,
    }
}

fn nix_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(nix::Error) -> Error + 'p {
    move |e| Error::LocalIo {
        what,
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl Writer<'_> {
    fn remove_existing(&self, item: &Item) -> Result<()> {
        if item.action == Action::Replace {
            std::fs::remove_file(&item.dest).map_err(io_err("cannot remove", &item.dest))?;
        }
        Ok(())
    }

    /// Writes a file's content beside `dest`, then renames it into place.
    fn file(&mut self, dest: &Path, content: &Content, e: &TreeEntry) -> Result<()> {
        let dir = dest.parent().unwrap_or(Path::new("/"));
        let tmp = tempfile::Builder::new()
            .prefix(".larder-restore-")
            .tempfile_in(dir)
            .map_err(io_err("cannot create a temporary file beside", dest))?;
        let (tmp_file, tmp_path) = tmp.into_parts();
        let target = dest.display().to_string();
        let (repo, progress) = (self.repo, self.progress);
        let write = |sink: &mut (dyn Write + Send)| {
            crate::restore::restore_content(repo, content, e.size, sink, &target, progress)
        };
        let stats = if e.sparse {
            let mut f = SparseFile {
                file: tmp_file,
                len: 0,
            };
            let s = write(&mut f)?;
            f.file
                .set_len(f.len)
                .map_err(io_err("cannot write", dest))?;
            s
        } else {
            let mut f = std::io::BufWriter::with_capacity(1 << 20, tmp_file);
            let s = write(&mut f)?;
            f.into_inner()
                .map_err(|e| io_err("cannot write", dest)(e.into_error()))?;
            s
        };
        tmp_path
            .persist(dest)
            .map_err(|err| io_err("cannot rename into", dest)(err.error))?;
        self.stats.bytes += stats.bytes;
        Ok(())
    }

    fn item(&mut self, item: &Item) -> Result<()> {
        let dest = &item.dest;
        let e = &item.entry;
        if item.action == Action::Unchanged {
            self.stats.unchanged += 1;
            return self.metadata(dest, e);
        }
        match &e.kind {
            EntryKind::Dir(_) => {
                if item.action == Action::Create {
                    std::fs::create_dir_all(dest).map_err(io_err("cannot create", dest))?;
                }
                // Directory metadata is set after everything below it.
                self.stats.written += u64::from(item.action == Action::Create);
                return Ok(());
            }
            EntryKind::File(content) => self.file(dest, content, e)?,
            EntryKind::Hardlink(first) => {
                if self.restored.contains(first) {
                    self.remove_existing(item)?;
                    let from = self.dest_of(first);
                    std::fs::hard_link(&from, dest).map_err(io_err("cannot link", dest))?;
                } else {
                    // The first name is not part of this restore: write the content here.
                    let first_entry = find(self.repo, &self.root, first)?;
                    let Some(TreeEntry {
                        kind: EntryKind::File(content),
                        ..
                    }) = first_entry
                    else {
                        return Err(Error::corrupt(
                            format!("hardlink {}", dest.display()),
                            crate::format::DecodeError::Invalid("hardlink target is not a file"),
                        ));
                    };
                    self.file(dest, &content, e)?;
                    self.restored.insert(item.snap_path.clone());
                }
            }
            EntryKind::Symlink(target) => {
                self.remove_existing(item)?;
                std::os::unix::fs::symlink(OsStr::from_bytes(target), dest)
                    .map_err(io_err("cannot create symlink", dest))?;
            }
            EntryKind::Fifo => {
                self.remove_existing(item)?;
                nix::unistd::mkfifo(dest, Mode::from_bits_truncate(0o600))
                    .map_err(nix_err("cannot create fifo", dest))?;
            }
            EntryKind::CharDevice(rdev) | EntryKind::BlockDevice(rdev) => {
                if !self.is_root {
                    if !self.noted_device {
                        self.noted_device = true;
                        (self.note)(RestoreNote::NotRoot("device nodes are not restored"));
                    }
                    return Ok(());
                }
                self.remove_existing(item)?;
                let kind = if matches!(e.kind, EntryKind::CharDevice(_)) {
                    SFlag::S_IFCHR
                } else {
                    SFlag::S_IFBLK
                };
                nix::sys::stat::mknod(dest, kind, Mode::from_bits_truncate(0o600), *rdev)
                    .map_err(nix_err("cannot create device node", dest))?;
            }
        }
        if matches!(e.kind, EntryKind::File(_)) {
            self.restored.insert(item.snap_path.clone());
        }
        self.stats.written += 1;
        self.metadata(dest, e)
    }

    fn dest_of(&self, snap_path: &[u8]) -> PathBuf {
        let p = Path::new(OsStr::from_bytes(snap_path));
        self.target.join(p.strip_prefix("/").unwrap_or(p))
    }

    /// Extended attributes, owner, mode, then times (chown clears setuid bits; times last).
    fn metadata(&mut self, dest: &Path, e: &TreeEntry) -> Result<()> {
        let is_link = matches!(e.kind, EntryKind::Symlink(_));
        for (name, value) in &e.xattrs {
            if let Err(err) = xattr::set(dest, OsStr::from_bytes(name), value) {
                (self.note)(RestoreNote::Metadata {
                    path: dest.to_path_buf(),
                    what: format!(
                        "extended attribute {}: {err}",
                        String::from_utf8_lossy(name)
                    ),
                });
            }
        }
        if self.is_root {
            nix::unistd::fchownat(
                nix::fcntl::AT_FDCWD,
                dest,
                Some(nix::unistd::Uid::from_raw(e.uid)),
                Some(nix::unistd::Gid::from_raw(e.gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(nix_err("cannot set the owner of", dest))?;
        } else if !self.noted_owner {
            self.noted_owner = true;
            (self.note)(RestoreNote::NotRoot("ownership is not restored"));
        }
        if !is_link {
            std::fs::set_permissions(dest, std::fs::Permissions::from_mode(e.mode))
                .map_err(io_err("cannot set the mode of", dest))?;
        }
        let t = TimeSpec::new(e.mtime.secs, i64::from(e.mtime.nanos));
        nix::sys::stat::utimensat(
            nix::fcntl::AT_FDCWD,
            dest,
            &t,
            &t,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(nix_err("cannot set the times of", dest))?;
        Ok(())
    }
}

/// Plans, and unless `dry_run` performs, the restore of the tree snapshot rooted at `root`.
pub fn restore_tree(
    repo: &Repo,
    root: &BlobId,
    opts: &TreeRestoreOptions,
    progress: &dyn Progress,
    note: &mut dyn FnMut(RestoreNote),
) -> Result<TreeRestoreStats> {
    let started = Instant::now();
    let include = opts
        .include
        .iter()
        .map(|p| {
            let s = p.as_os_str().as_bytes();
            let trimmed = s.strip_suffix(b"/").filter(|t| !t.is_empty()).unwrap_or(s);
            if trimmed.first() == Some(&b'/') {
                Ok(trimmed.to_vec())
            } else {
                Err(Error::InvalidArgument(format!(
                    "--include takes an absolute snapshot path, not {}",
                    p.display()
                )))
            }
        })
        .collect::<Result<Vec<_>>>()?;
    let mut planner = Planner {
        repo,
        opts,
        include,
        exclusion: Exclusion::new(&opts.exclude)?,
        items: Vec::new(),
    };
    let tree = load_tree(repo, root)?;
    planner.walk(&tree, b"")?;
    let items = planner.items;
    if opts.dry_run {
        let changes = items
            .iter()
            .map(|i| Change {
                path: i.dest.clone(),
                kind: i.entry.kind.name(),
                action: i.action,
                size: i.entry.size,
            })
            .collect();
        return Ok(TreeRestoreStats {
            changes,
            duration: started.elapsed().as_secs_f64(),
            ..Default::default()
        });
    }
    std::fs::create_dir_all(&opts.target).map_err(io_err("cannot create", &opts.target))?;
    let mut w = Writer {
        repo,
        root: *root,
        target: opts.target.clone(),
        progress,
        note,
        is_root: nix::unistd::geteuid().is_root(),
        noted_owner: false,
        noted_device: false,
        restored: HashSet::new(),
        stats: TreeRestoreStats::default(),
    };
    for item in &items {
        w.item(item)?;
    }
    for item in items.iter().rev() {
        if matches!(item.entry.kind, EntryKind::Dir(_)) {
            w.metadata(&item.dest, &item.entry)?;
        }
    }
    let dir = std::fs::File::open(&opts.target).map_err(io_err("cannot open", &opts.target))?;
    nix::unistd::syncfs(&dir).map_err(nix_err("cannot sync", &opts.target))?;
    let mut stats = w.stats;
    stats.duration = started.elapsed().as_secs_f64();
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_selects_the_path_its_parents_and_below() {
        let inc = vec![b"/etc/shop".to_vec()];
        assert!(wanted(&inc, b"/etc"));
        assert!(wanted(&inc, b"/etc/shop"));
        assert!(wanted(&inc, b"/etc/shop/nginx.conf"));
        assert!(!wanted(&inc, b"/etc/shopping"));
        assert!(!wanted(&inc, b"/etc/other"));
        assert!(wanted(&[], b"/anything"));
    }
}
