//! `format-spec/snapshot.md`: the snapshot object's clear prefix and its JSON body.

#![no_main]

use larder::format::snapshot::{MAGIC, Snapshot};
use larder::format::{unwrap, wrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = unwrap(data, MAGIC) {
        assert_eq!(wrap(MAGIC, sealed), data);
    }

    let Ok(s) = Snapshot::decode_body(data) else {
        return;
    };
    // JSON is not canonical (whitespace, unknown fields, escapes): compare values only.
    let encoded = s.encode_body();
    let again = Snapshot::decode_body(&encoded).expect("re-encoded snapshot decodes");
    assert_eq!(again, s);
});
