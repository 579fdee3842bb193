//! `format-spec/event.md`: an event object, the record of one run, drill or prune.
//!
//! ```text
//! object = magic "LARDEREV" ‖ version u16 ‖ sealed(body)      (ObjectKind::Event)
//! body   = JSON, see `Event`; unknown fields are ignored (added fields are optional)
//! ```
//!
//! Events are how `status` on one host learns what jobs on other hosts did: a failed run
//! leaves no snapshot, and a drill changes no snapshot, but both leave an event.

use super::DecodeError;
use crate::id::SnapshotId;

/// Magic at the start of every event object.
pub const MAGIC: &[u8; 8] = b"LARDEREV";

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `larder run` of one series: a snapshot (good or quarantined) or a failure.
    Run,
    /// `larder drill`: a snapshot restored into the drill command.
    Drill,
    /// A prune (by `larder run`, `forget --prune` or `prune`) that completed.
    Prune,
}

impl EventKind {
    /// The kind's name in the body.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Run => "run",
            EventKind::Drill => "drill",
            EventKind::Prune => "prune",
        }
    }
}

/// The decrypted body of an event object.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// Run, drill or prune.
    pub kind: EventKind,
    /// When it started (UTC, ns).
    pub time: jiff::Timestamp,
    /// Seconds it took.
    pub duration: f64,
    /// The host that did it.
    pub host: String,
    /// The series it concerns (absent for a prune).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    /// Whether it succeeded: a good snapshot, a drill whose command exited 0 after every
    /// blob verified, a prune that finished.
    pub ok: bool,
    /// The snapshot written (run; absent when none was) or restored (drill).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotId>,
    /// Why it failed, as one line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes read from the producer (run) or restored (drill).
    #[serde(default)]
    pub bytes_read: u64,
    /// Stored bytes the run added (run), or freed (prune).
    #[serde(default)]
    pub bytes_added: u64,
    /// The larder version that wrote it.
    pub larder_version: String,
}

impl Event {
    /// Encodes the plaintext body.
    pub fn encode_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("event serializes")
    }

    /// Decodes the plaintext body.
    pub fn decode_body(bytes: &[u8]) -> Result<Self, DecodeError> {
        let e: Event = serde_json::from_slice(bytes)?;
        if !(e.duration.is_finite() && e.duration >= 0.0) {
            return Err(DecodeError::Invalid("duration"));
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_duration() {
        let e = Event {
            kind: EventKind::Drill,
            time: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
            duration: 1.25,
            host: "db1".into(),
            series: Some("shop-db".into()),
            ok: false,
            snapshot: Some(SnapshotId([7; 32])),
            error: Some("drill command `pg_restore --list` exited with status 1".into()),
            bytes_read: 10,
            bytes_added: 0,
            larder_version: "t".into(),
        };
        assert_eq!(Event::decode_body(&e.encode_body()).unwrap(), e);
        let mut bad = e.clone();
        bad.duration = -1.0;
        assert!(Event::decode_body(&bad.encode_body()).is_err());
        assert!(Event::decode_body(b"{}").is_err());
    }
}
