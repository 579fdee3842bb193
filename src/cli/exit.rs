//! Exit codes: an API for cron and monitoring. Documented in README "Exit codes"; never
//! renumbered.

use larder::ErrorKind;

/// Success.
pub const SUCCESS: u8 = 0;
/// Any failure not listed below.
pub const FAILURE: u8 = 1;
/// A directory snapshot was written, but some entries could not be read (named on stderr;
/// counted in the snapshot's `errors`).
pub const INCOMPLETE: u8 = 3;
/// Bad flags or arguments, or a selection that matches nothing (clap uses 2 as well).
pub const USAGE: u8 = 2;
/// No repository at the location.
pub const REPO_NOT_FOUND: u8 = 10;
/// The repository is locked by another process.
pub const LOCKED: u8 = 11;
/// Wrong password.
pub const WRONG_PASSWORD: u8 = 12;
/// The producer command failed, was killed, or its stream failed the dump check: no
/// snapshot was written, or one kept quarantined (never a good backup).
pub const PRODUCER_FAILED: u8 = 13;
/// Stored data failed an integrity check.
pub const INTEGRITY: u8 = 14;
/// `status`: a series has no good snapshot within its `max_age`.
pub const STALE: u8 = 15;
/// `drill`: the snapshot restored and verified, but the drill command failed.
pub const DRILL_FAILED: u8 = 16;

/// The one-line message for an error: the context the CLI added, then the library error,
/// whose message already names its cause (printing the rest of the chain would repeat it).
pub fn message(e: &anyhow::Error) -> String {
    let mut parts = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        if cause.is::<larder::Error>() {
            break;
        }
    }
    parts.join(": ")
}

/// The exit code for an error: the kind of the first `larder::Error` in its chain.
pub fn code_for(e: &anyhow::Error) -> u8 {
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<larder::Error>())
        .map(larder::Error::kind);
    match kind {
        None | Some(ErrorKind::Failure) => FAILURE,
        Some(ErrorKind::Usage) => USAGE,
        Some(ErrorKind::RepoNotFound) => REPO_NOT_FOUND,
        Some(ErrorKind::Locked) => LOCKED,
        Some(ErrorKind::WrongPassword) => WRONG_PASSWORD,
        Some(ErrorKind::ProducerFailed) => PRODUCER_FAILED,
        Some(ErrorKind::Integrity) => INTEGRITY,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let mut all = [
            SUCCESS,
            FAILURE,
            INCOMPLETE,
            USAGE,
            REPO_NOT_FOUND,
            LOCKED,
            WRONG_PASSWORD,
            PRODUCER_FAILED,
            INTEGRITY,
        ];
        all.sort_unstable();
        assert!(all.windows(2).all(|w| w[0] != w[1]));
        let e = anyhow::Error::new(larder::Error::WrongPassword).context("opening");
        assert_eq!(code_for(&e), WRONG_PASSWORD);
        assert_eq!(
            message(&e),
            "opening: wrong password: no key slot of this repository opens with it"
        );
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(larder::Error::SourceSpawn {
            cmd: "x".into(),
            source: io,
        });
        assert_eq!(message(&e), "cannot start source command `x`: gone");
    }
}
