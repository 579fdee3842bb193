//! `stats`: the numbers agree with what was stored (two snapshots of one stream are twice
//! the logical size of one and dedup to about 2x; text compresses; a directory snapshot's
//! restore size counts the files its parent let it skip), per-series sums, the filters, the
//! `--json` shape, `--unused`, and that it runs beside an exclusive lock without taking one.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::sync::Arc;

use common::*;
use larder::backend::local::LocalBackend;
use larder::crypto::key_slot::Password;
use larder::format::lock::{LockBody, LockKind};
use larder::repo::Repo;
use larder::repo::object;
use serde_json::Value;

const MIB: usize = 1 << 20;

/// `larder --json stats EXTRA…`, parsed.
fn stats(env: &Env, extra: &[&str]) -> Value {
    let out = env
        .larder()
        .args(["--json", "stats"])
        .args(extra)
        .output()
        .expect("run larder stats");
    assert_success(&out, "stats");
    parse_json(&out.stdout)
}

/// `larder stats EXTRA…` as text.
fn stats_text(env: &Env, extra: &[&str]) -> String {
    let out = env
        .larder()
        .arg("stats")
        .args(extra)
        .output()
        .expect("run larder stats");
    assert_success(&out, "stats");
    String::from_utf8(out.stdout).expect("stats prints UTF-8")
}

fn u(v: &Value, path: &str) -> u64 {
    let mut at = v;
    for k in path.split('.') {
        at = &at[k];
    }
    at.as_u64()
        .unwrap_or_else(|| panic!("no integer at {path} in {v}"))
}

fn f(v: &Value, path: &str) -> f64 {
    let mut at = v;
    for k in path.split('.') {
        at = &at[k];
    }
    at.as_f64()
        .unwrap_or_else(|| panic!("no number at {path} in {v}"))
}

fn list<'a>(v: &'a Value, key: &str) -> &'a Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no array {key} in {v}"))
}

#[test]
fn two_snapshots_of_one_stream_are_twice_the_logical_size_and_dedup_to_two() {
    let env = Env::init();
    let data = random_bytes(1, MIB);
    let first = env.snapshot("db", &data, &[]);
    let second = env.snapshot("db", &data, &[]);
    assert_eq!(
        stat(&second, "bytes_added"),
        0,
        "nothing new the second time"
    );

    let s = stats(&env, &[]);
    let r = &s["repository"];
    assert_eq!(u(r, "snapshots"), 2);
    assert_eq!(u(r, "restore_size"), 2 * MIB as u64);
    assert_eq!(u(r, "bytes_read"), 2 * MIB as u64);
    // Raw unique bytes: the stream once, plus its content list (about 40 bytes a chunk).
    assert_eq!(u(r, "by_kind.data.raw_bytes"), MIB as u64);
    assert_eq!(u(r, "by_kind.tree.blobs"), 0);
    let raw = u(r, "blobs.raw_bytes");
    assert!(
        raw > MIB as u64 && raw < MIB as u64 * 101 / 100,
        "raw {raw}"
    );
    let dedup = f(r, "dedup_ratio");
    assert!((1.98..=2.0).contains(&dedup), "dedup {dedup}");
    // Random bytes do not compress: stored is raw plus the seal's nonce and tag.
    let compression = f(r, "compression_ratio");
    assert!(
        (0.98..=1.0).contains(&compression),
        "compression {compression}"
    );
    // The index's blobs are what the snapshots added; packs add their headers.
    let stored = u(r, "blobs.stored_bytes");
    assert_eq!(stored, stat(&first, "bytes_added"));
    assert!(u(r, "pack_bytes") > stored);
    assert_eq!(
        u(r, "packs"),
        u64::try_from(env.objects("packs").len()).unwrap()
    );
    assert!(r["unused"].is_null(), "no --unused, no walk");

    let series = list(&s, "series");
    assert_eq!(series.len(), 1);
    let db = &series[0];
    assert_eq!(db["name"], "db");
    assert_eq!(u(db, "snapshots"), 2);
    assert_eq!(u(db, "restore_size"), 2 * MIB as u64);
    assert_eq!(u(db, "newest_restore_size"), MIB as u64);
    assert_eq!(u(db, "bytes_added"), stat(&first, "bytes_added"));
    assert_eq!(u(db, "raw_bytes_added"), stat(&first, "raw_bytes_added"));
    assert_eq!(db["newest"].as_str(), Some(id_of(&second).as_str()));

    let snaps = list(&s, "snapshots");
    assert_eq!(snaps.len(), 2);
    assert_eq!(id_of(&snaps[0]), id_of(&first));
    assert_eq!(u(&snaps[0], "restore_size"), MIB as u64);
    assert_eq!(u(&snaps[0], "new_chunks"), stat(&first, "new_chunks"));
    let d0 = f(&snaps[0], "dedup_ratio");
    assert!((0.98..=1.0).contains(&d0), "first snapshot dedup {d0}");
    // The second added nothing: no ratio (JSON has no infinity).
    assert_eq!(u(&snaps[1], "new_chunks"), 0);
    assert!(snaps[1]["dedup_ratio"].is_null());
    assert!(snaps[1]["compression_ratio"].is_null());
}

#[test]
fn a_compressible_stream_shows_compression() {
    let env = Env::init();
    let text = text_bytes(7, 2 * MIB);
    let rep = env.snapshot("dump", &text, &[]);
    let s = stats(&env, &[]);
    let c = f(&s["repository"], "compression_ratio");
    assert!(c > 2.0, "text compressed only {c}x");
    let snap = &list(&s, "snapshots")[0];
    let sc = f(snap, "compression_ratio");
    let want = stat(&rep, "raw_bytes_added") as f64 / stat(&rep, "bytes_added") as f64;
    assert!(
        (sc - want).abs() < 1e-9,
        "snapshot compression {sc}, want {want}"
    );
    assert!(u(&s["repository"], "blobs.stored_bytes") < text.len() as u64 / 2);
}

#[test]
fn series_are_counted_per_name_and_filters_select_them() {
    let env = Env::init();
    env.snapshot("db", &random_bytes(1, 100_000), &["--host", "a"]);
    env.snapshot("db", &random_bytes(2, 200_000), &["--host", "b"]);
    env.snapshot("etc", &random_bytes(3, 50_000), &["--host", "a"]);

    let s = stats(&env, &[]);
    let series = list(&s, "series");
    let names: Vec<&str> = series.iter().map(|x| x["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["db", "etc"]);
    assert_eq!(u(&series[0], "snapshots"), 2);
    assert_eq!(u(&series[0], "restore_size"), 300_000);
    assert_eq!(u(&series[0], "newest_restore_size"), 200_000);
    assert_eq!(series[0]["hosts"], serde_json::json!(["a", "b"]));
    assert_eq!(u(&series[1], "snapshots"), 1);
    assert_eq!(u(&s["selected"], "snapshots"), 3);
    assert_eq!(u(&s["selected"], "restore_size"), 350_000);

    // Filters narrow the series and snapshots, never the repository totals.
    let db = stats(&env, &["--name", "db"]);
    assert_eq!(u(&db["repository"], "snapshots"), 3);
    assert_eq!(u(&db["repository"], "restore_size"), 350_000);
    assert_eq!(list(&db, "series").len(), 1);
    assert_eq!(list(&db, "snapshots").len(), 2);
    assert_eq!(u(&db["selected"], "restore_size"), 300_000);

    let a = stats(&env, &["--host", "a"]);
    let names: Vec<&str> = list(&a, "snapshots")
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["db", "etc"]);
    assert_eq!(u(&list(&a, "series")[0], "restore_size"), 100_000);

    let both = stats(&env, &["--name", "db", "--host", "b"]);
    assert_eq!(list(&both, "snapshots").len(), 1);
    assert_eq!(u(&both["selected"], "restore_size"), 200_000);

    let none = stats(&env, &["--name", "nothing-here"]);
    assert!(list(&none, "series").is_empty());
    assert!(list(&none, "snapshots").is_empty());
    assert_eq!(u(&none["selected"], "snapshots"), 0);
    assert!(none["selected"]["dedup_ratio"].is_null());
}

#[test]
fn json_has_every_field() {
    let env = Env::init();
    env.snapshot("db", &text_bytes(1, 300_000), &[]);
    let s = stats(&env, &["--unused"]);
    let keys = |v: &Value| -> Vec<String> {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap_or_else(|| panic!("not an object: {v}"))
            .keys()
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&s),
        ["repository", "requests", "selected", "series", "snapshots"]
    );
    assert_eq!(
        keys(&s["repository"]),
        [
            "blobs",
            "by_kind",
            "bytes_read",
            "compression_ratio",
            "dedup_ratio",
            "pack_bytes",
            "packs",
            "restore_size",
            "snapshots",
            "unused"
        ]
    );
    assert_eq!(
        keys(&s["repository"]["by_kind"]),
        ["content_list", "data", "tree"]
    );
    assert_eq!(
        keys(&s["repository"]["blobs"]),
        ["blobs", "raw_bytes", "stored_bytes"]
    );
    assert_eq!(
        keys(&s["repository"]["unused"]),
        [
            "blobs",
            "by_kind",
            "unindexed_pack_bytes",
            "unindexed_packs"
        ]
    );
    assert_eq!(
        keys(&s["selected"]),
        [
            "bytes_added",
            "bytes_read",
            "dedup_ratio",
            "raw_bytes_added",
            "restore_size",
            "snapshots"
        ]
    );
    assert_eq!(
        keys(&list(&s, "series")[0]),
        [
            "bytes_added",
            "bytes_read",
            "dedup_ratio",
            "hosts",
            "name",
            "newest",
            "newest_restore_size",
            "newest_time",
            "raw_bytes_added",
            "restore_size",
            "snapshots"
        ]
    );
    assert_eq!(
        keys(&list(&s, "snapshots")[0]),
        [
            "bytes_added",
            "bytes_read",
            "chunks",
            "compression_ratio",
            "dedup_ratio",
            "host",
            "id",
            "name",
            "new_chunks",
            "raw_bytes_added",
            "restore_size",
            "time"
        ]
    );
    let snap = &list(&s, "snapshots")[0];
    id_of(snap);
    assert!(snap["time"].as_str().is_some_and(|t| t.ends_with('Z')));
}

#[test]
fn a_directory_snapshot_counts_the_files_its_parent_let_it_skip() {
    let env = Env::init();
    let dir = env.path("src");
    std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
    std::fs::write(dir.join("a.txt"), text_bytes(1, 120_000)).unwrap();
    std::fs::write(dir.join("sub/b.bin"), random_bytes(2, 300_000)).unwrap();
    std::fs::write(dir.join("sub/deeper/c"), b"tiny").unwrap();
    std::fs::write(dir.join("empty"), b"").unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    let files = 120_000 + 300_000 + 4;

    env.snapshot_paths("files", &[&dir]);
    let again = env.snapshot_paths("files", &[&dir]);
    // Unchanged files come from the parent without being read.
    assert_eq!(stat(&again, "bytes_read"), 0);

    let s = stats(&env, &[]);
    let snaps = list(&s, "snapshots");
    for x in snaps {
        assert_eq!(u(x, "restore_size"), files, "restore size of {x}");
    }
    assert_eq!(u(&snaps[0], "bytes_read"), files);
    assert_eq!(u(&snaps[1], "bytes_read"), 0);
    assert_eq!(u(&s["repository"], "restore_size"), 2 * files);
    assert!(u(&s["repository"], "by_kind.tree.blobs") >= 3);
    let series = &list(&s, "series")[0];
    assert_eq!(u(series, "newest_restore_size"), files);
    assert_eq!(u(series, "restore_size"), 2 * files);
}

#[test]
fn unused_counts_what_no_snapshot_references() {
    let env = Env::init();
    let old = env.snapshot_id("db", &random_bytes(1, MIB), &[]);
    env.snapshot("db", &random_bytes(2, MIB / 2), &[]);
    let s = stats(&env, &["--unused"]);
    let unused = &s["repository"]["unused"];
    assert_eq!(
        u(unused, "blobs.blobs"),
        0,
        "everything is referenced: {unused}"
    );
    assert_eq!(u(unused, "unindexed_packs"), 0);

    // Forget the first snapshot (delete its object, as forget does): its chunks and its
    // content list are left for prune.
    std::fs::remove_file(env.repo.join("snapshots").join(&old)).unwrap();
    // A stray pack no index segment names (as an interrupted backup leaves).
    let pack = env.objects("packs").remove(0);
    let stray = env.repo.join("packs/ab").join("ab".repeat(32));
    std::fs::create_dir_all(env.repo.join("packs/ab")).unwrap();
    std::fs::copy(&pack, &stray).unwrap();
    let stray_len = std::fs::metadata(&stray).unwrap().len();

    let s = stats(&env, &["--unused"]);
    let r = &s["repository"];
    let unused = &r["unused"];
    assert_eq!(u(r, "snapshots"), 1);
    assert_eq!(u(unused, "by_kind.data.raw_bytes"), MIB as u64);
    // Its content list: one blob or more (list boundaries depend on the keyed chunk ids).
    assert!(u(unused, "by_kind.content_list.blobs") >= 1);
    assert_eq!(u(unused, "by_kind.tree.blobs"), 0);
    assert!(u(unused, "blobs.stored_bytes") > MIB as u64);
    assert_eq!(u(unused, "unindexed_packs"), 1);
    assert_eq!(u(unused, "unindexed_pack_bytes"), stray_len);
    // The live rest is the second stream.
    let live = u(r, "blobs.raw_bytes") - u(unused, "blobs.raw_bytes");
    let half = MIB as u64 / 2;
    assert!(live > half && live < half * 101 / 100, "live {live}");

    let text = stats_text(&env, &["--unused"]);
    assert!(text.contains("unused"), "{text}");
    assert!(text.contains("no snapshot references"), "{text}");
}

#[test]
fn text_output_is_a_compact_table() {
    let env = Env::init();
    let data = random_bytes(5, 200_000);
    let first = env.snapshot_id("db", &data, &["--host", "h1"]);
    env.snapshot("db", &data, &["--host", "h1"]);
    let out = stats_text(&env, &[]);
    assert!(out.starts_with("repository: 2 snapshots, 1 pack"), "{out}");
    assert!(out.contains("compression"), "{out}");
    assert!(
        out.contains("dedup 1.9") || out.contains("dedup 2.00x"),
        "{out}"
    );
    let row = out
        .lines()
        .find(|l| l.starts_with("db "))
        .unwrap_or_else(|| panic!("no series row for db:\n{out}"));
    assert!(row.contains(" 2 ") && row.ends_with("h1"), "{row}");
    // What the run cost the storage: read-only, so no PUT and no DELETE.
    let requests = out
        .lines()
        .find(|l| l.starts_with("requests: "))
        .unwrap_or_else(|| panic!("no requests line:\n{out}"));
    assert!(
        requests.contains("0 PUT") && requests.contains("0 DELETE") && requests.contains(" GET "),
        "{requests}"
    );
    assert!(
        !out.contains(&first[..8]),
        "snapshots listed without --snapshots:\n{out}"
    );

    let out = stats_text(&env, &["--snapshots", "--name", "db"]);
    assert!(out.contains(&first[..8]), "{out}");
    assert!(out.contains("selected (name db): 2 snapshots"), "{out}");
    // No progress line or note on stderr in a pipe.
    let err = env.larder().arg("stats").output().unwrap().stderr;
    assert!(err.is_empty(), "{}", String::from_utf8_lossy(&err));
}

#[test]
fn runs_beside_an_exclusive_lock_and_takes_none() {
    let env = Env::init();
    env.snapshot("db", &random_bytes(9, 10_000), &[]);
    let b = Arc::new(LocalBackend::open(&env.repo));
    let pw = Password::new(PASSWORD.as_bytes().to_vec());
    let repo = Repo::open(b, &pw, &env.path("lib-cache")).expect("open repository");
    let now = jiff::Timestamp::now();
    let body = LockBody {
        kind: LockKind::Exclusive,
        host: "other-host".into(),
        pid: 1,
        command: "planted".into(),
        created: now,
        refreshed: now,
        nonce: "0123456789abcdef".into(),
    };
    object::store_lock(repo.backend().as_ref(), repo.keys(), &body).expect("plant a lock");
    let s = stats(&env, &["--unused"]);
    assert_eq!(u(&s["repository"], "snapshots"), 1);
    assert_eq!(env.objects("locks").len(), 1, "stats left a lock behind");
}
