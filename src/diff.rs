//! `diff`: what changed between two directory snapshots. Subtrees with the same id are equal
//! and are not descended into, so comparing two snapshots of a large, mostly unchanged tree
//! loads only the trees on the paths to the changes.

use crate::error::Result;
use crate::format::tree::{EntryKind, Tree, TreeEntry};
use crate::id::BlobId;
use crate::repo::Repo;
use crate::restore::dir::load_tree;

/// One path present on one side only.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Presence {
    /// Absolute path in the snapshot (lossy UTF-8).
    pub path: String,
    /// Entry kind.
    pub kind: &'static str,
    /// Content bytes (files).
    pub size: u64,
}

/// One path present on both sides, different.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Changed {
    /// Absolute path in the snapshot (lossy UTF-8).
    pub path: String,
    /// Entry kind in the second snapshot.
    pub kind: &'static str,
    /// Size in the first snapshot.
    pub old_size: u64,
    /// Size in the second snapshot.
    pub new_size: u64,
    /// What differs: `kind`, `content`, `target`, `mode`, `owner`, `mtime`, `xattrs`.
    pub what: Vec<&'static str>,
}

/// The difference from a first to a second snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Diff {
    /// In the second only.
    pub added: Vec<Presence>,
    /// In the first only.
    pub removed: Vec<Presence>,
    /// In both, different.
    pub changed: Vec<Changed>,
}

fn path_of(dir: &str, name: &[u8]) -> String {
    format!("{dir}/{}", String::from_utf8_lossy(name))
}

fn differences(a: &TreeEntry, b: &TreeEntry) -> Vec<&'static str> {
    let mut what = Vec::new();
    match (&a.kind, &b.kind) {
        (EntryKind::Dir(_), EntryKind::Dir(_)) => {}
        (x, y) if x.code() != y.code() => what.push("kind"),
        (EntryKind::File(x), EntryKind::File(y)) if x != y || a.size != b.size => {
            what.push("content");
        }
        (EntryKind::File(_), EntryKind::File(_)) => {}
        (x, y) if x != y => what.push("target"),
        _ => {}
    }
    if a.mode != b.mode {
        what.push("mode");
    }
    if (a.uid, a.gid) != (b.uid, b.gid) {
        what.push("owner");
    }
    if a.mtime != b.mtime && !matches!(b.kind, EntryKind::Dir(_)) {
        what.push("mtime");
    }
    if a.xattrs != b.xattrs {
        what.push("xattrs");
    }
    what
}

struct Differ<'a> {
    repo: &'a Repo,
    out: Diff,
}

impl Differ<'_> {
    fn all(&mut self, e: &TreeEntry, path: String, added: bool) -> Result<()> {
        let p = Presence {
            path: path.clone(),
            kind: e.kind.name(),
            size: e.size,
        };
        if added {
            self.out.added.push(p);
        } else {
            self.out.removed.push(p);
        }
        if let EntryKind::Dir(id) = &e.kind {
            let t = load_tree(self.repo, id)?;
            for c in &t.entries {
                self.all(c, path_of(&path, &c.name), added)?;
            }
        }
        Ok(())
    }

    fn trees(&mut self, a: &Tree, b: &Tree, dir: &str) -> Result<()> {
        let (mut i, mut j) = (0, 0);
        while i < a.entries.len() || j < b.entries.len() {
            let order = match (a.entries.get(i), b.entries.get(j)) {
                (Some(x), Some(y)) => x.name.cmp(&y.name),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    let e = &a.entries[i];
                    self.all(e, path_of(dir, &e.name), false)?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    let e = &b.entries[j];
                    self.all(e, path_of(dir, &e.name), true)?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let (x, y) = (&a.entries[i], &b.entries[j]);
                    let path = path_of(dir, &y.name);
                    let what = differences(x, y);
                    if !what.is_empty() {
                        self.out.changed.push(Changed {
                            path: path.clone(),
                            kind: y.kind.name(),
                            old_size: x.size,
                            new_size: y.size,
                            what,
                        });
                    }
                    if let (EntryKind::Dir(p), EntryKind::Dir(q)) = (&x.kind, &y.kind)
                        && p != q
                    {
                        let (ta, tb) = (load_tree(self.repo, p)?, load_tree(self.repo, q)?);
                        self.trees(&ta, &tb, &path)?;
                    } else if x.kind.code() != y.kind.code() {
                        // A directory replaced by a file or the reverse: what was below goes.
                        if let EntryKind::Dir(_) = &x.kind {
                            self.all(x, path.clone(), false)?;
                            self.out.removed.retain(|r| r.path != path);
                        }
                        if let EntryKind::Dir(_) = &y.kind {
                            self.all(y, path.clone(), true)?;
                            self.out.added.retain(|r| r.path != path);
                        }
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }
}

/// Compares the trees rooted at `a` (first) and `b` (second).
pub fn diff(repo: &Repo, a: &BlobId, b: &BlobId) -> Result<Diff> {
    let mut d = Differ {
        repo,
        out: Diff::default(),
    };
    if a != b {
        let (ta, tb) = (load_tree(repo, a)?, load_tree(repo, b)?);
        d.trees(&ta, &tb, "")?;
    }
    Ok(d.out)
}
