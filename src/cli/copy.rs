//! `larder copy`: snapshots from `--from` into `--to` (default `--repo`) that the
//! destination lacks, with the destination's keys; also the source-repository options that
//! `init --copy-chunker-params` shares.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use larder::backend::counting::RequestCounts;
use larder::copy::{self, CopyOptions, CopySession, Method};
use larder::crypto::key_slot::Password;
use larder::format::lock::LockKind;
use larder::id::SnapshotId;
use larder::repo::Repo;
use serde_json::json;

use super::output::{self, TermProgress};
use super::{Ctx, PasswordSource, exit};

/// The repository to read from.
#[derive(Debug, clap::Args)]
pub struct FromArgs {
    /// The source repository: a directory, s3://bucket/prefix or az://container/prefix.
    #[arg(long, env = "LARDER_FROM_REPOSITORY", value_name = "PATH|URL")]
    pub from: Option<String>,
    /// Read the source's password from this file (default: the same password as the
    /// destination; LARDER_FROM_PASSWORD holds it directly).
    #[arg(long, env = "LARDER_FROM_PASSWORD_FILE", value_name = "FILE")]
    from_password_file: Option<PathBuf>,
    /// Run this shell command for the source's password.
    #[arg(long, env = "LARDER_FROM_PASSWORD_COMMAND", value_name = "CMD")]
    from_password_command: Option<String>,
    /// S3-compatible endpoint of the source (default: --s3-endpoint).
    #[arg(long, env = "LARDER_FROM_S3_ENDPOINT", value_name = "URL")]
    from_s3_endpoint: Option<String>,
}

impl FromArgs {
    /// Opens the source repository, counting its requests into `counts` too. Its password
    /// comes from the `--from-password-*` options, LARDER_FROM_PASSWORD, or else is
    /// `fallback` (the destination's).
    pub fn open(
        &self,
        ctx: &Ctx,
        fallback: &Password,
        counts: Option<Arc<RequestCounts>>,
    ) -> Result<Repo> {
        let loc = self
            .from
            .as_deref()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                larder::Error::InvalidArgument(
                    "no source repository given: use --from or set LARDER_FROM_REPOSITORY".into(),
                )
            })?;
        let backend = ctx.backend_at(loc, self.from_s3_endpoint.as_deref(), counts)?;
        let src = PasswordSource {
            file: self.from_password_file.as_deref(),
            command: self.from_password_command.as_deref(),
            env: "LARDER_FROM_PASSWORD",
            prompt: "enter the source repository's password: ",
        };
        let password = src.read()?.unwrap_or_else(|| fallback.clone());
        ctx.open_repo_with(backend, &password)
    }
}

/// What to copy, and where.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    from: FromArgs,
    /// The destination repository (default: --repo / LARDER_REPOSITORY); its password is the
    /// usual one (--password-file, --password-command, LARDER_PASSWORD).
    #[arg(long, value_name = "PATH|URL")]
    to: Option<String>,
    /// Only snapshots of this series name (repeatable).
    #[arg(long = "name", short = 'n', value_name = "NAME")]
    names: Vec<String>,
    /// Only snapshots of this host.
    #[arg(long)]
    host: Option<String>,
    /// Snapshots to copy, by id or unique id prefix (default: every one that matches).
    #[arg(value_name = "SNAPSHOT")]
    snapshots: Vec<String>,
    /// Cut every stream and file again with the destination's chunker, even where blobs
    /// could move by id (the repositories share their chunker parameters).
    #[arg(long)]
    rechunk: bool,
    /// zstd level for the blobs stored (-7 to 22; default: the destination's).
    #[arg(long, allow_negative_numbers = true, value_parser = clap::value_parser!(i32).range(-7..=22))]
    compression: Option<i32>,
    /// List what would be copied; copy nothing.
    #[arg(long)]
    dry_run: bool,
}

/// The source snapshots `a` selects.
fn selected(a: &Args, src: &Repo) -> Result<Vec<(SnapshotId, larder::format::snapshot::Snapshot)>> {
    let all = src.catalog().snapshots()?;
    let matches = |s: &larder::format::snapshot::Snapshot| {
        (a.names.is_empty() || a.names.contains(&s.name))
            && a.host.as_ref().is_none_or(|h| &s.host == h)
    };
    if a.snapshots.is_empty() {
        return Ok(all.into_iter().filter(|(_, s)| matches(s)).collect());
    }
    let mut out = Vec::new();
    for want in &a.snapshots {
        let sel = larder::snapshot::Selector {
            id: Some(want.clone()),
            ..Default::default()
        };
        let (id, s) = larder::snapshot::select(all.clone(), &sel)?;
        if matches(&s) && !out.iter().any(|(o, _)| *o == id) {
            out.push((id, s));
        }
    }
    Ok(out)
}

/// Runs `copy`; returns 0, or 3 when damaged source snapshots were left out.
pub fn run(a: Args, ctx: &Ctx) -> Result<u8> {
    let to = match &a.to {
        Some(t) if !t.is_empty() => t.clone(),
        _ => ctx.location()?.to_owned(),
    };
    let (from_counts, to_counts) = (Arc::new(RequestCounts::default()), Arc::default());
    let password = ctx.password(false)?;
    let src = a.from.open(ctx, &password, Some(from_counts.clone()))?;
    let dst_backend = ctx.backend_at(&to, None, Some(Arc::clone(&to_counts)))?;
    let mut dst = ctx.open_repo_with(dst_backend, &password)?;
    drop(password);
    if src.config().repo_id == dst.config().repo_id {
        return Err(larder::Error::InvalidArgument(format!(
            "--from {} and --to {to} are the same repository",
            src.backend().location()
        ))
        .into());
    }
    let method = if a.rechunk {
        Method::Rechunk
    } else {
        Method::between(&src, &dst)
    };
    let _src_lock = ctx.lock(&src, LockKind::Shared, "copy")?;
    let dst_lock = ctx.lock(&dst, LockKind::Shared, "copy")?;
    let plan = copy::plan(selected(&a, &src)?, &dst.catalog().snapshots()?);
    for id in &plan.damaged {
        eprintln!(
            "larder: warning: snapshot {} is marked damaged in the source; not copied",
            id.short()
        );
    }
    let opts = CopyOptions {
        method,
        zstd_level: a.compression,
        lock: Some(dst_lock.check()),
    };
    let mut copied = Vec::new();
    if !a.dry_run {
        let progress = TermProgress::start("copied", ctx.progress());
        let mut session = CopySession::default();
        for (id, s) in &plan.copy {
            let c = copy::copy_snapshot(&src, &mut dst, (id, s), &mut session, &opts, &*progress);
            let c = match c {
                Ok(c) => c,
                Err(e) => {
                    progress.finish();
                    return Err(e.into());
                }
            };
            if !ctx.json() {
                progress.finish();
                let w = &c.report.write;
                outln!(
                    "copied {} -> {} ({}, {}, {}): {} new chunks, {} added",
                    c.source.short(),
                    c.report.id.short(),
                    s.name,
                    s.host,
                    s.time,
                    c.report.snapshot.new_chunks,
                    output::bytes(w.stored_bytes)
                )?;
            }
            copied.push(c);
        }
        progress.finish();
    }
    let code = if plan.damaged.is_empty() {
        exit::SUCCESS
    } else {
        exit::INCOMPLETE
    };
    let added: u64 = copied.iter().map(|c| c.report.write.stored_bytes).sum();
    if ctx.json() {
        output::json(&json!({
            "from": src.backend().location(),
            "to": dst.backend().location(),
            "method": method,
            "dry_run": a.dry_run,
            "copied": copied.iter().map(|c| json!({
                "source": c.source,
                "id": c.report.id,
                "name": c.report.snapshot.name,
                "host": c.report.snapshot.host,
                "time": c.report.snapshot.time,
                "bytes_added": c.report.write.stored_bytes,
                "blobs_added": c.report.write.blobs,
                "new_chunks": c.report.snapshot.new_chunks,
                "duration": c.report.snapshot.duration,
            })).collect::<Vec<_>>(),
            "would_copy": if a.dry_run {
                plan.copy.iter().map(|(id, _)| *id).collect::<Vec<_>>()
            } else {
                Vec::new()
            },
            "present": plan.present.iter().map(|(s, d)| json!({"source": s, "id": d})).collect::<Vec<_>>(),
            "damaged": plan.damaged,
            "bytes_added": added,
            "from_requests": from_counts.snapshot(),
            "to_requests": to_counts.snapshot(),
        }))?;
        return Ok(code);
    }
    if a.dry_run {
        for (id, s) in &plan.copy {
            outln!(
                "would copy {} ({}, {}, {})",
                id.short(),
                s.name,
                s.host,
                s.time
            )?;
        }
    }
    outln!(
        "{} {} snapshot{}, {} already in {}, {} added (method: {})",
        if a.dry_run { "would copy" } else { "copied" },
        plan.copy.len(),
        if plan.copy.len() == 1 { "" } else { "s" },
        plan.present.len(),
        dst.backend().location(),
        output::bytes(added),
        match method {
            Method::Blobs => "blobs by id",
            Method::Rechunk => "re-chunked",
        }
    )?;
    let (f, t) = (from_counts.snapshot(), to_counts.snapshot());
    outln!(
        "  source: {} GET ({}), {} LIST; destination: {} PUT ({}), {} GET, {} LIST",
        f.get,
        output::bytes(f.bytes_down),
        f.list,
        t.put,
        output::bytes(t.bytes_up),
        t.get,
        t.list
    )?;
    Ok(code)
}
