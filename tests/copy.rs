//! End-to-end tests of `larder copy`: snapshots from one repository into another, re-chunked
//! when the chunkers differ and moved blob by blob when they share a chunk identity
//! (`init --copy-chunker-params`); idempotent, resumable after a kill, with one-line errors.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;
#[path = "common/tree.rs"]
mod fixture;

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use common::*;
use fixture::*;
use serde_json::Value;

/// `larder --json copy --from SRC ARGS…` run on `dst`; the output.
fn copy(dst: &Env, src: &Env, args: &[&str]) -> Output {
    dst.larder()
        .args(["--json", "copy", "--from"])
        .arg(&src.repo)
        .args(args)
        .output()
        .expect("run larder copy")
}

/// [`copy`], asserting exit 0; the report.
fn copy_ok(dst: &Env, src: &Env, args: &[&str]) -> Value {
    let out = copy(dst, src, args);
    assert_success(&out, "copy");
    parse_json(&out.stdout)
}

fn ids(v: &Value, field: &str, key: &str) -> Vec<String> {
    v[field]
        .as_array()
        .unwrap_or_else(|| panic!("no {field} array: {v}"))
        .iter()
        .map(|e| {
            if key.is_empty() {
                e.as_str().expect("id string").to_owned()
            } else {
                e[key].as_str().expect("id string").to_owned()
            }
        })
        .collect()
}

/// `snapshots --json` of `env`: (id, original) pairs.
fn originals(env: &Env) -> Vec<(String, Option<String>)> {
    env.snapshots(&[])
        .as_array()
        .expect("snapshots array")
        .iter()
        .map(|s| {
            (
                id_of(s),
                s["snapshot"]["original"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

fn check_read_data(env: &Env) {
    let out = env
        .larder()
        .args(["check", "--read-data"])
        .output()
        .expect("run check");
    assert_success(&out, "check --read-data");
}

#[test]
fn copy_rechunks_into_a_repository_with_other_chunk_sizes_and_is_idempotent() {
    let src = Env::init();
    let dst = Env::init_with(&[
        "--chunk-min",
        "2K",
        "--chunk-avg",
        "8K",
        "--chunk-max",
        "64K",
    ]);

    let one = random_bytes(1, 3 << 20);
    let mut two = one.clone();
    two.splice(1_000_000..1_000_000, random_bytes(2, 5000));
    let s1 = src.snapshot_id("db", &one, &[]);
    let s2 = src.snapshot_id("db", &two, &[]);
    let fx = Fixture::build(&src.path("data"));
    let s3 = id_of(&src.snapshot_paths("files", &[&fx.root]));

    // A dry run lists what would be copied and writes nothing.
    let dry = copy_ok(&dst, &src, &["--dry-run"]);
    assert_eq!(
        ids(&dry, "would_copy", ""),
        [s1.clone(), s2.clone(), s3.clone()]
    );
    assert!(ids(&dry, "copied", "id").is_empty(), "{dry}");
    assert!(dst.objects("packs").is_empty());
    assert!(dst.snapshot_ids().is_empty());

    let r = copy_ok(&dst, &src, &[]);
    assert_eq!(r["method"], "rechunk", "{r}");
    assert_eq!(
        ids(&r, "copied", "source"),
        [s1.clone(), s2.clone(), s3.clone()]
    );
    assert!(ids(&r, "present", "source").is_empty(), "{r}");
    assert!(r["to_requests"]["put"].as_u64().unwrap() > 0, "{r}");
    assert!(r["from_requests"]["get"].as_u64().unwrap() > 0, "{r}");

    // Every copy names its original; the bytes and the tree come back whole.
    let copies = ids(&r, "copied", "id");
    let held = originals(&dst);
    for (c, s) in copies.iter().zip([&s1, &s2, &s3]) {
        assert!(held.contains(&(c.clone(), Some(s.clone()))), "{held:?}");
    }
    assert_same_bytes(&dst.restore(&[&copies[0][..8]]), &one, "first copy");
    assert_same_bytes(&dst.restore(&[&copies[1][..8]]), &two, "second copy");
    let target = dst.path("restored");
    let out = dst
        .larder()
        .args(["restore", &copies[2][..8], "--target"])
        .arg(&target)
        .output()
        .expect("run restore");
    assert_success(&out, "restore --target");
    assert_same_tree(&fx.root, &under(&target, &fx.root), &fx.expect());
    check_read_data(&dst);

    // Again: nothing to do, nothing written but the lock.
    let again = copy_ok(&dst, &src, &[]);
    assert!(ids(&again, "copied", "id").is_empty(), "{again}");
    assert_eq!(ids(&again, "present", "id"), copies);
    assert_eq!(again["bytes_added"], 0);
    assert_eq!(again["to_requests"]["put"], 1, "only the lock: {again}");
    assert_eq!(originals(&dst).len(), 3);

    // And back: the source holds every original already.
    let back = copy_ok(&src, &dst, &[]);
    assert!(ids(&back, "copied", "id").is_empty(), "{back}");
    assert_eq!(
        ids(&back, "present", "id"),
        [s1.clone(), s2.clone(), s3.clone()]
    );
}

#[test]
fn with_a_shared_chunk_identity_only_missing_blobs_move() {
    let src = Env::init();
    let dst = Env::new();
    let out = dst
        .larder()
        .args(["--json", "init", "--copy-chunker-params", "--from"])
        .arg(&src.repo)
        .args(FAST_KDF)
        .output()
        .expect("run init");
    assert_success(&out, "init --copy-chunker-params");
    assert_eq!(parse_json(&out.stdout)["shared_chunk_identity"], true);

    let one = random_bytes(3, 4 << 20);
    let s1 = src.snapshot_id("db", &one, &[]);
    src.snapshot_id("other", b"another series", &[]);
    let first = copy_ok(&dst, &src, &["--name", "db"]);
    assert_eq!(first["method"], "blobs", "{first}");
    assert_eq!(ids(&first, "copied", "source"), std::slice::from_ref(&s1));
    let full = first["bytes_added"].as_u64().unwrap();
    assert!(full > 4 << 20, "{first}");

    // A small change: only its chunks are read from the source and stored.
    let mut two = one.clone();
    two[2_000_000..2_000_100].copy_from_slice(&random_bytes(4, 100));
    let s2 = src.snapshot_id("db", &two, &[]);
    let second = copy_ok(&dst, &src, &["--name", "db"]);
    assert_eq!(ids(&second, "copied", "source"), std::slice::from_ref(&s2));
    let added = second["bytes_added"].as_u64().unwrap();
    let read = second["from_requests"]["bytes_down"].as_u64().unwrap();
    assert!(added < full / 20, "added {added} of {full}: {second}");
    assert!(read < full / 10, "read {read} of {full}: {second}");
    let c2 = ids(&second, "copied", "id");
    assert_same_bytes(&dst.restore(&[&c2[0][..8]]), &two, "second copy");
    // The series not asked for stayed behind.
    assert_eq!(originals(&dst).len(), 2);
    check_read_data(&dst);

    // Blobs moved by id or cut again, the destination's snapshots restore the same bytes.
    let re = Env::init();
    let r = copy_ok(&re, &src, &["--rechunk", &s2[..8]]);
    assert_eq!(r["method"], "rechunk");
    let c = ids(&r, "copied", "id");
    assert_same_bytes(&re.restore(&[&c[0][..8]]), &two, "re-chunked copy");
}

#[test]
fn a_copy_killed_midway_leaves_no_snapshot_and_the_next_run_completes() {
    let src = Env::init();
    let data = random_bytes(5, 24 << 20);
    let s = src.snapshot_id("db", &data, &[]);
    let dst = Env::init_with(&["--pack-size", "1M"]);

    let mut child = dst
        .std_larder()
        .args(["copy", "--from"])
        .arg(&src.repo)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn copy");
    // Kill it once a few packs are stored, before it can finish.
    let start = Instant::now();
    while dst.objects("packs").len() < 4 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "copy stored no packs"
        );
        if child.try_wait().expect("poll copy").is_some() {
            panic!("copy finished before it could be killed; use more data");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("kill copy");
    child.wait().expect("reap copy");
    assert!(
        dst.snapshot_ids().is_empty(),
        "a killed copy left a snapshot"
    );
    let out = dst.larder().arg("check").output().expect("run check");
    assert_success(&out, "check after a killed copy");

    // The lock it left is stale (its process is gone): the next run takes over.
    let r = copy_ok(&dst, &src, &[]);
    assert_eq!(ids(&r, "copied", "source"), std::slice::from_ref(&s));
    let c = ids(&r, "copied", "id");
    assert_same_bytes(&dst.restore(&[&c[0][..8]]), &data, "resumed copy");
    check_read_data(&dst);
}

#[test]
fn copy_errors_are_one_line_with_their_exit_codes() {
    let src = Env::init();
    src.snapshot_id("db", b"some bytes", &[]);
    let dst = Env::init();

    // No source.
    let out = dst.larder().arg("copy").output().unwrap();
    assert_failure(&out, 2, &["--from"]);
    // The same repository twice.
    let out = copy(&src, &src, &[]);
    assert_failure(&out, 2, &["same repository"]);
    // A source that is not there.
    let out = dst
        .larder()
        .args(["copy", "--from"])
        .arg(dst.path("nowhere"))
        .output()
        .unwrap();
    assert_failure(&out, 10, &["nowhere"]);
    // The source's own password, wrong.
    let pw = dst.path("from-password");
    std::fs::write(&pw, "not the password\n").unwrap();
    let out = dst
        .larder()
        .args(["copy", "--from"])
        .arg(&src.repo)
        .arg("--from-password-file")
        .arg(&pw)
        .output()
        .unwrap();
    assert_failure(&out, 12, &["password"]);
    // A snapshot id the source does not have.
    let out = copy(&dst, &src, &["abcdef12"]);
    assert_failure(&out, 2, &["abcdef12"]);
    // init --copy-chunker-params needs --from, and takes no chunk sizes beside it (clap's
    // usage message, exit 2).
    let fresh = Env::new();
    let from = src.repo.to_str().expect("UTF-8 temp path");
    for (args, flag) in [
        (vec!["--copy-chunker-params"], "--from"),
        (
            vec!["--copy-chunker-params", "--chunk-avg", "8K", "--from", from],
            "--chunk-avg",
        ),
    ] {
        let out = fresh
            .larder()
            .arg("init")
            .args(&args)
            .args(FAST_KDF)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "init {args:?}: {out:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(flag),
            "{out:?}"
        );
        assert_no_panic(&out.stderr);
        assert!(!fresh.repo.join("config").exists());
    }

    // With its own password given, a source with another password opens.
    let other = Env::new();
    other
        .larder()
        .env("LARDER_PASSWORD", "another password")
        .arg("init")
        .args(FAST_KDF)
        .assert()
        .success();
    other
        .larder()
        .env("LARDER_PASSWORD", "another password")
        .args(["snapshot", "--name", "x", "--stdin"])
        .write_stdin(b"x".to_vec())
        .assert()
        .success();
    let r = dst
        .larder()
        .args(["--json", "copy", "--from"])
        .arg(&other.repo)
        .env("LARDER_FROM_PASSWORD", "another password")
        .output()
        .unwrap();
    assert_success(&r, "copy with LARDER_FROM_PASSWORD");
    assert_eq!(ids(&parse_json(&r.stdout), "copied", "id").len(), 1);
    assert!(Path::new(&other.repo).exists());
}
