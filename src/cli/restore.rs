//! `larder restore`: write a snapshot's stream to stdout or a file, or a directory snapshot
//! into a target directory.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
use larder::format::snapshot::Root;
use larder::restore::dir::{Overwrite, RestoreNote, TreeRestoreOptions, restore_tree};
use larder::restore::{restore_stream, restore_to_file};
use larder::snapshot::{Selector, parse_time, select};
use serde_json::json;

use super::Ctx;
use super::output::{self, TermProgress};

/// Which snapshot and where to.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Snapshot id, unique id prefix, or `latest` (default).
    snapshot: Option<String>,
    /// Only snapshots of this series.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// The newest snapshot taken at or before this time (`2026-11-20 02:00`, local time; a
    /// date alone means the end of that day; or RFC 3339).
    #[arg(long)]
    at: Option<String>,
    /// Write to this file (atomically: a temporary file renamed once complete) instead of
    /// stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Directory snapshots: restore under this directory (the snapshot's absolute paths are
    /// recreated below it).
    #[arg(long, short = 't', value_name = "DIR")]
    target: Option<PathBuf>,
    /// Directory snapshots: restore only this absolute snapshot path and what is below it
    /// (repeatable).
    #[arg(long, value_name = "PATH", requires = "target")]
    include: Vec<PathBuf>,
    /// Directory snapshots: leave out snapshot paths matching this glob (repeatable).
    #[arg(long, value_name = "GLOB", requires = "target")]
    exclude: Vec<String>,
    /// Directory snapshots: what to do with files that exist in the target.
    #[arg(long, value_enum, default_value_t = OverwriteArg::Never, requires = "target")]
    overwrite: OverwriteArg,
    /// Directory snapshots: print what would change and write nothing.
    #[arg(long, requires = "target")]
    dry_run: bool,
}

/// `--overwrite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum OverwriteArg {
    /// Refuse to restore over an existing file (the restore fails, naming it, before writing).
    Never,
    /// Leave files whose size and modification time match; rewrite the others.
    IfChanged,
    /// Rewrite every file.
    Always,
}

/// Runs `restore`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let sel = Selector {
        id: a.snapshot.clone(),
        name: a.name.clone(),
        host: a.host.clone(),
        at: a.at.as_deref().map(parse_time).transpose()?,
    };
    if let Some(target) = &a.target {
        if a.output.is_some() {
            return Err(larder::Error::InvalidArgument(
                "--target and -o are exclusive: -o writes a stream, --target a directory".into(),
            )
            .into());
        }
        return restore_dir(&a, &sel, target, ctx);
    }
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(larder::Error::InvalidArgument(
            "refusing to write a snapshot to a terminal: pipe it or use -o FILE".into(),
        )
        .into());
    }
    let repo = ctx.open_repo()?;
    let _lock = ctx.lock(&repo, larder::format::lock::LockKind::Shared, "restore")?;
    let (id, snap) = select(repo.catalog().snapshots()?, &sel)?;
    larder::snapshot::refuse_damaged(&id, &snap)?;
    let progress = TermProgress::start("restored", ctx.progress());
    if let Root::Stream { size, .. } = snap.root {
        progress.set_total(size);
    }
    let stats = match &a.output {
        Some(path) => restore_to_file(&repo, &snap, path, progress.as_ref()),
        None => {
            let mut out = std::io::BufWriter::with_capacity(1 << 20, std::io::stdout());
            restore_stream(&repo, &snap, &mut out, "standard output", progress.as_ref())
        }
    };
    progress.finish();
    let stats = stats?;
    let summary = json!({
        "id": id,
        "name": snap.name,
        "bytes": stats.bytes,
        "chunks": stats.chunks,
        "duration": stats.duration,
        "output": a.output.as_ref().map(|p| p.display().to_string()),
    });
    // With data on stdout the summary goes to stderr, and only when someone is watching.
    match (ctx.json(), a.output.is_some()) {
        (true, true) => output::json(&summary)?,
        (true, false) => eprintln!("{}", serde_json::to_string(&summary)?),
        (false, _) if std::io::stderr().is_terminal() => eprintln!(
            "restored snapshot {} ({}): {} in {:.2}s ({}), every blob verified",
            id.short(),
            snap.name,
            output::bytes(stats.bytes),
            stats.duration,
            output::rate(stats.bytes, stats.duration)
        ),
        _ => {}
    }
    Ok(())
}

/// `restore --target`: a directory snapshot into a directory.
fn restore_dir(a: &Args, sel: &Selector, target: &std::path::Path, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let _lock = ctx.lock(&repo, larder::format::lock::LockKind::Shared, "restore")?;
    let (id, snap) = select(repo.catalog().snapshots()?, sel)?;
    larder::snapshot::refuse_damaged(&id, &snap)?;
    let Root::Tree { tree } = snap.root else {
        return Err(larder::Error::InvalidArgument(format!(
            "snapshot {} ({}) is a stream: restore it to stdout or -o FILE, not --target",
            id.short(),
            snap.name
        ))
        .into());
    };
    let opts = TreeRestoreOptions {
        target: target.to_path_buf(),
        include: a.include.clone(),
        exclude: a.exclude.clone(),
        overwrite: match a.overwrite {
            OverwriteArg::Never => Overwrite::Never,
            OverwriteArg::IfChanged => Overwrite::IfChanged,
            OverwriteArg::Always => Overwrite::Always,
        },
        dry_run: a.dry_run,
    };
    let quiet = ctx.quiet();
    let mut note = |n: RestoreNote| match n {
        RestoreNote::Metadata { path, what } => {
            eprintln!("larder: warning: {}: {what}", path.display());
        }
        RestoreNote::NotRoot(what) if !quiet => eprintln!("larder: note: not root: {what}"),
        RestoreNote::NotRoot(_) => {}
    };
    let progress = TermProgress::start("restored", ctx.progress() && !a.dry_run);
    let stats = restore_tree(&repo, &tree, &opts, progress.as_ref(), &mut note);
    progress.finish();
    let stats = stats?;
    if ctx.json() {
        return output::json(&json!({
            "id": id,
            "name": snap.name,
            "target": target.display().to_string(),
            "dry_run": a.dry_run,
            "stats": stats,
        }));
    }
    if a.dry_run {
        for c in &stats.changes {
            let verb = match c.action {
                larder::restore::dir::Action::Create => "create",
                larder::restore::dir::Action::Replace => "replace",
                larder::restore::dir::Action::Unchanged => "unchanged",
                larder::restore::dir::Action::Merge => "keep dir",
            };
            outln!("{verb:<9}  {:<12}  {}", c.kind, c.path.display())?;
        }
        let writes = stats
            .changes
            .iter()
            .filter(|c| {
                matches!(
                    c.action,
                    larder::restore::dir::Action::Create | larder::restore::dir::Action::Replace
                )
            })
            .count();
        outln!("dry run: {writes} entries would be written; nothing was")?;
        return Ok(());
    }
    outln!(
        "restored snapshot {} ({}) into {}: {} entries written, {} unchanged, {} in {:.2}s, every blob verified",
        id.short(),
        snap.name,
        target.display(),
        stats.written,
        stats.unchanged,
        output::bytes(stats.bytes),
        stats.duration
    )?;
    Ok(())
}
