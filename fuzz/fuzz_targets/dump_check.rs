//! `larder::dump_check`: a dump stream of any bytes, cut into pieces of any sizes, under
//! every kind. The checker must never panic, and the pieces must not change its verdict.
//!
//! Input: byte 0 picks the kind, byte 1 seeds the piece sizes, the rest is the stream.

#![no_main]

use larder::dump_check::{DumpCheck, DumpKind, looks_compressed, looks_encrypted_or_compressed};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let [k, seed, stream @ ..] = data else {
        return;
    };
    let kind = DumpKind::ALL[usize::from(*k) % DumpKind::ALL.len()];
    let mut whole = DumpCheck::new(kind);
    whole.update(stream);
    let whole = whole.finish();

    let mut pieces = DumpCheck::new(kind);
    let (mut rest, mut s) = (stream, u32::from(*seed) | 1);
    while !rest.is_empty() {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let n = (s >> 16) as usize % 97 + usize::from(s & 1 == 0) * 4000;
        let (a, b) = rest.split_at(n.min(rest.len()));
        pieces.update(a);
        rest = b;
    }
    assert_eq!(pieces.finish(), whole, "piece sizes changed the verdict");
    let _ = looks_compressed(stream);
    let _ = looks_encrypted_or_compressed(stream);
});
