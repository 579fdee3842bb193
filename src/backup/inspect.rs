//! What a stream snapshot learns about its source on the way in, between the source and the
//! chunker: the dump check (`--verify`, `verify = …`; src/dump_check.rs), whether the
//! input looks compressed or encrypted (it will not deduplicate), and when the producer last
//! wrote a byte (for `stall_timeout`).
//!
//! ```text
//! source -> [inspect] -> chunker -> …
//! ```
//!
//! The reader runs on the chunker's thread; the verdict is collected after the stream ends.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::dump_check::{self, DumpCheck, DumpKind, Verdict};

/// What inspection concluded about a whole stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// The dump check's verdict, when one was asked for.
    pub verdict: Option<(DumpKind, Verdict)>,
    /// One line each: input that looks compressed or encrypted.
    pub warnings: Vec<String>,
}

#[derive(Debug)]
struct State {
    check: Option<DumpCheck>,
    /// The first [`dump_check::ENTROPY_SAMPLE`] bytes.
    head: Vec<u8>,
}

/// The shared side of an [`InspectingReader`]: the verdict, and the time of the last byte.
#[derive(Debug, Clone)]
pub struct Inspector {
    state: Arc<Mutex<State>>,
    started: Instant,
    /// Milliseconds from `started` to the last read that returned bytes (or to the start).
    last_byte_ms: Arc<AtomicU64>,
}

impl Inspector {
    /// An inspector checking the stream as `verify` (or not at all).
    pub fn new(verify: Option<DumpKind>) -> Self {
        Inspector {
            state: Arc::new(Mutex::new(State {
                check: verify.filter(|k| *k != DumpKind::None).map(DumpCheck::new),
                head: Vec::new(),
            })),
            started: Instant::now(),
            last_byte_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Wraps the source.
    pub fn reader<R: Read>(&self, inner: R) -> InspectingReader<R> {
        InspectingReader {
            inner,
            shared: self.clone(),
        }
    }

    /// How long since the source last produced a byte (or since the start).
    pub fn idle(&self) -> std::time::Duration {
        let last = std::time::Duration::from_millis(self.last_byte_ms.load(Ordering::Relaxed));
        self.started.elapsed().saturating_sub(last)
    }

    /// The conclusion; call once the stream has ended.
    pub fn finish(&self) -> Inspection {
        let mut st = match self.state.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let verdict = st.check.take().map(|c| (c.kind(), c.finish()));
        let mut warnings = Vec::new();
        if let Some(what) = dump_check::looks_compressed(&st.head) {
            warnings.push(format!(
                "the input looks compressed ({what}): it will not deduplicate; give larder the uncompressed dump (pg_dump -Z0)"
            ));
        } else if dump_check::looks_encrypted_or_compressed(&st.head) {
            warnings.push(
                "the input looks encrypted or compressed (near-random bytes): it will not deduplicate"
                    .to_owned(),
            );
        }
        Inspection { verdict, warnings }
    }
}

/// A reader that shows every byte to its [`Inspector`].
#[derive(Debug)]
pub struct InspectingReader<R> {
    inner: R,
    shared: Inspector,
}

impl<R: Read> Read for InspectingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            let got = buf.get(..n).unwrap_or_default();
            let ms = u64::try_from(self.shared.started.elapsed().as_millis()).unwrap_or(u64::MAX);
            self.shared.last_byte_ms.store(ms, Ordering::Relaxed);
            let mut st = match self.shared.state.lock() {
                Ok(g) => g,
                Err(poisoned) => poisoned.into_inner(),
            };
            if st.head.len() < dump_check::ENTROPY_SAMPLE {
                let take = (dump_check::ENTROPY_SAMPLE - st.head.len()).min(got.len());
                st.head
                    .extend_from_slice(got.get(..take).unwrap_or_default());
            }
            if let Some(c) = st.check.as_mut() {
                c.update(got);
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_and_warnings() {
        let i = Inspector::new(Some(DumpKind::Mysqldump));
        let mut out = Vec::new();
        i.reader(&b"-- MySQL dump\nINSERT 1;\n"[..])
            .read_to_end(&mut out)
            .unwrap();
        let got = i.finish();
        assert!(matches!(
            got.verdict,
            Some((DumpKind::Mysqldump, Verdict::Failed { .. }))
        ));
        assert!(got.warnings.is_empty());

        let i = Inspector::new(None);
        let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6, 7];
        std::io::copy(&mut i.reader(&gz[..]), &mut std::io::sink()).unwrap();
        let got = i.finish();
        assert_eq!(got.verdict, None);
        assert!(got.warnings[0].contains("gzip"), "{:?}", got.warnings);

        let i = Inspector::new(Some(DumpKind::None));
        let random: Vec<u8> = (0..100_000u32)
            .map(|x| x.wrapping_mul(2_654_435_761).to_le_bytes()[1])
            .collect();
        std::io::copy(&mut i.reader(&random[..]), &mut std::io::sink()).unwrap();
        let got = i.finish();
        assert_eq!(got.verdict, None, "`none` is no check");
        assert!(i.idle() < std::time::Duration::from_secs(5));
    }
}
