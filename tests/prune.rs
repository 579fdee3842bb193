//! Prune: what no snapshot needs is deleted, mostly-unused packs are repacked, everything kept
//! restores; a kill -9 at any point of prune or of a snapshot leaves a repository whose
//! snapshots all restore and that the next prune cleans up; prune and snapshots overlap
//! safely under locks.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// Deletes a snapshot object as `forget` does.
fn forget(env: &Env, id: &str) {
    std::fs::remove_file(env.repo.join("snapshots").join(id)).expect("remove snapshot object");
}

fn prune(env: &Env, extra: &[&str]) -> Value {
    let out = env
        .larder()
        .args(["prune", "--json"])
        .args(extra)
        .output()
        .expect("run prune");
    assert_success(&out, "prune");
    parse_json(&out.stdout)
}

fn pack_count(env: &Env) -> usize {
    env.objects("packs").len()
}

fn pack_bytes(env: &Env) -> u64 {
    env.objects("packs")
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat a pack").len())
        .sum()
}

/// Every snapshot in the repository restores to what `want` says (name → bytes), also with
/// a rebuilt catalog.
fn all_restore(env: &Env, want: &[(String, Vec<u8>)]) {
    for rebuild in [false, true] {
        if rebuild {
            env.drop_catalog();
        }
        let snaps = env.snapshots(&[]);
        for s in snaps.as_array().expect("a list") {
            let name = s["snapshot"]["name"].as_str().expect("a name");
            let id = s["id"].as_str().expect("an id");
            let data = &want
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("unexpected snapshot {name}"))
                .1;
            let got = env.restore(&[id]);
            assert!(got == *data, "snapshot {name} restored different bytes");
        }
    }
}

fn streams() -> Vec<(String, Vec<u8>)> {
    (0..4)
        .map(|i| (format!("s{i}"), random_bytes(100 + i, 2_500_000)))
        .collect()
}

#[test]
fn prune_deletes_unused_packs_and_repacks_partly_used_ones() {
    let env = Env::init_with(&["--pack-size", "1M"]);
    let a = random_bytes(1, 3_000_000);
    let b = random_bytes(2, 3_000_000);
    let mut ab = a.clone();
    ab.extend_from_slice(&b);
    let x = id_of(&env.snapshot("x", &ab, &[]));
    env.snapshot("y", &b[..1_500_000], &[]);
    let before = pack_count(&env);
    let v = prune(&env, &["--dry-run"]);
    assert_eq!(v["plan"]["delete"].as_array().unwrap().len(), 0);
    assert_eq!(pack_count(&env), before, "a dry run changes nothing");

    forget(&env, &x);
    let dry = prune(&env, &["--dry-run"]);
    assert!(dry["bytes_freed"].as_u64().unwrap() > 3_000_000);
    assert_eq!(pack_count(&env), before);
    let v = prune(&env, &["--max-unused", "10%"]);
    assert!(v["report"]["packs_deleted"].as_u64().unwrap() > 0);
    // What is left is y's 1.5 MB and its content list, not x's 6 MB.
    let left = pack_bytes(&env);
    assert!(
        (1_500_000..2_000_000).contains(&left),
        "{left} bytes of packs left"
    );
    all_restore(&env, &[("y".into(), b[..1_500_000].to_vec())]);
    // A second prune finds nothing to do.
    let v = prune(&env, &[]);
    assert!(v["plan"]["delete"].as_array().unwrap().is_empty());
    assert!(v["plan"]["repack"].as_array().unwrap().is_empty());
}

#[test]
fn prune_keeps_directory_snapshots_whole() {
    let env = Env::init_with(&["--pack-size", "1M"]);
    let dir = env.path("tree");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("a"), random_bytes(5, 2_000_000)).unwrap();
    std::fs::write(dir.join("sub/b"), random_bytes(6, 3_000)).unwrap();
    let first = id_of(&env.snapshot_paths("t", &[&dir]));
    std::fs::write(dir.join("a"), random_bytes(7, 2_000_000)).unwrap();
    env.snapshot_paths("t", &[&dir]);
    forget(&env, &first);
    prune(&env, &["--max-unused", "0%"]);
    env.drop_catalog();
    let target = env.path("out");
    env.larder()
        .args(["restore", "latest", "--name", "t", "--target"])
        .arg(&target)
        .assert()
        .success();
    let got = target.join(dir.strip_prefix("/").unwrap());
    assert_eq!(
        std::fs::read(got.join("a")).unwrap(),
        random_bytes(7, 2_000_000)
    );
    assert_eq!(
        std::fs::read(got.join("sub/b")).unwrap(),
        random_bytes(6, 3_000)
    );
}

#[test]
fn prune_refuses_while_a_snapshot_holds_its_lock_and_waits_with_lock_wait() {
    let env = Env::init();
    let mut slow = env
        .std_larder()
        .args([
            "snapshot",
            "--name",
            "slow",
            "--",
            "sh",
            "-c",
            "sleep 2; echo done",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while env.objects("locks").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the snapshot never took its lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = env.larder().args(["prune"]).output().unwrap();
    assert_failure(&out, 11, &["locked", "snapshot"]);
    let out = env
        .larder()
        .args(["prune", "--lock-wait", "2m"])
        .output()
        .unwrap();
    assert_success(&out, "prune --lock-wait");
    assert!(slow.wait().unwrap().success());
    assert_eq!(env.restore(&["latest", "--name", "slow"]), b"done\n");
}

#[test]
fn concurrent_snapshots_and_prune_all_succeed_and_everything_kept_restores() {
    let env = Env::init_with(&["--pack-size", "1M"]);
    let data = streams();
    let old = id_of(&env.snapshot("old", &random_bytes(9, 3_000_000), &[]));
    forget(&env, &old);
    let mut children = Vec::new();
    for (name, bytes) in &data[..2] {
        let f = env.path(name);
        std::fs::write(&f, bytes).unwrap();
        children.push(
            env.std_larder()
                .args(["snapshot", "--name", name, "--stdin", "--lock-wait", "2m"])
                .stdin(std::fs::File::open(&f).unwrap())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    children.push(
        env.std_larder()
            .args(["prune", "--lock-wait", "2m", "--max-unused", "0%"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    prune(&env, &["--max-unused", "0%"]);
    all_restore(&env, &data[..2]);
}

/// Kills `larder ARGS` after a random delay below `max`; returns whether it finished first.
fn run_and_kill(
    env: &Env,
    args: &[&str],
    stdin: Option<&std::path::Path>,
    delay: Duration,
) -> bool {
    let mut c = env.std_larder();
    c.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    if let Some(f) = stdin {
        c.stdin(std::fs::File::open(f).expect("open input"));
    }
    let mut child = c.spawn().expect("spawn larder");
    std::thread::sleep(delay);
    let finished = child.try_wait().expect("poll").is_some();
    if !finished {
        child.kill().expect("kill -9");
    }
    child.wait().expect("reap");
    finished
}

#[test]
fn kill_9_during_prune_and_snapshot_never_loses_a_kept_snapshot() {
    let env = Env::init_with(&["--pack-size", "1M"]);
    let mut rng = Rng::new(42);
    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    let mut kills = 0;
    for round in 0..14u64 {
        // A snapshot, killed at a random moment half of the time.
        let name = format!("r{round}");
        let bytes = random_bytes(
            1000 + round,
            2_000_000 + 500_000 * usize::try_from(round % 3).unwrap(),
        );
        let f = env.path(&name);
        std::fs::write(&f, &bytes).unwrap();
        let delay = Duration::from_millis(rng.below(400));
        if round % 2 == 0 {
            let args = ["snapshot", "--name", &name, "--stdin"];
            if !run_and_kill(&env, &args, Some(&f), delay) {
                kills += 1;
            }
        } else {
            env.larder()
                .args(["snapshot", "--name", &name, "--stdin"])
                .pipe_stdin(&f)
                .unwrap()
                .assert()
                .success();
        }
        // A killed snapshot may or may not have been written; keep what exists.
        let names: Vec<String> = env
            .snapshots(&[])
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["snapshot"]["name"].as_str().unwrap().to_owned())
            .collect();
        if names.contains(&name) {
            kept.push((name.clone(), bytes));
        }
        // Forget the oldest when there are more than three.
        if kept.len() > 3 {
            let (old, _) = kept.remove(0);
            for s in env.snapshots(&["--name", &old]).as_array().unwrap() {
                forget(&env, s["id"].as_str().unwrap());
            }
        }
        // Prune, killed at a random moment, until two runs per round were killed mid-way
        // (a run that finishes before its moment is not counted) or six were tried.
        let mut killed_here = 0;
        for _ in 0..6 {
            if killed_here == 2 {
                break;
            }
            let delay = Duration::from_millis(rng.below(200));
            if !run_and_kill(&env, &["prune", "--max-unused", "0%"], None, delay) {
                kills += 1;
                killed_here += 1;
            }
            // `check` passes (leftover packs are warnings) and everything kept restores.
            let out = env.larder().args(["check"]).output().expect("run check");
            assert_success(&out, "check after a killed prune");
            all_restore(&env, &kept);
        }
    }
    // The next complete prune leaves nothing unreferenced, and everything still restores.
    prune(&env, &["--max-unused", "0%"]);
    let v = prune(&env, &["--max-unused", "0%", "--dry-run"]);
    assert!(v["plan"]["unindexed"].as_array().unwrap().is_empty());
    assert!(v["plan"]["delete"].as_array().unwrap().is_empty());
    all_restore(&env, &kept);
    assert!(
        kills >= 20,
        "only {kills} runs were killed mid-way; the test proves little"
    );
}
