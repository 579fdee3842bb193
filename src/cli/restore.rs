//! `larder restore`: write a snapshot's stream to stdout or a file.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Result;
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
}

/// Runs `restore`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let sel = Selector {
        id: a.snapshot,
        name: a.name,
        host: a.host,
        at: a.at.as_deref().map(parse_time).transpose()?,
    };
    if a.output.is_none() && std::io::stdout().is_terminal() {
        return Err(larder::Error::InvalidArgument(
            "refusing to write a snapshot to a terminal: pipe it or use -o FILE".into(),
        )
        .into());
    }
    let repo = ctx.open_repo()?;
    let (id, snap) = select(repo.catalog().snapshots()?, &sel)?;
    let progress = TermProgress::start("restored", ctx.progress());
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
