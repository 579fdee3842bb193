//! `format-spec/tree.md`: a tree blob, one directory's listing with metadata.
//!
//! ```text
//! tree   = count u32 ‖ entry[count]                       (sorted by name, bytewise, no repeats)
//! entry  = name_len u16 ‖ name ‖ kind u8 ‖ mode u32 ‖ uid u32 ‖ gid u32
//!        ‖ user_len u8 ‖ user ‖ group_len u8 ‖ group
//!        ‖ mtime_s i64 ‖ mtime_ns u32 ‖ ctime_s i64 ‖ ctime_ns u32
//!        ‖ inode u64 ‖ device u64 ‖ size u64 ‖ flags u8
//!        ‖ xattr_count u16 ‖ xattr[xattr_count] ‖ body
//! xattr  = name_len u16 ‖ name ‖ value_len u32 ‖ value
//! body   = file:        content_form u8 ‖ (0: count u32 ‖ (id [32] ‖ size u64)[count] | 1: root id [32])
//!          dir:         subtree id [32]
//!          symlink:     target_len u32 ‖ target
//!          hardlink:    path_len u32 ‖ path       (absolute in the snapshot, of an earlier entry)
//!          fifo:        (nothing)
//!          char, block: rdev u64
//! ```

use super::content_list::{ENTRY_LEN as LIST_ENTRY_LEN, ListEntry};
use super::{DecodeError, Reader};
use crate::id::BlobId;

/// Flag bit: the file had holes when it was read and is restored sparse.
pub const FLAG_SPARSE: u8 = 1;

/// The longest name, symlink target or hardlink path accepted (bytes).
pub const MAX_PATH_LEN: usize = 1 << 20;

/// Seconds and nanoseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Time {
    /// Whole seconds (negative before 1970).
    pub secs: i64,
    /// Nanoseconds, below 1,000,000,000.
    pub nanos: u32,
}

/// A file's contents: its chunks listed in the tree when there are few, else the root of a
/// content-list tree (`format-spec/content-list.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The chunks themselves (at most [`MAX_INLINE`] of them).
    Inline(Vec<ListEntry>),
    /// The root content-list blob.
    List(BlobId),
}

/// A file with at most this many chunks lists them in its tree entry.
pub const MAX_INLINE: usize = 16;

/// What an entry is, with what only that kind carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File(Content),
    /// A directory and its tree blob.
    Dir(BlobId),
    /// A symbolic link and its target, as bytes.
    Symlink(Vec<u8>),
    /// A further name of a file stored earlier in the snapshot: that entry's absolute path.
    Hardlink(Vec<u8>),
    /// A named pipe.
    Fifo,
    /// A character device and its device number.
    CharDevice(u64),
    /// A block device and its device number.
    BlockDevice(u64),
}

impl EntryKind {
    /// The on-disk byte.
    pub fn code(&self) -> u8 {
        match self {
            EntryKind::File(_) => 1,
            EntryKind::Dir(_) => 2,
            EntryKind::Symlink(_) => 3,
            EntryKind::Hardlink(_) => 4,
            EntryKind::Fifo => 5,
            EntryKind::CharDevice(_) => 6,
            EntryKind::BlockDevice(_) => 7,
        }
    }

    /// The name used in JSON and listings.
    pub fn name(&self) -> &'static str {
        match self {
            EntryKind::File(_) => "file",
            EntryKind::Dir(_) => "dir",
            EntryKind::Symlink(_) => "symlink",
            EntryKind::Hardlink(_) => "hardlink",
            EntryKind::Fifo => "fifo",
            EntryKind::CharDevice(_) => "char_device",
            EntryKind::BlockDevice(_) => "block_device",
        }
    }
}

/// One entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The name (bytes; not necessarily UTF-8; never empty, `.`, `..`, or containing `/` or NUL).
    pub name: Vec<u8>,
    /// Kind and kind-specific data.
    pub kind: EntryKind,
    /// Permission bits and setuid/setgid/sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// The owner's name when it was known (empty otherwise).
    pub user: String,
    /// The group's name when it was known (empty otherwise).
    pub group: String,
    /// Last modification.
    pub mtime: Time,
    /// Last status change (used to detect changes; not restored).
    pub ctime: Time,
    /// Inode number when read (used to detect changes; not restored).
    pub inode: u64,
    /// Device number of the file system it was on (used to detect changes; not restored).
    pub device: u64,
    /// Content length for files and hardlinks; target length for symlinks; 0 otherwise.
    pub size: u64,
    /// Restore as a sparse file.
    pub sparse: bool,
    /// Extended attributes, sorted by name.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

/// A decoded tree blob.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Tree {
    /// The entries, sorted by name.
    pub entries: Vec<TreeEntry>,
}

fn put_u16_len(out: &mut Vec<u8>, b: &[u8]) {
    let n = u16::try_from(b.len()).expect("checked by the caller: fits in u16");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
}

fn put_u32_len(out: &mut Vec<u8>, b: &[u8]) {
    let n = u32::try_from(b.len()).expect("checked by the caller: fits in u32");
    out.extend_from_slice(&n.to_le_bytes());
    out.extend_from_slice(b);
}

fn put_u8_len(out: &mut Vec<u8>, b: &[u8]) {
    let n = u8::try_from(b.len()).expect("checked by the caller: fits in u8");
    out.push(n);
    out.extend_from_slice(b);
}

fn put_time(out: &mut Vec<u8>, t: Time) {
    out.extend_from_slice(&t.secs.to_le_bytes());
    out.extend_from_slice(&t.nanos.to_le_bytes());
}

/// Why a tree cannot be encoded (checked before a byte is written, so a tree that encodes
/// also decodes).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    /// A name, target or attribute the format cannot hold.
    #[error("{0}")]
    Invalid(&'static str),
}

/// Checks one name.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= usize::from(u16::MAX)
        && name != b"."
        && name != b".."
        && !name.contains(&b'/')
        && !name.contains(&0)
}

impl TreeEntry {
    fn check(&self) -> Result<(), TreeError> {
        if !valid_name(&self.name) {
            return Err(TreeError::Invalid("invalid entry name"));
        }
        if self.mode > 0o7777 {
            return Err(TreeError::Invalid("mode has bits beyond 0o7777"));
        }
        if self.user.len() > usize::from(u8::MAX) || self.group.len() > usize::from(u8::MAX) {
            return Err(TreeError::Invalid(
                "user or group name longer than 255 bytes",
            ));
        }
        if self.mtime.nanos >= 1_000_000_000 || self.ctime.nanos >= 1_000_000_000 {
            return Err(TreeError::Invalid("nanoseconds out of range"));
        }
        if self.xattrs.len() > usize::from(u16::MAX)
            || self.xattrs.iter().any(|(n, v)| {
                n.is_empty()
                    || n.len() > usize::from(u16::MAX)
                    || u32::try_from(v.len()).is_err()
                    || v.len() > MAX_PATH_LEN
            })
            || self.xattrs.windows(2).any(|w| w[0].0 >= w[1].0)
        {
            return Err(TreeError::Invalid("invalid extended attributes"));
        }
        match &self.kind {
            EntryKind::Symlink(t) | EntryKind::Hardlink(t) if t.len() > MAX_PATH_LEN => {
                Err(TreeError::Invalid("link target too long"))
            }
            EntryKind::File(Content::Inline(c)) if c.len() > MAX_INLINE => {
                Err(TreeError::Invalid("too many inline chunks"))
            }
            EntryKind::File(Content::Inline(c))
                if c.iter().try_fold(0u64, |t, c| t.checked_add(c.size)) != Some(self.size) =>
            {
                Err(TreeError::Invalid(
                    "inline chunk sizes do not add up to the file size",
                ))
            }
            _ => Ok(()),
        }
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        put_u16_len(out, &self.name);
        out.push(self.kind.code());
        out.extend_from_slice(&self.mode.to_le_bytes());
        out.extend_from_slice(&self.uid.to_le_bytes());
        out.extend_from_slice(&self.gid.to_le_bytes());
        put_u8_len(out, self.user.as_bytes());
        put_u8_len(out, self.group.as_bytes());
        put_time(out, self.mtime);
        put_time(out, self.ctime);
        out.extend_from_slice(&self.inode.to_le_bytes());
        out.extend_from_slice(&self.device.to_le_bytes());
        out.extend_from_slice(&self.size.to_le_bytes());
        out.push(if self.sparse { FLAG_SPARSE } else { 0 });
        let n = u16::try_from(self.xattrs.len()).expect("checked: fits in u16");
        out.extend_from_slice(&n.to_le_bytes());
        for (name, value) in &self.xattrs {
            put_u16_len(out, name);
            put_u32_len(out, value);
        }
        match &self.kind {
            EntryKind::File(Content::Inline(chunks)) => {
                out.push(0);
                let n = u32::try_from(chunks.len()).expect("checked: at most MAX_INLINE");
                out.extend_from_slice(&n.to_le_bytes());
                for c in chunks {
                    out.extend_from_slice(c.id.as_bytes());
                    out.extend_from_slice(&c.size.to_le_bytes());
                }
            }
            EntryKind::File(Content::List(root)) => {
                out.push(1);
                out.extend_from_slice(root.as_bytes());
            }
            EntryKind::Dir(id) => out.extend_from_slice(id.as_bytes()),
            EntryKind::Symlink(t) | EntryKind::Hardlink(t) => put_u32_len(out, t),
            EntryKind::Fifo => {}
            EntryKind::CharDevice(rdev) | EntryKind::BlockDevice(rdev) => {
                out.extend_from_slice(&rdev.to_le_bytes());
            }
        }
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let name_len = usize::from(r.u16("name length")?);
        let name = r.bytes(name_len, "name")?.to_vec();
        if !valid_name(&name) {
            return Err(DecodeError::Invalid("entry name"));
        }
        let kind_code = r.u8("entry kind")?;
        let mode = r.u32("mode")?;
        if mode > 0o7777 {
            return Err(DecodeError::Invalid("mode"));
        }
        let uid = r.u32("uid")?;
        let gid = r.u32("gid")?;
        let user = text(r, "user")?;
        let group = text(r, "group")?;
        let mtime = time(r, "mtime")?;
        let ctime = time(r, "ctime")?;
        let inode = r.u64("inode")?;
        let device = r.u64("device")?;
        let size = r.u64("size")?;
        let flags = r.u8("flags")?;
        if flags & !FLAG_SPARSE != 0 {
            return Err(DecodeError::Invalid("entry flags"));
        }
        let n = usize::from(r.u16("xattr count")?);
        // Each attribute takes at least 7 bytes: bound the allocation by what is left.
        let mut xattrs: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(n.min(r.remaining() / 7));
        for _ in 0..n {
            let name_len = usize::from(r.u16("xattr name length")?);
            let name = r.bytes(name_len, "xattr name")?.to_vec();
            let value_len = usize::try_from(r.u32("xattr value length")?)
                .ok()
                .filter(|n| *n <= MAX_PATH_LEN)
                .ok_or(DecodeError::Invalid("xattr value length"))?;
            let value = r.bytes(value_len, "xattr value")?.to_vec();
            if name.is_empty() || xattrs.last().is_some_and(|(prev, _)| *prev >= name) {
                return Err(DecodeError::Invalid("xattr order"));
            }
            xattrs.push((name, value));
        }
        let kind = match kind_code {
            1 => EntryKind::File(match r.u8("content form")? {
                0 => {
                    let n = r.count(LIST_ENTRY_LEN, "inline chunk count")?;
                    if n > MAX_INLINE {
                        return Err(DecodeError::Invalid("inline chunk count"));
                    }
                    let mut chunks = Vec::with_capacity(n);
                    for _ in 0..n {
                        chunks.push(ListEntry {
                            id: BlobId(r.id("chunk id")?),
                            size: r.u64("chunk size")?,
                        });
                    }
                    let total = chunks
                        .iter()
                        .try_fold(0u64, |t, c| t.checked_add(c.size))
                        .ok_or(DecodeError::Invalid("file size"))?;
                    if total != size {
                        return Err(DecodeError::Invalid("file size"));
                    }
                    Content::Inline(chunks)
                }
                1 => Content::List(BlobId(r.id("content list")?)),
                _ => return Err(DecodeError::Invalid("content form")),
            }),
            2 => EntryKind::Dir(BlobId(r.id("subtree")?)),
            3 => EntryKind::Symlink(long_bytes(r, "symlink target")?),
            4 => EntryKind::Hardlink(long_bytes(r, "hardlink path")?),
            5 => EntryKind::Fifo,
            6 => EntryKind::CharDevice(r.u64("rdev")?),
            7 => EntryKind::BlockDevice(r.u64("rdev")?),
            _ => return Err(DecodeError::Invalid("entry kind")),
        };
        Ok(Self {
            name,
            kind,
            mode,
            uid,
            gid,
            user,
            group,
            mtime,
            ctime,
            inode,
            device,
            size,
            sparse: flags & FLAG_SPARSE != 0,
            xattrs,
        })
    }
}

fn text(r: &mut Reader<'_>, field: &'static str) -> Result<String, DecodeError> {
    let n = usize::from(r.u8(field)?);
    String::from_utf8(r.bytes(n, field)?.to_vec()).map_err(|_| DecodeError::Invalid(field))
}

fn time(r: &mut Reader<'_>, field: &'static str) -> Result<Time, DecodeError> {
    let secs = r.i64(field)?;
    let nanos = r.u32(field)?;
    if nanos >= 1_000_000_000 {
        return Err(DecodeError::Invalid(field));
    }
    Ok(Time { secs, nanos })
}

fn long_bytes(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    let n = usize::try_from(r.u32(field)?).map_err(|_| DecodeError::Invalid(field))?;
    if n > MAX_PATH_LEN {
        return Err(DecodeError::Invalid(field));
    }
    Ok(r.bytes(n, field)?.to_vec())
}

impl Tree {
    /// Encodes the blob's plaintext after checking every entry and the order of names.
    pub fn encode(&self) -> Result<Vec<u8>, TreeError> {
        for e in &self.entries {
            e.check()?;
        }
        if self.entries.windows(2).any(|w| w[0].name >= w[1].name) {
            return Err(TreeError::Invalid("entries not sorted by name or repeated"));
        }
        let n = u32::try_from(self.entries.len())
            .map_err(|_| TreeError::Invalid("too many entries"))?;
        let mut out = Vec::with_capacity(4 + self.entries.len() * 128);
        out.extend_from_slice(&n.to_le_bytes());
        for e in &self.entries {
            e.encode_into(&mut out);
        }
        Ok(out)
    }

    /// Decodes a blob's plaintext.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // The smallest entry: a fifo with a one-byte name, no user, group or xattrs.
        const MIN_ENTRY: usize = 2 + 1 + 1 + 4 * 3 + 2 + 2 * 12 + 8 * 3 + 1 + 2;
        let mut r = Reader::new(bytes);
        let n = r.count(MIN_ENTRY, "entry count")?;
        let mut entries: Vec<TreeEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let e = TreeEntry::decode_from(&mut r)?;
            if entries.last().is_some_and(|prev| prev.name >= e.name) {
                return Err(DecodeError::Invalid("entry order"));
            }
            entries.push(e);
        }
        r.finish()?;
        Ok(Self { entries })
    }

    /// The entry called `name`.
    pub fn get(&self, name: &[u8]) -> Option<&TreeEntry> {
        self.entries
            .binary_search_by(|e| e.name.as_slice().cmp(name))
            .ok()
            .map(|i| &self.entries[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn entry(name: &[u8], kind: EntryKind) -> TreeEntry {
        TreeEntry {
            name: name.to_vec(),
            kind,
            mode: 0o644,
            uid: 1000,
            gid: 1000,
            user: "user".into(),
            group: "group".into(),
            mtime: Time {
                secs: 1_700_000_000,
                nanos: 123,
            },
            ctime: Time {
                secs: 1_700_000_001,
                nanos: 456,
            },
            inode: 42,
            device: 7,
            size: 0,
            sparse: false,
            xattrs: vec![],
        }
    }

    fn arb_kind() -> impl Strategy<Value = EntryKind> {
        let id = any::<[u8; 32]>().prop_map(BlobId);
        prop_oneof![
            id.clone().prop_map(|i| EntryKind::File(Content::List(i))),
            proptest::collection::vec((any::<[u8; 32]>(), 0u64..100_000), 0..=MAX_INLINE).prop_map(
                |v| EntryKind::File(Content::Inline(
                    v.into_iter()
                        .map(|(i, size)| ListEntry {
                            id: BlobId(i),
                            size
                        })
                        .collect()
                ))
            ),
            id.prop_map(EntryKind::Dir),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(EntryKind::Symlink),
            proptest::collection::vec(any::<u8>(), 1..300).prop_map(EntryKind::Hardlink),
            Just(EntryKind::Fifo),
            any::<u64>().prop_map(EntryKind::CharDevice),
            any::<u64>().prop_map(EntryKind::BlockDevice),
        ]
    }

    fn arb_entry() -> impl Strategy<Value = TreeEntry> {
        (
            proptest::collection::vec(1u8..=255, 1..40)
                .prop_filter("valid name", |n| valid_name(n)),
            arb_kind(),
            0u32..=0o7777,
            any::<(u32, i64, i64, u64, u64, bool)>(),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 1..20),
                proptest::collection::vec(any::<u8>(), 0..50),
                0..3,
            ),
        )
            .prop_map(
                |(name, kind, mode, (uid, secs, ctime, inode, device, sparse), xattrs)| {
                    let size = match &kind {
                        EntryKind::File(Content::Inline(c)) => c.iter().map(|c| c.size).sum(),
                        _ => device % 1_000_000,
                    };
                    TreeEntry {
                        name,
                        kind,
                        mode,
                        uid,
                        gid: uid.wrapping_add(1),
                        user: format!("u{uid}"),
                        group: String::new(),
                        mtime: Time {
                            secs,
                            nanos: (inode % 1_000_000_000) as u32,
                        },
                        ctime: Time {
                            secs: ctime,
                            nanos: 0,
                        },
                        inode,
                        device,
                        size,
                        sparse,
                        xattrs: xattrs.into_iter().collect(),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn round_trip(entries in proptest::collection::vec(arb_entry(), 0..12)) {
            let mut entries = entries;
            entries.sort_by(|a, b| a.name.cmp(&b.name));
            entries.dedup_by(|a, b| a.name == b.name);
            let t = Tree { entries };
            let bytes = t.encode().unwrap();
            prop_assert_eq!(Tree::decode(&bytes).unwrap(), t);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = Tree::decode(&bytes);
        }
    }

    #[test]
    fn rejects_unsorted_and_bad_names() {
        let a = entry(b"a", EntryKind::Fifo);
        let b = entry(b"b", EntryKind::Fifo);
        assert!(
            Tree {
                entries: vec![b.clone(), a.clone()]
            }
            .encode()
            .is_err()
        );
        assert!(
            Tree {
                entries: vec![a.clone(), a.clone()]
            }
            .encode()
            .is_err()
        );
        for bad in [&b""[..], b".", b"..", b"a/b", b"a\0"] {
            assert!(
                Tree {
                    entries: vec![entry(bad, EntryKind::Fifo)]
                }
                .encode()
                .is_err()
            );
        }
        // Swapping two encoded entries is caught on decode.
        let ab = Tree {
            entries: vec![a.clone(), b.clone()],
        }
        .encode()
        .unwrap();
        let one = Tree {
            entries: vec![a.clone()],
        }
        .encode()
        .unwrap();
        let len = one.len() - 4;
        let mut swapped = ab[..4].to_vec();
        swapped.extend_from_slice(&ab[4 + len..]);
        swapped.extend_from_slice(&ab[4..4 + len]);
        assert!(matches!(
            Tree::decode(&swapped),
            Err(DecodeError::Invalid("entry order"))
        ));
    }

    #[test]
    fn long_names_and_values_are_refused_not_cut() {
        let mut e = entry(b"f", EntryKind::Fifo);
        e.user = "u".repeat(256);
        assert!(Tree { entries: vec![e] }.encode().is_err());
        let mut e = entry(b"f", EntryKind::Fifo);
        e.xattrs = vec![(b"user.x".to_vec(), vec![0; MAX_PATH_LEN + 1])];
        assert!(
            Tree {
                entries: vec![e.clone()]
            }
            .encode()
            .is_err()
        );
        // A forged length over the limit is refused on decode, before the value is read.
        e.xattrs = vec![(b"user.x".to_vec(), vec![7; 4])];
        let mut bytes = Tree { entries: vec![e] }.encode().unwrap();
        let at = bytes.len() - 4 - 4; // fifo: no body; the value, then its length before it
        let over = u32::try_from(MAX_PATH_LEN + 1).unwrap();
        bytes[at..at + 4].copy_from_slice(&over.to_le_bytes());
        assert!(matches!(
            Tree::decode(&bytes),
            Err(DecodeError::Invalid("xattr value length"))
        ));
    }

    #[test]
    fn inline_sizes_must_add_up() {
        let mut e = entry(
            b"f",
            EntryKind::File(Content::Inline(vec![ListEntry {
                id: BlobId([1; 32]),
                size: 10,
            }])),
        );
        e.size = 11;
        let t = Tree {
            entries: vec![e.clone()],
        };
        assert!(t.encode().is_err());
        // Forged bytes with the same mismatch are refused on decode.
        e.size = 10;
        let mut bytes = Tree { entries: vec![e] }.encode().unwrap();
        let at = bytes.len() - 32 - 8 - 4 - 1 - 2 - 1 - 8;
        bytes[at] = 11;
        assert!(matches!(
            Tree::decode(&bytes),
            Err(DecodeError::Invalid("file size"))
        ));
    }
}
