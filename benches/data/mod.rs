//! The benches' shared data sets: dump-like text and random bytes, generated
//! deterministically (or a real dump via `LARDER_BENCH_FILE`). Included by `stages.rs` and
//! `pipeline.rs` with `#[path]`; not a bench target itself (cargo only picks up
//! `benches/*.rs` and `benches/*/main.rs`).

use std::io::{Read, Write};

/// Bytes of each generated data set.
pub const SET_BYTES: usize = 64 * 1024 * 1024;
/// Bytes read from `LARDER_BENCH_FILE` at most.
pub const FILE_BYTES: u64 = 256 * 1024 * 1024;

/// A named input.
pub struct DataSet {
    /// Benchmark parameter: `text`, `file` or `random`.
    pub name: &'static str,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// `text` (or `file`) and `random`.
pub fn sets() -> Vec<DataSet> {
    let text = match std::env::var_os("LARDER_BENCH_FILE") {
        Some(path) => {
            let mut bytes = Vec::new();
            std::fs::File::open(&path)
                .and_then(|f| f.take(FILE_BYTES).read_to_end(&mut bytes))
                .expect("LARDER_BENCH_FILE names a readable file");
            assert!(!bytes.is_empty(), "LARDER_BENCH_FILE is empty");
            DataSet {
                name: "file",
                bytes,
            }
        }
        None => DataSet {
            name: "text",
            bytes: dump_text(SET_BYTES),
        },
    };
    let random = DataSet {
        name: "random",
        bytes: random(SET_BYTES),
    };
    vec![text, random]
}

/// SplitMix64: small, fast and the same everywhere.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// `len` bytes of a `pgbench_accounts` COPY block: `aid \t bid \t abalance \t filler`.
pub fn dump_text(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    out.extend_from_slice(
        b"COPY public.pgbench_accounts (aid, bid, abalance, filler) FROM stdin;\n",
    );
    let mut rng = SplitMix64(0x6c61_7264_6572);
    let mut aid = 1u64;
    while out.len() < len {
        let abalance = i64::try_from(rng.next() % 10_001).expect("below 10001") - 5_000;
        writeln!(out, "{aid}\t{}\t{abalance}\t{:84}", 1 + aid / 100_000, "")
            .expect("writing to a Vec cannot fail");
        aid += 1;
    }
    out.truncate(len);
    out
}

/// `len` incompressible bytes (BLAKE3 XOF of a fixed input).
pub fn random(len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(b"larder bench random")
        .finalize_xof()
        .fill(&mut out);
    out
}
