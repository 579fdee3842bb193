//! Choosing snapshots: by id or id prefix, `latest`, by name and host, and "newest at or
//! before a time" (`--at`).

use jiff::{Timestamp, Zoned, civil, tz::TimeZone};

use crate::error::{Error, Result};
use crate::format::snapshot::Snapshot;
use crate::id::SnapshotId;

/// The host name snapshots and key slots record by default. In containers the hostname
/// changes every run: pass `--host` there (README "Scheduled jobs").
pub fn default_host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Which snapshot a command means.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    /// An id or unique id prefix; `None` or `latest` means the newest that matches the rest.
    pub id: Option<String>,
    /// Only snapshots of this name.
    pub name: Option<String>,
    /// Only snapshots of this host.
    pub host: Option<String>,
    /// Only snapshots taken at or before this time.
    pub at: Option<Timestamp>,
}

impl Selector {
    /// The selection in words, for "no snapshot matches …".
    pub fn describe(&self) -> String {
        let mut parts = vec![match self.id.as_deref() {
            None | Some("latest") => "latest".to_owned(),
            Some(id) => format!("id {id}"),
        }];
        if let Some(n) = &self.name {
            parts.push(format!("name {n}"));
        }
        if let Some(h) = &self.host {
            parts.push(format!("host {h}"));
        }
        if let Some(t) = &self.at {
            parts.push(format!("at or before {t}"));
        }
        parts.join(", ")
    }

    /// Whether `s` passes the name, host and time filters.
    pub fn matches(&self, s: &Snapshot) -> bool {
        self.name.as_ref().is_none_or(|n| &s.name == n)
            && self.host.as_ref().is_none_or(|h| &s.host == h)
            && self.at.is_none_or(|t| s.time <= t)
    }
}

/// Picks one snapshot from `all` (oldest first, as the catalog returns them). `latest` (and
/// `--at`) pass over snapshots marked damaged by `repair snapshots` and quarantined ones; an
/// explicit id does not.
pub fn select(all: Vec<(SnapshotId, Snapshot)>, sel: &Selector) -> Result<(SnapshotId, Snapshot)> {
    let mut candidates: Vec<_> = all.into_iter().filter(|(_, s)| sel.matches(s)).collect();
    match sel.id.as_deref() {
        None | Some("latest") => {
            let all = candidates.len();
            candidates.retain(|(_, s)| s.is_good());
            let passed_over = all - candidates.len();
            candidates.pop().ok_or_else(|| {
                Error::NoSnapshot(if passed_over == 0 {
                    sel.describe()
                } else {
                    format!(
                        "{} ({passed_over} quarantined or damaged passed over; name one by id to use it)",
                        sel.describe()
                    )
                })
            })
        }
        Some(prefix) => {
            let prefix = prefix.to_ascii_lowercase();
            if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::InvalidArgument(format!(
                    "`{prefix}` is neither a snapshot id (hex) nor `latest`"
                )));
            }
            let mut hits = candidates
                .into_iter()
                .filter(|(id, _)| id.to_hex().starts_with(&prefix));
            let first = hits
                .next()
                .ok_or_else(|| Error::NoSnapshot(sel.describe()))?;
            if hits.next().is_some() {
                return Err(Error::AmbiguousSnapshot(prefix));
            }
            Ok(first)
        }
    }
}

/// Fails if the snapshot was marked damaged: restore never uses one silently.
pub fn refuse_damaged(id: &SnapshotId, s: &Snapshot) -> Result<()> {
    match &s.damaged {
        None => Ok(()),
        Some(d) => Err(Error::DamagedSnapshot {
            id: *id,
            problems: d.problems,
            first: d.first.clone(),
        }),
    }
}

/// Parses a point in time as users write it: RFC 3339 (`2026-11-20T02:00:00Z`), or a local
/// date and time (`2026-11-20 02:00`, `2026-11-20T02:00:30`), or a local date alone, which
/// means the end of that day.
pub fn parse_time(s: &str) -> Result<Timestamp> {
    let s = s.trim();
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(z) = s.parse::<Zoned>() {
        return Ok(z.timestamp());
    }
    let local = |dt: civil::DateTime| {
        dt.to_zoned(TimeZone::system())
            .map(|z| z.timestamp())
            .map_err(|e| Error::InvalidArgument(format!("time `{s}`: {e}")))
    };
    // A date alone first: jiff would also read it as a date-time at midnight (and its date
    // parser accepts a trailing time, so look for one).
    if let Some(d) = s.parse::<civil::Date>().ok().filter(|_| !s.contains(':')) {
        return local(d.at(23, 59, 59, 999_999_999));
    }
    if let Ok(dt) = s.replacen(' ', "T", 1).parse::<civil::DateTime>() {
        return local(dt);
    }
    Err(Error::InvalidArgument(format!(
        "cannot read `{s}` as a time (try `2026-11-20 02:00` or `2026-11-20T02:00:00Z`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(name: &str, secs: i64) -> Snapshot {
        Snapshot::for_tests(name, "h", secs)
    }

    fn all() -> Vec<(SnapshotId, Snapshot)> {
        vec![
            (SnapshotId([0xa1; 32]), snap("db", 100)),
            (SnapshotId([0xa2; 32]), snap("web", 200)),
            (SnapshotId([0xb3; 32]), snap("db", 300)),
        ]
    }

    #[test]
    fn selection() {
        let sel = |id: Option<&str>, name: Option<&str>, at: Option<i64>| Selector {
            id: id.map(Into::into),
            name: name.map(Into::into),
            host: None,
            at: at.map(|s| Timestamp::from_second(s).unwrap()),
        };
        assert_eq!(
            select(all(), &sel(None, None, None)).unwrap().0,
            SnapshotId([0xb3; 32])
        );
        assert_eq!(
            select(all(), &sel(Some("latest"), Some("web"), None))
                .unwrap()
                .0,
            SnapshotId([0xa2; 32])
        );
        assert_eq!(
            select(all(), &sel(None, Some("db"), Some(299))).unwrap().0,
            SnapshotId([0xa1; 32])
        );
        assert!(matches!(
            select(all(), &sel(None, Some("db"), Some(99))),
            Err(Error::NoSnapshot(_))
        ));
        assert!(matches!(
            select(all(), &sel(Some("a"), None, None)),
            Err(Error::AmbiguousSnapshot(_))
        ));
        assert_eq!(
            select(all(), &sel(Some("B3"), None, None)).unwrap().0,
            SnapshotId([0xb3; 32])
        );
        assert!(matches!(
            select(all(), &sel(Some("zz"), None, None)),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2026-11-20T02:00:00Z").unwrap(),
            "2026-11-20T02:00:00Z".parse::<Timestamp>().unwrap()
        );
        assert!(parse_time("2026-11-20 02:00").is_ok());
        assert!(parse_time("2026-11-20").unwrap() > parse_time("2026-11-20 23:59").unwrap());
        assert!(parse_time("yesterday-ish").is_err());
    }
}
