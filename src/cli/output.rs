//! Rendering: human text on a terminal, JSON with `--json`; progress lines only when
//! stderr is a terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

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
    format!("{:.0} MB/s", n as f64 / 1e6 / secs)
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

/// Counts bytes and, on a terminal, redraws one status line four times a second.
pub struct TermProgress {
    bytes: AtomicU64,
    added: AtomicU64,
    done: AtomicBool,
    /// Whether a ticker draws on stderr (and so has a line to clear at the end).
    drawing: bool,
    verb: &'static str,
    started: Instant,
}

impl larder::progress::Progress for TermProgress {
    fn bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn added(&self, n: u64) {
        self.added.fetch_add(n, Ordering::Relaxed);
    }
}

impl TermProgress {
    /// Starts the ticker if stderr is a terminal and `enabled`.
    pub fn start(verb: &'static str, enabled: bool) -> Arc<Self> {
        let drawing = enabled && std::io::stderr().is_terminal();
        let p = Arc::new(Self {
            bytes: AtomicU64::new(0),
            added: AtomicU64::new(0),
            done: AtomicBool::new(false),
            drawing,
            verb,
            started: Instant::now(),
        });
        if drawing {
            let t = p.clone();
            std::thread::spawn(move || {
                while !t.done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(250));
                    if t.done.load(Ordering::Relaxed) {
                        break;
                    }
                    let b = t.bytes.load(Ordering::Relaxed);
                    let a = t.added.load(Ordering::Relaxed);
                    let secs = t.started.elapsed().as_secs_f64();
                    let added = if t.verb == "read" {
                        format!(", {} added", bytes(a))
                    } else {
                        String::new()
                    };
                    eprint!("\r\x1b[2K{} {}{added}, {}", bytes(b), t.verb, rate(b, secs));
                }
            });
        }
        p
    }

    /// Stops the ticker and clears its line.
    pub fn finish(&self) {
        if !self.done.swap(true, Ordering::Relaxed) && self.drawing {
            eprint!("\r\x1b[2K");
        }
    }
}

impl Drop for TermProgress {
    fn drop(&mut self) {
        self.finish();
    }
}
