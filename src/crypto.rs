//! Keys and sealing: the master key, the subkeys derived from it, keyed blob ids, and
//! XChaCha20-Poly1305 seal/unseal (`format-spec/crypto.md`).
//!
//! Invariant 5 (DESIGN.md): a random master key; subkeys for encryption, blob ids and the
//! chunker's gear table derived with BLAKE3 `derive_key` under distinct contexts; a fresh
//! 192-bit nonce from the OS for every seal. Secrets are zeroized on drop and their `Debug`
//! prints no bytes.

pub mod key_slot;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::format::{self, BlobKind, Compression, ObjectKind};
use crate::id::{BlobId, RepoId};

/// Bytes of a nonce.
pub const NONCE_LEN: usize = 24;
/// Bytes of a tag.
pub const TAG_LEN: usize = 16;
/// Bytes a seal adds to its plaintext.
pub const SEAL_OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// BLAKE3 `derive_key` contexts, one per subkey (`format-spec/crypto.md`).
pub const CONTEXT_ENCRYPTION: &str = "larder v1 2026-11-21 encryption key";
/// Context of the blob-id key.
pub const CONTEXT_BLOB_ID: &str = "larder v1 2026-11-21 blob id key";
/// Context of the chunker key.
pub const CONTEXT_CHUNKER: &str = "larder v1 2026-11-21 chunker gear key";

/// A sealed value failed authentication.
#[derive(Debug, thiserror::Error)]
#[error("authentication failed")]
pub struct Unauthentic;

/// The repository's random 256-bit master key.
#[derive(Clone)]
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A new key from the OS random source.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        random_fill(k.as_mut());
        Self(k)
    }

    /// Wraps raw bytes (from an unwrapped key slot).
    pub fn from_bytes(b: Zeroizing<[u8; 32]>) -> Self {
        Self(b)
    }

    /// The raw bytes, for wrapping into a key slot.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// Fills `buf` from the OS random source. Failure to get randomness is unrecoverable: no
/// seal may go ahead without a fresh nonce.
pub fn random_fill(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the OS random source must be available");
}

/// The two secrets that decide blob ids and chunk boundaries: the blob id key and the
/// chunker key (`format-spec/crypto.md`). Derived from the master key unless the config
/// carries its own (a repository made with `init --copy-chunker-params`, which shares them
/// with another so that `copy` can move blobs between the two without cutting them again).
#[derive(Clone, PartialEq, Eq)]
pub struct ChunkIdentity {
    blob_id_key: Zeroizing<[u8; 32]>,
    chunker_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for ChunkIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChunkIdentity(..)")
    }
}

impl ChunkIdentity {
    /// The identity every repository without its own derives from its master key.
    pub fn from_master(master: &MasterKey) -> Self {
        Self {
            blob_id_key: Zeroizing::new(blake3::derive_key(CONTEXT_BLOB_ID, master.expose())),
            chunker_key: Zeroizing::new(blake3::derive_key(CONTEXT_CHUNKER, master.expose())),
        }
    }

    /// An identity from its two keys (test vectors).
    pub fn from_keys(blob_id_key: [u8; 32], chunker_key: [u8; 32]) -> Self {
        Self {
            blob_id_key: Zeroizing::new(blob_id_key),
            chunker_key: Zeroizing::new(chunker_key),
        }
    }
}

/// In the config: `{"blob_id_key": hex, "chunker_key": hex}`.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChunkIdentityHex {
    blob_id_key: String,
    chunker_key: String,
}

impl Drop for ChunkIdentityHex {
    fn drop(&mut self) {
        self.blob_id_key.zeroize();
        self.chunker_key.zeroize();
    }
}

impl serde::Serialize for ChunkIdentity {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        ChunkIdentityHex {
            blob_id_key: hex::encode(*self.blob_id_key),
            chunker_key: hex::encode(*self.chunker_key),
        }
        .serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for ChunkIdentity {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let h = ChunkIdentityHex::deserialize(d)?;
        let key = |s: &str| {
            let mut k = Zeroizing::new([0u8; 32]);
            hex::decode_to_slice(s, k.as_mut())
                .map_err(|_| serde::de::Error::custom("a chunk identity key is 64 hex digits"))?;
            Ok(k)
        };
        Ok(Self {
            blob_id_key: key(&h.blob_id_key)?,
            chunker_key: key(&h.chunker_key)?,
        })
    }
}

/// All keys of an open repository.
pub struct Keys {
    repo: RepoId,
    master: MasterKey,
    aead: XChaCha20Poly1305,
    /// One BLAKE3 key per blob kind, indexed by kind code: binding the kind through the key
    /// rather than a prefix byte keeps the plaintext aligned to BLAKE3's 1 KiB chunks, which
    /// is 2-3x faster on the chunk sizes larder uses.
    id_keys: [Zeroizing<[u8; 32]>; 4],
    gear: Box<[u64; 256]>,
    identity: ChunkIdentity,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keys({:?}, ..)", self.repo)
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        self.gear.zeroize();
    }
}

impl Keys {
    /// Derives every subkey from the master key.
    pub fn derive(repo: RepoId, master: MasterKey) -> Self {
        let identity = ChunkIdentity::from_master(&master);
        Self::derive_with(repo, master, identity)
    }

    /// Derives the encryption key from the master key and takes blob ids and the gear table
    /// from `identity` (a config's own, or [`ChunkIdentity::from_master`]).
    pub fn derive_with(repo: RepoId, master: MasterKey, identity: ChunkIdentity) -> Self {
        let enc = Zeroizing::new(blake3::derive_key(CONTEXT_ENCRYPTION, master.expose()));
        let id_key = &identity.blob_id_key;
        let kind_key = |kind: u8| {
            Zeroizing::new(*blake3::keyed_hash(id_key, &[b'k', b'i', b'n', b'd', kind]).as_bytes())
        };
        let id_keys = [
            kind_key(0),
            kind_key(BlobKind::Data.code()),
            kind_key(BlobKind::ContentList.code()),
            kind_key(BlobKind::Tree.code()),
        ];
        let chunk_key = &identity.chunker_key;
        let aead = XChaCha20Poly1305::new(&(*enc).into());
        // 256 u64 little-endian words from the keyed XOF: the full table is secret, not a
        // 64-bit XOR of a public one (`format-spec/chunker.md`).
        let mut raw = Zeroizing::new([0u8; 256 * 8]);
        blake3::Hasher::new_keyed(chunk_key)
            .update(b"gear table")
            .finalize_xof()
            .fill(raw.as_mut());
        let mut gear = Box::new([0u64; 256]);
        for (g, w) in gear.iter_mut().zip(raw.chunks_exact(8)) {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            *g = u64::from_le_bytes(b);
        }
        Self {
            repo,
            master,
            aead,
            id_keys,
            gear,
            identity,
        }
    }

    /// The secrets blob ids and chunk boundaries come from.
    pub fn identity(&self) -> &ChunkIdentity {
        &self.identity
    }

    /// The repository these keys belong to.
    pub fn repo_id(&self) -> &RepoId {
        &self.repo
    }

    /// The master key (for wrapping into a new key slot).
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The chunker's secret gear table.
    pub fn gear(&self) -> &[u64; 256] {
        &self.gear
    }

    /// BLAKE3 of `plaintext` keyed with the kind's id key (`format-spec/crypto.md`).
    pub fn blob_id(&self, kind: BlobKind, plaintext: &[u8]) -> BlobId {
        let key = &self.id_keys[usize::from(kind.code())];
        BlobId(*blake3::keyed_hash(key, plaintext).as_bytes())
    }

    /// Seals `plaintext` with `ad`, appending `nonce ‖ ciphertext ‖ tag` to `out`.
    pub fn seal_into(&self, out: &mut Vec<u8>, ad: &[u8], plaintext: &[u8]) {
        seal_into(&self.aead, out, ad, plaintext);
    }

    /// Seals with a fixed nonce, for reproducible test vectors only (never in real writes).
    #[doc(hidden)]
    pub fn seal_into_for_vectors(
        &self,
        out: &mut Vec<u8>,
        ad: &[u8],
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) {
        seal_with_nonce(&self.aead, out, ad, plaintext, nonce);
    }

    /// Opens `nonce ‖ ciphertext ‖ tag` sealed with `ad`.
    pub fn unseal(&self, ad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        unseal(&self.aead, ad, sealed)
    }

    /// Seals a blob's payload (after compression) with its associated data.
    pub fn seal_blob(
        &self,
        out: &mut Vec<u8>,
        kind: BlobKind,
        id: &BlobId,
        compression: Compression,
        payload: &[u8],
    ) {
        let ad = format::blob_ad(&self.repo, kind, id, compression);
        self.seal_into(out, &ad, payload);
    }

    /// Opens a sealed blob.
    pub fn unseal_blob(
        &self,
        kind: BlobKind,
        id: &BlobId,
        compression: Compression,
        sealed: &[u8],
    ) -> Result<Vec<u8>, Unauthentic> {
        let ad = format::blob_ad(&self.repo, kind, id, compression);
        self.unseal(&ad, sealed)
    }

    /// Opens a sealed blob in place (see [`Keys::unseal_blob`]); returns the payload slice.
    pub fn unseal_blob_in_place<'b>(
        &self,
        kind: BlobKind,
        id: &BlobId,
        compression: Compression,
        sealed: &'b mut [u8],
    ) -> Result<&'b mut [u8], Unauthentic> {
        let ad = format::blob_ad(&self.repo, kind, id, compression);
        unseal_in_place(&self.aead, &ad, sealed)
    }

    /// Seals a whole object's body (config, pack header, index segment, snapshot).
    pub fn seal_object(&self, kind: ObjectKind, body: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(body.len() + SEAL_OVERHEAD);
        self.seal_into(&mut out, &format::object_ad(kind, &self.repo), body);
        out
    }

    /// Opens a whole object's body.
    pub fn unseal_object(&self, kind: ObjectKind, sealed: &[u8]) -> Result<Vec<u8>, Unauthentic> {
        self.unseal(&format::object_ad(kind, &self.repo), sealed)
    }
}

/// XChaCha20-Poly1305 with a fresh random nonce; appends `nonce ‖ ciphertext ‖ tag`.
pub(crate) fn seal_into(aead: &XChaCha20Poly1305, out: &mut Vec<u8>, ad: &[u8], plaintext: &[u8]) {
    let mut nonce = [0u8; NONCE_LEN];
    random_fill(&mut nonce);
    seal_with_nonce(aead, out, ad, plaintext, nonce);
}

/// Seals with a caller's nonce. Only for reproducible test vectors (`tests/vectors.rs`): a
/// nonce must never be reused, which is why every real seal draws a fresh one.
pub(crate) fn seal_with_nonce(
    aead: &XChaCha20Poly1305,
    out: &mut Vec<u8>,
    ad: &[u8],
    plaintext: &[u8],
    nonce: [u8; NONCE_LEN],
) {
    out.reserve(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = aead
        .encrypt_inout_detached(&XNonce::from(nonce), ad, (&mut out[start..]).into())
        .expect("XChaCha20-Poly1305 accepts messages up to 256 GiB");
    out.extend_from_slice(tag.as_slice());
}

/// Opens `nonce ‖ ciphertext ‖ tag`.
pub(crate) fn unseal(
    aead: &XChaCha20Poly1305,
    ad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, Unauthentic> {
    let mut buf = sealed.to_vec();
    let len = unseal_in_place(aead, ad, &mut buf)?.len();
    buf.copy_within(NONCE_LEN..NONCE_LEN + len, 0);
    buf.truncate(len);
    Ok(buf)
}

/// Opens `nonce ‖ ciphertext ‖ tag` in place; returns the plaintext, which overwrote the
/// ciphertext. On failure the buffer is left as it was.
pub(crate) fn unseal_in_place<'b>(
    aead: &XChaCha20Poly1305,
    ad: &[u8],
    sealed: &'b mut [u8],
) -> Result<&'b mut [u8], Unauthentic> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(Unauthentic);
    }
    let (nonce, rest) = sealed.split_at_mut(NONCE_LEN);
    let at = rest.len() - TAG_LEN;
    let (ct, tag) = rest.split_at_mut(at);
    let nonce = XNonce::try_from(&*nonce).map_err(|_| Unauthentic)?;
    let tag = Tag::try_from(&*tag).map_err(|_| Unauthentic)?;
    aead.decrypt_inout_detached(&nonce, ad, (&mut *ct).into(), &tag)
        .map_err(|_| Unauthentic)?;
    Ok(ct)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(
            RepoId([1; 32]),
            MasterKey::from_bytes(Zeroizing::new([7; 32])),
        )
    }

    #[test]
    fn seal_round_trip_and_tamper() {
        let k = keys();
        let id = k.blob_id(BlobKind::Data, b"hello");
        let mut out = Vec::new();
        k.seal_blob(&mut out, BlobKind::Data, &id, Compression::None, b"hello");
        assert_eq!(out.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(
            k.unseal_blob(BlobKind::Data, &id, Compression::None, &out)
                .unwrap(),
            b"hello"
        );
        // Kind, compression and id are bound: changing any fails.
        assert!(
            k.unseal_blob(BlobKind::ContentList, &id, Compression::None, &out)
                .is_err()
        );
        assert!(
            k.unseal_blob(BlobKind::Data, &id, Compression::Zstd, &out)
                .is_err()
        );
        out[30] ^= 1;
        assert!(
            k.unseal_blob(BlobKind::Data, &id, Compression::None, &out)
                .is_err()
        );
        assert!(k.unseal(b"", &[0; 10]).is_err());
    }

    #[test]
    fn ids_are_keyed_and_kind_bound() {
        let k = keys();
        let other = Keys::derive(
            RepoId([1; 32]),
            MasterKey::from_bytes(Zeroizing::new([8; 32])),
        );
        assert_ne!(
            k.blob_id(BlobKind::Data, b"x"),
            other.blob_id(BlobKind::Data, b"x")
        );
        assert_ne!(
            k.blob_id(BlobKind::Data, b"x"),
            k.blob_id(BlobKind::ContentList, b"x")
        );
        assert_ne!(k.gear()[..], other.gear()[..]);
    }

    #[test]
    fn nonces_are_fresh() {
        let k = keys();
        let a = k.seal_object(ObjectKind::Snapshot, b"s");
        let b = k.seal_object(ObjectKind::Snapshot, b"s");
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert!(k.unseal_object(ObjectKind::IndexSegment, &a).is_err());
        assert_eq!(k.unseal_object(ObjectKind::Snapshot, &a).unwrap(), b"s");
    }
}
