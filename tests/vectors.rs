//! Test vectors for `format-spec/` and the fixture repository of format version 1.
//!
//! Every vector is built here from the spec's layout, with fixed keys, salts, nonces and
//! times, independently of the writers in `src/` (the library is used only to seal, hash and
//! decode). `vectors_match_committed` fails if the committed files in
//! `format-spec/vectors/` drift from this generator; run with `LARDER_BLESS_VECTORS=1` to
//! rewrite them after a deliberate format change (and say so in the spec). Each vector is
//! also decoded by the library as its own named test.
//!
//! Note: vectors that contain zstd output can change with a zstd upgrade; decoding them must
//! keep working regardless, which is what the per-vector tests check.

// A test file: its helpers may unwrap (clippy exempts only `#[test]` functions themselves).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use larder::crypto::key_slot::{self, Password};
use larder::crypto::{ChunkIdentity, Keys, MasterKey};
use larder::format::config::{self, ChunkerAlgorithm, ChunkerParams, CoarseChunking, Config};
use larder::format::content_list::{ContentListBlob, ListEntry};
use larder::format::event::{self, Event, EventKind};
use larder::format::index_segment::{self, IndexSegment, IndexedPack};
use larder::format::key_slot::{KdfParams, KeySlot};
use larder::format::lock::{self, LockBody, LockKind};
use larder::format::pack::{self, BlobEntry, PackHeader};
use larder::format::snapshot::{self, ProducerStatus, Quarantine, Root, Snapshot, Source};
use larder::format::tree::{Content, EntryKind, Time, Tree, TreeEntry};
use larder::format::{self as fmt, BlobKind, Compression, ObjectKind};
use larder::id::{BlobId, PackId, RepoId, SnapshotId, object_hash};
use zeroize::Zeroizing;

const REPO: RepoId = RepoId([0x11; 32]);
const MASTER: [u8; 32] = [0x22; 32];
const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: [u8; 32] = [0x33; 32];
const CREATED: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z
const HOST: &str = "vector-host";

fn nonce(n: u8) -> [u8; 24] {
    [n; 24]
}

fn keys() -> Keys {
    Keys::derive(REPO, MasterKey::from_bytes(Zeroizing::new(MASTER)))
}

/// `n` bytes of the BLAKE3 XOF of `label`: the recipe for every pseudo-random input.
fn xof(label: &str, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    blake3::Hasher::new()
        .update(label.as_bytes())
        .finalize_xof()
        .fill(&mut out);
    out
}

struct Vector {
    recipe: String,
    bytes: Vec<u8>,
}

fn seal_blob(k: &Keys, kind: BlobKind, plain: &[u8], n: u8) -> (BlobEntry, Vec<u8>) {
    let id = k.blob_id(kind, plain);
    let (compression, payload) = larder::compress::compress(plain, 3).unwrap();
    let mut sealed = Vec::new();
    k.seal_into_for_vectors(
        &mut sealed,
        &fmt::blob_ad(&REPO, kind, &id, compression),
        &payload,
        nonce(n),
    );
    let entry = BlobEntry {
        id,
        kind,
        compression,
        offset: 0,
        stored_len: u32::try_from(sealed.len()).unwrap(),
        raw_len: u32::try_from(plain.len()).unwrap(),
    };
    (entry, sealed)
}

fn seal_object(k: &Keys, kind: ObjectKind, body: &[u8], n: u8) -> Vec<u8> {
    let mut out = Vec::new();
    k.seal_into_for_vectors(&mut out, &fmt::object_ad(kind, &REPO), body, nonce(n));
    out
}

fn pack_bytes(k: &Keys) -> (Vec<u8>, Vec<BlobEntry>) {
    let mut bytes = Vec::new();
    fmt::put_prefix(&mut bytes, pack::MAGIC);
    let mut entries = Vec::new();
    for (plain, n) in [
        (b"alpha ".repeat(100), 0x50),
        (xof("pack blob 2", 64), 0x51),
    ] {
        let (mut e, sealed) = seal_blob(k, BlobKind::Data, &plain, n);
        e.offset = bytes.len() as u64;
        bytes.extend_from_slice(&sealed);
        entries.push(e);
    }
    let header = PackHeader {
        blobs: entries.clone(),
    };
    let sealed = seal_object(k, ObjectKind::PackHeader, &header.encode(), 0x52);
    bytes.extend_from_slice(&sealed);
    bytes.extend_from_slice(&u32::try_from(sealed.len()).unwrap().to_le_bytes());
    (bytes, entries)
}

fn content_list_node() -> ContentListBlob {
    ContentListBlob {
        level: 0,
        entries: (0..3u64)
            .map(|i| ListEntry {
                id: BlobId(*blake3::hash(&i.to_le_bytes()).as_bytes()),
                size: 1000 + i,
            })
            .collect(),
    }
}

/// The level-0 list node of the tree vector's list-form file: 20 chunks of 4,096 bytes, ids
/// blake3("tree vector chunk" ‖ u64 LE i). More than `MAX_INLINE` chunks, so a writer must
/// store a list; no id cuts a node (content-list.md), so this one node is the whole list.
fn tree_list_node() -> ContentListBlob {
    let node = ContentListBlob {
        level: 0,
        entries: (0..20u64)
            .map(|i| {
                let mut h = blake3::Hasher::new();
                h.update(b"tree vector chunk").update(&i.to_le_bytes());
                ListEntry {
                    id: BlobId(*h.finalize().as_bytes()),
                    size: 4096,
                }
            })
            .collect(),
    };
    assert!(
        node.entries.iter().all(|e| e.id.as_bytes()[0] != 0),
        "no entry of the tree vector's list cuts a node"
    );
    node
}

/// The directory `/srv/data` as the tree vector lists it: one entry of every kind
/// (tree.md), in name order.
fn tree_vector(k: &Keys) -> Tree {
    let base = |name: &[u8], kind: EntryKind| TreeEntry {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 100,
        user: "alice".into(),
        group: "users".into(),
        mtime: Time {
            secs: CREATED - 86_400,
            nanos: 123_456_789,
        },
        ctime: Time {
            secs: CREATED - 3_600,
            nanos: 987_654_321,
        },
        inode: 0,
        device: 0x803,
        size: 0,
        sparse: false,
        xattrs: Vec::new(),
    };
    let inline = vec![
        ListEntry {
            id: k.blob_id(BlobKind::Data, b"bonjour, "),
            size: 9,
        },
        ListEntry {
            id: k.blob_id(BlobKind::Data, b"larder\n"),
            size: 7,
        },
    ];
    let root = |kind, inode| TreeEntry {
        uid: 0,
        gid: 6,
        user: "root".into(),
        group: "disk".into(),
        mode: 0o660,
        inode,
        ..base(b"", kind)
    };
    let entries = vec![
        TreeEntry {
            name: b"block-sda".to_vec(),
            ..root(EntryKind::BlockDevice(0x800), 2001)
        },
        TreeEntry {
            // "café" in Latin-1: not UTF-8.
            inode: 1001,
            size: 16,
            xattrs: vec![
                (b"user.comment".to_vec(), b"latin-1 name".to_vec()),
                (b"user.mime_type".to_vec(), b"text/plain".to_vec()),
            ],
            ..base(b"caf\xe9", EntryKind::File(Content::Inline(inline)))
        },
        TreeEntry {
            name: b"char-null".to_vec(),
            mode: 0o666,
            gid: 0,
            group: "root".into(),
            ..root(EntryKind::CharDevice(0x103), 2002)
        },
        TreeEntry {
            mode: 0o2775,
            inode: 1002,
            ..base(
                b"dir",
                EntryKind::Dir(k.blob_id(BlobKind::Tree, &Tree::default().encode().unwrap())),
            )
        },
        TreeEntry {
            inode: 1003,
            ..base(b"empty", EntryKind::File(Content::Inline(Vec::new())))
        },
        TreeEntry {
            uid: 4242,
            gid: 4242,
            user: String::new(),
            group: String::new(),
            mode: 0o600,
            mtime: Time {
                secs: -1,
                nanos: 500_000_000,
            },
            inode: 1004,
            ..base(b"fifo", EntryKind::Fifo)
        },
        TreeEntry {
            inode: 1001,
            size: 16,
            ..base(
                b"hardlink",
                EntryKind::Hardlink(b"/srv/data/caf\xe9".to_vec()),
            )
        },
        TreeEntry {
            inode: 1005,
            size: 20 * 4096,
            sparse: true,
            ..base(
                b"sparse.img",
                EntryKind::File(Content::List(
                    k.blob_id(BlobKind::ContentList, &tree_list_node().encode()),
                )),
            )
        },
        TreeEntry {
            mode: 0o777,
            inode: 1006,
            size: 4,
            ..base(b"symlink", EntryKind::Symlink(b"caf\xe9".to_vec()))
        },
    ];
    Tree { entries }
}

fn snapshot_body() -> Snapshot {
    Snapshot {
        time: "2026-01-01T02:00:00Z".parse().unwrap(),
        duration: 1.5,
        host: HOST.into(),
        name: "shop-db".into(),
        tags: vec!["nightly".into()],
        source: Source::Command {
            argv: vec!["pg_dump".into(), "-Fc".into(), "-Z0".into(), "shop".into()],
        },
        producer_status: ProducerStatus::Exited { code: 0 },
        root: Root::Stream {
            content_list: BlobId([0x77; 32]),
            size: 3003,
        },
        bytes_read: 3003,
        bytes_added: 1234,
        raw_bytes_added: 3003,
        chunks: 3,
        new_chunks: 3,
        larder_version: "0.1.0".into(),
        // Optional fields of directory snapshots: absent from a stream snapshot's body.
        errors: 0,
        parent: None,
        tree_counts: None,
        damaged: None,
        original: None,
        quarantined: None,
        warnings: vec![],
        chunker: None,
    }
}

fn config_body() -> Config {
    Config {
        version: 1,
        repo_id: REPO,
        created: "2026-01-01T00:00:00Z".parse().unwrap(),
        chunker: ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 2048,
            avg_size: 8192,
            max_size: 65536,
            normalization: 1,
        },
        pack_size: 16 * 1024 * 1024,
        zstd_level: 3,
        chunk_identity: None,
        coarse_chunking: None,
    }
}

/// The coarse chunking of the `config-coarse` vector (larder's default).
fn coarse_chunking() -> CoarseChunking {
    CoarseChunking {
        chunker: ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 262_144,
            avg_size: 1_048_576,
            max_size: 2_097_152,
            normalization: 1,
        },
        min_ratio: 32,
    }
}

/// The chunk identity of the shared-identity vectors: blob id key 55 x 32, chunker key
/// 66 x 32.
fn shared_identity() -> ChunkIdentity {
    ChunkIdentity::from_keys([0x55; 32], [0x66; 32])
}

fn shared_keys() -> Keys {
    Keys::derive_with(
        REPO,
        MasterKey::from_bytes(Zeroizing::new(MASTER)),
        shared_identity(),
    )
}

fn chunker_params() -> ChunkerParams {
    config_body().chunker
}

fn generate() -> BTreeMap<&'static str, Vector> {
    let k = keys();
    let mut v = BTreeMap::new();
    let common = format!(
        "repo_id = 11 x 32, master key = 22 x 32, password = {:?}, salt = 33 x 32, \
         created = {CREATED}, host = {HOST:?}; nonce N means 24 bytes of N",
        String::from_utf8_lossy(PASSWORD)
    );

    let mut ids = Vec::new();
    for (kind, plain) in [
        (BlobKind::Data, &b""[..]),
        (BlobKind::Data, &b"hello"[..]),
        (BlobKind::ContentList, &b"hello"[..]),
    ] {
        ids.extend_from_slice(k.blob_id(kind, plain).as_bytes());
    }
    v.insert(
        "blob-ids",
        Vector {
            recipe: format!(
                "{common}\nblob ids (crypto.md): data(\"\") ‖ data(\"hello\") ‖ content_list(\"hello\")"
            ),
            bytes: ids,
        },
    );

    let gear: Vec<u8> = k.gear()[..8].iter().flat_map(|g| g.to_le_bytes()).collect();
    v.insert(
        "gear",
        Vector {
            recipe: format!("{common}\nfirst 8 entries of the gear table (crypto.md), u64 LE each"),
            bytes: gear,
        },
    );

    let slot = key_slot::wrap_with(
        REPO,
        &MasterKey::from_bytes(Zeroizing::new(MASTER)),
        &Password::new(PASSWORD.to_vec()),
        KdfParams::FLOOR,
        HOST,
        SALT,
        nonce(0x44),
        CREATED,
    )
    .unwrap();
    v.insert(
        "key-slot",
        Vector {
            recipe: format!(
                "{common}\nkey slot (key-slot.md), kdf floor m=19456 t=2 p=1, nonce 44"
            ),
            bytes: slot.encode(),
        },
    );

    let cfg = config::encode(
        &REPO,
        &seal_object(&k, ObjectKind::Config, &config_body().encode_body(), 0x45),
    );
    v.insert(
        "config",
        Vector {
            recipe: format!(
                "{common}\nconfig (config.md), created 2026-01-01T00:00:00Z, chunker 2048/8192/65536 norm 1, \
                 pack 16 MiB, zstd 3, nonce 45"
            ),
            bytes: cfg,
        },
    );

    let shared = Config {
        chunk_identity: Some(shared_identity()),
        ..config_body()
    };
    v.insert(
        "config-shared-identity",
        Vector {
            recipe: format!(
                "{common}\nconfig (config.md) as in config.txt plus chunk_identity with blob id key \
                 55 x 32 and chunker key 66 x 32, nonce 47"
            ),
            bytes: config::encode(
                &REPO,
                &seal_object(&k, ObjectKind::Config, &shared.encode_body(), 0x47),
            ),
        },
    );
    let coarse = Config {
        coarse_chunking: Some(coarse_chunking()),
        ..config_body()
    };
    v.insert(
        "config-coarse",
        Vector {
            recipe: format!(
                "{common}\nconfig (config.md) as in config.txt plus coarse_chunking: chunker \
                 262144/1048576/2097152 norm 1, min_ratio 32, nonce 48"
            ),
            bytes: config::encode(
                &REPO,
                &seal_object(&k, ObjectKind::Config, &coarse.encode_body(), 0x48),
            ),
        },
    );
    let sk = shared_keys();
    let mut shared_ids = Vec::new();
    shared_ids.extend_from_slice(sk.blob_id(BlobKind::Data, b"").as_bytes());
    shared_ids.extend_from_slice(sk.blob_id(BlobKind::Data, b"hello").as_bytes());
    shared_ids.extend(sk.gear()[..2].iter().flat_map(|g| g.to_le_bytes()));
    v.insert(
        "blob-ids-shared-identity",
        Vector {
            recipe: format!(
                "{common}\nwith the chunk identity of config-shared-identity (crypto.md): \
                 data(\"\") ‖ data(\"hello\") ‖ first 2 gear entries, u64 LE"
            ),
            bytes: shared_ids,
        },
    );

    let (_, blob) = seal_blob(&k, BlobKind::Data, &b"hello, larder! ".repeat(16), 0x46);
    v.insert(
        "blob-data",
        Vector {
            recipe: format!(
                "{common}\nsealed data blob (blob.md) of \"hello, larder! \" x 16, zstd level 3, nonce 46"
            ),
            bytes: blob,
        },
    );

    let (pack, entries) = pack_bytes(&k);
    v.insert(
        "pack",
        Vector {
            recipe: format!(
                "{common}\npack (pack.md): data \"alpha \" x 100 (nonce 50), data xof(\"pack blob 2\", 64) \
                 (nonce 51), header nonce 52"
            ),
            bytes: pack.clone(),
        },
    );

    let seg = IndexSegment {
        packs: vec![IndexedPack {
            id: PackId(object_hash(&pack)),
            length: pack.len() as u64,
            blobs: entries,
        }],
    };
    let seg_bytes = fmt::wrap(
        index_segment::MAGIC,
        &seal_object(&k, ObjectKind::IndexSegment, &seg.encode(), 0x53),
    );
    v.insert(
        "index-segment",
        Vector {
            recipe: format!(
                "{common}\nindex segment (index-segment.md) naming the pack vector, nonce 53"
            ),
            bytes: seg_bytes,
        },
    );

    v.insert(
        "content-list",
        Vector {
            recipe: format!(
                "{common}\ncontent-list node plaintext (content-list.md): level 0, entries \
                 (blake3(u64 LE i), 1000 + i) for i in 0..3"
            ),
            bytes: content_list_node().encode(),
        },
    );

    let tree = tree_vector(&k).encode().unwrap();
    let tree_recipe = "tree (tree.md) of /srv/data as in tests/vectors.rs `tree_vector`: block-sda, \
         caf\\xe9 (inline, 2 chunks, 2 xattrs), char-null, dir (the empty tree), empty, fifo, \
         hardlink (to /srv/data/caf\\xe9), sparse.img (list of 20 chunks, sparse), symlink";
    let (tree_entry, tree_sealed) = seal_blob(&k, BlobKind::Tree, &tree, 0x47);
    v.insert(
        "tree",
        Vector {
            recipe: format!("{common}\n{tree_recipe}; plaintext"),
            bytes: tree.clone(),
        },
    );
    v.insert(
        "tree-id",
        Vector {
            recipe: format!("{common}\n{tree_recipe}; its blob id (kind 3)"),
            bytes: tree_entry.id.as_bytes().to_vec(),
        },
    );
    v.insert(
        "blob-tree",
        Vector {
            recipe: format!(
                "{common}\n{tree_recipe}; sealed (blob.md), zstd level 3, compression {}, nonce 47",
                tree_entry.compression.code()
            ),
            bytes: tree_sealed,
        },
    );

    let snap = fmt::wrap(
        snapshot::MAGIC,
        &seal_object(
            &k,
            ObjectKind::Snapshot,
            &snapshot_body().encode_body(),
            0x54,
        ),
    );
    v.insert(
        "snapshot",
        Vector {
            recipe: format!(
                "{common}\nsnapshot object (snapshot.md), body as in tests/vectors.rs, nonce 54"
            ),
            bytes: snap,
        },
    );

    let quarantined = fmt::wrap(
        snapshot::MAGIC,
        &seal_object(
            &k,
            ObjectKind::Snapshot,
            &quarantined_body().encode_body(),
            0x51,
        ),
    );
    v.insert(
        "snapshot-quarantined",
        Vector {
            recipe: format!(
                "{common}
quarantined snapshot object (snapshot.md: `quarantined`, `warnings`, a killed producer), body as in tests/vectors.rs, nonce 51"
            ),
            bytes: quarantined,
        },
    );

    let coarse_snap = Snapshot {
        chunker: Some(coarse_chunking().chunker),
        ..snapshot_body()
    };
    v.insert(
        "snapshot-coarse",
        Vector {
            recipe: format!(
                "{common}\nsnapshot object (snapshot.md) as in snapshot.txt plus `chunker` (the \
                 coarse sizes of config-coarse), nonce 52"
            ),
            bytes: fmt::wrap(
                snapshot::MAGIC,
                &seal_object(&k, ObjectKind::Snapshot, &coarse_snap.encode_body(), 0x52),
            ),
        },
    );

    let ev = fmt::wrap(
        event::MAGIC,
        &seal_object(&k, ObjectKind::Event, &event_body().encode_body(), 0x45),
    );
    v.insert(
        "event",
        Vector {
            recipe: format!(
                "{common}
event object (event.md), body as in tests/vectors.rs, nonce 45"
            ),
            bytes: ev,
        },
    );

    let lock = fmt::wrap(
        lock::MAGIC,
        &seal_object(&k, ObjectKind::Lock, &lock_body().encode_body(), 0x4c),
    );
    v.insert(
        "lock",
        Vector {
            recipe: format!(
                "{common}\nlock object (lock.md), body as in tests/vectors.rs, nonce 4c"
            ),
            bytes: lock,
        },
    );

    let input = xof("larder chunker vector", 256 * 1024);
    let mut c = larder::chunker::Chunker::new(&input[..], &chunker_params(), k.gear());
    let mut lens = Vec::new();
    while let Some(b) = c.next_batch(64 * 1024).unwrap() {
        for r in &b.chunks {
            lens.extend_from_slice(&u32::try_from(r.len()).unwrap().to_le_bytes());
        }
    }
    v.insert(
        "chunker",
        Vector {
            recipe: format!(
                "{common}\nchunk lengths (u32 LE each) of xof(\"larder chunker vector\", 262144) \
                 with the gear of this master key, min 2048 avg 8192 max 65536 normalization 1"
            ),
            bytes: lens,
        },
    );
    v
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("format-spec/vectors")
}

fn render(v: &Vector) -> String {
    let mut s = String::new();
    for line in v.recipe.lines() {
        s.push_str("# ");
        s.push_str(line);
        s.push('\n');
    }
    s.push_str(&format!("# {} bytes, hex:\n", v.bytes.len()));
    for chunk in v.bytes.chunks(32) {
        s.push_str(&hex::encode(chunk));
        s.push('\n');
    }
    s
}

/// Reads a committed vector's bytes (the hex lines of its file).
fn committed(name: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(vectors_dir().join(format!("{name}.txt")))
        .unwrap_or_else(|e| panic!("vector {name}: {e}"));
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .concat();
    hex::decode(hex.trim()).unwrap()
}

#[test]
fn vectors_match_committed() {
    let bless = std::env::var_os("LARDER_BLESS_VECTORS").is_some();
    let mut drift = Vec::new();
    for (name, v) in generate() {
        let path = vectors_dir().join(format!("{name}.txt"));
        let want = render(&v);
        if bless {
            std::fs::create_dir_all(vectors_dir()).unwrap();
            std::fs::write(&path, &want).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(want.as_str()) {
            drift.push(name);
        }
    }
    assert!(
        drift.is_empty(),
        "vectors drifted from the generator: {drift:?} (LARDER_BLESS_VECTORS=1 rewrites them; \
         a format change needs a spec change too)"
    );
}

#[test]
fn vector_blob_ids() {
    let b = committed("blob-ids");
    let k = keys();
    assert_eq!(&b[..32], k.blob_id(BlobKind::Data, b"").as_bytes());
    assert_eq!(&b[32..64], k.blob_id(BlobKind::Data, b"hello").as_bytes());
    assert_eq!(
        &b[64..],
        k.blob_id(BlobKind::ContentList, b"hello").as_bytes()
    );
    assert_ne!(b[32..64], b[64..]);
}

#[test]
fn vector_gear() {
    let b = committed("gear");
    let k = keys();
    for (i, w) in b.chunks(8).enumerate() {
        assert_eq!(u64::from_le_bytes(w.try_into().unwrap()), k.gear()[i]);
    }
}

#[test]
fn vector_key_slot() {
    let slot = KeySlot::decode(&committed("key-slot")).unwrap();
    assert_eq!(slot.repo_id, REPO);
    assert_eq!(slot.kdf, KdfParams::FLOOR);
    assert_eq!(slot.host, HOST);
    let master = key_slot::unwrap(&slot, &Password::new(PASSWORD.to_vec()))
        .unwrap()
        .expect("the vector password opens the vector slot");
    assert_eq!(master.expose(), &MASTER);
    assert!(
        key_slot::unwrap(&slot, &Password::new(b"wrong".to_vec()))
            .unwrap()
            .is_none()
    );
}

#[test]
fn vector_config() {
    let bytes = committed("config");
    let (repo, sealed) = config::decode(&bytes).unwrap();
    assert_eq!(repo, REPO);
    let body = keys().unseal_object(ObjectKind::Config, sealed).unwrap();
    assert_eq!(Config::decode_body(&body, &REPO).unwrap(), config_body());
}

#[test]
fn vector_config_coarse() {
    let bytes = committed("config-coarse");
    let (repo, sealed) = config::decode(&bytes).unwrap();
    let body = keys().unseal_object(ObjectKind::Config, sealed).unwrap();
    let c = Config::decode_body(&body, &repo).unwrap();
    assert_eq!(c.coarse_chunking, Some(coarse_chunking()));
    // It is larder's default, so that a repository made today decodes like the vector.
    assert_eq!(c.coarse_chunking, Some(larder::repo::DEFAULT_COARSE));
    // Coarse sizes no larger than the default chunks are refused.
    let mut bad = c.clone();
    bad.coarse_chunking = Some(CoarseChunking {
        chunker: c.chunker,
        min_ratio: 32,
    });
    assert!(Config::decode_body(&bad.encode_body(), &repo).is_err());
}

#[test]
fn vector_config_shared_identity() {
    let bytes = committed("config-shared-identity");
    let (repo, sealed) = config::decode(&bytes).unwrap();
    let body = keys().unseal_object(ObjectKind::Config, sealed).unwrap();
    let c = Config::decode_body(&body, &repo).unwrap();
    assert_eq!(c.chunk_identity, Some(shared_identity()));
    // The keys are in the sealed body only.
    assert!(!hex::encode(&bytes).contains(&"55".repeat(32)));
}

#[test]
fn vector_blob_ids_shared_identity() {
    let b = committed("blob-ids-shared-identity");
    let (k, own) = (shared_keys(), keys());
    assert_eq!(&b[..32], k.blob_id(BlobKind::Data, b"").as_bytes());
    assert_eq!(&b[32..64], k.blob_id(BlobKind::Data, b"hello").as_bytes());
    assert_eq!(
        u64::from_le_bytes(b[64..72].try_into().unwrap()),
        k.gear()[0]
    );
    assert_eq!(
        u64::from_le_bytes(b[72..80].try_into().unwrap()),
        k.gear()[1]
    );
    // Not the master key's own identity; the encryption key is the master key's still.
    assert_ne!(&b[32..64], own.blob_id(BlobKind::Data, b"hello").as_bytes());
    assert_ne!(k.gear()[0], own.gear()[0]);
    let sealed = committed("config-shared-identity");
    let (_, body) = config::decode(&sealed).unwrap();
    assert!(k.unseal_object(ObjectKind::Config, body).is_ok());
}

#[test]
fn vector_blob_data() {
    let sealed = committed("blob-data");
    let plain = b"hello, larder! ".repeat(16);
    let k = keys();
    let id = k.blob_id(BlobKind::Data, &plain);
    let got = larder::blob::open(
        &k,
        BlobKind::Data,
        id,
        Compression::Zstd,
        u32::try_from(plain.len()).unwrap(),
        &sealed,
    )
    .unwrap();
    assert_eq!(got, plain);
}

#[test]
fn vector_pack() {
    let bytes = committed("pack");
    let k = keys();
    let id = PackId(object_hash(&bytes));
    let header = larder::pack::reader::read_header(&k, &id, &bytes).unwrap();
    assert_eq!(header.blobs.len(), 2);
    assert_eq!(header.blobs[0].offset, pack::FIRST_BLOB_OFFSET);
    let want = [b"alpha ".repeat(100), xof("pack blob 2", 64)];
    for (e, want) in header.blobs.iter().zip(want) {
        let r = e.range();
        let sealed = &bytes[usize::try_from(r.start).unwrap()..usize::try_from(r.end).unwrap()];
        let plain = larder::blob::open(&k, e.kind, e.id, e.compression, e.raw_len, sealed).unwrap();
        assert_eq!(plain, want);
    }
    assert_eq!(header.blobs[1].compression, Compression::None);
}

#[test]
fn vector_index_segment() {
    let bytes = committed("index-segment");
    let sealed = fmt::unwrap(&bytes, index_segment::MAGIC).unwrap();
    let body = keys()
        .unseal_object(ObjectKind::IndexSegment, sealed)
        .unwrap();
    let seg = IndexSegment::decode(&body).unwrap();
    let pack = committed("pack");
    assert_eq!(seg.packs.len(), 1);
    assert_eq!(seg.packs[0].id, PackId(object_hash(&pack)));
    assert_eq!(seg.packs[0].length, pack.len() as u64);
    assert_eq!(seg.packs[0].blobs.len(), 2);
}

#[test]
fn vector_content_list() {
    let node = ContentListBlob::decode(&committed("content-list")).unwrap();
    assert_eq!(node, content_list_node());
    assert_eq!(node.total(), Some(3003));
}

#[test]
fn vector_tree() {
    let k = keys();
    let plain = committed("tree");
    let tree = Tree::decode(&plain).unwrap();
    assert_eq!(tree, tree_vector(&k));
    assert_eq!(
        tree.encode().unwrap(),
        plain,
        "the tree vector is canonical"
    );
    let mut kinds: Vec<u8> = tree.entries.iter().map(|e| e.kind.code()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds, (1..=7).collect::<Vec<u8>>(), "every entry kind");
    assert!(
        tree.entries
            .iter()
            .any(|e| std::str::from_utf8(&e.name).is_err())
    );
    assert!(tree.entries.iter().any(|e| e.sparse));
    assert!(tree.entries.iter().any(|e| !e.xattrs.is_empty()));

    let id = k.blob_id(BlobKind::Tree, &plain);
    assert_eq!(committed("tree-id"), id.as_bytes());
    assert_ne!(
        id,
        k.blob_id(BlobKind::ContentList, &plain),
        "the kind is bound"
    );

    let sealed = committed("blob-tree");
    let raw_len = u32::try_from(plain.len()).unwrap();
    let opened = larder::blob::open(&k, BlobKind::Tree, id, Compression::Zstd, raw_len, &sealed);
    assert_eq!(opened.unwrap(), plain);
    assert!(
        larder::blob::open(
            &k,
            BlobKind::ContentList,
            id,
            Compression::Zstd,
            raw_len,
            &sealed
        )
        .is_err(),
        "a tree blob does not open as another kind"
    );

    // What the entries name: the dir's subtree is the empty tree, the list root covers `size`.
    let Some(EntryKind::Dir(sub)) = tree.get(b"dir").map(|e| &e.kind) else {
        panic!("entry dir is a directory");
    };
    assert_eq!(*sub, k.blob_id(BlobKind::Tree, &[0, 0, 0, 0]));
    let list = tree.get(b"sparse.img").unwrap();
    let node = tree_list_node();
    assert_eq!(
        list.kind,
        EntryKind::File(Content::List(
            k.blob_id(BlobKind::ContentList, &node.encode())
        ))
    );
    assert_eq!(node.total(), Some(list.size));
    // The hardlink names an earlier file entry of the same (device, inode), by its path.
    let link = tree.get(b"hardlink").unwrap();
    let EntryKind::Hardlink(path) = &link.kind else {
        panic!("entry hardlink is a hardlink");
    };
    let first = tree.get(path.strip_prefix(b"/srv/data/").unwrap()).unwrap();
    assert!(first.name < link.name);
    assert!(matches!(first.kind, EntryKind::File(_)));
    assert_eq!(
        (first.device, first.inode, first.size),
        (link.device, link.inode, link.size)
    );
}

/// The lock vector's body.
fn lock_body() -> LockBody {
    let t: jiff::Timestamp = "2026-11-21T02:00:00Z".parse().expect("a valid time");
    LockBody {
        kind: LockKind::Exclusive,
        host: "db1".into(),
        pid: 4242,
        command: "prune".into(),
        created: t,
        refreshed: t,
        nonce: "0011223344556677".into(),
    }
}

#[test]
fn vector_lock() {
    let bytes = committed("lock");
    let sealed = fmt::unwrap(&bytes, lock::MAGIC).unwrap();
    let body = keys().unseal_object(ObjectKind::Lock, sealed).unwrap();
    assert_eq!(LockBody::decode_body(&body).unwrap(), lock_body());
    // A lock cannot pass for another kind of object.
    assert!(keys().unseal_object(ObjectKind::Snapshot, sealed).is_err());
}

/// A producer killed mid-dump: kept, marked, with a warning.
fn quarantined_body() -> Snapshot {
    let mut s = snapshot_body();
    s.producer_status = ProducerStatus::Killed { signal: 9 };
    s.quarantined = Some(Quarantine {
        check: "producer".into(),
        reason: "`pg_dump -Fc -Z0 shop` was killed by signal 9".into(),
    });
    s.warnings = vec!["the stream is 3003 bytes, less than half the 9000 bytes of the previous snapshot 0a0b0c0d of this series".into()];
    s
}

fn event_body() -> Event {
    Event {
        kind: EventKind::Drill,
        time: "2026-11-22T05:00:00Z".parse().expect("a valid time"),
        duration: 12.25,
        host: "db1".into(),
        series: Some("shop-db".into()),
        ok: false,
        snapshot: Some(SnapshotId([0x5a; 32])),
        error: Some("drill command `pg_restore --list` exited with status 1".into()),
        bytes_read: 3003,
        bytes_added: 0,
        larder_version: "0.1.0".into(),
    }
}

#[test]
fn vector_snapshot_quarantined() {
    let bytes = committed("snapshot-quarantined");
    let sealed = fmt::unwrap(&bytes, snapshot::MAGIC).unwrap();
    let body = keys().unseal_object(ObjectKind::Snapshot, sealed).unwrap();
    let s = Snapshot::decode_body(&body).unwrap();
    assert_eq!(s, quarantined_body());
    assert!(!s.is_good());
    assert!(!s.producer_status.is_success());
}

#[test]
fn vector_event() {
    let bytes = committed("event");
    let sealed = fmt::unwrap(&bytes, event::MAGIC).unwrap();
    let body = keys().unseal_object(ObjectKind::Event, sealed).unwrap();
    assert_eq!(Event::decode_body(&body).unwrap(), event_body());
    // An event cannot pass for a snapshot.
    assert!(keys().unseal_object(ObjectKind::Snapshot, sealed).is_err());
}

#[test]
fn vector_snapshot_coarse() {
    let bytes = committed("snapshot-coarse");
    let sealed = fmt::unwrap(&bytes, snapshot::MAGIC).unwrap();
    let body = keys().unseal_object(ObjectKind::Snapshot, sealed).unwrap();
    let s = Snapshot::decode_body(&body).unwrap();
    assert_eq!(s.chunker, Some(coarse_chunking().chunker));
    assert_eq!(Snapshot { chunker: None, ..s }, snapshot_body());
}

#[test]
fn vector_snapshot() {
    let bytes = committed("snapshot");
    let sealed = fmt::unwrap(&bytes, snapshot::MAGIC).unwrap();
    let body = keys().unseal_object(ObjectKind::Snapshot, sealed).unwrap();
    assert_eq!(Snapshot::decode_body(&body).unwrap(), snapshot_body());
}

#[test]
fn vector_chunker() {
    let lens: Vec<usize> = committed("chunker")
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    assert_eq!(lens.iter().sum::<usize>(), 256 * 1024);
    let p = chunker_params();
    for l in &lens[..lens.len() - 1] {
        assert!((p.min_size as usize..=p.max_size as usize).contains(l));
    }
}

/// The fixture repository of format version 1 (`format-spec/vectors/repo-v1/`, made once by
/// `larder` 0.1.0 and kept forever) must restore byte for byte.
#[test]
fn fixture_repository_v1_restores() {
    let fixture = vectors_dir().join("repo-v1");
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    copy_dir(&fixture.join("repo"), &repo);
    for (name, want) in [
        ("first", fixture_stream(false)),
        ("second", fixture_stream(true)),
    ] {
        let out = assert_cmd::Command::cargo_bin("larder")
            .unwrap()
            .env("LARDER_REPOSITORY", &repo)
            .env("LARDER_PASSWORD", "fixture-v1")
            .env("LARDER_CACHE_DIR", work.path().join("cache"))
            .args(["restore", "latest", "--name", name])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "restore {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == want,
            "fixture snapshot {name} restored different bytes"
        );
    }
    // The directory snapshot: contents, modes, mtimes and the symlink.
    let target = work.path().join("target");
    let out = assert_cmd::Command::cargo_bin("larder")
        .unwrap()
        .env("LARDER_REPOSITORY", &repo)
        .env("LARDER_PASSWORD", "fixture-v1")
        .env("LARDER_CACHE_DIR", work.path().join("cache"))
        .args(["restore", "latest", "--name", "tree", "--target"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "restore tree: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = work.path().join("want");
    fixture_tree(&want);
    let got = target.join(FIXTURE_TREE_PATH.trim_start_matches('/'));
    for (rel, _, _) in FIXTURE_TREE_FILES {
        let (a, b) = (want.join(rel), got.join(rel));
        assert_eq!(
            std::fs::read(&a).unwrap(),
            std::fs::read(&b).unwrap(),
            "{rel}"
        );
    }
    for rel in ["", "a.txt", "sub", "sub/b.bin", "empty", "zero"] {
        use std::os::unix::fs::MetadataExt;
        let (a, b) = (
            std::fs::metadata(want.join(rel)).unwrap(),
            std::fs::metadata(got.join(rel)).unwrap(),
        );
        assert_eq!(a.mode(), b.mode(), "mode of {rel:?}");
        assert_eq!(
            (a.mtime(), a.mtime_nsec()),
            (b.mtime(), b.mtime_nsec()),
            "mtime of {rel:?}"
        );
    }
    assert_eq!(
        std::fs::read_link(got.join("sub/link")).unwrap(),
        PathBuf::from("../a.txt")
    );
}

/// Where the fixture's directory snapshot was taken (its absolute path is in the snapshot).
const FIXTURE_TREE_PATH: &str = "/tmp/larder-fixture-v1-tree";

/// The fixture tree's files: path, content length (of xof("larder fixture v1 " + path)), mode.
const FIXTURE_TREE_FILES: [(&str, usize, u32); 3] = [
    ("a.txt", 5_000, 0o644),
    ("sub/b.bin", 70_000, 0o600),
    ("zero", 0, 0o640),
];

/// Builds the fixture tree at `root`: the files above, `sub/link -> ../a.txt`, an empty
/// directory, and fixed modes and mtimes (2026-11-21T00:00:00.123456789Z).
pub fn fixture_tree(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1_795_219_200, 123_456_789);
        let f = std::fs::File::open(p).unwrap();
        f.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
            .unwrap();
    };
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::create_dir_all(root.join("empty")).unwrap();
    for (rel, len, mode) in FIXTURE_TREE_FILES {
        let p = root.join(rel);
        std::fs::write(&p, xof(&format!("larder fixture v1 {rel}"), len)).unwrap();
        set(&p, mode);
    }
    std::os::unix::fs::symlink("../a.txt", root.join("sub/link")).unwrap();
    set(&root.join("empty"), 0o755);
    set(&root.join("sub"), 0o750);
    set(root, 0o755);
}

/// The fixture's streams: 300,000 bytes of xof("larder fixture v1"), and the same with 100
/// bytes inserted at 150,000 and 5,000 removed from 200,000.
pub fn fixture_stream(edited: bool) -> Vec<u8> {
    let mut s = xof("larder fixture v1", 300_000);
    if edited {
        s.drain(200_000..205_000);
        let ins = xof("larder fixture v1 insert", 100);
        s.splice(150_000..150_000, ins);
    }
    s
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let t = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), &t).unwrap();
        }
    }
}

/// Writes the fixture streams to files, for making the fixture repository once:
/// `LARDER_WRITE_FIXTURE_STREAMS=DIR cargo test --test vectors write_fixture_streams`.
#[test]
fn write_fixture_streams() {
    if let Some(dir) = std::env::var_os("LARDER_WRITE_FIXTURE_STREAMS") {
        let dir = PathBuf::from(dir);
        std::fs::write(dir.join("first"), fixture_stream(false)).unwrap();
        std::fs::write(dir.join("second"), fixture_stream(true)).unwrap();
        fixture_tree(&PathBuf::from(FIXTURE_TREE_PATH));
    }
}
