//! `format-spec/event.md`: the event object's clear prefix and its JSON body.

#![no_main]

use larder::format::event::{Event, MAGIC};
use larder::format::{unwrap, wrap};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sealed) = unwrap(data, MAGIC) {
        assert_eq!(wrap(MAGIC, sealed), data);
    }

    let Ok(e) = Event::decode_body(data) else {
        return;
    };
    // JSON is not canonical (whitespace, unknown fields, escapes): compare values only.
    let again = Event::decode_body(&e.encode_body()).expect("re-encoded event decodes");
    assert_eq!(again, e);
});
