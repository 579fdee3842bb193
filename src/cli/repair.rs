//! `larder repair index | snapshots`: rebuild what can be rebuilt (under an exclusive lock).

use anyhow::Result;
use larder::format::lock::LockKind;
use serde_json::json;

use super::{Ctx, output};

/// What to repair.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Rebuild the index segments from the pack headers (the catalog follows).
    Index,
    /// Mark snapshots that depend on missing or corrupt data as damaged (kept and listed,
    /// never used by restore); nothing is deleted without --forget.
    Snapshots {
        /// Delete the damaged snapshots (and unreadable snapshot objects) instead of
        /// marking them; `prune` then frees their data.
        #[arg(long)]
        forget: bool,
        /// Read every pack (as `check --read-data`) to find corrupt data chunks too.
        #[arg(long)]
        read_data: bool,
    },
}

/// Runs `repair`.
pub fn run(c: Command, ctx: &Ctx) -> Result<()> {
    let mut repo = ctx.open_repo_unwarned()?;
    let lock = ctx
        .lock(&repo, LockKind::Exclusive, "repair")?
        .into_exclusive()
        .map_err(|_| larder::Error::Internal("repair needs an exclusive lock".into()))?;
    match c {
        Command::Index => {
            repo.resync()?;
            let r = larder::repair::index(&mut repo, &lock)?;
            if ctx.json() {
                return output::json(&json!(r));
            }
            for (id, why) in &r.unreadable {
                outln!("unreadable pack {id}: {why}")?;
            }
            outln!(
                "indexed {} packs ({} blobs) from their headers: {} index segments written, {} old ones deleted{}",
                r.packs,
                r.blobs,
                r.segments_written,
                r.segments_deleted,
                if r.unreadable.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} packs unreadable (run `larder repair snapshots`)",
                        r.unreadable.len()
                    )
                }
            )?;
        }
        Command::Snapshots { forget, read_data } => {
            let r = larder::repair::snapshots(&mut repo, &lock, forget, read_data)?;
            if ctx.json() {
                return output::json(&json!(r));
            }
            for (old, new) in &r.marked {
                outln!(
                    "marked damaged: snapshot {} (now {})",
                    old.short(),
                    new.short()
                )?;
            }
            for id in &r.forgotten {
                outln!("forgotten: snapshot {}", id.short())?;
            }
            for id in &r.unreadable {
                if !forget {
                    outln!(
                        "unreadable snapshot object {} (delete it with --forget)",
                        id.short()
                    )?;
                }
            }
            outln!(
                "{} problems; {} snapshots marked, {} already marked, {} forgotten",
                r.problems,
                r.marked.len(),
                r.already_marked.len(),
                r.forgotten.len()
            )?;
        }
    }
    Ok(())
}
