//! End-to-end tests of the `larder` binary: real processes, real pipes, temporary
//! repositories. Damaged repositories are in `damage.rs`.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::process::Stdio;

use common::*;
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// The repository's chunk sizes (min, avg, max), from `cat config`.
fn chunk_sizes(env: &Env) -> (usize, usize, usize) {
    let c = env.cat(&["config"]);
    let get = |f: &str| {
        c["chunker"][f]
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or_else(|| panic!("no chunker.{f} in {c}"))
    };
    let sizes = (get("min_size"), get("avg_size"), get("max_size"));
    assert!(sizes.0 < sizes.1 && sizes.1 < sizes.2, "{sizes:?}");
    sizes
}

/// Snapshots `data`, checks the report's sizes, and restores it by id to stdout and with
/// `-o FILE`; both must be byte-identical. Returns the report.
fn assert_round_trip(env: &Env, name: &str, data: &[u8]) -> Value {
    let report = env.snapshot(name, data, &[]);
    // A stream cut coarse says so (chunker.md, "Coarse chunking").
    let (min, max) = match &report["snapshot"]["chunker"] {
        Value::Null => {
            let (min, _, max) = chunk_sizes(env);
            (min as u64, max as u64)
        }
        c => {
            let get = |f: &str| c[f].as_u64().unwrap_or_else(|| panic!("no {f} in {c}"));
            (get("min_size"), get("max_size"))
        }
    };
    let id = id_of(&report);
    let len = data.len() as u64;
    assert_eq!(stat(&report, "bytes_read"), len, "bytes_read");
    assert_eq!(report["snapshot"]["root"]["size"], json!(len), "root size");
    let chunks = stat(&report, "chunks");
    // Every chunk is at most `max`, and all but the last at least `min`.
    assert!(
        chunks >= len.div_ceil(max),
        "{chunks} chunks for {len} bytes"
    );
    assert!(chunks <= len / min + 1, "{chunks} chunks for {len} bytes");
    assert_same_bytes(&env.restore(&[&id]), data, "restore to stdout");
    assert_same_bytes(&env.restore_to_file(&[&id]), data, "restore -o FILE");
    report
}

#[test]
fn empty_stream_round_trips() {
    let env = Env::init();
    let report = assert_round_trip(&env, "empty", b"");
    assert_eq!(stat(&report, "chunks"), 0);
    assert_eq!(stat(&report, "new_chunks"), 0);
    // And a second empty snapshot still restores (and as `latest`).
    let again = env.snapshot("empty", b"", &[]);
    assert_eq!(stat(&again, "new_chunks"), 0);
    assert!(env.restore(&["latest"]).is_empty());
}

#[test]
fn one_byte_stream_round_trips() {
    let env = Env::init();
    let report = assert_round_trip(&env, "one", b"x");
    assert_eq!(stat(&report, "chunks"), 1);
    assert_eq!(stat(&report, "new_chunks"), 1);
}

#[test]
fn stream_of_exactly_min_chunk_size_round_trips() {
    let env = Env::init();
    let (min, _, _) = chunk_sizes(&env);
    for (seed, len) in [(1, min), (2, min - 1)] {
        let report = assert_round_trip(&env, "min", &random_bytes(seed, len));
        assert_eq!(stat(&report, "chunks"), 1, "{len} bytes: {report}");
    }
}

#[test]
fn stream_of_exactly_avg_chunk_size_round_trips() {
    let env = Env::init();
    let (_, avg, _) = chunk_sizes(&env);
    assert_round_trip(&env, "avg", &random_bytes(3, avg));
    assert_round_trip(&env, "avg-text", &text_bytes(4, avg));
}

#[test]
fn stream_of_exactly_max_chunk_size_round_trips() {
    let env = Env::init();
    let (_, _, max) = chunk_sizes(&env);
    assert_round_trip(&env, "max", &random_bytes(5, max));
    assert_round_trip(&env, "max-1", &random_bytes(6, max - 1));
    // All zeros: no content-defined boundary, so exactly one max-size chunk.
    let report = assert_round_trip(&env, "max-zeros", &vec![0u8; max]);
    assert_eq!(stat(&report, "chunks"), 1, "{report}");
}

#[test]
fn stream_one_byte_over_max_chunk_size_round_trips() {
    let env = Env::init();
    let (_, _, max) = chunk_sizes(&env);
    let report = assert_round_trip(&env, "max+1", &random_bytes(7, max + 1));
    assert!(stat(&report, "chunks") >= 2);
    let zeros = assert_round_trip(&env, "max+1-zeros", &vec![0u8; max + 1]);
    assert_eq!(
        stat(&zeros, "chunks"),
        2,
        "a max-size chunk and a 1-byte tail: {zeros}"
    );
}

#[test]
fn streams_of_2k_8k_64k_bytes_round_trip_with_2k_8k_64k_chunking() {
    // Exactly min, avg and max (and one past either end) of a 2K/8K/64K repository.
    let env = Env::init_with(&[
        "--chunk-min",
        "2K",
        "--chunk-avg",
        "8K",
        "--chunk-max",
        "64K",
    ]);
    assert_eq!(chunk_sizes(&env), (2048, 8192, 65536));
    for len in [2047, 2048, 8192, 65536, 65537] {
        let report = assert_round_trip(&env, "sizes", &random_bytes(len as u64, len));
        if len <= 2048 {
            assert_eq!(stat(&report, "chunks"), 1, "{len} bytes: {report}");
        }
    }
    let zeros = assert_round_trip(&env, "zeros", &[0u8; 65537]);
    assert_eq!(stat(&zeros, "chunks"), 2, "{zeros}");
}

/// About 40 MB: random, text, runs of zeros and repeats of earlier blocks, interleaved.
fn large_mixed_stream() -> Vec<u8> {
    const BLOCK: usize = 1 << 20;
    let mut out = Vec::with_capacity(40_000_000);
    let mut i = 0usize;
    while out.len() < 40_000_000 - BLOCK {
        match i % 5 {
            0 | 3 => out.extend_from_slice(&random_bytes(1000 + i as u64, BLOCK + i * 37)),
            1 => out.extend_from_slice(&text_bytes(1000 + i as u64, BLOCK - i * 11)),
            2 => out.extend(std::iter::repeat_n(0u8, BLOCK / 4 + 3)),
            _ => {
                let from = out.len() / 3;
                let again = out[from..from + BLOCK / 2].to_vec();
                out.extend_from_slice(&again);
            }
        }
        i += 1;
    }
    out.extend_from_slice(&text_bytes(7, 40_000_000 - out.len()));
    out
}

#[test]
fn large_mixed_stream_round_trips() {
    let env = Env::init();
    let data = large_mixed_stream();
    assert_eq!(data.len(), 40_000_000);
    let report = assert_round_trip(&env, "large", &data);
    assert!(
        stat(&report, "new_chunks") < stat(&report, "chunks"),
        "repeated blocks and zero runs were not deduplicated within the stream: {report}"
    );
}

// ---------------------------------------------------------------------------------------
// Deduplication
// ---------------------------------------------------------------------------------------

#[test]
fn edited_stream_stores_only_changed_chunks_and_identical_stream_none() {
    let env = Env::init();
    let a = text_bytes(42, 8 << 20);
    let ra = env.snapshot("db", &a, &[]);
    let id_a = id_of(&ra);
    assert_eq!(stat(&ra, "new_chunks"), stat(&ra, "chunks"));

    // B: an insertion in the middle, a deletion further on, and an append.
    let mut b = Vec::with_capacity(a.len() + 20_000);
    b.extend_from_slice(&a[..3_000_000]);
    b.extend_from_slice(&text_bytes(1001, 1_500));
    b.extend_from_slice(&a[3_000_000..5_500_000]);
    b.extend_from_slice(&a[5_500_700..]);
    b.extend_from_slice(&text_bytes(1002, 10_000));
    let rb = env.snapshot("db", &b, &[]);
    let id_b = id_of(&rb);
    let (new, raw) = (stat(&rb, "new_chunks"), stat(&rb, "raw_bytes_added"));
    assert!(new <= 12, "edited stream stored {new} new chunks: {rb}");
    assert!(
        raw <= 300 * 1024,
        "edited stream added {raw} raw bytes: {rb}"
    );
    assert!(stat(&rb, "chunks") > 500);

    // A again: nothing new at all.
    let ra2 = env.snapshot("db", &a, &[]);
    assert_eq!(stat(&ra2, "new_chunks"), 0, "identical stream: {ra2}");
    assert_eq!(stat(&ra2, "chunks"), stat(&ra, "chunks"));
    assert_eq!(
        stat(&ra2, "bytes_added"),
        0,
        "identical stream stored data: {ra2}"
    );
    assert_ne!(id_of(&ra2), id_a, "a second snapshot is a new object");

    assert_same_bytes(&env.restore(&[&id_a]), &a, "restore A");
    assert_same_bytes(&env.restore(&[&id_b]), &b, "restore B");
    assert_same_bytes(&env.restore(&[&id_of(&ra2)]), &a, "restore A again");
}

// ---------------------------------------------------------------------------------------
// Passwords and repository location
// ---------------------------------------------------------------------------------------

#[test]
fn wrong_password_exits_12() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    for args in [
        vec!["snapshots"],
        vec!["restore", "latest"],
        vec!["cat", "config"],
    ] {
        let out = env
            .larder()
            .env("LARDER_PASSWORD", "not the password")
            .args(&args)
            .output()
            .expect("run larder");
        assert_failure(&out, 12, &["wrong password"]);
        assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
    }
}

#[test]
fn missing_repository_exits_10() {
    let env = Env::new();
    let out = env.larder().arg("snapshots").output().expect("run larder");
    assert_failure(
        &out,
        10,
        &["no repository at", &env.repo.display().to_string()],
    );
    // An existing but empty directory is not a repository either.
    std::fs::create_dir(&env.repo).expect("mkdir");
    let out = env
        .larder()
        .args(["restore", "latest"])
        .output()
        .expect("run larder");
    assert_failure(&out, 10, &["no repository at"]);
    let out = env
        .larder()
        .args(["snapshot", "--name", "x", "--stdin"])
        .write_stdin("x")
        .output()
        .expect("run larder");
    assert_failure(&out, 10, &["no repository at"]);
}

#[test]
fn no_password_without_terminal_is_refused() {
    let env = Env::init();
    let out = env
        .larder()
        .env_remove("LARDER_PASSWORD")
        .arg("snapshots")
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["no password given", "LARDER_PASSWORD"]);
    // init without a password creates nothing.
    let fresh = Env::new();
    let out = fresh
        .larder()
        .env_remove("LARDER_PASSWORD")
        .arg("init")
        .args(FAST_KDF)
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["no password given"]);
    assert!(!fresh.repo.join("config").exists());
}

#[test]
fn password_file_and_password_command_open_the_repository() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    let file = env.path("pw.txt");
    std::fs::write(&file, format!("{PASSWORD}\nsecond line ignored\n")).expect("write pw file");
    let out = env
        .larder()
        .env_remove("LARDER_PASSWORD")
        .env("LARDER_PASSWORD_FILE", &file)
        .args(["restore", "latest"])
        .output()
        .expect("run larder");
    assert_success(&out, "restore with password file");
    assert_eq!(out.stdout, b"data");

    let out = env
        .larder()
        .env_remove("LARDER_PASSWORD")
        .arg("--password-command")
        .arg(format!("printf '%s\\n' '{PASSWORD}'"))
        .args(["restore", "latest"])
        .output()
        .expect("run larder");
    assert_success(&out, "restore with password command");
    assert_eq!(out.stdout, b"data");

    let out = env
        .larder()
        .env_remove("LARDER_PASSWORD")
        .args(["--password-command", "exit 3", "snapshots"])
        .output()
        .expect("run larder");
    let err = assert_failure(&out, 1, &["password command", "exited with status 3"]);
    assert!(!err.contains("wrong password"), "{err}");
}

// ---------------------------------------------------------------------------------------
// Producer mode
// ---------------------------------------------------------------------------------------

#[test]
fn producer_failing_after_output_exits_13_and_keeps_a_quarantined_snapshot() {
    let env = Env::init();
    env.snapshot("earlier", b"an earlier snapshot", &[]);
    let before = env.snapshots(&[]);
    let dump = env.path("dump.sql");
    let data = text_bytes(13, 3 << 20); // more than one 2 MiB read batch
    std::fs::write(&dump, &data).expect("write dump");
    let script = r#"cat "$1"; exit 1"#;
    let out = env
        .larder()
        .args(["snapshot", "--name", "db", "--", "sh", "-c", script, "sh"])
        .arg(&dump)
        .output()
        .expect("run larder");
    assert_failure(
        &out,
        13,
        &[
            script,
            "exited with status 1",
            "QUARANTINED",
            "not a good backup",
        ],
    );
    // Kept for inspection, marked; `latest` and retention pass over it.
    let after = env.snapshots(&[]);
    let (after, before) = (after.as_array().unwrap(), before.as_array().unwrap());
    assert_eq!(after.len(), before.len() + 1);
    let kept = &after[after.len() - 1]["snapshot"];
    assert_eq!(kept["quarantined"]["check"], "producer", "{kept}");
    assert_eq!(kept["producer_status"]["code"], 1, "{kept}");
    let latest = env
        .larder()
        .args(["restore", "--name", "db"])
        .output()
        .expect("run larder");
    assert_failure(&latest, 2, &["no snapshot"]);

    // The data read before the failure was indexed: a successful retry stores nothing new.
    let retry = env
        .larder()
        .args([
            "--json",
            "snapshot",
            "--name",
            "db",
            "--",
            "sh",
            "-c",
            r#"cat "$1""#,
            "sh",
        ])
        .arg(&dump)
        .output()
        .expect("run larder");
    assert_success(&retry, "retry");
    let report = parse_json(&retry.stdout);
    assert_eq!(
        stat(&report, "new_chunks"),
        0,
        "retry stored chunks again: {report}"
    );
    assert_same_bytes(&env.restore(&["--name", "db"]), &data, "retry restore");
}

#[test]
fn producer_killed_by_signal_exits_13() {
    let env = Env::init();
    let out = env
        .larder()
        .args([
            "snapshot",
            "--name",
            "db",
            "--",
            "sh",
            "-c",
            "echo partial; kill -9 $$",
        ])
        .output()
        .expect("run larder");
    assert_failure(
        &out,
        13,
        &["kill -9 $$", "killed by signal 9", "QUARANTINED"],
    );
    let listed = env.snapshots(&[]);
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        listed[0]["snapshot"]["producer_status"],
        serde_json::json!({"state": "killed", "signal": 9})
    );

    // A producer that fails before writing a byte leaves nothing to keep.
    let out = env
        .larder()
        .args(["snapshot", "--name", "db2", "--", "sh", "-c", "exit 4"])
        .output()
        .expect("run larder");
    assert_failure(&out, 13, &["exited with status 4", "no snapshot written"]);
    assert_eq!(env.snapshots(&[]).as_array().unwrap().len(), 1);
}

#[test]
fn missing_producer_command_exits_13() {
    let env = Env::init();
    let out = env
        .larder()
        .args([
            "snapshot",
            "--name",
            "db",
            "--",
            "/nonexistent/pg_dump",
            "--all",
        ])
        .output()
        .expect("run larder");
    assert_failure(
        &out,
        13,
        &["cannot start source command", "/nonexistent/pg_dump --all"],
    );
    assert!(env.snapshot_ids().is_empty());
}

#[test]
fn producer_success_records_exit_status_and_argv() {
    let env = Env::init();
    let dump = env.path("dump.sql");
    let data = text_bytes(14, 300_000);
    std::fs::write(&dump, &data).expect("write dump");
    let dump_s = dump.display().to_string();
    let argv = [
        "sh",
        "-c",
        r#"cat "$1"; echo "dump done" >&2"#,
        "sh",
        dump_s.as_str(),
    ];
    let out = env
        .larder()
        .args([
            "--json", "snapshot", "--name", "db", "--tag", "nightly", "--",
        ])
        .args(argv)
        .output()
        .expect("run larder");
    assert_success(&out, "producer snapshot");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("dump done"),
        "the producer's stderr is passed through"
    );
    let report = parse_json(&out.stdout);
    let snap = &report["snapshot"];
    assert_eq!(
        snap["producer_status"],
        json!({"state": "exited", "code": 0})
    );
    assert_eq!(snap["source"], json!({"kind": "command", "argv": argv}));
    assert_eq!(snap["tags"], json!(["nightly"]));
    assert_eq!(stat(&report, "bytes_read"), data.len() as u64);

    let listed = env.snapshots(&[]);
    assert_eq!(listed[0]["id"], report["id"]);
    assert_eq!(
        listed[0]["snapshot"]["producer_status"],
        snap["producer_status"]
    );
    assert_eq!(listed[0]["snapshot"]["source"], snap["source"]);
    assert_same_bytes(&env.restore(&["latest"]), &data, "restore");

    // Standard input: larder cannot see the producer, and says so.
    let stdin = env.snapshot("db", b"piped", &[]);
    assert_eq!(
        stdin["snapshot"]["producer_status"],
        json!({"state": "unknown"})
    );
    assert_eq!(stdin["snapshot"]["source"], json!({"kind": "stdin"}));
}

// ---------------------------------------------------------------------------------------
// The catalog is a cache
// ---------------------------------------------------------------------------------------

#[test]
fn deleted_catalog_is_rebuilt_with_identical_listing_and_restores() {
    let env = Env::init();
    let streams = [
        ("db", text_bytes(51, 400_000)),
        ("db", text_bytes(52, 200_000)),
        ("files", random_bytes(53, 150_000)),
    ];
    let ids: Vec<String> = streams
        .iter()
        .map(|(name, data)| env.snapshot_id(name, data, &[]))
        .collect();
    let catalog = env.catalog_path();
    assert!(catalog.is_file(), "no catalog at {}", catalog.display());

    let list = env.snapshots(&[]);
    let list_db = env.snapshots(&["--name", "db"]);
    let restored: Vec<Vec<u8>> = ids.iter().map(|id| env.restore(&[id])).collect();

    env.drop_catalog();
    assert_eq!(
        env.snapshots(&[]),
        list,
        "listing after the catalog was deleted"
    );
    assert!(
        catalog.is_file(),
        "catalog not recreated at {}",
        catalog.display()
    );
    assert_eq!(env.snapshots(&["--name", "db"]), list_db);

    env.drop_catalog();
    for ((id, before), (_, data)) in ids.iter().zip(&restored).zip(&streams) {
        assert_same_bytes(before, data, "restore before");
        assert_same_bytes(
            &env.restore(&[id]),
            before,
            "restore after the catalog was deleted",
        );
    }
    // New snapshots still deduplicate against the rebuilt catalog.
    let again = env.snapshot("db", &streams[0].1, &[]);
    assert_eq!(stat(&again, "new_chunks"), 0, "{again}");
}

// ---------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------

#[test]
fn two_concurrent_snapshots_into_one_repository_both_restore() {
    let env = Env::init();
    // Create the catalog first: two processes creating it at once is
    // `concurrent_first_opens_of_a_repository_both_succeed`.
    assert!(env.snapshot_ids().is_empty());
    // Shared prefix: both processes try to store the same chunks at the same time.
    let shared = text_bytes(61, 1 << 20);
    let mut one = shared.clone();
    one.extend_from_slice(&text_bytes(62, 3 << 20));
    let mut two = shared;
    two.extend_from_slice(&random_bytes(63, 3 << 20));

    let spawn = |name: &str, data: Vec<u8>| {
        let mut child = env
            .std_larder()
            .args(["--json", "snapshot", "--name", name, "--stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn larder");
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            use std::io::Write;
            stdin.write_all(&data)
        });
        (child, writer)
    };
    let (c1, w1) = spawn("one", one.clone());
    let (c2, w2) = spawn("two", two.clone());
    let o1 = wait_output(c1, "snapshot one");
    let o2 = wait_output(c2, "snapshot two");
    assert_success(&o1, "concurrent snapshot one");
    assert_success(&o2, "concurrent snapshot two");
    for w in [w1, w2] {
        w.join().expect("writer thread").expect("feed larder");
    }
    let (r1, r2) = (parse_json(&o1.stdout), parse_json(&o2.stdout));

    assert_eq!(env.snapshot_ids().len(), 2);
    assert_same_bytes(&env.restore(&[&id_of(&r1)]), &one, "restore one");
    assert_same_bytes(&env.restore(&[&id_of(&r2)]), &two, "restore two");
    env.drop_catalog();
    assert_same_bytes(
        &env.restore(&["--name", "one"]),
        &one,
        "restore one, fresh catalog",
    );
    assert_same_bytes(
        &env.restore(&["--name", "two"]),
        &two,
        "restore two, fresh catalog",
    );
}

#[test]
fn concurrent_first_opens_of_a_repository_both_succeed() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    for round in 0..10 {
        env.drop_catalog();
        let spawn = || {
            env.std_larder()
                .args(["--json", "snapshots"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn larder")
        };
        let (c1, c2) = (spawn(), spawn());
        for out in [wait_output(c1, "snapshots"), wait_output(c2, "snapshots")] {
            assert_success(&out, &format!("concurrent first open, round {round}"));
            assert_eq!(parse_json(&out.stdout).as_array().map(Vec::len), Some(1));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Selecting snapshots
// ---------------------------------------------------------------------------------------

#[test]
fn restore_selects_by_id_prefix_latest_name_host_and_time() {
    let env = Env::init();
    let a = text_bytes(71, 30_000);
    let b = text_bytes(72, 30_000);
    let c = random_bytes(73, 20_000);
    let id_a = env.snapshot_id("db", &a, &["--time", "2026-11-19 02:00", "--host", "alpha"]);
    let id_b = env.snapshot_id("db", &b, &["--time", "2026-11-20 02:00", "--host", "alpha"]);
    let id_c = env.snapshot_id("web", &c, &["--time", "2026-11-19 18:00", "--host", "beta"]);

    let cases: [(&[&str], &[u8]); 14] = [
        (&[&id_a], &a),
        (&[&id_b], &b),
        (&[&id_c], &c),
        (&[&id_b[..10]], &b),
        (&[&id_a[..10].to_uppercase()], &a),
        (&[], &b),
        (&["latest"], &b),
        (&["--name", "web"], &c),
        (&["latest", "--name", "db"], &b),
        (&["--at", "2026-11-19 12:00"], &a),
        (&["--name", "db", "--at", "2026-11-19 20:00"], &a),
        (&["--at", "2026-11-19 20:00"], &c),
        (&["--at", "2026-11-19"], &c), // a date alone means the end of that day
        (&["--host", "beta"], &c),
    ];
    for (args, want) in cases {
        assert_same_bytes(&env.restore(args), want, &format!("restore {args:?}"));
    }
    assert_same_bytes(
        &env.restore(&["--host", "alpha"]),
        &b,
        "restore --host alpha",
    );

    // The listing is oldest first and records what was given.
    let list = env.snapshots(&[]);
    let order: Vec<String> = list.as_array().expect("array").iter().map(id_of).collect();
    assert_eq!(order, [id_a.clone(), id_c.clone(), id_b.clone()]);
    assert_eq!(list[0]["snapshot"]["host"], "alpha");
    let db = env.snapshots(&["--name", "db"]);
    assert_eq!(db.as_array().map(Vec::len), Some(2));
}

#[test]
fn restore_rejects_ambiguous_unknown_and_malformed_selections() {
    let env = Env::init();
    // Snapshot ids are hashes: after at most 17 snapshots two share a first hex digit.
    let mut ids: Vec<String> = Vec::new();
    let shared_digit = loop {
        let id = env.snapshot_id("db", &random_bytes(ids.len() as u64, 100), &[]);
        let first = id[..1].to_owned();
        ids.push(id);
        if ids.iter().filter(|i| i.starts_with(&first)).count() == 2 {
            break first;
        }
        assert!(ids.len() <= 17);
    };
    let run = |args: &[&str]| {
        env.larder()
            .arg("restore")
            .args(args)
            .output()
            .expect("run larder")
    };
    assert_failure(&run(&[&shared_digit]), 2, &["ambiguous", &shared_digit]);

    let mut unknown = ids[0].clone();
    let last = if unknown.ends_with('0') { "1" } else { "0" };
    unknown.replace_range(63.., last);
    if !ids.contains(&unknown) {
        assert_failure(&run(&[&unknown]), 2, &["no snapshot matches"]);
    }
    assert_failure(&run(&["not-hex"]), 2, &["neither a snapshot id"]);
    assert_failure(
        &run(&["--name", "nope"]),
        2,
        &["no snapshot matches", "nope"],
    );
    assert_failure(
        &run(&["--at", "1999-01-01 00:00"]),
        2,
        &["no snapshot matches"],
    );
    assert_failure(&run(&["--at", "someday"]), 2, &["someday"]);
    assert!(run(&["--name", "nope"]).stdout.is_empty());
}

// ---------------------------------------------------------------------------------------
// Key slots
// ---------------------------------------------------------------------------------------

fn key_list(env: &Env, password: &str) -> Vec<Value> {
    let out = env
        .larder()
        .env("LARDER_PASSWORD", password)
        .args(["--json", "key", "list"])
        .output()
        .expect("run larder");
    assert_success(&out, "key list");
    match parse_json(&out.stdout) {
        Value::Array(v) => v,
        other => panic!("key list --json is not an array: {other}"),
    }
}

fn opens(env: &Env, password: &str) -> std::process::Output {
    env.larder()
        .env("LARDER_PASSWORD", password)
        .args(["restore", "latest"])
        .output()
        .expect("run larder")
}

#[test]
fn key_add_passwd_and_remove_flow() {
    let env = Env::init();
    let data = text_bytes(81, 50_000);
    env.snapshot("db", &data, &[]);
    let (pw1, pw2, pw3) = (PASSWORD, "second password", "third password");

    let slots = key_list(&env, pw1);
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0]["current"], json!(true));
    let slot1 = id_of(&slots[0]);

    // The only slot is the current one: refused.
    let out = env
        .larder()
        .args(["key", "remove", &slot1])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["the one this password opened"]);
    assert_eq!(key_list(&env, pw1).len(), 1);

    // add: both passwords open.
    let out = env
        .larder()
        .env("LARDER_NEW_PASSWORD", pw2)
        .args(["--json", "key", "add", "--host", "laptop"])
        .output()
        .expect("run larder");
    assert_success(&out, "key add");
    let slot2 = id_of(&parse_json(&out.stdout));
    for pw in [pw1, pw2] {
        let out = opens(&env, pw);
        assert_success(&out, &format!("open with {pw}"));
        assert_same_bytes(&out.stdout, &data, "restore");
    }
    let slots = key_list(&env, pw2);
    assert_eq!(slots.len(), 2);
    let current: Vec<_> = slots
        .iter()
        .filter(|s| s["current"] == json!(true))
        .collect();
    assert_eq!(current.len(), 1);
    assert_eq!(id_of(current[0]), slot2);
    assert!(slots.iter().any(|s| s["host"] == "laptop"));

    // passwd (opened with pw1): pw1 stops working, pw3 works, pw2 is untouched.
    let new_pw_file = env.path("new-pw");
    std::fs::write(&new_pw_file, format!("{pw3}\n")).expect("write new pw");
    let out = env
        .larder()
        .arg("key")
        .arg("passwd")
        .arg("--new-password-file")
        .arg(&new_pw_file)
        .output()
        .expect("run larder");
    assert_success(&out, "key passwd");
    assert_failure(&opens(&env, pw1), 12, &["wrong password"]);
    for pw in [pw2, pw3] {
        assert_success(&opens(&env, pw), &format!("open with {pw}"));
    }
    let slots = key_list(&env, pw3);
    assert_eq!(slots.len(), 2);
    assert!(
        !slots.iter().any(|s| id_of(s) == slot1),
        "old slot still there"
    );

    // remove pw2's slot by prefix while opened with pw3.
    let out = env
        .larder()
        .env("LARDER_PASSWORD", pw3)
        .args(["key", "remove", &slot2[..12]])
        .output()
        .expect("run larder");
    assert_success(&out, "key remove");
    assert_failure(&opens(&env, pw2), 12, &["wrong password"]);
    let slots = key_list(&env, pw3);
    assert_eq!(slots.len(), 1);

    // The last (and current) slot cannot be removed.
    let last = id_of(&slots[0]);
    let out = env
        .larder()
        .env("LARDER_PASSWORD", pw3)
        .args(["key", "remove", &last])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &[]);
    let out = opens(&env, pw3);
    assert_success(&out, "open after refused remove");
    assert_same_bytes(&out.stdout, &data, "restore with the last password");

    // No slot matches.
    let out = env
        .larder()
        .env("LARDER_PASSWORD", pw3)
        .args(["key", "remove", "ffffffffffff0000"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["no key slot matches"]);
}

// ---------------------------------------------------------------------------------------
// JSON output
// ---------------------------------------------------------------------------------------

#[test]
fn cat_and_json_outputs_are_valid_json() {
    let env = Env::init_with(&[
        "--chunk-min",
        "2K",
        "--chunk-avg",
        "8K",
        "--chunk-max",
        "64K",
        "--pack-size",
        "4M",
        "--compression",
        "5",
    ]);
    let report = env.snapshot("db", &text_bytes(91, 100_000), &["--host", "h1"]);
    for field in [
        "packs_added",
        "index_segments_added",
        "blobs_added",
        "dedup_ratio",
    ] {
        assert!(
            report.get(field).is_some(),
            "snapshot --json lacks {field}: {report}"
        );
    }
    let id = id_of(&report);

    let config = env.cat(&["config"]);
    assert_eq!(config["version"], json!(1));
    assert_eq!(config["chunker"]["min_size"], json!(2048));
    assert_eq!(config["chunker"]["avg_size"], json!(8192));
    assert_eq!(config["chunker"]["max_size"], json!(65536));
    assert_eq!(config["pack_size"], json!(4 << 20));
    assert_eq!(config["zstd_level"], json!(5));
    id_of(&json!({"id": config["repo_id"]}));

    let keys = env.cat(&["keys"]);
    assert_eq!(keys.as_array().map(Vec::len), Some(1));

    for sel in ["latest", &id, &id[..8]] {
        let snap = env.cat(&["snapshot", sel]);
        assert_eq!(snap["id"], json!(id));
        assert_eq!(snap["snapshot"], report["snapshot"], "cat snapshot {sel}");
    }

    let segments = env.objects("index");
    assert_eq!(segments.len(), 1);
    let seg = env.cat(&["index", &file_name(&segments[0])]);
    let packs = seg["packs"].as_array().expect("index segment lists packs");
    assert!(!packs.is_empty());
    let pack_files: Vec<String> = env.objects("packs").iter().map(|p| file_name(p)).collect();
    for p in packs {
        let pack_id = id_of(p);
        assert!(
            pack_files.contains(&pack_id),
            "index names missing pack {pack_id}"
        );
        let pack = env.cat(&["pack", &pack_id]);
        assert_eq!(pack["blobs"], p["blobs"], "pack header and index disagree");
    }

    let root = report["snapshot"]["root"]["content_list"]
        .as_str()
        .expect("root content list");
    let blob = env.cat(&["blob", root]);
    assert!(blob.get("content_list").is_some(), "{blob}");

    let list = env.snapshots(&[]);
    assert_eq!(list, json!([{"id": id, "snapshot": report["snapshot"]}]));

    let out = env
        .larder()
        .args(["cat", "index", "xyz"])
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["xyz"]);
}

// ---------------------------------------------------------------------------------------
// Closed pipes
// ---------------------------------------------------------------------------------------

#[test]
fn restore_into_closed_pipe_exits_1_without_panic() {
    // Large chunks, so the whole stream is one or two walker batches (the long-stream case
    // is `restore_of_long_stream_into_closed_pipe_exits_1_without_hanging`).
    let env = Env::init_with(&[
        "--chunk-min",
        "8K",
        "--chunk-avg",
        "16K",
        "--chunk-max",
        "64K",
    ]);
    let report = env.snapshot("db", &random_bytes(101, 4 << 20), &[]);
    assert!(stat(&report, "chunks") <= 2 * 512, "{report}");
    let out = wait_output(
        env.shell(
            r#"set -o pipefail; timeout 60 "$LARDER" restore latest | head -c 10 >/dev/null"#,
        )
        .spawn()
        .expect("spawn bash"),
        "restore | head",
    );
    assert_failure(&out, 1, &["standard output"]);
}

#[test]
fn restore_of_long_stream_into_closed_pipe_exits_1_without_hanging() {
    // Small chunks: ~4000 chunks in 4 MiB, i.e. many walker batches still to come when the
    // pipe closes, like any multi-gigabyte dump.
    let env = Env::init_with(&[
        "--chunk-min",
        "256",
        "--chunk-avg",
        "1K",
        "--chunk-max",
        "4K",
    ]);
    let report = env.snapshot("db", &random_bytes(102, 4 << 20), &[]);
    assert!(stat(&report, "chunks") > 3 * 512, "{report}");
    let out = wait_output(
        env.shell(
            r#"set -o pipefail; timeout 20 "$LARDER" restore latest | head -c 10 >/dev/null"#,
        )
        .spawn()
        .expect("spawn bash"),
        "restore | head",
    );
    assert_ne!(
        out.status.code(),
        Some(124),
        "restore hung on a closed pipe"
    );
    assert_failure(&out, 1, &["standard output"]);
}

#[test]
fn listing_into_closed_pipe_exits_1_without_panic() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);
    for cmd in [
        r#""$LARDER" --json snapshots"#,
        r#""$LARDER" snapshots"#,
        r#""$LARDER" cat config"#,
    ] {
        let out = wait_output(
            env.shell(&format!("set -o pipefail; timeout 60 {cmd} | true"))
                .spawn()
                .expect("spawn bash"),
            cmd,
        );
        assert_failure(&out, 1, &["standard output"]);
    }
}

// ---------------------------------------------------------------------------------------
// init
// ---------------------------------------------------------------------------------------

#[test]
fn init_twice_fails_with_already_exists() {
    let env = Env::init();
    let config = std::fs::read(env.repo.join("config")).expect("read config");
    let keys = env.objects("keys");
    let out = env
        .larder()
        .arg("init")
        .args(FAST_KDF)
        .output()
        .expect("run larder");
    assert_failure(&out, 2, &["already exists"]);
    assert_eq!(
        std::fs::read(env.repo.join("config")).expect("read config"),
        config
    );
    assert_eq!(env.objects("keys"), keys, "second init added a key slot");
    env.larder().arg("snapshots").assert().success();
}

#[test]
fn init_rejects_bad_flag_values_with_exit_2() {
    let env = Env::new();
    let run = |args: &[&str]| {
        env.larder()
            .arg("init")
            .args(args)
            .output()
            .expect("run larder")
    };
    let no_repo = |args: &[&str]| {
        assert!(
            !env.repo.join("config").exists(),
            "init {args:?} created a repository"
        );
    };
    // Checked by larder: one error line.
    for bad in [
        &["--chunk-avg", "1"][..],
        &["--chunk-min", "16K", "--chunk-avg", "8K"],
        &["--chunk-max", "8G"],
        &[
            "--chunk-min",
            "2K",
            "--chunk-avg",
            "3K",
            "--chunk-max",
            "2K",
        ],
    ] {
        let args = [&FAST_KDF[..], bad].concat();
        assert_failure(&run(&args), 2, &["chunk"]);
        no_repo(&args);
    }
    for bad in [
        [
            "--kdf-memory",
            "1",
            "--kdf-iterations",
            "2",
            "--kdf-parallelism",
            "1",
        ],
        [
            "--kdf-memory",
            "19",
            "--kdf-iterations",
            "1",
            "--kdf-parallelism",
            "1",
        ],
    ] {
        assert_failure(&run(&bad), 2, &["key derivation parameters"]);
        no_repo(&bad);
    }
    // Checked by clap: a usage message, exit 2.
    for bad in [
        &["--compression", "99"][..],
        &["--compression", "-8"],
        &["--chunk-avg", "eight"],
        &["--pack-size", "1X"],
    ] {
        let args = [&FAST_KDF[..], bad].concat();
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "init {bad:?}: {out:?}");
        assert_no_panic(&out.stderr);
        no_repo(&args);
    }
}

// ---------------------------------------------------------------------------------------
// Error messages
// ---------------------------------------------------------------------------------------

/// Asserts no `: `-separated part of the error line appears twice.
fn assert_cause_stated_once(err: &str) {
    let parts: Vec<&str> = err.trim().split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.len() < 4 || !parts[i + 1..].contains(p),
            "`{p}` appears twice in the error line:\n{err}"
        );
    }
}

#[test]
fn error_line_states_its_cause_once() {
    let env = Env::init();
    env.snapshot("db", b"data", &[]);

    let out = env
        .larder()
        .args(["snapshot", "--name", "db", "--", "/nonexistent/pg_dump"])
        .output()
        .expect("run larder");
    assert_cause_stated_once(&assert_failure(&out, 13, &["os error 2"]));

    let out = env
        .larder()
        .args(["restore", "latest", "-o"])
        .arg(env.path("missing-dir/out.sql"))
        .output()
        .expect("run larder");
    assert_cause_stated_once(&assert_failure(&out, 1, &["missing-dir"]));

    let config = env.repo.join("config");
    let bytes = std::fs::read(&config).expect("read config");
    std::fs::write(&config, &bytes[..30]).expect("truncate config");
    let out = env.larder().arg("snapshots").output().expect("run larder");
    assert_cause_stated_once(&assert_failure(&out, 14, &["config"]));
}

/// `--json` reports what a run asked of the repository's storage; a deduplicated second
/// snapshot writes only its lock and its snapshot object.
#[test]
fn json_reports_storage_requests() {
    let env = Env::init();
    let data = random_bytes(31, 1_000_000);
    let first = env.snapshot("req", &data, &[]);
    let r = &first["requests"];
    assert!(
        r["put"].as_u64().unwrap() >= 4,
        "lock, pack, index, snapshot: {r}"
    );
    assert!(r["bytes_up"].as_u64().unwrap() >= 1_000_000, "{r}");
    let second = env.snapshot("req", &data, &[]);
    let r = &second["requests"];
    assert_eq!(r["put"], 2, "lock and snapshot object only: {r}");
    assert!(r["bytes_up"].as_u64().unwrap() < 4096, "{r}");
    assert_eq!(r["delete"], 0, "{r}");
}
