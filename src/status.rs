//! Per-series health, from the catalog alone (no request beyond the open's sync): the last
//! good snapshot and its age, quarantined snapshots, the last run and drill recorded as
//! events (format-spec/event.md, so another host's jobs count), and whether the series is
//! stale. `larder status` renders it; the metrics textfile is rendered from it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::format::event::{Event, EventKind};
use crate::format::snapshot::Snapshot;
use crate::id::{EventId, SnapshotId};

/// How many good snapshots the size trend shows.
pub const TREND_LEN: usize = 7;

/// A snapshot as `status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SnapshotSummary {
    /// Its id.
    pub id: SnapshotId,
    /// When it started.
    pub time: jiff::Timestamp,
    /// The host it is grouped under.
    pub host: String,
    /// Bytes read from the source (the stream's size).
    pub size: u64,
    /// Stored bytes it added.
    pub bytes_added: u64,
    /// Bytes read / plaintext bytes added; `None` when it added nothing.
    pub dedup_ratio: Option<f64>,
    /// Seconds the snapshot took.
    pub duration: f64,
    /// Its warnings (format-spec/snapshot.md `warnings`).
    pub warnings: Vec<String>,
    /// Why it is quarantined, if it is.
    pub quarantine: Option<String>,
}

impl SnapshotSummary {
    fn of(id: SnapshotId, s: &Snapshot) -> Self {
        SnapshotSummary {
            id,
            time: s.time,
            host: s.host.clone(),
            size: s.bytes_read,
            bytes_added: s.bytes_added,
            dedup_ratio: (s.raw_bytes_added != 0)
                .then(|| s.bytes_read as f64 / s.raw_bytes_added as f64),
            duration: s.duration,
            warnings: s.warnings.clone(),
            quarantine: s
                .quarantined
                .as_ref()
                .map(|q| format!("{}: {}", q.check, q.reason)),
        }
    }
}

/// A run, drill or prune as `status` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventSummary {
    /// The event object.
    pub id: EventId,
    /// When it started.
    pub time: jiff::Timestamp,
    /// The host that did it.
    pub host: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// Seconds it took.
    pub duration: f64,
    /// The snapshot it wrote or restored.
    pub snapshot: Option<SnapshotId>,
    /// Why it failed.
    pub error: Option<String>,
    /// Bytes read (run) or restored (drill).
    pub bytes_read: u64,
    /// Stored bytes added (run).
    pub bytes_added: u64,
}

impl EventSummary {
    fn of(id: EventId, e: &Event) -> Self {
        EventSummary {
            id,
            time: e.time,
            host: e.host.clone(),
            ok: e.ok,
            duration: e.duration,
            snapshot: e.snapshot,
            error: e.error.clone(),
            bytes_read: e.bytes_read,
            bytes_added: e.bytes_added,
        }
    }
}

/// One series' health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesStatus {
    /// The series name.
    pub series: String,
    /// Hosts its snapshots are grouped under.
    pub hosts: Vec<String>,
    /// Good snapshots (neither quarantined nor damaged).
    pub good_snapshots: u64,
    /// Quarantined snapshots.
    pub quarantined_snapshots: u64,
    /// The newest good snapshot.
    pub last_good: Option<SnapshotSummary>,
    /// The newest snapshot, when it is not good (quarantined or damaged): the series is
    /// failing even if it is not stale yet.
    pub last_bad: Option<SnapshotSummary>,
    /// Seconds since the newest good snapshot started; `None` without one.
    pub age_seconds: Option<f64>,
    /// The age limit (`max_age`, `--max-age`), seconds.
    pub max_age_seconds: Option<f64>,
    /// Older than the limit, or no good snapshot while a limit is set.
    pub stale: bool,
    /// The newest `larder run` of the series.
    pub last_run: Option<EventSummary>,
    /// The newest drill of the series.
    pub last_drill: Option<EventSummary>,
    /// Sizes (bytes read) of the newest good snapshots, oldest first (at most
    /// [`TREND_LEN`]).
    pub trend: Vec<u64>,
}

impl SeriesStatus {
    /// Whether anything about the series should page someone: stale, the newest snapshot
    /// or run failed, or the newest drill failed.
    pub fn failing(&self) -> bool {
        self.stale
            || self.last_bad.is_some()
            || self.last_run.as_ref().is_some_and(|r| !r.ok)
            || self.last_drill.as_ref().is_some_and(|d| !d.ok)
    }
}

/// The whole repository's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RepoStatus {
    /// When it was computed.
    pub now: jiff::Timestamp,
    /// Every series with a snapshot, an event or a configured limit, by name.
    pub series: Vec<SeriesStatus>,
    /// Snapshots in the repository.
    pub snapshots: u64,
    /// Packs in the index.
    pub packs: u64,
    /// Their total size: what the repository stores.
    pub stored_bytes: u64,
    /// The newest completed prune.
    pub last_prune: Option<EventSummary>,
}

impl RepoStatus {
    /// Series that are stale.
    pub fn stale(&self) -> impl Iterator<Item = &SeriesStatus> {
        self.series.iter().filter(|s| s.stale)
    }

    /// The series called `name`.
    pub fn get(&self, name: &str) -> Option<&SeriesStatus> {
        self.series.iter().find(|s| s.series == name)
    }
}

/// What to compute.
#[derive(Debug, Clone, Default)]
pub struct StatusOptions {
    /// Age limits by series (from the configuration).
    pub max_age: BTreeMap<String, Duration>,
    /// A limit for every series without its own (`--max-age`).
    pub default_max_age: Option<Duration>,
    /// Series to report even without snapshots (configured ones): a job that never ran is
    /// stale, not absent.
    pub expected: BTreeSet<String>,
    /// Only these series (empty: all).
    pub only: BTreeSet<String>,
    /// Compute as of this time (default now).
    pub now: Option<jiff::Timestamp>,
}

/// Computes every series' health from the catalog (synced when the repository was opened).
pub fn status(cat: &Catalog, opts: &StatusOptions) -> Result<RepoStatus> {
    let now = opts.now.unwrap_or_else(jiff::Timestamp::now);
    let snaps = cat.snapshots()?; // oldest first
    let events = cat.events()?; // oldest first
    let (packs, stored_bytes) = cat.pack_totals()?;

    let mut names: BTreeSet<String> = opts.expected.clone();
    names.extend(snaps.iter().map(|(_, s)| s.name.clone()));
    names.extend(events.iter().filter_map(|(_, e)| e.series.clone()));
    names.extend(opts.max_age.keys().cloned());
    if !opts.only.is_empty() {
        names.retain(|n| opts.only.contains(n));
    }

    let mut series = Vec::new();
    for name in names {
        let mine: Vec<&(SnapshotId, Snapshot)> =
            snaps.iter().filter(|(_, s)| s.name == name).collect();
        let good: Vec<&(SnapshotId, Snapshot)> =
            mine.iter().copied().filter(|(_, s)| s.is_good()).collect();
        let last_good = good.last().map(|(id, s)| SnapshotSummary::of(*id, s));
        let last_bad = mine
            .last()
            .filter(|(_, s)| !s.is_good())
            .map(|(id, s)| SnapshotSummary::of(*id, s));
        let age = last_good.as_ref().map(|g| age_secs(now, g.time));
        let limit = opts
            .max_age
            .get(&name)
            .copied()
            .or(opts.default_max_age)
            .map(|d| d.as_secs_f64());
        let stale = match (limit, age) {
            (Some(l), Some(a)) => a > l,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let newest = |kind: EventKind| {
            events
                .iter()
                .rev()
                .find(|(_, e)| e.kind == kind && e.series.as_deref() == Some(&name))
                .map(|(id, e)| EventSummary::of(*id, e))
        };
        let hosts: BTreeSet<String> = mine.iter().map(|(_, s)| s.host.clone()).collect();
        let from = good.len().saturating_sub(TREND_LEN);
        series.push(SeriesStatus {
            hosts: hosts.into_iter().collect(),
            good_snapshots: good.len() as u64,
            quarantined_snapshots: mine.iter().filter(|(_, s)| s.quarantined.is_some()).count()
                as u64,
            trend: good[from..].iter().map(|(_, s)| s.bytes_read).collect(),
            last_good,
            last_bad,
            age_seconds: age,
            max_age_seconds: limit,
            stale,
            last_run: newest(EventKind::Run),
            last_drill: newest(EventKind::Drill),
            series: name,
        });
    }
    let last_prune = events
        .iter()
        .rev()
        .find(|(_, e)| e.kind == EventKind::Prune && e.ok)
        .map(|(id, e)| EventSummary::of(*id, e));
    Ok(RepoStatus {
        now,
        series,
        snapshots: snaps.len() as u64,
        packs,
        stored_bytes,
        last_prune,
    })
}

/// Seconds from `then` to `now` (negative clock skew counts as 0).
pub fn age_secs(now: jiff::Timestamp, then: jiff::Timestamp) -> f64 {
    let d = now.as_nanosecond().saturating_sub(then.as_nanosecond());
    (d.max(0) as f64) / 1e9
}
