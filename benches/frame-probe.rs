//! Would compressing runs of new chunks together ("frames") let small chunks beat restic's
//! bytes on a dump that compresses ~100x? A model, not the format: it chunks A and B of a
//! `dump-pair.sh` data set with larder's chunker, then prices B's new chunks two ways —
//! each chunk compressed and sealed alone (format version 1), and runs of new chunks
//! compressed together up to a frame size — and adds the metadata a frame format would still
//! pay per chunk (content list 40 B for every chunk of B; pack header and index entry 37 B
//! each per new chunk; 26 B of entries and 40 B of nonce and tag per frame).
//!
//!     cargo bench --bench frame-probe -- /var/tmp/larder-bench-t10k
//!
//! Without a data directory it prints how to make one and exits 0. Results and the
//! conclusion are in `format-spec/chunker.md` ("Frames").

use larder::chunker::Chunker;
use larder::crypto::{Keys, MasterKey};
use larder::format::BlobKind;
use larder::format::config::{ChunkerAlgorithm, ChunkerParams};
use larder::id::{BlobId, RepoId};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::Path;

const CONTENT_LIST_ENTRY: usize = 40;
const ENTRY: usize = 37;
const FRAME_ENTRIES: usize = 26;
const SEAL: usize = 40;
const LEVEL: i32 = 3;

fn chunks(path: &Path, p: &ChunkerParams, k: &Keys) -> std::io::Result<Vec<(BlobId, Vec<u8>)>> {
    let f = std::fs::File::open(path)?;
    let mut c = Chunker::new(std::io::BufReader::new(f), p, k.gear());
    let mut out = Vec::new();
    while let Some(b) = c.next_batch(4 << 20)? {
        for i in 0..b.chunks.len() {
            let ch = b.chunk(i);
            out.push((k.blob_id(BlobKind::Data, ch), ch.to_vec()));
        }
    }
    Ok(out)
}

fn sealed_len(plain: &[u8]) -> usize {
    let z = zstd::bulk::compress(plain, LEVEL).map_or(plain.len(), |z| z.len());
    z.min(plain.len()) + SEAL
}

/// (sealed bytes, frames) for `new` cut into frames of at least `frame` bytes.
fn framed(new: &[&[u8]], frame: usize) -> (usize, usize) {
    let mut frames: Vec<Vec<u8>> = Vec::new();
    let mut cur = Vec::new();
    for c in new {
        cur.extend_from_slice(c);
        if cur.len() >= frame {
            frames.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        frames.push(cur);
    }
    (frames.par_iter().map(|f| sealed_len(f)).sum(), frames.len())
}

fn mb(b: usize) -> String {
    format!("{:.2}", b as f64 / 1e6)
}

fn main() -> std::io::Result<()> {
    let Some(dir) = std::env::args().skip(1).find(|a| !a.starts_with('-')) else {
        println!(
            "frame-probe: pass a dump-pair.sh data directory (cargo bench --bench frame-probe -- DIR)"
        );
        return Ok(());
    };
    let dir = Path::new(&dir);
    // A fixed key, so that a run is repeatable; on pgbench's blank filler the chunk count
    // depends on the key by up to ±25% (the gear table meets long runs of spaces).
    let master = MasterKey::from_bytes(zeroize::Zeroizing::new([7; 32]));
    let k = Keys::derive(RepoId([1; 32]), master);
    println!(
        "avg chunk | frame | B chunks | B new | new raw MB | per-chunk adds MB | framed adds MB (data + list + entries)"
    );
    for avg in [4096u32, 8192, 16384] {
        let p = ChunkerParams {
            algorithm: ChunkerAlgorithm::FastCdc2020,
            min_size: avg / 4,
            avg_size: avg,
            max_size: avg * 8,
            normalization: 1,
        };
        let a = chunks(&dir.join("A.sql"), &p, &k)?;
        let b = chunks(&dir.join("B.sql"), &p, &k)?;
        let mut seen: HashSet<BlobId> = a.iter().map(|(id, _)| *id).collect();
        let b_new: Vec<&[u8]> = b
            .iter()
            .filter(|(id, _)| seen.insert(*id))
            .map(|(_, c)| c.as_slice())
            .collect();
        let new_raw: usize = b_new.iter().map(|c| c.len()).sum();
        let list = b.len() * CONTENT_LIST_ENTRY;
        // Format version 1: 50-byte pack and index entries, one seal per chunk.
        let v1: usize =
            b_new.par_iter().map(|c| sealed_len(c)).sum::<usize>() + b_new.len() * 100 + list;
        for frame in [128 << 10, 256 << 10, 1 << 20] {
            let (data, frames) = framed(&b_new, frame);
            let entries = b_new.len() * 2 * ENTRY + frames * FRAME_ENTRIES;
            println!(
                "{avg} | {} KiB | {} | {} | {} | {} | {} ({} + {} + {})",
                frame >> 10,
                b.len(),
                b_new.len(),
                mb(new_raw),
                mb(v1),
                mb(data + list + entries),
                mb(data),
                mb(list),
                mb(entries)
            );
        }
    }
    Ok(())
}
