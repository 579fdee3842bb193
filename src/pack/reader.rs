//! Reads a pack's header back: the source from which index segments can be rebuilt, and what
//! `cat pack` shows.

use crate::backend::{Backend, ObjectKey};
use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::pack::{MAGIC, PackHeader, TRAILER_LEN, split_trailer};
use crate::format::{DecodeError, ObjectKind, PREFIX_LEN};
use crate::id::PackId;

/// Decodes and authenticates the header of a stored pack of length `len` with three range
/// reads (prefix, trailer, header) instead of downloading it.
pub fn read_header_at(b: &dyn Backend, keys: &Keys, id: &PackId, len: u64) -> Result<PackHeader> {
    let key = ObjectKey::pack(id);
    let object = || format!("pack {id}");
    let (prefix, trailer) = (PREFIX_LEN as u64, TRAILER_LEN as u64);
    if len < prefix + trailer {
        return Err(Error::corrupt(
            object(),
            DecodeError::Truncated("pack trailer"),
        ));
    }
    let head = b
        .get_range(&key, 0..prefix)
        .map_err(Error::reading_pack(*id))?;
    crate::format::take_prefix(&head, MAGIC).map_err(|e| Error::corrupt(object(), e))?;
    let tail = b
        .get_range(&key, len - trailer..len)
        .map_err(Error::reading_pack(*id))?;
    let tail: [u8; TRAILER_LEN] = tail
        .try_into()
        .map_err(|_| Error::corrupt(object(), DecodeError::Truncated("pack trailer")))?;
    let header_start = (len - trailer)
        .checked_sub(u64::from(u32::from_le_bytes(tail)))
        .filter(|s| *s >= prefix)
        .ok_or_else(|| Error::corrupt(object(), DecodeError::Invalid("header length")))?;
    let sealed = b
        .get_range(&key, header_start..len - trailer)
        .map_err(Error::reading_pack(*id))?;
    let plain = keys
        .unseal_object(ObjectKind::PackHeader, &sealed)
        .map_err(|_| Error::UnauthenticObject { object: object() })?;
    PackHeader::decode(&plain, header_start).map_err(|e| Error::corrupt(object(), e))
}

/// Decodes and authenticates the header of a whole pack.
pub fn read_header(keys: &Keys, id: &PackId, pack: &[u8]) -> Result<PackHeader> {
    let object = || format!("pack {id}");
    let (blobs_end, sealed) = split_trailer(pack).map_err(|e| Error::corrupt(object(), e))?;
    let plain = keys
        .unseal_object(ObjectKind::PackHeader, sealed)
        .map_err(|_| Error::UnauthenticObject { object: object() })?;
    PackHeader::decode(&plain, blobs_end).map_err(|e| Error::corrupt(object(), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::seal;
    use crate::crypto::MasterKey;
    use crate::format::BlobKind;
    use crate::id::RepoId;
    use crate::pack::writer::PackWriter;

    #[test]
    fn written_pack_reads_back() {
        use crate::backend::{Backend, ObjectKey, local::LocalBackend};
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::create(dir.path().join("repo")).unwrap();
        let k = Keys::derive(RepoId([3; 32]), MasterKey::generate());
        let mut w = PackWriter::new(1 << 20);
        for i in 0..10u8 {
            let data = vec![i; 1000];
            let id = k.blob_id(BlobKind::Data, &data);
            let sealed = seal(&k, BlobKind::Data, id, &data, 3).unwrap();
            assert!(w.add(&b, &k, &sealed).unwrap().is_none());
        }
        let p = w.finish(&k).unwrap().unwrap();
        let key = ObjectKey::pack(&p.id);
        p.staged.commit(&key).unwrap();
        let bytes = b.get(&key).unwrap();
        assert_eq!(bytes.len() as u64, p.length);
        assert_eq!(crate::id::object_hash(&bytes), p.id.0);
        let h = read_header(&k, &p.id, &bytes).unwrap();
        assert_eq!(h.blobs, p.blobs);
        for e in &h.blobs {
            let r = e.range();
            let plain = crate::blob::open(
                &k,
                e.kind,
                e.id,
                e.compression,
                e.raw_len,
                &bytes[usize::try_from(r.start).unwrap()..usize::try_from(r.end).unwrap()],
            )
            .unwrap();
            assert_eq!(plain.len(), 1000);
        }
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 10] ^= 1;
        assert!(matches!(
            read_header(&k, &p.id, &bad),
            Err(Error::UnauthenticObject { .. })
        ));
    }
}
