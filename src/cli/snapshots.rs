//! `larder snapshots`: list snapshots.

use anyhow::Result;
use larder::format::snapshot::{ProducerStatus, Source};
use larder::snapshot::Selector;
use serde_json::json;

use super::{Ctx, output};

/// Filters.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only this series.
    #[arg(long, short = 'n')]
    name: Option<String>,
    /// Only this host.
    #[arg(long)]
    host: Option<String>,
}

/// Runs `snapshots`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo()?;
    let sel = Selector {
        id: None,
        name: a.name,
        host: a.host,
        at: None,
    };
    let snaps: Vec<_> = repo
        .catalog()
        .snapshots()?
        .into_iter()
        .filter(|(_, s)| sel.matches(s))
        .collect();
    if ctx.json() {
        let list: Vec<_> = snaps
            .iter()
            .map(|(id, s)| json!({"id": id, "snapshot": s}))
            .collect();
        return output::json(&serde_json::Value::Array(list));
    }
    outln!(
        "{:<8}  {:<19}  {:<12}  {:<16}  {:>10}  {:>10}  source",
        "id",
        "time",
        "host",
        "name",
        "size",
        "added"
    )?;
    for (id, s) in &snaps {
        let time = output::local_time(s.time);
        let source = match (&s.source, &s.producer_status) {
            (Source::Stdin, _) => "stdin (producer status unknown)".to_owned(),
            (Source::Command { argv }, ProducerStatus::Exited { code }) => {
                format!("`{}` exited {code}", argv.join(" "))
            }
            (Source::Command { argv }, ProducerStatus::Killed { signal }) => {
                format!("`{}` killed by signal {signal}", argv.join(" "))
            }
            (Source::Command { argv }, ProducerStatus::Unknown) => format!("`{}`", argv.join(" ")),
            (Source::Paths { paths }, _) if s.errors > 0 => {
                format!("{} ({} unreadable)", paths.join(" "), s.errors)
            }
            (Source::Paths { paths }, _) => paths.join(" "),
        };
        let source = if s.damaged.is_some() {
            format!("DAMAGED (repair snapshots): {source}")
        } else if let Some(q) = &s.quarantined {
            format!("QUARANTINED ({}: {}): {source}", q.check, q.reason)
        } else {
            source
        };
        outln!(
            "{:<8}  {time:<19}  {:<12}  {:<16}  {:>10}  {:>10}  {source}",
            id.short(),
            s.host,
            s.name,
            output::bytes(s.bytes_read),
            output::bytes(s.bytes_added),
        )?;
    }
    outln!("{} snapshots", snaps.len())?;
    Ok(())
}
