//! Writes seed inputs for every fuzz target from real encodings made with a fixed key
//! (the one `blob_open` uses). Sealed parts carry fresh random nonces, so re-running changes
//! those bytes but not what the seeds exercise.

use std::path::{Path, PathBuf};

use larder::blob;
use larder::compress;
use larder::crypto::{Keys, MasterKey};
use larder::format::config::{self, Config};
use larder::format::content_list::{ContentListBlob, ListEntry};
use larder::format::event::{self, Event};
use larder::format::index_segment::{IndexSegment, IndexedPack};
use larder::format::key_slot::{KdfParams, KeySlot, WRAPPED_LEN};
use larder::format::pack::{self, BlobEntry, PackHeader};
use larder::format::snapshot::{self, Snapshot};
use larder::format::tree::{Content, EntryKind, MAX_INLINE, Time, Tree, TreeEntry};
use larder::format::{BlobKind, Compression, ObjectKind, wrap};
use larder::id::{BlobId, PackId, RepoId};
use zeroize::Zeroizing;

const CONFIG_BODY: &str = r#"{"version":1,"repo_id":"0000000000000000000000000000000000000000000000000000000000000000","created":"2026-11-21T13:00:00Z","chunker":{"algorithm":"fastcdc-2020","min_size":262144,"avg_size":1048576,"max_size":4194304,"normalization":1},"pack_size":16777216,"zstd_level":3}"#;

const SNAPSHOT_STDIN: &str = r#"{"time":"2026-11-21T13:00:00.123456789Z","duration":1.5,"host":"db1","name":"pg","tags":["daily"],"source":{"kind":"stdin"},"producer_status":{"state":"unknown"},"root":{"kind":"stream","content_list":"0505050505050505050505050505050505050505050505050505050505050505","size":1099511627776},"bytes_read":1099511627776,"bytes_added":123,"raw_bytes_added":456,"chunks":7,"new_chunks":1,"larder_version":"0.1.0"}"#;

const SNAPSHOT_COMMAND: &str = r#"{"time":"2026-11-21T13:00:00Z","duration":0.1,"host":"h\u00e9","name":"x","source":{"kind":"command","argv":["pg_dump","-Fc","db"]},"producer_status":{"state":"exited","code":0},"root":{"kind":"stream","content_list":"0000000000000000000000000000000000000000000000000000000000000000","size":0},"bytes_read":0,"bytes_added":0,"raw_bytes_added":0,"chunks":0,"new_chunks":0,"larder_version":"0.1.0","unknown_field":[1,2,3]}"#;

fn main() {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../seeds"));
    let keys = Keys::derive(
        RepoId([1; 32]),
        MasterKey::from_bytes(Zeroizing::new([2; 32])),
    );
    let w = |target: &str, name: &str, bytes: &[u8]| {
        let dir = out.join(target);
        std::fs::create_dir_all(&dir).expect("create seed directory");
        std::fs::write(dir.join(name), bytes).expect("write seed");
    };

    // Real blobs and a real pack holding them.
    let text = b"larder fuzz seed; larder fuzz seed; ".repeat(40);
    let plains: [(BlobKind, &[u8]); 3] = [
        (BlobKind::Data, b"hello"),
        (BlobKind::Data, &text),
        (BlobKind::ContentList, &[]),
    ];
    // The pack is laid out here from `format` alone (pack.md), not by `pack::writer`, so that
    // this generator does not follow the writer's staging API.
    let mut pack_bytes = Vec::new();
    larder::format::put_prefix(&mut pack_bytes, pack::MAGIC);
    let mut entries = Vec::new();
    for (i, (kind, plain)) in plains.iter().enumerate() {
        let id = keys.blob_id(*kind, plain);
        let sealed = blob::seal(&keys, *kind, id, plain, 3).expect("seal");
        let mut input = vec![kind.code() - 1, sealed.compression.code()];
        input.extend_from_slice(&sealed.raw_len.to_le_bytes());
        input.push(0);
        input.extend_from_slice(id.as_bytes());
        input.extend_from_slice(&sealed.bytes);
        w("blob_open", &format!("sealed-{i}"), &input);
        entries.push(BlobEntry {
            id,
            kind: *kind,
            compression: sealed.compression,
            offset: u64::try_from(pack_bytes.len()).expect("small pack"),
            stored_len: u32::try_from(sealed.bytes.len()).expect("small blob"),
            raw_len: sealed.raw_len,
        });
        pack_bytes.extend_from_slice(&sealed.bytes);
    }
    let header = PackHeader { blobs: entries };
    for (name, h) in [
        ("pack-3-blobs", &header),
        ("pack-empty", &PackHeader { blobs: Vec::new() }),
    ] {
        let mut bytes = if h.blobs.is_empty() {
            let mut b = Vec::new();
            larder::format::put_prefix(&mut b, pack::MAGIC);
            b
        } else {
            pack_bytes.clone()
        };
        let sealed_header = keys.seal_object(ObjectKind::PackHeader, &h.encode());
        bytes.extend_from_slice(&sealed_header);
        let header_len = u32::try_from(sealed_header.len()).expect("small header");
        bytes.extend_from_slice(&header_len.to_le_bytes());
        let (end, _) = pack::split_trailer(&bytes).expect("own pack splits");
        let pack_header = larder::pack::reader::read_header(
            &keys,
            &PackId(larder::id::object_hash(&bytes)),
            &bytes,
        );
        assert_eq!(
            pack_header.ok().as_ref(),
            Some(h),
            "larder reads the pack this generator writes"
        );
        w("pack_header", name, &bytes);
        let mut input = end.to_le_bytes().to_vec();
        input.extend_from_slice(&h.encode());
        w("pack_header", &name.replace("pack-", "header-"), &input);
    }
    let pack_len = u64::try_from(pack_bytes.len()).expect("small pack");

    // blob_open, payload sealed by the target: a zstd frame, and one that inflates far
    // beyond the raw_len it claims.
    let (c, frame) = compress::compress(&text, 3).expect("compress");
    assert_eq!(c, Compression::Zstd);
    let (_, bomb) = compress::compress(&vec![0u8; 8 << 20], 19).expect("compress");
    for (name, raw_len, payload) in [
        ("payload-zstd", text.len(), frame.as_slice()),
        ("payload-bomb", 1000, bomb.as_slice()),
        ("payload-none", 5, b"hello".as_slice()),
    ] {
        let compression = if name == "payload-none" { 0 } else { 1 };
        let mut input = vec![0, compression];
        input.extend_from_slice(&u32::try_from(raw_len).expect("small").to_le_bytes());
        input.push(3);
        input.extend_from_slice(&[0; 32]);
        input.extend_from_slice(payload);
        w("blob_open", name, &input);
    }

    // Index segments.
    let segment = IndexSegment {
        packs: vec![
            IndexedPack {
                id: PackId([8; 32]),
                length: pack_len,
                blobs: header.blobs.clone(),
            },
            IndexedPack {
                id: PackId([9; 32]),
                length: 10,
                blobs: Vec::new(),
            },
        ],
    };
    w("index_segment", "two-packs", &segment.encode());
    w("index_segment", "empty", &IndexSegment::default().encode());

    // Content lists.
    for (name, level, n) in [("level0", 0u8, 3usize), ("level2", 2, 1), ("empty", 0, 0)] {
        let blob = ContentListBlob {
            level,
            entries: (0..n)
                .map(|i| ListEntry {
                    id: BlobId([u8::try_from(i).expect("small"); 32]),
                    size: 1 << (10 * (i + 1)),
                })
                .collect(),
        };
        w("content_list", name, &blob.encode());
    }

    // Trees (tree.md): empty, one small file, every kind of entry, and a file with the most
    // inline chunks beside one stored as a list.
    let entry = |name: &[u8], kind: EntryKind| TreeEntry {
        name: name.to_vec(),
        kind,
        mode: 0o644,
        uid: 1000,
        gid: 1000,
        user: "user".into(),
        group: "group".into(),
        mtime: Time {
            secs: 1_795_000_000,
            nanos: 1,
        },
        ctime: Time {
            secs: 1_795_000_001,
            nanos: 999_999_999,
        },
        inode: 42,
        device: 7,
        size: 0,
        sparse: false,
        xattrs: Vec::new(),
    };
    let chunks = |n: usize| -> Vec<ListEntry> {
        (0..n)
            .map(|i| ListEntry {
                id: BlobId([u8::try_from(i).expect("small"); 32]),
                size: 1000 + u64::try_from(i).expect("small"),
            })
            .collect()
    };
    let file = |name: &[u8], n: usize| TreeEntry {
        size: chunks(n).iter().map(|c| c.size).sum(),
        ..entry(name, EntryKind::File(Content::Inline(chunks(n))))
    };
    let trees = [
        ("empty", Vec::new()),
        ("one-file", vec![file(b"a", 1)]),
        (
            "every-kind",
            vec![
                TreeEntry {
                    sparse: true,
                    size: 1 << 40,
                    ..entry(b"big", EntryKind::File(Content::List(BlobId([9; 32]))))
                },
                entry(b"blk", EntryKind::BlockDevice(0x800)),
                entry(b"chr", EntryKind::CharDevice(0x103)),
                entry(b"dir", EntryKind::Dir(BlobId([8; 32]))),
                entry(b"fifo", EntryKind::Fifo),
                TreeEntry {
                    xattrs: vec![
                        (b"user.a".to_vec(), b"1".to_vec()),
                        (b"user.b".to_vec(), Vec::new()),
                    ],
                    ..file(b"file\xff", 2)
                },
                TreeEntry {
                    size: 2003,
                    ..entry(b"link", EntryKind::Hardlink(b"/srv/file\xff".to_vec()))
                },
                TreeEntry {
                    size: 4,
                    mtime: Time { secs: -1, nanos: 0 },
                    user: String::new(),
                    group: String::new(),
                    ..entry(b"sym", EntryKind::Symlink(b"file".to_vec()))
                },
            ],
        ),
        (
            "max-inline",
            vec![
                file(b"full", MAX_INLINE),
                TreeEntry {
                    size: 17,
                    ..entry(b"list", EntryKind::File(Content::List(BlobId([1; 32]))))
                },
            ],
        ),
    ];
    for (name, entries) in trees {
        let bytes = Tree { entries }.encode().expect("seed tree is valid");
        Tree::decode(&bytes).expect("seed tree decodes");
        w("tree", name, &bytes);
    }

    // Key slots.
    for (name, host, kdf) in [
        ("floor", "db1", KdfParams::FLOOR),
        ("ceiling-no-host", "", KdfParams::CEILING),
    ] {
        let slot = KeySlot {
            repo_id: RepoId([1; 32]),
            kdf,
            salt: [2; 32],
            created: 1_795_000_000,
            host: host.into(),
            wrapped: [3; WRAPPED_LEN],
        };
        w("key_slot", name, &slot.encode());
    }

    // Config: the body (checked against repository id 0) and the stored object.
    let repo0 = RepoId([0; 32]);
    let cfg = Config::decode_body(CONFIG_BODY.as_bytes(), &repo0).expect("seed config is valid");
    w("config", "body", &cfg.encode_body());
    let sealed = keys.seal_object(ObjectKind::Config, &cfg.encode_body());
    w("config", "object", &config::encode(&repo0, &sealed));
    let coarse = Config {
        chunker: larder::repo::DEFAULT_CHUNKER,
        coarse_chunking: Some(larder::repo::DEFAULT_COARSE),
        ..cfg.clone()
    };
    Config::decode_body(&coarse.encode_body(), &repo0).expect("seed config is valid");
    w("config", "coarse", &coarse.encode_body());

    // Snapshots: bodies and a stored object.
    for (name, json) in [("stdin", SNAPSHOT_STDIN), ("command", SNAPSHOT_COMMAND)] {
        Snapshot::decode_body(json.as_bytes()).expect("seed snapshot is valid");
        w("snapshot", name, json.as_bytes());
    }
    let sealed = keys.seal_object(ObjectKind::Snapshot, SNAPSHOT_STDIN.as_bytes());
    w("snapshot", "object", &wrap(snapshot::MAGIC, &sealed));
    Snapshot::decode_body(SNAPSHOT_QUARANTINED.as_bytes()).expect("seed snapshot is valid");
    w("snapshot", "quarantined", SNAPSHOT_QUARANTINED.as_bytes());
    let coarse = Snapshot {
        chunker: Some(larder::repo::DEFAULT_COARSE.chunker),
        ..Snapshot::decode_body(SNAPSHOT_STDIN.as_bytes()).expect("seed snapshot is valid")
    };
    w("snapshot", "coarse", &coarse.encode_body());

    // Events: bodies of each kind and a stored object.
    for (name, json) in [
        ("run", EVENT_RUN),
        ("drill", EVENT_DRILL),
        ("prune", EVENT_PRUNE),
    ] {
        Event::decode_body(json.as_bytes()).expect("seed event is valid");
        w("event", name, json.as_bytes());
    }
    let sealed = keys.seal_object(ObjectKind::Event, EVENT_DRILL.as_bytes());
    w("event", "object", &wrap(event::MAGIC, &sealed));
}

const SNAPSHOT_QUARANTINED: &str = r#"{"time":"2026-11-21T02:00:00Z","duration":3.5,"host":"db1","name":"shop-db","tags":[],"source":{"kind":"command","argv":["pg_dump","shop"]},"producer_status":{"state":"killed","signal":9},"root":{"kind":"stream","content_list":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","size":100000},"bytes_read":100000,"bytes_added":4000,"raw_bytes_added":9000,"chunks":20,"new_chunks":2,"larder_version":"0.1.0","quarantined":{"check":"producer","reason":"`pg_dump shop` was killed by signal 9"},"warnings":["the stream is 100000 bytes, less than half the 900000 bytes of the previous snapshot 0a0b0c0d of this series"]}"#;

const EVENT_RUN: &str = r#"{"kind":"run","time":"2026-11-21T02:00:00Z","duration":61.5,"host":"db1","series":"shop-db","ok":true,"snapshot":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","bytes_read":1000000,"bytes_added":2000,"larder_version":"0.1.0"}"#;
const EVENT_DRILL: &str = r#"{"kind":"drill","time":"2026-11-22T05:00:00Z","duration":12.25,"host":"db1","series":"shop-db","ok":false,"snapshot":"5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a","error":"drill command `pg_restore --list` exited with status 1","bytes_read":3003,"larder_version":"0.1.0"}"#;
const EVENT_PRUNE: &str = r#"{"kind":"prune","time":"2026-11-23T03:00:00Z","duration":4.0,"host":"db1","ok":true,"bytes_added":123456,"larder_version":"0.1.0"}"#;
