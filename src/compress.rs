//! zstd compression of blob payloads, and decompression capped at the authenticated
//! plaintext length (DESIGN.md: "cap decompression at the authenticated length").
//!
//! Data path: dedup → **compress** → encrypt. Contexts are reused per thread.

use std::cell::RefCell;

use crate::format::Compression;

thread_local! {
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { RefCell::new(None) };
}

/// The zstd level range larder accepts (negative levels are zstd's fast modes).
pub const LEVELS: std::ops::RangeInclusive<i32> = -7..=22;

/// Compresses `plain` at `level`; returns the payload to seal and how it is encoded. Data
/// that zstd cannot shrink is stored as is.
pub fn compress(plain: &[u8], level: i32) -> std::io::Result<(Compression, Vec<u8>)> {
    if plain.is_empty() {
        return Ok((Compression::None, Vec::new()));
    }
    COMPRESSOR.with(|c| {
        let mut slot = c.borrow_mut();
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level)?));
        }
        let (_, z) = slot.as_mut().expect("set just above");
        // One byte less than the input: if zstd needs more, storing raw is better.
        let mut out = Vec::with_capacity(plain.len() - 1);
        match z.compress_to_buffer(plain, &mut out) {
            Ok(_) => Ok((Compression::Zstd, out)),
            Err(_) => Ok((Compression::None, plain.to_vec())),
        }
    })
}

/// Why a payload did not decompress to the authenticated length.
#[derive(Debug, thiserror::Error)]
#[error("decompression failed or did not yield the recorded length")]
pub struct DecompressError;

/// Decodes `payload` into exactly `raw_len` bytes, never allocating more.
pub fn decompress(
    compression: Compression,
    payload: &[u8],
    raw_len: usize,
) -> Result<Vec<u8>, DecompressError> {
    match compression {
        Compression::None if payload.len() == raw_len => Ok(payload.to_vec()),
        Compression::None => Err(DecompressError),
        Compression::Zstd => DECOMPRESSOR.with(|d| {
            let mut slot = d.borrow_mut();
            if slot.is_none() {
                *slot = Some(zstd::bulk::Decompressor::new().map_err(|_| DecompressError)?);
            }
            let z = slot.as_mut().expect("set just above");
            let mut out = Vec::with_capacity(raw_len);
            let n = z
                .decompress_to_buffer(payload, &mut out)
                .map_err(|_| DecompressError)?;
            if n == raw_len {
                Ok(out)
            } else {
                Err(DecompressError)
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_raw_fallback() {
        let text = b"abcabcabcabcabcabcabcabcabcabcabcabc".repeat(10);
        let (c, p) = compress(&text, 3).unwrap();
        assert_eq!(c, Compression::Zstd);
        assert!(p.len() < text.len());
        assert_eq!(decompress(c, &p, text.len()).unwrap(), text);

        let mut random = vec![0u8; 1000];
        crate::crypto::random_fill(&mut random);
        let (c, p) = compress(&random, 3).unwrap();
        assert_eq!(c, Compression::None);
        assert_eq!(decompress(c, &p, 1000).unwrap(), random);
    }

    #[test]
    fn decompression_is_capped() {
        let text = vec![0u8; 100_000];
        let (c, p) = compress(&text, 3).unwrap();
        assert!(decompress(c, &p, 99_999).is_err());
        assert!(decompress(c, &p, 100_001).is_err());
        assert!(decompress(Compression::Zstd, b"garbage", 10).is_err());
    }
}
