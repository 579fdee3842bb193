//! The whole pipeline through the library, into and out of a local repository in a
//! temporary directory (Argon2id at `KdfParams::FLOOR`, everything else at its default):
//!
//! | benchmark      | what one pass does                                                      |
//! | -------------- | ----------------------------------------------------------------------- |
//! | `first_backup` | `backup::snapshot_stream` of the data set into a new, empty repository  |
//! | `dedup_backup` | the same again into a repository that holds it already: all chunks dedup |
//! | `restore`      | `restore::restore_stream` of that snapshot into `std::io::sink()`       |
//!
//! `first_backup` gets a fresh repository per pass, created (and deleted) outside the timed
//! region; the timed region includes storing the packs, index segment and snapshot with
//! their fsyncs, as a real backup does. The pipeline uses rayon's global pool (one thread per
//! core) plus its chunker and upload threads; set `RAYON_NUM_THREADS=1` to see it on one core.
//! Throughput is the stream's length.
//!
//! Data as in `benches/stages.rs`: `text`, 64 MiB shaped like a plain `pg_dump` of pgbench,
//! and `random`, 64 MiB of incompressible bytes; `LARDER_BENCH_FILE` replaces `text` with the
//! first 256 MiB of a file (data set `file`). Each stage alone, beside its ceiling, is in
//! `benches/stages.rs`.
//!
//! ```sh
//! cargo bench --bench pipeline                    # about a minute on 2 cores
//! cargo bench --bench pipeline -- --quick
//! LARDER_BENCH_FILE=/var/tmp/larder-bench/A.sql cargo bench --bench pipeline
//! ```

use std::sync::Arc;
use std::time::Duration;

use criterion::{
    BatchSize, BenchmarkId, Criterion, SamplingMode, Throughput, criterion_group, criterion_main,
};
use larder::backend::local::LocalBackend;
use larder::backup::{SnapshotOptions, SnapshotReport, snapshot_stream};
use larder::crypto::key_slot::Password;
use larder::format::key_slot::KdfParams;
use larder::format::snapshot::{ProducerStatus, Source};
use larder::progress::NoProgress;
use larder::repo::{InitOptions, Repo};
use larder::restore::restore_stream;
use tempfile::TempDir;

/// The data sets, shared with `benches/stages.rs`.
#[path = "data/mod.rs"]
mod data;

/// An open repository and the temporary directory holding it and its catalog.
struct Fixture {
    // Declared first so that it is dropped (and its catalog closed) before the directory.
    repo: Repo,
    _dir: TempDir,
}

const PASSWORD: &[u8] = b"pw";

/// A new repository in a new temporary directory, opened.
fn fresh_repo() -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let root = dir.path().join("repo");
    let backend = LocalBackend::create(&root).expect("a local repository directory");
    let password = Password::new(PASSWORD.to_vec());
    let opts = InitOptions {
        kdf: KdfParams::FLOOR,
        ..Default::default()
    };
    larder::repo::init(&backend, &password, &opts).expect("init of an empty directory");
    let repo = Repo::open(Arc::new(backend), &password, &dir.path().join("cache"))
        .expect("the repository just made opens");
    Fixture { repo, _dir: dir }
}

/// One stdin-style snapshot of `data`.
fn backup(repo: &mut Repo, data: &[u8]) -> SnapshotReport {
    let opts = SnapshotOptions {
        name: "bench".into(),
        ..Default::default()
    };
    snapshot_stream(
        repo,
        data,
        Source::Stdin,
        &larder::backup::inspect::Inspector::new(None),
        |_| Ok(ProducerStatus::Unknown),
        &opts,
        &NoProgress,
    )
    .expect("a backup into a temporary repository succeeds")
}

fn pipeline(c: &mut Criterion) {
    let sets = data::sets();
    let mut g = c.benchmark_group("pipeline");
    // A pass takes a few hundred milliseconds: flat sampling keeps the sample count at ten
    // without criterion's linear ramp of 1..=10 passes per sample.
    g.sampling_mode(SamplingMode::Flat);
    for set in &sets {
        let data = &set.bytes[..];
        g.throughput(Throughput::Bytes(
            u64::try_from(data.len()).expect("a data set fits in u64"),
        ));

        // The fixture is returned so that deleting the repository is not timed.
        g.bench_function(BenchmarkId::new("first_backup", set.name), |b| {
            b.iter_batched(
                fresh_repo,
                |mut f| {
                    let report = backup(&mut f.repo, data);
                    assert_eq!(report.snapshot.chunks, report.snapshot.new_chunks);
                    f
                },
                BatchSize::PerIteration,
            );
        });

        let mut f = fresh_repo();
        let first = backup(&mut f.repo, data);
        g.bench_function(BenchmarkId::new("dedup_backup", set.name), |b| {
            b.iter(|| {
                let report = backup(&mut f.repo, data);
                assert_eq!(report.snapshot.new_chunks, 0);
                report
            });
        });
        g.bench_function(BenchmarkId::new("restore", set.name), |b| {
            b.iter(|| {
                let stats = restore_stream(
                    &f.repo,
                    &first.snapshot,
                    &mut std::io::sink(),
                    "null",
                    &NoProgress,
                )
                .expect("a restore from a temporary repository succeeds");
                assert_eq!(stats.bytes, first.snapshot.bytes_read);
                stats
            });
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    // Command-line flags (`--quick`, `--measurement-time`, `--sample-size`) override these.
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = pipeline
}
criterion_main!(benches);
