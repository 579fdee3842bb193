//! Packs: many sealed blobs in one object, closed by an encrypted header that lists them
//! (`format-spec/pack.md`), so the index can always be rebuilt from the packs themselves.

pub mod reader;
pub mod writer;
