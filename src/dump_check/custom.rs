//! The custom archive format (`pg_dump -Fc`) read as a stream, for [`super::DumpCheck`]:
//! the header and table of contents as pg_restore's `ReadHead` and `ReadToc` read them
//! (pg_backup_archiver.c), then the data blocks as pg_backup_custom.c writes them, to the last
//! byte. Nothing is decompressed or kept but the position, the field being read (at most 9
//! bytes), a label prefix, and one small record per TOC entry that carries data, so that a
//! block can be matched to its entry and a missing block named.
//!
//! Archive layout (all that is read here; versions 1.12 to 1.16):
//!
//! ```text
//! header  "PGDMP" major minor rev int_size off_size format(=1)
//!         compression (1.15+: algorithm byte; before: int level)
//!         7 ints (creation time) str dbname str server_version str pg_dump_version
//! toc     int count, then per entry: int dump_id int had_dumper str tableoid str oid
//!         str tag str desc int section str defn str drop str copy str namespace
//!         str tablespace [str tableam 1.14+] [int relkind 1.16+] str owner str with_oids
//!         str dep... NULL  offset data_position
//! data    per entry with data, in TOC order: byte type(1 = data, 3 = large objects) int dump_id
//!         data:  (int len>0, len bytes)... int 0
//!         blobs: (int oid!=0, (int len>0, len bytes)... int 0)... int 0
//! ```
//!
//! An int is a sign byte (0 or 1) and `int_size` magnitude bytes, least significant first; a
//! str is an int length (negative = NULL) and that many bytes; an offset is a flag byte
//! (1 = not set, 2 = set, 3 = no data) and `off_size` bytes, least significant first.

use std::collections::HashMap;

use super::Verdict;

/// The first bytes of every custom-format archive.
pub(super) const CUSTOM_MAGIC: &[u8] = b"PGDMP";
/// `archCustom` in pg_backup.h.
const ARCH_CUSTOM: u8 = 1;
/// The archive versions read here: 1.12 (pg_dump 9.0) to 1.16 (pg_dump 17 and 18).
const MIN_MINOR: u8 = 12;
const MAX_MINOR: u8 = 16;
/// Data block types.
const BLK_DATA: u8 = 1;
const BLK_BLOBS: u8 = 3;
/// Offset flags.
const OFFSET_POS_NOT_SET: u8 = 1;
const OFFSET_POS_SET: u8 = 2;
const OFFSET_NO_DATA: u8 = 3;
/// Sections (`teSection`): none, pre-data, data, post-data.
const SECTIONS: std::ops::RangeInclusive<i64> = 1..=4;
/// Longest prefix of a tag, description or schema kept for messages.
const LABEL_MAX: usize = 64;
/// Widest integer or offset field: a flag or sign byte and 8 value bytes.
const FIELD_MAX: usize = 9;

/// Where the reader is: what the bytes it is gathering mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Magic,
    Version,
    IntSize,
    OffSize,
    Format,
    Compression,
    /// The creation time: seconds, minutes, hours, day, month, year, DST flag.
    Created(u8),
    /// The length of a header string: database name, server version, pg_dump version.
    HeaderLen(u8),
    HeaderText(u8),
    TocCount,
    /// An integer, a string's length or the offset of a TOC entry field.
    Toc(Field),
    /// A string's bytes.
    TocText(Field),
    BlockType,
    BlockId,
    ChunkLen,
    ChunkBody,
    LoOid,
}

/// The fields of a TOC entry, in `WriteToc` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    DumpId,
    HadDumper,
    TableOid,
    Oid,
    Tag,
    Desc,
    Section,
    Defn,
    DropStmt,
    CopyStmt,
    Namespace,
    Tablespace,
    /// From 1.14 (pg_dump 12).
    TableAm,
    /// From 1.16 (pg_dump 17).
    RelKind,
    Owner,
    /// Always "false" since pg_dump 12; read, not judged.
    WithOids,
    /// One dependency; the list ends with a NULL string.
    Dep,
    /// The custom format's extra field: where the entry's data block is.
    DataOffset,
}

impl Field {
    fn next(self, minor: u8) -> Field {
        match self {
            Field::DumpId => Field::HadDumper,
            Field::HadDumper => Field::TableOid,
            Field::TableOid => Field::Oid,
            Field::Oid => Field::Tag,
            Field::Tag => Field::Desc,
            Field::Desc => Field::Section,
            Field::Section => Field::Defn,
            Field::Defn => Field::DropStmt,
            Field::DropStmt => Field::CopyStmt,
            Field::CopyStmt => Field::Namespace,
            Field::Namespace => Field::Tablespace,
            Field::Tablespace if minor >= 14 => Field::TableAm,
            Field::TableAm if minor >= 16 => Field::RelKind,
            Field::Tablespace | Field::TableAm | Field::RelKind => Field::Owner,
            Field::Owner => Field::WithOids,
            Field::WithOids | Field::Dep => Field::Dep,
            Field::DataOffset => Field::DumpId,
        }
    }

    fn is_int(self) -> bool {
        matches!(
            self,
            Field::DumpId | Field::HadDumper | Field::Section | Field::RelKind
        )
    }
}

/// What the reader gathers next.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// This many bytes into `Custom::field`.
    Fixed(usize),
    /// Skip this many bytes (a string's or a chunk's body), keeping a prefix if asked.
    Skip(u64),
}

/// A TOC entry that carries data, and whether its block has been seen.
#[derive(Debug)]
struct DataEntry {
    label: String,
    blobs: bool,
    offset: Option<u64>,
    seen: bool,
}

/// The TOC entry being read.
#[derive(Debug, Default)]
struct Entry {
    dump_id: i64,
    had_dumper: bool,
    tag: String,
    desc: String,
    namespace: String,
}

impl Entry {
    fn label(&self) -> String {
        let dot = if self.namespace.is_empty() { "" } else { "." };
        format!(
            "TOC entry {} ({} {}{dot}{})",
            self.dump_id, self.desc, self.namespace, self.tag
        )
    }
}

/// The data block being read.
#[derive(Debug, Default)]
struct Block {
    index: usize,
    start: u64,
    blobs: bool,
    in_object: bool,
}

/// A push parser of the custom format, as pg_restore reads it, that keeps no data.
#[derive(Debug)]
pub(super) struct Custom {
    /// Stream offset of the next byte.
    at: u64,
    step: Step,
    want: Want,
    field: [u8; FIELD_MAX],
    got: usize,
    /// The kept prefix of the string being skipped, if it is a label.
    kept: Vec<u8>,
    keep: bool,
    failure: Option<String>,
    minor: u8,
    int_size: usize,
    off_size: usize,
    toc_count: u64,
    toc_read: u64,
    entry: Entry,
    /// The entries with data, in TOC order, and their index by dump id.
    data: Vec<DataEntry>,
    by_id: HashMap<i64, usize>,
    blocks_seen: usize,
    block: Block,
}

impl Custom {
    pub(super) fn new() -> Self {
        Custom {
            at: 0,
            step: Step::Magic,
            want: Want::Fixed(CUSTOM_MAGIC.len()),
            field: [0; FIELD_MAX],
            got: 0,
            kept: Vec::new(),
            keep: false,
            failure: None,
            minor: 0,
            int_size: 0,
            off_size: 0,
            toc_count: 0,
            toc_read: 0,
            entry: Entry::default(),
            data: Vec::new(),
            by_id: HashMap::new(),
            blocks_seen: 0,
            block: Block::default(),
        }
    }

    /// Reads the next piece of the stream; after a failure, ignores the rest.
    pub(super) fn feed(&mut self, mut data: &[u8]) {
        while self.failure.is_none() {
            if let Want::Skip(0) = self.want {
                self.complete();
                continue;
            }
            if data.is_empty() {
                break;
            }
            match self.want {
                Want::Fixed(n) => {
                    let take = n.saturating_sub(self.got).min(data.len());
                    let (now, rest) = data.split_at(take);
                    if let Some(dst) = self.field.get_mut(self.got..self.got + take) {
                        dst.copy_from_slice(now);
                    }
                    self.got += take;
                    self.at += take as u64;
                    data = rest;
                    if self.got == n {
                        self.got = 0;
                        self.complete();
                    }
                }
                Want::Skip(left) => {
                    let take = usize::try_from(left).map_or(data.len(), |l| l.min(data.len()));
                    let (now, rest) = data.split_at(take);
                    if self.keep && self.kept.len() < LABEL_MAX {
                        let room = (LABEL_MAX - self.kept.len()).min(now.len());
                        self.kept
                            .extend_from_slice(now.get(..room).unwrap_or_default());
                    }
                    self.want = Want::Skip(left - take as u64);
                    self.at += take as u64;
                    data = rest;
                }
            }
        }
    }

    fn complete(&mut self) {
        if let Err(why) = self.advance() {
            self.failure = Some(why);
        }
    }

    fn expect(&mut self, step: Step, want: Want) {
        self.step = step;
        self.want = want;
    }

    fn expect_int(&mut self, step: Step) {
        self.expect(step, Want::Fixed(1 + self.int_size));
    }

    fn expect_field(&mut self, field: Field) {
        let width = if field == Field::DataOffset {
            self.off_size
        } else {
            self.int_size
        };
        self.expect(Step::Toc(field), Want::Fixed(1 + width));
    }

    fn expect_text(&mut self, step: Step, len: i64, keep: bool) {
        self.kept.clear();
        self.keep = keep;
        self.expect(step, Want::Skip(len.unsigned_abs()));
    }

    fn expect_block(&mut self) {
        self.block = Block {
            start: self.at,
            ..Block::default()
        };
        self.expect(Step::BlockType, Want::Fixed(1));
    }

    fn byte(&self) -> u8 {
        self.field[0]
    }

    /// The integer just gathered.
    fn int(&self) -> Result<i64, String> {
        let bytes = self.field.get(..1 + self.int_size).unwrap_or_default();
        let Some((&sign, magnitude)) = bytes.split_first() else {
            return Err(self.at_byte("an integer field is missing"));
        };
        let value = magnitude
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
        let value = i64::try_from(value)
            .map_err(|_| self.at_byte(&format!("integer {value} is out of range")))?;
        match sign {
            0 => Ok(value),
            1 => Ok(-value),
            s => Err(self.at_byte(&format!("an integer has sign byte {s} (expected 0 or 1)"))),
        }
    }

    fn at_byte(&self, what: &str) -> String {
        format!(
            "the custom-format archive is malformed at byte {}: {what}",
            self.at
        )
    }

    /// Acts on the field just completed and says what to read next.
    fn advance(&mut self) -> Result<(), String> {
        match self.step {
            Step::Magic => {
                if self.field.get(..CUSTOM_MAGIC.len()) != Some(CUSTOM_MAGIC) {
                    return Err(
                        "the stream does not start with the custom-format magic `PGDMP`, \
                                so it is not a `pg_dump -Fc` archive"
                            .to_owned(),
                    );
                }
                self.expect(Step::Version, Want::Fixed(3));
            }
            Step::Version => {
                let [major, minor, rev, ..] = self.field;
                if major != 1 || !(MIN_MINOR..=MAX_MINOR).contains(&minor) {
                    return Err(format!(
                        "the custom-format archive has version {major}.{minor}.{rev}; this check \
                         reads 1.{MIN_MINOR} to 1.{MAX_MINOR} (pg_dump 9.0 to 18)"
                    ));
                }
                self.minor = minor;
                self.expect(Step::IntSize, Want::Fixed(1));
            }
            Step::IntSize | Step::OffSize => {
                let size = usize::from(self.byte());
                if !(1..FIELD_MAX).contains(&size) {
                    return Err(self.at_byte(&format!(
                        "{} size {size} is not 1 to 8 bytes",
                        if self.step == Step::IntSize {
                            "integer"
                        } else {
                            "offset"
                        }
                    )));
                }
                if self.step == Step::IntSize {
                    self.int_size = size;
                    self.expect(Step::OffSize, Want::Fixed(1));
                } else {
                    self.off_size = size;
                    self.expect(Step::Format, Want::Fixed(1));
                }
            }
            Step::Format => {
                let format = self.byte();
                if format != ARCH_CUSTOM {
                    return Err(format!(
                        "the archive's format byte is {format}, not the custom format \
                         ({ARCH_CUSTOM}; 5 is a directory-format toc.dat)"
                    ));
                }
                if self.minor >= 15 {
                    self.expect(Step::Compression, Want::Fixed(1));
                } else {
                    self.expect_int(Step::Compression);
                }
            }
            Step::Compression => {
                if self.minor >= 15 && self.byte() > 3 {
                    return Err(
                        self.at_byte(&format!("unknown compression algorithm {}", self.byte()))
                    );
                } else if self.minor < 15 {
                    self.int()?;
                }
                self.expect_int(Step::Created(0));
            }
            Step::Created(i) => {
                self.int()?;
                if i < 6 {
                    self.expect_int(Step::Created(i + 1));
                } else {
                    self.expect_int(Step::HeaderLen(0));
                }
            }
            Step::HeaderLen(i) => {
                let len = self.int()?;
                if len >= 0 {
                    self.expect_text(Step::HeaderText(i), len, false);
                } else {
                    self.after_header_text(i);
                }
            }
            Step::HeaderText(i) => self.after_header_text(i),
            Step::TocCount => {
                let count = self.int()?;
                self.toc_count = u64::try_from(count).map_err(|_| {
                    self.at_byte(&format!("the table of contents has {count} entries"))
                })?;
                self.start_entry_or_data();
            }
            Step::Toc(field) => self.toc_field(field)?,
            Step::TocText(field) => {
                let text = || sanitize(&self.kept);
                match field {
                    Field::Tag => self.entry.tag = text(),
                    Field::Desc => self.entry.desc = text(),
                    Field::Namespace => self.entry.namespace = text(),
                    _ => {}
                }
                self.expect_field(field.next(self.minor));
            }
            Step::BlockType => {
                if self.blocks_seen == self.data.len() {
                    return Err(format!(
                        "the custom-format archive goes on after its last data block \
                         (unexpected byte at {})",
                        self.block.start
                    ));
                }
                let kind = self.byte();
                if kind != BLK_DATA && kind != BLK_BLOBS {
                    return Err(self.at_byte(&format!("unknown data block type {kind}")));
                }
                self.block.blobs = kind == BLK_BLOBS;
                self.expect_int(Step::BlockId);
            }
            Step::BlockId => self.block_id()?,
            Step::ChunkLen => {
                let len = self.int()?;
                if len > 0 {
                    self.expect_text(Step::ChunkBody, len, false);
                } else if len < 0 {
                    return Err(self.at_byte(&format!("a data chunk has length {len}")));
                } else if self.block.blobs {
                    self.block.in_object = false;
                    self.expect_int(Step::LoOid);
                } else {
                    self.expect_block();
                }
            }
            Step::ChunkBody => self.expect_int(Step::ChunkLen),
            Step::LoOid => {
                // OIDs are unsigned and pg_dump writes them as C ints: large ones come out
                // negative. Only zero means something: the end of the block.
                if self.int()? == 0 {
                    self.expect_block();
                } else {
                    self.block.in_object = true;
                    self.expect_int(Step::ChunkLen);
                }
            }
        }
        Ok(())
    }

    fn after_header_text(&mut self, i: u8) {
        if i < 2 {
            self.expect_int(Step::HeaderLen(i + 1));
        } else {
            self.expect_int(Step::TocCount);
        }
    }

    fn start_entry_or_data(&mut self) {
        if self.toc_read < self.toc_count {
            self.entry = Entry::default();
            self.expect_field(Field::DumpId);
        } else {
            self.expect_block();
        }
    }

    fn toc_field(&mut self, field: Field) -> Result<(), String> {
        if field == Field::DataOffset {
            return self.data_offset();
        }
        let value = self.int()?;
        if field.is_int() {
            match field {
                Field::DumpId if value <= 0 => {
                    return Err(self.at_byte(&format!(
                        "TOC entry {} of {} has dump id {value}",
                        self.toc_read + 1,
                        self.toc_count
                    )));
                }
                Field::DumpId => self.entry.dump_id = value,
                Field::HadDumper => self.entry.had_dumper = value != 0,
                Field::Section if !SECTIONS.contains(&value) => {
                    return Err(
                        self.at_byte(&format!("{} has section {value}", self.entry.label()))
                    );
                }
                _ => {}
            }
            self.expect_field(field.next(self.minor));
        } else if value >= 0 {
            let keep = matches!(field, Field::Tag | Field::Desc | Field::Namespace);
            self.expect_text(Step::TocText(field), value, keep);
        } else if field == Field::Dep {
            self.expect_field(Field::DataOffset);
        } else {
            self.expect_field(field.next(self.minor));
        }
        Ok(())
    }

    fn data_offset(&mut self) -> Result<(), String> {
        let flag = self.byte();
        let position = self
            .field
            .get(1..1 + self.off_size)
            .unwrap_or_default()
            .iter()
            .rev()
            .fold(0u64, |v, &b| (v << 8) | u64::from(b));
        let has_data = match flag {
            OFFSET_POS_NOT_SET | OFFSET_POS_SET => true,
            OFFSET_NO_DATA => false,
            _ => {
                return Err(self.at_byte(&format!(
                    "{} has data offset flag {flag}",
                    self.entry.label()
                )));
            }
        };
        if has_data != self.entry.had_dumper {
            return Err(self.at_byte(&format!(
                "{} {} a data dumper but its offset flag is {flag}",
                self.entry.label(),
                if self.entry.had_dumper {
                    "has"
                } else {
                    "has no"
                }
            )));
        }
        if has_data {
            let label = self.entry.label();
            if self
                .by_id
                .insert(self.entry.dump_id, self.data.len())
                .is_some()
            {
                return Err(self.at_byte(&format!("{label} appears twice")));
            }
            self.data.push(DataEntry {
                label,
                blobs: self.entry.desc == "BLOBS",
                offset: (flag == OFFSET_POS_SET).then_some(position),
                seen: false,
            });
        }
        self.toc_read += 1;
        self.start_entry_or_data();
        Ok(())
    }

    fn block_id(&mut self) -> Result<(), String> {
        let id = self.int()?;
        let start = self.block.start;
        let Some(&index) = self.by_id.get(&id) else {
            return Err(format!(
                "the data block at byte {start} is for dump id {id}, which has no data in the \
                 table of contents"
            ));
        };
        let Some(entry) = self.data.get_mut(index) else {
            return Err("internal error: data entry index out of range".to_owned());
        };
        if entry.seen {
            return Err(format!(
                "the data of {} appears twice (again at byte {start})",
                entry.label
            ));
        }
        if entry.blobs != self.block.blobs {
            return Err(format!(
                "the data block of {} at byte {start} has the wrong type",
                entry.label
            ));
        }
        if let Some(expected) = entry.offset.filter(|&o| o != start) {
            return Err(format!(
                "the data of {} starts at byte {start}, but the table of contents says byte \
                 {expected}",
                entry.label
            ));
        }
        entry.seen = true;
        self.blocks_seen += 1;
        self.block.index = index;
        if self.block.blobs {
            self.expect_int(Step::LoOid);
        } else {
            self.expect_int(Step::ChunkLen);
        }
        Ok(())
    }

    /// The verdict once the stream has ended.
    pub(super) fn finish(mut self) -> Verdict {
        self.feed(&[]);
        if let Some(why) = self.failure {
            return Verdict::failed(why);
        }
        let at = self.at;
        match self.step {
            Step::Magic
            | Step::Version
            | Step::IntSize
            | Step::OffSize
            | Step::Format
            | Step::Compression
            | Step::Created(_)
            | Step::HeaderLen(_)
            | Step::HeaderText(_)
            | Step::TocCount => Verdict::failed(format!(
                "the stream ends inside the custom-format header, after {at} bytes"
            )),
            Step::Toc(_) | Step::TocText(_) => Verdict::failed(format!(
                "the stream ends inside the table of contents, in entry {} of {}, after {at} \
                 bytes",
                self.toc_read + 1,
                self.toc_count
            )),
            Step::BlockType if self.blocks_seen == self.data.len() => Verdict::Ok,
            Step::BlockType => {
                let total = self.data.len();
                let missing = total - self.blocks_seen;
                let first = self
                    .data
                    .iter()
                    .find(|d| !d.seen)
                    .map_or("?", |d| d.label.as_str());
                let more = match missing {
                    0 | 1 => String::new(),
                    n => format!(" and {} more", n - 1),
                };
                Verdict::failed(format!(
                    "the stream ends after {} of {total} data blocks: the data of {first}{more} \
                     is missing",
                    self.blocks_seen
                ))
            }
            Step::BlockId => Verdict::failed(format!(
                "the stream ends inside the header of a data block that starts at byte {}",
                self.block.start
            )),
            Step::ChunkLen | Step::ChunkBody | Step::LoOid => {
                let label = self
                    .data
                    .get(self.block.index)
                    .map_or("?", |d| d.label.as_str());
                let what = if self.block.in_object {
                    "a large object in "
                } else {
                    ""
                };
                Verdict::failed(format!(
                    "the stream ends inside {what}the data of {label}, {} bytes into its block",
                    at - self.block.start
                ))
            }
        }
    }
}

/// A label kept from the archive, fit for a one-line message.
fn sanitize(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The compression a custom-format header declares, named for [`super::looks_compressed`]:
/// from 1.15 (pg_dump 16) an algorithm byte, before that a zlib level written as an int
/// (0 = none, -1 = default, 1..9). `None` for an uncompressed archive or another stream.
pub(super) fn declared_compression(head: &[u8]) -> Option<&'static str> {
    let rest = head.strip_prefix(CUSTOM_MAGIC)?;
    let &[
        major,
        minor,
        _rev,
        int_size,
        _off_size,
        format,
        ref field @ ..,
    ] = rest
    else {
        return None;
    };
    if major != 1 || format != ARCH_CUSTOM {
        return None;
    }
    if minor >= 15 {
        return match field.first()? {
            1 => Some("pg_dump custom format (gzip)"),
            2 => Some("pg_dump custom format (lz4)"),
            3 => Some("pg_dump custom format (zstd)"),
            _ => None,
        };
    }
    let level = field.get(..1 + usize::from(int_size))?;
    let compressed = level.iter().skip(1).any(|&b| b != 0);
    compressed.then_some("pg_dump custom format (gzip)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dump_check::tests::{check, check_split, reason};
    use crate::dump_check::{DumpKind, looks_compressed};
    use proptest::prelude::*;

    /// A synthetic custom-format archive written the way pg_dump writes one.
    #[derive(Clone)]
    struct Spec {
        minor: u8,
        compression: u8,
        /// Write the data offsets (as `pg_dump -f file` does after rewriting the TOC).
        offsets: bool,
        /// Chunks of the table's data block.
        chunks: Vec<usize>,
    }

    impl Default for Spec {
        fn default() -> Self {
            Spec {
                minor: 16,
                compression: 0,
                offsets: false,
                chunks: vec![30, 1, 300],
            }
        }
    }

    fn w_int(out: &mut Vec<u8>, v: i64) {
        out.push(u8::from(v < 0));
        out.extend_from_slice(&u32::try_from(v.unsigned_abs()).unwrap().to_le_bytes());
    }

    fn w_str(out: &mut Vec<u8>, s: Option<&str>) {
        match s {
            Some(s) => {
                w_int(out, i64::try_from(s.len()).unwrap());
                out.extend_from_slice(s.as_bytes());
            }
            None => w_int(out, -1),
        }
    }

    struct TocEntry {
        id: i64,
        data: bool,
        tag: &'static str,
        desc: &'static str,
        section: i64,
        defn: &'static str,
        deps: &'static [&'static str],
    }

    const ENTRIES: [TocEntry; 5] = [
        TocEntry {
            id: 3348,
            data: false,
            tag: "ENCODING",
            desc: "ENCODING",
            section: 2,
            defn: "SET client_encoding = 'UTF8';\n",
            deps: &[],
        },
        TocEntry {
            id: 215,
            data: false,
            tag: "a",
            desc: "TABLE",
            section: 2,
            defn: "CREATE TABLE public.a (id integer);\n",
            deps: &[],
        },
        TocEntry {
            id: 3340,
            data: true,
            tag: "a",
            desc: "TABLE DATA",
            section: 3,
            defn: "",
            deps: &["215"],
        },
        TocEntry {
            id: 3341,
            data: false,
            tag: "16390",
            desc: "BLOB",
            section: 2,
            defn: "SELECT pg_catalog.lo_create('16390');\n",
            deps: &[],
        },
        TocEntry {
            id: 3342,
            data: true,
            tag: "BLOBS",
            desc: "BLOBS",
            section: 3,
            defn: "",
            deps: &["3341", "17"],
        },
    ];

    fn custom_archive(spec: &Spec) -> Vec<u8> {
        // Block offsets do not depend on the offsets written (the field has a fixed width),
        // so a first pass without them finds them.
        let positions = spec.offsets.then(|| custom_with(spec, None).1);
        custom_with(spec, positions.as_deref()).0
    }

    /// The archive, and where each data block starts.
    fn custom_with(spec: &Spec, positions: Option<&[u64]>) -> (Vec<u8>, Vec<u64>) {
        let mut a = Vec::new();
        a.extend_from_slice(b"PGDMP");
        a.extend_from_slice(&[1, spec.minor, 0, 4, 8, 1]);
        if spec.minor >= 15 {
            a.push(spec.compression);
        } else {
            w_int(&mut a, i64::from(spec.compression));
        }
        for v in [9, 21, 19, 21, 10, 126, 0] {
            w_int(&mut a, v);
        }
        w_str(&mut a, Some("shop"));
        w_str(&mut a, Some("15.18 (Debian 15.18-0+deb12u1)"));
        w_str(&mut a, Some("15.18 (Debian 15.18-0+deb12u1)"));
        w_int(&mut a, ENTRIES.len().try_into().unwrap());
        let mut block = 0;
        for e in &ENTRIES {
            w_int(&mut a, e.id);
            w_int(&mut a, i64::from(e.data));
            w_str(&mut a, Some("0"));
            w_str(&mut a, Some("16384"));
            w_str(&mut a, Some(e.tag));
            w_str(&mut a, Some(e.desc));
            w_int(&mut a, e.section);
            w_str(&mut a, Some(e.defn));
            w_str(&mut a, None);
            w_str(&mut a, e.data.then_some("COPY public.a (id) FROM stdin;\n"));
            w_str(&mut a, Some("public"));
            w_str(&mut a, None);
            if spec.minor >= 14 {
                w_str(&mut a, Some("heap"));
            }
            if spec.minor >= 16 {
                w_int(&mut a, i64::from(b'r'));
            }
            w_str(&mut a, Some("postgres"));
            w_str(&mut a, Some("false"));
            for d in e.deps {
                w_str(&mut a, Some(d));
            }
            w_str(&mut a, None);
            match (e.data, positions) {
                (false, _) => a.push(OFFSET_NO_DATA),
                (true, None) => a.push(OFFSET_POS_NOT_SET),
                (true, Some(_)) => a.push(OFFSET_POS_SET),
            }
            let at = positions.and_then(|p| p.get(block)).copied().unwrap_or(0);
            a.extend_from_slice(&at.to_le_bytes());
            block += usize::from(e.data);
        }
        let mut starts = Vec::new();
        // The table's data.
        starts.push(a.len() as u64);
        a.push(BLK_DATA);
        w_int(&mut a, 3340);
        for (i, &n) in spec.chunks.iter().enumerate() {
            w_int(&mut a, i64::try_from(n).unwrap());
            a.extend((0..n).map(|j| u8::try_from((i + j) % 251).unwrap()));
        }
        w_int(&mut a, 0);
        // Two large objects, one with a large OID written as a negative int.
        starts.push(a.len() as u64);
        a.push(BLK_BLOBS);
        w_int(&mut a, 3342);
        for oid in [16390, -5] {
            w_int(&mut a, oid);
            w_int(&mut a, 4);
            a.extend_from_slice(b"blob");
            w_int(&mut a, 0);
        }
        w_int(&mut a, 0);
        (a, starts)
    }

    #[test]
    fn whole_custom_archives_pass_for_every_version_and_offset_state() {
        for minor in MIN_MINOR..=MAX_MINOR {
            for offsets in [false, true] {
                for compression in [0, 1] {
                    let spec = Spec {
                        minor,
                        compression,
                        offsets,
                        ..Spec::default()
                    };
                    let archive = custom_archive(&spec);
                    let v = check(DumpKind::PgDumpCustom, &[&archive]);
                    assert!(v.is_ok(), "1.{minor} offsets {offsets}: {}", reason(&v));
                    assert!(check_split(DumpKind::PgDumpCustom, &archive, &[1]).is_ok());
                }
            }
        }
    }

    #[test]
    fn every_truncation_of_a_custom_archive_fails() {
        for offsets in [false, true] {
            let archive = custom_archive(&Spec {
                offsets,
                ..Spec::default()
            });
            for cut in 0..archive.len() {
                let v = check(DumpKind::PgDumpCustom, &[&archive[..cut]]);
                assert!(!v.is_ok(), "cut {cut} of {} passed", archive.len());
            }
        }
    }

    #[test]
    fn custom_truncation_messages_name_the_place() {
        let spec = Spec::default();
        let (archive, starts) = custom_with(&spec, None);
        let at = |cut: u64| {
            let cut = usize::try_from(cut).unwrap();
            check(DumpKind::PgDumpCustom, &[&archive[..cut]])
        };
        assert_eq!(
            reason(&at(20)),
            "the stream ends inside the custom-format header, after 20 bytes"
        );
        assert!(
            reason(&at(200)).starts_with("the stream ends inside the table of contents, in entry"),
            "{}",
            reason(&at(200))
        );
        assert_eq!(
            reason(&at(starts[0])),
            "the stream ends after 0 of 2 data blocks: the data of TOC entry 3340 \
             (TABLE DATA public.a) and 1 more is missing"
        );
        assert_eq!(
            reason(&at(starts[0] + 20)),
            "the stream ends inside the data of TOC entry 3340 (TABLE DATA public.a), 20 bytes \
             into its block"
        );
        assert_eq!(
            reason(&at(starts[1])),
            "the stream ends after 1 of 2 data blocks: the data of TOC entry 3342 \
             (BLOBS public.BLOBS) is missing"
        );
        assert!(
            reason(&at(starts[1] + 14)).contains("a large object in the data of TOC entry 3342")
        );
    }

    #[test]
    fn damaged_custom_archives_fail() {
        let spec = Spec::default();
        let (archive, starts) = custom_with(&spec, None);
        let block = usize::try_from(starts[0]).unwrap();
        let damaged = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut a = archive.clone();
            f(&mut a);
            check(DumpKind::PgDumpCustom, &[&a])
        };
        // Trailing garbage, an unknown block type, a block for an unknown dump id.
        let v = damaged(&|a| a.push(0));
        assert!(
            reason(&v).contains("goes on after its last data block"),
            "{}",
            reason(&v)
        );
        let v = damaged(&|a| a[block] = 2);
        assert!(
            reason(&v).contains("unknown data block type 2"),
            "{}",
            reason(&v)
        );
        let v = damaged(&|a| a[block + 2] = 0x99);
        assert!(
            reason(&v).contains("which has no data in the table of contents"),
            "{}",
            reason(&v)
        );
        // A sign byte that pg_dump never writes; a negative chunk length.
        let v = damaged(&|a| a[block + 1] = 7);
        assert!(reason(&v).contains("sign byte 7"), "{}", reason(&v));
        let v = damaged(&|a| a[block + 6] = 1);
        assert!(reason(&v).contains("has length -30"), "{}", reason(&v));
        // The same block twice.
        let mut twice = archive[..usize::try_from(starts[1]).unwrap()].to_vec();
        twice.extend_from_slice(&archive[block..usize::try_from(starts[1]).unwrap()]);
        let v = check(DumpKind::PgDumpCustom, &[&twice]);
        assert!(reason(&v).contains("appears twice"), "{}", reason(&v));
        // Versions and formats this check does not read.
        let v = damaged(&|a| a[6] = 17);
        assert!(reason(&v).contains("version 1.17.0"), "{}", reason(&v));
        let v = damaged(&|a| a[6] = 11);
        assert!(reason(&v).contains("version 1.11.0"), "{}", reason(&v));
        let v = damaged(&|a| a[10] = 5);
        assert!(reason(&v).contains("format byte is 5"), "{}", reason(&v));
    }

    #[test]
    fn written_offsets_must_match_the_blocks() {
        let good = custom_archive(&Spec {
            offsets: true,
            ..Spec::default()
        });
        let (_, starts) = custom_with(&Spec::default(), None);
        let wrong: Vec<u64> = starts.iter().map(|s| s + 1).collect();
        let (bad, _) = custom_with(&Spec::default(), Some(&wrong));
        assert!(check(DumpKind::PgDumpCustom, &[&good]).is_ok());
        let v = check(DumpKind::PgDumpCustom, &[&bad]);
        assert!(
            reason(&v).contains("the table of contents says byte"),
            "{}",
            reason(&v)
        );
    }

    proptest! {
        #[test]
        fn custom_verdicts_do_not_depend_on_piece_sizes(
            offsets in any::<bool>(),
            chunks in proptest::collection::vec(1usize..2000, 0..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
            sizes in proptest::collection::vec(1usize..700, 1..20),
        ) {
            let archive = custom_archive(&Spec { offsets, chunks, ..Spec::default() });
            let data = match cut {
                Some(i) => &archive[..i.index(archive.len())],
                None => &archive[..],
            };
            let whole = check(DumpKind::PgDumpCustom, &[data]);
            prop_assert_eq!(cut.is_none(), whole.is_ok());
            prop_assert_eq!(check_split(DumpKind::PgDumpCustom, data, &sizes), whole);
        }
    }

    #[test]
    fn custom_archives_say_whether_their_data_is_compressed() {
        let head = |minor, compression| {
            custom_archive(&Spec {
                minor,
                compression,
                ..Spec::default()
            })
        };
        assert_eq!(looks_compressed(&head(16, 0)), None);
        assert_eq!(
            looks_compressed(&head(16, 1)),
            Some("pg_dump custom format (gzip)")
        );
        assert_eq!(
            looks_compressed(&head(16, 2)),
            Some("pg_dump custom format (lz4)")
        );
        assert_eq!(
            looks_compressed(&head(15, 3)),
            Some("pg_dump custom format (zstd)")
        );
        assert_eq!(looks_compressed(&head(14, 0)), None);
        assert_eq!(
            looks_compressed(&head(14, 6)),
            Some("pg_dump custom format (gzip)")
        );
        // Z_DEFAULT_COMPRESSION (-1): `pg_dump -Fc` before pg_dump 16.
        let mut default = head(14, 0);
        default[11] = 1;
        default[12] = 1;
        assert_eq!(
            looks_compressed(&default),
            Some("pg_dump custom format (gzip)")
        );
        assert_eq!(looks_compressed(b"PGDMP"), None);
    }
}
