//! `larder prune`: delete what no snapshot needs, under an exclusive lock.

use anyhow::Result;
use larder::format::lock::LockKind;
use larder::prune::{PruneOptions, PrunePlan, PruneReport};
use serde_json::json;

use super::output::{self, TermProgress};
use super::{Ctx, parse_size};

/// How to prune.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Repack a pack when more than this share of it is unused (`5%`, `0%` … `100%`).
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub max_unused: f64,
    /// Copy at most this many bytes of packs per run (`500M`, `2G`).
    #[arg(long, value_name = "SIZE")]
    pub max_repack_size: Option<String>,
    /// Show the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Parses `5%` (or `5`) into 0.05.
pub fn parse_percent(s: &str) -> std::result::Result<f64, String> {
    let n: f64 = s
        .trim()
        .trim_end_matches('%')
        .parse()
        .map_err(|_| format!("{s:?} is not a percentage like 5%"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("{s:?} is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

impl Args {
    /// The library options.
    pub fn options(&self) -> Result<PruneOptions> {
        Ok(PruneOptions {
            max_unused: self.max_unused,
            max_repack_bytes: self
                .max_repack_size
                .as_deref()
                .map(parse_size)
                .transpose()
                .map_err(larder::Error::InvalidArgument)?,
        })
    }
}

/// Runs `prune`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let mut repo = ctx.open_repo()?;
    let lock = ctx.lock(&repo, LockKind::Exclusive, "prune")?;
    prune_locked(&mut repo, &a, lock, ctx)
}

/// Prunes with an exclusive lock already held (also the tail of `forget --prune`) and
/// shows what it did.
pub fn prune_locked(
    repo: &mut larder::repo::Repo,
    a: &Args,
    lock: larder::repo::lock::Lock,
    ctx: &Ctx,
) -> Result<()> {
    let (plan, report) = prune_quietly(repo, a, lock, ctx)?;
    show(&plan, report.as_ref(), ctx)
}

/// Prunes with an exclusive lock already held, printing nothing but progress; records the
/// prune as an event. No report for a dry run.
pub fn prune_quietly(
    repo: &mut larder::repo::Repo,
    a: &Args,
    lock: larder::repo::lock::Lock,
    ctx: &Ctx,
) -> Result<(PrunePlan, Option<PruneReport>)> {
    let lock = lock
        .into_exclusive()
        .map_err(|_| larder::Error::Internal("prune needs an exclusive lock".into()))?;
    // Whatever finished between opening and locking must be seen before marking.
    repo.resync()?;
    let plan = larder::prune::plan(repo, &a.options()?)?;
    if a.dry_run {
        return Ok((plan, None));
    }
    let started = (jiff::Timestamp::now(), std::time::Instant::now());
    let progress = TermProgress::start("repacked", ctx.progress());
    let report = larder::prune::apply(repo, &plan, &lock, progress.as_ref());
    progress.finish();
    let report = report?;
    larder::prune::trim_events(repo, &lock)?;
    // Recorded so that `larder run` on any host knows when the last prune was.
    let mut done = larder::format::event::Event::begun(
        larder::format::event::EventKind::Prune,
        None,
        None,
        started,
    );
    done.ok = true;
    done.bytes_added = plan.bytes_freed();
    larder::event::record(repo, &done)?;
    Ok((plan, Some(report)))
}

/// The `--json` object of a prune (also embedded by `forget --prune` and `run`).
pub fn json_value(plan: &PrunePlan, report: Option<&PruneReport>) -> serde_json::Value {
    json!({
        "dry_run": report.is_none(),
        "plan": plan,
        "bytes_freed": plan.bytes_freed(),
        "bytes_repacked": plan.bytes_repacked(),
        "report": report,
    })
}

fn show(plan: &PrunePlan, report: Option<&PruneReport>, ctx: &Ctx) -> Result<()> {
    if ctx.json() {
        return output::json(&json_value(plan, report));
    }
    let sum = |v: &[larder::prune::PlannedPack]| v.iter().map(|p| p.length).sum::<u64>();
    let verb = if report.is_none() { "would" } else { "will" };
    if plan.is_empty() {
        return outln!(
            "{} snapshots, {} live blobs, {} packs: nothing to prune",
            plan.snapshots,
            plan.live_blobs,
            plan.keep
        );
    }
    outln!(
        "{} snapshots, {} live blobs; {} packs kept",
        plan.snapshots,
        plan.live_blobs,
        plan.keep
    )?;
    outln!(
        "{verb} delete {} unused packs ({}), {} unindexed packs ({})",
        plan.delete.len(),
        output::bytes(sum(&plan.delete)),
        plan.unindexed.len(),
        output::bytes(sum(&plan.unindexed))
    )?;
    outln!(
        "{verb} repack {} packs ({}), copying {} of live data{}",
        plan.repack.len(),
        output::bytes(sum(&plan.repack)),
        output::bytes(plan.bytes_repacked()),
        if plan.repack_deferred > 0 {
            format!(
                " ({} more left for a later run by --max-repack-size)",
                plan.repack_deferred
            )
        } else {
            String::new()
        }
    )?;
    outln!(
        "{verb} replace {} index segments; frees {}",
        plan.old_segments.len(),
        output::bytes(plan.bytes_freed())
    )?;
    match report {
        None => outln!("dry run: nothing was changed")?,
        Some(r) => outln!(
            "done in {:.2}s: {} packs deleted, {} written, {} index segments written, {} deleted",
            r.duration,
            r.packs_deleted,
            r.packs_written,
            r.segments_written,
            r.segments_deleted
        )?,
    }
    Ok(())
}
