//! `larder::dump_check` against real pg_dump output. A throwaway PostgreSQL cluster is made
//! once per test run (initdb in a temporary directory, listening only on a unix socket there,
//! run as `postgres` when the tests run as root), loaded with a small database (a few thousand
//! rows in three tables, bytea, a large object, an empty table), dumped five ways and stopped:
//! plain, pg_dumpall, `-Fc -Z0` to a pipe (no data offsets), `-Fc -Z0 -f file` (the TOC
//! rewritten with data offsets) and `-Fc` (compressed). Then every dump must pass whole, fail
//! when cut anywhere, and get the same verdict whatever pieces it arrives in.
//!
//! No PostgreSQL: the tests say so on stderr and pass, except under `CI`, where
//! `.ci/install-deps.sh` installs it and a missing PostgreSQL is a failure. A PostgreSQL that
//! is installed but cannot make the dumps always fails the tests.

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test by panicking"
)]

mod common;
#[path = "common/postgres.rs"]
mod postgres;

use std::ffi::OsStr;
use std::sync::OnceLock;
use std::time::Instant;

use larder::dump_check::{
    DumpCheck, DumpKind, Verdict, looks_compressed, looks_encrypted_or_compressed,
};
use postgres::{Cluster, Running};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// One dump and the kind it is checked as.
struct Dump {
    name: &'static str,
    kind: DumpKind,
    bytes: Vec<u8>,
}

struct Dumps {
    /// `pg_dump --version`.
    version: String,
    dumps: Vec<Dump>,
}

impl Dumps {
    fn get(&self, name: &str) -> &Dump {
        self.dumps.iter().find(|d| d.name == name).unwrap()
    }
}

enum Unavailable {
    /// No PostgreSQL binaries: skip, or fail under `CI`.
    NotInstalled(String),
    /// PostgreSQL is there but making the dumps failed: always a failure.
    Failed(String),
}

static DUMPS: OnceLock<Result<Dumps, Unavailable>> = OnceLock::new();

/// The dumps, made on first use; `None` (after a loud note) if PostgreSQL is not installed
/// and `CI` is not set.
fn dumps(test: &str) -> Option<&'static Dumps> {
    match DUMPS.get_or_init(make_dumps) {
        Ok(d) => Some(d),
        Err(Unavailable::Failed(why)) => panic!("{test}: {why}"),
        Err(Unavailable::NotInstalled(why)) => common::required(
            test,
            "PostgreSQL is not installed",
            "apt-get install postgresql",
            Err(why.clone()),
        ),
    }
}

fn check(kind: DumpKind, data: &[u8]) -> Verdict {
    let mut c = DumpCheck::new(kind);
    c.update(data);
    c.finish()
}

fn check_in_pieces(kind: DumpKind, mut data: &[u8], sizes: &[usize]) -> Verdict {
    let mut c = DumpCheck::new(kind);
    for &n in sizes.iter().cycle() {
        if data.is_empty() {
            break;
        }
        let (now, rest) = data.split_at(n.clamp(1, data.len()));
        c.update(now);
        data = rest;
    }
    c.finish()
}

fn reason(v: &Verdict) -> &str {
    v.reason().unwrap_or("(ok)")
}

#[test]
fn whole_real_dumps_pass() {
    let Some(d) = dumps("whole_real_dumps_pass") else {
        return;
    };
    for dump in &d.dumps {
        let v = check(dump.kind, &dump.bytes);
        assert!(
            v.is_ok(),
            "{} ({} bytes, {}): {}",
            dump.name,
            dump.bytes.len(),
            d.version,
            reason(&v)
        );
    }
    // What the plain dump really ends with, for the record.
    let plain = &d.get("plain").bytes;
    let end = String::from_utf8_lossy(&plain[plain.len() - 160..]);
    eprintln!("{}: the plain dump ends with {end:?}", d.version);
    assert!(end.contains("\n--\n-- PostgreSQL database dump complete\n--\n\n"));
}

#[test]
fn real_dumps_cut_anywhere_fail() {
    let Some(d) = dumps("real_dumps_cut_anywhere_fail") else {
        return;
    };
    let started = Instant::now();
    let mut cuts_checked = 0;
    for dump in &d.dumps {
        let len = dump.bytes.len();
        let spaced = (0..50).map(|i| len * i / 50);
        let near_end = len.saturating_sub(200)..len;
        for cut in spaced.chain(near_end) {
            let part = &dump.bytes[..cut];
            let v = check(dump.kind, part);
            // A plain dump that lost only trailing newlines is still whole.
            let only_whitespace = dump.kind == DumpKind::PgDump
                && part.trim_ascii_end() == dump.bytes.trim_ascii_end();
            assert_eq!(
                v.is_ok(),
                only_whitespace,
                "{} cut at {cut} of {len}: {}",
                dump.name,
                reason(&v)
            );
            cuts_checked += 1;
        }
    }
    // The messages say where the stream ended.
    let custom = d.get("custom -Z0 (pipe)");
    let v = check(custom.kind, &custom.bytes[..custom.bytes.len() - 1]);
    assert!(
        reason(&v).starts_with("the stream ends inside"),
        "{}",
        reason(&v)
    );
    let v = check(custom.kind, &custom.bytes[..custom.bytes.len() / 2]);
    assert!(reason(&v).contains("TABLE DATA public."), "{}", reason(&v));
    eprintln!("{cuts_checked} cuts checked in {:?}", started.elapsed());
}

#[test]
fn piece_sizes_do_not_change_the_verdict() {
    let Some(d) = dumps("piece_sizes_do_not_change_the_verdict") else {
        return;
    };
    let sizes = prop_oneof![1usize..16, 16usize..8192, 8192usize..(2 << 20)];
    let strategy = (
        0..d.dumps.len(),
        proptest::option::of(any::<prop::sample::Index>()),
        proptest::collection::vec(sizes, 1..24),
    );
    let mut runner = TestRunner::new(Config {
        cases: 48,
        // A runner made by hand has no source file to store failing cases beside.
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(i, cut, sizes)| {
            let dump = &d.dumps[i];
            let data = match cut {
                Some(at) => &dump.bytes[..at.index(dump.bytes.len())],
                None => &dump.bytes[..],
            };
            let whole = check(dump.kind, data);
            prop_assert_eq!(
                check_in_pieces(dump.kind, data, &sizes),
                whole,
                "{}",
                dump.name
            );
            Ok(())
        })
        .unwrap();
}

#[test]
fn compressed_custom_dumps_are_flagged() {
    let Some(d) = dumps("compressed_custom_dumps_are_flagged") else {
        return;
    };
    let compressed = &d.get("custom (compressed)").bytes;
    let name = looks_compressed(&compressed[..64]);
    assert!(
        name.is_some_and(|n| n.starts_with("pg_dump custom format (")),
        "{name:?}"
    );
    for uncompressed in [
        "plain",
        "pg_dumpall",
        "custom -Z0 (pipe)",
        "custom -Z0 (file)",
    ] {
        let bytes = &d.get(uncompressed).bytes;
        assert_eq!(looks_compressed(bytes), None, "{uncompressed}");
        assert!(!looks_encrypted_or_compressed(bytes), "{uncompressed}");
    }
}

#[test]
fn a_dump_checked_as_another_kind_is_named() {
    let Some(d) = dumps("a_dump_checked_as_another_kind_is_named") else {
        return;
    };
    let plain = &d.get("plain").bytes;
    let custom = &d.get("custom (compressed)").bytes;
    let v = check(DumpKind::PgDumpCustom, plain);
    assert!(
        reason(&v).ends_with("verify it as pg_dump"),
        "{}",
        reason(&v)
    );
    let v = check(DumpKind::Mysqldump, plain);
    assert!(
        reason(&v).contains("a plain-text pg_dump"),
        "{}",
        reason(&v)
    );
    let v = check(DumpKind::PgDump, custom);
    assert!(
        reason(&v).ends_with("verify it as pg_dump_custom"),
        "{}",
        reason(&v)
    );
    assert!(check(DumpKind::None, &custom[..10]).is_ok());
}

// ---------------------------------------------------------------------------------------------
// The throwaway cluster

/// The test database: some of everything a dump carries (COPY data, bytea, a large object,
/// an empty table, a view, a foreign key).
const SCHEMA: &str = "
CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, email text, created timestamptz);
INSERT INTO customers
SELECT g, 'customer ' || g, 'c' || g || '@example.com',
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute'
  FROM generate_series(1, 3000) AS g;
CREATE TABLE orders (id bigint PRIMARY KEY, customer_id int REFERENCES customers,
                     amount numeric(12,2), note text);
INSERT INTO orders
SELECT g, 1 + g % 3000, (g * 7919 % 100000) / 100.0, repeat('n', g % 40)
  FROM generate_series(1, 5000) AS g;
CREATE TABLE attachments (id int PRIMARY KEY, body bytea NOT NULL);
INSERT INTO attachments
SELECT g, decode(repeat(md5(g::text), 1 + g % 6), 'hex') FROM generate_series(1, 1000) AS g;
CREATE TABLE empty_table (x int);
CREATE VIEW big_orders AS SELECT * FROM orders WHERE amount > 500;
SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 2000), 'hex'));
";

fn make_dumps() -> Result<Dumps, Unavailable> {
    let bin = postgres::find_bin(&["pg_dump", "pg_dumpall"]).ok_or_else(|| {
        Unavailable::NotInstalled(
            "no initdb, pg_ctl, pg_dump, pg_dumpall and psql under /usr/lib/postgresql/*/bin \
             or in `pg_config --bindir`"
                .to_owned(),
        )
    })?;
    let started = Instant::now();
    let cluster = Cluster::create(bin).map_err(Unavailable::Failed)?;
    let running = cluster.start().map_err(Unavailable::Failed)?;
    let made = running.make_dumps().map_err(Unavailable::Failed);
    drop(running);
    eprintln!("cluster made and dumped in {:?}", started.elapsed());
    made
}

impl Running<'_> {
    fn make_dumps(&self) -> Result<Dumps, String> {
        let c = self.cluster();
        let psql = |db: &str, sql: &str| {
            c.run(
                "psql",
                &["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
            )
        };
        psql("postgres", "CREATE DATABASE shop")?;
        psql("shop", SCHEMA)?;
        let version = String::from_utf8_lossy(&c.run("pg_dump", &["--version"])?)
            .trim()
            .to_owned();
        let file = c.dir().join("shop.dump");
        c.run(
            "pg_dump",
            &[
                OsStr::new("-Fc"),
                "-Z0".as_ref(),
                "-f".as_ref(),
                file.as_os_str(),
                "shop".as_ref(),
            ],
        )?;
        let file_dump = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let dump = |name, kind, args: &[&str]| -> Result<Dump, String> {
            Ok(Dump {
                name,
                kind,
                bytes: c.run("pg_dump", args)?,
            })
        };
        Ok(Dumps {
            version,
            dumps: vec![
                dump("plain", DumpKind::PgDump, &["shop"])?,
                Dump {
                    name: "pg_dumpall",
                    kind: DumpKind::PgDump,
                    bytes: c.run::<&str>("pg_dumpall", &[])?,
                },
                dump(
                    "custom -Z0 (pipe)",
                    DumpKind::PgDumpCustom,
                    &["-Fc", "-Z0", "shop"],
                )?,
                Dump {
                    name: "custom -Z0 (file)",
                    kind: DumpKind::PgDumpCustom,
                    bytes: file_dump,
                },
                dump(
                    "custom (compressed)",
                    DumpKind::PgDumpCustom,
                    &["-Fc", "shop"],
                )?,
            ],
        })
    }
}
