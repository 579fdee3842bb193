//! Directory fixtures for the tree-snapshot tests: a builder for a tree holding every kind of
//! entry larder must keep (or, for sockets, skip), and a comparison of two trees' metadata
//! that returns every difference it finds, so a failing assertion lists them all.
//!
//! Included from `tests/tree.rs` with `#[path]`; it knows nothing of the `larder` binary.

#![allow(dead_code)] // each test uses its own subset
#![allow(clippy::panic, reason = "test helpers fail the test by panicking")]

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::AT_FDCWD;
use nix::sys::stat::{Mode, SFlag, UtimensatFlags, makedev, mknod, utimensat};
use nix::sys::time::TimeSpec;

/// The extended attribute set on a file and a directory of the fixture.
pub const XATTR: &str = "user.larder.test";

/// A few MiB of pseudo-random bytes.
pub const BIG: &str = "files/big.bin";
/// An empty file.
pub const EMPTY: &str = "files/empty";
/// One byte.
pub const ONE: &str = "files/one";
/// A few KiB of text.
pub const SMALL: &str = "files/small.txt";
/// 8 MiB, mostly holes.
pub const SPARSE: &str = "sparse.img";
/// Size of [`SPARSE`].
pub const SPARSE_LEN: u64 = 8 << 20;
/// Two names of one file.
pub const HARD_A: &str = "links/hard-a";
/// The second name of [`HARD_A`].
pub const HARD_B: &str = "links/hard-b";
/// A relative symlink to [`SMALL`].
pub const SYMLINK: &str = "links/relative";
/// A symlink to nothing.
pub const DANGLING: &str = "links/dangling";
/// A named pipe (must never be opened: that would block).
pub const FIFO: &str = "special/fifo";
/// A character device with the device number of `/dev/null` (root only).
pub const CHAR_DEVICE: &str = "special/null";
/// A block device (root only).
pub const BLOCK_DEVICE: &str = "special/block";
/// A listening unix socket: larder skips it with a note.
pub const SOCKET: &str = "special/socket";
/// Levels of [`DEEP`] nesting.
pub const DEPTH: usize = 40;

/// `true` when the tests run as root (then devices and foreign owners are in the fixture).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Deterministic incompressible bytes: the BLAKE3 XOF of `seed`.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut h = blake3::Hasher::new();
    h.update(b"larder tree fixture");
    h.update(&seed.to_le_bytes());
    let mut out = vec![0u8; len];
    h.finalize_xof().fill(&mut out);
    out
}

/// A path relative to a tree, from bytes (names need not be UTF-8).
pub fn rel(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// Where a snapshot of the absolute path `abs` lands when restored into `target`.
pub fn under(target: &Path, abs: &Path) -> PathBuf {
    target.join(abs.strip_prefix("/").expect("snapshot paths are absolute"))
}

/// Sets atime and mtime of `path` itself (a symlink is not followed).
pub fn set_mtime(path: &Path, secs: i64, nanos: i64) {
    let t = TimeSpec::new(secs, nanos);
    utimensat(AT_FDCWD, path, &t, &t, UtimensatFlags::NoFollowSymlink)
        .unwrap_or_else(|e| panic!("utimensat {}: {e}", path.display()));
}

/// `chmod` (follows symlinks: never call it on one).
pub fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// Writes `contents` at `root/rel`, creating the parent directories.
pub fn write_file(root: &Path, rel: impl AsRef<Path>, contents: &[u8]) -> PathBuf {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
    }
    fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    p
}

/// Gives every entry below and including `root` a distinct mtime with non-zero nanoseconds,
/// children before their directory (creating a child changes its directory's mtime).
pub fn stamp_mtimes(root: &Path, base_secs: i64) {
    let mut all: Vec<PathBuf> = paths(root).into_iter().collect();
    // Deepest first, so no later step touches a directory already stamped.
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    all.push(PathBuf::new());
    for (i, p) in all.iter().enumerate() {
        let i = i64::try_from(i).expect("few entries");
        set_mtime(&root.join(p), base_secs + 1000 * i, 123_456_789 + 7 * i);
    }
}

/// Can the filesystem holding `dir` store `user.*` extended attributes?
pub fn user_xattrs_supported(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    File::create(&probe).expect("create xattr probe");
    let ok = xattr::set(&probe, XATTR, b"probe").is_ok();
    fs::remove_file(&probe).expect("remove xattr probe");
    ok
}

/// A tree with every kind of entry, in a directory of its own; see [`Fixture::build`].
pub struct Fixture {
    /// The tree's root, absolute and free of symlinks (as larder records it).
    pub root: PathBuf,
    /// `user.*` xattrs were set on [`XATTR_FILE`] and [`XATTR_DIR`].
    pub xattrs: bool,
    /// Device nodes and entries owned by uid/gid 1234 were made (running as root).
    pub privileged: bool,
    /// The filesystem made [`SPARSE`] with holes (so the restored copy must have them too).
    pub sparse: bool,
    /// Kept open so the socket is live while larder walks past it.
    _socket: UnixListener,
}

/// A file carrying [`XATTR`].
pub const XATTR_FILE: &str = "xattr/file";
/// A directory carrying [`XATTR`].
pub const XATTR_DIR: &str = "xattr/dir";
/// 40 levels of directories, a file at the bottom.
pub const DEEP: &str = "deep";
/// A file owned by uid/gid 1234, setuid (root only: chown clears setuid, so a restore must
/// chown before it chmods).
pub const OWNED_FILE: &str = "owned/by-1234";

impl Fixture {
    /// Builds the tree at `root` (which must not exist yet):
    ///
    /// - `files/`: 0 bytes, 1 byte, 3 KiB of text, 3 MiB + 1234 of random bytes;
    /// - `sparse.img`: 8 MiB with two data regions;
    /// - `links/`: a hardlink pair, a relative and a dangling symlink;
    /// - `special/`: a fifo, a unix socket and (as root) a char and a block device;
    /// - `names/`: non-UTF-8 names (file and directory), a 255-byte name, a newline, a
    ///   leading dash;
    /// - `deep/`: 40 levels, with an empty directory at the bottom; `empty/`;
    /// - `modes/`: 0600, 0755, 0444, 04755 files, a setgid and a sticky directory;
    /// - `xattr/`: `user.larder.test` on a file and a directory (when the filesystem takes
    ///   user xattrs);
    /// - `owned/` (as root): a file, a directory and a symlink owned by 1234;
    /// - every entry a distinct mtime with non-zero nanoseconds, symlinks included.
    pub fn build(root: &Path) -> Self {
        fs::create_dir(root).unwrap_or_else(|e| panic!("mkdir {}: {e}", root.display()));
        let root = fs::canonicalize(root).expect("canonicalize fixture root");
        let privileged = is_root();

        write_file(&root, EMPTY, b"");
        write_file(&root, ONE, b"x");
        let text: Vec<u8> = b"larder keeps every byte of this line.\n"
            .iter()
            .copied()
            .cycle()
            .take(3 * 1024 + 5)
            .collect();
        write_file(&root, SMALL, &text);
        write_file(&root, BIG, &pseudo_random(1, (3 << 20) + 1234));

        let sparse = make_sparse(&root.join(SPARSE));

        write_file(&root, HARD_A, b"one file, two names\n");
        fs::hard_link(root.join(HARD_A), root.join(HARD_B)).expect("hard link");
        std::os::unix::fs::symlink("../files/small.txt", root.join(SYMLINK)).expect("symlink");
        std::os::unix::fs::symlink("does/not/exist", root.join(DANGLING)).expect("symlink");

        fs::create_dir(root.join("special")).expect("mkdir special");
        nix::unistd::mkfifo(&root.join(FIFO), Mode::from_bits_truncate(0o640)).expect("mkfifo");
        chmod(&root.join(FIFO), 0o640);
        let socket = UnixListener::bind(root.join(SOCKET)).expect("bind unix socket");
        if privileged {
            let null = makedev(1, 3);
            mknod(&root.join(CHAR_DEVICE), SFlag::S_IFCHR, Mode::empty(), null).expect("mknod c");
            chmod(&root.join(CHAR_DEVICE), 0o666);
            let block = makedev(7, 200);
            mknod(
                &root.join(BLOCK_DEVICE),
                SFlag::S_IFBLK,
                Mode::empty(),
                block,
            )
            .expect("mknod b");
            chmod(&root.join(BLOCK_DEVICE), 0o660);
        }

        write_file(&root, rel(b"names/\xff\xfe"), b"not utf-8\n");
        write_file(
            &root,
            rel(b"names/caf\xe9/inside"),
            b"in a non-utf-8 directory\n",
        );
        let long = "n".repeat(251) + ".txt";
        assert_eq!(long.len(), 255);
        write_file(&root, Path::new("names").join(&long), b"a 255-byte name\n");
        write_file(&root, "names/new\nline", b"a newline in the name\n");
        write_file(&root, "names/-dash", b"a leading dash\n");
        write_file(&root, "names/with space", b"a space\n");

        let mut deep = root.join(DEEP);
        for level in 0..DEPTH {
            deep.push(format!("d{level:02}"));
        }
        write_file(&deep, "leaf.txt", b"forty levels down\n");
        fs::create_dir(deep.join("empty-here")).expect("mkdir empty");
        fs::create_dir(root.join("empty")).expect("mkdir empty");

        for (name, mode) in [
            ("private", 0o600),
            ("exec", 0o755),
            ("readonly", 0o444),
            ("setuid", 0o4755),
        ] {
            let p = write_file(&root, Path::new("modes").join(name), name.as_bytes());
            chmod(&p, mode);
        }
        for (name, mode) in [("setgid-dir", 0o2750), ("sticky-dir", 0o1777)] {
            let d = root.join("modes").join(name);
            write_file(&d, "inside", b"inside\n");
            chmod(&d, mode);
        }

        write_file(&root, XATTR_FILE, b"has an xattr\n");
        fs::create_dir(root.join(XATTR_DIR)).expect("mkdir xattr dir");
        let xattrs = user_xattrs_supported(&root);
        if xattrs {
            xattr::set(root.join(XATTR_FILE), XATTR, b"file value \x00\xff binary")
                .expect("set xattr on file");
            xattr::set(root.join(XATTR_DIR), XATTR, b"dir value").expect("set xattr on dir");
        }

        if privileged {
            let f = write_file(&root, OWNED_FILE, b"owned by 1234\n");
            std::os::unix::fs::lchown(&f, Some(1234), Some(1234)).expect("chown");
            // After chown, which clears setuid.
            chmod(&f, 0o4750);
            let d = root.join("owned/dir");
            write_file(&d, "inside", b"in a directory owned by 1234\n");
            std::os::unix::fs::lchown(&d, Some(1234), Some(1235)).expect("chown dir");
            let l = root.join("owned/link");
            std::os::unix::fs::symlink("by-1234", &l).expect("symlink");
            std::os::unix::fs::lchown(&l, Some(1234), Some(1234)).expect("lchown");
        }

        chmod(&root, 0o750);
        stamp_mtimes(&root, 1_600_000_000);
        // Not silent: say what this machine cannot check.
        if !privileged {
            eprintln!("note: not root: no device nodes or foreign owners in the fixture");
        }
        if !xattrs {
            eprintln!("note: {} takes no user xattrs: not checked", root.display());
        }
        if !sparse {
            eprintln!(
                "note: {} makes no holes: sparseness not checked",
                root.display()
            );
        }
        Self {
            root,
            xattrs,
            privileged,
            sparse,
            _socket: socket,
        }
    }

    /// A path inside the tree.
    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// What a restored copy must satisfy: sockets absent, the sparse file sparse.
    pub fn expect(&self) -> Expect {
        Expect {
            sockets_skipped: true,
            sparse: if self.sparse {
                vec![PathBuf::from(SPARSE)]
            } else {
                Vec::new()
            },
            ..Expect::default()
        }
    }

    /// Paths of regular files (each name of a hardlinked file counted), and the number of
    /// distinct files among them.
    pub fn regular_files(&self) -> (usize, usize) {
        let scan = scan(&self.root, &[]).expect("scan fixture");
        let files: Vec<&Meta> = scan.values().filter(|m| m.kind == Kind::File).collect();
        let inodes: BTreeSet<u64> = files.iter().map(|m| m.ino).collect();
        (files.len(), inodes.len())
    }

    /// Number of directories, the root included.
    pub fn dirs(&self) -> usize {
        let scan = scan(&self.root, &[]).expect("scan fixture");
        scan.values().filter(|m| m.kind == Kind::Dir).count()
    }
}

/// 8 MiB with 64 KiB of data at 1 MiB and 10,000 bytes at 6 MiB + 123, the rest holes;
/// returns whether the filesystem kept the holes.
fn make_sparse(path: &Path) -> bool {
    let mut f = File::create(path).expect("create sparse file");
    f.set_len(SPARSE_LEN).expect("set_len");
    f.seek(SeekFrom::Start(1 << 20)).expect("seek");
    f.write_all(&pseudo_random(2, 64 << 10)).expect("write");
    f.seek(SeekFrom::Start((6 << 20) + 123)).expect("seek");
    f.write_all(&pseudo_random(3, 10_000)).expect("write");
    f.sync_all().expect("fsync sparse file");
    let m = f.metadata().expect("stat sparse file");
    m.blocks() * 512 < SPARSE_LEN / 2
}

/// What kind of entry a path is (`lstat`, symlinks not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Unix socket.
    Socket,
}

impl Kind {
    fn of(ft: fs::FileType) -> Self {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_symlink() {
            Kind::Symlink
        } else if ft.is_dir() {
            Kind::Dir
        } else if ft.is_file() {
            Kind::File
        } else if ft.is_fifo() {
            Kind::Fifo
        } else if ft.is_char_device() {
            Kind::CharDevice
        } else if ft.is_block_device() {
            Kind::BlockDevice
        } else {
            Kind::Socket
        }
    }
}

/// What the comparison looks at for one entry.
#[derive(Debug, Clone)]
pub struct Meta {
    /// The kind of entry.
    pub kind: Kind,
    /// Permission bits with setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes (regular files and symlinks; 0 for the rest).
    pub size: u64,
    /// Modification time, seconds and nanoseconds.
    pub mtime: (i64, i64),
    /// A symlink's target.
    pub target: Option<PathBuf>,
    /// BLAKE3 of a regular file's contents.
    pub hash: Option<blake3::Hash>,
    /// A device's number.
    pub rdev: Option<u64>,
    /// `user.*` extended attributes.
    pub xattrs: BTreeMap<OsString, Vec<u8>>,
    /// Inode number (for hardlink groups; never compared across trees).
    pub ino: u64,
    /// Bytes allocated on disk (`st_blocks * 512`).
    pub allocated: u64,
}

/// `lstat` and friends of one path.
pub fn meta(path: &Path) -> std::io::Result<Meta> {
    let m = fs::symlink_metadata(path)?;
    let kind = Kind::of(m.file_type());
    let hash = if kind == Kind::File {
        let mut h = blake3::Hasher::new();
        std::io::copy(&mut File::open(path)?, &mut h)?;
        Some(h.finalize())
    } else {
        None
    };
    let target = if kind == Kind::Symlink {
        Some(fs::read_link(path)?)
    } else {
        None
    };
    let rdev = matches!(kind, Kind::CharDevice | Kind::BlockDevice).then(|| m.rdev());
    let mut xattrs = BTreeMap::new();
    // Sockets, fifos and devices can carry xattrs too, but listing them can fail on some
    // filesystems; an unsupported listing counts as none.
    if let Ok(names) = xattr::list(path) {
        for name in names.filter(|n| n.as_bytes().starts_with(b"user.")) {
            let value = xattr::get(path, &name)?.unwrap_or_default();
            xattrs.insert(name, value);
        }
    }
    Ok(Meta {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        size: if matches!(kind, Kind::File | Kind::Symlink) {
            m.size()
        } else {
            0
        },
        mtime: (m.mtime(), m.mtime_nsec()),
        target,
        hash,
        rdev,
        xattrs,
        ino: m.ino(),
        allocated: m.blocks() * 512,
    })
}

/// Every path below `root` (not `root` itself), relative to it; symlinks not followed.
pub fn paths(root: &Path) -> BTreeSet<PathBuf> {
    paths_except(root, &[])
}

/// [`paths`] without the relative paths in `ignore` and what is below them (which is not
/// even listed, so an unreadable ignored directory is no error).
pub fn paths_except(root: &Path, ignore: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(d) = dirs.pop() {
        let full = root.join(&d);
        let entries =
            fs::read_dir(&full).unwrap_or_else(|e| panic!("list {}: {e}", full.display()));
        for e in entries {
            let e = e.expect("read dir entry");
            let p = d.join(e.file_name());
            if ignore.iter().any(|i| p.starts_with(i)) {
                continue;
            }
            if e.file_type().expect("file type").is_dir() {
                dirs.push(p.clone());
            }
            out.insert(p);
        }
    }
    out
}

/// The metadata of `root` (as the empty path) and, if it is a directory, of everything
/// below it, leaving out the paths in `ignore` and what is below them.
pub fn scan(root: &Path, ignore: &[PathBuf]) -> std::io::Result<BTreeMap<PathBuf, Meta>> {
    let mut out = BTreeMap::new();
    let top = meta(root)?;
    let is_dir = top.kind == Kind::Dir;
    out.insert(PathBuf::new(), top);
    if !is_dir {
        return Ok(out);
    }
    for p in paths_except(root, ignore) {
        out.insert(p.clone(), meta(&root.join(&p))?);
    }
    Ok(out)
}

/// What a comparison expects beyond "identical".
#[derive(Debug, Clone, Default)]
pub struct Expect {
    /// Sockets in the original must be absent from the copy (larder skips them).
    pub sockets_skipped: bool,
    /// Paths (relative, with everything below them) left out on both sides.
    pub ignore: Vec<PathBuf>,
    /// Files that must be sparse in the copy: fewer bytes allocated than half their size.
    pub sparse: Vec<PathBuf>,
}

/// Compares the tree at `b` (a restored copy) with the original at `a`, `lstat` only, and
/// returns every difference: paths present on one side only, and for each common path its
/// kind, mode (setuid, setgid, sticky included), owner, group, size, mtime (nanoseconds;
/// symlinks and directories too), symlink target, contents, device number, `user.*`
/// xattrs, and which paths share an inode. Atime and ctime are not compared.
pub fn compare(a: &Path, b: &Path, expect: &Expect) -> Vec<String> {
    let mut diffs = Vec::new();
    let sa = match scan(a, &expect.ignore) {
        Ok(s) => s,
        Err(e) => return vec![format!("cannot scan original {}: {e}", a.display())],
    };
    let sb = match scan(b, &expect.ignore) {
        Ok(s) => s,
        Err(e) => return vec![format!("cannot scan copy {}: {e}", b.display())],
    };
    for (p, ma) in &sa {
        let skipped = expect.sockets_skipped && ma.kind == Kind::Socket;
        match (sb.get(p), skipped) {
            (None, true) => {}
            (Some(_), true) => diffs.push(format!("{p:?}: a socket, should have been skipped")),
            (None, false) => diffs.push(format!("{p:?}: missing from the copy ({:?})", ma.kind)),
            (Some(mb), false) => compare_meta(p, ma, mb, &mut diffs),
        }
    }
    for (p, mb) in &sb {
        if !sa.contains_key(p) {
            diffs.push(format!("{p:?}: only in the copy ({:?})", mb.kind));
        }
    }
    let (ga, gb) = (hardlink_peers(&sa), hardlink_peers(&sb));
    for p in sa.keys().filter(|p| sb.contains_key(*p)) {
        let (pa, pb) = (ga.get(p), gb.get(p));
        if pa != pb {
            diffs.push(format!(
                "{p:?}: hardlinked with {:?} in the original, with {:?} in the copy",
                pa.map_or(&[][..], Vec::as_slice),
                pb.map_or(&[][..], Vec::as_slice)
            ));
        }
    }
    for p in &expect.sparse {
        match sb.get(p) {
            Some(m) if m.allocated < m.size / 2 => {}
            Some(m) => diffs.push(format!(
                "{p:?}: not sparse in the copy: {} bytes allocated for {} bytes",
                m.allocated, m.size
            )),
            None => diffs.push(format!("{p:?}: the sparse file is missing from the copy")),
        }
    }
    diffs
}

fn compare_meta(p: &Path, a: &Meta, b: &Meta, diffs: &mut Vec<String>) {
    if a.kind != b.kind {
        diffs.push(format!("{p:?}: kind {:?} != {:?}", a.kind, b.kind));
        return;
    }
    let mut field = |what: &str, x: String, y: String| {
        if x != y {
            diffs.push(format!("{p:?}: {what} {x} != {y}"));
        }
    };
    field("mode", format!("{:#o}", a.mode), format!("{:#o}", b.mode));
    field("uid", a.uid.to_string(), b.uid.to_string());
    field("gid", a.gid.to_string(), b.gid.to_string());
    field("size", a.size.to_string(), b.size.to_string());
    field("mtime", format!("{:?}", a.mtime), format!("{:?}", b.mtime));
    field(
        "target",
        format!("{:?}", a.target),
        format!("{:?}", b.target),
    );
    field("contents", format!("{:?}", a.hash), format!("{:?}", b.hash));
    field("rdev", format!("{:?}", a.rdev), format!("{:?}", b.rdev));
    field(
        "xattrs",
        format!("{:?}", a.xattrs),
        format!("{:?}", b.xattrs),
    );
}

/// For each path whose inode has other names in the scan: those other names, sorted.
fn hardlink_peers(scan: &BTreeMap<PathBuf, Meta>) -> BTreeMap<PathBuf, Vec<PathBuf>> {
    let mut by_inode: BTreeMap<u64, Vec<PathBuf>> = BTreeMap::new();
    for (p, m) in scan {
        // Directories cannot be hardlinked; their inode is theirs alone.
        if m.kind != Kind::Dir {
            by_inode.entry(m.ino).or_default().push(p.clone());
        }
    }
    let mut out = BTreeMap::new();
    for names in by_inode.values().filter(|v| v.len() > 1) {
        for p in names {
            let peers = names.iter().filter(|q| *q != p).cloned().collect();
            out.insert(p.clone(), peers);
        }
    }
    out
}

/// Asserts the copy at `b` matches the original at `a`, listing every difference.
pub fn assert_same_tree(a: &Path, b: &Path, expect: &Expect) {
    let diffs = compare(a, b, expect);
    assert!(
        diffs.is_empty(),
        "{} differences between {} and {}:\n  {}",
        diffs.len(),
        a.display(),
        b.display(),
        diffs.join("\n  ")
    );
}
