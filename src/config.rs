//! The configuration file (`--config`, `LARDER_CONFIG`): one repository, its series (what
//! `larder run` snapshots, how it checks and keeps them), metrics and notifications.
//! README "Configuration file" documents every key; unknown keys are errors naming the key
//! and its line, so a typo never silently disables a check.
//!
//! Nothing here touches the repository: this is parsing and validation only. Flags and
//! environment variables given on the command line win over the file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::dump_check::DumpKind;
use crate::error::{Error, Result};
use crate::retention::{Period, Policy};

/// A parsed and validated configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the repository is and how to open it.
    #[serde(default)]
    pub repository: RepositoryConfig,
    /// The series `larder run` knows, by name (sorted).
    #[serde(default)]
    pub series: BTreeMap<String, SeriesConfig>,
    /// The Prometheus textfile.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Webhooks and pings after each run.
    #[serde(default)]
    pub notify: NotifyConfig,
}

/// `[repository]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// A directory, `s3://bucket/prefix` or `az://container/prefix` (`--repo`).
    pub url: Option<String>,
    /// First line is the password (`--password-file`).
    pub password_file: Option<PathBuf>,
    /// Shell command printing the password (`--password-command`).
    pub password_command: Option<String>,
    /// The catalog cache directory (`--cache-dir`).
    pub cache_dir: Option<PathBuf>,
    /// S3-compatible endpoint (`--s3-endpoint`).
    pub s3_endpoint: Option<String>,
    /// How long to wait for a conflicting lock (`--lock-wait`).
    pub lock_wait: Option<Span>,
    /// Host recorded on snapshots of every series (`--host`; default the hostname).
    pub host: Option<String>,
    /// `larder run` prunes when the last prune recorded in the repository is older than
    /// this (default 7 days); `"never"` leaves pruning to a separate job.
    #[serde(default)]
    pub prune_every: PruneEvery,
}

/// `[series.NAME]`: one backup job.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesConfig {
    /// The producer command and its arguments; its stdout is the stream.
    pub command: Option<Vec<String>>,
    /// Or: files and directories to snapshot.
    pub paths: Option<Vec<PathBuf>>,
    /// Exclude globs for `paths` (as `--exclude`).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// What the stream must look like (`"pg_dump"`, `"pg_dump_custom"`, `"mysqldump"`,
    /// `"none"`; default none).
    pub verify: Option<DumpKindName>,
    /// Kill the producer and fail the run after this long.
    pub timeout: Option<Span>,
    /// Kill the producer and fail the run when it writes nothing for this long.
    pub stall_timeout: Option<Span>,
    /// Retention, applied by `larder run` after a good snapshot (as `forget --keep-*`).
    pub keep: Option<KeepConfig>,
    /// `status` exits non-zero when the newest good snapshot is older than this.
    pub max_age: Option<Span>,
    /// The restore-drill command: `larder drill` pipes the newest good snapshot into it.
    pub drill: Option<Vec<String>>,
    /// Kill a drill command after this long (default: no limit).
    pub drill_timeout: Option<Span>,
    /// Tags recorded on every snapshot.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Host recorded on this series' snapshots (overrides `[repository] host`).
    pub host: Option<String>,
    /// zstd level for this series.
    pub compression: Option<i32>,
    /// A healthchecks-style ping URL for this series (overrides `[notify] healthchecks`).
    pub healthchecks: Option<String>,
}

/// `keep = { daily = 30, … }`: restic's retention rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeepConfig {
    /// The newest N snapshots.
    pub last: Option<u32>,
    /// The newest snapshot of each of the last N hours that have one.
    pub hourly: Option<u32>,
    /// … days.
    pub daily: Option<u32>,
    /// … ISO weeks.
    pub weekly: Option<u32>,
    /// … months.
    pub monthly: Option<u32>,
    /// … years.
    pub yearly: Option<u32>,
    /// Every snapshot within this period of the newest (`"14d"`, `"1y6m"`, `"36h"`).
    pub within: Option<PeriodName>,
}

impl KeepConfig {
    /// The retention policy (`forget --keep-*`).
    pub fn policy(&self) -> Policy {
        Policy {
            last: self.last,
            hourly: self.hourly,
            daily: self.daily,
            weekly: self.weekly,
            monthly: self.monthly,
            yearly: self.yearly,
            within: self.within.map(|p| p.0),
            ..Policy::default()
        }
    }
}

/// `within = "…"`, parsed into a retention [`Period`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodName(pub Period);

impl<'de> Deserialize<'de> for PeriodName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        t.parse::<Period>()
            .map(PeriodName)
            .map_err(serde::de::Error::custom)
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Prometheus textfile-collector file, rewritten atomically after every run.
    pub textfile: Option<PathBuf>,
}

/// `[notify]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Generic webhooks: a JSON POST of the run's outcome.
    #[serde(default)]
    pub webhook: Vec<String>,
    /// Slack-compatible incoming webhooks (`{"text": …}`).
    #[serde(default)]
    pub slack: Vec<String>,
    /// When webhooks fire: `"failure"` (default) or `"always"`.
    #[serde(default)]
    pub on: NotifyOn,
    /// healthchecks.io-style ping URL: `/start` before, the URL on success, `/fail` with the
    /// log tail on failure. A series may set its own.
    pub healthchecks: Option<String>,
    /// Per request (default 10 s).
    #[serde(default = "NotifyConfig::default_timeout")]
    pub timeout: Span,
    /// Retries of a failed request (default 2).
    #[serde(default = "NotifyConfig::default_retries")]
    pub retries: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            webhook: Vec::new(),
            slack: Vec::new(),
            on: NotifyOn::default(),
            healthchecks: None,
            timeout: Self::default_timeout(),
            retries: Self::default_retries(),
        }
    }
}

impl NotifyConfig {
    fn default_timeout() -> Span {
        Span(Duration::from_secs(10))
    }
    fn default_retries() -> u32 {
        2
    }
}

/// When webhooks are sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyOn {
    /// Only after a failed run.
    #[default]
    Failure,
    /// After every run.
    Always,
}

/// A duration written as `90s`, `30m`, `2h`, `1d` (or a bare number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Span(Duration::from_secs(s))),
            Raw::Text(t) => parse_duration(&t)
                .map(Span)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// `prune_every`: a duration or `"never"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneEvery {
    /// `larder run` never prunes.
    Never,
    /// Prune when the last prune is older than this.
    Every(Duration),
}

impl Default for PruneEvery {
    fn default() -> Self {
        PruneEvery::Every(Duration::from_secs(7 * 86_400))
    }
}

impl<'de> Deserialize<'de> for PruneEvery {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        if t.trim() == "never" {
            return Ok(PruneEvery::Never);
        }
        parse_duration(&t)
            .map(PruneEvery::Every)
            .map_err(serde::de::Error::custom)
    }
}

/// `verify = "…"`, parsed into a [`DumpKind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DumpKindName(pub DumpKind);

impl<'de> Deserialize<'de> for DumpKindName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let t = String::deserialize(d)?;
        t.parse::<DumpKind>()
            .map(DumpKindName)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses `90`, `90s`, `30m`, `2h`, `1d` (whole numbers).
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 30m, 2h or 1d"))?;
    let secs = match unit.trim() {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{s:?} is not a duration like 30s, 30m, 2h or 1d")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

impl Config {
    /// Reads and validates the file at `path`. Errors name the file, the line and the key.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            line: None,
            message: format!("cannot read it: {e}"),
        })?;
        Config::parse(&text).map_err(|(line, message)| Error::Config {
            path: path.to_path_buf(),
            line,
            message,
        })
    }

    /// Parses and validates a configuration; an error is its line (1-based, when known) and
    /// a one-line message.
    pub fn parse(text: &str) -> std::result::Result<Config, (Option<usize>, String)> {
        let c: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            (line, e.message().trim().replace('\n', " "))
        })?;
        c.validate(text)?;
        Ok(c)
    }

    /// Checks what serde cannot: each series has exactly one source, names are usable.
    fn validate(&self, text: &str) -> std::result::Result<(), (Option<usize>, String)> {
        for (name, s) in &self.series {
            let line = line_of(text, &format!("[series.{name}]"))
                .or_else(|| line_of(text, &format!("[series.\"{name}\"]")));
            let fail = |m: String| Err((line, m));
            if name.trim().is_empty() || name.contains('/') {
                return fail(format!(
                    "series name {name:?} must be non-empty and without `/`"
                ));
            }
            match (&s.command, &s.paths) {
                (None, None) => {
                    return fail(format!("series `{name}` needs `command` or `paths`"));
                }
                (Some(_), Some(_)) => {
                    return fail(format!(
                        "series `{name}` has both `command` and `paths`; give one"
                    ));
                }
                (Some(c), None) if c.is_empty() || c[0].is_empty() => {
                    return fail(format!("series `{name}`: `command` is empty"));
                }
                (None, Some(p)) if p.is_empty() => {
                    return fail(format!("series `{name}`: `paths` is empty"));
                }
                _ => {}
            }
            if s.paths.is_some()
                && (s.verify.is_some_and(|v| v.0 != DumpKind::None)
                    || s.timeout.is_some()
                    || s.stall_timeout.is_some())
            {
                return fail(format!(
                    "series `{name}`: `verify`, `timeout` and `stall_timeout` apply to a `command`, not to `paths`"
                ));
            }
            if !s.exclude.is_empty() && s.paths.is_none() {
                return fail(format!("series `{name}`: `exclude` applies to `paths`"));
            }
            if s.drill
                .as_ref()
                .is_some_and(|d| d.is_empty() || d[0].is_empty())
            {
                return fail(format!("series `{name}`: `drill` is empty"));
            }
            if s.keep.as_ref().is_some_and(|k| k.policy().is_empty()) {
                return fail(format!(
                    "series `{name}`: `keep` has no rule (give last, hourly, daily, weekly, monthly, yearly or within)"
                ));
            }
            if s.compression.is_some_and(|l| !(-7..=22).contains(&l)) {
                return fail(format!(
                    "series `{name}`: `compression` must be a zstd level from -7 to 22"
                ));
            }
        }
        Ok(())
    }

    /// The series called `name`.
    pub fn series(&self, name: &str) -> Result<&SeriesConfig> {
        self.series.get(name).ok_or_else(|| {
            let known: Vec<&str> = self.series.keys().map(String::as_str).collect();
            Error::InvalidArgument(if known.is_empty() {
                format!("no series `{name}`: the configuration defines none")
            } else {
                format!(
                    "no series `{name}` in the configuration (it has: {})",
                    known.join(", ")
                )
            })
        })
    }
}

/// The 1-based line on which `needle` starts a line, if any.
fn line_of(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
[repository]
url = "/backups/repo"
password_file = "/etc/larder/password"

[series.shop-db]
command = ["pg_dump", "-Fc", "-Z0", "shop"]
verify = "pg_dump_custom"
timeout = "2h"
keep = { daily = 30, weekly = 12, monthly = 12 }
max_age = "25h"
drill = ["pg_restore", "--list"]

[series.etc]
paths = ["/etc"]
exclude = ["*.swp"]

[metrics]
textfile = "/var/lib/node_exporter/textfile/larder.prom"

[notify]
slack = ["https://hooks.slack.com/services/T/B/X"]
healthchecks = "https://hc-ping.com/uuid"
"#;

    #[test]
    fn the_documented_example_parses() {
        let c = Config::parse(EXAMPLE).unwrap();
        assert_eq!(c.repository.url.as_deref(), Some("/backups/repo"));
        let s = c.series("shop-db").unwrap();
        assert_eq!(s.verify, Some(DumpKindName(DumpKind::PgDumpCustom)));
        assert_eq!(s.timeout, Some(Span(Duration::from_secs(7200))));
        assert_eq!(s.keep.as_ref().unwrap().daily, Some(30));
        assert_eq!(s.max_age, Some(Span(Duration::from_secs(25 * 3600))));
        assert_eq!(c.series.len(), 2);
        assert_eq!(c.notify.timeout, Span(Duration::from_secs(10)));
        assert_eq!(c.notify.on, NotifyOn::Failure);
        assert_eq!(c.repository.prune_every, PruneEvery::default());
        assert!(c.series("nope").is_err());
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let text = EXAMPLE.replace("max_age =", "max_agee =");
        let (line, msg) = Config::parse(&text).unwrap_err();
        assert_eq!(line, Some(11), "{msg}");
        assert!(msg.contains("max_agee"), "{msg}");
        assert!(!msg.contains('\n'));

        let (line, msg) = Config::parse("[repository]\nurl = 1\n").unwrap_err();
        assert_eq!(line, Some(2), "{msg}");
        let (line, msg) = Config::parse("[repostory]\n").unwrap_err();
        assert_eq!(line, Some(1), "{msg}");
        assert!(msg.contains("repostory"), "{msg}");
        let (_, msg) =
            Config::parse("[series.a]\ncommand=[\"x\"]\nverify = \"pgdump\"\n").unwrap_err();
        assert!(msg.contains("pgdump"), "{msg}");
        let (_, msg) =
            Config::parse("[series.a]\ncommand=[\"x\"]\ntimeout = \"2 weeks\"\n").unwrap_err();
        assert!(msg.contains("2 weeks"), "{msg}");
    }

    #[test]
    fn series_are_validated_with_their_line() {
        let (line, msg) = Config::parse("\n[series.a]\ntags = []\n").unwrap_err();
        assert_eq!(line, Some(2));
        assert!(msg.contains("`command` or `paths`"), "{msg}");
        let (_, msg) =
            Config::parse("[series.a]\npaths = [\"/x\"]\nverify = \"pg_dump\"\n").unwrap_err();
        assert!(msg.contains("apply to a `command`"), "{msg}");
        let c = Config::parse("[repository]\nprune_every = \"never\"\n").unwrap();
        assert_eq!(c.repository.prune_every, PruneEvery::Never);
        assert_eq!(
            Config::parse("[series.a]\ncommand=[\"x\"]\ntimeout = 90\n")
                .unwrap()
                .series["a"]
                .timeout,
            Some(Span(Duration::from_secs(90)))
        );
    }
}
