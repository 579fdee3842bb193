//! `larder run SERIES… | --all`: the scheduled job, one line in cron. For each series of the
//! `--config` file: snapshot (its command with `verify`, `timeout`, `stall_timeout`, or its
//! paths), then its `keep` policy; then a prune when the last one recorded is older than
//! `prune_every`; then the metrics file and the notifications. Every run is recorded in the
//! repository as an event, so `status` on any host sees failures that left no snapshot.

use anyhow::Result;
use jiff::tz::TimeZone;
use larder::backup::SnapshotOptions;
use larder::backup::dir::{DirOptions, Note, snapshot_dirs};
use larder::backup::source::snapshot_command;
use larder::config::{PruneEvery, SeriesConfig};
use larder::format::event::{Event, EventKind};
use larder::format::lock::LockKind;
use larder::id::SnapshotId;
use larder::repo::Repo;
use serde_json::json;

use super::output::{self, TermProgress};
use super::{Ctx, exit, forget, prune, status};

/// Which series.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Series of the configuration file to run, in this order.
    #[arg(value_name = "SERIES", required_unless_present = "all")]
    series: Vec<String>,
    /// Every series of the configuration file, in name order.
    #[arg(long, conflicts_with = "series")]
    all: bool,
    /// Do not prune, even when one is due.
    #[arg(long)]
    no_prune: bool,
}

/// What happened to one series.
#[derive(Debug, serde::Serialize)]
struct SeriesRun {
    series: String,
    ok: bool,
    exit_code: u8,
    snapshot: Option<SnapshotId>,
    quarantined: Option<String>,
    warnings: Vec<String>,
    error: Option<String>,
    bytes_read: u64,
    bytes_added: u64,
    duration: f64,
    forgotten: usize,
    /// Why the retention policy was not applied, if it was not.
    forget_skipped: Option<String>,
}

/// Runs `run`; returns the first non-zero exit code of its series (13 for a failed or
/// quarantined dump), or 1 when only the prune failed.
pub fn run(a: Args, ctx: &Ctx) -> Result<u8> {
    let cfg = ctx.config();
    if cfg.series.is_empty() {
        return Err(larder::Error::InvalidArgument(
            "`larder run` needs a --config file (or LARDER_CONFIG) with [series.NAME] sections"
                .into(),
        )
        .into());
    }
    let names: Vec<String> = if a.all {
        cfg.series.keys().cloned().collect()
    } else {
        a.series.clone()
    };
    for n in &names {
        cfg.series(n)?;
    }
    let mut repo = match ctx.open_repo() {
        Ok(r) => r,
        Err(e) => {
            // Nothing can be recorded in a repository that does not open; the pings still
            // tell the monitor.
            for n in &names {
                notify(ctx, cfg.series(n)?, &failed_outcome(n, &e));
            }
            return Err(e);
        }
    };
    let mut runs = Vec::new();
    for n in &names {
        runs.push(run_series(ctx, &mut repo, n, cfg.series(n)?));
    }
    let pruned = if a.no_prune {
        Ok(None)
    } else {
        maybe_prune(ctx, &mut repo)
    };
    let st = larder::status::status(repo.catalog(), &status::options(ctx, None))?;
    ctx.write_metrics(&st);

    let prune_error = pruned.as_ref().err().map(super::exit::message);
    if ctx.json() {
        output::json(&json!({
            "series": runs,
            "prune": match &pruned {
                Ok(Some(Pruned::Ran(_, report))) => json!({"due": true, "ran": true, "report": report}),
                Ok(Some(Pruned::Skipped(why))) => json!({"due": true, "ran": false, "skipped": why}),
                Ok(None) => json!({"due": false, "ran": false}),
                Err(_) => json!({"due": true, "ran": false, "error": prune_error}),
            },
        }))?;
    } else {
        for r in &runs {
            outln!(
                "{}: {}",
                r.series,
                match (&r.snapshot, &r.quarantined, &r.error) {
                    (Some(id), Some(q), _) => format!("QUARANTINED snapshot {}: {q}", id.short()),
                    (Some(id), None, _) => format!(
                        "snapshot {} ({} read, {} added, {:.1}s){}",
                        id.short(),
                        output::bytes(r.bytes_read),
                        output::bytes(r.bytes_added),
                        r.duration,
                        if r.forgotten > 0 {
                            format!(", {} forgotten", r.forgotten)
                        } else {
                            String::new()
                        }
                    ),
                    (None, _, e) => format!("FAILED: {}", e.as_deref().unwrap_or("unknown")),
                }
            )?;
        }
        if let Ok(Some(Pruned::Ran(note, _))) = &pruned {
            outln!("prune: {note}")?;
        }
    }
    if let Some(e) = &prune_error {
        eprintln!("larder: prune failed: {e}");
    }
    let code = runs
        .iter()
        .map(|r| r.exit_code)
        .find(|c| *c != exit::SUCCESS)
        .unwrap_or(if prune_error.is_some() {
            exit::FAILURE
        } else {
            exit::SUCCESS
        });
    Ok(code)
}

/// Snapshot, record, forget and notify for one series. Never fails: what went wrong is in
/// the result (and on stderr).
fn run_series(ctx: &Ctx, repo: &mut Repo, name: &str, sc: &SeriesConfig) -> SeriesRun {
    let cfg = ctx.config();
    let notifier = larder::notify::Notifier::new(&cfg.notify, sc.healthchecks.as_deref());
    for w in notifier.start(name) {
        eprintln!("larder: warning: {w}");
    }
    let started = (jiff::Timestamp::now(), std::time::Instant::now());
    let host = sc.host.clone().or_else(|| cfg.repository.host.clone());
    let mut log: Vec<String> = Vec::new();
    let stderr = larder::backup::source::StderrTail::default();
    let snapshot = take_snapshot(ctx, repo, name, sc, host.clone(), &stderr, &mut log);
    // The producer's last words come first in the notification's log tail.
    let said = stderr.text();
    if !said.is_empty() {
        log.insert(0, said.trim_end().to_owned());
    }
    let mut run = SeriesRun {
        series: name.to_owned(),
        ok: false,
        exit_code: exit::SUCCESS,
        snapshot: None,
        quarantined: None,
        warnings: vec![],
        error: None,
        bytes_read: 0,
        bytes_added: 0,
        duration: 0.0,
        forgotten: 0,
        forget_skipped: None,
    };
    match &snapshot {
        Ok(r) => {
            let s = &r.snapshot;
            run.snapshot = Some(r.id);
            run.bytes_read = s.bytes_read;
            run.bytes_added = s.bytes_added;
            run.warnings = s.warnings.clone();
            run.quarantined = s
                .quarantined
                .as_ref()
                .map(|q| format!("{}: {}", q.check, q.reason));
            run.exit_code = super::snapshot::code(s);
            run.ok = run.exit_code == exit::SUCCESS;
            if let Some(q) = &run.quarantined {
                run.error = Some(format!("snapshot {} quarantined: {q}", r.id.short()));
            } else if s.errors > 0 {
                run.error = Some(format!("{} entries could not be read", s.errors));
            }
        }
        Err(e) => {
            let msg = exit::message(e);
            eprintln!("larder: {name}: {msg}");
            log.push(msg.clone());
            run.error = Some(msg);
            run.exit_code = exit::code_for(e);
        }
    }
    if run.ok {
        if let Some(keep) = &sc.keep {
            match apply_keep(ctx, repo, name, host.as_deref(), &keep.policy()) {
                Ok(n) => run.forgotten = n,
                Err(e) => {
                    let msg = exit::message(&e);
                    eprintln!("larder: note: {name}: retention not applied this time: {msg}");
                    run.forget_skipped = Some(msg);
                }
            }
        }
    }
    run.duration = started.1.elapsed().as_secs_f64();

    let mut event = Event::begun(EventKind::Run, Some(name), host.as_deref(), started);
    event.ok = run.ok;
    event.snapshot = run.snapshot;
    event.error = run.error.clone();
    event.bytes_read = run.bytes_read;
    event.bytes_added = run.bytes_added;
    if let Err(e) = larder::event::record(repo, &event) {
        eprintln!("larder: warning: {name}: the run could not be recorded in the repository: {e}");
    }
    log.extend(run.warnings.iter().cloned());
    let outcome = larder::notify::Outcome {
        series: name.to_owned(),
        what: EventKind::Run,
        ok: run.ok,
        host: event.host.clone(),
        summary: match (&run.error, &run.snapshot) {
            (Some(e), _) => e.clone(),
            (None, Some(id)) => format!(
                "snapshot {} saved: {} read, {} added",
                id.short(),
                output::bytes(run.bytes_read),
                output::bytes(run.bytes_added)
            ),
            (None, None) => "no snapshot".into(),
        },
        snapshot: run.snapshot,
        duration: run.duration,
        bytes_read: run.bytes_read,
        bytes_added: run.bytes_added,
        log_tail: log.join("\n"),
    };
    for w in notifier.finish(&outcome) {
        eprintln!("larder: warning: {w}");
    }
    run
}

/// One snapshot of the series, under a shared lock.
fn take_snapshot(
    ctx: &Ctx,
    repo: &mut Repo,
    name: &str,
    sc: &SeriesConfig,
    host: Option<String>,
    stderr: &larder::backup::source::StderrTail,
    log: &mut Vec<String>,
) -> Result<larder::backup::SnapshotReport> {
    let lock = ctx.lock(repo, LockKind::Shared, "run")?;
    let opts = SnapshotOptions {
        name: name.to_owned(),
        host,
        tags: sc.tags.clone(),
        zstd_level: sc.compression,
        time: None,
        lock: Some(lock.check()),
        verify: sc.verify.map(|v| v.0),
        timeout: sc.timeout.map(|t| t.0),
        stall_timeout: sc.stall_timeout.map(|t| t.0),
        stderr_tail: Some(stderr.clone()),
    };
    let progress = TermProgress::start("read", ctx.progress());
    let report = match (&sc.command, &sc.paths) {
        (Some(cmd), _) => snapshot_command(repo, cmd, &opts, progress.as_ref()),
        (None, Some(paths)) => {
            let dir = DirOptions {
                paths: paths.clone(),
                exclude: sc.exclude.clone(),
                exclude_if_present: vec![],
                one_file_system: false,
                parent: None,
                force: false,
            };
            let mut note = |n: Note| {
                if let Note::Unreadable { path, error } = n {
                    let line = format!("cannot read {}: {error}", path.display());
                    eprintln!("larder: warning: {line}");
                    log.push(line);
                }
            };
            snapshot_dirs(repo, &dir, &opts, progress.as_ref(), &mut note)
        }
        (None, None) => Err(larder::Error::InvalidArgument(format!(
            "series `{name}` has neither command nor paths"
        ))),
    };
    progress.finish();
    drop(lock);
    Ok(report?)
}

/// Applies `policy` to the series' snapshots on `host` (the group a snapshot of this run
/// belongs to) under an exclusive lock; returns how many snapshots were removed. Another
/// host's backup holding a shared lock makes this fail (the next run applies it).
fn apply_keep(
    ctx: &Ctx,
    repo: &mut Repo,
    name: &str,
    host: Option<&str>,
    policy: &larder::retention::Policy,
) -> Result<usize> {
    let lock = ctx.lock(repo, LockKind::Exclusive, "run (forget)")?;
    repo.resync()?;
    let host = host.map_or_else(larder::snapshot::default_host, str::to_owned);
    let chosen: Vec<_> = repo
        .catalog()
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| s.name == name && s.host == host)
        .collect();
    let plan = larder::retention::plan(
        &chosen,
        policy,
        larder::retention::GroupBy::default(),
        &TimeZone::system(),
    )
    .map_err(|e| larder::Error::InvalidArgument(e.to_string()))?;
    if plan.groups.iter().any(|g| g.removes_all) {
        return Err(larder::Error::InvalidArgument(format!(
            "the policy ({policy}) would remove every snapshot of {name}; nothing removed"
        ))
        .into());
    }
    let remove: Vec<SnapshotId> = plan.remove().collect();
    forget::delete(repo, &lock, &remove)?;
    if !remove.is_empty() {
        repo.catalog_mut().remove_snapshots(&remove)?;
    }
    Ok(remove.len())
}

/// A prune that was due.
enum Pruned {
    /// Skipped: the repository is in use (why).
    Skipped(String),
    /// Done: one line, and prune's `--json` object.
    Ran(String, serde_json::Value),
}

/// Prunes when `prune_every` has passed since the last prune any host recorded. Returns
/// `None` when not due.
fn maybe_prune(ctx: &Ctx, repo: &mut Repo) -> Result<Option<Pruned>> {
    let PruneEvery::Every(every) = ctx.config().repository.prune_every else {
        return Ok(None);
    };
    let last = repo
        .catalog()
        .events()?
        .into_iter()
        .rev()
        .find(|(_, e)| e.kind == EventKind::Prune && e.ok)
        .map(|(_, e)| e.time);
    let now = jiff::Timestamp::now();
    let due = last.is_none_or(|t| {
        now.as_second().saturating_sub(t.as_second())
            >= i64::try_from(every.as_secs()).unwrap_or(i64::MAX)
    });
    if !due {
        return Ok(None);
    }
    let lock = match ctx.lock(repo, LockKind::Exclusive, "run (prune)") {
        Ok(l) => l,
        Err(e) if exit::code_for(&e) == exit::LOCKED => {
            let why = format!("skipped, the repository is in use: {}", exit::message(&e));
            eprintln!("larder: note: prune {why}; the next run tries again");
            return Ok(Some(Pruned::Skipped(why)));
        }
        Err(e) => return Err(e),
    };
    let args = prune::Args {
        max_unused: larder::prune::PruneOptions::default().max_unused,
        max_repack_size: None,
        dry_run: false,
    };
    let (plan, report) = prune::prune_quietly(repo, &args, lock, ctx)?;
    Ok(Some(Pruned::Ran(
        format!(
            "{} packs deleted, {} repacked, {} freed",
            plan.delete.len() + plan.unindexed.len(),
            plan.repack.len(),
            output::bytes(plan.bytes_freed())
        ),
        prune::json_value(&plan, report.as_ref()),
    )))
}

/// The outcome of a run that could not start (the repository did not open).
fn failed_outcome(name: &str, e: &anyhow::Error) -> larder::notify::Outcome {
    let msg = exit::message(e);
    larder::notify::Outcome {
        series: name.to_owned(),
        what: EventKind::Run,
        ok: false,
        host: larder::snapshot::default_host(),
        summary: msg.clone(),
        snapshot: None,
        duration: 0.0,
        bytes_read: 0,
        bytes_added: 0,
        log_tail: msg,
    }
}

fn notify(ctx: &Ctx, sc: &SeriesConfig, outcome: &larder::notify::Outcome) {
    let n = larder::notify::Notifier::new(&ctx.config().notify, sc.healthchecks.as_deref());
    for w in n.finish(outcome) {
        eprintln!("larder: warning: {w}");
    }
}
