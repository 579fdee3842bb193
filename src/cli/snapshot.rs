//! `larder snapshot`: store files and directories, stdin, or a producer command's output.

use std::path::PathBuf;

use anyhow::{Context, Result};
use larder::backup::SnapshotOptions;
use larder::backup::dir::{DirOptions, Note, snapshot_dirs};
use larder::backup::source::{snapshot_command, snapshot_stdin};
use serde_json::json;

use super::output::{self, TermProgress};
use super::{Ctx, exit};

/// What to snapshot and how to label it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stdin", "command", "paths"])))]
pub struct Args {
    /// Files and directories to save (made absolute; the snapshot mirrors their paths).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Leave out paths matching a glob (repeatable): without `/` it matches a base name
    /// (`*.tmp`), with `/` the absolute path (`/srv/cache`, `/home/*/.cache`).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Read exclude globs from a file, one per line (`#` comments and blank lines ignored).
    #[arg(long, value_name = "FILE")]
    exclude_file: Vec<PathBuf>,
    /// Leave out directories that contain an entry of this name (e.g. .nobackup).
    #[arg(long, value_name = "NAME")]
    exclude_if_present: Vec<String>,
    /// Do not cross into other file systems below each path.
    #[arg(long, short = 'x')]
    one_file_system: bool,
    /// Parent snapshot for unchanged files (default: the newest of the same name and host).
    #[arg(long, value_name = "SNAPSHOT")]
    parent: Option<String>,
    /// Read every file, even those unchanged since the parent.
    #[arg(long)]
    force: bool,
    /// Series name the snapshot belongs to (e.g. shop-db).
    #[arg(long, short = 'n')]
    name: String,
    /// Read the stream from standard input.
    #[arg(long)]
    stdin: bool,
    /// Host to record (default: this machine's hostname; set it in containers).
    #[arg(long)]
    host: Option<String>,
    /// Tag the snapshot (repeatable).
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// zstd level for this snapshot (-7 to 22; default: the repository's).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-7..=22))]
    compression: Option<i32>,
    /// Record this time instead of now (RFC 3339 or `YYYY-MM-DD HH:MM`).
    #[arg(long)]
    time: Option<String>,
    /// Check that the stream is a whole dump of this kind: pg_dump (plain, ends with its
    /// completion trailer), pg_dump_custom (-Fc: magic and a readable table of contents),
    /// mysqldump (its completion line), none. A stream that fails is kept quarantined
    /// (exit 13): never counted by retention, never `latest`.
    #[arg(long, value_name = "KIND", value_parser = parse_dump_kind)]
    verify: Option<larder::dump_check::DumpKind>,
    /// Producer mode: kill the producer (its whole process group) after this long (`2h`);
    /// no snapshot, exit 13.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Producer mode: kill the producer when it writes nothing for this long (`10m`); no
    /// snapshot, exit 13.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    stall_timeout: Option<std::time::Duration>,
    /// The producer command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Parses `--verify`.
pub fn parse_dump_kind(s: &str) -> Result<larder::dump_check::DumpKind, String> {
    s.parse()
        .map_err(|e: larder::dump_check::UnknownDumpKind| e.to_string())
}

/// Reads `--exclude-file` lines.
fn exclude_file(path: &PathBuf) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read exclude file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

/// Runs `snapshot`; returns the exit code (0, or 3 when entries could not be read).
pub fn run(a: Args, ctx: &Ctx) -> Result<u8> {
    if a.name.trim().is_empty() {
        return Err(larder::Error::InvalidArgument("--name must not be empty".into()).into());
    }
    let dir_only = !a.exclude.is_empty()
        || !a.exclude_file.is_empty()
        || !a.exclude_if_present.is_empty()
        || a.one_file_system
        || a.parent.is_some()
        || a.force;
    if (a.timeout.is_some() || a.stall_timeout.is_some()) && a.command.is_empty() {
        return Err(larder::Error::InvalidArgument(
            "--timeout and --stall-timeout apply to a producer command (after `--`)".into(),
        )
        .into());
    }
    if a.verify.is_some() && !a.paths.is_empty() {
        return Err(larder::Error::InvalidArgument(
            "--verify applies to a stream (--stdin or a command), not to files".into(),
        )
        .into());
    }
    if dir_only && a.paths.is_empty() {
        return Err(larder::Error::InvalidArgument(
            "--exclude, --exclude-file, --exclude-if-present, --one-file-system, --parent and \
             --force apply to files and directories, not to a stream"
                .into(),
        )
        .into());
    }
    let mut opts = SnapshotOptions {
        name: a.name,
        host: ctx.host(a.host),
        tags: a.tags,
        zstd_level: a.compression,
        time: a
            .time
            .as_deref()
            .map(larder::snapshot::parse_time)
            .transpose()?,
        lock: None,
        verify: a.verify,
        timeout: a.timeout,
        stall_timeout: a.stall_timeout,
        stderr_tail: None,
    };
    let mut repo = ctx.open_repo()?;
    let lock = ctx.lock(&repo, larder::format::lock::LockKind::Shared, "snapshot")?;
    opts.lock = Some(lock.check());
    let progress = TermProgress::start("read", ctx.progress());
    let report = if !a.paths.is_empty() {
        let mut exclude = a.exclude;
        for f in &a.exclude_file {
            exclude.extend(exclude_file(f)?);
        }
        let parent = match &a.parent {
            Some(p) => {
                let all = repo.catalog().snapshots()?;
                let sel = larder::snapshot::Selector {
                    id: Some(p.clone()),
                    ..Default::default()
                };
                Some(larder::snapshot::select(all, &sel)?.0)
            }
            None => None,
        };
        let dir = DirOptions {
            paths: a.paths,
            exclude,
            exclude_if_present: a.exclude_if_present,
            one_file_system: a.one_file_system,
            parent,
            force: a.force,
        };
        let quiet = ctx.quiet();
        let mut note = |n: Note| match n {
            Note::Unreadable { path, error } => {
                eprintln!("larder: warning: cannot read {}: {error}", path.display());
            }
            Note::Skipped { path, why } if !quiet => {
                eprintln!("larder: note: skipped {}: {why}", path.display());
            }
            Note::Parent(id) if !quiet => eprintln!("larder: using parent snapshot {}", id.short()),
            _ => {}
        };
        snapshot_dirs(&mut repo, &dir, &opts, progress.as_ref(), &mut note)
    } else if a.stdin {
        snapshot_stdin(&mut repo, &opts, progress.as_ref())
    } else {
        snapshot_command(&mut repo, &a.command, &opts, progress.as_ref())
    };
    progress.finish();
    let r = report?;
    let s = &r.snapshot;
    if ctx.json() {
        return output::json(&json!({
            "id": r.id,
            "snapshot": s,
            "packs_added": r.write.packs,
            "index_segments_added": r.write.index_segments,
            "blobs_added": r.write.blobs,
            "dedup_ratio": ratio(s.bytes_read, s.raw_bytes_added),
            "compression_ratio": ratio(r.write.raw_bytes, r.write.stored_bytes),
            "throughput_bytes_per_second": s.bytes_read as f64 / s.duration.max(1e-9),
        }))
        .map(|()| code(s));
    }
    outln!(
        "snapshot {} {} ({}, {})",
        r.id.short(),
        if s.quarantined.is_some() {
            "kept QUARANTINED"
        } else {
            "saved"
        },
        s.name,
        s.host
    )?;
    outln!(
        "  read {} in {:.2}s ({}), {} chunks, {} new",
        output::bytes(s.bytes_read),
        s.duration,
        output::rate(s.bytes_read, s.duration),
        s.chunks,
        s.new_chunks
    )?;
    outln!(
        "  added {} stored ({} before compression); dedup {}, compression {}",
        output::bytes(s.bytes_added),
        output::bytes(s.raw_bytes_added),
        show(ratio(s.bytes_read, s.raw_bytes_added)),
        show(ratio(r.write.raw_bytes, r.write.stored_bytes)),
    )?;
    outln!("  {}", output::requests_line())?;
    if let Some(c) = &s.tree_counts {
        outln!(
            "  files: {} new, {} changed, {} unmodified; {} directories, {} other entries",
            c.files_new,
            c.files_changed,
            c.files_unmodified,
            c.dirs,
            c.others
        )?;
    }
    Ok(code(s))
}

/// The exit code for a written snapshot, its warnings and why it is not good on stderr.
pub fn code(s: &larder::format::snapshot::Snapshot) -> u8 {
    for w in &s.warnings {
        eprintln!("larder: warning: {w}");
    }
    if let Some(q) = &s.quarantined {
        eprintln!(
            "larder: error: snapshot kept QUARANTINED, not a good backup ({} check): {}",
            q.check, q.reason
        );
        return exit::PRODUCER_FAILED;
    }
    if s.errors > 0 {
        eprintln!(
            "larder: snapshot written, but {} entr{} could not be read (named above)",
            s.errors,
            if s.errors == 1 { "y" } else { "ies" }
        );
        exit::INCOMPLETE
    } else {
        exit::SUCCESS
    }
}

/// `a / b`, or `None` (JSON null, "∞" in text) when nothing was added.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

fn show(r: Option<f64>) -> String {
    r.map_or("∞".into(), |r| format!("{r:.2}x"))
}
