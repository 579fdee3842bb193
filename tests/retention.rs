//! `larder::retention::plan` against the real `restic forget` (0.14, whose policy it copies):
//! the same snapshot times go into a restic repository and into `plan`, and for each policy
//! the kept snapshots, their reasons and the removed snapshots must be the same.
//!
//! Two repositories: one in UTC (~130 snapshots over 2¼ years: sparse, daily with gaps and
//! doubles, hourly at the end, ISO week-year boundaries, tags), one in Europe/Berlin around both
//! 2025 DST changes (two hosts, so each has its own newest snapshot for `--keep-within`).
//! Every snapshot costs restic a process and a scrypt key derivation (~0.8 s alone, ~0.2 s
//! each when run in parallel on 2 cores), so the backups run in parallel and the data set is
//! sized to keep the test near half a minute (~200 snapshots took ~55 s).
//!
//! restic missing: the test says so on stderr and passes, except under `CI`, where
//! `.ci/install-deps.sh` installs it and a missing restic is a failure.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use jiff::{Timestamp, civil, tz::TimeZone};
use larder::format::snapshot::{ProducerStatus, Root, Snapshot, Source};
use larder::id::{BlobId, SnapshotId};
use larder::retention::{GroupBy, Policy, plan};

const PASSWORD: &str = "retention-test";

/// Writes past the test harness's capture, so that a skip or a timing is seen without
/// `--nocapture`.
fn note(msg: &str) {
    let _ = writeln!(std::io::stderr(), "tests/retention.rs: {msg}");
}

/// One snapshot to make: local time `local` in zone `tz` (restic's `--time` is local time,
/// so a time in a DST fold is made in a fixed-offset zone).
struct Spec {
    host: &'static str,
    tz: &'static str,
    local: String,
    tags: Vec<&'static str>,
}

impl Spec {
    fn time(&self) -> Timestamp {
        let dt: civil::DateTime = self.local.replacen(' ', "T", 1).parse().unwrap();
        dt.to_zoned(TimeZone::get(self.tz).unwrap())
            .unwrap()
            .timestamp()
    }
}

fn spec(host: &'static str, tz: &'static str, local: &str, tags: &[&'static str]) -> Spec {
    Spec {
        host,
        tz,
        local: local.to_owned(),
        tags: tags.to_vec(),
    }
}

/// ~130 snapshots in UTC from 2023-12 to 2026-03-31 10:00.
fn utc_specs() -> Vec<Spec> {
    let mut out = Vec::new();
    let mut add = |dt: civil::DateTime, i: usize| {
        let tags: &[&str] = match i {
            _ if i % 13 == 0 => &["db", "weekly"],
            _ if i % 8 == 0 => &["release"],
            _ => &[],
        };
        out.push(spec(
            "h",
            "UTC",
            &dt.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            tags,
        ));
    };
    let day = |s: &str| s.parse::<civil::Date>().unwrap();
    let span = |d: i64| jiff::Span::new().days(d);
    // Sparse: every 10 to 16 days, at varying times of day.
    let mut d = day("2023-12-20");
    let mut i = 0;
    while d < day("2025-12-20") {
        let (h, m) = (i8::try_from(i * 7 % 24), i8::try_from(i * 13 % 60));
        add(d.at(h.unwrap(), m.unwrap(), 0, 0), i);
        d = d
            .checked_add(span(10 + i64::try_from(i % 7).unwrap()))
            .unwrap();
        i += 1;
    }
    // Both sides of two ISO week-year boundaries: 2024-12-30 and 2025-12-29 are Mondays of
    // week 1 of the next ISO year.
    for s in [
        "2024-12-28",
        "2024-12-29",
        "2024-12-30",
        "2025-01-01",
        "2025-01-05",
    ] {
        add(day(s).at(21, 5, 0, 0), i);
        i += 1;
    }
    for k in 0..13 {
        add(
            day("2025-12-24")
                .checked_add(span(k))
                .unwrap()
                .at(3, 30, 0, 0),
            i,
        );
        i += 1;
    }
    // Daily with gaps (every fourth day missing) and some days with two snapshots.
    for k in 0..43 {
        let d = day("2026-02-15").checked_add(span(k)).unwrap();
        if k % 4 == 3 {
            continue;
        }
        add(d.at(2, 0, 0, 0), i);
        i += 1;
        if k % 9 == 0 {
            add(d.at(23, 30, 0, 0), i);
            i += 1;
        }
    }
    // Hourly at the end; the newest is on the 31st, so `--keep-within 1m` lands on Go's
    // normalized "February 31" (March 3).
    for h in 20..24 {
        add(day("2026-03-30").at(h, 0, 0, 0), i);
        i += 1;
    }
    for h in (0..11).filter(|h| *h != 4) {
        add(day("2026-03-31").at(h, 0, 0, 0), i);
        i += 1;
    }
    add(day("2026-03-31").at(2, 30, 0, 0), i);
    add(day("2026-03-31").at(7, 45, 0, 0), i + 1);
    out
}

/// Two groups in Europe/Berlin: "spring" around 2025-03-30 02:00 CET -> 03:00 CEST, newest
/// 2025-03-31 02:30 (one day back is 02:30 in the gap); "autumn" around 2025-10-26 03:00 CEST
/// -> 02:00 CET, newest 2025-10-27 02:30 (one day back is 02:30 in the fold, which Go reads as
/// the later, CET, instant). Times in the fold are made in Etc/GMT-2 (CEST) and Etc/GMT-1 (CET).
fn berlin_specs() -> Vec<Spec> {
    let b = "Europe/Berlin";
    let mut out: Vec<Spec> = [
        "2025-03-28 12:00:00",
        "2025-03-29 02:30:00",
        "2025-03-29 11:30:00",
        "2025-03-29 12:00:00",
        "2025-03-29 12:30:00",
        "2025-03-30 00:30:00",
        "2025-03-30 01:59:00",
        "2025-03-30 03:00:00",
        "2025-03-30 03:29:00",
        "2025-03-30 03:31:00",
        "2025-03-30 12:00:00",
        "2025-03-31 02:30:00",
    ]
    .iter()
    .map(|t| spec("spring", b, t, &[]))
    .collect();
    out.extend([
        spec("autumn", b, "2025-10-25 12:00:00", &[]),
        spec("autumn", b, "2025-10-26 00:30:00", &[]),
        spec("autumn", b, "2025-10-26 01:59:00", &[]),
        spec("autumn", "Etc/GMT-2", "2025-10-26 02:15:00", &[]),
        spec("autumn", "Etc/GMT-2", "2025-10-26 02:45:00", &[]),
        spec("autumn", "Etc/GMT-1", "2025-10-26 02:15:00", &[]),
        spec("autumn", "Etc/GMT-1", "2025-10-26 02:45:00", &[]),
        spec("autumn", b, "2025-10-26 03:30:00", &[]),
        spec("autumn", b, "2025-10-26 12:00:00", &[]),
        spec("autumn", b, "2025-10-27 02:30:00", &[]),
    ]);
    out
}

const UTC_POLICIES: &[&[&str]] = &[
    &[
        "--keep-daily",
        "7",
        "--keep-weekly",
        "5",
        "--keep-monthly",
        "12",
    ],
    &["--keep-last", "3", "--keep-yearly", "2"],
    &["--keep-within", "30d"],
    &["--keep-hourly", "10", "--keep-daily", "10"],
    &["--keep-within-daily", "60d", "--keep-monthly", "6"],
    &[
        "--keep-within",
        "1m",
        "--keep-tag",
        "release",
        "--keep-weekly",
        "3",
    ],
    &[
        "--keep-within-hourly",
        "2d",
        "--keep-within-weekly",
        "6m",
        "--keep-within-monthly",
        "1y2m",
        "--keep-within-yearly",
        "10y",
    ],
    &["--keep-weekly", "70"],
    &[
        "--keep-tag",
        "release",
        "--keep-tag",
        "db,weekly",
        "--keep-last",
        "1",
    ],
    &[
        "--keep-last",
        "500",
        "--keep-hourly",
        "500",
        "--keep-daily",
        "500",
        "--keep-weekly",
        "500",
        "--keep-monthly",
        "500",
        "--keep-yearly",
        "500",
    ],
    &["--keep-within", "1y1m2d12h", "--keep-yearly", "1"],
];

const BERLIN_POLICIES: &[&[&str]] = &[
    &["--keep-within", "1d"],
    &["--keep-within", "2d", "--keep-hourly", "6"],
    &["--keep-within", "25h", "--keep-daily", "3"],
    &["--keep-within-hourly", "1d", "--keep-within-daily", "1y"],
    &["--keep-weekly", "2", "--keep-last", "2"],
];

/// The same flags as a [`Policy`], through the same parsers the CLI uses.
fn policy(flags: &[&str]) -> Policy {
    let mut p = Policy::default();
    for pair in flags.chunks(2) {
        let v = pair[1];
        match pair[0] {
            "--keep-last" => p.last = Some(v.parse().unwrap()),
            "--keep-hourly" => p.hourly = Some(v.parse().unwrap()),
            "--keep-daily" => p.daily = Some(v.parse().unwrap()),
            "--keep-weekly" => p.weekly = Some(v.parse().unwrap()),
            "--keep-monthly" => p.monthly = Some(v.parse().unwrap()),
            "--keep-yearly" => p.yearly = Some(v.parse().unwrap()),
            "--keep-within" => p.within = Some(v.parse().unwrap()),
            "--keep-within-hourly" => p.within_hourly = Some(v.parse().unwrap()),
            "--keep-within-daily" => p.within_daily = Some(v.parse().unwrap()),
            "--keep-within-weekly" => p.within_weekly = Some(v.parse().unwrap()),
            "--keep-within-monthly" => p.within_monthly = Some(v.parse().unwrap()),
            "--keep-within-yearly" => p.within_yearly = Some(v.parse().unwrap()),
            "--keep-tag" => p.tags.push(v.parse().unwrap()),
            other => panic!("no such flag in this test: {other}"),
        }
    }
    p
}

fn restic(repo: &Path, tz: &str) -> Command {
    let mut c = Command::new("restic");
    for var in [
        "RESTIC_PASSWORD_FILE",
        "RESTIC_PASSWORD_COMMAND",
        "RESTIC_REPOSITORY_FILE",
        "RESTIC_KEY_HINT",
        "RESTIC_CACHE_DIR",
        "RESTIC_PACK_SIZE",
        "RESTIC_COMPRESSION",
    ] {
        c.env_remove(var);
    }
    c.env("RESTIC_REPOSITORY", repo)
        .env("RESTIC_PASSWORD", PASSWORD)
        .env("TZ", tz)
        .arg("--no-cache");
    c
}

fn check(what: &str, out: std::io::Result<Output>) -> Output {
    let out = out.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `f` over `items` on a few threads (restic is CPU-bound in scrypt), results in order.
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get() * 2);
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, R)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads.min(items.len()))
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        done.push((i, f(item)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn backup(repo: &Path, (n, s): &(usize, &Spec)) {
    let mut cmd = restic(repo, s.tz);
    cmd.args(["-q", "backup", "--stdin", "--stdin-filename", "dump.sql"])
        .args(["--host", s.host, "--time", &s.local]);
    if !s.tags.is_empty() {
        cmd.args(["--tag", &s.tags.join(",")]);
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    writeln!(stdin, "snapshot {n} at {}", s.local).unwrap();
    drop(stdin);
    check(
        &format!("restic backup {}", s.local),
        child.wait_with_output(),
    );
}

#[derive(serde::Deserialize)]
struct Listed {
    time: Timestamp,
}

#[derive(serde::Deserialize)]
struct ForgetGroup {
    host: String,
    keep: Option<Vec<Listed>>,
    remove: Option<Vec<Listed>>,
    reasons: Option<Vec<KeepReason>>,
}

#[derive(serde::Deserialize)]
struct KeepReason {
    snapshot: Listed,
    matches: Vec<String>,
}

/// Per host: kept (time, reasons) newest first, and removed times sorted.
type Verdicts = BTreeMap<String, (Vec<(Timestamp, Vec<String>)>, Vec<Timestamp>)>;

fn restic_verdicts(repo: &Path, tz: &str, flags: &[&str]) -> Verdicts {
    let out = check(
        &format!("restic forget {}", flags.join(" ")),
        restic(repo, tz)
            .args(["--no-lock", "--json", "forget", "--dry-run"])
            .args(flags)
            .output(),
    );
    let groups: Vec<ForgetGroup> = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "restic forget --json output: {e}\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let mut v = Verdicts::new();
    for g in groups {
        let keep: Vec<_> = g
            .reasons
            .unwrap_or_default()
            .into_iter()
            .map(|r| (r.snapshot.time, r.matches))
            .collect();
        let listed: Vec<Timestamp> = g.keep.unwrap_or_default().iter().map(|s| s.time).collect();
        assert_eq!(
            listed,
            keep.iter().map(|(t, _)| *t).collect::<Vec<_>>(),
            "restic's keep list and its reasons disagree"
        );
        let mut remove: Vec<_> = g
            .remove
            .unwrap_or_default()
            .iter()
            .map(|s| s.time)
            .collect();
        remove.sort();
        assert!(
            v.insert(g.host, (keep, remove)).is_none(),
            "one group per host"
        );
    }
    v
}

fn our_verdicts(specs: &[Spec], tz: &TimeZone, flags: &[&str]) -> Verdicts {
    let snapshots: Vec<(SnapshotId, Snapshot)> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&u64::try_from(i).unwrap().to_le_bytes());
            (SnapshotId(id), snapshot(s))
        })
        .collect();
    let time = |id: SnapshotId| {
        snapshots
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, s)| s.time)
            .unwrap()
    };
    let p = plan(&snapshots, &policy(flags), GroupBy::default(), tz).unwrap();
    assert!(p.incomplete.is_empty());
    p.groups
        .iter()
        .map(|g| {
            let keep = g
                .decisions
                .iter()
                .filter(|d| d.keep)
                .map(|d| (time(d.id), d.reasons.clone()))
                .collect();
            let mut remove: Vec<_> = p
                .remove()
                .filter(|id| g.decisions.iter().any(|d| d.id == *id))
                .map(time)
                .collect();
            remove.sort();
            (g.key.host.clone().unwrap(), (keep, remove))
        })
        .collect()
}

fn snapshot(s: &Spec) -> Snapshot {
    Snapshot {
        time: s.time(),
        duration: 0.0,
        host: s.host.to_owned(),
        name: "db".to_owned(),
        tags: s.tags.iter().map(|t| (*t).to_owned()).collect(),
        source: Source::Stdin,
        producer_status: ProducerStatus::Unknown,
        root: Root::Stream {
            content_list: BlobId([0; 32]),
            size: 0,
        },
        bytes_read: 0,
        bytes_added: 0,
        raw_bytes_added: 0,
        chunks: 0,
        new_chunks: 0,
        larder_version: "test".to_owned(),
        errors: 0,
        parent: None,
        tree_counts: None,
        damaged: None,
        original: None,
        quarantined: None,
        warnings: vec![],
        chunker: None,
    }
}

/// restic on PATH at the version whose policy `retention` copies, or `None` (with a note)
/// outside CI.
fn restic_available() -> Option<String> {
    let version = match Command::new("restic").arg("version").output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        other => {
            let why = format!(
                "restic not runnable ({:?}); SKIPPING the comparison with `restic forget` \
                 (.ci/install-deps.sh installs it)",
                other.map(|o| o.status)
            );
            assert!(std::env::var_os("CI").is_none(), "{why}");
            note(&why);
            return None;
        }
    };
    // restic 0.16 changed the policy (a bucket rule with counts left also keeps the oldest
    // snapshot); `retention` follows 0.14, the version Debian 12 ships.
    assert!(
        version.starts_with("restic 0.14."),
        "retention follows restic 0.14's forget policy, found {version}"
    );
    for zone in ["Europe/Berlin", "Etc/GMT-1", "Etc/GMT-2"] {
        // Go falls back to UTC, silently, for a zone it cannot load.
        assert!(
            Path::new("/usr/share/zoneinfo").join(zone).exists(),
            "restic needs /usr/share/zoneinfo/{zone} (package tzdata)"
        );
    }
    Some(version.trim().to_owned())
}

#[test]
fn plan_matches_restic_forget() {
    let Some(version) = restic_available() else {
        return;
    };
    let start = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let utc_repo = dir.path().join("utc");
    let berlin_repo = dir.path().join("berlin");
    let utc = utc_specs();
    let berlin = berlin_specs();
    let all_times = |specs: &[Spec]| {
        let mut t: Vec<_> = specs.iter().map(Spec::time).collect();
        t.sort();
        t.dedup();
        t.len()
    };
    assert_eq!(
        all_times(&utc),
        utc.len(),
        "no two snapshots at the same time"
    );
    assert_eq!(all_times(&berlin), berlin.len());

    par_map(&[&utc_repo, &berlin_repo], |repo| {
        check(
            "restic init",
            restic(repo, "UTC").args(["-q", "init"]).output(),
        )
    });
    let jobs: Vec<(&Path, (usize, &Spec))> = (utc.iter().map(|s| (utc_repo.as_path(), s)))
        .chain(berlin.iter().map(|s| (berlin_repo.as_path(), s)))
        .enumerate()
        .map(|(n, (repo, s))| (repo, (n, s)))
        .collect();
    par_map(&jobs, |(repo, job)| backup(repo, job));
    let made = start.elapsed();

    let runs: Vec<(&Path, &str, &[&str])> = UTC_POLICIES
        .iter()
        .map(|f| (utc_repo.as_path(), "UTC", *f))
        .chain(
            BERLIN_POLICIES
                .iter()
                .map(|f| (berlin_repo.as_path(), "Europe/Berlin", *f)),
        )
        .collect();
    let theirs = par_map(&runs, |(repo, tz, flags)| restic_verdicts(repo, tz, flags));
    let forgot = start.elapsed() - made;

    let mut summary = Vec::new();
    for ((_, tz, flags), theirs) in runs.iter().zip(theirs) {
        let (specs, zone) = if *tz == "UTC" {
            (&utc, TimeZone::UTC)
        } else {
            (&berlin, TimeZone::get(tz).unwrap())
        };
        let ours = our_verdicts(specs, &zone, flags);
        assert_eq!(
            ours.keys().collect::<Vec<_>>(),
            theirs.keys().collect::<Vec<_>>()
        );
        for (host, (keep, remove)) in &theirs {
            let (our_keep, our_remove) = &ours[host];
            assert_eq!(
                our_keep,
                keep,
                "kept snapshots and reasons differ from restic: {tz} {} (host {host})",
                flags.join(" ")
            );
            assert_eq!(
                our_remove,
                remove,
                "removed snapshots differ from restic: {tz} {} (host {host})",
                flags.join(" ")
            );
            summary.push(format!(
                "  {tz:<13} {:<60} host {host:<6} keep {:>3} remove {:>3}",
                flags.join(" "),
                keep.len(),
                remove.len()
            ));
        }
    }
    note(&format!(
        "{version}: {} snapshots made in {:.1?}, {} forget runs in {:.1?}, all agree; \
         total {:.1?}\n{}",
        jobs.len(),
        made,
        runs.len(),
        forgot,
        start.elapsed(),
        summary.join("\n")
    ));
}
