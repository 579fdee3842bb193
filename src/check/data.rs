//! Reading data (`--read-data`, `--read-data-subset`): each selected pack is downloaded
//! whole, its BLAKE3 compared with its name, its header decoded, and every blob in it
//! opened (AEAD, bounded decompression, re-hash: [`blob::open`]).
//!
//! Downloads run on [`FETCHERS`] threads ahead of verification through a bounded channel;
//! blobs of one pack are opened in parallel. Memory: a few packs at a time.

use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use super::{Checker, Object, ProblemKind, Store, failure};
use crate::backend::{self, ObjectKey};
use crate::blob;
use crate::error::{Error, Result};
use crate::format::pack::BlobEntry;
use crate::id::{BlobId, PackId, object_hash};
use crate::pack::reader;

/// Threads downloading packs; with the channel, at most `FETCHERS + PACKS_QUEUED + 1`
/// packs are in memory.
const FETCHERS: usize = 2;
/// Downloaded packs waiting to be verified.
const PACKS_QUEUED: usize = 2;

/// What opening every blob of a pack found.
struct Opened {
    /// Blobs that fail, with why.
    failed: Vec<(BlobId, &'static str)>,
    /// Blobs whose range lies beyond the end of the pack (it is short).
    beyond: usize,
}

impl Store<'_> {
    /// Opens every blob of a downloaded pack.
    fn open_all(&self, pack: &[u8], entries: &[BlobEntry]) -> Opened {
        let results: Vec<Option<std::result::Result<(), (BlobId, &'static str)>>> = entries
            .par_iter()
            .map(|e| {
                let r = e.range();
                let sealed = usize::try_from(r.start)
                    .ok()
                    .zip(usize::try_from(r.end).ok())
                    .and_then(|(s, t)| pack.get(s..t))?;
                Some(
                    blob::open(self.keys, e.kind, e.id, e.compression, e.raw_len, sealed)
                        .map(|_| ())
                        .map_err(|err| (e.id, err.reason())),
                )
            })
            .collect();
        Opened {
            beyond: results.iter().filter(|r| r.is_none()).count(),
            failed: results
                .into_iter()
                .flatten()
                .filter_map(|r| r.err())
                .collect(),
        }
    }
}

impl Checker<'_> {
    /// Downloads the selected packs and verifies them blob by blob.
    pub(super) fn read_packs(&mut self, selected: &[(PackId, u64)]) -> Result<()> {
        let store = self.store;
        let next = AtomicUsize::new(0);
        std::thread::scope(|s| {
            // Made inside the scope: an early return drops the receiver, which stops the
            // fetchers before the scope waits for them.
            let (tx, rx) = crossbeam_channel::bounded(PACKS_QUEUED);
            for _ in 0..FETCHERS.min(selected.len()) {
                let tx = tx.clone();
                let next = &next;
                s.spawn(move || {
                    while let Some((id, _)) = selected.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let got = store.get(&ObjectKey::pack(id));
                        if tx.send((*id, got)).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for (id, got) in rx {
                self.verify_pack(id, got)?;
            }
            Ok::<(), Error>(())
        })?;
        self.report.read_packs.sort_unstable();
        Ok(())
    }

    /// One downloaded pack: its hash, its header, every blob in it.
    fn verify_pack(
        &mut self,
        id: PackId,
        got: std::result::Result<Vec<u8>, backend::Error>,
    ) -> Result<()> {
        // A pack with a structure problem already needs no second one for its header.
        let known = self.pack_groups.contains_key(&id);
        let bytes = match got {
            Ok(b) => b,
            Err(backend::Error::NotFound { .. }) => {
                if !known {
                    let msg = "vanished while being checked".to_owned();
                    self.pack_problem(ProblemKind::PackMissing, id, msg);
                }
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        self.report.packs_read += 1;
        self.report.bytes_read += len;
        self.report.read_packs.push(id);
        self.progress.bytes(len);
        let entries = match reader::read_header(self.store.keys, &id, &bytes) {
            Ok(h) => h.blobs,
            Err(e) => {
                if !known {
                    let msg = failure(e, "its header ")?;
                    self.pack_problem(ProblemKind::PackHeaderUnreadable, id, msg);
                }
                // The catalog's entries for it, to find out which blobs survive.
                self.repo.catalog().pack_blobs(&id)?
            }
        };
        if object_hash(&bytes) != id.0 {
            let msg = format!("its {len} bytes do not hash to its name");
            self.pack_problem(ProblemKind::PackHashMismatch, id, msg);
        }
        self.report.blobs_read += u64::try_from(entries.len()).unwrap_or(u64::MAX);
        let opened = self.store.open_all(&bytes, &entries);
        if opened.beyond > 0 {
            // One problem for the lot: they are lost for the same reason.
            let msg = format!(
                "read in full it is {len} bytes: {} of its {} blobs lie beyond its end",
                opened.beyond,
                entries.len()
            );
            self.pack_problem(ProblemKind::PackLength, id, msg);
        }
        for (blob, reason) in opened.failed {
            self.blob_problem(ProblemKind::BlobCorrupt, Object::Pack(id), blob, || {
                reason.to_owned()
            });
        }
        Ok(())
    }
}
