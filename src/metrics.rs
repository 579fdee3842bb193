//! The Prometheus textfile (`--metrics-file`, `[metrics] textfile`): a [`RepoStatus`] in the
//! text exposition format, for node_exporter's textfile collector. It sits after the data
//! path: `larder run` and `larder drill` record their event, compute the status from the
//! catalog, and rewrite the file.
//!
//! Every metric is a gauge (a state, not a running total). Per-series gauges carry the labels
//! `repository` and `series`; repository-wide ones only `repository`, so files of several
//! repositories can sit in one collector directory. Run and drill results come from the
//! events in the repository (`SeriesStatus::last_run`, `last_drill`), so a job on another
//! host shows up here too. The file is replaced atomically: a reader sees the old file or the
//! new one, never a part.

use std::fmt::{self, Write as _};
use std::fs::Permissions;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::status::{RepoStatus, SeriesStatus};

/// A sample's value.
#[derive(Debug, Clone, Copy)]
enum Value {
    /// Counts and byte sizes, printed exactly.
    Int(u64),
    /// Seconds, ratios.
    Float(f64),
}

impl Value {
    /// A point in time as Unix seconds (millisecond precision).
    fn time(t: jiff::Timestamp) -> Value {
        Value::Float(t.as_millisecond() as f64 / 1000.0)
    }

    fn flag(b: bool) -> Value {
        Value::Int(u64::from(b))
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(n) => write!(f, "{n}"),
            // Rust's float Display never uses an exponent; the format spells the
            // non-finite values this way (Go's ParseFloat).
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x.is_infinite() => {
                f.write_str(if x > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A per-series gauge: name, help, and its value for a series (`None`: no sample).
type SeriesGauge = (
    &'static str,
    &'static str,
    fn(&SeriesStatus) -> Option<Value>,
);

/// The per-series gauges, in the order they are written.
const SERIES_GAUGES: &[SeriesGauge] = &[
    (
        "larder_last_success_timestamp_seconds",
        "Start time of the newest good snapshot of the series, Unix seconds.",
        |s| s.last_good.as_ref().map(|g| Value::time(g.time)),
    ),
    (
        "larder_last_run_success",
        "Whether the newest larder run of the series succeeded (1) or failed (0).",
        |s| s.last_run.as_ref().map(|r| Value::flag(r.ok)),
    ),
    (
        "larder_last_run_timestamp_seconds",
        "Start time of the newest larder run of the series, Unix seconds.",
        |s| s.last_run.as_ref().map(|r| Value::time(r.time)),
    ),
    (
        "larder_last_run_duration_seconds",
        "Duration of the newest larder run of the series.",
        |s| s.last_run.as_ref().map(|r| Value::Float(r.duration)),
    ),
    (
        "larder_last_run_read_bytes",
        "Bytes the newest larder run of the series read from its source.",
        |s| s.last_run.as_ref().map(|r| Value::Int(r.bytes_read)),
    ),
    (
        "larder_last_run_added_bytes",
        "Stored bytes the newest larder run of the series added to the repository.",
        |s| s.last_run.as_ref().map(|r| Value::Int(r.bytes_added)),
    ),
    (
        "larder_snapshot_age_seconds",
        "Age of the newest good snapshot when this file was written; prefer time() - larder_last_success_timestamp_seconds.",
        |s| s.age_seconds.map(Value::Float),
    ),
    (
        "larder_snapshot_size_bytes",
        "Bytes read from the source by the newest good snapshot.",
        |s| s.last_good.as_ref().map(|g| Value::Int(g.size)),
    ),
    (
        "larder_snapshots",
        "Good snapshots of the series (neither quarantined nor damaged).",
        |s| Some(Value::Int(s.good_snapshots)),
    ),
    (
        "larder_quarantined_snapshots",
        "Quarantined snapshots of the series.",
        |s| Some(Value::Int(s.quarantined_snapshots)),
    ),
    (
        "larder_stale",
        "Whether the newest good snapshot is older than max_age, or there is none while max_age is set (1) or not (0).",
        |s| Some(Value::flag(s.stale)),
    ),
    (
        "larder_max_age_seconds",
        "The age limit (max_age) of the series.",
        |s| s.max_age_seconds.map(Value::Float),
    ),
    (
        "larder_last_drill_success",
        "Whether the newest restore drill of the series passed (1) or failed (0).",
        |s| s.last_drill.as_ref().map(|d| Value::flag(d.ok)),
    ),
    (
        "larder_last_drill_timestamp_seconds",
        "Start time of the newest restore drill of the series, Unix seconds.",
        |s| s.last_drill.as_ref().map(|d| Value::time(d.time)),
    ),
    (
        "larder_last_drill_duration_seconds",
        "Duration of the newest restore drill of the series.",
        |s| s.last_drill.as_ref().map(|d| Value::Float(d.duration)),
    ),
    (
        "larder_warnings",
        "Warnings recorded on the newest good snapshot of the series (short dump, compressed input).",
        |s| {
            s.last_good
                .as_ref()
                .map(|g| Value::Int(g.warnings.len() as u64))
        },
    ),
];

/// Renders `status` in the Prometheus text exposition format (version 0.0.4): each family's
/// `# HELP` and `# TYPE` line followed by all its samples, one family after another, ending
/// in a newline. `repository` is the value of the `repository` label (the repository's
/// location as configured; it must carry no credentials). A family without a sample (no
/// drill yet, no limit set) is left out. Render the whole repository's status, not only the
/// series of the job that just ran: jobs sharing a repository can then share one file.
pub fn render(repository: &str, status: &RepoStatus) -> String {
    let mut out = Exposition::new(repository);
    for (name, help, value) in SERIES_GAUGES {
        out.gauge(
            name,
            help,
            status
                .series
                .iter()
                .filter_map(|s| value(s).map(|v| (Some(s.series.as_str()), v))),
        );
    }
    let repo = |v: Value| [(None, v)];
    out.gauge(
        "larder_repository_size_bytes",
        "Stored bytes of all packs in the repository index.",
        repo(Value::Int(status.stored_bytes)),
    );
    out.gauge(
        "larder_repository_snapshots",
        "Snapshots in the repository, of every series, good or not.",
        repo(Value::Int(status.snapshots)),
    );
    out.gauge(
        "larder_repository_packs",
        "Packs in the repository index.",
        repo(Value::Int(status.packs)),
    );
    out.gauge(
        "larder_last_prune_timestamp_seconds",
        "Start time of the newest completed prune of the repository, Unix seconds.",
        status
            .last_prune
            .as_ref()
            .map(|p| (None, Value::time(p.time))),
    );
    out.gauge(
        "larder_metrics_generated_timestamp_seconds",
        "When larder computed the status in this file, Unix seconds.",
        repo(Value::time(status.now)),
    );
    out.text
}

/// The exposition being built.
struct Exposition<'a> {
    text: String,
    repository: &'a str,
}

impl<'a> Exposition<'a> {
    fn new(repository: &'a str) -> Self {
        Exposition {
            text: String::new(),
            repository,
        }
    }

    /// One gauge family: its HELP and TYPE lines, then a sample per `(series, value)`; nothing
    /// at all without samples.
    fn gauge<'s>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = (Option<&'s str>, Value)>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        // Writing to a String cannot fail.
        let _ = writeln!(self.text, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE {name} gauge");
        for (series, value) in samples {
            let _ = write!(
                self.text,
                "{name}{{repository=\"{}\"",
                escape_label(self.repository)
            );
            if let Some(series) = series {
                let _ = write!(self.text, ",series=\"{}\"", escape_label(series));
            }
            let _ = writeln!(self.text, "}} {value}");
        }
    }
}

/// A label value as the format quotes it: backslash, double quote and newline escaped.
fn escape_label(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// HELP text as the format wants it: backslash and newline escaped (quotes are literal).
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Replaces the file at `path` with `text` atomically: a temporary file beside it (a
/// dot-name not ending in `.prom`, which the textfile collector skips), fsynced, renamed over
/// `path`, then the directory fsynced. The file is world-readable (0644), as node_exporter
/// usually runs as another user. Fails with [`Error::LocalIo`] naming `path`; on failure the
/// old file is left as it was and no temporary file remains.
pub fn write_textfile(path: &Path, text: &str) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let io = |what: &'static str| {
        move |source| Error::LocalIo {
            what,
            path: path.to_path_buf(),
            source,
        }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".larder-metrics-")
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o644))
        .tempfile_in(&dir)
        .map_err(io("cannot create a temporary file beside the metrics file"))?;
    tmp.write_all(text.as_bytes())
        .map_err(io("cannot write the metrics file"))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("cannot fsync the metrics file"))?;
    tmp.persist(path)
        .map_err(|e| io("cannot rename into place the metrics file")(e.error))?;
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io("cannot fsync the directory of the metrics file"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::{EventId, SnapshotId};
    use crate::status::{EventSummary, SnapshotSummary};

    fn ts(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    fn event(time: &str, ok: bool, duration: f64, read: u64, added: u64) -> EventSummary {
        EventSummary {
            id: EventId([7; 32]),
            time: ts(time),
            host: "db1".into(),
            ok,
            duration,
            snapshot: ok.then_some(SnapshotId([1; 32])),
            error: (!ok).then(|| "source command `pg_dump` exited with status 1".into()),
            bytes_read: read,
            bytes_added: added,
        }
    }

    fn healthy() -> SeriesStatus {
        SeriesStatus {
            series: "shop-db".into(),
            hosts: vec!["db1".into()],
            good_snapshots: 30,
            quarantined_snapshots: 1,
            last_good: Some(SnapshotSummary {
                id: SnapshotId([1; 32]),
                time: ts("2025-03-01T02:00:00Z"),
                host: "db1".into(),
                size: 5_000_000_000,
                bytes_added: 120_000_000,
                dedup_ratio: Some(41.5),
                duration: 312.25,
                warnings: vec!["input looks compressed".into()],
                quarantine: None,
            }),
            last_bad: None,
            age_seconds: Some(25_200.0),
            max_age_seconds: Some(90_000.0),
            stale: false,
            last_run: Some(event(
                "2025-03-01T02:00:00Z",
                true,
                312.25,
                5_000_000_000,
                120_000_000,
            )),
            last_drill: Some(event("2025-02-28T04:30:00.5Z", false, 60.0, 0, 0)),
            trend: vec![4_900_000_000, 5_000_000_000],
        }
    }

    /// A configured series that never ran, with a name that needs escaping.
    fn never_ran() -> SeriesStatus {
        SeriesStatus {
            series: "odd \"name\" \\ with\nnewline".into(),
            hosts: vec![],
            good_snapshots: 0,
            quarantined_snapshots: 0,
            last_good: None,
            last_bad: None,
            age_seconds: None,
            max_age_seconds: Some(3600.0),
            stale: true,
            last_run: None,
            last_drill: None,
            trend: vec![],
        }
    }

    fn status() -> RepoStatus {
        RepoStatus {
            now: ts("2025-03-01T09:00:00Z"),
            series: vec![healthy(), never_ran()],
            snapshots: 31,
            packs: 420,
            stored_bytes: 9_876_543_210,
            last_prune: Some(EventSummary {
                snapshot: None,
                ..event("2025-02-23T03:00:00Z", true, 40.0, 0, 0)
            }),
        }
    }

    const SHOP: &str = "{repository=\"/backups/repo\",series=\"shop-db\"}";
    const ODD: &str =
        "{repository=\"/backups/repo\",series=\"odd \\\"name\\\" \\\\ with\\nnewline\"}";
    const REPO: &str = "{repository=\"/backups/repo\"}";

    #[test]
    fn renders_the_status() {
        let text = render("/backups/repo", &status());
        let lines: Vec<&str> = text.lines().collect();
        for want in [
            format!("larder_last_success_timestamp_seconds{SHOP} 1740794400"),
            format!("larder_last_run_success{SHOP} 1"),
            format!("larder_last_run_timestamp_seconds{SHOP} 1740794400"),
            format!("larder_last_run_duration_seconds{SHOP} 312.25"),
            format!("larder_last_run_read_bytes{SHOP} 5000000000"),
            format!("larder_last_run_added_bytes{SHOP} 120000000"),
            format!("larder_snapshot_age_seconds{SHOP} 25200"),
            format!("larder_snapshot_size_bytes{SHOP} 5000000000"),
            format!("larder_snapshots{SHOP} 30"),
            format!("larder_snapshots{ODD} 0"),
            format!("larder_quarantined_snapshots{SHOP} 1"),
            format!("larder_quarantined_snapshots{ODD} 0"),
            format!("larder_stale{SHOP} 0"),
            format!("larder_stale{ODD} 1"),
            format!("larder_max_age_seconds{SHOP} 90000"),
            format!("larder_max_age_seconds{ODD} 3600"),
            format!("larder_last_drill_success{SHOP} 0"),
            format!("larder_last_drill_timestamp_seconds{SHOP} 1740717000.5"),
            format!("larder_last_drill_duration_seconds{SHOP} 60"),
            format!("larder_warnings{SHOP} 1"),
            format!("larder_repository_size_bytes{REPO} 9876543210"),
            format!("larder_repository_snapshots{REPO} 31"),
            format!("larder_repository_packs{REPO} 420"),
            format!("larder_last_prune_timestamp_seconds{REPO} 1740279600"),
            format!("larder_metrics_generated_timestamp_seconds{REPO} 1740819600"),
        ] {
            assert!(
                lines.contains(&want.as_str()),
                "missing {want:?} in\n{text}"
            );
        }
        // A series that never ran has no run, drill, age or size samples.
        for absent in [
            "larder_last_success_timestamp_seconds",
            "larder_last_run_success",
            "larder_snapshot_age_seconds",
            "larder_snapshot_size_bytes",
            "larder_last_drill_success",
            "larder_warnings",
        ] {
            assert!(!text.contains(&format!("{absent}{ODD}")), "{absent}");
        }
        assert!(text.contains(
            "# HELP larder_stale Whether the newest good snapshot is older than max_age"
        ));
        assert!(text.contains("# TYPE larder_repository_size_bytes gauge\n"));
        assert!(text.ends_with('\n'));
        assert!(!text.contains("_total"), "gauges are not counters");
    }

    #[test]
    fn families_without_samples_are_left_out() {
        let mut st = status();
        st.series = vec![never_ran()];
        st.last_prune = None;
        let text = render("r", &st);
        assert!(!text.contains("larder_last_drill_success"));
        assert!(!text.contains("larder_last_prune_timestamp_seconds"));
        assert!(text.contains("# TYPE larder_snapshots gauge"));

        st.series.clear();
        let text = render("r", &st);
        assert!(!text.contains("larder_snapshots "));
        assert!(text.contains("larder_repository_snapshots{repository=\"r\"} 31\n"));
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape_label("x\ny"), "x\\ny");
        assert_eq!(
            escape_label("s3://bucket/pre fix é"),
            "s3://bucket/pre fix é"
        );
        let text = render("C:\\repo \"x\"\n", &status());
        assert!(
            text.contains("{repository=\"C:\\\\repo \\\"x\\\"\\n\"}"),
            "{text}"
        );
        let text = render("/backups/repo", &status());
        assert!(text.contains(&format!("larder_stale{ODD} 1\n")));
        assert_eq!(escape_help("a\\b\nc \"q\""), "a\\\\b\\nc \"q\"");
    }

    #[test]
    fn non_finite_values_use_the_formats_spelling() {
        assert_eq!(Value::Float(f64::NAN).to_string(), "NaN");
        assert_eq!(Value::Float(f64::INFINITY).to_string(), "+Inf");
        assert_eq!(Value::Float(f64::NEG_INFINITY).to_string(), "-Inf");
        assert_eq!(Value::Float(1e21).to_string(), "1000000000000000000000");
        assert_eq!(Value::Int(u64::MAX).to_string(), "18446744073709551615");
    }

    /// A sample line's metric name, or why the line is not `name{labels} value`.
    fn parse_sample(line: &str) -> std::result::Result<&str, String> {
        fn name_len(s: &str, colon: bool) -> usize {
            s.char_indices()
                .take_while(|&(i, c)| {
                    c == '_'
                        || c.is_ascii_alphabetic()
                        || (colon && c == ':')
                        || (i > 0 && c.is_ascii_digit())
                })
                .count()
        }
        let n = name_len(line, true);
        if n == 0 {
            return Err("no metric name".into());
        }
        let (name, mut rest) = line.split_at(n);
        if let Some(mut labels) = rest.strip_prefix('{') {
            loop {
                let l = name_len(labels, false);
                if l == 0 {
                    return Err(format!("bad label name at {labels:?}"));
                }
                let mut chars = labels[l..]
                    .strip_prefix("=\"")
                    .ok_or("no =\" after a label name")?
                    .char_indices();
                let end = loop {
                    match chars.next() {
                        Some((_, '\\')) => match chars.next() {
                            Some((_, '\\' | '"' | 'n')) => {}
                            other => return Err(format!("bad escape {other:?}")),
                        },
                        Some((i, '"')) => break i,
                        Some((_, '\n')) => return Err("raw newline in a label value".into()),
                        Some(_) => {}
                        None => return Err("unterminated label value".into()),
                    }
                };
                labels = &labels[l + 2 + end + 1..];
                if let Some(r) = labels.strip_prefix(',') {
                    labels = r;
                } else if let Some(r) = labels.strip_prefix('}') {
                    rest = r;
                    break;
                } else {
                    return Err(format!("expected , or }} at {labels:?}"));
                }
            }
        }
        let value = rest.strip_prefix(' ').ok_or("no space before the value")?;
        if !matches!(value, "NaN" | "+Inf" | "-Inf") && value.parse::<f64>().is_err() {
            return Err(format!("bad value {value:?}"));
        }
        Ok(name)
    }

    #[test]
    fn every_line_parses_and_families_are_contiguous() {
        let text = render("/backups/repo \"a\"\\", &status());
        let mut typed: Vec<&str> = Vec::new();
        let mut current = "";
        let mut samples = 0;
        for line in text.lines() {
            if let Some(help) = line.strip_prefix("# HELP ") {
                let name = help.split(' ').next().unwrap();
                assert!(!typed.contains(&name), "family {name} appears twice");
                current = name;
            } else if let Some(ty) = line.strip_prefix("# TYPE ") {
                assert_eq!(ty, format!("{current} gauge"));
                typed.push(current);
            } else {
                let name = parse_sample(line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
                assert_eq!(name, current, "sample outside its family: {line:?}");
                assert_eq!(typed.last(), Some(&name));
                assert!(name.starts_with("larder_"));
                samples += 1;
            }
        }
        // shop-db has all 16 per-series gauges, the series that never ran 4, and 5 are
        // repository-wide.
        assert_eq!(samples, 16 + 4 + 5);
        assert!(parse_sample("9bad 1").is_err());
        assert!(parse_sample("ok{a=\"x\"} one").is_err());
        assert!(parse_sample("ok{a=\"x\\q\"} 1").is_err());
        assert_eq!(parse_sample("ok_1:x{a=\"x\\\"\",b=\"\"} 1.5"), Ok("ok_1:x"));
    }

    #[test]
    fn write_textfile_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("larder.prom");
        std::fs::write(&path, "old\n").unwrap();

        write_textfile(&path, "new\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);

        // A reader racing the writer sees one whole version or the other, never a part.
        let a = "a".repeat(1 << 20);
        let b = "b".repeat(1 << 19);
        write_textfile(&path, &a).unwrap();
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            let reader = s.spawn(|| {
                let mut reads = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let got = std::fs::read_to_string(&path).unwrap();
                    assert!(got == a || got == b, "partial file of {} bytes", got.len());
                    reads += 1;
                }
                reads
            });
            for i in 0..20 {
                write_textfile(&path, if i % 2 == 0 { &b } else { &a }).unwrap();
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(reader.join().unwrap() > 0);
        });

        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("larder.prom")]);
    }

    #[test]
    fn write_textfile_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing-dir").join("larder.prom");
        let err = write_textfile(&path, "x\n").unwrap_err();
        assert!(matches!(err, Error::LocalIo { .. }), "{err:?}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}
