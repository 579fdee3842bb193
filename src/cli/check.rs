//! `larder check`: verify the repository's structure and, with `--read-data` or
//! `--read-data-subset`, its data. The report goes to stdout (text, or JSON with `--json`);
//! any damage makes the run fail with exit 14 after the report is printed.

use anyhow::Result;
use larder::check::{self, CheckOptions, CheckReport, Problem, ReadData};
use larder::format::lock::LockKind;

use super::output::{self, TermProgress};
use super::{Ctx, parse_size};

/// How much data to read besides the structure.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Also download every pack, check its hash, and open and re-hash every blob in it.
    #[arg(long, conflicts_with = "read_data_subset")]
    read_data: bool,
    /// Like --read-data for some packs only: `N%` or a size such as `2G` (packs chosen at
    /// random on every run), or `n/m` (the n-th of m fixed subsets: running 1/m to m/m
    /// reads every pack exactly once).
    #[arg(long, value_name = "N%|n/m|SIZE", value_parser = parse_subset)]
    read_data_subset: Option<ReadData>,
}

/// Parses `--read-data-subset`: `10%`, `2.5%`, `1/7`, `500M`, `2G`.
fn parse_subset(s: &str) -> Result<ReadData, String> {
    let t = s.trim();
    if let Some(p) = t.strip_suffix('%') {
        let p: f64 = p
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a percentage"))?;
        if !(p > 0.0 && p <= 100.0) {
            return Err(format!(
                "`{s}`: the percentage must be above 0 and at most 100"
            ));
        }
        return Ok(ReadData::Percent(p));
    }
    if let Some((n, m)) = t.split_once('/') {
        let parse = |x: &str| x.trim().parse::<u32>().ok();
        return match (parse(n), parse(m)) {
            (Some(n), Some(m)) if n >= 1 && n <= m => Ok(ReadData::Fraction { n, m }),
            _ => Err(format!("`{s}`: use n/m with 1 <= n <= m, e.g. 1/7")),
        };
    }
    match parse_size(t)? {
        0 => Err(format!("`{s}`: the size must be above 0")),
        b => Ok(ReadData::Bytes(b)),
    }
}

/// Runs `check`.
pub fn run(a: Args, ctx: &Ctx) -> Result<()> {
    let repo = ctx.open_repo_unwarned()?;
    let _lock = ctx.lock(&repo, LockKind::Shared, "check")?;
    let read_data = match (a.read_data, a.read_data_subset) {
        (true, _) => ReadData::All,
        (false, Some(r)) => r,
        (false, None) => ReadData::None,
    };
    // Only reading data takes long enough to want a progress line.
    let progress = TermProgress::start("verified", ctx.progress() && read_data != ReadData::None);
    let report = check::run(&repo, &CheckOptions { read_data }, progress.as_ref())?;
    progress.finish();
    if ctx.json() {
        output::json(&serde_json::to_value(&report)?)?;
    } else {
        render(&report, read_data)?;
    }
    match report.problems.first() {
        None => Ok(()),
        Some(first) => Err(larder::Error::CheckFailed {
            problems: report.problems.len(),
            first: describe(first),
        }
        .into()),
    }
}

/// One problem without its snapshots: `OBJECT: blob ID: MESSAGE`.
fn describe(p: &Problem) -> String {
    match p.blob {
        Some(b) if p.object != check::Object::Blob(b) => {
            format!("{}: blob {b}: {}", p.object, p.message)
        }
        _ => format!("{}: {}", p.object, p.message),
    }
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn render(r: &CheckReport, read_data: ReadData) -> Result<()> {
    outln!(
        "checked {}, {} ({}), {} ({}, {}, {})",
        plural(r.index_segments, "index segment", "index segments"),
        plural(r.packs, "pack", "packs"),
        output::bytes(r.pack_bytes),
        plural(r.snapshots, "snapshot", "snapshots"),
        plural(r.trees, "tree", "trees"),
        plural(r.content_lists, "content list", "content lists"),
        plural(r.chunk_refs, "chunk reference", "chunk references"),
    )?;
    if read_data != ReadData::None {
        outln!(
            "read {} of {} ({}): {} opened and re-hashed",
            r.packs_read,
            plural(r.packs, "pack", "packs"),
            output::bytes(r.bytes_read),
            plural(r.blobs_read, "blob", "blobs"),
        )?;
    }
    for w in &r.warnings {
        outln!(
            "warning: {} ({}): {}",
            w.object,
            output::bytes(w.size),
            w.message
        )?;
    }
    for p in &r.problems {
        let n = u64::try_from(p.snapshots.len()).unwrap_or(u64::MAX);
        let affects = if n == 0 {
            "affects no snapshot".to_owned()
        } else {
            let ids: Vec<String> = p.snapshots.iter().map(|s| s.short()).collect();
            format!(
                "affects {}: {}",
                plural(n, "snapshot", "snapshots"),
                ids.join(" ")
            )
        };
        outln!("damage: {}; {affects}", describe(p))?;
    }
    let took = format!("{} requests, {:.1} s", r.requests, r.duration);
    if r.problems.is_empty() {
        outln!("no damage found ({took})")?;
    } else {
        let n = u64::try_from(r.problems.len()).unwrap_or(u64::MAX);
        outln!("{} found ({took})", plural(n, "problem", "problems"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsets_parse() {
        assert_eq!(parse_subset("10%"), Ok(ReadData::Percent(10.0)));
        assert_eq!(parse_subset("2.5%"), Ok(ReadData::Percent(2.5)));
        assert_eq!(parse_subset("1/7"), Ok(ReadData::Fraction { n: 1, m: 7 }));
        assert_eq!(parse_subset("500M"), Ok(ReadData::Bytes(500 << 20)));
        assert_eq!(parse_subset("2G"), Ok(ReadData::Bytes(2 << 30)));
        for bad in [
            "0%", "101%", "x%", "0/3", "4/3", "1/0", "a/b", "0", "1X", "",
        ] {
            assert!(parse_subset(bad).is_err(), "{bad}");
        }
    }
}
