//! `format-spec/tree.md`: the plaintext of one tree blob.

#![no_main]

use larder::format::tree::{Content, EntryKind, MAX_INLINE, Tree, valid_name};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(t) = Tree::decode(data) else {
        return;
    };
    for e in &t.entries {
        assert!(valid_name(&e.name));
        if let EntryKind::File(Content::Inline(c)) = &e.kind {
            assert!(c.len() <= MAX_INLINE);
        }
    }
    assert!(t.entries.windows(2).all(|w| w[0].name < w[1].name));
    let encoded = t
        .encode()
        .expect("a decoded tree encodes (decode accepts only what encode writes)");
    assert_eq!(encoded, data, "encoding is not canonical");
    let again = Tree::decode(&encoded).expect("re-encoded tree decodes");
    assert_eq!(again, t);
});
