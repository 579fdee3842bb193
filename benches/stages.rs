//! Each stage of the backup data path alone, single-threaded, beside its ceiling:
//!
//! ```text
//! source -> chunk -> hash (keyed id) -> compress (zstd) -> seal (AEAD) -> pack writer
//! ```
//!
//! | group      | larder                                          | ceiling                                   |
//! | ---------- | ----------------------------------------------- | ----------------------------------------- |
//! | `chunk`    | `Chunker::next_batch(BATCH_BYTES)`              | `fastcdc::v2020::FastCDC`, same sizes     |
//! | `hash`     | `Keys::blob_id` per chunk                       | `blake3::hash` per chunk                  |
//! | `compress` | `compress::compress` / `decompress`             | `zstd::bulk` (fresh and reused context)   |
//! | `seal`     | `Keys::seal_blob`; `blob::seal`, `blob::open`   | raw XChaCha20-Poly1305, fixed nonce       |
//! | `pack`     | `PackWriter::add`, staged in a local repository | write to temporary files + BLAKE3 of each |
//!
//! The per-chunk stages (`hash`, `compress`, `seal`, `pack`) work on the data cut into
//! fixed-size chunks of the default chunker's average size (`DEFAULT_CHUNKER.avg_size`, now
//! 4 KiB), so every benchmark of a data set covers the same bytes and per-chunk costs weigh
//! about as they do in a backup. Throughput is the plaintext length of the data set, except
//! in `pack`, where it is the sealed bytes the writer is handed.
//!
//! Data, generated deterministically at start-up: `text`, 64 MiB of rows shaped like the
//! `pgbench_accounts` COPY block of a plain `pg_dump` (sequential `aid`, its `bid`, a
//! pseudo-random `abalance`, 84 blank filler characters), and `random`, 64 MiB of
//! incompressible bytes. If `LARDER_BENCH_FILE` names a file, its first 256 MiB replace
//! `text` (as data set `file`), e.g. `benches/dump-pair.sh`'s `A.sql`.
//!
//! ```sh
//! cargo bench --bench stages                      # about 4.5 minutes on 2 cores
//! cargo bench --bench stages -- --quick           # one short pass
//! cargo bench --bench stages -- 'seal/'           # one group
//! LARDER_BENCH_FILE=/var/tmp/larder-bench/A.sql cargo bench --bench stages
//! ```
//!
//! The whole pipeline, with its threads and a real repository, is `benches/pipeline.rs`.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::time::Duration;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group,
    criterion_main,
};
use larder::backend::local::LocalBackend;
use larder::backup::BATCH_BYTES;
use larder::blob::{self, SealedBlob};
use larder::chunker::Chunker;
use larder::crypto::{Keys, MasterKey, SEAL_OVERHEAD};
use larder::format::{BlobKind, Compression};
use larder::id::{BlobId, RepoId};
use larder::pack::writer::PackWriter;
use larder::repo::{DEFAULT_CHUNKER, DEFAULT_PACK_SIZE, DEFAULT_ZSTD_LEVEL};
use tempfile::NamedTempFile;
use zeroize::Zeroizing;

/// Bytes of a chunk in the per-chunk stages: the default chunker's average size.
const CHUNK: usize = DEFAULT_CHUNKER.avg_size as usize;

/// The data sets, shared with `benches/pipeline.rs`.
#[path = "data/mod.rs"]
mod data;

/// A group sized for a quick suite: ten samples of one or more whole passes over a data set.
fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    // A pass takes tens to hundreds of milliseconds: flat sampling keeps the sample count
    // at ten without criterion's linear ramp of 1..=10 passes per sample.
    g.sampling_mode(SamplingMode::Flat);
    g
}

fn bytes(n: usize) -> Throughput {
    Throughput::Bytes(u64::try_from(n).expect("a data set fits in u64"))
}

/// source -> **chunk**: the whole data set through `next_batch`, as the backup thread
/// drives it, against the fastcdc crate's own iterator with the same sizes.
fn chunk(c: &mut Criterion, sets: &[data::DataSet], keys: &Keys) {
    let mut g = group(c, "chunk");
    let p = DEFAULT_CHUNKER;
    let (min, avg, max) = (
        p.min_size as usize,
        p.avg_size as usize,
        p.max_size as usize,
    );
    for set in sets {
        let data = &set.bytes[..];
        g.throughput(bytes(data.len()));
        g.bench_function(BenchmarkId::new("larder", set.name), |b| {
            b.iter(|| {
                let mut chunker = Chunker::new(data, &DEFAULT_CHUNKER, keys.gear());
                let mut chunks = 0;
                while let Some(batch) = chunker
                    .next_batch(BATCH_BYTES)
                    .expect("reading a slice cannot fail")
                {
                    chunks += black_box(batch).chunks.len();
                }
                chunks
            });
        });
        g.bench_function(BenchmarkId::new("fastcdc", set.name), |b| {
            b.iter(|| fastcdc::v2020::FastCDC::new(data, min, avg, max).count());
        });
    }
    g.finish();
}

/// chunk -> **keyed id**: keyed BLAKE3 over `kind ‖ chunk` against plain BLAKE3 of the chunk.
fn hash(c: &mut Criterion, sets: &[data::DataSet], keys: &Keys) {
    let mut g = group(c, "hash");
    for set in sets {
        let data = &set.bytes[..];
        g.throughput(bytes(data.len()));
        g.bench_function(BenchmarkId::new("larder_blob_id", set.name), |b| {
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    black_box(keys.blob_id(BlobKind::Data, chunk));
                }
            });
        });
        g.bench_function(BenchmarkId::new("blake3", set.name), |b| {
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    black_box(blake3::hash(chunk));
                }
            });
        });
    }
    g.finish();
}

/// dedup -> **zstd** and back: larder's thread-local contexts against `zstd::bulk`, once
/// with a context per call (`zstd::bulk::compress`) and once with one reused context.
fn compress(c: &mut Criterion, sets: &[data::DataSet]) {
    let level = DEFAULT_ZSTD_LEVEL;
    let mut g = group(c, "compress");
    for set in sets {
        let data = &set.bytes[..];
        g.throughput(bytes(data.len()));
        g.bench_function(BenchmarkId::new("larder", set.name), |b| {
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    black_box(larder::compress::compress(chunk, level).expect("zstd compresses"));
                }
            });
        });
        g.bench_function(BenchmarkId::new("zstd_bulk", set.name), |b| {
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    black_box(zstd::bulk::compress(chunk, level).expect("zstd compresses"));
                }
            });
        });
        g.bench_function(BenchmarkId::new("zstd_reused_context", set.name), |b| {
            let mut z = zstd::bulk::Compressor::new(level).expect("a zstd context");
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    black_box(z.compress(chunk).expect("zstd compresses"));
                }
            });
        });

        let payloads: Vec<(Compression, Vec<u8>, usize)> = data
            .chunks(CHUNK)
            .map(|chunk| {
                let (how, payload) =
                    larder::compress::compress(chunk, level).expect("zstd compresses");
                (how, payload, chunk.len())
            })
            .collect();
        g.bench_function(BenchmarkId::new("larder_decompress", set.name), |b| {
            b.iter(|| {
                for (how, payload, raw_len) in &payloads {
                    black_box(
                        larder::compress::decompress(*how, payload, *raw_len)
                            .expect("what compress made decompresses"),
                    );
                }
            });
        });
        let frames: Vec<Vec<u8>> = data
            .chunks(CHUNK)
            .map(|chunk| zstd::bulk::compress(chunk, level).expect("zstd compresses"))
            .collect();
        g.bench_function(BenchmarkId::new("zstd_decompress", set.name), |b| {
            let mut z = zstd::bulk::Decompressor::new().expect("a zstd context");
            b.iter(|| {
                for frame in &frames {
                    black_box(
                        z.decompress(frame, CHUNK)
                            .expect("a zstd frame decompresses"),
                    );
                }
            });
        });
    }
    g.finish();
}

/// zstd -> **AEAD**: `Keys::seal_blob` (fresh OS nonce, associated data) against the bare
/// cipher with a fixed nonce; then the whole blob step both ways, `blob::seal`
/// (compress + seal + open once to verify) and `blob::open` (unseal + decompress + re-hash).
fn seal(c: &mut Criterion, sets: &[data::DataSet], keys: &Keys) {
    let level = DEFAULT_ZSTD_LEVEL;
    let mut g = group(c, "seal");
    for set in sets {
        let data = &set.bytes[..];
        let ids: Vec<BlobId> = data
            .chunks(CHUNK)
            .map(|chunk| keys.blob_id(BlobKind::Data, chunk))
            .collect();
        g.throughput(bytes(data.len()));
        g.bench_function(BenchmarkId::new("larder_seal_blob", set.name), |b| {
            let mut out = Vec::with_capacity(CHUNK + SEAL_OVERHEAD);
            b.iter(|| {
                for (chunk, id) in data.chunks(CHUNK).zip(&ids) {
                    out.clear();
                    keys.seal_blob(&mut out, BlobKind::Data, id, Compression::None, chunk);
                    black_box(&out);
                }
            });
        });
        g.bench_function(BenchmarkId::new("xchacha20poly1305", set.name), |b| {
            let aead = XChaCha20Poly1305::new(&[7u8; 32].into());
            let nonce = XNonce::from([0u8; 24]);
            let mut buf = Vec::with_capacity(CHUNK);
            b.iter(|| {
                for chunk in data.chunks(CHUNK) {
                    buf.clear();
                    buf.extend_from_slice(chunk);
                    black_box(
                        aead.encrypt_inout_detached(&nonce, b"", buf.as_mut_slice().into())
                            .expect("XChaCha20-Poly1305 seals a chunk"),
                    );
                }
            });
        });
        g.bench_function(BenchmarkId::new("larder_blob_seal", set.name), |b| {
            b.iter(|| {
                for (chunk, id) in data.chunks(CHUNK).zip(&ids) {
                    black_box(
                        blob::seal(keys, BlobKind::Data, *id, chunk, level).expect("a chunk seals"),
                    );
                }
            });
        });
        let sealed = seal_all(keys, data);
        g.bench_function(BenchmarkId::new("larder_blob_open", set.name), |b| {
            b.iter(|| {
                for s in &sealed {
                    black_box(
                        blob::open(keys, s.kind, s.id, s.compression, s.raw_len, &s.bytes)
                            .expect("a sealed blob opens"),
                    );
                }
            });
        });
    }
    g.finish();
}

/// AEAD -> **pack writer**: every sealed chunk of a data set added to a `PackWriter` with the
/// default 16 MiB target, which writes through to packs staged in a local repository in a
/// temporary directory (into the page cache: nothing is committed or fsynced here) and hashes
/// them on the way. The ceiling writes the same bytes to plain temporary files through a
/// buffer of the same size and hashes them (a pack's id is the BLAKE3 of its bytes).
fn pack(c: &mut Criterion, sets: &[data::DataSet], keys: &Keys) {
    let target = u64::from(DEFAULT_PACK_SIZE);
    let dir = tempfile::tempdir().expect("a temporary directory");
    let backend = LocalBackend::create(dir.path().join("repo")).expect("a local repository");
    let mut g = group(c, "pack");
    for set in sets {
        let sealed = seal_all(keys, &set.bytes);
        let stored: usize = sealed.iter().map(|s| s.bytes.len()).sum();
        g.throughput(bytes(stored));
        // Dropping a staged pack or temporary file deletes it: left outside the timed region.
        g.bench_function(BenchmarkId::new("larder", set.name), |b| {
            b.iter_with_large_drop(|| {
                let mut w = PackWriter::new(target);
                let mut packs = Vec::new();
                for s in &sealed {
                    packs.extend(
                        w.add(&backend, keys, s)
                            .expect("a staged pack takes a blob"),
                    );
                }
                packs.extend(w.finish(keys).expect("the last pack closes"));
                packs
            });
        });
        g.bench_function(BenchmarkId::new("write_and_hash", set.name), |b| {
            b.iter_with_large_drop(|| {
                let mut files = Vec::new();
                let mut open: Option<(BufWriter<NamedTempFile>, blake3::Hasher)> = None;
                for s in &sealed {
                    let (file, hash) = open.get_or_insert_with(|| {
                        let f = NamedTempFile::new_in(dir.path()).expect("a temporary file");
                        (
                            BufWriter::with_capacity(1024 * 1024, f),
                            blake3::Hasher::new(),
                        )
                    });
                    file.write_all(&s.bytes).expect("writing a temporary file");
                    hash.update(&s.bytes);
                    if hash.count() >= target {
                        files.extend(open.take().map(close));
                    }
                }
                files.extend(open.map(close));
                files
            });
        });
    }
    g.finish();
}

/// Flushes a ceiling "pack" and names it.
fn close(
    (file, hash): (BufWriter<NamedTempFile>, blake3::Hasher),
) -> (blake3::Hash, NamedTempFile) {
    let file = file.into_inner().expect("flushing a temporary file");
    (hash.finalize(), file)
}

/// Every chunk of `data` through `blob::seal`.
fn seal_all(keys: &Keys, data: &[u8]) -> Vec<SealedBlob> {
    data.chunks(CHUNK)
        .map(|chunk| {
            let id = keys.blob_id(BlobKind::Data, chunk);
            blob::seal(keys, BlobKind::Data, id, chunk, DEFAULT_ZSTD_LEVEL).expect("a chunk seals")
        })
        .collect()
}

fn stages(c: &mut Criterion) {
    let sets = data::sets();
    // A fixed master key: the gear table, and so the chunk sizes on text, depend on it, and
    // runs should be comparable.
    let master = MasterKey::from_bytes(Zeroizing::new([7; 32]));
    let keys = Keys::derive(RepoId([1; 32]), master);
    chunk(c, &sets, &keys);
    hash(c, &sets, &keys);
    compress(c, &sets);
    seal(c, &sets, &keys);
    pack(c, &sets, &keys);
}

criterion_group! {
    name = benches;
    // Command-line flags (`--quick`, `--measurement-time`, `--sample-size`) override these.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = stages
}
criterion_main!(benches);
