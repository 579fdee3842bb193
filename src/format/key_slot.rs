//! `format-spec/key-slot.md`: one key slot, the master key wrapped by a password.
//!
//! ```text
//! slot = magic "LARDERKY" ‖ version u16 ‖ repo_id [32] ‖ kdf u8 (1 = Argon2id v1.3)
//!        ‖ m_cost u32 (KiB) ‖ t_cost u32 ‖ p_cost u32 ‖ salt [32] ‖ created i64 (Unix s)
//!        ‖ host_len u16 ‖ host [host_len] (UTF-8) ‖ wrapped [72]
//! wrapped = nonce [24] ‖ XChaCha20-Poly1305(key = Argon2id(password, salt), master key [32])
//!           with every byte before `wrapped` as associated data
//! ```

use super::DecodeError;
use crate::id::RepoId;

/// Magic at the start of every key slot.
pub const MAGIC: &[u8; 8] = b"LARDERKY";

/// Length of the wrapped master key: nonce, 32-byte key, tag.
pub const WRAPPED_LEN: usize = 24 + 32 + 16;

/// Argon2id v1.3, the only KDF of version 1.
pub const KDF_ARGON2ID: u8 = 1;

/// Argon2id cost parameters, stored and authenticated in the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_cost: u32,
    /// Passes.
    pub t_cost: u32,
    /// Lanes.
    pub p_cost: u32,
}

impl KdfParams {
    /// The floor: OWASP's minimum for Argon2id (19 MiB, 2 passes, 1 lane). A slot below it
    /// is refused on creation and on open.
    pub const FLOOR: KdfParams = KdfParams {
        m_cost: 19 * 1024,
        t_cost: 2,
        p_cost: 1,
    };

    /// The ceiling, so that a forged slot cannot make `open` allocate or spin without bound.
    pub const CEILING: KdfParams = KdfParams {
        m_cost: 4 * 1024 * 1024,
        t_cost: 64,
        p_cost: 16,
    };

    /// Within floor and ceiling?
    pub fn in_range(&self) -> bool {
        let (f, c) = (Self::FLOOR, Self::CEILING);
        (f.m_cost..=c.m_cost).contains(&self.m_cost)
            && (f.t_cost..=c.t_cost).contains(&self.t_cost)
            && (f.p_cost..=c.p_cost).contains(&self.p_cost)
    }
}

impl std::fmt::Display for KdfParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "m={}KiB,t={},p={}",
            self.m_cost, self.t_cost, self.p_cost
        )
    }
}

/// A decoded key slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySlot {
    /// The repository it belongs to.
    pub repo_id: RepoId,
    /// Argon2id costs.
    pub kdf: KdfParams,
    /// Argon2id salt.
    pub salt: [u8; 32],
    /// When the slot was made (Unix seconds).
    pub created: i64,
    /// The host that made it.
    pub host: String,
    /// Nonce ‖ sealed master key.
    pub wrapped: [u8; WRAPPED_LEN],
}

impl KeySlot {
    /// The bytes bound as associated data: everything before `wrapped`.
    pub fn encode_ad(&self) -> Vec<u8> {
        let host = self.host.as_bytes();
        let host = &host[..host.len().min(u16::MAX as usize)];
        let mut out = Vec::with_capacity(96 + host.len());
        super::put_prefix(&mut out, MAGIC);
        out.extend_from_slice(self.repo_id.as_bytes());
        out.push(KDF_ARGON2ID);
        out.extend_from_slice(&self.kdf.m_cost.to_le_bytes());
        out.extend_from_slice(&self.kdf.t_cost.to_le_bytes());
        out.extend_from_slice(&self.kdf.p_cost.to_le_bytes());
        out.extend_from_slice(&self.salt);
        out.extend_from_slice(&self.created.to_le_bytes());
        let hl = u16::try_from(host.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&hl.to_le_bytes());
        out.extend_from_slice(host);
        out
    }

    /// The stored bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_ad();
        out.extend_from_slice(&self.wrapped);
        out
    }

    /// Decodes a slot; refuses KDF parameters outside floor and ceiling.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = super::take_prefix(bytes, MAGIC)?;
        let repo_id = RepoId(r.id("repository id")?);
        if r.u8("kdf")? != KDF_ARGON2ID {
            return Err(DecodeError::Invalid("kdf"));
        }
        let kdf = KdfParams {
            m_cost: r.u32("m_cost")?,
            t_cost: r.u32("t_cost")?,
            p_cost: r.u32("p_cost")?,
        };
        if !kdf.in_range() {
            return Err(DecodeError::Invalid(
                "kdf parameters (below the floor or above the ceiling)",
            ));
        }
        let salt = r.array("salt")?;
        let created = r.i64("created")?;
        let hl = usize::from(r.u16("host length")?);
        let host = std::str::from_utf8(r.bytes(hl, "host")?)
            .map_err(|_| DecodeError::Invalid("host (not UTF-8)"))?
            .to_owned();
        let wrapped = r.array("wrapped key")?;
        r.finish()?;
        Ok(Self {
            repo_id,
            kdf,
            salt,
            created,
            host,
            wrapped,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_floor() {
        let s = KeySlot {
            repo_id: RepoId([1; 32]),
            kdf: KdfParams::FLOOR,
            salt: [2; 32],
            created: 1_700_000_000,
            host: "db1".into(),
            wrapped: [3; WRAPPED_LEN],
        };
        assert_eq!(KeySlot::decode(&s.encode()).unwrap(), s);
        let mut weak = s.clone();
        weak.kdf.m_cost = 1024;
        assert!(KeySlot::decode(&weak.encode()).is_err());
        let mut long = s.encode();
        long.push(0);
        assert!(KeySlot::decode(&long).is_err());
    }
}
