//! Structure steps 1 and 2 of `check`: the listings, every index segment, and every pack
//! they name (present, with the indexed length, and a header that agrees with the index);
//! then the packs no segment names, whose headers tell leftovers from lost index entries.

use std::collections::{HashMap, HashSet};

use rayon::prelude::*;

use super::{Checker, Object, ProblemKind, Store, Warning, WarningKind, failure};
use crate::backend::{ObjectKey, Prefix};
use crate::crypto::SEAL_OVERHEAD;
use crate::error::{Error, Result};
use crate::format::pack::{BlobEntry, ENTRY_LEN, PackHeader, TRAILER_LEN};
use crate::format::{DecodeError, ObjectKind, PREFIX_LEN};
use crate::id::{BlobId, IndexId, PackId};
use crate::repo::object;

/// Packs whose headers are read at once (unreferenced packs, whose number is not bounded
/// by an index segment).
const HEADERS_AT_ONCE: usize = 64;

/// Tail bytes read first from a pack no index names (its blob count is unknown).
const UNREFERENCED_TAIL: u64 = 64 * 1024;

/// Blobs of unreferenced packs remembered to explain missing blobs (about 100 bytes each);
/// bounds memory when a large index segment has been lost.
const MAX_UNINDEXED: usize = 1 << 20;

/// What the index names.
pub(super) struct Indexed {
    /// Packs named and present in `packs/` (possibly with another length), sorted: the
    /// candidates for reading data.
    pub present: Vec<(PackId, u64)>,
    /// Every pack named, present or not (or named by a segment that no longer reads).
    pub named: HashSet<PackId>,
}

/// A pack no index names, and what its header says.
pub(super) struct Unreferenced {
    id: PackId,
    size: u64,
    note: String,
}

/// Tail bytes holding the header of a pack with `blobs` blobs (`format-spec/pack.md`):
/// count, entries, seal overhead and trailer.
fn header_tail_len(blobs: usize) -> u64 {
    let entries = u64::try_from(blobs)
        .unwrap_or(u64::MAX)
        .saturating_mul(ENTRY_LEN as u64);
    entries.saturating_add((4 + SEAL_OVERHEAD + TRAILER_LEN) as u64)
}

/// Compares a pack's header with an index segment's record of it; describes the first
/// disagreement, with how many blobs disagree.
fn compare_header(index: &[BlobEntry], header: &[BlobEntry]) -> Option<(BlobId, String)> {
    let in_header: HashMap<BlobId, &BlobEntry> = header.iter().map(|e| (e.id, e)).collect();
    let in_index: HashSet<BlobId> = index.iter().map(|e| e.id).collect();
    let mut bad = 0usize;
    let mut first = None;
    for e in index {
        let what = match in_header.get(&e.id) {
            None => "is in the index but not in the header",
            Some(h) if *h != e => "has another kind, offset or length in the header",
            Some(_) => continue,
        };
        bad += 1;
        first.get_or_insert((e.id, what));
    }
    for e in header.iter().filter(|e| !in_index.contains(&e.id)) {
        bad += 1;
        first.get_or_insert((e.id, "is in the header but not in the index"));
    }
    first.map(|(blob, what)| {
        let blobs = if bad == 1 { "blob" } else { "blobs" };
        let msg = format!("the header and the index disagree on {bad} {blobs}; this one {what}");
        (blob, msg)
    })
}

impl Store<'_> {
    /// Reads a pack's header with range reads of its tail (`format-spec/pack.md`): first
    /// `guess` bytes, then, if the trailer says the header is longer, the header itself.
    fn read_header_tail(&self, id: &PackId, len: u64, guess: u64) -> Result<PackHeader> {
        let key = ObjectKey::pack(id);
        let object = || format!("pack {id}");
        let corrupt = |what| Error::corrupt(object(), DecodeError::Invalid(what));
        let (prefix, trailer) = (PREFIX_LEN as u64, TRAILER_LEN as u64);
        if len < prefix + trailer {
            return Err(Error::corrupt(
                object(),
                DecodeError::Truncated("pack trailer"),
            ));
        }
        let first = guess.clamp(trailer, len - prefix);
        let tail = self
            .get_range(&key, len - first..len)
            .map_err(Error::reading_pack(*id))?;
        let at = tail
            .len()
            .checked_sub(TRAILER_LEN)
            .ok_or_else(|| corrupt("pack length"))?;
        let trailer_bytes: [u8; TRAILER_LEN] = tail
            .get(at..)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt("pack length"))?;
        let header_len = u64::from(u32::from_le_bytes(trailer_bytes));
        let header_start = (len - trailer)
            .checked_sub(header_len)
            .filter(|s| *s >= prefix)
            .ok_or_else(|| corrupt("header length"))?;
        let fetched;
        let sealed = if header_len + trailer <= first {
            let from = usize::try_from(first - trailer - header_len)
                .map_err(|_| corrupt("header length"))?;
            tail.get(from..at).ok_or_else(|| corrupt("header length"))?
        } else {
            fetched = self
                .get_range(&key, header_start..len - trailer)
                .map_err(Error::reading_pack(*id))?;
            &fetched[..]
        };
        let plain = self
            .keys
            .unseal_object(ObjectKind::PackHeader, sealed)
            .map_err(|_| Error::UnauthenticObject { object: object() })?;
        PackHeader::decode(&plain, header_start).map_err(|e| Error::corrupt(object(), e))
    }

    /// Step 2 for one indexed pack that is present with the right length: its header
    /// against the segment's entries. `None` when they agree.
    fn check_header(
        &self,
        id: &PackId,
        len: u64,
        entries: &[BlobEntry],
    ) -> Result<Option<(ProblemKind, Option<BlobId>, String)>> {
        match self.read_header_tail(id, len, header_tail_len(entries.len())) {
            Ok(h) => Ok(compare_header(entries, &h.blobs)
                .map(|(blob, msg)| (ProblemKind::PackHeaderMismatch, Some(blob), msg))),
            Err(e) => Ok(Some((
                ProblemKind::PackHeaderUnreadable,
                None,
                failure(e, "its header ")?,
            ))),
        }
    }
}

impl Checker<'_> {
    fn unknown_object(&mut self, key: &ObjectKey, size: u64) {
        self.report.warnings.push(Warning {
            kind: WarningKind::UnknownObject,
            object: key.to_string(),
            size,
            message: "its name is not an object id; larder ignores it".into(),
        });
    }

    /// Ids listed under `prefix`, sorted; other names are warnings.
    pub(super) fn list_ids<T: std::str::FromStr + Ord>(
        &mut self,
        prefix: Prefix,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for o in self.store.list(prefix)? {
            match o.key.name().parse() {
                Ok(id) => out.push(id),
                Err(_) => self.unknown_object(&o.key, o.size),
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Every pack in `packs/` with its size; other names (or a pack in the wrong folder)
    /// are warnings.
    pub(super) fn list_packs(&mut self) -> Result<HashMap<PackId, u64>> {
        let mut out = HashMap::new();
        for o in self.store.list(Prefix::Packs)? {
            match o.key.name().parse::<PackId>() {
                Ok(id) if ObjectKey::pack(&id) == o.key => {
                    out.insert(id, o.size);
                }
                _ => self.unknown_object(&o.key, o.size),
            }
        }
        Ok(out)
    }

    /// Steps 1 and 2: every segment reads, and every pack it names is present, with its
    /// length, and a header listing the same blobs. Headers of one segment are read in
    /// parallel (one range read each, as a rule).
    pub(super) fn check_index(
        &mut self,
        segments: &[IndexId],
        listed: &HashMap<PackId, u64>,
    ) -> Result<Indexed> {
        let mut named = HashSet::new();
        let mut present = Vec::new();
        for seg_id in segments {
            self.report.index_segments += 1;
            self.store.counted(1);
            let seg = match object::load_index_segment(self.store.backend, self.store.keys, seg_id)
            {
                Ok(seg) => seg,
                Err(e) => {
                    let msg = failure(e, "")?;
                    self.unreadable_segment(seg_id, msg, &mut named)?;
                    continue;
                }
            };
            let mut to_read = Vec::new();
            for p in seg.packs {
                if !named.insert(p.id) {
                    continue;
                }
                self.report.packs += 1;
                self.report.pack_bytes += p.length;
                match listed.get(&p.id) {
                    None => {
                        let msg = format!(
                            "missing from the repository; index/{seg_id} names it with {} blobs",
                            p.blobs.len()
                        );
                        self.pack_problem(ProblemKind::PackMissing, p.id, msg);
                    }
                    Some(&len) if len != p.length => {
                        present.push((p.id, p.length));
                        let msg = format!("is {len} bytes long; the index says {}", p.length);
                        self.pack_problem(ProblemKind::PackLength, p.id, msg);
                    }
                    Some(_) => {
                        present.push((p.id, p.length));
                        to_read.push(p);
                    }
                }
            }
            let store = self.store;
            let found: Vec<_> = to_read
                .par_iter()
                .map(|p| store.check_header(&p.id, p.length, &p.blobs))
                .collect();
            for (p, found) in to_read.iter().zip(found) {
                if let Some((kind, blob, msg)) = found? {
                    let g = self.pack_group(p.id);
                    self.problem(kind, Object::Pack(p.id), blob, msg, vec![g]);
                }
            }
        }
        present.sort_unstable();
        Ok(Indexed { present, named })
    }

    /// An index segment that does not read: the packs the catalog learned from it count as
    /// named (they are not leftovers) and as damaged (the index naming them is).
    fn unreadable_segment(
        &mut self,
        id: &IndexId,
        msg: String,
        named: &mut HashSet<PackId>,
    ) -> Result<()> {
        let packs = self.repo.catalog().segment_packs(id)?;
        let groups = packs.iter().map(|(p, _)| self.pack_group(*p)).collect();
        named.extend(packs.iter().map(|(p, _)| *p));
        let msg = if packs.is_empty() {
            format!("{msg}; the local catalog never merged it, so which packs it named is unknown")
        } else {
            let n = packs.len();
            let packs = if n == 1 { "pack" } else { "packs" };
            format!("{msg}; the local catalog still knows the {n} {packs} it named")
        };
        let object = Object::IndexSegment(*id);
        self.problem(
            ProblemKind::IndexSegmentUnreadable,
            object,
            None,
            msg,
            groups,
        );
        Ok(())
    }

    /// Reads the headers of the packs no index names, remembering their blobs so that the
    /// walk can tell a lost index entry from missing data.
    pub(super) fn scan_unreferenced(
        &mut self,
        listed: &HashMap<PackId, u64>,
        named: &HashSet<PackId>,
    ) -> Result<Vec<Unreferenced>> {
        let mut packs: Vec<(PackId, u64)> = listed
            .iter()
            .filter(|(id, _)| !named.contains(id))
            .map(|(id, size)| (*id, *size))
            .collect();
        packs.sort_unstable();
        let mut out = Vec::new();
        let store = self.store;
        for group in packs.chunks(HEADERS_AT_ONCE) {
            let headers: Vec<_> = group
                .par_iter()
                .map(|(id, size)| store.read_header_tail(id, *size, UNREFERENCED_TAIL))
                .collect();
            for ((id, size), h) in group.iter().zip(headers) {
                let note = match h {
                    Ok(h) => {
                        for e in &h.blobs {
                            if self.unindexed.len() < MAX_UNINDEXED {
                                self.unindexed.insert(e.id, (*id, *e));
                            }
                        }
                        format!("its header lists {} blobs", h.blobs.len())
                    }
                    Err(e) => failure(e, "its header ")?,
                };
                out.push(Unreferenced {
                    id: *id,
                    size: *size,
                    note,
                });
            }
        }
        Ok(out)
    }

    /// Unreferenced packs no snapshot needs become warnings; the others are problems
    /// already, whose message now says how many needed blobs they hold.
    pub(super) fn warn_unreferenced(&mut self, packs: Vec<Unreferenced>) {
        for u in packs {
            if let Some((at, n)) = self.not_indexed.get(&u.id) {
                if let Some(p) = self.report.problems.get_mut(*at) {
                    p.message = format!(
                        "no index segment names it, but snapshots need {n} of its blobs ({}): the index lost them",
                        u.note
                    );
                }
                continue;
            }
            self.report.warnings.push(Warning {
                kind: WarningKind::UnreferencedPack,
                object: ObjectKey::pack(&u.id).to_string(),
                size: u.size,
                message: format!(
                    "no index segment names it and no snapshot needs it ({}): left by an interrupted run; prune removes it",
                    u.note
                ),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BlobKind, Compression};

    #[test]
    fn header_comparison_names_the_first_disagreement() {
        let e = |i: u8, offset: u64| BlobEntry {
            id: BlobId([i; 32]),
            kind: BlobKind::Data,
            compression: Compression::Zstd,
            offset,
            stored_len: 10,
            raw_len: 20,
        };
        let index = vec![e(1, 10), e(2, 20)];
        assert!(compare_header(&index, &index).is_none());
        let (blob, msg) = compare_header(&index, &[e(1, 10), e(2, 30)]).unwrap();
        assert_eq!(blob, BlobId([2; 32]));
        assert!(msg.contains("on 1 blob;"), "{msg}");
        let (blob, _) = compare_header(&index, &[e(1, 10), e(2, 20), e(3, 30)]).unwrap();
        assert_eq!(blob, BlobId([3; 32]));
        let (blob, msg) = compare_header(&index, &[]).unwrap();
        assert_eq!(blob, BlobId([1; 32]));
        assert!(msg.contains("on 2 blobs;"), "{msg}");
    }

    #[test]
    fn tail_guess_covers_the_header() {
        let h = PackHeader {
            blobs: (0..7u8)
                .map(|i| BlobEntry {
                    id: BlobId([i; 32]),
                    kind: BlobKind::Data,
                    compression: Compression::Zstd,
                    offset: 10 + u64::from(i) * 100,
                    stored_len: 100,
                    raw_len: 100,
                })
                .collect(),
        };
        let sealed = h.encode().len() + SEAL_OVERHEAD;
        assert_eq!(header_tail_len(7), (sealed + TRAILER_LEN) as u64);
    }
}
