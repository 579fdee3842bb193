//! `larder status`: per series, the last good snapshot, its age, size, added bytes, dedup
//! ratio, the last run and drill; exit 15 when a series is older than its `max_age`. Takes
//! no lock and reads only what opening the repository syncs.

use std::collections::BTreeSet;

use anyhow::Result;
use larder::status::{RepoStatus, SeriesStatus, StatusOptions};
use serde_json::json;

use super::{Ctx, exit, output};

/// Which series and how old is too old.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only these series (default: every series with a snapshot, an event or a
    /// configuration entry).
    #[arg(value_name = "SERIES")]
    series: Vec<String>,
    /// A series whose newest good snapshot is older than this is stale (exit 15); overrides
    /// every `max_age` of the configuration.
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration)]
    max_age: Option<std::time::Duration>,
}

/// The options `status`, `run` and `drill` compute health with: limits and expected series
/// from the configuration.
pub fn options(ctx: &Ctx, max_age: Option<std::time::Duration>) -> StatusOptions {
    let cfg = ctx.config();
    StatusOptions {
        max_age: if max_age.is_some() {
            Default::default()
        } else {
            cfg.series
                .iter()
                .filter_map(|(n, s)| s.max_age.map(|a| (n.clone(), a.0)))
                .collect()
        },
        default_max_age: max_age,
        expected: cfg.series.keys().cloned().collect(),
        only: BTreeSet::new(),
        now: None,
    }
}

/// Runs `status`; returns 0, or 15 when a series is stale.
pub fn run(a: Args, ctx: &Ctx) -> Result<u8> {
    let repo = ctx.open_repo()?;
    let mut opts = options(ctx, a.max_age);
    opts.only = a.series.iter().cloned().collect();
    let st = larder::status::status(repo.catalog(), &opts)?;
    for name in &a.series {
        if st.get(name).is_none() {
            return Err(larder::Error::InvalidArgument(format!(
                "no series `{name}`: no snapshot, run or configuration names it"
            ))
            .into());
        }
    }
    ctx.write_metrics(&st);
    let stale: Vec<&str> = st.stale().map(|s| s.series.as_str()).collect();
    if ctx.json() {
        output::json(&json!({
            "status": st,
            "stale": stale,
        }))?;
    } else {
        show(&st)?;
    }
    if stale.is_empty() {
        return Ok(exit::SUCCESS);
    }
    eprintln!(
        "larder: stale: {} (no good snapshot within max_age)",
        stale.join(", ")
    );
    Ok(exit::STALE)
}

fn show(st: &RepoStatus) -> Result<()> {
    outln!(
        "{:<16}  {:<19}  {:>9}  {:>10}  {:>10}  {:>7}  {:<14}  state",
        "series",
        "last good",
        "age",
        "size",
        "added",
        "dedup",
        "last drill"
    )?;
    for s in &st.series {
        let g = s.last_good.as_ref();
        outln!(
            "{:<16}  {:<19}  {:>9}  {:>10}  {:>10}  {:>7}  {:<14}  {}",
            s.series,
            g.map_or("never".into(), |g| output::local_time(g.time)),
            s.age_seconds.map_or("-".into(), age),
            g.map_or("-".into(), |g| output::bytes(g.size)),
            g.map_or("-".into(), |g| output::bytes(g.bytes_added)),
            g.and_then(|g| g.dedup_ratio)
                .map_or("-".into(), |r| format!("{r:.1}x")),
            s.last_drill.as_ref().map_or("never".into(), |d| format!(
                "{} {} ago",
                if d.ok { "pass" } else { "FAIL" },
                age(larder::status::age_secs(st.now, d.time))
            )),
            state(s)
        )?;
        for line in notes(s) {
            outln!("  {line}")?;
        }
    }
    outln!(
        "repository: {} snapshots, {} packs, {}; last prune {}",
        st.snapshots,
        st.packs,
        output::bytes(st.stored_bytes),
        st.last_prune.as_ref().map_or("never".into(), |p| format!(
            "{} ago",
            age(larder::status::age_secs(st.now, p.time))
        ))
    )?;
    Ok(())
}

/// One word for the series' state.
fn state(s: &SeriesStatus) -> String {
    let mut words = Vec::new();
    if s.stale {
        words.push("STALE");
    }
    if s.last_bad.as_ref().is_some_and(|b| b.quarantine.is_some()) {
        words.push("QUARANTINED");
    } else if s.last_bad.is_some() {
        words.push("DAMAGED");
    }
    if s.last_run.as_ref().is_some_and(|r| !r.ok) {
        words.push("RUN-FAILED");
    }
    if s.last_drill.as_ref().is_some_and(|d| !d.ok) {
        words.push("DRILL-FAILED");
    }
    if words.is_empty() {
        "ok".into()
    } else {
        words.join(",")
    }
}

/// The lines under a series: why it is failing, and its warnings.
fn notes(s: &SeriesStatus) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(b) = &s.last_bad {
        out.push(format!(
            "newest snapshot {} is {}",
            b.id.short(),
            b.quarantine
                .as_ref()
                .map_or("marked damaged".into(), |q| format!("quarantined: {q}"))
        ));
    }
    // A run that failed by quarantining the newest snapshot is said once, above.
    let said = |r: &&larder::status::EventSummary| {
        s.last_bad
            .as_ref()
            .is_some_and(|b| r.snapshot == Some(b.id))
    };
    if let Some(r) = s.last_run.as_ref().filter(|r| !r.ok && !said(r)) {
        out.push(format!(
            "last run on {} failed: {}",
            r.host,
            r.error.as_deref().unwrap_or("unknown error")
        ));
    }
    if let Some(d) = s.last_drill.as_ref().filter(|d| !d.ok) {
        out.push(format!(
            "last drill failed: {}",
            d.error.as_deref().unwrap_or("unknown error")
        ));
    }
    if let Some(g) = &s.last_good {
        out.extend(g.warnings.iter().map(|w| format!("warning: {w}")));
    }
    if s.trend.len() > 1 {
        let sizes: Vec<String> = s.trend.iter().map(|b| output::bytes(*b)).collect();
        out.push(format!("sizes: {}", sizes.join(" → ")));
    }
    out
}

/// `3d 4h`, `7h 3m`, `12m`, `40s`.
fn age(secs: f64) -> String {
    let s = std::time::Duration::try_from_secs_f64(secs.max(0.0)).map_or(0, |d| d.as_secs());
    match s {
        s if s >= 86_400 => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
