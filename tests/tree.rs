//! End-to-end tests of directory snapshots: `snapshot PATH…`, `restore --target`, `ls`,
//! `diff` and `dump`, on trees built in each test's own temporary directory and compared,
//! metadata included, with what larder restores (`common/tree.rs`).
//!
//! A snapshot of `/tmp/x/data` mirrors the absolute path, so it restores into
//! `TARGET/tmp/x/data` ([`under`]).

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;
#[path = "common/tree.rs"]
mod fixture;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;
use fixture::*;
use proptest::prelude::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------------
// Running larder on trees
// ---------------------------------------------------------------------------------------

/// `larder --json snapshot --name NAME EXTRA… PATHS…`, its exit not checked.
fn snapshot_run(env: &Env, name: &str, paths: &[&Path], extra: &[&str]) -> Output {
    env.larder()
        .args(["--json", "snapshot", "--name", name])
        .args(extra)
        .args(paths)
        .output()
        .expect("run larder snapshot")
}

/// [`snapshot_run`], asserting exit 0; the report.
fn snapshot_tree(env: &Env, name: &str, paths: &[&Path], extra: &[&str]) -> Value {
    let out = snapshot_run(env, name, paths, extra);
    assert_success(&out, "snapshot PATH");
    parse_json(&out.stdout)
}

/// `larder restore SNAPSHOT --target TARGET EXTRA…`, its exit not checked.
fn restore_run(env: &Env, snapshot: &str, target: &Path, extra: &[&str]) -> Output {
    env.larder()
        .args(["restore", snapshot, "--target"])
        .arg(target)
        .args(extra)
        .output()
        .expect("run larder restore --target")
}

/// [`restore_run`], asserting exit 0.
fn restore_tree(env: &Env, snapshot: &str, target: &Path, extra: &[&str]) -> Output {
    let out = restore_run(env, snapshot, target, extra);
    assert_success(&out, "restore --target");
    out
}

/// A new empty directory in the test's temporary directory.
fn fresh_dir(env: &Env, name: &str) -> PathBuf {
    let p = env.path(name);
    fs::create_dir(&p).expect("create target dir");
    p
}

/// `larder ARGS…`, asserting exit 0; stdout.
fn larder_ok(env: &Env, args: &[&OsStr]) -> Vec<u8> {
    let out = env.larder().args(args).output().expect("run larder");
    assert_success(&out, &format!("{args:?}"));
    out.stdout
}

/// Asserts a run failed (any non-zero exit, no panic, nothing on stdout) and that stderr
/// names every string in `needles`; returns stderr.
fn assert_refused(out: &Output, needles: &[&str], what: &str) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "{what} succeeded; it should have failed. stderr:\n{err}"
    );
    assert_no_panic(&out.stderr);
    for n in needles {
        assert!(
            err.contains(n),
            "{what}: stderr does not name `{n}`:\n{err}"
        );
    }
    err
}

/// Stdout and stderr of a run, as one text.
fn all_output(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A path as text, for matching output (the paths these tests look for are UTF-8).
fn utf8(p: &Path) -> String {
    p.to_str()
        .unwrap_or_else(|| panic!("{p:?} is not UTF-8"))
        .to_owned()
}

/// A small tree of files at `env/NAME` (canonical path returned).
fn small_tree(env: &Env, name: &str, files: &[(&str, &[u8])]) -> PathBuf {
    let root = env.path(name);
    fs::create_dir(&root).expect("mkdir tree root");
    for (rel, data) in files {
        write_file(&root, rel, data);
    }
    stamp_mtimes(&root, 1_700_000_000);
    fs::canonicalize(&root).expect("canonicalize")
}

/// The three files most tests use: a text file, 200 KB of random bytes, one nested.
fn three_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("a.txt", text_bytes(1, 10_000)),
        ("b.bin", random_bytes(2, 200_000)),
        ("sub/c.txt", text_bytes(3, 5_000)),
    ]
}

/// A counter of a tree snapshot's report: `snapshot.tree_counts.FIELD` for `files_new`,
/// `files_changed`, `files_unmodified`, `dirs`; `snapshot.errors` (absent means 0);
/// `snapshot.FIELD` otherwise (`bytes_read`, `bytes_added`).
fn count(report: &Value, field: &str) -> u64 {
    match field {
        "files_new" | "files_changed" | "files_unmodified" | "dirs" | "others" => {
            report["snapshot"]["tree_counts"][field]
                .as_u64()
                .unwrap_or_else(|| panic!("no snapshot.tree_counts.{field} in {report}"))
        }
        "errors" => report["snapshot"]["errors"].as_u64().unwrap_or(0),
        _ => stat(report, field),
    }
}

/// `(name, bytes)` pairs borrowed, as [`small_tree`] takes them.
fn as_refs<'a>(files: &'a [(&'a str, Vec<u8>)]) -> Vec<(&'a str, &'a [u8])> {
    files.iter().map(|(n, d)| (*n, d.as_slice())).collect()
}

// ---------------------------------------------------------------------------------------
// The comparison itself
// ---------------------------------------------------------------------------------------

/// The comparison must find nothing between the fixture and a `cp -a` copy, and must find
/// every difference planted in the copy; otherwise the round-trip tests prove nothing.
#[test]
fn comparison_accepts_a_cp_a_copy_and_finds_each_planted_difference() {
    let env = Env::new();
    let fx = Fixture::build(&env.path("data"));
    let copy = env.path("copy");
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(&fx.root)
        .arg(&copy)
        .output()
        .expect("run cp -a");
    assert!(
        out.status.success(),
        "cp -a failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expect = Expect {
        sockets_skipped: false,
        ..fx.expect()
    };
    assert_same_tree(&fx.root, &copy, &expect);
    if fx.sparse {
        // The restore tests rely on this: the original itself is sparse.
        let m = fs::symlink_metadata(fx.path(SPARSE)).expect("stat");
        assert!(m.blocks() * 512 < SPARSE_LEN / 2);
    }

    // Plant one difference of each kind the comparison checks.
    let c = |r: &str| copy.join(r);
    chmod(&c("modes/private"), 0o640);
    let mut small = fs::read(c(SMALL)).expect("read");
    small[0] ^= 1;
    let m = fs::metadata(c(SMALL)).expect("stat");
    fs::write(c(SMALL), &small).expect("write");
    set_mtime(&c(SMALL), m.mtime(), m.mtime_nsec());
    let l = fs::symlink_metadata(c(SYMLINK)).expect("lstat");
    set_mtime(&c(SYMLINK), l.mtime(), l.mtime_nsec() + 1);
    fs::remove_file(c(DANGLING)).expect("rm");
    std::os::unix::fs::symlink("does/not/exist/either", c(DANGLING)).expect("symlink");
    let dl = fs::symlink_metadata(fx.path(DANGLING)).expect("lstat");
    set_mtime(&c(DANGLING), dl.mtime(), dl.mtime_nsec());
    let h = fs::metadata(c(HARD_B)).expect("stat");
    fs::remove_file(c(HARD_B)).expect("rm");
    fs::copy(c(HARD_A), c(HARD_B)).expect("copy");
    set_mtime(&c(HARD_B), h.mtime(), h.mtime_nsec());
    fs::remove_file(c(ONE)).expect("rm");
    write_file(&copy, "files/extra", b"extra");
    let d = fs::metadata(c("empty")).expect("stat");
    set_mtime(&c("empty"), d.mtime() + 1, d.mtime_nsec());
    let mut planted = vec![
        "\"modes/private\": mode",
        "\"files/small.txt\": contents",
        "\"links/relative\": mtime",
        "\"links/dangling\": target",
        "\"links/dangling\": size",
        "\"links/hard-b\": hardlinked",
        "\"links/hard-a\": hardlinked",
        "\"files/one\": missing",
        "\"files/extra\": only in the copy",
        "\"empty\": mtime",
    ];
    if fx.xattrs {
        xattr::remove(c(XATTR_DIR), XATTR).expect("remove xattr");
        planted.push("\"xattr/dir\": xattrs");
    }
    if fx.privileged {
        std::os::unix::fs::lchown(c(OWNED_FILE), Some(1234), Some(0)).expect("chown");
        chmod(&c(OWNED_FILE), 0o4750);
        planted.push("\"owned/by-1234\": gid");
    }
    if fx.sparse {
        let full = fs::read(c(SPARSE)).expect("read");
        let sm = fs::metadata(c(SPARSE)).expect("stat");
        fs::remove_file(c(SPARSE)).expect("rm");
        fs::write(c(SPARSE), &full).expect("write dense");
        chmod(&c(SPARSE), sm.mode() & 0o7777);
        let r = fs::symlink_metadata(&fx.root).expect("stat");
        set_mtime(&copy, r.mtime(), r.mtime_nsec());
        set_mtime(&c(SPARSE), sm.mtime(), sm.mtime_nsec());
        planted.push("\"sparse.img\": not sparse");
    }
    set_mtime(&c("files"), 1, 0); // restore what the extra file changed, differently
    planted.push("\"files\": mtime");
    let diffs = compare(&fx.root, &copy, &expect);
    for p in &planted {
        assert!(
            diffs.iter().any(|d| d.starts_with(p)),
            "planted difference `{p}` not found in:\n  {}",
            diffs.join("\n  ")
        );
    }
    // `links` changed too (a file in it was replaced): that is a real difference.
    let unexplained: Vec<&String> = diffs
        .iter()
        .filter(|d| !planted.iter().any(|p| d.starts_with(p)) && !d.starts_with("\"links\""))
        .collect();
    assert!(
        unexplained.is_empty(),
        "differences not planted: {unexplained:#?}"
    );
    // And the sockets rule: a copy that kept the socket is wrong when larder must skip it.
    let strict = compare(&fx.root, &copy, &fx.expect());
    assert!(
        strict
            .iter()
            .any(|d| d.starts_with("\"special/socket\": a socket")),
        "{strict:#?}"
    );
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// Every kind of entry, restored with its metadata; the socket skipped with a note.
#[test]
fn fixture_round_trips_with_all_metadata() {
    let env = Env::init();
    let fx = Fixture::build(&env.path("data"));
    let out = snapshot_run(&env, "fixture", &[&fx.root], &[]);
    assert_success(&out, "snapshot of the fixture");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&utf8(&fx.path(SOCKET))),
        "the skipped socket is not noted on stderr:\n{err}"
    );
    let report = parse_json(&out.stdout);
    let (names, files) = fx.regular_files();
    let new = count(&report, "files_new");
    assert!(
        (files..=names).contains(&usize::try_from(new).expect("small")),
        "files_new {new}, expected {files} files ({names} names): {report}"
    );
    assert_eq!(count(&report, "files_changed"), 0, "{report}");
    assert_eq!(count(&report, "files_unmodified"), 0, "{report}");
    assert_eq!(count(&report, "errors"), 0, "{report}");
    assert!(count(&report, "dirs") >= fx.dirs() as u64, "{report}");
    assert!(count(&report, "bytes_added") > 0, "{report}");

    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&report), &target, &[]);
    assert_same_tree(&fx.root, &under(&target, &fx.root), &fx.expect());
    // Nothing beside the snapshot's path: the target holds only its ancestors.
    let rel_root = fx.root.strip_prefix("/").expect("absolute");
    let ancestors = ancestors_of(&fx.root);
    let outside: Vec<PathBuf> = paths(&target)
        .into_iter()
        .filter(|p| !ancestors.contains(p) && !p.starts_with(rel_root))
        .collect();
    assert!(
        outside.is_empty(),
        "restored outside the snapshot: {outside:?}"
    );
}

/// Several paths, one of them relative (made absolute against the working directory).
#[test]
fn several_paths_each_restore_under_their_absolute_path() {
    let env = Env::init();
    let one = small_tree(&env, "one", &[("x.txt", b"one\n")]);
    let two = small_tree(&env, "two", &[("y/z.txt", b"two\n")]);
    let out = env
        .larder()
        .current_dir(env.tmp.path())
        .args(["--json", "snapshot", "--name", "two-paths", "one"])
        .arg(&two)
        .output()
        .expect("run larder");
    assert_success(&out, "snapshot of a relative and an absolute path");
    let id = id_of(&parse_json(&out.stdout));
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id, &target, &[]);
    assert_same_tree(&one, &under(&target, &one), &Expect::default());
    assert_same_tree(&two, &under(&target, &two), &Expect::default());
}

/// Random small trees (names with arbitrary bytes, nesting, sizes, modes, mtimes, symlinks
/// with arbitrary targets) round-trip.
#[derive(Debug, Clone)]
enum Node {
    File {
        len: usize,
        seed: u64,
        mode: u32,
        mtime: (i64, i64),
    },
    Symlink {
        target: Vec<u8>,
        mtime: (i64, i64),
    },
    Dir {
        mode: u32,
        mtime: (i64, i64),
        children: BTreeMap<Vec<u8>, Node>,
    },
}

fn name_strategy() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![8 => b'a'..=b'z', 1 => Just(b'.'), 2 => 0x80u8..=0xff, 1 => 1u8..=0x7f];
    prop::collection::vec(byte, 1..16).prop_map(|mut n| {
        for b in &mut n {
            if *b == b'/' {
                *b = b'_';
            }
        }
        if n == b"." || n == b".." {
            n.push(b'x');
        }
        n
    })
}

fn mtime_strategy() -> impl Strategy<Value = (i64, i64)> {
    (0i64..4_000_000_000, 0i64..1_000_000_000)
}

fn node_strategy() -> impl Strategy<Value = Node> {
    let file_mode = prop::sample::select(vec![0o644u32, 0o600, 0o755, 0o400, 0o2755, 0o4700]);
    let leaf = prop_oneof![
        4 => (0usize..20_000, any::<u64>(), file_mode, mtime_strategy())
            .prop_map(|(len, seed, mode, mtime)| Node::File { len, seed, mode, mtime }),
        1 => (prop::collection::vec(1u8..=0xff, 1..40), mtime_strategy())
            .prop_map(|(target, mtime)| Node::Symlink { target, mtime }),
    ];
    let dir_mode = prop::sample::select(vec![0o755u32, 0o700, 0o750, 0o2775, 0o1777]);
    leaf.prop_recursive(4, 40, 6, move |inner| {
        (
            dir_mode.clone(),
            mtime_strategy(),
            prop::collection::btree_map(name_strategy(), inner, 0..6),
        )
            .prop_map(|(mode, mtime, children)| Node::Dir {
                mode,
                mtime,
                children,
            })
    })
}

/// Makes `node` at `path`; a directory's mode and mtime are set after its children.
fn build_node(path: &Path, node: &Node) {
    match node {
        Node::File {
            len,
            seed,
            mode,
            mtime,
        } => {
            fs::write(path, random_bytes(*seed, *len)).expect("write file");
            chmod(path, *mode);
            set_mtime(path, mtime.0, mtime.1);
        }
        Node::Symlink { target, mtime } => {
            std::os::unix::fs::symlink(OsStr::from_bytes(target), path).expect("symlink");
            set_mtime(path, mtime.0, mtime.1);
        }
        Node::Dir {
            mode,
            mtime,
            children,
        } => {
            fs::create_dir(path).expect("mkdir");
            for (name, child) in children {
                build_node(&path.join(OsStr::from_bytes(name)), child);
            }
            chmod(path, *mode);
            set_mtime(path, mtime.0, mtime.1);
        }
    }
}

proptest! {
    // Each case runs the binary three times: few cases, short shrinking.
    // Failures are kept in the top-level folder that .gitignore already names.
    #![proptest_config(ProptestConfig {
        cases: 8,
        max_shrink_iters: 32,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct("proptest-regressions/tree.txt"),
        )),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_trees_round_trip(
        children in prop::collection::btree_map(name_strategy(), node_strategy(), 0..8),
        mtime in mtime_strategy(),
    ) {
        let env = Env::init();
        let root = env.path("data");
        build_node(&root, &Node::Dir { mode: 0o755, mtime, children });
        let root = fs::canonicalize(&root).expect("canonicalize");
        let id = id_of(&snapshot_tree(&env, "random", &[&root], &[]));
        let target = fresh_dir(&env, "restore");
        restore_tree(&env, &id, &target, &[]);
        let diffs = compare(&root, &under(&target, &root), &Expect::default());
        prop_assert!(diffs.is_empty(), "differences:\n  {}", diffs.join("\n  "));
    }
}

// ---------------------------------------------------------------------------------------
// Incremental snapshots
// ---------------------------------------------------------------------------------------

/// An unchanged tree: no file read again, next to nothing stored (the snapshot object is
/// not counted in `bytes_added`; a changed ancestor such as `/tmp` costs one small tree
/// blob), and the result still restores exactly. The parent is found by name and host,
/// or given with `--parent`; another name has no parent.
#[test]
fn unchanged_tree_is_not_read_again_and_stores_almost_nothing() {
    let env = Env::init();
    let fx = Fixture::build(&env.path("data"));
    let (names, files) = fx.regular_files();
    let in_range = |report: &Value, field: &str| {
        let n = usize::try_from(count(report, field)).expect("small");
        assert!(
            (files..=names).contains(&n),
            "{field} {n}, expected {files} files ({names} names): {report}"
        );
    };
    let first = snapshot_tree(&env, "fx", &[&fx.root], &[]);
    in_range(&first, "files_new");

    let second = snapshot_tree(&env, "fx", &[&fx.root], &[]);
    in_range(&second, "files_unmodified");
    assert_eq!(count(&second, "files_new"), 0, "{second}");
    assert_eq!(count(&second, "files_changed"), 0, "{second}");
    assert_eq!(count(&second, "bytes_read"), 0, "{second}");
    assert!(count(&second, "bytes_added") < 4096, "{second}");
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&second), &target, &[]);
    assert_same_tree(&fx.root, &under(&target, &fx.root), &fx.expect());

    let id1 = id_of(&first);
    let other = snapshot_tree(&env, "other", &[&fx.root], &["--parent", &id1]);
    in_range(&other, "files_unmodified");
    assert_eq!(count(&other, "bytes_read"), 0, "--parent: {other}");

    let fresh = snapshot_tree(&env, "fresh", &[&fx.root], &[]);
    in_range(&fresh, "files_new");
    assert_eq!(count(&fresh, "files_unmodified"), 0, "no parent: {fresh}");
    assert!(count(&fresh, "bytes_read") > 3 << 20, "no parent: {fresh}");
    assert!(
        count(&fresh, "bytes_added") < 4096,
        "same data under another name is deduplicated: {fresh}"
    );
}

/// Same size, same mtime (reset with utimensat), same inode, new contents: only the ctime
/// tells, and it must be enough.
#[test]
fn file_rewritten_with_its_old_mtime_is_read_again_because_ctime_changed() {
    let env = Env::init();
    let files = three_files();
    let root = small_tree(&env, "data", &as_refs(&files));
    let first = snapshot_tree(&env, "data", &[&root], &[]);
    assert_eq!(count(&first, "files_new"), 3, "{first}");

    let a = root.join("a.txt");
    let before = fs::symlink_metadata(&a).expect("stat");
    let new = text_bytes(99, 10_000);
    assert_ne!(new, files[0].1);
    fs::write(&a, &new).expect("rewrite");
    set_mtime(&a, before.mtime(), before.mtime_nsec());
    let after = fs::symlink_metadata(&a).expect("stat");
    assert_eq!(
        (after.size(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.size(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        )
    );
    assert_ne!(
        (after.ctime(), after.ctime_nsec()),
        (before.ctime(), before.ctime_nsec()),
        "the rewrite did not change the ctime"
    );

    let second = snapshot_tree(&env, "data", &[&root], &[]);
    assert_eq!(count(&second, "files_changed"), 1, "{second}");
    assert_eq!(count(&second, "files_unmodified"), 2, "{second}");
    assert_eq!(count(&second, "bytes_read"), 10_000, "{second}");
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&second), &target, &[]);
    assert_same_bytes(
        &fs::read(under(&target, &a)).expect("read restored"),
        &new,
        "restored a.txt",
    );
    assert_same_tree(&root, &under(&target, &root), &Expect::default());
}

/// `--force` reads every file again, whatever the parent says.
#[test]
fn force_reads_every_file_again() {
    let env = Env::init();
    let files = three_files();
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    let root = small_tree(&env, "data", &as_refs(&files));
    let first = snapshot_tree(&env, "data", &[&root], &[]);
    assert_eq!(count(&first, "bytes_read"), total, "{first}");
    let second = snapshot_tree(&env, "data", &[&root], &[]);
    assert_eq!(count(&second, "bytes_read"), 0, "{second}");
    assert_eq!(count(&second, "files_unmodified"), 3, "{second}");
    let forced = snapshot_tree(&env, "data", &[&root], &["--force"]);
    assert_eq!(count(&forced, "bytes_read"), total, "--force: {forced}");
    assert_eq!(count(&forced, "files_unmodified"), 0, "--force: {forced}");
    assert!(count(&forced, "bytes_added") < 4096, "--force: {forced}");
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&forced), &target, &[]);
    assert_same_tree(&root, &under(&target, &root), &Expect::default());
}

// ---------------------------------------------------------------------------------------
// Restore: selection, overwriting, dry run
// ---------------------------------------------------------------------------------------

/// The relative paths of `abs`'s ancestors below `/` (`tmp`, `tmp/x`, …), `abs` excluded.
fn ancestors_of(abs: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut p = abs.strip_prefix("/").expect("absolute").to_path_buf();
    while p.pop() && p != Path::new("") {
        out.insert(p.clone());
    }
    out
}

/// Relative paths of `abs` and everything below it in the original tree.
fn subtree_of(abs: &Path) -> BTreeSet<PathBuf> {
    let rel = abs.strip_prefix("/").expect("absolute");
    let mut out: BTreeSet<PathBuf> = if abs.is_dir() {
        paths(abs).into_iter().map(|p| rel.join(p)).collect()
    } else {
        BTreeSet::new()
    };
    out.insert(rel.to_path_buf());
    out
}

#[test]
fn include_restores_only_the_asked_paths_and_their_parents() {
    let env = Env::init();
    let root = small_tree(
        &env,
        "data",
        &[
            ("a/x.txt", b"x"),
            ("a/sub/y.txt", b"y"),
            ("b/z.txt", b"z"),
            ("b/other.txt", b"o"),
            ("top.txt", b"t"),
        ],
    );
    let id = id_of(&snapshot_tree(&env, "data", &[&root], &[]));

    // A directory.
    let target = fresh_dir(&env, "only-a");
    let a = root.join("a");
    restore_tree(&env, &id, &target, &["--include", &utf8(&a)]);
    let want: BTreeSet<PathBuf> = ancestors_of(&a).union(&subtree_of(&a)).cloned().collect();
    assert_eq!(paths(&target), want, "--include {}", a.display());
    assert_same_tree(&a, &under(&target, &a), &Expect::default());

    // Two files, one of them nested.
    let target = fresh_dir(&env, "two-files");
    let (z, top) = (root.join("b/z.txt"), root.join("top.txt"));
    restore_tree(
        &env,
        &id,
        &target,
        &["--include", &utf8(&z), "--include", &utf8(&top)],
    );
    let want: BTreeSet<PathBuf> = [&z, &top]
        .iter()
        .flat_map(|p| ancestors_of(p).into_iter().chain(subtree_of(p)))
        .collect();
    assert_eq!(paths(&target), want, "--include z.txt --include top.txt");
    for f in [&z, &top] {
        assert_same_tree(f, &under(&target, f), &Expect::default());
    }
}

/// The default (`never`) and `--overwrite never`: an existing file that would be written
/// fails the restore before anything is written, naming the file.
#[test]
fn overwrite_never_refuses_to_clobber_and_writes_nothing() {
    let env = Env::init();
    let files = three_files();
    let root = small_tree(&env, "data", &as_refs(&files));
    let id = id_of(&snapshot_tree(&env, "data", &[&root], &[]));
    let c = root.join("sub/c.txt");
    for extra in [&[][..], &["--overwrite", "never"]] {
        let target = env.path(&format!("target{}", extra.len()));
        let local = under(&target, &c);
        write_file(local.parent().expect("parent"), "c.txt", b"local edits\n");
        let before = paths(&target);
        let out = restore_run(&env, &id, &target, extra);
        assert_refused(&out, &[&utf8(&c)], &format!("restore {extra:?} onto c.txt"));
        assert_eq!(paths(&target), before, "restore {extra:?} wrote something");
        assert_eq!(fs::read(&local).expect("read"), b"local edits\n");
    }
}

/// `if-changed` leaves a file whose size and mtime match alone (same inode, and even its
/// different contents: that is the documented trade) and rewrites one that differs;
/// `always` rewrites everything.
#[test]
fn overwrite_if_changed_leaves_matching_files_and_always_rewrites_them() {
    let env = Env::init();
    let files = three_files();
    let root = small_tree(&env, "data", &as_refs(&files));
    let id = id_of(&snapshot_tree(&env, "data", &[&root], &[]));
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id, &target, &[]);
    let restored = under(&target, &root);
    assert_same_tree(&root, &restored, &Expect::default());

    let (a, b, c) = (
        restored.join("a.txt"),
        restored.join("b.bin"),
        restored.join("sub/c.txt"),
    );
    let ino_a = fs::metadata(&a).expect("stat").ino();
    fs::write(&b, b"shorter").expect("edit b");
    // Same size and mtime, other contents: if-changed cannot tell.
    let cm = fs::metadata(&c).expect("stat");
    let sneaky = text_bytes(77, 5_000);
    fs::write(&c, &sneaky).expect("edit c");
    set_mtime(&c, cm.mtime(), cm.mtime_nsec());

    restore_tree(&env, &id, &target, &["--overwrite", "if-changed"]);
    assert_eq!(
        fs::metadata(&a).expect("stat").ino(),
        ino_a,
        "if-changed rewrote an unchanged file"
    );
    assert_same_bytes(&fs::read(&b).expect("read"), &files[1].1, "b.bin");
    assert_same_bytes(&fs::read(&c).expect("read"), &sneaky, "c.txt left alone");
    let expect = Expect {
        ignore: vec![PathBuf::from("sub/c.txt")],
        ..Expect::default()
    };
    assert_same_tree(&root, &restored, &expect);

    restore_tree(&env, &id, &target, &["--overwrite", "always"]);
    assert_same_tree(&root, &restored, &Expect::default());
}

#[test]
fn dry_run_writes_nothing_and_names_what_it_would_change() {
    let env = Env::init();
    let files = three_files();
    let root = small_tree(&env, "data", &as_refs(&files));
    let id = id_of(&snapshot_tree(&env, "data", &[&root], &[]));

    // Into an empty target.
    let empty = fresh_dir(&env, "empty");
    let out = restore_tree(&env, &id, &empty, &["--dry-run"]);
    assert!(paths(&empty).is_empty(), "--dry-run wrote into {empty:?}");
    let text = all_output(&out);
    assert!(
        text.contains(&utf8(&root.join("sub/c.txt"))),
        "--dry-run does not name what it would write:\n{text}"
    );

    // Over a restored copy with one file edited.
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id, &target, &[]);
    let b = under(&target, &root.join("b.bin"));
    fs::write(&b, b"edited").expect("edit");
    let before = paths(&target);
    let out = restore_tree(
        &env,
        &id,
        &target,
        &["--dry-run", "--overwrite", "if-changed"],
    );
    let text = all_output(&out);
    assert!(
        text.contains(&utf8(&root.join("b.bin"))),
        "--dry-run does not name the file it would rewrite:\n{text}"
    );
    assert_eq!(paths(&target), before);
    assert_eq!(
        fs::read(&b).expect("read"),
        b"edited",
        "--dry-run rewrote b.bin"
    );
}

/// A tree snapshot has no stream to write; a stream snapshot has no tree to restore.
#[test]
fn tree_snapshot_to_stdout_and_target_for_stream_are_usage_errors() {
    let env = Env::init();
    let root = small_tree(&env, "data", &[("f", b"contents")]);
    snapshot_tree(&env, "tree", &[&root], &[]);
    let out = env
        .larder()
        .args(["restore", "latest", "--name", "tree"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &[]);
    assert!(out.stdout.is_empty());
    let file = env.path("out.bin");
    let out = env
        .larder()
        .args(["restore", "latest", "--name", "tree", "-o"])
        .arg(&file)
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &[]);
    assert!(!file.exists(), "restore -o of a tree created {file:?}");

    env.snapshot("stream", b"a stream", &[]);
    let target = fresh_dir(&env, "target");
    let out = env
        .larder()
        .args(["restore", "latest", "--name", "stream", "--target"])
        .arg(&target)
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &[]);
    assert!(
        paths(&target).is_empty(),
        "--target of a stream wrote files"
    );
}

// ---------------------------------------------------------------------------------------
// Excludes and read errors
// ---------------------------------------------------------------------------------------

#[test]
fn excludes_by_glob_exclude_file_and_marker_file() {
    let env = Env::init();
    let root = small_tree(
        &env,
        "data",
        &[
            ("keep.txt", b"k"),
            ("a.tmp", b"excluded by base name"),
            ("sub/b.tmp", b"excluded by base name, nested"),
            ("sub/keep.tmp.txt", b"k"),
            ("dir.tmp/inside.txt", b"a directory matching *.tmp"),
            ("logs/app.log", b"excluded by an absolute glob"),
            ("logs/keep.txt", b"k"),
            ("secret/key", b"excluded with its directory"),
            ("old.bak", b"excluded by a base-name glob in the file"),
            ("cache/.nobackup", b""),
            ("cache/blob", b"excluded by the marker"),
            ("deep/er/cache/.nobackup", b""),
            ("deep/er/cache/blob", b"excluded by the marker"),
            ("deep/er/keep.txt", b"k"),
        ],
    );
    let exclude_file = env.path("excludes");
    fs::write(
        &exclude_file,
        format!(
            "{}\n{}\n*.bak\n",
            root.join("logs/*.log").display(),
            root.join("secret").display()
        ),
    )
    .expect("write exclude file");
    let report = snapshot_tree(
        &env,
        "data",
        &[&root],
        &[
            "--exclude",
            "*.tmp",
            "--exclude-file",
            &utf8(&exclude_file),
            "--exclude-if-present",
            ".nobackup",
        ],
    );
    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&report), &target, &[]);
    let got = paths(&under(&target, &root));
    let excluded = [
        "a.tmp",
        "sub/b.tmp",
        "dir.tmp",
        "logs/app.log",
        "secret",
        "old.bak",
        "cache",
        "deep/er/cache",
    ]
    .map(PathBuf::from);
    let want: BTreeSet<PathBuf> = paths(&root)
        .into_iter()
        .filter(|p| !excluded.iter().any(|e| p.starts_with(e)))
        .collect();
    assert_eq!(got, want);
    // Directories keep their metadata although some of their entries were left out.
    let expect = Expect {
        ignore: excluded.to_vec(),
        ..Expect::default()
    };
    assert_same_tree(&root, &under(&target, &root), &expect);
}

/// `--one-file-system` needs a mount point inside the tree. Making one needs mount(2), so
/// the test walks `/dev` instead, which on Linux holds the `/dev/shm` tmpfs; it is skipped
/// (with a note) where `/dev/shm` is not a separate, writable filesystem.
#[test]
fn one_file_system_does_not_cross_into_dev_shm() {
    let dev = fs::symlink_metadata("/dev").expect("stat /dev");
    let shm = match fs::symlink_metadata("/dev/shm") {
        Ok(m) if m.is_dir() && m.dev() != dev.dev() => m,
        _ => {
            eprintln!("skipped: /dev/shm is not a separate filesystem here");
            return;
        }
    };
    assert_ne!(shm.dev(), dev.dev());
    let Ok(marker) = tempfile::Builder::new()
        .prefix("larder-one-file-system-")
        .tempfile_in("/dev/shm")
    else {
        eprintln!("skipped: /dev/shm is not writable");
        return;
    };
    let env = Env::init();
    let out = snapshot_run(&env, "dev", &[Path::new("/dev")], &["--one-file-system"]);
    // `/dev` is the machine's, not ours: a node that vanished mid-walk is a read error
    // (exit 3) and does not matter here.
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "snapshot /dev --one-file-system: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let id = id_of(&parse_json(&out.stdout));
    let listing = parse_json(&larder_ok(
        &env,
        &["--json", "ls", id.as_str(), "/dev", "--recursive"].map(OsStr::new),
    ));
    let listed: Vec<&str> = listing
        .as_array()
        .expect("ls --json is an array")
        .iter()
        .map(|e| e["path"].as_str().expect("path"))
        .collect();
    assert!(
        listed.contains(&"/dev/null"),
        "/dev was not walked: {listed:?}"
    );
    let crossed: Vec<&&str> = listed
        .iter()
        .filter(|p| p.starts_with("/dev/shm/"))
        .collect();
    assert!(
        crossed.is_empty(),
        "--one-file-system crossed into /dev/shm: {crossed:?} (marker {:?})",
        marker.path()
    );
}

/// Root reads through any permission bits, so as root the snapshot runs as `nobody`
/// (65534), to whom the repository and tree are handed over.
fn unprivileged_ids() -> Option<(u32, u32)> {
    is_root().then_some((65534, 65534))
}

fn chown_tree(root: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(root, Some(uid), Some(gid)).expect("chown");
    for p in paths(root) {
        std::os::unix::fs::lchown(root.join(p), Some(uid), Some(gid)).expect("chown");
    }
}

/// A file and a directory that cannot be read: each named on stderr, exit 3, `errors` 2,
/// and the snapshot of the rest written and restorable.
#[test]
fn unreadable_entries_exit_3_name_each_and_the_rest_is_saved() {
    let env = Env::init();
    let root = small_tree(
        &env,
        "data",
        &[
            ("ok.txt", b"readable\n"),
            ("sub/ok.bin", &random_bytes(7, 50_000)),
            ("locked.txt", b"nobody may read this\n"),
            ("closed/inside.txt", b"in a directory nobody may list\n"),
        ],
    );
    let ids = unprivileged_ids();
    if let Some((uid, gid)) = ids {
        chown_tree(env.tmp.path(), uid, gid);
    }
    let (locked, closed) = (root.join("locked.txt"), root.join("closed"));
    chmod(&locked, 0o000);
    chmod(&closed, 0o000);

    let mut probe = std::process::Command::new("cat");
    probe.arg(&locked);
    let mut cmd = env.std_larder();
    cmd.args(["--json", "snapshot", "--name", "data"])
        .arg(&root);
    if let Some((uid, gid)) = ids {
        probe.uid(uid).gid(gid);
        cmd.uid(uid).gid(gid);
    }
    let probed = probe.output().expect("run cat");
    assert!(
        !probed.status.success(),
        "the test needs {locked:?} unreadable to larder, but cat read it"
    );
    let mut cmd = assert_cmd::Command::from_std(cmd);
    let out = cmd.timeout(TIMEOUT).output().expect("run larder snapshot");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(3), "stderr:\n{err}");
    assert_no_panic(&out.stderr);
    for p in [&locked, &closed] {
        let lines = err.lines().filter(|l| l.contains(&utf8(p))).count();
        assert_eq!(lines, 1, "{p:?} not named on one stderr line:\n{err}");
    }
    let report = parse_json(&out.stdout);
    assert_eq!(count(&report, "errors"), 2, "{report}");
    assert_eq!(env.snapshot_ids(), [id_of(&report)], "snapshot not listed");

    let target = fresh_dir(&env, "restore");
    restore_tree(&env, &id_of(&report), &target, &[]);
    let expect = Expect {
        ignore: vec![PathBuf::from("locked.txt"), PathBuf::from("closed")],
        ..Expect::default()
    };
    assert_same_tree(&root, &under(&target, &root), &expect);
    // Let the temporary directory be removed when not running as root.
    chmod(&closed, 0o755);
    if let Ok(restored_closed) = fs::symlink_metadata(under(&target, &closed)) {
        if restored_closed.is_dir() {
            chmod(&under(&target, &closed), 0o755);
        }
    }

    // Retention never counts an incomplete snapshot: it is listed apart, kept by `forget`,
    // and removed only with --prune-incomplete.
    chmod(&locked, 0o644);
    let complete = env
        .larder()
        .args(["--json", "snapshot", "--name", "data"])
        .arg(&root)
        .output()
        .unwrap();
    assert_success(&complete, "a complete snapshot");
    let complete = id_of(&parse_json(&complete.stdout));
    let incomplete = id_of(&report);
    let out = env
        .larder()
        .args(["--json", "forget", "--keep-last", "1", "--dry-run"])
        .output()
        .unwrap();
    assert_success(&out, "forget --dry-run");
    let plan = parse_json(&out.stdout);
    assert_eq!(plan["incomplete"][0]["id"], incomplete.as_str(), "{plan}");
    assert_eq!(
        plan["groups"][0]["snapshots"][0]["id"],
        complete.as_str(),
        "{plan}"
    );
    env.larder()
        .args(["forget", "--keep-last", "1"])
        .assert()
        .success();
    assert_eq!(env.snapshot_ids().len(), 2, "the incomplete snapshot stays");
    env.larder()
        .args(["forget", "--keep-last", "1", "--prune-incomplete"])
        .assert()
        .success();
    assert_eq!(env.snapshot_ids(), [complete]);
}

// ---------------------------------------------------------------------------------------
// ls, diff, dump
// ---------------------------------------------------------------------------------------

/// The permission bits of a JSON `mode`: a number, an octal string or an `ls -l` string.
fn perm_of(v: &Value) -> u32 {
    if let Some(n) = v.as_u64() {
        return u32::try_from(n & 0o7777).expect("masked");
    }
    let text = v.as_str().unwrap_or_else(|| panic!("mode is {v}"));
    if text.len() == 10 && !text.bytes().all(|b| b.is_ascii_digit()) {
        let bits = &text.as_bytes()[1..];
        return bits
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != b'-')
            .map(|(i, _)| 1u32 << (8 - i))
            .sum();
    }
    u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .unwrap_or_else(|e| panic!("mode {text}: {e}"))
        & 0o7777
}

/// The ls line naming `path` (as a whole whitespace-separated word).
fn ls_line<'a>(listing: &'a str, path: &Path) -> Option<&'a str> {
    let path = utf8(path);
    listing
        .lines()
        .find(|l| l.split_whitespace().any(|w| w == path))
}

#[test]
fn ls_lists_entries_like_ls_l_and_as_json() {
    let env = Env::init();
    let root = env.path("data");
    fs::create_dir(&root).expect("mkdir");
    write_file(&root, "file.txt", b"hello");
    chmod(&root.join("file.txt"), 0o640);
    write_file(&root, "dir/inner.txt", b"inner");
    std::os::unix::fs::symlink("file.txt", root.join("link")).expect("symlink");
    nix::unistd::mkfifo(
        &root.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    chmod(&root.join("fifo"), 0o600);
    write_file(&root, "hard-a", b"linked");
    fs::hard_link(root.join("hard-a"), root.join("hard-b")).expect("hard link");
    if is_root() {
        nix::sys::stat::mknod(
            &root.join("null"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 3),
        )
        .expect("mknod");
        chmod(&root.join("null"), 0o666);
    }
    chmod(&root.join("dir"), 0o755);
    stamp_mtimes(&root, 1_650_000_000);
    let root = fs::canonicalize(&root).expect("canonicalize");
    let id = id_of(&snapshot_tree(&env, "data", &[&root], &[]));
    let ls = |args: &[&OsStr]| {
        let mut all = vec![OsStr::new("ls"), OsStr::new(&id)];
        all.extend_from_slice(args);
        String::from_utf8(larder_ok(&env, &all)).expect("ls prints UTF-8 here")
    };

    // The root: the first component of the snapshot's path.
    let top = Path::new("/").join(root.components().nth(1).expect("a component"));
    let listing = ls(&[]);
    assert!(
        ls_line(&listing, &top).is_some(),
        "{top:?} not in:\n{listing}"
    );

    let listing = ls(&[root.as_os_str()]);
    let line = |rel: &str| {
        ls_line(&listing, &root.join(rel)).unwrap_or_else(|| panic!("{rel} not listed:\n{listing}"))
    };
    let words = |rel: &str| line(rel).split_whitespace().collect::<Vec<_>>();
    assert!(
        words("file.txt").contains(&"-rw-r-----"),
        "{}",
        line("file.txt")
    );
    assert!(
        words("file.txt").contains(&"5"),
        "size: {}",
        line("file.txt")
    );
    if is_root() {
        assert!(words("file.txt").contains(&"root"), "{}", line("file.txt"));
        assert!(words("null").contains(&"crw-rw-rw-"), "{}", line("null"));
    }
    assert!(words("dir").contains(&"drwxr-xr-x"), "{}", line("dir"));
    assert!(words("fifo").contains(&"prw-------"), "{}", line("fifo"));
    assert!(
        words("link").iter().any(|w| w.starts_with('l')),
        "{}",
        line("link")
    );
    assert!(
        ls_line(&listing, &root.join("dir/inner.txt")).is_none(),
        "not recursive, yet:\n{listing}"
    );
    let recursive = ls(&[root.as_os_str(), OsStr::new("--recursive")]);
    assert!(
        ls_line(&recursive, &root.join("dir/inner.txt")).is_some(),
        "--recursive:\n{recursive}"
    );

    let json = |extra: &[&str]| -> BTreeMap<String, Value> {
        let mut args = vec![OsStr::new("--json"), OsStr::new("ls"), OsStr::new(&id)];
        args.push(root.as_os_str());
        args.extend(extra.iter().map(OsStr::new));
        let v = parse_json(&larder_ok(&env, &args));
        v.as_array()
            .unwrap_or_else(|| panic!("ls --json is not an array: {v}"))
            .iter()
            .map(|e| {
                let p = e["path"].as_str().unwrap_or_else(|| panic!("no path: {e}"));
                (p.to_owned(), e.clone())
            })
            .collect()
    };
    let flat = json(&[]);
    let entry = |m: &BTreeMap<String, Value>, rel: &str| -> Value {
        let p = utf8(&root.join(rel));
        m.get(&p)
            .cloned()
            .unwrap_or_else(|| panic!("{p} not in ls --json: {m:?}"))
    };
    let file = entry(&flat, "file.txt");
    assert_eq!(file["kind"], "file");
    assert_eq!(file["size"], 5);
    assert_eq!(perm_of(&file["mode"]), 0o640);
    assert!(!file["mtime"].is_null(), "{file}");
    assert_eq!(entry(&flat, "dir")["kind"], "dir");
    assert_eq!(perm_of(&entry(&flat, "dir")["mode"]), 0o755);
    assert_eq!(entry(&flat, "link")["kind"], "symlink");
    assert_eq!(entry(&flat, "fifo")["kind"], "fifo");
    if is_root() {
        assert_eq!(entry(&flat, "null")["kind"], "char_device");
    }
    let mut pair = [entry(&flat, "hard-a"), entry(&flat, "hard-b")]
        .map(|e| e["kind"].as_str().expect("kind").to_owned());
    pair.sort();
    assert_eq!(pair, ["file", "hardlink"], "a hardlink pair");
    assert!(!flat.contains_key(&utf8(&root.join("dir/inner.txt"))));
    let deep = json(&["--recursive"]);
    assert_eq!(entry(&deep, "dir/inner.txt")["size"], 5);
}

#[test]
fn diff_lists_added_removed_and_changed_paths() {
    let env = Env::init();
    let root = small_tree(
        &env,
        "data",
        &[
            ("same.txt", b"same"),
            ("changed.txt", b"before"),
            ("chmod.txt", b"mode changes"),
            ("removed.txt", b"gone in B"),
            ("dir/stays.txt", b"stays"),
        ],
    );
    let a = id_of(&snapshot_tree(&env, "data", &[&root], &[]));
    fs::write(root.join("changed.txt"), b"after, and longer").expect("edit");
    chmod(&root.join("chmod.txt"), 0o600);
    fs::remove_file(root.join("removed.txt")).expect("rm");
    write_file(&root, "added.txt", b"new in B");
    write_file(&root, "dir/added-too.txt", b"new in B");
    let b = id_of(&snapshot_tree(&env, "data", &[&root], &[]));
    let p = |rel: &str| utf8(&root.join(rel));

    let text = String::from_utf8(larder_ok(
        &env,
        &["diff", a.as_str(), b.as_str()].map(OsStr::new),
    ))
    .expect("UTF-8");
    let has = |mark: &str, rel: &str| {
        text.lines()
            .any(|l| l.starts_with(mark) && l.split_whitespace().any(|w| w == p(rel)))
    };
    for (mark, rel) in [
        ("+ ", "added.txt"),
        ("+ ", "dir/added-too.txt"),
        ("- ", "removed.txt"),
        ("M ", "changed.txt"),
        ("M ", "chmod.txt"),
    ] {
        assert!(has(mark, rel), "no `{mark}{rel}` line in:\n{text}");
    }
    assert!(
        !text.contains(&p("same.txt")),
        "unchanged file listed:\n{text}"
    );
    assert!(!text.contains(&p("dir/stays.txt")), "{text}");

    let v = parse_json(&larder_ok(
        &env,
        &["--json", "diff", a.as_str(), b.as_str()].map(OsStr::new),
    ));
    let set = |field: &str| -> BTreeSet<String> {
        v[field]
            .as_array()
            .unwrap_or_else(|| panic!("no array `{field}` in {v}"))
            .iter()
            .map(|e| {
                e["path"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{e}"))
                    .to_owned()
            })
            .collect()
    };
    assert_eq!(
        set("added"),
        BTreeSet::from([p("added.txt"), p("dir/added-too.txt")])
    );
    assert_eq!(set("removed"), BTreeSet::from([p("removed.txt")]));
    let changed = set("changed");
    for rel in ["changed.txt", "chmod.txt"] {
        assert!(changed.contains(&p(rel)), "{rel} not changed: {v}");
    }
    // Directories whose entries changed (and ancestors such as /tmp) may be listed too.
    for c in &changed {
        assert!(
            c == &p("changed.txt") || c == &p("chmod.txt") || Path::new(c).is_dir(),
            "{c} listed as changed: {v}"
        );
    }
}

#[test]
fn dump_writes_one_file_and_refuses_directories_and_missing_paths() {
    let env = Env::init();
    let fx = Fixture::build(&env.path("data"));
    let id = id_of(&snapshot_tree(&env, "fx", &[&fx.root], &[]));
    let dump = |path: &Path| {
        env.larder()
            .args(["dump", &id])
            .arg(path)
            .output()
            .expect("run larder dump")
    };
    for r in [
        PathBuf::from(BIG),
        PathBuf::from(EMPTY),
        PathBuf::from(ONE),
        PathBuf::from(SPARSE),
        PathBuf::from(HARD_B),
        rel(b"names/\xff\xfe"),
    ] {
        let out = dump(&fx.path(&r));
        assert_success(&out, &format!("dump {r:?}"));
        assert_same_bytes(
            &out.stdout,
            &fs::read(fx.path(&r)).expect("read original"),
            &format!("dump {r:?}"),
        );
    }
    // By name, as `latest`.
    let out = env
        .larder()
        .args(["dump", "latest", "--name", "fx"])
        .arg(fx.path(SMALL))
        .output()
        .expect("run larder dump");
    assert_success(&out, "dump latest --name");
    assert_eq!(out.stdout, fs::read(fx.path(SMALL)).expect("read"));

    for bad in [fx.path("files"), fx.path("files/no-such-file")] {
        let out = dump(&bad);
        assert_refused(&out, &[&utf8(&bad)], &format!("dump {bad:?}"));
        assert!(out.stdout.is_empty(), "dump {bad:?} wrote to stdout");
    }
}
