//! Stream sources: standard input, or a producer command larder runs itself.
//!
//! Producer mode: larder spawns the command with its stdout piped into the pipeline and its
//! stderr passed through, and writes a snapshot only if the whole stream was read and the
//! command exited 0 (invariant 3); a producer that fails after writing leaves a snapshot
//! explicitly marked quarantined. If larder fails first, or the producer passes its
//! `timeout` or `stall_timeout`, the producer's process group is killed and no snapshot is
//! written.

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::inspect::Inspector;
use super::{SnapshotOptions, SnapshotReport, snapshot_stream};
use crate::error::{Error, Result};
use crate::format::snapshot::{ProducerStatus, Source};
use crate::progress::Progress;
use crate::repo::Repo;

/// Snapshots standard input. larder cannot see the producer on the other side of the pipe,
/// so the producer status is recorded as unknown (README: use `set -o pipefail`, or better,
/// producer mode).
pub fn snapshot_stdin(
    repo: &mut Repo,
    opts: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    let inspector = Inspector::new(opts.verify);
    snapshot_stream(
        repo,
        std::io::stdin(),
        Source::Stdin,
        &inspector,
        |_| Ok(ProducerStatus::Unknown),
        opts,
        progress,
    )
}

/// How a process ended, in words.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        (None, None) => "ended abnormally".to_owned(),
    }
}

/// Runs `argv` and snapshots its standard output. The producer runs in its own process
/// group; when larder fails first, or the producer passes `opts.timeout` or writes nothing
/// for `opts.stall_timeout`, the whole group is sent SIGTERM and, after
/// [`KILL_GRACE`], SIGKILL. A timeout leaves no snapshot; a producer that fails on its own
/// after writing something leaves a quarantined one (`snapshot_stream`).
pub fn snapshot_command(
    repo: &mut Repo,
    argv: &[String],
    opts: &SnapshotOptions,
    progress: &dyn Progress,
) -> Result<SnapshotReport> {
    let cmd = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| Error::InvalidArgument("no source command given after `--`".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(if opts.stderr_tail.is_some() {
            Stdio::piped()
        } else {
            Stdio::inherit()
        })
        .process_group(0)
        .spawn()
        .map_err(|source| Error::SourceSpawn {
            cmd: cmd.clone(),
            source,
        })?;
    let relay = opts
        .stderr_tail
        .as_ref()
        .zip(child.stderr.take())
        .map(|(tail, err)| tail.relay(err));
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::InvalidArgument("the source command has no stdout".into()))?;
    let group = Group::of(&child);
    let inspector = Inspector::new(opts.verify);
    let watchdog = Watchdog::start(
        group,
        Some(inspector.clone()),
        opts.timeout,
        opts.stall_timeout,
    );
    let status = |stored: &Result<_>| {
        if stored.is_err() {
            // larder failed first: stop the producer rather than leave it writing into a
            // closed pipe.
            group.terminate();
        }
        let st = child.wait().map_err(|source| Error::SourceRead {
            what: format!("the status of `{cmd}`"),
            source,
        });
        if let Some(r) = relay {
            // The leader has exited: its last words are on their way. A background job that
            // still holds stderr open is not waited for beyond a second.
            let until = Instant::now() + Duration::from_secs(1);
            while !r.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        // A timeout fails the snapshot whatever the leader's status: a shell that exits 0
        // while its background job writes the stream must not make a cut-off stream good.
        if let Some(why) = watchdog.stop() {
            return Err(Error::SourceTimeout {
                cmd: cmd.clone(),
                why,
            });
        }
        let st = st?;
        Ok(match (st.code(), st.signal()) {
            (Some(code), _) => ProducerStatus::Exited { code },
            (None, Some(signal)) => ProducerStatus::Killed { signal },
            (None, None) => ProducerStatus::Exited { code: -1 },
        })
    };
    snapshot_stream(
        repo,
        stdout,
        Source::Command {
            argv: argv.to_vec(),
        },
        &inspector,
        status,
        opts,
        progress,
    )
}

/// The last bytes a child wrote to stderr, kept while they are passed through to larder's
/// own stderr: the log tail of a failure notification.
#[derive(Debug, Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    /// Bytes kept.
    pub const MAX: usize = 8 * 1024;

    /// Passes `from` through to stderr on a thread of its own, keeping its tail.
    pub(crate) fn relay(
        &self,
        mut from: impl std::io::Read + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let tail = self.0.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                let n = match from.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                let piece = buf.get(..n).unwrap_or_default();
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), piece);
                if let Ok(mut t) = tail.lock() {
                    t.extend_from_slice(piece);
                    if t.len() > 2 * Self::MAX {
                        let cut = t.len() - Self::MAX;
                        t.drain(..cut);
                    }
                }
            }
        })
    }

    /// The kept tail, lossy UTF-8, starting at a line boundary when one is near.
    pub fn text(&self) -> String {
        let t = match self.0.lock() {
            Ok(t) => t.clone(),
            Err(p) => p.into_inner().clone(),
        };
        let from = t.len().saturating_sub(Self::MAX);
        let mut s = t.get(from..).unwrap_or_default();
        if from > 0 {
            if let Some(nl) = s.iter().position(|&b| b == b'\n') {
                s = s.get(nl + 1..).unwrap_or_default();
            }
        }
        String::from_utf8_lossy(s).into_owned()
    }
}

/// How long a producer has between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(10);

/// A child's process group (the child was spawned with `process_group(0)`, so it leads
/// its own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group(Option<nix::unistd::Pid>);

impl Group {
    pub(crate) fn of(child: &std::process::Child) -> Self {
        Group(
            i32::try_from(child.id())
                .ok()
                .map(nix::unistd::Pid::from_raw),
        )
    }

    fn signal(self, sig: nix::sys::signal::Signal) -> bool {
        self.0
            .is_some_and(|pid| nix::sys::signal::killpg(pid, sig).is_ok())
    }

    /// SIGTERM now; SIGKILL after [`KILL_GRACE`] to whatever of the group is left, from a
    /// thread of its own so that the caller can go on waiting for the leader.
    pub(crate) fn terminate(self) {
        if self.signal(nix::sys::signal::Signal::SIGTERM) {
            std::thread::spawn(move || {
                std::thread::sleep(KILL_GRACE);
                self.signal(nix::sys::signal::Signal::SIGKILL);
            });
        }
    }
}

/// Watches a running child for `timeout` and (with an inspector of its output)
/// `stall_timeout`; terminates its process group when one passes.
pub(crate) struct Watchdog {
    stop: Option<crossbeam_channel::Sender<()>>,
    fired: Arc<Mutex<Option<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start(
        group: Group,
        inspector: Option<Inspector>,
        timeout: Option<Duration>,
        stall: Option<Duration>,
    ) -> Self {
        let fired = Arc::new(Mutex::new(None));
        if timeout.is_none() && stall.is_none() {
            return Watchdog {
                stop: None,
                fired,
                thread: None,
            };
        }
        let (tx, rx) = crossbeam_channel::bounded::<()>(0);
        let started = Instant::now();
        let shared = fired.clone();
        let thread = std::thread::spawn(move || {
            let tick = Duration::from_millis(200);
            loop {
                if rx.recv_timeout(tick).is_ok()
                    || matches!(
                        rx.try_recv(),
                        Err(crossbeam_channel::TryRecvError::Disconnected)
                    )
                {
                    return;
                }
                let why = match (timeout, stall) {
                    (Some(t), _) if started.elapsed() >= t => Some(format!(
                        "ran longer than its timeout ({})",
                        show_duration(t)
                    )),
                    (_, Some(s)) if inspector.as_ref().is_some_and(|i| i.idle() >= s) => Some(
                        format!("wrote nothing for {} (stall_timeout)", show_duration(s)),
                    ),
                    _ => None,
                };
                if let Some(why) = why {
                    if let Ok(mut f) = shared.lock() {
                        *f = Some(why);
                    }
                    group.terminate();
                    return;
                }
            }
        });
        Watchdog {
            stop: Some(tx),
            fired,
            thread: Some(thread),
        }
    }

    /// Stops watching; says why the child was killed, if it was.
    pub(crate) fn stop(mut self) -> Option<String> {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.fired.lock().ok().and_then(|mut f| f.take())
    }
}

/// `2h`, `10m`, `90s`: the way durations are written in flags and configuration.
pub fn show_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
