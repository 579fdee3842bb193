//! `larder drill SERIES`: restore the newest good snapshot of a series (or a random one)
//! into its drill command, verifying every blob, and record pass or fail in the repository.

use anyhow::Result;
use larder::drill::{DrillOptions, DrillReport};
use larder::format::event::{Event, EventKind};
use larder::format::lock::LockKind;
use larder::snapshot::{Selector, select};
use serde_json::json;

use super::output::{self, TermProgress};
use super::{Ctx, exit, status};

/// Which series, which snapshot, which command.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The series to drill.
    series: String,
    /// A random good snapshot of the series instead of the newest.
    #[arg(long, conflicts_with = "snapshot")]
    random: bool,
    /// This snapshot (id or unique prefix) instead of the newest.
    #[arg(long, value_name = "ID")]
    snapshot: Option<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// Kill the drill command after this long (default: the series' `drill_timeout`).
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Pass the drill command's stdout through (default: discarded).
    #[arg(long)]
    show_output: bool,
    /// The drill command and its arguments, after `--` (default: the series' `drill`). A
    /// stream is piped into its stdin; a directory snapshot is restored into a temporary
    /// directory that is its working directory and `LARDER_DRILL_DIR`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `drill`: 0 when it passed, 16 when the command failed, 14 when the data did.
pub fn run(a: Args, ctx: &Ctx) -> Result<u8> {
    let series_cfg = ctx.config().series.get(&a.series);
    let command = if a.command.is_empty() {
        series_cfg.and_then(|s| s.drill.clone()).ok_or_else(|| {
            larder::Error::InvalidArgument(format!(
                "no drill command for `{}`: give one after `--` or set `drill` in [series.{}]",
                a.series, a.series
            ))
        })?
    } else {
        a.command.clone()
    };
    let opts = DrillOptions {
        command,
        timeout: a
            .timeout
            .or(series_cfg.and_then(|s| s.drill_timeout.map(|t| t.0))),
        show_output: a.show_output,
    };
    let mut repo = ctx.open_repo()?;
    let lock = ctx.lock(&repo, LockKind::Shared, "drill")?;
    let (id, snap) = pick(&repo, &a)?;
    let started = (jiff::Timestamp::now(), std::time::Instant::now());
    let notifier = larder::notify::Notifier::new(
        &ctx.config().notify,
        series_cfg.and_then(|s| s.healthchecks.as_deref()),
    );
    for w in notifier.start(&a.series) {
        eprintln!("larder: warning: {w}");
    }
    let progress = TermProgress::start("verified", ctx.progress());
    if let larder::format::snapshot::Root::Stream { size, .. } = snap.root {
        progress.set_total(size);
    }
    let report = larder::drill::drill(&repo, id, &snap, &opts, progress.as_ref());
    progress.finish();
    drop(lock);
    let report = report?;

    let mut event = Event::begun(EventKind::Drill, Some(&a.series), None, started);
    event.ok = report.ok;
    event.snapshot = Some(id);
    event.error = report.error.clone();
    event.bytes_read = report.bytes;
    let recorded = larder::event::record(&mut repo, &event);
    let summary = summary(&a.series, &snap, &report, &opts);
    let outcome = larder::notify::Outcome {
        series: a.series.clone(),
        what: EventKind::Drill,
        ok: report.ok,
        host: event.host.clone(),
        summary: summary.clone(),
        snapshot: Some(id),
        duration: report.duration,
        bytes_read: report.bytes,
        bytes_added: 0,
        log_tail: report.error.clone().unwrap_or_default(),
    };
    for w in notifier.finish(&outcome) {
        eprintln!("larder: warning: {w}");
    }
    recorded?;
    let st = larder::status::status(repo.catalog(), &status::options(ctx, None))?;
    ctx.write_metrics(&st);

    if ctx.json() {
        output::json(&json!({
            "series": a.series,
            "snapshot": id,
            "snapshot_time": snap.time,
            "command": opts.command,
            "drill": report,
        }))?;
    } else {
        outln!("{summary}")?;
    }
    Ok(if report.ok {
        exit::SUCCESS
    } else {
        eprintln!(
            "larder: drill failed: {}",
            report.error.as_deref().unwrap_or("unknown")
        );
        if report.integrity {
            exit::INTEGRITY
        } else {
            exit::DRILL_FAILED
        }
    })
}

/// The snapshot to drill: an explicit one, a random good one, or the newest good one.
fn pick(
    repo: &larder::repo::Repo,
    a: &Args,
) -> Result<(larder::id::SnapshotId, larder::format::snapshot::Snapshot)> {
    let sel = Selector {
        id: a.snapshot.clone(),
        name: Some(a.series.clone()),
        host: a.host.clone(),
        at: None,
    };
    let all = repo.catalog().snapshots()?;
    if a.random {
        let good: Vec<_> = all
            .into_iter()
            .filter(|(_, s)| sel.matches(s) && s.is_good())
            .collect();
        if good.is_empty() {
            return Err(larder::Error::NoSnapshot(sel.describe()).into());
        }
        let mut b = [0u8; 8];
        getrandom::fill(&mut b).map_err(|e| larder::Error::Internal(e.to_string()))?;
        let i = usize::try_from(u64::from_le_bytes(b) % good.len() as u64).unwrap_or(0);
        return Ok(good
            .into_iter()
            .nth(i)
            .ok_or_else(|| larder::Error::Internal("random pick out of range".into()))?);
    }
    let (id, snap) = select(all, &sel)?;
    larder::snapshot::refuse_damaged(&id, &snap)?;
    Ok((id, snap))
}

fn summary(
    series: &str,
    snap: &larder::format::snapshot::Snapshot,
    r: &DrillReport,
    opts: &DrillOptions,
) -> String {
    let verdict = if r.ok { "PASS" } else { "FAIL" };
    format!(
        "drill {series}: {verdict}: snapshot {} of {} into `{}`: {} restored{} in {:.1}s{}",
        r.snapshot.short(),
        output::local_time(snap.time),
        opts.command.join(" "),
        output::bytes(r.bytes),
        if r.verified {
            ", every blob verified"
        } else {
            ""
        },
        r.duration,
        r.error
            .as_ref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )
}
