//! Damaged repositories: bytes flipped, objects truncated or deleted, a backup killed.
//! larder must fail with the documented exit code, name the damaged object, never panic,
//! and never leave a short restore file behind.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A repository with one snapshot of `data`; returns the env and the snapshot id.
fn repo_with(data: &[u8], init: &[&str]) -> (Env, String) {
    let env = Env::init_with(init);
    let id = env.snapshot_id("db", data, &[]);
    (env, id)
}

/// The blob entries of a pack, from `cat pack` (read before the pack is damaged).
fn pack_blobs(env: &Env, pack_id: &str) -> Vec<Value> {
    let pack = env.cat(&["pack", pack_id]);
    pack["blobs"]
        .as_array()
        .unwrap_or_else(|| panic!("cat pack has no blobs: {pack}"))
        .clone()
}

/// The entry covering byte `offset` of the pack.
fn blob_at(blobs: &[Value], offset: u64) -> &Value {
    blobs
        .iter()
        .find(|b| {
            let start = b["offset"].as_u64().expect("offset");
            let len = b["stored_len"].as_u64().expect("stored_len");
            (start..start + len).contains(&offset)
        })
        .unwrap_or_else(|| panic!("no blob covers offset {offset}: {blobs:?}"))
}

/// Runs `restore ARGS…`, expecting failure; returns the output.
fn failed_restore(env: &Env, args: &[&str]) -> std::process::Output {
    let out = env
        .larder()
        .arg("restore")
        .args(args)
        .output()
        .expect("run larder restore");
    assert!(
        !out.status.success(),
        "restore of a damaged repository succeeded"
    );
    assert_no_panic(&out.stderr);
    out
}

/// Runs `restore ARGS… -o FILE` into an empty directory expecting failure; asserts the
/// directory is still empty (no short file, no temporary left behind). Returns the output.
fn failed_restore_to_file(env: &Env, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir_in(env.tmp.path()).expect("create restore dir");
    let file = dir.path().join("restored.bin");
    let out = env
        .larder()
        .arg("restore")
        .args(args)
        .arg("-o")
        .arg(&file)
        .output()
        .expect("run larder restore -o");
    assert!(
        !out.status.success(),
        "restore -o of a damaged repository succeeded"
    );
    assert_no_panic(&out.stderr);
    assert!(!file.exists(), "a failed restore left {}", file.display());
    assert!(
        dir_names(dir.path()).is_empty(),
        "a failed restore left files: {:?}",
        dir_names(dir.path())
    );
    out
}

/// Asserts that what a failed restore wrote to stdout is a strict prefix of the stream:
/// nothing unverified, nothing invented.
fn assert_strict_prefix(got: &[u8], data: &[u8]) {
    assert!(
        got.len() < data.len(),
        "a failed restore wrote the whole stream"
    );
    assert!(
        data.starts_with(got),
        "a failed restore wrote bytes that are not the stream's"
    );
}

#[test]
fn flipped_byte_in_pack_fails_restore_with_14_naming_pack_and_blob() {
    let data = random_bytes(1, 300_000);
    let (env, id) = repo_with(&data, &[]);
    let pack = env.only_object("packs");
    let pack_id = file_name(&pack);
    let blobs = pack_blobs(&env, &pack_id);
    let blob_id = id_of(blob_at(&blobs, 100));
    flip_byte(&pack, 100);

    let out = failed_restore(&env, &[&id]);
    assert_failure(&out, 14, &[&pack_id, &blob_id, "corrupt"]);
    assert_strict_prefix(&out.stdout, &data);

    let out = failed_restore_to_file(&env, &[&id]);
    assert_failure(&out, 14, &[&pack_id, &blob_id]);

    // An existing file is left as it was, not replaced by a short one.
    let existing = env.path("existing.bin");
    std::fs::write(&existing, b"yesterday's restore").expect("write existing file");
    let out = env
        .larder()
        .arg("restore")
        .arg(&id)
        .arg("-o")
        .arg(&existing)
        .output()
        .expect("run larder restore -o");
    assert_failure(&out, 14, &[&pack_id]);
    assert_eq!(
        std::fs::read(&existing).expect("read existing"),
        b"yesterday's restore"
    );
}

#[test]
fn flipped_byte_in_content_list_fails_restore_with_14_naming_it() {
    let data = text_bytes(2, 200_000);
    let (env, id) = repo_with(&data, &[]);
    let pack = env.only_object("packs");
    let pack_id = file_name(&pack);
    let blobs = pack_blobs(&env, &pack_id);
    let list = blobs
        .iter()
        .find(|b| b["kind"] == "content_list")
        .unwrap_or_else(|| panic!("no content list blob in the pack: {blobs:?}"));
    let list_id = id_of(list);
    let offset = list["offset"].as_u64().expect("offset") + 30;
    flip_byte(&pack, usize::try_from(offset).expect("offset fits"));

    let out = failed_restore(&env, &[&id]);
    assert_failure(&out, 14, &[&pack_id, &list_id]);
    assert!(
        out.stdout.is_empty(),
        "restore wrote data it could not place"
    );
    let out = failed_restore_to_file(&env, &["latest"]);
    assert_failure(&out, 14, &[&list_id]);
}

#[test]
fn truncated_pack_fails_restore_without_panic() {
    let data = random_bytes(3, 300_000);
    let (env, id) = repo_with(&data, &[]);
    let pack = env.only_object("packs");
    let pack_id = file_name(&pack);
    let len = std::fs::metadata(&pack).expect("stat pack").len();
    truncate(&pack, len / 2);

    let out = failed_restore(&env, &[&id]);
    let code = out.status.code();
    assert!(matches!(code, Some(1 | 14)), "exit {code:?}");
    let err = assert_failure(&out, code.unwrap_or_default(), &[&pack_id]);
    assert!(!err.contains("wrong password"), "{err}");
    assert_strict_prefix(&out.stdout, &data);
    failed_restore_to_file(&env, &[&id]);
}

#[test]
fn deleted_pack_fails_restore_naming_the_pack() {
    let data = text_bytes(4, 300_000);
    let (env, id) = repo_with(&data, &[]);
    let pack = env.only_object("packs");
    let pack_id = file_name(&pack);
    std::fs::remove_file(&pack).expect("delete pack");

    let out = failed_restore(&env, &[&id]);
    let code = out.status.code();
    assert!(matches!(code, Some(1 | 14)), "exit {code:?}");
    assert_failure(&out, code.unwrap_or_default(), &[&pack_id]);
    assert!(out.stdout.is_empty());
    let out = failed_restore_to_file(&env, &[&id]);
    assert_failure(&out, code.unwrap_or_default(), &[&pack_id]);
    // Listing does not need the pack.
    assert_eq!(env.snapshot_ids(), [id]);
}

#[test]
fn corrupt_index_segment_fails_open_with_14_naming_it() {
    let (env, id) = repo_with(&text_bytes(5, 200_000), &[]);
    let segment = env.only_object("index");
    let name = format!("index/{}", file_name(&segment));
    let len = std::fs::metadata(&segment).expect("stat segment").len();
    flip_byte(&segment, usize::try_from(len / 2).expect("fits"));
    env.drop_catalog();

    let out = env.larder().arg("snapshots").output().expect("run larder");
    assert_failure(&out, 14, &[&name]);
    let out = failed_restore(&env, &[&id]);
    assert_failure(&out, 14, &[&name]);
    assert!(out.stdout.is_empty());
}

#[test]
fn truncated_index_segment_fails_open_with_14_naming_it() {
    let (env, _) = repo_with(&text_bytes(6, 200_000), &[]);
    let segment = env.only_object("index");
    let name = format!("index/{}", file_name(&segment));
    for len in [20, 5, 0] {
        truncate(&segment, len);
        if env.cache.exists() {
            env.drop_catalog();
        }
        let out = env.larder().arg("snapshots").output().expect("run larder");
        assert_failure(&out, 14, &[&name]);
    }
}

#[test]
fn corrupt_snapshot_object_fails_open_with_14_naming_it() {
    let (env, id) = repo_with(&text_bytes(7, 100_000), &[]);
    let snap = env.only_object("snapshots");
    assert_eq!(file_name(&snap), id);
    let len = std::fs::metadata(&snap).expect("stat snapshot").len();
    flip_byte(&snap, usize::try_from(len - 5).expect("fits"));

    // With the catalog intact the listing comes from the cache, but reading the object
    // itself fails.
    let out = env
        .larder()
        .args(["cat", "snapshot", &id])
        .output()
        .expect("run larder");
    assert_failure(&out, 14, &[&format!("snapshots/{id}")]);

    env.drop_catalog();
    let out = env.larder().arg("snapshots").output().expect("run larder");
    assert_failure(&out, 14, &[&format!("snapshots/{id}")]);
    let out = failed_restore(&env, &["latest"]);
    assert_failure(&out, 14, &[&format!("snapshots/{id}")]);
}

#[test]
fn corrupt_config_fails_without_panic() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    let config = env.repo.join("config");
    let original = std::fs::read(&config).expect("read config");
    let n = original.len();
    // Layout: magic (8) ‖ version (2) ‖ repository id (32) ‖ sealed body.
    let mut cases: Vec<(String, Vec<u8>, Option<i32>)> = Vec::new();
    for (what, at, code) in [
        ("magic", 0, Some(14)),
        ("version", 8, Some(14)),
        ("repository id", 20, None),
        ("sealed body", 60, Some(14)),
        ("tag", n - 1, Some(14)),
    ] {
        let mut b = original.clone();
        b[at] ^= 0xff;
        cases.push((format!("byte {at} ({what}) flipped"), b, code));
    }
    for len in [n - 1, 42, 30, 9, 0] {
        cases.push((
            format!("truncated to {len}"),
            original[..len].to_vec(),
            None,
        ));
    }
    for (what, bytes, code) in cases {
        std::fs::write(&config, &bytes).expect("write damaged config");
        let out = env.larder().arg("snapshots").output().expect("run larder");
        assert!(!out.status.success(), "config {what}: snapshots succeeded");
        assert_no_panic(&out.stderr);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_error_line(&err);
        if let Some(code) = code {
            assert_eq!(out.status.code(), Some(code), "config {what}: {err}");
            assert!(err.contains("config"), "config {what}: {err}");
        }
    }
    std::fs::write(&config, &original).expect("restore config");
    assert_eq!(env.restore(&["latest"]), b"data");
}

#[test]
fn killed_snapshot_leaves_repository_usable() {
    // Small packs so that some are uploaded before the kill.
    let (env, first) = repo_with(b"the first snapshot", &["--pack-size", "1M"]);
    let data = random_bytes(8, 24 << 20);
    let mut child = env
        .std_larder()
        .args(["snapshot", "--name", "db", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn larder");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        // Once 8 MiB went into the pipe, larder has read (and chunked) most of it.
        stdin.write_all(&data[..8 << 20]).expect("feed larder");
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while env.objects("packs").is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        child.kill().expect("kill larder");
        child.wait().expect("reap larder");
    }
    assert_eq!(
        env.snapshot_ids(),
        std::slice::from_ref(&first),
        "the killed snapshot was listed"
    );
    assert_eq!(env.restore(&[&first]), b"the first snapshot");

    // A retry succeeds and restores, with or without the old catalog.
    let retry = env.snapshot_id("db", &data, &[]);
    assert_same_bytes(&env.restore(&[&retry]), &data, "retry");
    env.drop_catalog();
    assert_eq!(env.snapshot_ids().len(), 2);
    assert_same_bytes(
        &env.restore(&["--name", "db"]),
        &data,
        "retry, fresh catalog",
    );
}

#[test]
fn corrupt_first_blob_of_long_stream_fails_with_14_without_hanging() {
    // Small chunks: thousands of chunks in a few MiB, like any multi-gigabyte dump.
    let data = random_bytes(9, 4 << 20);
    let (env, id) = repo_with(
        &data,
        &[
            "--chunk-min",
            "256",
            "--chunk-avg",
            "1K",
            "--chunk-max",
            "4K",
        ],
    );
    let pack = env.only_object("packs");
    let pack_id = file_name(&pack);
    flip_byte(&pack, 100);
    let out = env
        .larder()
        .timeout(Duration::from_secs(30))
        .arg("restore")
        .arg(&id)
        .output()
        .expect("run larder restore");
    assert!(
        out.status.code().is_some(),
        "restore hung and was killed: {out:?}"
    );
    assert_failure(&out, 14, &[&pack_id]);
}
