//! `format-spec/config.md`: the one `config` object, written by `init` and never modified.
//!
//! ```text
//! object = magic "LARDERCF" ‖ version u16 ‖ repo_id [32] ‖ sealed(body)   (ObjectKind::Config)
//! body   = JSON, see `Config`; unknown fields are an error
//! ```
//! The repository id is in clear because it is needed before any key is known: it is bound
//! into every key slot's and every seal's associated data.

use super::{DecodeError, Reader};
use crate::id::RepoId;

/// Magic at the start of `config`.
pub const MAGIC: &[u8; 8] = b"LARDERCF";

/// The chunker's parameters (`format-spec/chunker.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChunkerParams {
    /// Always `"fastcdc-2020"` in version 1.
    pub algorithm: ChunkerAlgorithm,
    /// Smallest chunk, bytes (except a stream's last).
    pub min_size: u32,
    /// Target average chunk, bytes.
    pub avg_size: u32,
    /// Largest chunk, bytes.
    pub max_size: u32,
    /// FastCDC normalization level (0 to 3).
    pub normalization: u8,
}

/// The chunking algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChunkerAlgorithm {
    /// FastCDC as in the 2020 paper, with a keyed gear table.
    #[serde(rename = "fastcdc-2020")]
    FastCdc2020,
}

impl ChunkerParams {
    /// Checks the bounds the chunker needs: even sizes, min < avg < max, 256 B ≤ min,
    /// max ≤ 16 MiB, normalization ≤ 3.
    pub fn validate(&self) -> Result<(), &'static str> {
        let (a, b, c) = (self.min_size, self.avg_size, self.max_size);
        if a % 2 != 0 || b % 2 != 0 || c % 2 != 0 {
            return Err("chunk sizes must be even");
        }
        if !(a < b && b < c) {
            return Err("chunk sizes must satisfy min < avg < max");
        }
        if a < 256 || c > 16 * 1024 * 1024 {
            return Err("chunk sizes must lie between 256 B and 16 MiB");
        }
        if self.normalization > 3 {
            return Err("normalization must be 0 to 3");
        }
        Ok(())
    }
}

/// The decrypted body of `config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Repeats the clear header's version; must match.
    pub version: u16,
    /// Repeats the clear header's repository id; must match.
    pub repo_id: RepoId,
    /// When `init` ran.
    pub created: jiff::Timestamp,
    /// Chunk sizes, fixed for the repository's life (changing them would stop dedup).
    pub chunker: ChunkerParams,
    /// Target pack size in bytes; a pack is closed once its blobs reach it.
    pub pack_size: u32,
    /// Default zstd level for new blobs (a snapshot may override it).
    pub zstd_level: i32,
    /// The blob id and chunker keys, when this repository shares them with another (`init
    /// --copy-chunker-params`); absent, both derive from the master key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk_identity: Option<crate::crypto::ChunkIdentity>,
    /// Larger chunks for streams that compress very well (chunker.md, "Coarse chunking");
    /// absent, every stream is cut with `chunker`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coarse_chunking: Option<CoarseChunking>,
}

/// The second chunker a stream snapshot may use: on a stream that compresses very well and
/// changes at many places, per-chunk costs (nonce, tag, index and content-list entries) and
/// the poor compression of small chunks outweigh what small chunks deduplicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CoarseChunking {
    /// The coarse chunk sizes.
    pub chunker: ChunkerParams,
    /// Only a stream whose sample compresses at least this many times may be cut coarse.
    pub min_ratio: u32,
}

impl CoarseChunking {
    /// Checks the coarse sizes and that they are coarser than `fine`'s.
    pub fn validate(&self, fine: &ChunkerParams) -> Result<(), &'static str> {
        self.chunker.validate()?;
        if self.chunker.avg_size <= fine.avg_size {
            return Err("coarse chunks must be larger on average than the default chunks");
        }
        if !(2..=1000).contains(&self.min_ratio) {
            return Err("coarse chunking ratio must be 2 to 1000");
        }
        Ok(())
    }
}

impl Config {
    /// Encodes the plaintext body.
    pub fn encode_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("config serializes")
    }

    /// Decodes and validates the plaintext body against the clear header.
    pub fn decode_body(bytes: &[u8], header_repo: &RepoId) -> Result<Self, DecodeError> {
        let c: Config = serde_json::from_slice(bytes)?;
        if c.version != super::VERSION {
            return Err(DecodeError::UnsupportedVersion(c.version));
        }
        if &c.repo_id != header_repo {
            return Err(DecodeError::Invalid(
                "repository id differs from the clear header",
            ));
        }
        c.chunker.validate().map_err(DecodeError::Invalid)?;
        if let Some(coarse) = &c.coarse_chunking {
            coarse.validate(&c.chunker).map_err(DecodeError::Invalid)?;
        }
        if c.pack_size < 1024 * 1024 || c.pack_size > 1024 * 1024 * 1024 {
            return Err(DecodeError::Invalid("pack size (1 MiB to 1 GiB)"));
        }
        if !(-7..=22).contains(&c.zstd_level) {
            return Err(DecodeError::Invalid("zstd level"));
        }
        Ok(c)
    }
}

/// Builds the stored object from the repository id and the sealed body.
pub fn encode(repo: &RepoId, sealed_body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(super::PREFIX_LEN + 32 + sealed_body.len());
    super::put_prefix(&mut out, MAGIC);
    out.extend_from_slice(repo.as_bytes());
    out.extend_from_slice(sealed_body);
    out
}

/// Splits the stored object into the repository id and the sealed body.
pub fn decode(bytes: &[u8]) -> Result<(RepoId, &[u8]), DecodeError> {
    let mut r: Reader<'_> = super::take_prefix(bytes, MAGIC)?;
    let repo = RepoId(r.id("repository id")?);
    Ok((repo, r.rest()))
}
