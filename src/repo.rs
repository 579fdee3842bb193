//! A repository: `init`, `open` (config → key slot → keys → catalog sync), key slots, and
//! reading blobs back. Writing goes through [`writer::RepoWriter`].
//!
//! Invariant 2 (write order makes crashes harmless): `init` writes the key slot before
//! `config`, so a repository exists only once it can be opened; the writer stores packs,
//! then the index segment naming them, then the snapshot.

pub mod lock;
pub mod object;
pub mod writer;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{self, Backend, ObjectKey, Prefix};
use crate::blob;
use crate::catalog::sync::SyncStats;
use crate::catalog::{BlobLocation, Catalog, sync};
use crate::crypto::key_slot::{self, Password};
use crate::crypto::{ChunkIdentity, Keys, MasterKey};
use crate::error::{Error, Result};
use crate::format::config::{ChunkerAlgorithm, ChunkerParams, CoarseChunking, Config};
use crate::format::key_slot::{KdfParams, KeySlot};
use crate::format::{self, BlobKind, ObjectKind};
use crate::id::{BlobId, KeyId, RepoId, object_hash};

/// Default chunk sizes, chosen by measurement on a pg_dump pair (`format-spec/chunker.md`).
pub const DEFAULT_CHUNKER: ChunkerParams = ChunkerParams {
    algorithm: ChunkerAlgorithm::FastCdc2020,
    min_size: 1024,
    avg_size: 4 * 1024,
    max_size: 32 * 1024,
    normalization: 1,
};

/// Default coarse chunking (`format-spec/chunker.md`, "Coarse chunking"): min 256 KiB,
/// avg 1 MiB, max 2 MiB, for streams that compress 32 times or more.
pub const DEFAULT_COARSE: CoarseChunking = CoarseChunking {
    chunker: ChunkerParams {
        algorithm: ChunkerAlgorithm::FastCdc2020,
        min_size: 256 * 1024,
        avg_size: 1024 * 1024,
        max_size: 2 * 1024 * 1024,
        normalization: 1,
    },
    min_ratio: 32,
};

/// Default target pack size: 16 MiB.
pub const DEFAULT_PACK_SIZE: u32 = 16 * 1024 * 1024;

/// Default zstd level.
pub const DEFAULT_ZSTD_LEVEL: i32 = 3;

/// Settings fixed at `init`.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// Chunk sizes.
    pub chunker: ChunkerParams,
    /// Target pack size in bytes.
    pub pack_size: u32,
    /// Default zstd level.
    pub zstd_level: i32,
    /// Argon2id costs of the first key slot.
    pub kdf: KdfParams,
    /// Host recorded in the first key slot.
    pub host: String,
    /// Blob id and chunker keys shared with another repository (`--copy-chunker-params`),
    /// stored in the config; `None` derives them from the new master key.
    pub chunk_identity: Option<ChunkIdentity>,
    /// Coarse chunking for very compressible streams (`None`: one chunk size for all).
    pub coarse_chunking: Option<CoarseChunking>,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            chunker: DEFAULT_CHUNKER,
            pack_size: DEFAULT_PACK_SIZE,
            zstd_level: DEFAULT_ZSTD_LEVEL,
            kdf: key_slot::DEFAULT_KDF,
            host: crate::snapshot::default_host(),
            chunk_identity: None,
            coarse_chunking: Some(DEFAULT_COARSE),
        }
    }
}

/// Creates a repository in an empty backend; returns its id.
pub fn init(b: &dyn Backend, password: &Password, opts: &InitOptions) -> Result<RepoId> {
    match b.get(&ObjectKey::config()) {
        Ok(_) => {
            return Err(Error::RepoExists {
                location: b.location(),
            });
        }
        Err(backend::Error::NotFound { .. }) => {}
        Err(e) => return Err(e.into()),
    }
    opts.chunker
        .validate()
        .map_err(|e| Error::InvalidArgument(e.into()))?;
    let mut repo_id = [0u8; 32];
    crate::crypto::random_fill(&mut repo_id);
    let repo_id = RepoId(repo_id);
    let config = Config {
        version: format::VERSION,
        repo_id,
        created: jiff::Timestamp::now(),
        chunker: opts.chunker,
        pack_size: opts.pack_size,
        zstd_level: opts.zstd_level,
        chunk_identity: opts.chunk_identity.clone(),
        coarse_chunking: opts.coarse_chunking,
    };
    // Check the body as a reader would before anything is written.
    Config::decode_body(&config.encode_body(), &repo_id)
        .map_err(|e| Error::InvalidArgument(format!("invalid repository settings: {e}")))?;
    let master = MasterKey::generate();
    let slot = key_slot::wrap(repo_id, &master, password, opts.kdf, &opts.host)?;
    let identity = opts
        .chunk_identity
        .clone()
        .unwrap_or_else(|| ChunkIdentity::from_master(&master));
    let keys = Keys::derive_with(repo_id, master, identity);
    store_key_slot(b, &slot)?;
    let sealed = keys.seal_object(ObjectKind::Config, &config.encode_body());
    b.put(
        &ObjectKey::config(),
        &format::config::encode(&repo_id, &sealed),
    )
    .map_err(|e| match e {
        backend::Error::AlreadyExists { .. } => Error::RepoExists {
            location: b.location(),
        },
        e => e.into(),
    })?;
    Ok(repo_id)
}

fn store_key_slot(b: &dyn Backend, slot: &KeySlot) -> Result<KeyId> {
    let bytes = slot.encode();
    let id = KeyId(object_hash(&bytes));
    object::put_named(b, &ObjectKey::key_slot(&id), &bytes)?;
    Ok(id)
}

/// An open repository: its backend, keys, settings and catalog.
#[derive(Debug)]
pub struct Repo {
    backend: Arc<dyn Backend>,
    keys: Arc<Keys>,
    config: Config,
    catalog: Catalog,
    catalog_path: PathBuf,
    key_id: KeyId,
    sync_stats: SyncStats,
}

/// Reads `config` and returns the repository id and the sealed body.
fn read_config(b: &dyn Backend) -> Result<(RepoId, Vec<u8>)> {
    let bytes = match b.get(&ObjectKey::config()) {
        Ok(bytes) => bytes,
        Err(backend::Error::NotFound { .. }) => {
            return Err(Error::RepoNotFound {
                location: b.location(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    let (repo, sealed) = format::config::decode(&bytes).map_err(|e| Error::corrupt("config", e))?;
    Ok((repo, sealed.to_vec()))
}

/// Every key slot of the repository that decodes, with its id.
pub fn key_slots(b: &dyn Backend, repo: &RepoId) -> Result<Vec<(KeyId, KeySlot)>> {
    let mut out = Vec::new();
    for o in b.list(Prefix::Keys)? {
        let Ok(id) = o.key.name().parse::<KeyId>() else {
            continue;
        };
        let bytes = object::read_named(b, &o.key, id.as_bytes())?;
        let slot = KeySlot::decode(&bytes).map_err(|e| Error::corrupt(o.key.to_string(), e))?;
        if &slot.repo_id == repo {
            out.push((id, slot));
        }
    }
    out.sort_by_key(|(id, s)| (s.created, *id));
    Ok(out)
}

impl Repo {
    /// Opens the repository: reads `config`, finds a key slot the password opens, derives
    /// the keys and brings the catalog under `cache_dir` up to date.
    pub fn open(b: Arc<dyn Backend>, password: &Password, cache_dir: &Path) -> Result<Self> {
        let (repo_id, sealed) = read_config(b.as_ref())?;
        let slots = key_slots(b.as_ref(), &repo_id)?;
        let mut opened = None;
        for (id, slot) in &slots {
            if let Some(master) = key_slot::unwrap(slot, password)? {
                opened = Some((*id, master));
                break;
            }
        }
        if slots.is_empty() {
            // Slots exist for some other repository id, or none at all: either way `config`
            // and `keys/` disagree, which a password cannot fix.
            return Err(Error::corrupt(
                "config",
                format::DecodeError::Invalid("no key slot belongs to its repository id"),
            ));
        }
        let (key_id, master) = opened.ok_or(Error::WrongPassword)?;
        let keys = Keys::derive(repo_id, master);
        let body = keys
            .unseal_object(ObjectKind::Config, &sealed)
            .map_err(|_| Error::UnauthenticObject {
                object: "config".into(),
            })?;
        let config =
            Config::decode_body(&body, &repo_id).map_err(|e| Error::corrupt("config", e))?;
        let keys = match &config.chunk_identity {
            Some(identity) => Keys::derive_with(repo_id, keys.master().clone(), identity.clone()),
            None => keys,
        };
        let catalog_path = cache_dir.join(repo_id.to_hex()).join("catalog.sqlite");
        let mut catalog = Catalog::open(&catalog_path, &repo_id)?;
        tracing::info!(location = %b.location(), repository = %repo_id, key = %key_id, "repository opened");
        let sync_stats = sync::sync(&mut catalog, b.as_ref(), &keys)?;
        tracing::debug!(
            catalog = %catalog_path.display(),
            segments_added = sync_stats.segments_added,
            rebuilt = sync_stats.rebuilt,
            snapshots_added = sync_stats.snapshots_added,
            snapshots_removed = sync_stats.snapshots_removed,
            events_added = sync_stats.events_added,
            unreadable = sync_stats.unreadable.len(),
            "catalog synced"
        );
        Ok(Self {
            backend: b,
            keys: Arc::new(keys),
            config,
            catalog,
            catalog_path,
            key_id,
            sync_stats,
        })
    }

    /// The storage.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The keys.
    pub fn keys(&self) -> &Arc<Keys> {
        &self.keys
    }

    /// The settings from `config`.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The catalog.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The catalog, for writing.
    pub fn catalog_mut(&mut self) -> &mut Catalog {
        &mut self.catalog
    }

    /// A second connection to the catalog, for a pipeline thread.
    pub fn open_catalog(&self) -> Result<Catalog> {
        Catalog::open(&self.catalog_path, self.keys.repo_id())
    }

    /// The key slot the password opened.
    pub fn key_id(&self) -> &KeyId {
        &self.key_id
    }

    /// Brings the catalog up to date with the repository again (after taking a lock, or
    /// after prune rewrote the index).
    pub fn resync(&mut self) -> Result<SyncStats> {
        sync::sync(&mut self.catalog, self.backend.as_ref(), &self.keys)
    }

    /// What the catalog sync at open did.
    pub fn sync_stats(&self) -> &SyncStats {
        &self.sync_stats
    }

    /// Where a blob is stored.
    pub fn locate(&self, id: &BlobId) -> Result<BlobLocation> {
        self.catalog
            .locate(id)?
            .ok_or(Error::MissingBlob { blob: *id })
    }

    /// Loads one blob: catalog → pack range → unseal → bounded decompress → re-hash.
    pub fn load_blob(&self, id: &BlobId, kind: BlobKind) -> Result<Vec<u8>> {
        load_blob(&self.catalog, self.backend.as_ref(), &self.keys, id, kind)
    }

    /// Adds a key slot for `password`; returns its id.
    pub fn add_key(&self, password: &Password, kdf: KdfParams, host: &str) -> Result<KeyId> {
        let slot = key_slot::wrap(
            *self.keys.repo_id(),
            self.keys.master(),
            password,
            kdf,
            host,
        )?;
        store_key_slot(self.backend.as_ref(), &slot)
    }

    /// Every key slot.
    pub fn key_slots(&self) -> Result<Vec<(KeyId, KeySlot)>> {
        key_slots(self.backend.as_ref(), self.keys.repo_id())
    }

    /// Removes a key slot. Refuses the slot this session opened with (use `passwd`), and
    /// the last slot.
    pub fn remove_key(&self, id: &KeyId) -> Result<()> {
        let slots = self.key_slots()?;
        if !slots.iter().any(|(k, _)| k == id) {
            return Err(Error::KeySlot(format!("no key slot {id}")));
        }
        if id == &self.key_id {
            return Err(Error::KeySlot(format!(
                "key slot {} is the one this password opened; open with another password to remove it, or use `key passwd`",
                id.short()
            )));
        }
        if slots.len() <= 1 {
            return Err(Error::KeySlot(
                "refusing to remove the last key slot".into(),
            ));
        }
        self.backend.delete(&ObjectKey::key_slot(id))?;
        Ok(())
    }

    /// Replaces the slot this session opened with a new one for `password`: the new slot is
    /// written before the old one is removed.
    pub fn change_password(
        &mut self,
        password: &Password,
        kdf: KdfParams,
        host: &str,
    ) -> Result<KeyId> {
        let new = self.add_key(password, kdf, host)?;
        let old = std::mem::replace(&mut self.key_id, new);
        self.backend.delete(&ObjectKey::key_slot(&old))?;
        Ok(new)
    }
}

/// Loads and verifies one blob of the expected kind (shared by pipeline threads that hold
/// their own catalog connection).
pub fn load_blob(
    cat: &Catalog,
    b: &dyn Backend,
    keys: &Keys,
    id: &BlobId,
    kind: BlobKind,
) -> Result<Vec<u8>> {
    let at = cat.locate(id)?.ok_or(Error::MissingBlob { blob: *id })?;
    if at.entry.kind != kind {
        return Err(Error::CorruptBlob {
            pack: at.pack,
            blob: *id,
            reason: "indexed with the wrong blob kind",
        });
    }
    let sealed = b
        .get_range(&ObjectKey::pack(&at.pack), at.entry.range())
        .map_err(Error::reading_pack(at.pack))?;
    blob::open(
        keys,
        at.entry.kind,
        *id,
        at.entry.compression,
        at.entry.raw_len,
        &sealed,
    )
    .map_err(|e| Error::CorruptBlob {
        pack: at.pack,
        blob: *id,
        reason: e.reason(),
    })
}
