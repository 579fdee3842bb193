//! `format-spec/pack.md`: the pack trailer and the decrypted pack header.
//!
//! Input: `blobs_end u64 (LE) ‖ header plaintext` for `PackHeader::decode`; the whole input
//! is also tried as a pack for `split_trailer`.

#![no_main]

use larder::format::PREFIX_LEN;
use larder::format::pack::{FIRST_BLOB_OFFSET, PackHeader, TRAILER_LEN, split_trailer};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((blobs_end, header)) = split_trailer(data) {
        let start = usize::try_from(blobs_end).expect("blobs_end is an offset into the input");
        assert!(start >= PREFIX_LEN, "sealed header overlaps the prefix");
        assert_eq!(start + header.len() + TRAILER_LEN, data.len());
        assert_eq!(&data[start..start + header.len()], header);
    }

    let Some((end, body)) = data.split_first_chunk::<8>() else {
        return;
    };
    let blobs_end = u64::from_le_bytes(*end);
    let Ok(h) = PackHeader::decode(body, blobs_end) else {
        return;
    };
    let mut next = FIRST_BLOB_OFFSET;
    for b in &h.blobs {
        let b_end = b.offset.checked_add(u64::from(b.stored_len));
        assert!(
            b_end.is_some(),
            "accepted a blob whose range overflows: {b:?}"
        );
        let b_end = b_end.unwrap_or_default();
        assert!(
            b.offset >= next && b_end <= blobs_end,
            "accepted {b:?} (next {next}, end {blobs_end})"
        );
        next = b_end;
    }
    let encoded = h.encode();
    assert_eq!(encoded, body, "encoding is not canonical");
    let again = PackHeader::decode(&encoded, blobs_end).expect("re-encoded header decodes");
    assert_eq!(again, h);
});
