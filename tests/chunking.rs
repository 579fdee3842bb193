//! Coarse chunking end to end (format-spec/chunker.md, "Coarse chunking"): when a series
//! changes to coarse chunks and back, and that such streams restore, check and copy.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::fmt::Write as _;

use common::*;
use larder::backup::chunking::{SAMPLE_BYTES, sample_ratio};
use serde_json::Value;

/// pgbench_accounts-like rows: ids, a balance, and `filler` characters of which the first
/// `noise` are random hex digits and the rest blanks (pgbench's own filler is all blanks).
fn rows(seed: u64, len: usize, noise: usize) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(len + 128);
    let mut aid = seed * 1_000_000;
    while s.len() < len {
        aid += 1;
        let _ = write!(s, "{aid}\t{}\t0\t", aid / 100_000 + 1);
        for _ in 0..noise {
            let _ = write!(s, "{:x}", rng.below(16));
        }
        s.push_str(&" ".repeat(84 - noise));
        s.push('\n');
    }
    let mut b = s.into_bytes();
    b.truncate(len);
    b
}

fn ratio(data: &[u8]) -> u64 {
    sample_ratio(&data[..data.len().min(SAMPLE_BYTES)]).expect("a non-empty sample")
}

/// The repository's coarse chunk sizes, from `cat config`.
fn coarse_params(env: &Env) -> Value {
    let c = env.cat(&["config"]);
    let p = c["coarse_chunking"]["chunker"].clone();
    assert!(p.is_object(), "no coarse_chunking in {c}");
    p
}

/// The chunk sizes a snapshot report says its stream was cut with (`null`: the default).
fn cut_with(report: &Value) -> Value {
    report["snapshot"]["chunker"].clone()
}

/// 48 MiB of blank-filler rows: well over the 16 MiB after which a series may change.
const LEN: usize = 48 << 20;

/// `data` with 8 bytes rewritten every `every` bytes (as OLTP rewrites rows all over a
/// table), the `round`th time.
fn changed(data: &[u8], every: usize, round: u8) -> Vec<u8> {
    let mut d = data.to_vec();
    let mut at = every / 2 + usize::from(round) * 97;
    while at + 8 < d.len() {
        d[at..at + 8].copy_from_slice(&[b'0' + round % 10; 8]);
        at += every;
    }
    d
}

#[test]
fn a_series_with_dense_changes_moves_to_coarse_chunks_and_back_when_they_thin_out() {
    let env = Env::init();
    let coarse = coarse_params(&env);
    let a = rows(1, LEN, 0);
    assert!(ratio(&a) >= 32, "blank rows compress {}x", ratio(&a));
    // The first snapshot of a series: default chunks.
    let first = env.snapshot("accounts", &a, &[]);
    assert_eq!(cut_with(&first), Value::Null, "{first}");

    // Changes every 16 KiB: default chunks would store most of the stream again, so the
    // chunker changes to coarse ones part of the way through.
    let b = changed(&a, 16 << 10, 1);
    let second = env.snapshot("accounts", &b, &[]);
    assert_eq!(cut_with(&second), coarse, "{second}");
    let chunks = stat(&second, "chunks");
    assert!(
        chunks < (LEN as u64) / 4096 && chunks > (LEN as u64 - (32 << 20)) / (2 << 20),
        "{chunks} chunks: default ones, then coarse ones"
    );
    assert_same_bytes(&env.restore(&[&id_of(&second)]), &b, "restore");

    // The next snapshot starts coarse and deduplicates against the coarse part.
    let c = changed(&a, 16 << 10, 2);
    let third = env.snapshot("accounts", &c, &[]);
    assert_eq!(cut_with(&third), coarse, "{third}");
    assert_eq!(
        stat(&third, "chunks"),
        stat(&third, "new_chunks"),
        "{third}"
    );
    let same = env.snapshot("accounts", &c, &[]);
    assert_eq!(cut_with(&same), coarse, "{same}");
    assert_eq!(stat(&same, "new_chunks"), 0, "{same}");
    // An unchanged stream says nothing about how far apart changes are: still coarse.
    let d = changed(&c, 8 << 20, 3);
    let sparse = env.snapshot("accounts", &d, &[]);
    assert_eq!(cut_with(&sparse), coarse, "{sparse}");
    assert!(stat(&sparse, "new_chunks") <= 12, "{sparse}");
    // That one stored little: changes are far apart now, back to the default chunks.
    let back = env.snapshot("accounts", &d, &[]);
    assert_eq!(cut_with(&back), Value::Null, "{back}");
    assert_same_bytes(
        &env.restore(&["latest", "--name", "accounts"]),
        &d,
        "restore",
    );
    env.larder()
        .args(["check", "--read-data"])
        .assert()
        .success();
}

#[test]
fn sparse_changes_and_ordinary_streams_keep_the_default_chunks() {
    let env = Env::init();
    // A compressible series whose changes are far apart.
    let a = rows(2, LEN, 0);
    env.snapshot("accounts", &a, &[]);
    let sparse = env.snapshot("accounts", &changed(&a, 2 << 20, 1), &[]);
    assert_eq!(cut_with(&sparse), Value::Null, "{sparse}");
    assert!(stat(&sparse, "new_chunks") < 100, "{sparse}");
    // Ordinary text never changes, however dense its changes.
    let text = text_bytes(3, LEN);
    assert!(ratio(&text) < 16, "text compresses {}x", ratio(&text));
    env.snapshot("orders", &text, &[]);
    let dense = env.snapshot("orders", &changed(&text, 16 << 10, 1), &[]);
    assert_eq!(cut_with(&dense), Value::Null, "{dense}");
    // Nor does an empty stream.
    env.snapshot("empty", b"", &[]);
    let empty = env.snapshot("empty", b"", &[]);
    assert_eq!(cut_with(&empty), Value::Null, "{empty}");
}

#[test]
fn init_no_coarse_chunking_cuts_every_stream_with_the_default_chunks() {
    let env = Env::new();
    let out = env
        .larder()
        .args(["--json", "init", "--no-coarse-chunking"])
        .args(FAST_KDF)
        .output()
        .expect("run larder init");
    assert_success(&out, "init");
    assert_eq!(parse_json(&out.stdout)["coarse_chunking"], Value::Null);
    assert_eq!(env.cat(&["config"])["coarse_chunking"], Value::Null);
    let a = rows(5, LEN, 0);
    env.snapshot("accounts", &a, &[]);
    let report = env.snapshot("accounts", &changed(&a, 16 << 10, 1), &[]);
    assert_eq!(cut_with(&report), Value::Null, "{report}");
    // A default chunk size of 1 MiB or more leaves nothing for coarse chunking to do.
    let big = Env::init_with(&[
        "--chunk-min",
        "256K",
        "--chunk-avg",
        "1M",
        "--chunk-max",
        "4M",
    ]);
    assert_eq!(big.cat(&["config"])["coarse_chunking"], Value::Null);
}

#[test]
fn copy_into_another_repository_keeps_a_coarse_stream_coarse() {
    let (src, dst) = (Env::init(), Env::init());
    let a = rows(6, LEN, 0);
    src.snapshot("accounts", &a, &[]);
    let b = changed(&a, 16 << 10, 1);
    let id = id_of(&src.snapshot("accounts", &b, &[]));
    let out = dst
        .larder()
        .args(["--json", "copy", "--from"])
        .arg(&src.repo)
        .output()
        .expect("run larder copy");
    assert_success(&out, "copy");
    let copied = dst.cat(&["snapshot", "latest"]);
    assert_eq!(
        copied["snapshot"]["chunker"],
        coarse_params(&dst),
        "{copied}"
    );
    assert_eq!(
        copied["snapshot"]["original"],
        Value::String(id),
        "{copied}"
    );
    assert_same_bytes(&dst.restore(&["latest"]), &b, "restore of the copy");
}
