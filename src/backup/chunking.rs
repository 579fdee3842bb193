//! Which chunk sizes a stream is cut with (`format-spec/chunker.md`, "Coarse chunking").
//!
//! A repository made with coarse chunking has two chunkers. Small chunks find the unchanged
//! stretches of a dump that OLTP rewrites every few kilobytes; but on a stream that
//! compresses ~100x, each small chunk compresses poorly on its own and its fixed costs
//! (nonce and tag, pack-header, index and content-list entries) can outweigh what it saves:
//! when the night's changes are close together, coarse chunks store less. Which case a
//! series is in shows only by comparing it with its last snapshot, so the choice is made per
//! series and measured: see [`plan`].

use std::io::{self, Read};

use crate::format::config::{ChunkerParams, CoarseChunking};

/// Bytes of the stream's head that decide: read before chunking starts.
pub const SAMPLE_BYTES: usize = 4 * 1024 * 1024;

/// The zstd level the sample is compressed at.
pub const SAMPLE_LEVEL: i32 = 1;

/// Bytes of a default-cut stream after which [`Switch::due`] is asked, once.
pub const SWITCH_AFTER: u64 = 16 * 1024 * 1024;

/// Sealed bytes counted per new blob on top of its own, for its pack-header and index
/// entries.
pub const ENTRY_COST: u64 = 100;

/// What the newest stream snapshot of the series (same name and host) tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Previous {
    /// Whether it ended cut with the coarse sizes.
    pub coarse: bool,
    /// Its length.
    pub bytes_read: u64,
    /// Plaintext bytes it stored anew.
    pub raw_bytes_added: u64,
}

/// How a stream is to be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// The chunk sizes it starts with.
    pub params: ChunkerParams,
    /// Whether those are the coarse ones.
    pub coarse: bool,
    /// For a stream started with the default sizes: when to change to coarse ones.
    pub switch: Option<Switch>,
}

impl Cut {
    /// These sizes for the whole stream.
    pub fn fixed(params: ChunkerParams) -> Self {
        Self {
            params,
            coarse: false,
            switch: None,
        }
    }
}

/// The rule that moves a stream from the default to the coarse sizes mid-way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switch {
    /// The coarse sizes.
    pub to: ChunkerParams,
    /// The sample's compression ratio: a coarse cut is estimated to store `1 / ratio` of
    /// what it reads.
    pub ratio: u64,
}

impl Switch {
    /// Whether, `read` bytes into the stream, what the default chunks stored (`cost`: sealed
    /// bytes plus [`ENTRY_COST`] per new blob) exceeds 5/4 of what coarse chunks are
    /// estimated to store for the same bytes.
    pub fn due(&self, read: u64, cost: u64) -> bool {
        read >= SWITCH_AFTER
            && u128::from(cost) * 4 * u128::from(self.ratio.max(1)) > u128::from(read) * 5
    }
}

/// The compression ratio of `sample` (its length over its zstd-compressed length, rounded
/// down); `None` for an empty sample.
pub fn sample_ratio(sample: &[u8]) -> Option<u64> {
    if sample.is_empty() {
        return None;
    }
    // Compressing a buffer in memory fails only on allocation; treat it as incompressible.
    let packed = zstd::bulk::compress(sample, SAMPLE_LEVEL).ok()?;
    Some(sample.len() as u64 / packed.len().max(1) as u64)
}

/// How to cut a stream whose sample compresses `ratio` times (`None`: empty), given the
/// newest snapshot of its series (`None`: the first).
///
/// - Without coarse chunking, or for a stream under `min_ratio`: the default sizes. A
///   coarse series goes back to them only under `min_ratio / 2`.
/// - The first snapshot of a series: the default sizes, since there is nothing yet to
///   deduplicate against and the next snapshot needs them to measure.
/// - After a default-cut snapshot: the default sizes, changing to coarse ones mid-way when
///   [`Switch::due`] says they store more than coarse ones would.
/// - After a coarse snapshot: coarse, unless that snapshot stored less than half of its
///   stream anew (changes are then far apart, and default chunks store less); an
///   unchanged stream says nothing about that and keeps the series coarse.
pub fn plan(
    fine: &ChunkerParams,
    coarse: Option<&CoarseChunking>,
    previous: Option<&Previous>,
    ratio: Option<u64>,
) -> Cut {
    let default = Cut::fixed(*fine);
    let Some(coarse) = coarse else {
        return default;
    };
    let coarse_cut = Cut {
        params: coarse.chunker,
        coarse: true,
        switch: None,
    };
    let min = u64::from(coarse.min_ratio);
    match (previous, ratio) {
        (Some(p), None) if p.coarse => coarse_cut,
        (_, None) | (None, _) => default,
        (Some(p), Some(r)) if p.coarse => {
            let sparse =
                p.raw_bytes_added > 0 && p.raw_bytes_added.saturating_mul(2) < p.bytes_read;
            if r < min / 2 || sparse {
                default
            } else {
                coarse_cut
            }
        }
        (Some(_), Some(r)) if r >= min => Cut {
            switch: Some(Switch {
                to: coarse.chunker,
                ratio: r,
            }),
            ..default
        },
        (Some(_), Some(_)) => default,
    }
}

/// Reads up to [`SAMPLE_BYTES`] from `src` (fewer only at its end).
pub fn read_sample(src: &mut impl Read) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SAMPLE_BYTES);
    src.by_ref()
        .take(SAMPLE_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(head)
}

/// The sample, then the rest of the stream: the sample's buffer is freed once it has been
/// read, so that it does not stay in memory for the whole stream.
pub struct Prefixed<R> {
    head: Vec<u8>,
    at: usize,
    rest: R,
}

impl<R: Read> Prefixed<R> {
    /// `head` followed by `rest`.
    pub fn new(head: Vec<u8>, rest: R) -> Self {
        Self { head, at: 0, rest }
    }
}

impl<R: Read> Read for Prefixed<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.at < self.head.len() {
            let n = buf.len().min(self.head.len() - self.at);
            buf[..n].copy_from_slice(&self.head[self.at..self.at + n]);
            self.at += n;
            if self.at == self.head.len() {
                self.head = Vec::new();
                self.at = 0;
            }
            return Ok(n);
        }
        self.rest.read(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::{DEFAULT_CHUNKER, DEFAULT_COARSE};

    fn plan_for(previous: Option<Previous>, ratio: Option<u64>) -> Cut {
        plan(
            &DEFAULT_CHUNKER,
            Some(&DEFAULT_COARSE),
            previous.as_ref(),
            ratio,
        )
    }

    fn prev(coarse: bool, bytes_read: u64, raw_bytes_added: u64) -> Option<Previous> {
        Some(Previous {
            coarse,
            bytes_read,
            raw_bytes_added,
        })
    }

    #[test]
    fn a_first_snapshot_uses_the_default_sizes_and_does_not_switch() {
        for ratio in [None, Some(2), Some(90)] {
            assert_eq!(plan_for(None, ratio), Cut::fixed(DEFAULT_CHUNKER));
        }
    }

    #[test]
    fn after_a_default_snapshot_a_compressible_stream_may_switch() {
        let c = plan_for(prev(false, 100, 10), Some(32));
        assert!(!c.coarse);
        assert_eq!(c.params, DEFAULT_CHUNKER);
        assert_eq!(
            c.switch,
            Some(Switch {
                to: DEFAULT_COARSE.chunker,
                ratio: 32
            })
        );
        assert_eq!(plan_for(prev(false, 100, 10), Some(31)).switch, None);
        assert_eq!(plan_for(prev(false, 100, 10), None).switch, None);
    }

    #[test]
    fn a_coarse_series_stays_coarse_unless_changes_were_sparse_or_the_stream_is_not() {
        let dense = prev(true, 100, 90);
        assert!(plan_for(dense, Some(16)).coarse);
        assert!(plan_for(dense, None).coarse);
        assert_eq!(plan_for(dense, Some(15)), Cut::fixed(DEFAULT_CHUNKER));
        // Under half stored anew: back to the default sizes, without a switch.
        assert_eq!(
            plan_for(prev(true, 100, 49), Some(90)),
            Cut::fixed(DEFAULT_CHUNKER)
        );
        assert!(plan_for(prev(true, 100, 50), Some(90)).coarse);
        // An unchanged stream says nothing.
        assert!(plan_for(prev(true, 100, 0), Some(90)).coarse);
    }

    #[test]
    fn without_coarse_chunking_every_stream_is_fine() {
        let c = plan(
            &DEFAULT_CHUNKER,
            None,
            prev(true, 1, 1).as_ref(),
            Some(1000),
        );
        assert_eq!(c, Cut::fixed(DEFAULT_CHUNKER));
    }

    #[test]
    fn the_switch_is_due_once_default_chunks_cost_5_4_of_coarse_ones() {
        let s = Switch {
            to: DEFAULT_COARSE.chunker,
            ratio: 100,
        };
        let read = SWITCH_AFTER;
        // Coarse would store read / 100.
        assert!(!s.due(read, read / 100 * 5 / 4));
        assert!(s.due(read, read / 100 * 5 / 4 + 1));
        // Not before SWITCH_AFTER bytes, whatever the cost.
        assert!(!s.due(read - 1, read));
    }

    #[test]
    fn sample_ratios() {
        assert_eq!(sample_ratio(&[]), None);
        let blank: Vec<u8> = (0..1_000_000u32)
            .flat_map(|i| format!("{i}\t1\t0\t{:84}\n", "").into_bytes())
            .take(SAMPLE_BYTES)
            .collect();
        assert!(
            sample_ratio(&blank).unwrap() >= 32,
            "{:?}",
            sample_ratio(&blank)
        );
        let mut random = vec![0u8; 1 << 20];
        crate::crypto::random_fill(&mut random);
        assert_eq!(sample_ratio(&random), Some(0));
    }

    #[test]
    fn the_sample_is_the_head_and_the_rest_follows() {
        let data: Vec<u8> = (0..SAMPLE_BYTES + 10).map(|i| i.to_le_bytes()[0]).collect();
        let mut src = &data[..];
        let head = read_sample(&mut src).unwrap();
        assert_eq!(head.len(), SAMPLE_BYTES);
        assert_eq!(src.len(), 10);
        let mut short = &data[..5];
        assert_eq!(read_sample(&mut short).unwrap(), &data[..5]);
        // Head and rest read back as the stream, whatever the read sizes.
        for step in [1, 7, SAMPLE_BYTES, 3 * SAMPLE_BYTES] {
            let mut p = Prefixed::new(head.clone(), src);
            let (mut out, mut buf) = (Vec::new(), vec![0u8; step]);
            loop {
                let n = p.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&buf[..n]);
            }
            assert_eq!(out, data);
        }
    }
}
