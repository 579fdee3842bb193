//! The chunker: FastCDC (2020) over a stream, with a gear table derived in full from the
//! repository's chunker key (`format-spec/chunker.md`), so chunk boundaries do not
//! fingerprint plaintext across repositories.
//!
//! Data path: source → **chunker** → keyed id. The chunker hands out [`Batch`]es: one
//! contiguous buffer and the chunk ranges inside it, so chunks are never copied one by one
//! and memory is bounded by the batch size plus one maximum chunk.

use std::io::{ErrorKind, Read};
use std::ops::Range;

use fastcdc::v2020::{Normalization, cut_gear, select_masks};

use crate::format::config::ChunkerParams;

/// A run of consecutive chunks of the stream, in one buffer.
#[derive(Debug, Default)]
pub struct Batch {
    /// The bytes of all chunks, back to back.
    pub data: Vec<u8>,
    /// Each chunk's range in `data`, in stream order.
    pub chunks: Vec<Range<usize>>,
}

impl Batch {
    /// The `i`th chunk's bytes.
    pub fn chunk(&self, i: usize) -> &[u8] {
        &self.data[self.chunks[i].clone()]
    }

    /// Bytes in the batch.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the batch holds no chunk.
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }
}

/// Cuts chunk boundaries in a byte stream.
pub struct Chunker<R> {
    src: R,
    min: usize,
    avg: usize,
    max: usize,
    masks: [u64; 4],
    gear: Box<[u64; 256]>,
    gear_ls: Box<[u64; 256]>,
    carry: Vec<u8>,
    eof: bool,
    bytes_read: u64,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `src` with the repository's parameters and gear table.
    pub fn new(src: R, params: &ChunkerParams, gear: &[u64; 256]) -> Self {
        let mut gear_ls = Box::new([0u64; 256]);
        for (l, g) in gear_ls.iter_mut().zip(gear.iter()) {
            *l = g << 1;
        }
        let mut c = Self {
            src,
            min: 0,
            avg: 0,
            max: 0,
            masks: [0; 4],
            gear: Box::new(*gear),
            gear_ls,
            carry: Vec::new(),
            eof: false,
            bytes_read: 0,
        };
        c.set_params(params);
        c
    }

    /// Cuts the rest of the stream with other sizes (same gear table). Every batch ends on
    /// a chunk boundary, so the next chunk simply starts where the last one ended.
    pub fn set_params(&mut self, params: &ChunkerParams) {
        let level = match params.normalization {
            0 => Normalization::Level0,
            1 => Normalization::Level1,
            2 => Normalization::Level2,
            _ => Normalization::Level3,
        };
        let avg = params.avg_size as usize;
        let (mask_s, mask_l) = select_masks(avg, level);
        self.min = params.min_size as usize;
        self.avg = avg;
        self.max = params.max_size as usize;
        self.masks = [mask_s, mask_l, mask_s << 1, mask_l << 1];
    }

    /// The length of the next chunk at the start of `rest` (all of it if shorter than the
    /// minimum).
    fn cut(&self, rest: &[u8]) -> usize {
        let (_, len) = cut_gear(
            rest,
            self.min,
            self.avg,
            self.max,
            self.masks[0],
            self.masks[1],
            self.masks[2],
            self.masks[3],
            self.gear.as_slice(),
            self.gear_ls.as_slice(),
        );
        len
    }

    /// Cuts `data`, a whole stream already in memory, into the same chunks a batch read of it
    /// would give; appends each chunk's range, shifted by `base`, to `out`.
    pub fn cut_whole(&self, data: &[u8], base: usize, out: &mut Vec<Range<usize>>) {
        let mut pos = 0;
        while pos < data.len() {
            let len = self.cut(&data[pos..]);
            out.push(base + pos..base + pos + len);
            pos += len;
        }
    }

    /// Bytes read from the source so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads about `target` bytes and returns them cut into chunks; `None` at the end of the
    /// stream. The last chunk of a batch is always a real boundary (or the stream's end).
    pub fn next_batch(&mut self, target: usize) -> std::io::Result<Option<Batch>> {
        self.next_batch_into(target, Vec::new())
    }

    /// [`Chunker::next_batch`] into a spent batch's buffer: reusing buffers keeps the
    /// allocator from mapping and zero-faulting a fresh 2 MiB for every batch.
    pub fn next_batch_into(
        &mut self,
        target: usize,
        mut data: Vec<u8>,
    ) -> std::io::Result<Option<Batch>> {
        let want = target.max(self.max) + self.max;
        data.clear();
        data.reserve(want);
        data.append(&mut self.carry);
        // Zero-filled once per batch: resizing before every read would clear the rest of
        // the buffer again after each short read (a pipe gives 64 KiB at a time).
        let mut filled = data.len();
        data.resize(want.max(filled), 0);
        while filled < want && !self.eof {
            match self.src.read(&mut data[filled..]) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    filled += n;
                    self.bytes_read += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        data.truncate(filled);
        if data.is_empty() {
            return Ok(None);
        }
        let mut chunks = Vec::with_capacity(data.len() / self.avg + 2);
        let mut pos = 0;
        while pos < data.len() {
            let rest = &data[pos..];
            // Without the stream's end in sight, stop once less than one maximum chunk is
            // left: the next cut might need bytes not read yet.
            if !self.eof && rest.len() < self.max {
                break;
            }
            let len = self.cut(rest);
            chunks.push(pos..pos + len);
            pos += len;
        }
        self.carry = data[pos..].to_vec();
        data.truncate(pos);
        Ok(Some(Batch { data, chunks }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::config::ChunkerAlgorithm;
    use proptest::prelude::*;

    fn params() -> ChunkerParams {
        ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: 256,
            avg_size: 1024,
            max_size: 4096,
            normalization: 1,
        }
    }

    fn gear(seed: u8) -> [u64; 256] {
        let mut g = [0u64; 256];
        let mut x = blake3::Hasher::new();
        x.update(&[seed]);
        let mut r = x.finalize_xof();
        for v in g.iter_mut() {
            let mut b = [0u8; 8];
            r.fill(&mut b);
            *v = u64::from_le_bytes(b);
        }
        g
    }

    fn cut_all(data: &[u8], target: usize, seed: u8) -> Vec<Vec<u8>> {
        let mut c = Chunker::new(data, &params(), &gear(seed));
        let mut out = Vec::new();
        while let Some(b) = c.next_batch(target).unwrap() {
            for i in 0..b.chunks.len() {
                out.push(b.chunk(i).to_vec());
            }
        }
        out
    }

    fn pseudo(n: usize, seed: u64) -> Vec<u8> {
        let mut out = vec![0u8; n];
        let mut h = blake3::Hasher::new();
        h.update(&seed.to_le_bytes());
        h.finalize_xof().fill(&mut out);
        out
    }

    #[test]
    fn empty_stream_has_no_chunks() {
        assert!(cut_all(&[], 1000, 0).is_empty());
    }

    #[test]
    fn gear_table_changes_boundaries() {
        let d = pseudo(100_000, 1);
        assert_ne!(cut_all(&d, 10_000, 1), cut_all(&d, 10_000, 2));
    }

    proptest! {
        #[test]
        fn chunks_concatenate_to_input_and_respect_bounds(
            len in 0usize..60_000, seed in any::<u64>(), target in 1usize..20_000
        ) {
            let d = pseudo(len, seed);
            let chunks = cut_all(&d, target, 3);
            prop_assert_eq!(chunks.concat(), d);
            for (i, c) in chunks.iter().enumerate() {
                prop_assert!(c.len() <= 4096);
                if i + 1 < chunks.len() { prop_assert!(c.len() >= 256); }
            }
        }

        #[test]
        fn cutting_in_memory_matches_reading(len in 0usize..60_000, seed in any::<u64>()) {
            let d = pseudo(len, seed);
            let c = Chunker::new(std::io::empty(), &params(), &gear(6));
            let mut ranges = Vec::new();
            c.cut_whole(&d, 7, &mut ranges);
            let whole: Vec<Vec<u8>> = ranges.iter().map(|r| d[r.start - 7..r.end - 7].to_vec()).collect();
            prop_assert_eq!(whole, cut_all(&d, 1000, 6));
        }

        #[test]
        fn changing_sizes_mid_stream_keeps_every_byte_and_each_size_bound(
            len in 0usize..200_000, seed in any::<u64>(), batches in 1usize..6
        ) {
            let d = pseudo(len, seed);
            let big = ChunkerParams { min_size: 4096, avg_size: 16_384, max_size: 32_768, ..params() };
            let mut c = Chunker::new(&d[..], &params(), &gear(3));
            let mut out: Vec<(bool, Vec<u8>)> = Vec::new();
            let mut n = 0;
            while let Some(b) = c.next_batch(10_000).unwrap() {
                let switched = n >= batches;
                out.extend((0..b.chunks.len()).map(|i| (switched, b.chunk(i).to_vec())));
                n += 1;
                if n == batches {
                    c.set_params(&big);
                }
            }
            let all: Vec<u8> = out.iter().flat_map(|(_, c)| c.clone()).collect();
            prop_assert_eq!(all, d);
            for (i, (switched, c)) in out.iter().enumerate() {
                let p = if *switched { &big } else { &params() };
                prop_assert!(c.len() <= p.max_size as usize);
                if i + 1 < out.len() { prop_assert!(c.len() >= p.min_size as usize); }
            }
        }

        #[test]
        fn batch_size_does_not_move_boundaries(len in 0usize..60_000, seed in any::<u64>()) {
            let d = pseudo(len, seed);
            prop_assert_eq!(cut_all(&d, 1, 4), cut_all(&d, 50_000, 4));
        }

        #[test]
        fn insertion_moves_only_nearby_boundaries(seed in any::<u64>(), at in 0usize..100_000) {
            let d = pseudo(100_000, seed);
            let mut e = d.clone();
            e.splice(at..at, b"inserted bytes".iter().copied());
            let a = cut_all(&d, 8192, 5);
            let b = cut_all(&e, 8192, 5);
            let set: std::collections::HashSet<_> = a.iter().collect();
            let changed: usize = b.iter().filter(|c| !set.contains(c)).map(|c| c.len()).sum();
            // A local edit disturbs the chunk it lands in and the next few, until the cut
            // points resynchronise: a few maximum-size chunks' worth of bytes, not the rest.
            prop_assert!(changed <= 4 * 4096, "{} bytes in new chunks", changed);
        }
    }
}
