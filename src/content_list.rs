//! Content lists: the ordered chunk ids of a stream, stored as a tree of content-list blobs
//! (`format-spec/content-list.md`) so that memory and snapshot size do not grow with the
//! stream, and an incremental snapshot stores only the changed part of its list (invariant 7).
//!
//! A node is cut after an entry whose id's low 8 bits are zero, or at 4096 entries. The cut
//! depends only on the entry itself, so an edit in the stream changes only the nodes on the
//! path from the changed chunks to the root.

use crate::error::{Error, Result};
use crate::format::content_list::{ContentListBlob, ListEntry, MAX_LEVEL};
use crate::format::tree::{Content, MAX_INLINE};
use crate::format::{BlobKind, DecodeError};
use crate::id::BlobId;

/// A node is cut after an entry whose id has these low bits all zero (mean fan-out 256).
pub const CUT_MASK: u32 = 0xff;
/// A node never holds more entries than this.
pub const MAX_ENTRIES: usize = 4096;

/// The root of a stored stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamRoot {
    /// The top content-list blob.
    pub content_list: BlobId,
    /// Stream bytes.
    pub size: u64,
}

fn is_cut(id: &BlobId) -> bool {
    let b = id.as_bytes();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & CUT_MASK == 0
}

/// Builds the list tree as entries arrive; holds at most one open node per level.
#[derive(Debug, Default)]
pub struct ContentListBuilder {
    levels: Vec<Vec<ListEntry>>,
    size: u64,
    /// Whether any node has been stored (then the list cannot be inlined).
    cut_any: bool,
}

impl ContentListBuilder {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a data chunk; `store` stores a content-list blob and returns its id.
    pub fn push(
        &mut self,
        entry: ListEntry,
        store: &mut dyn FnMut(&[u8]) -> Result<BlobId>,
    ) -> Result<()> {
        self.size += entry.size;
        self.push_at(0, entry, store)
    }

    fn push_at(
        &mut self,
        level: usize,
        entry: ListEntry,
        store: &mut dyn FnMut(&[u8]) -> Result<BlobId>,
    ) -> Result<()> {
        if self.levels.len() <= level {
            self.levels.push(Vec::new());
        }
        self.levels[level].push(entry);
        if is_cut(&entry.id) || self.levels[level].len() >= MAX_ENTRIES {
            self.cut(level, store)?;
        }
        Ok(())
    }

    fn cut(&mut self, level: usize, store: &mut dyn FnMut(&[u8]) -> Result<BlobId>) -> Result<()> {
        self.cut_any = true;
        let entries = std::mem::take(&mut self.levels[level]);
        let node = node(level, entries)?;
        let size = node.total().unwrap_or(u64::MAX);
        let id = store(&node.encode())?;
        self.push_at(level + 1, ListEntry { id, size }, store)
    }

    /// A file's content (`format-spec/tree.md`): its chunks themselves when no node was cut
    /// and there are at most [`MAX_INLINE`] of them, else the stored list's root. Returns the
    /// content and the bytes it covers.
    pub fn finish_content(
        mut self,
        store: &mut dyn FnMut(&[u8]) -> Result<BlobId>,
    ) -> Result<(Content, u64)> {
        if !self.cut_any && self.levels.len() <= 1 {
            let entries = self.levels.pop().unwrap_or_default();
            if entries.len() <= MAX_INLINE {
                return Ok((Content::Inline(entries), self.size));
            }
            self.levels.push(entries);
        }
        let root = self.finish(store)?;
        Ok((Content::List(root.content_list), root.size))
    }

    /// Stores what is left and returns the root.
    pub fn finish(mut self, store: &mut dyn FnMut(&[u8]) -> Result<BlobId>) -> Result<StreamRoot> {
        let mut level = 0;
        loop {
            if level + 1 >= self.levels.len() {
                // The top level: one entry above level 0 is itself the root; otherwise the
                // level becomes one more node.
                let top = match self.levels.get_mut(level) {
                    Some(l) => std::mem::take(l),
                    None => Vec::new(),
                };
                let content_list = if level > 0 && top.len() == 1 {
                    top[0].id
                } else {
                    store(&node(level, top)?.encode())?
                };
                return Ok(StreamRoot {
                    content_list,
                    size: self.size,
                });
            }
            if !self.levels[level].is_empty() {
                self.cut(level, store)?;
            }
            level += 1;
        }
    }
}

fn node(level: usize, entries: Vec<ListEntry>) -> Result<ContentListBlob> {
    let level = u8::try_from(level)
        .ok()
        .filter(|l| *l <= MAX_LEVEL)
        .ok_or_else(|| Error::Internal("content list deeper than the format allows".into()))?;
    Ok(ContentListBlob { level, entries })
}

/// Loads a verified content-list blob's plaintext by id.
type LoadNode<'a> = Box<dyn FnMut(&BlobId) -> Result<Vec<u8>> + 'a>;

/// Walks a list tree depth-first and yields its data chunks in stream order, checking that
/// every node's level and sizes agree with its parent's entry. Holds one node per level.
pub struct ContentListReader<'a> {
    load: LoadNode<'a>,
    stack: Vec<(ContentListBlob, usize, BlobId)>,
}

impl<'a> ContentListReader<'a> {
    /// Starts at `root`; `load` returns a verified content-list blob's plaintext.
    pub fn new(
        root: StreamRoot,
        load: impl FnMut(&BlobId) -> Result<Vec<u8>> + 'a,
    ) -> Result<Self> {
        let mut r = Self {
            load: Box::new(load),
            stack: Vec::new(),
        };
        let top = r.node(&root.content_list, None, root.size)?;
        r.stack.push((top, 0, root.content_list));
        Ok(r)
    }

    fn node(&mut self, id: &BlobId, level: Option<u8>, size: u64) -> Result<ContentListBlob> {
        let bad = |what: &'static str| {
            Error::corrupt(format!("content list {id}"), DecodeError::Invalid(what))
        };
        let plain = (self.load)(id)?;
        let node = ContentListBlob::decode(&plain)
            .map_err(|e| Error::corrupt(format!("content list {id}"), e))?;
        if level.is_some_and(|l| l != node.level) {
            return Err(bad("level does not match its parent"));
        }
        if node.total() != Some(size) {
            return Err(bad("sizes do not add up to its parent's entry"));
        }
        Ok(node)
    }

    /// The next data chunk, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<ListEntry>> {
        loop {
            let Some((node, pos, _)) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(entry) = node.entries.get(*pos).copied() else {
                self.stack.pop();
                continue;
            };
            *pos += 1;
            if node.level == 0 {
                return Ok(Some(entry));
            }
            let child_level = node.level - 1;
            let child = self.node(&entry.id, Some(child_level), entry.size)?;
            self.stack.push((child, 0, entry.id));
        }
    }
}

/// The blob kind of list nodes.
pub const KIND: BlobKind = BlobKind::ContentList;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn id(i: u64, seed: u8) -> BlobId {
        let mut h = blake3::Hasher::new();
        h.update(&[seed]);
        h.update(&i.to_le_bytes());
        BlobId(*h.finalize().as_bytes())
    }

    fn build(entries: &[ListEntry], store: &mut HashMap<BlobId, Vec<u8>>) -> StreamRoot {
        let mut put = |b: &[u8]| {
            let id = BlobId(*blake3::hash(b).as_bytes());
            store.insert(id, b.to_vec());
            Ok(id)
        };
        let mut bld = ContentListBuilder::new();
        for e in entries {
            bld.push(*e, &mut put).unwrap();
        }
        bld.finish(&mut put).unwrap()
    }

    fn read(root: StreamRoot, store: &HashMap<BlobId, Vec<u8>>) -> Vec<ListEntry> {
        let mut r = ContentListReader::new(root, |id| Ok(store[id].clone())).unwrap();
        let mut out = Vec::new();
        while let Some(e) = r.next_chunk().unwrap() {
            out.push(e);
        }
        out
    }

    #[test]
    fn small_lists_are_inlined_and_large_ones_stored() {
        let mut store = HashMap::new();
        let mut put = |b: &[u8]| {
            let id = BlobId(*blake3::hash(b).as_bytes());
            store.insert(id, b.to_vec());
            Ok(id)
        };
        // Ids whose low bits are not zero never cut a node.
        let uncut = |i: u64| {
            let mut n = 0u64;
            loop {
                let c = id(i * 1000 + n, 3);
                if !is_cut(&c) {
                    return c;
                }
                n += 1;
            }
        };
        for n in [0usize, 1, MAX_INLINE] {
            let mut b = ContentListBuilder::new();
            for i in 0..n as u64 {
                b.push(
                    ListEntry {
                        id: uncut(i),
                        size: 5,
                    },
                    &mut put,
                )
                .unwrap();
            }
            let (content, size) = b.finish_content(&mut put).unwrap();
            assert!(matches!(content, Content::Inline(ref v) if v.len() == n));
            assert_eq!(size, 5 * n as u64);
        }
        let mut b = ContentListBuilder::new();
        for i in 0..=MAX_INLINE as u64 {
            b.push(
                ListEntry {
                    id: uncut(i),
                    size: 5,
                },
                &mut put,
            )
            .unwrap();
        }
        assert!(matches!(
            b.finish_content(&mut put).unwrap().0,
            Content::List(_)
        ));
    }

    #[test]
    fn round_trip_sizes() {
        for n in [0usize, 1, 2, 255, 4096, 4097, 20_000, 100_000] {
            let entries: Vec<_> = (0..n as u64)
                .map(|i| ListEntry {
                    id: id(i, 0),
                    size: i % 7 + 1,
                })
                .collect();
            let mut store = HashMap::new();
            let root = build(&entries, &mut store);
            assert_eq!(root.size, entries.iter().map(|e| e.size).sum::<u64>());
            assert_eq!(read(root, &store), entries, "n = {n}");
        }
    }

    #[test]
    fn an_edit_changes_few_nodes() {
        let entries: Vec<_> = (0..50_000u64)
            .map(|i| ListEntry {
                id: id(i, 0),
                size: 8192,
            })
            .collect();
        let mut a = HashMap::new();
        build(&entries, &mut a);
        let mut edited = entries.clone();
        edited[25_000] = ListEntry {
            id: id(1, 9),
            size: 8000,
        };
        edited.insert(
            40_000,
            ListEntry {
                id: id(2, 9),
                size: 10,
            },
        );
        let mut b = HashMap::new();
        build(&edited, &mut b);
        let new = b.keys().filter(|k| !a.contains_key(k)).count();
        assert!(new <= 6, "{new} new list nodes for two edits");
        assert!(a.len() > 100);
    }

    #[test]
    fn reader_rejects_inconsistent_sizes() {
        let entries: Vec<_> = (0..10_000u64)
            .map(|i| ListEntry {
                id: id(i, 0),
                size: 1,
            })
            .collect();
        let mut store = HashMap::new();
        let mut root = build(&entries, &mut store);
        root.size += 1;
        assert!(ContentListReader::new(root, |id| Ok(store[id].clone())).is_err());
    }
}
