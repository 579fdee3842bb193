//! `larder ls`, `larder diff`, `larder dump`: looking into directory snapshots.

use std::io::IsTerminal;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::Result;
use larder::format::snapshot::{Root, Snapshot};
use larder::format::tree::{EntryKind, TreeEntry};
use larder::id::{BlobId, SnapshotId};
use larder::repo::Repo;
use larder::restore::dir::{find, load_tree};
use larder::snapshot::{Selector, select};
use serde_json::json;

use super::Ctx;
use super::output;

/// `ls`: which snapshot and which path.
#[derive(Debug, clap::Args)]
pub struct LsArgs {
    /// Snapshot id, unique id prefix, or `latest`.
    snapshot: String,
    /// Absolute path inside the snapshot (default: its root).
    path: Option<PathBuf>,
    /// Only snapshots of this series.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// List everything below the path, not just its entries.
    #[arg(long, short = 'R')]
    recursive: bool,
}

/// `diff`: two snapshots.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The first snapshot (id, prefix or `latest`).
    first: String,
    /// The second snapshot (id, prefix or `latest`).
    second: String,
    /// Only snapshots of this series.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
}

/// `dump`: one file.
#[derive(Debug, clap::Args)]
pub struct DumpArgs {
    /// Snapshot id, unique id prefix, or `latest`.
    snapshot: String,
    /// Absolute path of the file inside the snapshot.
    path: PathBuf,
    /// Only snapshots of this series.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
}

/// Picks a directory snapshot; a stream snapshot is a usage error naming it.
fn tree_snapshot(
    repo: &Repo,
    id: &str,
    name: &Option<String>,
    host: &Option<String>,
) -> Result<(SnapshotId, Snapshot, BlobId)> {
    let sel = Selector {
        id: Some(id.to_owned()),
        name: name.clone(),
        host: host.clone(),
        at: None,
    };
    let (id, snap) = select(repo.catalog().snapshots()?, &sel)?;
    match snap.root {
        Root::Tree { tree } => Ok((id, snap, tree)),
        Root::Stream { .. } => Err(larder::Error::InvalidArgument(format!(
            "snapshot {} ({}) is a stream, not a directory snapshot: use `larder restore`",
            id.short(),
            snap.name
        ))
        .into()),
    }
}

/// The path as snapshot bytes: absolute, no trailing `/`.
fn snap_path(p: &std::path::Path) -> Result<Vec<u8>> {
    let b = p.as_os_str().as_bytes();
    if b.first() != Some(&b'/') {
        return Err(larder::Error::InvalidArgument(format!(
            "{} is not an absolute path (snapshots hold absolute paths)",
            p.display()
        ))
        .into());
    }
    let trimmed = b.strip_suffix(b"/").unwrap_or(b);
    Ok(trimmed.to_vec())
}

fn mode_string(e: &TreeEntry) -> String {
    let t = match e.kind {
        EntryKind::File(_) | EntryKind::Hardlink(_) => '-',
        EntryKind::Dir(_) => 'd',
        EntryKind::Symlink(_) => 'l',
        EntryKind::Fifo => 'p',
        EntryKind::CharDevice(_) => 'c',
        EntryKind::BlockDevice(_) => 'b',
    };
    let mut s = String::from(t);
    let m = e.mode;
    for (shift, special, sc) in [(6, 0o4000, 's'), (3, 0o2000, 's'), (0, 0o1000, 't')] {
        let bits = (m >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        let x = bits & 1 != 0;
        s.push(match (m & special != 0, x) {
            (true, true) => sc,
            (true, false) => sc.to_ascii_uppercase(),
            (false, true) => 'x',
            (false, false) => '-',
        });
    }
    s
}

fn show_time(e: &TreeEntry) -> String {
    jiff::Timestamp::new(e.mtime.secs, e.mtime.nanos as i32)
        .map(super::output::local_time)
        .unwrap_or_else(|_| "?".into())
}

/// An entry as JSON (`ls --json`, `cat blob` of a tree).
pub fn entry_json(path: &str, e: &TreeEntry) -> serde_json::Value {
    let target = match &e.kind {
        EntryKind::Symlink(t) | EntryKind::Hardlink(t) => {
            Some(String::from_utf8_lossy(t).into_owned())
        }
        _ => None,
    };
    let rdev = match &e.kind {
        EntryKind::CharDevice(r) | EntryKind::BlockDevice(r) => Some(*r),
        _ => None,
    };
    let content = match &e.kind {
        EntryKind::File(larder::format::tree::Content::Inline(c)) => json!({"inline": c}),
        EntryKind::File(larder::format::tree::Content::List(id)) => json!({"list": id}),
        _ => serde_json::Value::Null,
    };
    let subtree = match &e.kind {
        EntryKind::Dir(id) => Some(*id),
        _ => None,
    };
    json!({
        "path": path,
        "kind": e.kind.name(),
        "content": content,
        "subtree": subtree,
        "size": e.size,
        "mode": format!("{:04o}", e.mode),
        "uid": e.uid,
        "gid": e.gid,
        "user": e.user,
        "group": e.group,
        "mtime": jiff::Timestamp::new(e.mtime.secs, e.mtime.nanos as i32).ok(),
        "target": target,
        "rdev": rdev,
        "sparse": e.sparse,
        "xattrs": e.xattrs.iter().map(|(n, _)| String::from_utf8_lossy(n).into_owned()).collect::<Vec<_>>(),
    })
}

fn entry_line(path: &str, e: &TreeEntry) -> String {
    let who = |name: &str, id: u32| {
        if name.is_empty() {
            id.to_string()
        } else {
            name.to_owned()
        }
    };
    let mut line = format!(
        "{}  {:<8} {:<8} {:>12}  {}  {path}",
        mode_string(e),
        who(&e.user, e.uid),
        who(&e.group, e.gid),
        e.size,
        show_time(e)
    );
    match &e.kind {
        EntryKind::Symlink(t) => line += &format!(" -> {}", String::from_utf8_lossy(t)),
        EntryKind::Hardlink(t) => line += &format!(" => {}", String::from_utf8_lossy(t)),
        _ => {}
    }
    line
}

/// Collects (path, entry) under a directory tree, depth-first in name order.
fn collect(
    repo: &Repo,
    tree: &BlobId,
    dir: &str,
    recursive: bool,
    out: &mut Vec<(String, TreeEntry)>,
) -> Result<()> {
    let t = load_tree(repo, tree)?;
    for e in t.entries {
        let path = format!("{dir}/{}", String::from_utf8_lossy(&e.name));
        let sub = match (&e.kind, recursive) {
            (EntryKind::Dir(id), true) => Some(*id),
            _ => None,
        };
        out.push((path.clone(), e));
        if let Some(id) = sub {
            collect(repo, &id, &path, true, out)?;
        }
    }
    Ok(())
}

/// Runs `ls`.
pub fn ls(a: LsArgs, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let (id, _, root) = tree_snapshot(&repo, &a.snapshot, &a.name, &a.host)?;
    let path = a
        .path
        .as_deref()
        .map(snap_path)
        .transpose()?
        .unwrap_or_default();
    let shown = String::from_utf8_lossy(&path).into_owned();
    let mut rows = Vec::new();
    if path.is_empty() {
        collect(&repo, &root, "", a.recursive, &mut rows)?;
    } else {
        let Some(e) = find(&repo, &root, &path)? else {
            return Err(larder::Error::InvalidArgument(format!(
                "no {shown} in snapshot {}",
                id.short()
            ))
            .into());
        };
        match &e.kind {
            EntryKind::Dir(sub) => collect(&repo, sub, &shown, a.recursive, &mut rows)?,
            _ => rows.push((shown.clone(), e)),
        }
    }
    if ctx.json() {
        let list: Vec<_> = rows.iter().map(|(p, e)| entry_json(p, e)).collect();
        return output::json(&serde_json::Value::Array(list));
    }
    for (p, e) in &rows {
        outln!("{}", entry_line(p, e))?;
    }
    Ok(())
}

/// Runs `diff`.
pub fn diff(a: DiffArgs, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let (ida, _, ta) = tree_snapshot(&repo, &a.first, &a.name, &a.host)?;
    let (idb, _, tb) = tree_snapshot(&repo, &a.second, &a.name, &a.host)?;
    let d = larder::diff::diff(&repo, &ta, &tb)?;
    if ctx.json() {
        return output::json(&json!({
            "first": ida,
            "second": idb,
            "added": d.added,
            "removed": d.removed,
            "changed": d.changed,
        }));
    }
    for p in &d.added {
        outln!("+ {}  ({}, {})", p.path, p.kind, output::bytes(p.size))?;
    }
    for p in &d.removed {
        outln!("- {}  ({}, {})", p.path, p.kind, output::bytes(p.size))?;
    }
    for c in &d.changed {
        outln!(
            "M {}  ({}: {} -> {}; {})",
            c.path,
            c.kind,
            output::bytes(c.old_size),
            output::bytes(c.new_size),
            c.what.join(", ")
        )?;
    }
    outln!(
        "{} -> {}: {} added, {} removed, {} changed",
        ida.short(),
        idb.short(),
        d.added.len(),
        d.removed.len(),
        d.changed.len()
    )?;
    Ok(())
}

/// Runs `dump`.
pub fn dump(a: DumpArgs, ctx: &Ctx) -> Result<()> {
    if std::io::stdout().is_terminal() {
        return Err(larder::Error::InvalidArgument(
            "refusing to write a file to a terminal: pipe or redirect it".into(),
        )
        .into());
    }
    let repo = ctx.open_repo()?;
    let (id, _, root) = tree_snapshot(&repo, &a.snapshot, &a.name, &a.host)?;
    let path = snap_path(&a.path)?;
    let shown = a.path.display().to_string();
    let missing = || -> anyhow::Error {
        larder::Error::InvalidArgument(format!("no {shown} in snapshot {}", id.short())).into()
    };
    let mut e = find(&repo, &root, &path)?.ok_or_else(missing)?;
    if let EntryKind::Hardlink(first) = &e.kind {
        let size = e.size;
        e = find(&repo, &root, first)?.ok_or_else(missing)?;
        e.size = size;
    }
    let EntryKind::File(content) = &e.kind else {
        return Err(larder::Error::InvalidArgument(format!(
            "{shown} in snapshot {} is a {}, not a file",
            id.short(),
            e.kind.name()
        ))
        .into());
    };
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
    larder::restore::restore_content(
        &repo,
        content,
        e.size,
        &mut out,
        "standard output",
        &larder::progress::NoProgress,
    )?;
    std::io::Write::flush(&mut out).map_err(|source| larder::Error::SinkWrite {
        target: "standard output".into(),
        source,
    })?;
    if ctx.json() {
        // The file is on stdout: the summary goes to stderr.
        eprintln!(
            "{}",
            json!({"id": id, "path": shown, "bytes": e.size, "kind": "file"})
        );
    }
    Ok(())
}
