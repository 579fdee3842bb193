//! `format-spec/index-segment.md`: the decrypted body of an index segment.

#![no_main]

use larder::format::index_segment::IndexSegment;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = IndexSegment::decode(data) else {
        return;
    };
    for p in &s.packs {
        for b in &p.blobs {
            let end = b.offset.checked_add(u64::from(b.stored_len));
            assert!(
                end.is_some_and(|e| e <= p.length),
                "accepted {b:?} in a pack of {} bytes",
                p.length
            );
        }
    }
    let encoded = s.encode();
    assert_eq!(encoded, data, "encoding is not canonical");
    let again = IndexSegment::decode(&encoded).expect("re-encoded segment decodes");
    assert_eq!(again, s);
});
