//! `larder snapshot`: store stdin or a producer command's output.

use anyhow::Result;
use larder::backup::SnapshotOptions;
use larder::backup::source::{snapshot_command, snapshot_stdin};
use serde_json::json;

use super::Ctx;
use super::output::{self, TermProgress};

/// What to snapshot and how to label it.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stdin", "command"])))]
pub struct Args {
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
    /// The producer command and its arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// Runs `snapshot`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    if a.name.trim().is_empty() {
        return Err(larder::Error::InvalidArgument("--name must not be empty".into()).into());
    }
    let opts = SnapshotOptions {
        name: a.name,
        host: a.host,
        tags: a.tags,
        zstd_level: a.compression,
        time: a
            .time
            .as_deref()
            .map(larder::snapshot::parse_time)
            .transpose()?,
    };
    let mut repo = ctx.open_repo()?;
    let progress = TermProgress::start("read", ctx.progress());
    let report = if a.stdin {
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
        }));
    }
    outln!("snapshot {} saved ({}, {})", r.id.short(), s.name, s.host)?;
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
    Ok(())
}

/// `a / b`, or `None` (JSON null, "∞" in text) when nothing was added.
fn ratio(a: u64, b: u64) -> Option<f64> {
    (b != 0).then(|| a as f64 / b as f64)
}

fn show(r: Option<f64>) -> String {
    r.map_or("∞".into(), |r| format!("{r:.2}x"))
}
