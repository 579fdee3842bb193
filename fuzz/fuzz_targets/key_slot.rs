//! `format-spec/key-slot.md`: a stored key slot (clear; only `wrapped` is sealed).

#![no_main]

use larder::format::key_slot::KeySlot;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(k) = KeySlot::decode(data) else {
        return;
    };
    assert!(k.kdf.in_range(), "accepted kdf parameters {}", k.kdf);
    let encoded = k.encode();
    assert_eq!(encoded, data, "encoding is not canonical");
    assert_eq!(
        &encoded[..encoded.len() - k.wrapped.len()],
        k.encode_ad().as_slice()
    );
    let again = KeySlot::decode(&encoded).expect("re-encoded key slot decodes");
    assert_eq!(again, k);
});
