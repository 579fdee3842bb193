//! `larder unlock`: remove stale locks (or, with `--remove-all`, every lock).

use anyhow::Result;
use serde_json::json;

use super::{Ctx, output};

/// Which locks.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Remove every lock, live ones too: only when you know no larder process is running
    /// against this repository.
    #[arg(long)]
    remove_all: bool,
}

/// Runs `unlock`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let removed = larder::repo::lock::remove(repo.backend().as_ref(), repo.keys(), a.remove_all)?;
    let live = larder::repo::lock::list(repo.backend().as_ref(), repo.keys())?;
    if ctx.json() {
        return output::json(&json!({
            "removed": removed.iter().map(|l| json!({"id": l.id, "lock": l.describe()})).collect::<Vec<_>>(),
            "remaining": live.iter().map(|l| json!({"id": l.id, "lock": l.describe()})).collect::<Vec<_>>(),
        }));
    }
    for l in &removed {
        outln!("removed {}", l.describe())?;
    }
    for l in &live {
        outln!("kept (live) {}", l.describe())?;
    }
    outln!("{} removed, {} live", removed.len(), live.len())?;
    Ok(())
}
