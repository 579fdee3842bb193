//! Locks (`format-spec/lock.md`): a conflicting lock fails with exit 11 naming its holder,
//! `--lock-wait` waits for it, stale locks (a killed process on this host, or not refreshed
//! for 30 minutes) are taken over with a note, live ones are never broken, and `unlock`
//! removes only stale ones unless told otherwise.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use larder::backend::local::LocalBackend;
use larder::crypto::key_slot::Password;
use larder::format::lock::{LockBody, LockKind};
use larder::repo::Repo;
use larder::repo::lock::Lock;
use larder::repo::object;

fn open(env: &Env) -> Repo {
    let b = Arc::new(LocalBackend::open(&env.repo));
    let pw = Password::new(PASSWORD.as_bytes().to_vec());
    Repo::open(b, &pw, &env.path("lib-cache")).expect("open repository")
}

/// Writes a lock object as another process would have.
fn plant(env: &Env, kind: LockKind, host: &str, pid: u32, age: Duration) {
    let repo = open(env);
    let t = jiff::Timestamp::now() - jiff::SignedDuration::try_from(age).expect("short age");
    let body = LockBody {
        kind,
        host: host.into(),
        pid,
        command: "planted".into(),
        created: t,
        refreshed: t,
        nonce: "0123456789abcdef".into(),
    };
    object::store_lock(repo.backend().as_ref(), repo.keys(), &body).expect("store a lock");
}

/// Lock objects (not the temporary files of a put in progress, which a killed process may
/// leave behind).
fn locks(env: &Env) -> usize {
    std::fs::read_dir(env.repo.join("locks"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| !e.file_name().to_string_lossy().starts_with(".tmp-"))
                .count()
        })
        .unwrap_or(0)
}

fn this_host() -> String {
    larder::snapshot::default_host()
}

#[test]
fn a_live_exclusive_lock_fails_a_snapshot_with_exit_11_naming_it() {
    let env = Env::init();
    plant(
        &env,
        LockKind::Exclusive,
        "other-host",
        1,
        Duration::from_secs(5),
    );
    let out = env
        .larder()
        .args(["snapshot", "--name", "s", "--stdin"])
        .write_stdin("data")
        .output()
        .unwrap();
    let err = assert_failure(&out, 11, &["locked", "exclusive", "planted", "other-host"]);
    assert_error_line(&err);
    assert!(env.snapshot_ids().is_empty());
    // The lock is still there: live locks are never broken.
    assert_eq!(locks(&env), 1);
}

#[test]
fn shared_locks_do_not_block_each_other_and_are_released() {
    let env = Env::init();
    plant(
        &env,
        LockKind::Shared,
        "other-host",
        1,
        Duration::from_secs(5),
    );
    env.snapshot("s", b"data", &[]);
    // Only the planted lock remains: ours was deleted on exit.
    assert_eq!(locks(&env), 1);
}

#[test]
fn lock_wait_waits_for_the_holder_to_finish() {
    let env = Env::init();
    let repo = open(&env);
    let lock = Lock::acquire(
        repo.backend().clone(),
        repo.keys().clone(),
        LockKind::Exclusive,
        "test-holder",
        Duration::ZERO,
        &mut |_| {},
    )
    .unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(lock);
    });
    let started = Instant::now();
    let out = env
        .larder()
        .args(["snapshot", "--name", "s", "--stdin", "--lock-wait", "60s"])
        .write_stdin("data")
        .output()
        .unwrap();
    assert_success(&out, "snapshot with --lock-wait");
    assert!(started.elapsed() >= Duration::from_millis(1000));
    release.join().unwrap();
    assert_eq!(env.snapshot_ids().len(), 1);
    // Without waiting long enough it fails.
    let repo = open(&env);
    let _held = Lock::acquire(
        repo.backend().clone(),
        repo.keys().clone(),
        LockKind::Exclusive,
        "test-holder",
        Duration::ZERO,
        &mut |_| {},
    )
    .unwrap();
    let out = env
        .larder()
        .args(["snapshot", "--name", "s", "--stdin", "--lock-wait", "1s"])
        .write_stdin("data")
        .output()
        .unwrap();
    assert_failure(&out, 11, &["test-holder", "waited 1 s"]);
}

#[test]
fn stale_locks_are_taken_over_with_a_note() {
    let env = Env::init();
    // A process of this host that no longer runs (a killed job).
    plant(
        &env,
        LockKind::Exclusive,
        &this_host(),
        0x7fff_fff0,
        Duration::from_secs(5),
    );
    // Another host's lock not refreshed for an hour.
    plant(
        &env,
        LockKind::Exclusive,
        "other-host",
        1,
        Duration::from_secs(3600),
    );
    let out = env
        .larder()
        .args(["snapshot", "--name", "s", "--stdin"])
        .write_stdin("data")
        .output()
        .unwrap();
    assert_success(&out, "snapshot over stale locks");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("removing stale lock").count(), 2, "{err}");
    assert_eq!(locks(&env), 0);
}

#[test]
fn a_killed_snapshot_does_not_block_the_next_one() {
    let env = Env::init();
    let mut child = env
        .std_larder()
        .args(["snapshot", "--name", "s", "--", "sleep", "30"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while locks(&env) == 0 {
        assert!(
            Instant::now() < deadline,
            "the snapshot never took its lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(locks(&env), 1, "a killed process leaves its lock behind");
    // An exclusive lock (what prune takes) is not blocked by it: its pid is gone.
    let repo = open(&env);
    let mut notes = Vec::new();
    let lock = Lock::acquire(
        repo.backend().clone(),
        repo.keys().clone(),
        LockKind::Exclusive,
        "prune",
        Duration::ZERO,
        &mut |n| notes.push(n),
    )
    .unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    drop(lock);
    env.snapshot("s", b"next night", &[]);
}

#[test]
fn unlock_removes_only_stale_locks_unless_told() {
    let env = Env::init();
    plant(
        &env,
        LockKind::Shared,
        "other-host",
        1,
        Duration::from_secs(3600),
    );
    plant(
        &env,
        LockKind::Exclusive,
        "other-host",
        2,
        Duration::from_secs(5),
    );
    let out = env.larder().args(["unlock", "--json"]).output().unwrap();
    assert_success(&out, "unlock");
    let v = parse_json(&out.stdout);
    assert_eq!(v["removed"].as_array().unwrap().len(), 1);
    assert_eq!(v["remaining"].as_array().unwrap().len(), 1);
    assert_eq!(locks(&env), 1);
    env.larder()
        .args(["unlock", "--remove-all"])
        .assert()
        .success();
    assert_eq!(locks(&env), 0);
}

#[test]
fn exclusive_and_shared_never_hold_at_once() {
    // Many shared and exclusive acquirers race; an exclusive holder must never see another
    // holder while it holds.
    let env = Env::init();
    let holders = Arc::new(std::sync::Mutex::new((0u32, 0u32))); // (shared, exclusive)
    let mut threads = Vec::new();
    for i in 0..6 {
        let repo = open(&env);
        let holders = holders.clone();
        threads.push(std::thread::spawn(move || {
            let kind = if i % 3 == 0 {
                LockKind::Exclusive
            } else {
                LockKind::Shared
            };
            for _ in 0..4 {
                let lock = Lock::acquire(
                    repo.backend().clone(),
                    repo.keys().clone(),
                    kind,
                    "race",
                    Duration::from_secs(60),
                    &mut |_| {},
                )
                .unwrap();
                {
                    let mut h = holders.lock().unwrap();
                    match kind {
                        LockKind::Exclusive => h.1 += 1,
                        LockKind::Shared => h.0 += 1,
                    }
                    assert!(h.1 <= 1 && (h.1 == 0 || h.0 == 0), "held at once: {h:?}");
                }
                std::thread::sleep(Duration::from_millis(20));
                {
                    let mut h = holders.lock().unwrap();
                    match kind {
                        LockKind::Exclusive => h.1 -= 1,
                        LockKind::Shared => h.0 -= 1,
                    }
                }
                drop(lock);
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(locks(&env), 0);
}
