//! `larder stats`: stored and raw size, compression and dedup ratios, per series and per
//! snapshot. Read-only; takes no lock (like `snapshots`).

use anyhow::Result;
use larder::stats::{StatsOptions, StatsReport};

use super::{Ctx, output};

/// Filters and extras.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this series in the per-series and per-snapshot figures (the repository totals
    /// always cover every snapshot).
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only this host in the per-series and per-snapshot figures.
    #[arg(long)]
    host: Option<String>,
    /// Also list every selected snapshot (always included with --json).
    #[arg(long)]
    snapshots: bool,
    /// Also count the blobs no snapshot references and the packs no index names (walks
    /// every snapshot's trees and content lists, as prune does).
    #[arg(long)]
    unused: bool,
}

/// Runs `stats`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let opts = StatsOptions {
        name: a.name,
        host: a.host,
        unused: a.unused,
    };
    let report = larder::stats::report(&repo, &opts)?;
    if ctx.json() {
        return output::json(&serde_json::to_value(&report)?);
    }
    show(&report, &opts, a.snapshots)
}

/// `2.00x`; `-` when there is nothing to divide by.
fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn show(r: &StatsReport, opts: &StatsOptions, snapshots: bool) -> Result<()> {
    let repo = &r.repository;
    let k = &repo.by_kind;
    outln!(
        "repository: {}, {} ({}), {}",
        plural(repo.snapshots, "snapshot", "snapshots"),
        plural(repo.packs, "pack", "packs"),
        output::bytes(repo.pack_bytes),
        plural(repo.blobs.blobs, "blob", "blobs"),
    )?;
    outln!(
        "  raw      {:>11}  data {}, content lists {}, trees {}",
        output::bytes(repo.blobs.raw_bytes),
        output::bytes(k.data.raw_bytes),
        output::bytes(k.content_list.raw_bytes),
        output::bytes(k.tree.raw_bytes),
    )?;
    outln!(
        "  stored   {:>11}  compression {}",
        output::bytes(repo.blobs.stored_bytes),
        times(repo.compression_ratio),
    )?;
    outln!(
        "  logical  {:>11}  restoring every snapshot; dedup {}",
        output::bytes(repo.restore_size),
        times(repo.dedup_ratio),
    )?;
    if let Some(u) = &repo.unused {
        outln!(
            "  unused   {:>11}  {} no snapshot references ({} raw); {} no index names ({})",
            output::bytes(u.blobs.stored_bytes),
            plural(u.blobs.blobs, "blob", "blobs"),
            output::bytes(u.blobs.raw_bytes),
            plural(u.unindexed_packs, "pack", "packs"),
            output::bytes(u.unindexed_pack_bytes),
        )?;
    }

    let mut filter = Vec::new();
    if let Some(n) = &opts.name {
        filter.push(format!("name {n}"));
    }
    if let Some(h) = &opts.host {
        filter.push(format!("host {h}"));
    }
    if !filter.is_empty() {
        let s = &r.selected;
        outln!(
            "selected ({}): {}, logical {}, added {}; dedup {}",
            filter.join(", "),
            plural(s.snapshots, "snapshot", "snapshots"),
            output::bytes(s.restore_size),
            output::bytes(s.bytes_added),
            times(s.dedup_ratio),
        )?;
    }
    if r.series.is_empty() {
        return Ok(());
    }

    outln!()?;
    outln!(
        "{:<16}  {:>9}  {:<19}  {:>11}  {:>11}  {:>11}  {:>7}  hosts",
        "name",
        "snapshots",
        "newest",
        "newest size",
        "logical",
        "added",
        "dedup"
    )?;
    for s in &r.series {
        outln!(
            "{:<16}  {:>9}  {:<19}  {:>11}  {:>11}  {:>11}  {:>7}  {}",
            s.name,
            s.totals.snapshots,
            output::local_time(s.newest_time),
            output::bytes(s.newest_restore_size),
            output::bytes(s.totals.restore_size),
            output::bytes(s.totals.bytes_added),
            times(s.totals.dedup_ratio),
            s.hosts.join(", "),
        )?;
    }

    // What this run itself cost the storage (on S3, what is billed).
    outln!("{}", output::requests_line())?;
    if !snapshots {
        return Ok(());
    }
    outln!()?;
    outln!(
        "{:<8}  {:<19}  {:<12}  {:<16}  {:>11}  {:>11}  {:>11}  {:>7}  {:>7}",
        "id",
        "time",
        "host",
        "name",
        "size",
        "read",
        "added",
        "dedup",
        "compr"
    )?;
    for s in &r.snapshots {
        outln!(
            "{:<8}  {:<19}  {:<12}  {:<16}  {:>11}  {:>11}  {:>11}  {:>7}  {:>7}",
            s.id.short(),
            output::local_time(s.time),
            s.host,
            s.name,
            output::bytes(s.restore_size),
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
            times(s.dedup_ratio),
            times(s.compression_ratio),
        )?;
    }
    Ok(())
}
