//! Stream sources: standard input, or a producer command larder runs itself.
//!
//! Producer mode: larder spawns the command with its stdout piped into the pipeline and its
//! stderr passed through, and writes a snapshot only if the whole stream was read and the
//! command exited 0 (invariant 3). If larder fails first, the producer is killed.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};

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
    snapshot_stream(
        repo,
        std::io::stdin(),
        Source::Stdin,
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

/// Runs `argv` and snapshots its standard output.
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
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|source| Error::SourceSpawn {
            cmd: cmd.clone(),
            source,
        })?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| Error::InvalidArgument("the source command has no stdout".into()))?;
    let status = |stored: &Result<_>| {
        if stored.is_err() {
            // larder failed first: stop the producer rather than leave it writing into a
            // closed pipe.
            let _ = child.kill();
        }
        let st = child.wait().map_err(|source| Error::SourceRead {
            what: format!("the status of `{cmd}`"),
            source,
        })?;
        if st.success() {
            Ok(ProducerStatus::Exited { code: 0 })
        } else {
            Err(Error::SourceFailed {
                cmd: cmd.clone(),
                status: describe(st),
            })
        }
    };
    snapshot_stream(
        repo,
        stdout,
        Source::Command {
            argv: argv.to_vec(),
        },
        status,
        opts,
        progress,
    )
}
