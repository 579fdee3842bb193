//! Retention: which snapshots `forget` keeps. Pure: snapshots in, a [`RetentionPlan`] out;
//! nothing is read or deleted here (deletion is `forget` + `prune`, DESIGN.md invariant 6).
//!
//! The policy is restic's `forget` policy (`internal/restic/snapshot_policy.go`, as shipped in
//! restic 0.14), rule for rule, so that a restic user's `--keep-*` flags mean the same here and
//! `tests/retention.rs` can check every decision against the real restic binary:
//!
//! - Snapshots are divided into groups ([`GroupBy`]); each group is planned on its own.
//! - Within a group, snapshots are walked newest first. `--keep-last n` keeps the first `n`.
//!   `--keep-{hourly,daily,weekly,monthly,yearly} n` keeps the newest snapshot of each of the
//!   `n` newest calendar buckets that hold a snapshot (hour, day, ISO week, month, year in the
//!   given time zone); empty buckets do not count.
//! - `--keep-within P` keeps every snapshot newer than (strictly after) the group's newest
//!   snapshot minus `P`; `--keep-within-daily P` etc. keep the newest snapshot of *every* bucket
//!   inside that window. The reference is the newest snapshot that is not in the future, not
//!   the clock: a host that stops backing up keeps its last snapshots.
//! - `--keep-tag a,b` keeps every snapshot that has all of `a` and `b`; several tag lists are
//!   alternatives. Tags are not counted.
//! - A snapshot is kept if any rule keeps it, and its reasons list every rule that did, in
//!   restic's words (`daily snapshot`, `within 14d`, `has tags [a, b]`).
//!
//! Differences from restic, each deliberate:
//!
//! - The default grouping is host + name (restic: host + paths): a larder series is named
//!   (`--name db`), and a stdin series has no paths.
//! - A snapshot with `errors > 0` (a directory snapshot that skipped unreadable entries) is
//!   *incomplete*: it does not count toward any rule, is never a group's reference time, and is
//!   listed in [`RetentionPlan::incomplete`] instead of being decided on. Counting it could
//!   let a partial snapshot take the place of a complete one in a daily bucket.
//! - A *quarantined* snapshot (a stream that failed its dump check, or whose producer failed)
//!   does not count toward any rule either and is never a reference time. It is listed in
//!   [`RetentionPlan::quarantined`] and removed once its group has a newer good snapshot
//!   (the failure is history then); until then it is kept, for inspection.
//! - A policy without any rule is an error ([`RetentionError::EmptyPolicy`]) rather than a
//!   silent "keep everything"; restic prints the same message and removes nothing.
//! - Counts are unsigned: restic 0.14 has no "unlimited" (`-1` there removes everything).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::{Timestamp, civil, tz::TimeZone};

use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;

/// Why a policy or one of its parts cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetentionError {
    /// No rule at all: restic keeps everything in that case; larder refuses to guess.
    #[error("no policy was specified, no snapshots will be removed")]
    EmptyPolicy,
    /// A `--keep-within*` value that is not `<n>y<n>m<n>d<n>h`.
    #[error("invalid period `{input}`: {reason} (expected e.g. `1y6m`, `14d`, `36h`)")]
    Period {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A `--group-by` value with a word other than host, name or tags.
    #[error("invalid grouping `{input}`: expected a comma-separated list of host, name, tags")]
    GroupBy {
        /// What was given.
        input: String,
    },
    /// A `--keep-tag` value with an empty tag.
    #[error("invalid tag list `{input}`: tags must be non-empty (`a,b` keeps snapshots with both)")]
    TagList {
        /// What was given.
        input: String,
    },
}

/// A calendar length for `--keep-within*`, written like restic's `1y5m7d2h` (any subset of
/// the units, any order; `m` is months). Going back by a period is calendar arithmetic in the
/// plan's time zone exactly as Go's `AddDate(-y, -m, -d)` followed by `-h` hours of real time,
/// including Go's normalization (March 31 minus one month is March 3 or 2, not February 28).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Period {
    /// Calendar years.
    pub years: u32,
    /// Calendar months.
    pub months: u32,
    /// Calendar days (24 hours unless a DST change falls inside).
    pub days: u32,
    /// Hours of elapsed time.
    pub hours: u32,
}

impl Period {
    /// Whether every unit is zero; a zero period is no rule (as in restic).
    pub fn is_zero(&self) -> bool {
        *self == Period::default()
    }

    /// The instant `self` before `t`, computed as restic does; `None` if that is before the
    /// earliest representable time (every snapshot is then within the period).
    fn before(&self, t: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let local = tz.to_datetime(t);
        // Go's time.Date: months overflow into years, then days overflow into months.
        let month0 = i64::from(local.month()) - 1 - i64::from(self.months);
        let year = i64::from(local.year()) - i64::from(self.years) + month0.div_euclid(12);
        let month = month0.rem_euclid(12) + 1;
        let days =
            days_from_civil(year, month, 1) + i64::from(local.day()) - 1 - i64::from(self.days);
        let clock = i64::from(local.hour()) * 3600
            + i64::from(local.minute()) * 60
            + i64::from(local.second());
        let wall = days.checked_mul(86_400)?.checked_add(clock)?;
        // Go's time.Date resolves a wall clock time with the offset in force at
        // `wall - offset(wall)`. In a fold or a gap that is not jiff's `compatible` choice:
        // east of UTC it takes the later instant of a fold, west of UTC the earlier one, and
        // it moves a time in a gap back there.
        let offset = |secs: i64| {
            Timestamp::from_second(secs)
                .ok()
                .map(|ts| i64::from(tz.to_offset(ts).seconds()))
        };
        let utc = wall - offset(wall - offset(wall)?)?;
        let utc = utc.checked_sub(i64::from(self.hours).checked_mul(3600)?)?;
        Timestamp::new(utc, t.subsec_nanosecond()).ok()
    }
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (month 1..=12; the day may be
/// any value and counts on from the first of the month). Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl fmt::Display for Period {
    /// restic's spelling: `1y5m7d2h`, zero units left out (so a zero period is empty).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl FromStr for Period {
    type Err = RetentionError;

    /// Parses `1y5m7d2h`. Unlike restic, an empty string, a negative number and a unit given
    /// twice are errors (restic reads them as zero, a negative span, and the last one).
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| RetentionError::Period {
            input: input.to_owned(),
            reason,
        };
        let s = input.trim();
        if s.is_empty() {
            return Err(err("empty"));
        }
        let mut period = Period::default();
        let mut seen = [false; 4];
        let mut rest = s;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err("expected a number"));
            }
            let (num, tail) = rest.split_at(digits);
            let n: u32 = num.parse().map_err(|_| err("number too large"))?;
            let mut chars = tail.chars();
            let (slot, field) = match chars.next() {
                Some('y') => (0, &mut period.years),
                Some('m') => (1, &mut period.months),
                Some('d') => (2, &mut period.days),
                Some('h') => (3, &mut period.hours),
                Some(_) => return Err(err("unknown unit (use y, m, d or h)")),
                None => return Err(err("number without a unit")),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(err("unit given twice"));
            }
            *field = n;
            rest = chars.as_str();
        }
        Ok(period)
    }
}

/// One `--keep-tag` value: a snapshot matches if it has every tag in the list.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TagList(pub Vec<String>);

impl TagList {
    fn matches(&self, s: &Snapshot) -> bool {
        self.0.iter().all(|t| s.tags.contains(t))
    }
}

impl FromStr for TagList {
    type Err = RetentionError;

    /// `a,b` (whitespace around each tag is dropped, as in restic). An empty tag is an
    /// error: restic 0.14 would look for a literal empty tag and match nothing.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let tags: Vec<String> = input.split(',').map(|t| t.trim().to_owned()).collect();
        if tags.iter().any(String::is_empty) {
            return Err(RetentionError::TagList {
                input: input.to_owned(),
            });
        }
        Ok(TagList(tags))
    }
}

impl fmt::Display for TagList {
    /// restic's spelling, `[a, b]`, as it appears in the reason `has tags [a, b]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.0.join(", "))
    }
}

/// A retention policy: restic's `--keep-*` options. A snapshot is kept if any rule keeps it.
/// `None`, `Some(0)` and a zero period all mean "no such rule", as in restic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `--keep-last n`: the `n` newest snapshots.
    pub last: Option<u32>,
    /// `--keep-hourly n`: the newest snapshot of each of the `n` newest hours with one.
    pub hourly: Option<u32>,
    /// `--keep-daily n`: likewise per calendar day.
    pub daily: Option<u32>,
    /// `--keep-weekly n`: likewise per ISO 8601 week (Monday to Sunday, ISO week-year).
    pub weekly: Option<u32>,
    /// `--keep-monthly n`: likewise per calendar month.
    pub monthly: Option<u32>,
    /// `--keep-yearly n`: likewise per calendar year.
    pub yearly: Option<u32>,
    /// `--keep-within P`: every snapshot strictly newer than the group's newest minus `P`.
    pub within: Option<Period>,
    /// `--keep-within-hourly P`: the newest snapshot of every hour inside that window.
    pub within_hourly: Option<Period>,
    /// `--keep-within-daily P`: likewise per day.
    pub within_daily: Option<Period>,
    /// `--keep-within-weekly P`: likewise per ISO week.
    pub within_weekly: Option<Period>,
    /// `--keep-within-monthly P`: likewise per month.
    pub within_monthly: Option<Period>,
    /// `--keep-within-yearly P`: likewise per year.
    pub within_yearly: Option<Period>,
    /// `--keep-tag a,b` (repeatable): every snapshot that matches any one of the lists.
    pub tags: Vec<TagList>,
}

impl Policy {
    /// Whether the policy has no rule at all (then [`plan`] refuses it).
    pub fn is_empty(&self) -> bool {
        let count = |c: Option<u32>| c.unwrap_or(0) == 0;
        let period = |p: Option<Period>| p.is_none_or(|p| p.is_zero());
        [
            self.last,
            self.hourly,
            self.daily,
            self.weekly,
            self.monthly,
            self.yearly,
        ]
        .into_iter()
        .all(count)
            && [
                self.within,
                self.within_hourly,
                self.within_daily,
                self.within_weekly,
                self.within_monthly,
                self.within_yearly,
            ]
            .into_iter()
            .all(period)
            && self.tags.is_empty()
    }
}

impl fmt::Display for Policy {
    /// restic's summary line, e.g. `keep 7 daily, 4 weekly snapshots and all snapshots within
    /// 14d of the newest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ]
        .into_iter()
        .filter_map(|(n, what)| n.filter(|&n| n > 0).map(|n| format!("{n} {what}")))
        .collect();
        let windows: Vec<String> = [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ]
        .into_iter()
        .filter_map(|(p, what)| {
            p.filter(|p| !p.is_zero())
                .map(|p| format!("{what} snapshots within {p}"))
        })
        .collect();
        let mut s = String::new();
        if !counts.is_empty() {
            s = format!("{} snapshots", counts.join(", "));
        }
        if !windows.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&windows.join(", "));
        }
        if !self.tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.tags.iter().map(ToString::to_string).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if let Some(p) = self.within.filter(|p| !p.is_zero()) {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!("all snapshots within {p} of the newest"));
        }
        write!(f, "keep {s}")
    }
}

/// Which snapshot fields put snapshots in the same group; every group is planned on its own.
/// The default is host + name (restic's is host + paths; see the module docs). All fields
/// off puts every snapshot in one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupBy {
    /// Group by `host`.
    pub host: bool,
    /// Group by series `name`.
    pub name: bool,
    /// Group by the set of tags (order does not matter).
    pub tags: bool,
}

impl Default for GroupBy {
    fn default() -> Self {
        GroupBy {
            host: true,
            name: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// The group `s` falls in.
    pub fn key(&self, s: &Snapshot) -> GroupKey {
        GroupKey {
            host: self.host.then(|| s.host.clone()),
            name: self.name.then(|| s.name.clone()),
            tags: self.tags.then(|| {
                let mut t = s.tags.clone();
                t.sort();
                t
            }),
        }
    }
}

impl FromStr for GroupBy {
    type Err = RetentionError;

    /// `host,name`, `host,tags`, `name`, … in any order; the empty string is no grouping.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let mut g = GroupBy {
            host: false,
            name: false,
            tags: false,
        };
        for word in input.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "host" | "hosts" => g.host = true,
                "name" | "names" => g.name = true,
                "tag" | "tags" => g.tags = true,
                _ => {
                    return Err(RetentionError::GroupBy {
                        input: input.to_owned(),
                    });
                }
            }
        }
        Ok(g)
    }
}

impl fmt::Display for GroupBy {
    /// The form [`FromStr`] reads: `host,name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<&str> = [
            (self.host, "host"),
            (self.name, "name"),
            (self.tags, "tags"),
        ]
        .into_iter()
        .filter_map(|(on, w)| on.then_some(w))
        .collect();
        f.write_str(&words.join(","))
    }
}

/// What a group's snapshots share: the fields [`GroupBy`] selected, `None` for the others.
/// Groups order by host, then name, then tags.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GroupKey {
    /// The host, if grouped by host.
    pub host: Option<String>,
    /// The series name, if grouped by name.
    pub name: Option<String>,
    /// The tags, sorted, if grouped by tags.
    pub tags: Option<Vec<String>>,
}

impl fmt::Display for GroupKey {
    /// `host h, name db, tags [a, b]`; `all snapshots` when nothing is grouped on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(n) = &self.name {
            parts.push(format!("name {n}"));
        }
        if let Some(t) = &self.tags {
            parts.push(format!("tags [{}]", t.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("all snapshots")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// The verdict on one complete snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: SnapshotId,
    /// Whether the policy keeps it.
    pub keep: bool,
    /// Every rule that keeps it, in restic's order and words (`last snapshot`, `daily
    /// snapshot`, `within 14d`, `daily within 60d`, `has tags [a, b]`); empty if removed.
    pub reasons: Vec<String>,
}

/// One group's verdicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPlan {
    /// What the group's snapshots share.
    pub key: GroupKey,
    /// One per complete snapshot of the group, newest first (equal times: smaller id first).
    pub decisions: Vec<Decision>,
    /// The policy removes every complete snapshot of the group; the CLI refuses to apply
    /// that without `--allow-empty`.
    pub removes_all: bool,
}

/// What `forget` would do. Computing it deletes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Groups in [`GroupKey`] order; a group of only incomplete snapshots has none.
    pub groups: Vec<GroupPlan>,
    /// Snapshots with `errors > 0`, newest first: not counted by any rule and not decided on
    /// (the CLI removes them only with `--prune-incomplete`).
    pub incomplete: Vec<SnapshotId>,
    /// Quarantined snapshots, newest first: not counted by any rule. `superseded` ones (their
    /// group has a newer good snapshot) are removed with the policy's removals.
    pub quarantined: Vec<QuarantinedDecision>,
}

/// What happens to one quarantined snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuarantinedDecision {
    /// The snapshot.
    pub id: SnapshotId,
    /// Its group has a good snapshot newer than it: remove it.
    pub superseded: bool,
}

impl RetentionPlan {
    /// The snapshots the policy removes, group by group, newest first within a group, then
    /// the superseded quarantined ones.
    pub fn remove(&self) -> impl Iterator<Item = SnapshotId> + '_ {
        self.decided().filter(|d| !d.keep).map(|d| d.id).chain(
            self.quarantined
                .iter()
                .filter(|q| q.superseded)
                .map(|q| q.id),
        )
    }

    /// The snapshots the policy keeps, in the same order.
    pub fn keep(&self) -> impl Iterator<Item = SnapshotId> + '_ {
        self.decided().filter(|d| d.keep).map(|d| d.id)
    }

    fn decided(&self) -> impl Iterator<Item = &Decision> + '_ {
        self.groups.iter().flat_map(|g| g.decisions.iter())
    }
}

/// Plans `forget` for `snapshots` (any order) under `policy`, with calendar buckets in `tz`
/// (the CLI passes the local zone). Reads the clock once, only to ignore snapshots dated in
/// the future when choosing each group's reference time for `--keep-within*` (restic does
/// the same); see [`plan_at`].
///
/// Fails only with [`RetentionError::EmptyPolicy`].
pub fn plan(
    snapshots: &[(SnapshotId, Snapshot)],
    policy: &Policy,
    group_by: GroupBy,
    tz: &TimeZone,
) -> Result<RetentionPlan, RetentionError> {
    plan_at(snapshots, policy, group_by, tz, Timestamp::now())
}

/// [`plan`] with the current time given: a group's reference for `--keep-within*` is its
/// newest complete snapshot dated strictly before `now` (if there is none, every snapshot
/// counts as within every window, as in restic).
pub fn plan_at(
    snapshots: &[(SnapshotId, Snapshot)],
    policy: &Policy,
    group_by: GroupBy,
    tz: &TimeZone,
    now: Timestamp,
) -> Result<RetentionPlan, RetentionError> {
    if policy.is_empty() {
        return Err(RetentionError::EmptyPolicy);
    }
    let mut groups: BTreeMap<GroupKey, Vec<(SnapshotId, &Snapshot)>> = BTreeMap::new();
    let mut incomplete = Vec::new();
    let mut quarantined = Vec::new();
    for (id, s) in snapshots {
        if s.quarantined.is_some() {
            quarantined.push((*id, s));
        } else if s.errors > 0 {
            incomplete.push((*id, s));
        } else {
            groups.entry(group_by.key(s)).or_default().push((*id, s));
        }
    }
    sort_newest_first(&mut incomplete);
    sort_newest_first(&mut quarantined);
    let quarantined = quarantined
        .into_iter()
        .map(|(id, q)| QuarantinedDecision {
            id,
            superseded: groups
                .get(&group_by.key(q))
                .is_some_and(|g| g.iter().any(|(_, s)| s.time > q.time)),
        })
        .collect();
    let groups = groups
        .into_iter()
        .map(|(key, mut list)| {
            sort_newest_first(&mut list);
            let decisions = plan_group(&list, policy, tz, now);
            GroupPlan {
                key,
                removes_all: decisions.iter().all(|d| !d.keep),
                decisions,
            }
        })
        .collect();
    Ok(RetentionPlan {
        groups,
        incomplete: incomplete.into_iter().map(|(id, _)| id).collect(),
        quarantined,
    })
}

fn sort_newest_first(list: &mut [(SnapshotId, &Snapshot)]) {
    list.sort_by(|(ia, a), (ib, b)| b.time.cmp(&a.time).then(ia.cmp(ib)));
}

/// A calendar bucket as restic numbers it (`YYYYMMDDHH`, `YYYYMMDD`, ISO `YYYYWW`, `YYYYMM`,
/// `YYYY`): two snapshots share a bucket exactly when the numbers are equal.
#[derive(Clone, Copy)]
enum Bucket {
    Hour,
    Day,
    IsoWeek,
    Month,
    Year,
}

impl Bucket {
    fn of(self, t: civil::DateTime) -> i64 {
        let (y, m, d, h) = (
            i64::from(t.year()),
            i64::from(t.month()),
            i64::from(t.day()),
            i64::from(t.hour()),
        );
        match self {
            Bucket::Hour => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Bucket::Day => y * 10_000 + m * 100 + d,
            Bucket::IsoWeek => {
                let w = t.date().iso_week_date();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Bucket::Month => y * 100 + m,
            Bucket::Year => y,
        }
    }
}

/// restic's `ApplyPolicy` on one group, sorted newest first.
fn plan_group(
    list: &[(SnapshotId, &Snapshot)],
    policy: &Policy,
    tz: &TimeZone,
    now: Timestamp,
) -> Vec<Decision> {
    struct Counted {
        left: u32,
        bucket: Option<Bucket>, // None: every snapshot is its own bucket (`last`)
        prev: Option<i64>,
        reason: &'static str,
    }
    struct Windowed {
        cutoff: Option<Timestamp>, // None: every snapshot is inside
        period: Period,
        bucket: Bucket,
        prev: Option<i64>,
        reason: &'static str,
    }
    let reference = list.iter().map(|(_, s)| s.time).filter(|&t| t < now).max();
    let cutoff = |p: Period| reference.and_then(|r| p.before(r, tz));
    let inside = |cutoff: Option<Timestamp>, t: Timestamp| cutoff.is_none_or(|c| t > c);

    let mut counted: Vec<Counted> = [
        (policy.last, None, "last snapshot"),
        (policy.hourly, Some(Bucket::Hour), "hourly snapshot"),
        (policy.daily, Some(Bucket::Day), "daily snapshot"),
        (policy.weekly, Some(Bucket::IsoWeek), "weekly snapshot"),
        (policy.monthly, Some(Bucket::Month), "monthly snapshot"),
        (policy.yearly, Some(Bucket::Year), "yearly snapshot"),
    ]
    .into_iter()
    .filter_map(|(n, bucket, reason)| {
        n.filter(|&n| n > 0).map(|left| Counted {
            left,
            bucket,
            prev: None,
            reason,
        })
    })
    .collect();
    let mut windowed: Vec<Windowed> = [
        (policy.within_hourly, Bucket::Hour, "hourly within"),
        (policy.within_daily, Bucket::Day, "daily within"),
        (policy.within_weekly, Bucket::IsoWeek, "weekly within"),
        (policy.within_monthly, Bucket::Month, "monthly within"),
        (policy.within_yearly, Bucket::Year, "yearly within"),
    ]
    .into_iter()
    .filter_map(|(p, bucket, reason)| {
        p.filter(|p| !p.is_zero()).map(|period| Windowed {
            cutoff: cutoff(period),
            period,
            bucket,
            prev: None,
            reason,
        })
    })
    .collect();
    let within = policy
        .within
        .filter(|p| !p.is_zero())
        .map(|p| (p, cutoff(p)));

    let mut decisions = Vec::with_capacity(list.len());
    for (id, s) in list {
        let local = tz.to_datetime(s.time);
        let mut reasons = Vec::new();
        for tags in policy.tags.iter().filter(|t| t.matches(s)) {
            reasons.push(format!("has tags {tags}"));
        }
        if let Some((p, c)) = within
            && inside(c, s.time)
        {
            reasons.push(format!("within {p}"));
        }
        for rule in counted.iter_mut().filter(|r| r.left > 0) {
            // `last` puts every snapshot in a bucket of its own (restic numbers them).
            let val = rule.bucket.map(|b| b.of(local));
            if val.is_none() || rule.prev != val {
                rule.prev = val;
                rule.left -= 1;
                reasons.push(rule.reason.to_owned());
            }
        }
        for rule in windowed.iter_mut().filter(|r| inside(r.cutoff, s.time)) {
            let val = rule.bucket.of(local);
            if rule.prev != Some(val) {
                rule.prev = Some(val);
                reasons.push(format!("{} {}", rule.reason, rule.period));
            }
        }
        decisions.push(Decision {
            id: *id,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    decisions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn berlin() -> TimeZone {
        TimeZone::get("Europe/Berlin").unwrap()
    }

    /// A complete snapshot of host `h`, series `db`, at a local time in `tz`
    /// (`2026-03-29 01:30`), its id derived from the time so that tests can name it.
    fn at(tz: &TimeZone, local: &str) -> (SnapshotId, Snapshot) {
        let dt: civil::DateTime = local.replacen(' ', "T", 1).parse().unwrap();
        let time = dt.to_zoned(tz.clone()).unwrap().timestamp();
        snap(time, "h", "db")
    }

    fn utc(local: &str) -> (SnapshotId, Snapshot) {
        at(&TimeZone::UTC, local)
    }

    fn snap(time: Timestamp, host: &str, name: &str) -> (SnapshotId, Snapshot) {
        let id = *blake3::hash(format!("{time} {host} {name}").as_bytes()).as_bytes();
        let s = Snapshot {
            time,
            ..Snapshot::for_tests(name, host, 0)
        };
        (SnapshotId(id), s)
    }

    /// The local times (in `tz`) of the snapshots kept, newest first, and the reasons of each.
    fn kept(
        all: &[(SnapshotId, Snapshot)],
        policy: &Policy,
        tz: &TimeZone,
    ) -> Vec<(String, Vec<String>)> {
        let plan = plan(all, policy, GroupBy::default(), tz).unwrap();
        assert_eq!(plan.groups.len(), 1);
        let time = |id: SnapshotId| {
            let s = &all.iter().find(|(i, _)| *i == id).unwrap().1;
            tz.to_datetime(s.time)
                .strftime("%Y-%m-%d %H:%M")
                .to_string()
        };
        plan.groups[0]
            .decisions
            .iter()
            .filter(|d| d.keep)
            .map(|d| (time(d.id), d.reasons.clone()))
            .collect()
    }

    fn times(k: &[(String, Vec<String>)]) -> Vec<&str> {
        k.iter().map(|(t, _)| t.as_str()).collect()
    }

    fn daily_run(from: &str, days: i64) -> Vec<(SnapshotId, Snapshot)> {
        let start: civil::DateTime = from.replacen(' ', "T", 1).parse().unwrap();
        (0..days)
            .map(|i| {
                let dt = start.checked_add(jiff::Span::new().days(i)).unwrap();
                utc(&dt.strftime("%Y-%m-%d %H:%M").to_string())
            })
            .collect()
    }

    #[test]
    fn keep_last_counts_snapshots_not_days() {
        let all = vec![
            utc("2026-05-01 10:00"),
            utc("2026-05-01 11:00"),
            utc("2026-05-01 12:00"),
            utc("2026-04-30 09:00"),
        ];
        let p = Policy {
            last: Some(2),
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(times(&k), ["2026-05-01 12:00", "2026-05-01 11:00"]);
        assert_eq!(k[0].1, ["last snapshot"]);
    }

    #[test]
    fn daily_keeps_the_newest_of_each_local_day_across_dst() {
        // Berlin: 2026-03-29 02:00 CET -> 03:00 CEST; 2026-10-25 03:00 CEST -> 02:00 CET.
        // 23:30 local is 22:30 UTC in winter and 21:30 UTC in summer: still the same local day.
        let tz = berlin();
        let all = vec![
            at(&tz, "2026-03-28 23:30"),
            at(&tz, "2026-03-29 00:30"),
            at(&tz, "2026-03-29 03:30"),
            at(&tz, "2026-03-29 23:30"),
            at(&tz, "2026-03-30 00:10"),
            at(&tz, "2026-10-25 01:30"),
            at(&tz, "2026-10-25 23:59"),
        ];
        let p = Policy {
            daily: Some(4),
            ..Policy::default()
        };
        let k = kept(&all, &p, &tz);
        assert_eq!(
            times(&k),
            [
                "2026-10-25 23:59",
                "2026-03-30 00:10",
                "2026-03-29 23:30",
                "2026-03-28 23:30"
            ]
        );
        // In UTC the same instants fall on other days: 2026-10-25 01:30 CEST is the 24th,
        // and 2026-03-29 23:30 / 2026-03-30 00:10 CEST (21:30, 22:10 UTC) share the 29th.
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            times(&k),
            [
                "2026-10-25 22:59",
                "2026-10-24 23:30",
                "2026-03-29 22:10",
                "2026-03-28 23:30"
            ]
        );
    }

    #[test]
    fn hourly_in_a_fold_is_one_wall_clock_hour() {
        // 2026-10-25 02:00-03:00 happens twice in Berlin; restic buckets by wall clock, so
        // both 02:xx (CEST, then CET) are one hourly bucket.
        let tz = berlin();
        let first: Timestamp = "2026-10-25T00:30:00Z".parse().unwrap(); // 02:30 CEST
        let second: Timestamp = "2026-10-25T01:30:00Z".parse().unwrap(); // 02:30 CET
        assert_eq!(tz.to_datetime(first), tz.to_datetime(second));
        let all = vec![snap(first, "h", "db"), snap(second, "h", "db")];
        let p = Policy {
            hourly: Some(5),
            ..Policy::default()
        };
        let plan = plan(&all, &p, GroupBy::default(), &tz).unwrap();
        let keep: Vec<_> = plan.keep().collect();
        assert_eq!(keep, [all[1].0]);
    }

    #[test]
    fn weekly_uses_iso_weeks_across_the_year_boundary() {
        // 2026-12-28 (Mon) .. 2027-01-03 (Sun) is ISO week 2026-W53; 2027-01-04 starts 2027-W01.
        // 2026-12-27 (Sun) ends 2026-W52.
        let all = daily_run("2026-12-20 12:00", 16); // 2026-12-20 .. 2027-01-04
        let p = Policy {
            weekly: Some(3),
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            times(&k),
            ["2027-01-04 12:00", "2027-01-03 12:00", "2026-12-27 12:00"]
        );
        assert!(k.iter().all(|(_, r)| r == &["weekly snapshot"]));
    }

    #[test]
    fn monthly_and_yearly_skip_empty_buckets() {
        let all = vec![
            utc("2024-02-10 00:00"),
            utc("2024-11-30 23:59"),
            utc("2025-01-31 00:00"),
            utc("2025-01-01 00:00"),
            utc("2025-03-15 00:00"),
            utc("2026-07-01 00:00"),
        ];
        let p = Policy {
            monthly: Some(3),
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            times(&k),
            ["2026-07-01 00:00", "2025-03-15 00:00", "2025-01-31 00:00"]
        );
        let p = Policy {
            yearly: Some(5),
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            times(&k),
            ["2026-07-01 00:00", "2025-03-15 00:00", "2024-11-30 23:59"]
        );
        assert!(k.iter().all(|(_, r)| r == &["yearly snapshot"]));
    }

    #[test]
    fn within_is_relative_to_the_newest_snapshot_and_strict() {
        // The newest is 2026-06-30 08:00, so 14d reaches back to 2026-06-16 08:00, exclusive.
        let all = vec![
            utc("2026-06-30 08:00"),
            utc("2026-06-20 00:00"),
            utc("2026-06-16 08:01"),
            utc("2026-06-16 08:00"),
            utc("2026-05-01 00:00"),
        ];
        let p = Policy {
            within: Some("14d".parse().unwrap()),
            ..Policy::default()
        };
        let now = "2030-01-01T00:00:00Z".parse().unwrap();
        let plan = plan_at(&all, &p, GroupBy::default(), &TimeZone::UTC, now).unwrap();
        let keep: Vec<_> = plan.keep().collect();
        assert_eq!(keep, [all[0].0, all[1].0, all[2].0]);
        assert_eq!(plan.groups[0].decisions[0].reasons, ["within 14d"]);
        // A snapshot dated in the future is not the reference (restic ignores it too).
        let mut with_future = all.clone();
        with_future.push(utc("2031-01-01 00:00"));
        let plan = plan_at(&with_future, &p, GroupBy::default(), &TimeZone::UTC, now).unwrap();
        assert_eq!(plan.keep().count(), 4);
    }

    #[test]
    fn within_months_follow_go_date_normalization() {
        // 2026-03-31 minus one month is "2026-02-31", which Go normalizes to 2026-03-03.
        let all = vec![
            utc("2026-03-31 12:00"),
            utc("2026-03-03 12:01"),
            utc("2026-03-03 12:00"),
            utc("2026-03-01 00:00"),
        ];
        let p = Policy {
            within: Some("1m".parse().unwrap()),
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(times(&k), ["2026-03-31 12:00", "2026-03-03 12:01"]);
        // Hours are elapsed time: across the spring-forward night 1d is 23 hours in Berlin,
        // 24h is a full 24.
        let tz = berlin();
        let newest = at(&tz, "2026-03-29 12:00");
        let day = Period {
            days: 1,
            ..Period::default()
        };
        let hours = Period {
            hours: 24,
            ..Period::default()
        };
        let b = |p: Period| {
            tz.to_datetime(p.before(newest.1.time, &tz).unwrap())
                .to_string()
        };
        assert_eq!(b(day), "2026-03-28T12:00:00");
        assert_eq!(b(hours), "2026-03-28T11:00:00");
    }

    #[test]
    fn within_resolves_dst_gaps_and_folds_like_go() {
        let back = |zone: &str, newest: &str, p: &str| {
            let tz = TimeZone::get(zone).unwrap();
            let t = at(&tz, newest).1.time;
            let p: Period = p.parse().unwrap();
            p.before(t, &tz).unwrap().to_string()
        };
        // Berlin (east of UTC): 2025-03-30 02:30 is in the gap, Go gives 03:30 CEST;
        // 2025-10-26 02:30 is in the fold, Go gives the later, CET, one.
        let berlin = "Europe/Berlin";
        assert_eq!(
            back(berlin, "2025-03-31 02:30", "1d"),
            "2025-03-30T01:30:00Z"
        );
        assert_eq!(
            back(berlin, "2025-10-27 02:30", "1d"),
            "2025-10-26T01:30:00Z"
        );
        // New York (west of UTC): 2025-03-09 02:30 is in the gap, Go gives 01:30 EST;
        // 2025-11-02 01:30 is in the fold, Go gives the earlier, EDT, one.
        let ny = "America/New_York";
        assert_eq!(back(ny, "2025-03-10 02:30", "1d"), "2025-03-09T06:30:00Z");
        assert_eq!(back(ny, "2025-11-03 01:30", "1d"), "2025-11-02T05:30:00Z");
        // Hours are real time, taken after the calendar step: 1d1h before 2025-10-27 02:30 CET
        // is one hour before 2025-10-26 02:30 CET, which is 02:30 CEST.
        assert_eq!(
            back(berlin, "2025-10-27 02:30", "1d1h"),
            "2025-10-26T00:30:00Z"
        );
    }

    #[test]
    fn within_daily_keeps_one_per_day_inside_the_window_only() {
        let mut all = daily_run("2026-01-01 06:00", 10); // 01 .. 10
        all.push(utc("2026-01-10 18:00"));
        all.push(utc("2026-01-09 18:00"));
        let p = Policy {
            within_daily: Some("3d".parse().unwrap()),
            ..Policy::default()
        };
        // Newest 2026-01-10 18:00; the window starts after 2026-01-07 18:00.
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            times(&k),
            ["2026-01-10 18:00", "2026-01-09 18:00", "2026-01-08 06:00"]
        );
        assert_eq!(k[0].1, ["daily within 3d"]);
    }

    #[test]
    fn combined_rules_accumulate_reasons_in_restic_order() {
        let mut all = daily_run("2026-01-25 12:00", 10); // 01-25 .. 02-03
        all[9].1.tags = vec!["release".into(), "db".into()];
        all[0].1.tags = vec!["release".into()];
        let p = Policy {
            last: Some(1),
            daily: Some(2),
            weekly: Some(1),
            monthly: Some(2),
            within: Some("1d".parse().unwrap()),
            within_weekly: Some("1y".parse().unwrap()),
            tags: vec!["release,db".parse().unwrap(), "release".parse().unwrap()],
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            k,
            [
                (
                    "2026-02-03 12:00".into(),
                    vec![
                        "has tags [release, db]".to_owned(),
                        "has tags [release]".into(),
                        "within 1d".into(),
                        "last snapshot".into(),
                        "daily snapshot".into(),
                        "weekly snapshot".into(),
                        "monthly snapshot".into(),
                        "weekly within 1y".into(),
                    ]
                ),
                ("2026-02-02 12:00".into(), vec!["daily snapshot".to_owned()]),
                (
                    "2026-02-01 12:00".into(),
                    vec!["weekly within 1y".to_owned()] // Sunday ends 2026-W05
                ),
                (
                    "2026-01-31 12:00".into(),
                    vec!["monthly snapshot".to_owned()]
                ),
                (
                    "2026-01-25 12:00".into(),
                    vec!["has tags [release]".to_owned(), "weekly within 1y".into()]
                ),
            ]
        );
        assert_eq!(
            p.to_string(),
            "keep 1 latest, 2 daily, 1 weekly, 2 monthly snapshots, weekly snapshots within 1y \
             and all snapshots with tags [[release, db] [release]] and all snapshots within 1d \
             of the newest"
        );
    }

    #[test]
    fn group_by_host_or_name() {
        let t = |s: i64| Timestamp::from_second(1_780_000_000 + s).unwrap();
        let all = vec![
            snap(t(0), "a", "db"),
            snap(t(1), "a", "web"),
            snap(t(2), "bb", "db"),
            snap(t(3), "bb", "db"),
        ];
        let p = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let groups = |g: GroupBy| {
            plan(&all, &p, g, &TimeZone::UTC)
                .unwrap()
                .groups
                .into_iter()
                .map(|g| (g.key.to_string(), g.decisions.len(), g.decisions[0].id))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            groups(GroupBy::default()),
            [
                ("host a, name db".into(), 1, all[0].0),
                ("host a, name web".into(), 1, all[1].0),
                ("host bb, name db".into(), 2, all[3].0),
            ]
        );
        assert_eq!(
            groups("host".parse().unwrap()),
            [
                ("host a".into(), 2, all[1].0),
                ("host bb".into(), 2, all[3].0)
            ]
        );
        assert_eq!(
            groups(" name ".parse().unwrap()),
            [
                ("name db".into(), 3, all[3].0),
                ("name web".into(), 1, all[1].0)
            ]
        );
        assert_eq!(
            groups("".parse().unwrap()),
            [("all snapshots".into(), 4, all[3].0)]
        );
        assert_eq!(GroupBy::default().to_string(), "host,name");
        assert!("host,paths".parse::<GroupBy>().is_err());
    }

    #[test]
    fn group_by_tags_ignores_tag_order() {
        let (mut a, mut b) = (utc("2026-01-01 00:00"), utc("2026-01-02 00:00"));
        a.1.tags = vec!["x".into(), "y".into()];
        b.1.tags = vec!["y".into(), "x".into()];
        let p = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let plan = plan(&[a, b], &p, "tags".parse().unwrap(), &TimeZone::UTC).unwrap();
        assert_eq!(plan.groups.len(), 1);
        assert_eq!(plan.groups[0].key.to_string(), "tags [x, y]");
    }

    #[test]
    fn keep_tag_needs_every_tag_of_one_list() {
        let mut all = daily_run("2026-01-01 00:00", 4);
        all[0].1.tags = vec!["a".into()];
        all[1].1.tags = vec!["a".into(), "b".into()];
        all[2].1.tags = vec!["c".into()];
        let p = Policy {
            tags: vec!["a, b".parse().unwrap(), "c".parse().unwrap()],
            ..Policy::default()
        };
        let k = kept(&all, &p, &TimeZone::UTC);
        assert_eq!(
            k,
            [
                ("2026-01-03 00:00".into(), vec!["has tags [c]".to_owned()]),
                (
                    "2026-01-02 00:00".into(),
                    vec!["has tags [a, b]".to_owned()]
                ),
            ]
        );
        assert!("a,,b".parse::<TagList>().is_err());
        assert!("".parse::<TagList>().is_err());
    }

    #[test]
    fn empty_policy_is_an_error() {
        let all = vec![utc("2026-01-01 00:00")];
        let zero = Policy {
            last: Some(0),
            within: Some(Period::default()),
            ..Policy::default()
        };
        for p in [Policy::default(), zero] {
            let err = plan(&all, &p, GroupBy::default(), &TimeZone::UTC).unwrap_err();
            assert_eq!(err, RetentionError::EmptyPolicy);
            assert_eq!(
                err.to_string(),
                "no policy was specified, no snapshots will be removed"
            );
        }
    }

    #[test]
    fn removes_all_is_flagged_per_group() {
        let t = |s: i64| Timestamp::from_second(1_780_000_000 + s).unwrap();
        let mut all = vec![snap(t(0), "h", "db"), snap(t(1), "h", "logs")];
        all[0].1.tags = vec!["keep".into()];
        let p = Policy {
            tags: vec!["keep".parse().unwrap()],
            ..Policy::default()
        };
        let plan = plan(&all, &p, GroupBy::default(), &TimeZone::UTC).unwrap();
        let flags: Vec<_> = plan.groups.iter().map(|g| g.removes_all).collect();
        assert_eq!(flags, [false, true]);
        assert_eq!(plan.remove().collect::<Vec<_>>(), [all[1].0]);
    }

    #[test]
    fn incomplete_snapshots_are_listed_not_counted() {
        let mut all = daily_run("2026-01-01 00:00", 4); // 01 .. 04
        all[3].1.errors = 2; // the newest
        all[1].1.errors = 1;
        let p = Policy {
            last: Some(2),
            within: Some("1d".parse().unwrap()),
            ..Policy::default()
        };
        let rp = plan(&all, &p, GroupBy::default(), &TimeZone::UTC).unwrap();
        assert_eq!(rp.incomplete, [all[3].0, all[1].0]);
        let d = &rp.groups[0].decisions;
        // The newest complete snapshot (01-03) is the reference for `within`, and the two
        // complete ones are the last two.
        assert_eq!(
            d.iter().map(|d| d.id).collect::<Vec<_>>(),
            [all[2].0, all[0].0]
        );
        assert_eq!(d[0].reasons, ["within 1d", "last snapshot"]);
        assert_eq!(d[1].reasons, ["last snapshot"]);
        // A group of only incomplete snapshots has nothing to decide.
        all[0].1.errors = 1;
        all[2].1.errors = 1;
        let rp = plan(&all, &p, GroupBy::default(), &TimeZone::UTC).unwrap();
        assert!(rp.groups.is_empty());
        assert_eq!(rp.incomplete.len(), 4);
    }

    #[test]
    fn equal_times_break_ties_by_id() {
        let (mut a, mut b) = (utc("2026-01-01 00:00"), utc("2026-01-01 00:00"));
        a.0 = SnapshotId([2; 32]);
        b.0 = SnapshotId([1; 32]);
        let p = Policy {
            last: Some(1),
            ..Policy::default()
        };
        let plan = plan(&[a, b.clone()], &p, GroupBy::default(), &TimeZone::UTC).unwrap();
        assert_eq!(plan.keep().collect::<Vec<_>>(), [b.0]);
    }

    #[test]
    fn period_parses_and_prints_like_restic() {
        let p: Period = "1y5m7d2h".parse().unwrap();
        assert_eq!(
            p,
            Period {
                years: 1,
                months: 5,
                days: 7,
                hours: 2
            }
        );
        assert_eq!(p.to_string(), "1y5m7d2h");
        assert_eq!(" 2h3d ".parse::<Period>().unwrap().to_string(), "3d2h");
        assert_eq!("0d".parse::<Period>().unwrap().to_string(), "");
        for bad in ["", "d", "5", "5w", "-1d", "1d1d", "99999999999d"] {
            assert!(bad.parse::<Period>().is_err(), "{bad}");
        }
    }

    #[test]
    fn days_from_civil_matches_jiff() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (2026, 12, 31),
            (1, 1, 1),
            (-44, 3, 15),
        ] {
            let date = civil::Date::new(y, m, d).unwrap();
            let secs = date
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_second();
            let days = days_from_civil(i64::from(y), i64::from(m), i64::from(d));
            assert_eq!(days * 86_400, secs, "{date}");
        }
        // The day may run past the month, as in Go's time.Date.
        assert_eq!(
            days_from_civil(2026, 2, 31),
            days_from_civil(2026, 3, 3),
            "2026-02-31 is 2026-03-03"
        );
    }

    #[test]
    fn quarantined_snapshots_never_count_and_go_once_superseded() {
        let t = |s: i64| Timestamp::from_second(1_780_000_000 + s * 86_400).unwrap();
        let quarantine = |mut x: (SnapshotId, Snapshot)| {
            x.1.quarantined = Some(crate::format::snapshot::Quarantine {
                check: "pg_dump".into(),
                reason: "truncated".into(),
            });
            x
        };
        let all = vec![
            snap(t(0), "h", "db"),
            quarantine(snap(t(1), "h", "db")),
            snap(t(2), "h", "db"),
            quarantine(snap(t(3), "h", "db")),
        ];
        let p = Policy {
            daily: Some(1),
            ..Policy::default()
        };
        let plan = plan_at(&all, &p, GroupBy::default(), &TimeZone::UTC, t(10)).unwrap();
        // The daily slot goes to the newest good snapshot, not the newer quarantined one.
        assert_eq!(plan.keep().collect::<Vec<_>>(), [all[2].0]);
        assert_eq!(
            plan.quarantined,
            [
                QuarantinedDecision {
                    id: all[3].0,
                    superseded: false
                },
                QuarantinedDecision {
                    id: all[1].0,
                    superseded: true
                },
            ]
        );
        assert_eq!(plan.remove().collect::<Vec<_>>(), [all[0].0, all[1].0]);
    }
}
