//! Key slots: the master key wrapped under a key derived from a password with Argon2id
//! (`format-spec/key-slot.md`). Several slots may exist; any one opens the repository.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::KeyInit;
use zeroize::Zeroizing;

use super::{MasterKey, Unauthentic, random_fill};
use crate::error::{Error, Result};
use crate::format::key_slot::{KdfParams, KeySlot, WRAPPED_LEN};
use crate::id::RepoId;

/// Default Argon2id costs for new slots: 64 MiB, 3 passes, 2 lanes (README "Security").
pub const DEFAULT_KDF: KdfParams = KdfParams {
    m_cost: 64 * 1024,
    t_cost: 3,
    p_cost: 2,
};

/// A password, zeroized on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<Vec<u8>>);

impl Password {
    /// Takes ownership of the bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

fn derive_kek(password: &Password, salt: &[u8; 32], kdf: KdfParams) -> Result<XChaCha20Poly1305> {
    if !kdf.in_range() {
        return Err(Error::KdfParams(kdf.to_string()));
    }
    let params = Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| Error::KdfParams(format!("{kdf} ({e})")))?;
    let mut kek = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.bytes(), salt, kek.as_mut())
        .map_err(|e| Error::KdfParams(format!("{kdf} ({e})")))?;
    Ok(XChaCha20Poly1305::new(&(*kek).into()))
}

/// Makes a new slot wrapping `master` under `password`, with a fresh salt and nonce.
pub fn wrap(
    repo: RepoId,
    master: &MasterKey,
    password: &Password,
    kdf: KdfParams,
    host: &str,
) -> Result<KeySlot> {
    let mut salt = [0u8; 32];
    random_fill(&mut salt);
    let mut nonce = [0u8; super::NONCE_LEN];
    random_fill(&mut nonce);
    let created = jiff::Timestamp::now().as_second();
    wrap_with(repo, master, password, kdf, host, salt, nonce, created)
}

/// [`wrap`] with every random or time-dependent input given: for reproducible test vectors
/// only.
#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub fn wrap_with(
    repo: RepoId,
    master: &MasterKey,
    password: &Password,
    kdf: KdfParams,
    host: &str,
    salt: [u8; 32],
    nonce: [u8; super::NONCE_LEN],
    created: i64,
) -> Result<KeySlot> {
    let mut slot = KeySlot {
        repo_id: repo,
        kdf,
        salt,
        created,
        host: host.to_owned(),
        wrapped: [0; WRAPPED_LEN],
    };
    let kek = derive_kek(password, &salt, kdf)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    super::seal_with_nonce(&kek, &mut out, &slot.encode_ad(), master.expose(), nonce);
    slot.wrapped = out
        .try_into()
        .map_err(|_| Error::KdfParams("wrapped key length".into()))?;
    Ok(slot)
}

/// Unwraps the master key if `password` opens `slot`.
pub fn unwrap(slot: &KeySlot, password: &Password) -> Result<Option<MasterKey>> {
    let kek = derive_kek(password, &slot.salt, slot.kdf)?;
    match super::unseal(&kek, &slot.encode_ad(), &slot.wrapped) {
        Ok(plain) => {
            let plain = Zeroizing::new(plain);
            let mut key = Zeroizing::new([0u8; 32]);
            if plain.len() != 32 {
                return Ok(None);
            }
            key.copy_from_slice(&plain);
            Ok(Some(MasterKey::from_bytes(key)))
        }
        Err(Unauthentic) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_unwrap() {
        let m = MasterKey::generate();
        let pw = Password::new(b"secret".to_vec());
        let slot = wrap(RepoId([1; 32]), &m, &pw, KdfParams::FLOOR, "h").unwrap();
        let got = unwrap(&slot, &pw).unwrap().unwrap();
        assert_eq!(got.expose(), m.expose());
        assert!(
            unwrap(&slot, &Password::new(b"nope".to_vec()))
                .unwrap()
                .is_none()
        );
        // The parameters are authenticated: raising them changes the derived key and the AD.
        let mut tampered = slot.clone();
        tampered.kdf.t_cost += 1;
        assert!(unwrap(&tampered, &pw).unwrap().is_none());
        let weak = KdfParams {
            m_cost: 8,
            ..KdfParams::FLOOR
        };
        assert!(wrap(RepoId([1; 32]), &m, &pw, weak, "h").is_err());
    }
}
