//! Reads a pack's header back: the source from which index segments can be rebuilt, and what
//! `cat pack` shows.

use crate::crypto::Keys;
use crate::error::{Error, Result};
use crate::format::ObjectKind;
use crate::format::pack::{PackHeader, split_trailer};
use crate::id::PackId;

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
