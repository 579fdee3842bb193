//! `larder forget`: remove snapshots by a retention policy (restic's `forget` semantics,
//! README "Retention"), optionally followed by `prune`.

use std::collections::{HashMap, HashSet};

use anyhow::Result;
use jiff::tz::TimeZone;
use larder::backend::ObjectKey;
use larder::format::lock::LockKind;
use larder::id::SnapshotId;
use larder::retention::{GroupBy, Period, Policy, TagList};
use serde_json::json;

use super::{Ctx, output, prune};

/// The policy and what to do with it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only snapshots of this series (others are left alone).
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// Keep the N newest snapshots.
    #[arg(long, value_name = "N")]
    keep_last: Option<u32>,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(long, value_name = "N")]
    keep_hourly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest days that have one (local time).
    #[arg(long, value_name = "N")]
    keep_daily: Option<u32>,
    /// Keep the newest snapshot of each of the N newest ISO weeks that have one.
    #[arg(long, value_name = "N")]
    keep_weekly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest months that have one.
    #[arg(long, value_name = "N")]
    keep_monthly: Option<u32>,
    /// Keep the newest snapshot of each of the N newest years that have one.
    #[arg(long, value_name = "N")]
    keep_yearly: Option<u32>,
    /// Keep every snapshot within this period of the group's newest (`14d`, `1y6m`, `36h`).
    #[arg(long, value_name = "PERIOD")]
    keep_within: Option<Period>,
    /// Keep the newest snapshot of each hour within this period of the newest.
    #[arg(long, value_name = "PERIOD")]
    keep_within_hourly: Option<Period>,
    /// Keep the newest snapshot of each day within this period of the newest.
    #[arg(long, value_name = "PERIOD")]
    keep_within_daily: Option<Period>,
    /// Keep the newest snapshot of each week within this period of the newest.
    #[arg(long, value_name = "PERIOD")]
    keep_within_weekly: Option<Period>,
    /// Keep the newest snapshot of each month within this period of the newest.
    #[arg(long, value_name = "PERIOD")]
    keep_within_monthly: Option<Period>,
    /// Keep the newest snapshot of each year within this period of the newest.
    #[arg(long, value_name = "PERIOD")]
    keep_within_yearly: Option<Period>,
    /// Keep snapshots that carry all these tags (`a,b`; repeatable: any of the lists).
    #[arg(long, value_name = "TAGS")]
    keep_tag: Vec<TagList>,
    /// Apply the policy per group of snapshots sharing these (`host,name` by default; also
    /// `tags`, or `""` for one group).
    #[arg(long, default_value = "host,name", value_name = "FIELDS")]
    group_by: GroupBy,
    /// Allow a policy that removes every snapshot of a group.
    #[arg(long)]
    allow_empty: bool,
    /// Also remove incomplete snapshots (directory snapshots with unreadable entries), which
    /// keep rules never count.
    #[arg(long)]
    prune_incomplete: bool,
    /// Print what would be kept and removed, and why; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Run `prune` afterwards, under the same lock.
    #[arg(long)]
    prune: bool,
    /// Prune options (with --prune).
    #[command(flatten)]
    prune_args: PruneFlags,
}

/// The prune flags `forget --prune` passes on.
#[derive(Debug, Clone, clap::Args)]
pub struct PruneFlags {
    /// With --prune: repack a pack when more than this share of it is unused.
    #[arg(long, default_value = "5%", value_parser = prune::parse_percent)]
    max_unused: f64,
    /// With --prune: copy at most this many bytes of packs per run.
    #[arg(long, value_name = "SIZE")]
    max_repack_size: Option<String>,
}

impl PruneFlags {
    /// The prune arguments these flags stand for.
    fn args(&self) -> prune::Args {
        prune::Args {
            max_unused: self.max_unused,
            max_repack_size: self.max_repack_size.clone(),
            dry_run: false,
        }
    }
}

/// Runs `forget`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let policy = Policy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a.keep_within,
        within_hourly: a.keep_within_hourly,
        within_daily: a.keep_within_daily,
        within_weekly: a.keep_within_weekly,
        within_monthly: a.keep_within_monthly,
        within_yearly: a.keep_within_yearly,
        tags: a.keep_tag.clone(),
    };
    let mut repo = ctx.open_repo()?;
    let lock = ctx.lock(&repo, LockKind::Exclusive, "forget")?;
    repo.resync()?;
    let all = repo.catalog().snapshots()?;
    let chosen: Vec<_> = all
        .into_iter()
        .filter(|(_, s)| a.name.as_ref().is_none_or(|n| &s.name == n))
        .filter(|(_, s)| a.host.as_ref().is_none_or(|h| &s.host == h))
        .collect();
    let plan = larder::retention::plan(&chosen, &policy, a.group_by, &TimeZone::system())
        .map_err(|e| larder::Error::InvalidArgument(e.to_string()))?;
    if !a.allow_empty
        && let Some(g) = plan.groups.iter().find(|g| g.removes_all)
    {
        return Err(larder::Error::InvalidArgument(format!(
            "refusing to remove every snapshot of {} (policy: {policy}); pass --allow-empty \
             if that is what you want",
            g.key
        ))
        .into());
    }
    let mut remove: Vec<SnapshotId> = plan.remove().collect();
    if a.prune_incomplete {
        remove.extend(plan.incomplete.iter().copied());
    }
    let by_id: HashMap<SnapshotId, &larder::format::snapshot::Snapshot> =
        chosen.iter().map(|(id, s)| (*id, s)).collect();
    let removing: HashSet<SnapshotId> = remove.iter().copied().collect();

    if ctx.json() {
        let groups: Vec<_> = plan
            .groups
            .iter()
            .map(|g| {
                json!({
                    "group": g.key.to_string(),
                    "removes_all": g.removes_all,
                    "snapshots": g.decisions.iter().map(|d| json!({
                        "id": d.id,
                        "time": by_id.get(&d.id).map(|s| s.time),
                        "keep": d.keep,
                        "reasons": d.reasons,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut pruned = serde_json::Value::Null;
        if !a.dry_run {
            delete(&repo, &lock, &remove)?;
            if a.prune {
                // One JSON document: the prune's report goes inside forget's.
                repo.resync()?;
                let (plan, report) =
                    prune::prune_quietly(&mut repo, &a.prune_args.args(), lock, ctx)?;
                pruned = prune::json_value(&plan, report.as_ref());
            }
        }
        return output::json(&json!({
            "dry_run": a.dry_run,
            "policy": policy.to_string(),
            "groups": groups,
            "incomplete": plan.incomplete.iter().map(|id| json!({
                "id": id,
                "removed": removing.contains(id),
            })).collect::<Vec<_>>(),
            "quarantined": plan.quarantined.iter().map(|q| json!({
                "id": q.id,
                "time": by_id.get(&q.id).map(|s| s.time),
                "superseded": q.superseded,
                "removed": removing.contains(&q.id),
            })).collect::<Vec<_>>(),
            "removed": if a.dry_run { 0 } else { remove.len() },
            "prune": pruned,
        }));
    } else {
        let when = |id: &SnapshotId| {
            by_id
                .get(id)
                .map(|s| output::local_time(s.time))
                .unwrap_or_default()
        };
        outln!("policy: {policy}")?;
        for g in &plan.groups {
            outln!("{}:", g.key)?;
            for d in &g.decisions {
                outln!(
                    "  {}  {}  {:<6}  {}",
                    d.id.short(),
                    when(&d.id),
                    if d.keep { "keep" } else { "remove" },
                    d.reasons.join(", ")
                )?;
            }
        }
        if !plan.incomplete.is_empty() {
            outln!("incomplete snapshots (not counted by the policy):")?;
            for id in &plan.incomplete {
                outln!(
                    "  {}  {}  {}",
                    id.short(),
                    when(id),
                    if removing.contains(id) {
                        "remove (--prune-incomplete)"
                    } else {
                        "keep (remove with --prune-incomplete)"
                    }
                )?;
            }
        }
        if !plan.quarantined.is_empty() {
            outln!("quarantined snapshots (not counted by the policy):")?;
            for q in &plan.quarantined {
                outln!(
                    "  {}  {}  {}",
                    q.id.short(),
                    when(&q.id),
                    if q.superseded {
                        "remove (a newer good snapshot exists)"
                    } else {
                        "keep (newest of its group)"
                    }
                )?;
            }
        }
        if a.dry_run {
            outln!(
                "dry run: {} snapshots would be removed; nothing was",
                remove.len()
            )?;
        } else {
            delete(&repo, &lock, &remove)?;
            outln!("removed {} snapshots", remove.len())?;
        }
    }
    if a.prune && !a.dry_run {
        repo.resync()?;
        return prune::prune_locked(&mut repo, &a.prune_args.args(), lock, ctx);
    }
    Ok(())
}

/// Deletes snapshot objects, checking first that our exclusive lock still holds.
pub fn delete(
    repo: &larder::repo::Repo,
    lock: &larder::repo::lock::Lock,
    ids: &[SnapshotId],
) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    lock.check().ensure_held()?;
    for id in ids {
        repo.backend().delete(&ObjectKey::snapshot(id))?;
    }
    Ok(())
}
