//! Dump checks: does a database dump stream look complete? The check behind `verify =` and
//! `snapshot --verify` (issue 6). Pure: bytes in, a [`Verdict`] out; nothing is read or printed.
//!
//! It sits beside the backup pipeline's source: the pipeline reads its stream once and hands
//! every piece it reads, in order, to [`DumpCheck::update`] (pieces of any size, 1 byte to
//! MiBs), then asks [`DumpCheck::finish`] once the stream has ended. Memory stays bounded
//! whatever the stream's size: the first [`HEAD_LEN`] bytes, the last [`TAIL_LEN`] bytes and,
//! for the custom format, a few dozen bytes per table-of-contents entry that carries data.
//!
//! What each [`DumpKind`] verifies, and what it cannot:
//!
//! - `pg_dump` (plain SQL): the stream must end with pg_dump's completion trailer, the lines
//!   `--`, `-- PostgreSQL database dump complete`, `--`, followed only by blank lines and, from
//!   the August 2025 releases on (13.22, 14.19, 15.14, 16.10, 17.6, 18), the `\unrestrict KEY`
//!   line that closes the `\restrict KEY` line these versions open the script with: when the
//!   head has a `\restrict` line, the matching `\unrestrict` line is required. A pg_dumpall
//!   script (its head says `-- PostgreSQL database cluster dump`) must end with the same block
//!   around `-- PostgreSQL database cluster dump complete`, so a cluster dump cut between two
//!   databases fails too. Not checked: anything between head and tail (a dump whose middle was
//!   altered but whose end is intact passes), and whether the SQL would restore. Losing only
//!   trailing newlines is not detected (the dump is still complete).
//! - `pg_dump_custom` (`pg_dump -Fc`, any compression): the header (magic `PGDMP`, archive
//!   version 1.12 to 1.16 = pg_dump 9.0 to 18, integer and offset sizes, format byte = custom,
//!   compression), then every table-of-contents entry field by field as pg_restore's
//!   `ReadToc` reads it, then every data block to the end of the stream: block type, dump id,
//!   length-prefixed chunks up to the zero-length end marker, and for large objects each
//!   object's OID and chunks up to the zero OID. Every TOC entry that carries data must have
//!   exactly one block, of the right type, at the offset the TOC gives when it gives one
//!   (`pg_dump -f file` rewrites the TOC with offsets; a pipe cannot), and nothing may follow
//!   the last block. So a truncated custom dump fails wherever it was cut, even between two
//!   blocks. Not checked: the contents of chunks (compressed data is not inflated, so a
//!   damaged compressed chunk of the right length passes) and the SQL inside TOC entries.
//! - `mysqldump`: the last line must be mysqldump's `-- Dump completed on YYYY-MM-DD HH:MM:SS`
//!   (the hour may be space-padded: `2024-01-05  9:03:07`) or, with `--skip-dump-date`,
//!   `-- Dump completed`. `--compact`, `--skip-comments` and `--xml` dumps carry no such line
//!   and cannot be verified this way. Not checked: anything before the last line.
//! - `none`: nothing; always [`Verdict::Ok`].
//!
//! Separately, [`looks_compressed`] names a compression format from the first bytes of a
//! stream, and [`looks_encrypted_or_compressed`] measures the byte entropy of a sample: the
//! caller warns that such input will not deduplicate. Neither affects a [`Verdict`].

mod custom;

use std::fmt;
use std::str::FromStr;

use custom::Custom;

/// Bytes kept from the start of the stream: enough for pg_dump's header and `\restrict` line,
/// a custom-format header, and the magic of any compressor.
pub const HEAD_LEN: usize = 4096;

/// Bytes kept from the end of the stream: pg_dump's trailer block is about 120 bytes and
/// mysqldump's completion line about 40.
pub const TAIL_LEN: usize = 4096;

/// Which producer a stream claims to come from, named as in `verify = "…"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DumpKind {
    /// Plain-text `pg_dump` (or `pg_dumpall`, or `pg_restore -f -`) output.
    PgDump,
    /// `pg_dump -Fc`: the custom archive format, compressed or not.
    PgDumpCustom,
    /// `mysqldump` / `mariadb-dump` SQL output.
    Mysqldump,
    /// No check.
    None,
}

impl DumpKind {
    /// Every kind, in the order the names are listed to users.
    pub const ALL: [DumpKind; 4] = [
        DumpKind::PgDump,
        DumpKind::PgDumpCustom,
        DumpKind::Mysqldump,
        DumpKind::None,
    ];

    /// The name used in configuration and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            DumpKind::PgDump => "pg_dump",
            DumpKind::PgDumpCustom => "pg_dump_custom",
            DumpKind::Mysqldump => "mysqldump",
            DumpKind::None => "none",
        }
    }
}

impl fmt::Display for DumpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dump kind name that is not one of [`DumpKind::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dump kind `{0}`: expected pg_dump, pg_dump_custom, mysqldump or none")]
pub struct UnknownDumpKind(pub String);

impl FromStr for DumpKind {
    type Err = UnknownDumpKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        DumpKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| UnknownDumpKind(s.to_owned()))
    }
}

/// The outcome of a check.
#[must_use]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The stream looks complete (or the kind was [`DumpKind::None`]).
    Ok,
    /// The stream does not look like a complete dump of its kind.
    Failed {
        /// One line saying what is missing or wrong, e.g. "the stream does not end with
        /// pg_dump's completion trailer (`-- PostgreSQL database dump complete`)".
        reason: String,
    },
}

impl Verdict {
    /// Whether the stream passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok)
    }

    /// Why the stream failed, if it did.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Verdict::Ok => None,
            Verdict::Failed { reason } => Some(reason),
        }
    }

    fn failed(reason: impl Into<String>) -> Self {
        Verdict::Failed {
            reason: reason.into(),
        }
    }
}

/// A streaming check of one dump: feed it every piece of the stream in order, then
/// [`finish`](DumpCheck::finish). The verdict does not depend on how the stream was cut into
/// pieces.
#[derive(Debug)]
pub struct DumpCheck {
    kind: DumpKind,
    /// Bytes seen so far.
    seen: u64,
    /// The first [`HEAD_LEN`] bytes (fewer if the stream is shorter).
    head: Vec<u8>,
    /// What the kind needs to see of the rest.
    reader: Reader,
}

/// The per-kind state of a [`DumpCheck`].
#[derive(Debug)]
enum Reader {
    /// `none` keeps nothing.
    Nothing,
    /// The text formats keep the last bytes.
    Text(Tail),
    /// The custom format is read to its end.
    Custom(Box<Custom>),
}

impl DumpCheck {
    /// A check for a stream of `kind`, before its first byte.
    pub fn new(kind: DumpKind) -> Self {
        DumpCheck {
            kind,
            seen: 0,
            head: Vec::new(),
            reader: match kind {
                DumpKind::PgDump | DumpKind::Mysqldump => Reader::Text(Tail::default()),
                DumpKind::PgDumpCustom => Reader::Custom(Box::new(Custom::new())),
                DumpKind::None => Reader::Nothing,
            },
        }
    }

    /// The kind being checked.
    pub fn kind(&self) -> DumpKind {
        self.kind
    }

    /// Takes the next piece of the stream. Pieces must be passed in stream order; empty
    /// pieces are allowed. Costs O(piece length) time and no memory beyond the bounds in the
    /// module documentation.
    pub fn update(&mut self, data: &[u8]) {
        if self.kind == DumpKind::None {
            return;
        }
        self.seen += data.len() as u64;
        if self.head.len() < HEAD_LEN {
            let take = (HEAD_LEN - self.head.len()).min(data.len());
            self.head
                .extend_from_slice(data.get(..take).unwrap_or_default());
        }
        match &mut self.reader {
            Reader::Text(tail) => tail.push(data),
            Reader::Custom(custom) => custom.feed(data),
            Reader::Nothing => {}
        }
    }

    /// The verdict on the whole stream, which must have ended.
    pub fn finish(self) -> Verdict {
        let verdict = match self.reader {
            Reader::Nothing => return Verdict::Ok,
            Reader::Text(tail) => {
                let window = tail.window();
                let whole = window.len() as u64 == self.seen;
                if self.kind == DumpKind::Mysqldump {
                    check_mysqldump(window, whole)
                } else {
                    check_pg_dump(&self.head, window, whole)
                }
            }
            Reader::Custom(custom) => custom.finish(),
        };
        match verdict {
            Verdict::Failed { .. } if self.seen == 0 => Verdict::failed("the stream is empty"),
            Verdict::Failed { .. } => match other_format(&self.head, self.kind) {
                Some(hint) => Verdict::failed(hint),
                None => verdict,
            },
            Verdict::Ok => Verdict::Ok,
        }
    }
}

/// The last bytes of the stream, in a buffer of at most twice [`TAIL_LEN`].
#[derive(Debug, Default)]
struct Tail {
    buf: Vec<u8>,
}

impl Tail {
    /// [`TAIL_LEN`] and the byte before them, which says whether the window starts a line.
    const KEEP: usize = TAIL_LEN + 1;

    fn push(&mut self, data: &[u8]) {
        if data.len() >= Self::KEEP {
            self.buf.clear();
            self.buf
                .extend_from_slice(data.get(data.len() - Self::KEEP..).unwrap_or_default());
        } else {
            self.buf.extend_from_slice(data);
            if self.buf.len() > 2 * Self::KEEP {
                self.buf.drain(..self.buf.len() - Self::KEEP);
            }
        }
    }

    /// The last [`Tail::KEEP`] bytes, or the whole stream if it is shorter.
    fn window(&self) -> &[u8] {
        self.buf
            .get(self.buf.len().saturating_sub(Self::KEEP)..)
            .unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// Plain text: pg_dump and mysqldump

const PG_TRAILER: &[u8] = b"-- PostgreSQL database dump complete";
const PG_CLUSTER_HEADER: &[u8] = b"-- PostgreSQL database cluster dump";
const PG_CLUSTER_TRAILER: &[u8] = b"-- PostgreSQL database cluster dump complete";
const PG_HEADER: &[u8] = b"-- PostgreSQL database dump";

/// What the end of a plain pg_dump stream holds, read backwards past blank lines.
enum PgEnd<'a> {
    /// The database trailer, and the key of the `\unrestrict` line after it, if any.
    Database { unrestrict: Option<&'a [u8]> },
    /// pg_dumpall's trailer.
    Cluster,
    /// Anything else.
    Missing,
}

fn check_pg_dump(head: &[u8], tail: &[u8], whole: bool) -> Verdict {
    let cluster = first_lines(head, 3).any(|l| l == PG_CLUSTER_HEADER);
    match (pg_end(tail, whole), cluster) {
        (PgEnd::Cluster, _) => Verdict::Ok,
        (PgEnd::Database { .. }, true) | (PgEnd::Missing, true) => Verdict::failed(
            "the stream is a pg_dumpall cluster dump but does not end with its completion \
             trailer (`-- PostgreSQL database cluster dump complete`)",
        ),
        (PgEnd::Missing, false) => Verdict::failed(
            "the stream does not end with pg_dump's completion trailer \
             (`-- PostgreSQL database dump complete`)",
        ),
        (PgEnd::Database { unrestrict }, false) => match restrict_key(head) {
            Some(key) if unrestrict != Some(key) => Verdict::failed(format!(
                "the stream has pg_dump's completion trailer but does not end with the \
                 `\\unrestrict {}` line that its `\\restrict` line calls for",
                String::from_utf8_lossy(key)
            )),
            _ => Verdict::Ok,
        },
    }
}

/// Reads the end of a plain pg_dump backwards. pg_dump ends its script with
/// `--\n-- PostgreSQL database dump complete\n--\n\n`, then `\unrestrict KEY\n\n` when it
/// opened with `\restrict KEY`; pg_dumpall with the same block around its cluster trailer.
/// Blank lines may follow the closing `--` and the `\unrestrict` line, nothing else.
fn pg_end(tail: &[u8], whole: bool) -> PgEnd<'_> {
    enum Expect {
        UnrestrictOrDashes,
        Dashes,
        Trailer,
    }
    let mut expect = Expect::UnrestrictOrDashes;
    let mut unrestrict = None;
    let mut end = tail.len();
    loop {
        let Some(before) = tail.get(..end) else {
            return PgEnd::Missing;
        };
        let start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        // The first line of the window may be the end of a longer line.
        if start == 0 && !whole {
            return PgEnd::Missing;
        }
        let line = before.get(start..).unwrap_or_default().trim_ascii();
        match expect {
            Expect::Trailer if line == PG_TRAILER => return PgEnd::Database { unrestrict },
            Expect::Trailer if line == PG_CLUSTER_TRAILER => return PgEnd::Cluster,
            Expect::Trailer => return PgEnd::Missing,
            _ if line.is_empty() => {}
            _ if line == b"--" => expect = Expect::Trailer,
            Expect::UnrestrictOrDashes => match line.strip_prefix(b"\\unrestrict ") {
                Some(key) => {
                    unrestrict = Some(key.trim_ascii());
                    expect = Expect::Dashes;
                }
                None => return PgEnd::Missing,
            },
            Expect::Dashes => return PgEnd::Missing,
        }
        if start == 0 {
            return PgEnd::Missing;
        }
        end = start - 1;
    }
}

/// The key of the `\restrict KEY` line near the start of a pg_dump script.
fn restrict_key(head: &[u8]) -> Option<&[u8]> {
    first_lines(head, 12).find_map(|l| l.strip_prefix(b"\\restrict ").map(<[u8]>::trim_ascii))
}

/// The first `n` lines of `text`, without their line ends (`\n` or `\r\n`).
fn first_lines(text: &[u8], n: usize) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b'\n')
        .take(n)
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

fn check_mysqldump(tail: &[u8], whole: bool) -> Verdict {
    let text = tail.trim_ascii_end();
    // mysqldump ends the line with `\n`; without it, `-- Dump completed` could be a
    // `--skip-dump-date` line or the start of a dated one cut short.
    let ended = tail.get(text.len()..).is_some_and(|ws| ws.contains(&b'\n'));
    let last = match text.iter().rposition(|&b| b == b'\n') {
        Some(i) => text.get(i + 1..),
        None if whole => Some(text),
        None => None,
    };
    let complete = ended
        && last.map(<[u8]>::trim_ascii).is_some_and(|line| {
            line == b"-- Dump completed"
                || line
                    .strip_prefix(b"-- Dump completed on ")
                    .is_some_and(is_mysqldump_time)
        });
    if complete {
        Verdict::Ok
    } else {
        Verdict::failed(
            "the stream does not end with mysqldump's completion line \
             (`-- Dump completed on YYYY-MM-DD HH:MM:SS`)",
        )
    }
}

/// `YYYY-MM-DD HH:MM:SS` as mysqldump's `get_date` prints it: the hour is `%2d`, so 9 AM is
/// ` 9` after the separating space.
fn is_mysqldump_time(text: &[u8]) -> bool {
    let mut parts = text.split(|&b| b == b' ').filter(|p| !p.is_empty());
    let (Some(date), Some(time), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits =
        |p: &[u8], lens: &[usize]| lens.contains(&p.len()) && p.iter().all(u8::is_ascii_digit);
    let mut d = date.split(|&b| b == b'-');
    let mut t = time.split(|&b| b == b':');
    let date_ok = matches!((d.next(), d.next(), d.next(), d.next()),
        (Some(y), Some(m), Some(dd), None) if digits(y, &[4]) && digits(m, &[2]) && digits(dd, &[2]));
    let time_ok = matches!((t.next(), t.next(), t.next(), t.next()),
        (Some(h), Some(m), Some(s), None) if digits(h, &[1, 2]) && digits(m, &[2]) && digits(s, &[2]));
    date_ok && time_ok
}

/// A one-line explanation when the head shows the stream is some other format than `kind`
/// checks (compressed, the other pg_dump format, a mysqldump); `None` if nothing is recognized.
fn other_format(head: &[u8], kind: DumpKind) -> Option<String> {
    let lines: Vec<&[u8]> = first_lines(head, 3).collect();
    let is_pg_text = lines.first() == Some(&&b"--"[..])
        && lines.get(1).is_some_and(|l| l.starts_with(PG_HEADER));
    let is_mysql = lines
        .iter()
        .any(|l| l.starts_with(b"-- MySQL dump") || l.starts_with(b"-- MariaDB dump"));
    let is_custom = head.starts_with(custom::CUSTOM_MAGIC);
    let (what, use_kind) = if is_custom && kind != DumpKind::PgDumpCustom {
        ("a pg_dump custom-format archive", DumpKind::PgDumpCustom)
    } else if is_pg_text && kind != DumpKind::PgDump {
        ("a plain-text pg_dump", DumpKind::PgDump)
    } else if is_mysql && kind != DumpKind::Mysqldump {
        ("a mysqldump", DumpKind::Mysqldump)
    } else if let Some(c) = compressor(head) {
        return Some(format!(
            "the stream is {c}-compressed; the {kind} check reads the uncompressed dump \
             (pipe it uncompressed, which also deduplicates, or verify none)"
        ));
    } else {
        return None;
    };
    Some(format!(
        "the stream is {what}, not what the {kind} check reads; verify it as {use_kind}"
    ))
}

// ---------------------------------------------------------------------------------------------
// Compression and entropy

/// Names the compression of a stream from its first bytes: a general-purpose compressor's
/// magic (`"gzip"`, `"zstd"`, `"bzip2"`, `"xz"`, `"lz4"`), or a custom-format pg_dump archive
/// whose header says its data is compressed (`"pg_dump custom format (gzip)"`, `(lz4)`,
/// `(zstd)`: `pg_dump -Fc` without `-Z0`). `None` if nothing says compressed; 16 bytes suffice.
pub fn looks_compressed(head: &[u8]) -> Option<&'static str> {
    if let Some(c) = compressor(head) {
        return Some(c);
    }
    custom::declared_compression(head)
}

fn compressor(head: &[u8]) -> Option<&'static str> {
    const MAGICS: [(&[u8], &str); 7] = [
        (&[0x1f, 0x8b], "gzip"),
        (&[0x28, 0xb5, 0x2f, 0xfd], "zstd"),
        (b"BZh", "bzip2"),
        (&[0xfd, b'7', b'z', b'X', b'Z', 0x00], "xz"),
        (&[0x04, 0x22, 0x4d, 0x18], "lz4"),
        // The legacy lz4 frame (`lz4 -l`).
        (&[0x02, 0x21, 0x4c, 0x18], "lz4"),
        // A zstd skippable frame, as pzstd and seekable zstd start with.
        (&[0x50, 0x2a, 0x4d, 0x18], "zstd"),
    ];
    MAGICS
        .iter()
        .find(|(magic, _)| head.starts_with(magic))
        .map(|&(_, name)| name)
        .filter(|&name| name != "bzip2" || head.get(3).is_some_and(|b| (b'1'..=b'9').contains(b)))
}

/// Bytes of a sample [`looks_encrypted_or_compressed`] looks at.
pub const ENTROPY_SAMPLE: usize = 64 * 1024;

/// Below this many bytes the entropy of even random data falls short of the threshold.
const ENTROPY_MIN_SAMPLE: usize = 4096;

/// Shannon entropy above which a sample looks encrypted or compressed, in bits per byte.
pub const ENTROPY_THRESHOLD: f64 = 7.9;

/// Shannon entropy of the byte values in `sample`, in bits per byte (0 to 8).
pub fn entropy_bits_per_byte(sample: &[u8]) -> f64 {
    let mut counts = [0u64; 256];
    for &b in sample {
        counts[usize::from(b)] += 1;
    }
    let n = sample.len() as f64;
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum()
}

/// Whether the first [`ENTROPY_SAMPLE`] bytes of `sample` have the entropy of encrypted or
/// compressed data (over [`ENTROPY_THRESHOLD`] bits per byte). Samples under 4 KiB are never
/// judged: random data of that size measures below the threshold.
pub fn looks_encrypted_or_compressed(sample: &[u8]) -> bool {
    let sample = sample.get(..ENTROPY_SAMPLE).unwrap_or(sample);
    sample.len() >= ENTROPY_MIN_SAMPLE && entropy_bits_per_byte(sample) > ENTROPY_THRESHOLD
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(super) fn check(kind: DumpKind, pieces: &[&[u8]]) -> Verdict {
        let mut c = DumpCheck::new(kind);
        for p in pieces {
            c.update(p);
        }
        c.finish()
    }

    pub(super) fn check_split(kind: DumpKind, data: &[u8], sizes: &[usize]) -> Verdict {
        let mut c = DumpCheck::new(kind);
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes
                .get(i % sizes.len().max(1))
                .copied()
                .unwrap_or(1)
                .clamp(1, rest.len());
            let (now, later) = rest.split_at(n);
            c.update(now);
            c.update(&[]);
            rest = later;
            i += 1;
        }
        c.finish()
    }

    pub(super) fn reason(v: &Verdict) -> &str {
        v.reason().unwrap_or("(ok)")
    }

    #[test]
    fn kind_names_round_trip_and_unknown_names_list_the_valid_ones() {
        for kind in DumpKind::ALL {
            assert_eq!(kind.name().parse::<DumpKind>(), Ok(kind));
            assert_eq!(kind.to_string(), kind.name());
        }
        let err = "pgdump".parse::<DumpKind>().unwrap_err().to_string();
        assert!(err.contains("`pgdump`"), "{err}");
        for kind in DumpKind::ALL {
            assert!(err.contains(kind.name()), "{err}");
        }
    }

    #[test]
    fn none_accepts_anything() {
        assert!(check(DumpKind::None, &[]).is_ok());
        assert!(check(DumpKind::None, &[b"garbage"]).is_ok());
    }

    // --- plain pg_dump ------------------------------------------------------------------

    const KEY: &str = "CLeHY2EFWZmJf9qJm2WXtzBl2ssgdMU6GL1PMRa8XFgGTuwmYix3KnxR5ACLw29";

    /// A plain dump shaped like pg_dump 15.18's (the version on the test machine).
    fn pg_plain(key: Option<&str>, rows: usize) -> Vec<u8> {
        let mut s = String::from("--\n-- PostgreSQL database dump\n--\n\n");
        if let Some(k) = key {
            s += &format!("\\restrict {k}\n\n");
        }
        s += "-- Dumped from database version 15.18\n\nSET statement_timeout = 0;\n\n";
        s += "COPY public.a (id, s) FROM stdin;\n";
        for i in 0..rows {
            s += &format!("{i}\trow {i}\n");
        }
        s += "\\.\n\n\n--\n-- PostgreSQL database dump complete\n--\n\n";
        if let Some(k) = key {
            s += &format!("\\unrestrict {k}\n\n");
        }
        s.into_bytes()
    }

    #[test]
    fn plain_dumps_with_and_without_restrict_pass() {
        for key in [Some(KEY), None] {
            for rows in [0, 10, 2000] {
                let dump = pg_plain(key, rows);
                let v = check(DumpKind::PgDump, &[&dump]);
                assert!(v.is_ok(), "{key:?} {rows}: {}", reason(&v));
            }
        }
        // Windows line ends and extra trailing whitespace.
        let crlf = String::from_utf8(pg_plain(Some(KEY), 3))
            .unwrap()
            .replace('\n', "\r\n");
        assert!(check(DumpKind::PgDump, &[crlf.as_bytes(), b"  \n\t\n"]).is_ok());
    }

    #[test]
    fn plain_dump_truncations_fail_unless_only_whitespace_is_lost() {
        for key in [Some(KEY), None] {
            let dump = pg_plain(key, 200);
            for cut in 0..dump.len() {
                let part = &dump[..cut];
                let v = check(DumpKind::PgDump, &[part]);
                let only_whitespace = part.trim_ascii_end() == dump.trim_ascii_end();
                assert_eq!(v.is_ok(), only_whitespace, "cut {cut}: {}", reason(&v));
            }
        }
    }

    #[test]
    fn plain_dump_failures_say_what_is_missing() {
        let dump = pg_plain(Some(KEY), 5);
        let v = check(DumpKind::PgDump, &[&dump[..dump.len() - 100]]);
        assert_eq!(
            reason(&v),
            "the stream does not end with pg_dump's completion trailer \
             (`-- PostgreSQL database dump complete`)"
        );
        // The trailer without the closing \unrestrict line.
        let text = String::from_utf8(dump.clone()).unwrap();
        let cut = text.find("\\unrestrict").unwrap();
        let v = check(DumpKind::PgDump, &[&dump[..cut]]);
        assert!(
            reason(&v).contains(&format!("`\\unrestrict {KEY}`")),
            "{}",
            reason(&v)
        );
        // Another key.
        let other = text.replace(&format!("\\unrestrict {KEY}"), "\\unrestrict abc");
        assert!(!check(DumpKind::PgDump, &[other.as_bytes()]).is_ok());
        // SQL after the trailer, and the trailer inside a longer line.
        assert!(!check(DumpKind::PgDump, &[&dump, b"SELECT 1;\n"]).is_ok());
        let inline = b"SELECT 1; -- PostgreSQL database dump complete\n";
        assert!(!check(DumpKind::PgDump, &[inline]).is_ok());
        assert_eq!(reason(&check(DumpKind::PgDump, &[])), "the stream is empty");
    }

    #[test]
    fn the_trailer_must_start_a_line_and_lie_within_the_tail_window() {
        // The trailer block and the whitespace after it fill the window exactly.
        let at_edge = |before: u8| {
            let mut dump = vec![b'x'; 10_000];
            dump.push(before);
            dump.extend_from_slice(PG_TRAILER);
            dump.extend_from_slice(b"\n--\n");
            dump.resize(10_001 + TAIL_LEN, b'\n');
            dump
        };
        assert!(check(DumpKind::PgDump, &[&at_edge(b'\n')]).is_ok());
        assert!(check_split(DumpKind::PgDump, &at_edge(b'\n'), &[1, 4000, 7]).is_ok());
        // The trailer text ending a longer line.
        assert!(!check(DumpKind::PgDump, &[&at_edge(b'x')]).is_ok());
        // One more byte of whitespace puts the line start out of sight.
        let mut far = at_edge(b'\n');
        far.push(b'\n');
        assert!(!check(DumpKind::PgDump, &[&far]).is_ok());
    }

    fn pg_cluster(complete: bool) -> Vec<u8> {
        let mut s = String::from("--\n-- PostgreSQL database cluster dump\n--\n\n");
        s += "\\restrict K1\n\nCREATE ROLE x;\n\n\\unrestrict K1\n\n";
        s += &String::from_utf8(pg_plain(Some("K2"), 3)).unwrap();
        if complete {
            s += "--\n-- PostgreSQL database cluster dump complete\n--\n\n";
        }
        s.into_bytes()
    }

    #[test]
    fn a_cluster_dump_must_end_with_the_cluster_trailer() {
        assert!(check(DumpKind::PgDump, &[&pg_cluster(true)]).is_ok());
        let v = check(DumpKind::PgDump, &[&pg_cluster(false)]);
        assert!(
            reason(&v).contains("cluster dump complete"),
            "{}",
            reason(&v)
        );
    }

    #[test]
    fn other_formats_are_named() {
        let gz = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        let v = check(DumpKind::PgDump, &[&gz]);
        assert!(reason(&v).contains("gzip-compressed"), "{}", reason(&v));
        let v = check(DumpKind::PgDump, &[b"PGDMP\x01\x10\x00\x04\x08\x01\x00"]);
        assert!(
            reason(&v).contains("verify it as pg_dump_custom"),
            "{}",
            reason(&v)
        );
        let v = check(DumpKind::PgDumpCustom, &[&pg_plain(Some(KEY), 3)]);
        assert!(
            reason(&v).contains("verify it as pg_dump"),
            "{}",
            reason(&v)
        );
        let v = check(DumpKind::Mysqldump, &[&pg_plain(Some(KEY), 3)]);
        assert!(
            reason(&v).contains("a plain-text pg_dump"),
            "{}",
            reason(&v)
        );
        let v = check(DumpKind::PgDump, &[&mysql_dump("2024-01-05 10:03:07")]);
        assert!(
            reason(&v).contains("verify it as mysqldump"),
            "{}",
            reason(&v)
        );
        let v = check(DumpKind::PgDumpCustom, &[b"hello"]);
        assert!(reason(&v).contains("`PGDMP`"), "{}", reason(&v));
    }

    // --- mysqldump ----------------------------------------------------------------------

    fn mysql_dump(date: &str) -> Vec<u8> {
        let mut s = String::from(
            "-- MySQL dump 10.13  Distrib 8.0.36, for Linux (x86_64)\n--\n-- Host: localhost\n\n",
        );
        s += "INSERT INTO `t` VALUES (1,'a'),(2,'b');\n";
        s += "/*!40111 SET SQL_NOTES=@OLD_SQL_NOTES */;\n\n";
        if date.is_empty() {
            s += "-- Dump completed\n";
        } else {
            s += &format!("-- Dump completed on {date}\n");
        }
        s.into_bytes()
    }

    #[test]
    fn mysqldump_completion_lines_pass_and_truncations_fail() {
        for date in ["2024-01-05 10:03:07", "2024-01-05  9:03:07", ""] {
            let dump = mysql_dump(date);
            assert!(check(DumpKind::Mysqldump, &[&dump]).is_ok(), "{date}");
            for cut in 0..dump.len() {
                let v = check(DumpKind::Mysqldump, &[&dump[..cut]]);
                assert!(!v.is_ok(), "{date} cut {cut}");
            }
        }
        for bad in [
            "2024-1-05 10:03:07",
            "2024-01-05",
            "2024-01-05 10:03",
            "yesterday",
        ] {
            assert!(
                !check(DumpKind::Mysqldump, &[&mysql_dump(bad)]).is_ok(),
                "{bad}"
            );
        }
        let v = check(DumpKind::Mysqldump, &[b"-- MySQL dump 10.13\nINSERT"]);
        assert!(
            reason(&v).contains("`-- Dump completed on"),
            "{}",
            reason(&v)
        );
    }

    proptest! {
        #[test]
        fn text_verdicts_do_not_depend_on_piece_sizes(
            rows in 0usize..400,
            cut in proptest::option::of(any::<prop::sample::Index>()),
            sizes in proptest::collection::vec(1usize..9000, 1..20),
        ) {
            let dump = pg_plain(Some(KEY), rows);
            let data = match cut {
                Some(i) => &dump[..i.index(dump.len())],
                None => &dump[..],
            };
            for kind in [DumpKind::PgDump, DumpKind::Mysqldump] {
                let whole = check(kind, &[data]);
                prop_assert_eq!(check_split(kind, data, &sizes), whole);
            }
        }
    }

    // --- compression and entropy --------------------------------------------------------

    #[test]
    fn compressors_are_named_from_their_magic() {
        let cases: [(&[u8], Option<&str>); 10] = [
            (&[0x1f, 0x8b, 8, 0], Some("gzip")),
            (&[0x28, 0xb5, 0x2f, 0xfd, 0x24], Some("zstd")),
            (b"BZh91AY&SY", Some("bzip2")),
            (b"BZhx", None),
            (&[0xfd, b'7', b'z', b'X', b'Z', 0, 0], Some("xz")),
            (&[0x04, 0x22, 0x4d, 0x18, 0x64], Some("lz4")),
            (&[0x02, 0x21, 0x4c, 0x18], Some("lz4")),
            (b"--\n-- PostgreSQL database dump\n", None),
            (b"", None),
            (&[0x1f], None),
        ];
        for (head, name) in cases {
            assert_eq!(looks_compressed(head), name, "{head:?}");
        }
    }

    #[test]
    fn entropy_separates_random_bytes_from_text() {
        assert!(entropy_bits_per_byte(&[7; 1000]).abs() < 1e-9);
        let all: Vec<u8> = (0..=255).collect();
        assert!((entropy_bits_per_byte(&all) - 8.0).abs() < 1e-9);
        // xorshift64: deterministic bytes that look random.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let random: Vec<u8> = (0..ENTROPY_SAMPLE)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x.to_le_bytes()[0]
            })
            .collect();
        assert!(looks_encrypted_or_compressed(&random));
        assert!(looks_encrypted_or_compressed(&random[..ENTROPY_MIN_SAMPLE]));
        assert!(!looks_encrypted_or_compressed(
            &random[..ENTROPY_MIN_SAMPLE - 1]
        ));
        assert!(!looks_encrypted_or_compressed(&pg_plain(Some(KEY), 5000)));
    }
}
