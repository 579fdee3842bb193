//! `format-spec/content-list.md`: the plaintext of one content-list blob.

#![no_main]

use larder::format::content_list::{ContentListBlob, MAX_LEVEL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(c) = ContentListBlob::decode(data) else {
        return;
    };
    assert!(c.level <= MAX_LEVEL);
    let _ = c.total(); // forged sizes overflow: must be None, not a panic
    let encoded = c.encode();
    assert_eq!(encoded, data, "encoding is not canonical");
    let again = ContentListBlob::decode(&encoded).expect("re-encoded content list decodes");
    assert_eq!(again, c);
});
