//! `format-spec/config.md`: the `config` object's clear header and its JSON body.
//!
//! The body is checked against repository id 0 (`"00…00"`), which the seeds use.

#![no_main]

use larder::format::config::{self, Config};
use larder::id::RepoId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((repo, sealed)) = config::decode(data) {
        assert_eq!(config::encode(&repo, sealed), data);
    }

    let header_repo = RepoId([0; 32]);
    let Ok(c) = Config::decode_body(data, &header_repo) else {
        return;
    };
    assert!(c.chunker.validate().is_ok());
    // JSON is not canonical: compare values only.
    let encoded = c.encode_body();
    let again = Config::decode_body(&encoded, &header_repo).expect("re-encoded config decodes");
    assert_eq!(again, c);
});
