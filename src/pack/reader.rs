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
        let k = Keys::derive(RepoId([3; 32]), MasterKey::generate());
        let mut w = PackWriter::new(1 << 20);
        for i in 0..10u8 {
            let data = vec![i; 1000];
            let id = k.blob_id(BlobKind::Data, &data);
            assert!(
                w.add(&k, seal(&k, BlobKind::Data, id, &data, 3).unwrap())
                    .is_none()
            );
        }
        let p = w.finish(&k).unwrap();
        let h = read_header(&k, &p.id, &p.bytes).unwrap();
        assert_eq!(h.blobs, p.blobs);
        for e in &h.blobs {
            let r = e.range();
            let plain = crate::blob::open(
                &k,
                e.kind,
                e.id,
                e.compression,
                e.raw_len,
                &p.bytes[r.start as usize..r.end as usize],
            )
            .unwrap();
            assert_eq!(plain.len(), 1000);
        }
        let mut bad = p.bytes.clone();
        let n = bad.len();
        bad[n - 10] ^= 1;
        assert!(matches!(
            read_header(&k, &p.id, &bad),
            Err(Error::UnauthenticObject { .. })
        ));
    }
}
