//! A blob on its way into and out of a pack (`format-spec/blob.md`).
//!
//! Data path: keyed id → dedup → **compress → seal → verify** → pack writer, and on the way
//! back pack range → **unseal → bounded decompress → re-hash**. Nothing read is trusted
//! (invariant 4), and nothing leaves before it has been opened once (DESIGN.md lessons: zstd
//! and RAM bugs have written garbage that the AEAD then "authenticated").

use crate::compress;
use crate::crypto::Keys;
use crate::format::{BlobKind, Compression};
use crate::id::BlobId;

/// A sealed blob ready for a pack.
#[derive(Debug)]
pub struct SealedBlob {
    /// Its id.
    pub id: BlobId,
    /// Its kind.
    pub kind: BlobKind,
    /// How the payload was encoded.
    pub compression: Compression,
    /// Plaintext length.
    pub raw_len: u32,
    /// `nonce ‖ ciphertext ‖ tag`.
    pub bytes: Vec<u8>,
}

/// Why a blob could not be sealed or opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// AEAD failure: corrupt, tampered, or sealed for another blob, kind or repository.
    #[error("authentication failed")]
    Unauthentic,
    /// The authenticated payload did not decompress to the recorded length.
    #[error("decompression failed")]
    Decompress,
    /// The plaintext does not hash to the blob's id.
    #[error("plaintext does not match its id")]
    IdMismatch,
    /// zstd refused to compress (out of memory).
    #[error("compression failed")]
    Compress,
    /// A blob larger than the format's 4 GiB limit.
    #[error("blob too large")]
    TooLarge,
}

impl BlobError {
    /// This failure at seal time, as a library error naming the blob.
    pub fn sealing(self, blob: BlobId) -> crate::Error {
        crate::Error::SealFailed {
            blob,
            reason: self.reason(),
        }
    }

    /// The reason as a static string, for `Error::CorruptBlob`.
    pub fn reason(self) -> &'static str {
        match self {
            BlobError::Unauthentic => "authentication failed (corrupt or tampered)",
            BlobError::Decompress => "decompression failed",
            BlobError::IdMismatch => "plaintext does not hash to its id",
            BlobError::Compress => "compression failed",
            BlobError::TooLarge => "blob too large",
        }
    }
}

/// Compresses, seals, then opens the result once and checks it against `plain` before
/// returning it.
pub fn seal(
    keys: &Keys,
    kind: BlobKind,
    id: BlobId,
    plain: &[u8],
    zstd_level: i32,
) -> Result<SealedBlob, BlobError> {
    let raw_len = u32::try_from(plain.len()).map_err(|_| BlobError::TooLarge)?;
    let (compression, payload) =
        compress::compress(plain, zstd_level).map_err(|_| BlobError::Compress)?;
    let mut bytes = Vec::with_capacity(payload.len() + crate::crypto::SEAL_OVERHEAD);
    keys.seal_blob(&mut bytes, kind, &id, compression, &payload);
    drop(payload);
    let sealed = SealedBlob {
        id,
        kind,
        compression,
        raw_len,
        bytes,
    };
    open(keys, kind, id, compression, raw_len, &sealed.bytes)?;
    Ok(sealed)
}

/// Opens a sealed blob: AEAD first, then decompression capped at `raw_len`, then the
/// plaintext is re-hashed and must equal `id`.
pub fn open(
    keys: &Keys,
    kind: BlobKind,
    id: BlobId,
    compression: Compression,
    raw_len: u32,
    sealed: &[u8],
) -> Result<Vec<u8>, BlobError> {
    open_in_place(keys, kind, id, compression, raw_len, &mut sealed.to_vec())
}

/// [`open`], decrypting in `sealed` itself (which is garbage afterwards): the restore path
/// reads packs into buffers it owns and saves a copy per blob this way.
pub fn open_in_place(
    keys: &Keys,
    kind: BlobKind,
    id: BlobId,
    compression: Compression,
    raw_len: u32,
    sealed: &mut [u8],
) -> Result<Vec<u8>, BlobError> {
    let payload = keys
        .unseal_blob_in_place(kind, &id, compression, sealed)
        .map_err(|_| BlobError::Unauthentic)?;
    let raw_len = usize::try_from(raw_len).map_err(|_| BlobError::TooLarge)?;
    let plain =
        compress::decompress(compression, payload, raw_len).map_err(|_| BlobError::Decompress)?;
    if keys.blob_id(kind, &plain) != id {
        return Err(BlobError::IdMismatch);
    }
    Ok(plain)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::MasterKey;
    use crate::id::RepoId;
    use proptest::prelude::*;

    fn keys() -> Keys {
        Keys::derive(RepoId([2; 32]), MasterKey::generate())
    }

    proptest! {
        #[test]
        fn open_seal_round_trip(data in proptest::collection::vec(any::<u8>(), 0..5000), level in 1i32..5) {
            let k = keys();
            let id = k.blob_id(BlobKind::Data, &data);
            let s = seal(&k, BlobKind::Data, id, &data, level).unwrap();
            prop_assert_eq!(open(&k, s.kind, s.id, s.compression, s.raw_len, &s.bytes).unwrap(), data);
        }
    }

    #[test]
    fn open_rejects_wrong_id_and_flipped_bytes() {
        let k = keys();
        let data = b"some data some data some data".repeat(20);
        let id = k.blob_id(BlobKind::Data, &data);
        let mut s = seal(&k, BlobKind::Data, id, &data, 3).unwrap();
        let other = k.blob_id(BlobKind::Data, b"other");
        assert_eq!(
            open(&k, s.kind, other, s.compression, s.raw_len, &s.bytes),
            Err(BlobError::Unauthentic)
        );
        assert_eq!(
            open(&k, s.kind, s.id, s.compression, s.raw_len + 1, &s.bytes),
            Err(BlobError::Decompress)
        );
        s.bytes[40] ^= 0x80;
        assert_eq!(
            open(&k, s.kind, s.id, s.compression, s.raw_len, &s.bytes),
            Err(BlobError::Unauthentic)
        );
    }
}
