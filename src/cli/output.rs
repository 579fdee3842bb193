//! Rendering: human text on a terminal, JSON with `--json`; progress bars (indicatif) only
//! when stderr is a terminal; log events (`tracing`) on stderr, filtered by `RUST_LOG` or
//! `-q`/`-v`.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, WeakProgressBar};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Layer as _, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Human size: `1.23 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

/// Human rate in MB/s (decimal, as benchmarks report it).
pub fn rate(n: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    per_sec(n as f64 / secs)
}

/// A rate in bytes per second, in MB/s like [`rate`].
fn per_sec(bytes_per_sec: f64) -> String {
    if bytes_per_sec.is_finite() {
        format!("{:.0} MB/s", bytes_per_sec / 1e6)
    } else {
        "-".into()
    }
}

/// Prints a JSON value on stdout. An object gains `requests`: what this run asked of the
/// repository's storage (PUT/GET/LIST/DELETE and bytes), unless it has that field already.
pub fn json(v: &serde_json::Value) -> anyhow::Result<()> {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        o.entry("requests")
            .or_insert(serde_json::to_value(super::requests().snapshot())?);
    }
    outln!("{}", serde_json::to_string_pretty(&v)?)?;
    Ok(())
}

/// `2026-11-21 02:00:13` in the local time zone: how every listing shows a time.
pub fn local_time(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// One line: what this run asked of the repository's storage.
pub fn requests_line() -> String {
    let r = super::requests().snapshot();
    format!(
        "requests: {} PUT ({}), {} GET ({}), {} LIST, {} DELETE",
        r.put,
        bytes(r.bytes_up),
        r.get,
        bytes(r.bytes_down),
        r.list,
        r.delete
    )
}

/// Counts bytes and, on a terminal, draws them: a bar with ETA once the total is known
/// ([`TermProgress::set_total`]), else a spinner with bytes, rate and elapsed time.
/// Elsewhere it draws nothing at all (indicatif's hidden target).
pub struct TermProgress {
    bar: ProgressBar,
    /// Stored bytes added to the repository (backup only; shown after "read").
    added: Arc<AtomicU64>,
    verb: &'static str,
    /// Whether the bar draws on stderr (and so log lines must be printed around it).
    drawing: bool,
}

/// The bar on screen, if any: log lines suspend it so that they do not run through it.
static DRAWN: Mutex<Option<WeakProgressBar>> = Mutex::new(None);

impl larder::progress::Progress for TermProgress {
    fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }
    fn added(&self, n: u64) {
        self.added.fetch_add(n, Ordering::Relaxed);
    }
}

impl TermProgress {
    /// Starts drawing `verb` (`read`, `restored`, …) if stderr is a terminal and `enabled`
    /// (not `--quiet`, not `--json`).
    pub fn start(verb: &'static str, enabled: bool) -> Arc<Self> {
        let drawing = enabled && std::io::stderr().is_terminal();
        let target = if drawing {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        let added = Arc::new(AtomicU64::new(0));
        let bar = ProgressBar::with_draw_target(None, target).with_style(progress_style(
            verb,
            false,
            added.clone(),
        ));
        if drawing {
            // Redraws while no bytes arrive (a producer thinking, a slow upload).
            bar.enable_steady_tick(Duration::from_millis(100));
            if let Ok(mut d) = DRAWN.lock() {
                *d = Some(bar.downgrade());
            }
        }
        Arc::new(Self {
            bar,
            added,
            verb,
            drawing,
        })
    }

    /// The operation will count `total` bytes (a stream restore knows its size): the line
    /// becomes a bar with percentage and ETA.
    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
        self.bar
            .set_style(progress_style(self.verb, true, self.added.clone()));
    }

    /// Stops drawing and clears the line; later counts are not drawn.
    pub fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
        if self.drawing {
            self.bar.set_draw_target(ProgressDrawTarget::hidden());
            if let Ok(mut d) = DRAWN.lock() {
                *d = None;
            }
        }
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        // An error return skips the caller's `finish`; the line must not stay behind.
        self.finish();
    }
}

/// The line for `verb`: with a known total a bar, percentage and ETA, otherwise a spinner
/// and the elapsed time; both with bytes, rate and, for a backup, bytes added.
fn progress_style(verb: &str, total: bool, added: Arc<AtomicU64>) -> ProgressStyle {
    let added_part = if verb == "read" {
        ", {added} added"
    } else {
        ""
    };
    let template = if total {
        format!(
            "{{bar:30}} {{percent:>3}}% {{bytes}}/{{total_bytes}} {verb}{added_part}, {{rate}}, ETA {{eta}}"
        )
    } else {
        format!("{{spinner}} {{bytes}} {verb}{added_part}, {{rate}}, {{elapsed}}")
    };
    ProgressStyle::with_template(&template)
        .expect("progress templates are built from constants and parse")
        .progress_chars("=> ")
        .with_key(
            "added",
            move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = w.write_str(&bytes(added.load(Ordering::Relaxed)));
            },
        )
        // MB/s like the summaries; indicatif's own estimate, which its ETA uses too.
        .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&per_sec(s.per_sec()));
        })
}

/// The log level `-q` / `-v` ask for: `warn` by default, `error` with `-q`, then `info`,
/// `debug` and `trace` for `-v`, `-vv`, `-vvv` (and more).
pub fn log_level(quiet: bool, verbose: u8) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::ERROR,
        (false, 0) => LevelFilter::WARN,
        (false, 1) => LevelFilter::INFO,
        (false, 2) => LevelFilter::DEBUG,
        (false, _) => LevelFilter::TRACE,
    }
}

/// What to log: the directives in `rust_log` (`RUST_LOG` syntax, invalid ones ignored) if
/// any, else everything at `level` and above.
pub fn log_filter(rust_log: Option<&str>, level: LevelFilter) -> EnvFilter {
    EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(rust_log.unwrap_or_default())
}

/// Sends `tracing` events (the library's and its dependencies') to stderr, filtered by
/// `RUST_LOG` if set, else by `level` ([`log_level`]). Timestamps and colour only on a
/// terminal: cron mail and the journal stamp lines themselves.
pub fn init_logging(level: LevelFilter) {
    let tty = std::io::stderr().is_terminal();
    let colour = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), level);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(|| LogWriter)
        .with_ansi(colour);
    let layer = if tty {
        layer.boxed()
    } else {
        layer.without_time().boxed()
    };
    // Fails only if a subscriber is set already, which leaves logging working.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(layer)
        .try_init();
}

/// Stderr, with the progress bar (if one is drawn) lifted off the screen while a log line
/// is written.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_all(buf)?;
        Ok(buf.len())
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let bar = DRAWN
            .lock()
            .ok()
            .and_then(|d| d.as_ref().and_then(WeakProgressBar::upgrade));
        match bar {
            Some(bar) => bar.suspend(|| std::io::stderr().write_all(buf)),
            None => std::io::stderr().write_all(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbosity_maps_to_a_level() {
        assert_eq!(log_level(false, 0), LevelFilter::WARN);
        assert_eq!(log_level(false, 1), LevelFilter::INFO);
        assert_eq!(log_level(false, 2), LevelFilter::DEBUG);
        assert_eq!(log_level(false, 3), LevelFilter::TRACE);
        assert_eq!(log_level(false, 9), LevelFilter::TRACE);
        assert_eq!(log_level(true, 0), LevelFilter::ERROR);
    }

    #[test]
    fn rust_log_wins_over_the_level() {
        assert_eq!(log_filter(None, LevelFilter::INFO).to_string(), "info");
        assert_eq!(
            log_filter(Some(""), LevelFilter::DEBUG).to_string(),
            "debug"
        );
        assert_eq!(
            log_filter(Some("larder=debug"), LevelFilter::WARN).to_string(),
            "larder=debug"
        );
        // An invalid directive is dropped, not fatal; the valid ones still apply.
        assert_eq!(
            log_filter(Some("larder=bogus,larder::repo=trace"), LevelFilter::WARN).to_string(),
            "larder::repo=trace"
        );
    }

    #[test]
    fn progress_templates_parse() {
        for verb in ["read", "restored", "verified", "copied", "repacked"] {
            for total in [false, true] {
                let _ = progress_style(verb, total, Arc::default());
            }
        }
    }

    #[test]
    fn hidden_progress_still_counts() {
        use larder::progress::Progress as _;
        let p = TermProgress::start("read", false);
        p.bytes(5);
        p.bytes(7);
        p.added(3);
        p.set_total(100);
        assert_eq!(p.bar.position(), 12);
        assert_eq!(p.added.load(Ordering::Relaxed), 3);
        assert!(p.bar.is_hidden());
        p.finish();
    }
}
