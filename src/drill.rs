//! Restore drills: restore a snapshot into a command that proves it usable
//! (`pg_restore --list`, a scratch database load, a checksum script).
//!
//! ```text
//! snapshot -> restore (every blob verified) -> drill command's stdin     (stream snapshot)
//! snapshot -> restore into a temporary directory -> drill command, cwd = that directory
//! ```
//!
//! A drill passes when every blob of the snapshot was read and verified and the command
//! exited 0. A command that stops reading early (`pg_restore --list` reads only the table of
//! contents) does not cut the verification short: the rest of the stream is still read and
//! verified, just not written to it.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::backup::source::{Group, Watchdog, describe};
use crate::error::{Error, ErrorKind, Result};
use crate::format::snapshot::{Root, Snapshot};
use crate::id::SnapshotId;
use crate::progress::Progress;
use crate::repo::Repo;
use crate::restore::dir::{Overwrite, TreeRestoreOptions, restore_tree};

/// How to drill.
#[derive(Debug, Clone)]
pub struct DrillOptions {
    /// The drill command and its arguments.
    pub command: Vec<String>,
    /// Kill the command (its process group) after this long; the drill fails.
    pub timeout: Option<Duration>,
    /// Pass the command's stdout through (default: discarded; its stderr always is passed).
    pub show_output: bool,
}

/// What a drill found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DrillReport {
    /// The snapshot restored.
    pub snapshot: SnapshotId,
    /// Whether the drill passed.
    pub ok: bool,
    /// Why it failed, as one line.
    pub error: Option<String>,
    /// Bytes restored and verified.
    pub bytes: u64,
    /// Seconds, restore and command together.
    pub duration: f64,
    /// Stream snapshots: bytes the command read before it closed its input (it may stop
    /// early; the rest was still verified).
    pub bytes_taken: u64,
    /// The failure was the snapshot's data (missing or corrupt), not the command.
    pub integrity: bool,
    /// Every blob of the snapshot was read and verified.
    pub verified: bool,
}

/// Restores `snap` into `opts.command`. Returns a report for a drill that ran, passed or
/// not; an error only when the drill could not be attempted at all (the command cannot be
/// started). An integrity failure is a failed drill whose `error` names the blob.
pub fn drill(
    repo: &Repo,
    id: SnapshotId,
    snap: &Snapshot,
    opts: &DrillOptions,
    progress: &dyn Progress,
) -> Result<DrillReport> {
    let started = Instant::now();
    let cmd = opts.command.join(" ");
    let (program, args) = opts
        .command
        .split_first()
        .ok_or_else(|| Error::InvalidArgument("the drill command is empty".into()))?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stderr(Stdio::inherit())
        .stdout(if opts.show_output {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .process_group(0);
    let scratch = match snap.root {
        Root::Stream { .. } => {
            command.stdin(Stdio::piped());
            None
        }
        Root::Tree { .. } => {
            let dir = tempfile::Builder::new()
                .prefix("larder-drill-")
                .tempdir()
                .map_err(|source| Error::LocalIo {
                    what: "cannot create a drill directory",
                    path: std::env::temp_dir(),
                    source,
                })?;
            command
                .stdin(Stdio::null())
                .current_dir(dir.path())
                .env("LARDER_DRILL_DIR", dir.path());
            Some(dir)
        }
    };

    // A tree is restored before the command starts; a stream is restored into it.
    let mut restored: Result<u64> = Ok(0);
    if let (Root::Tree { tree }, Some(dir)) = (snap.root, &scratch) {
        let topts = TreeRestoreOptions {
            target: dir.path().to_path_buf(),
            include: vec![],
            exclude: vec![],
            overwrite: Overwrite::Never,
            dry_run: false,
        };
        restored = restore_tree(repo, &tree, &topts, progress, &mut |_| {}).map(|s| s.bytes);
        if let Err(e) = restored {
            return Ok(DrillReport {
                snapshot: id,
                ok: false,
                integrity: e.kind() == ErrorKind::Integrity,
                verified: false,
                error: Some(e.to_string()),
                bytes: 0,
                duration: started.elapsed().as_secs_f64(),
                bytes_taken: 0,
            });
        }
    }
    let mut child = command.spawn().map_err(|source| Error::SourceSpawn {
        cmd: cmd.clone(),
        source,
    })?;
    let group = Group::of(&child);
    let watchdog = Watchdog::start(group, None, opts.timeout, None);
    let mut taken = 0;
    if let Some(stdin) = child.stdin.take() {
        let mut sink = DrillSink {
            child: Some(stdin),
            taken: 0,
        };
        restored = crate::restore::restore_stream(
            repo,
            snap,
            &mut sink,
            &format!("drill command `{cmd}`"),
            progress,
        )
        .map(|s| s.bytes);
        taken = sink.taken;
        drop(sink); // closes the command's stdin: end of stream
        if restored.is_err() {
            group.terminate();
        }
    }
    let status = child.wait();
    let fired = watchdog.stop();
    let bytes = restored.as_ref().map_or(0, |b| *b);
    let integrity = matches!(&restored, Err(e) if e.kind() == ErrorKind::Integrity);
    let verified = restored.is_ok();
    let error = match (restored, status, fired) {
        (Err(e), _, _) => Some(e.to_string()),
        (_, _, Some(why)) => Some(format!("drill command `{cmd}` {why} and was killed")),
        (_, Err(e), _) => Some(format!("waiting for drill command `{cmd}`: {e}")),
        (Ok(_), Ok(st), None) if !st.success() => {
            Some(format!("drill command `{cmd}` {}", describe(st)))
        }
        _ => None,
    };
    Ok(DrillReport {
        snapshot: id,
        ok: error.is_none(),
        error,
        bytes,
        duration: started.elapsed().as_secs_f64(),
        bytes_taken: taken,
        integrity,
        verified,
    })
}

/// The drill command's stdin, which it may close early: from then on bytes are discarded
/// (restore goes on verifying them).
struct DrillSink {
    child: Option<std::process::ChildStdin>,
    taken: u64,
}

impl Write for DrillSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(c) = self.child.as_mut() {
            match c.write(buf) {
                Ok(n) => {
                    self.taken += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.child = None,
                Err(e) => return Err(e),
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.child.as_mut().map(|c| c.flush()) {
            Some(Err(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.child = None;
                Ok(())
            }
            Some(r) => r,
            None => Ok(()),
        }
    }
}
