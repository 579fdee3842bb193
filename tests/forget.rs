//! `forget` from the command line: the plan with reasons, refusal to empty a group, the
//! series filter, and `--prune`. The policy itself is tested against a table and against
//! restic in `src/retention.rs` and `tests/retention.rs`.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use common::*;

/// Ten nightly snapshots of `name`, 2026-11-01 … 10 at 02:00 UTC, each a little different.
fn nights(env: &Env, name: &str) {
    for d in 1..=10u64 {
        let mut data = random_bytes(7, 300_000);
        // Each series' nightly change is its own, so forgetting one series frees it.
        let series = u64::from(name.as_bytes()[0]) * 1000;
        data.extend_from_slice(&random_bytes(series + 100 + d, 50_000));
        env.snapshot(
            name,
            &data,
            &["--time", &format!("2026-11-{d:02}T02:00:00Z")],
        );
    }
}

fn names_and_days(env: &Env) -> Vec<(String, String)> {
    env.snapshots(&[])
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| {
            (
                s["snapshot"]["name"].as_str().expect("a name").to_owned(),
                s["snapshot"]["time"].as_str().expect("a time")[..10].to_owned(),
            )
        })
        .collect()
}

#[test]
fn dry_run_shows_each_decision_and_its_reasons_and_changes_nothing() {
    let env = Env::init();
    nights(&env, "db");
    let out = env
        .larder()
        .env("TZ", "UTC")
        .args([
            "forget",
            "--keep-last",
            "2",
            "--keep-weekly",
            "2",
            "--dry-run",
        ])
        .output()
        .unwrap();
    assert_success(&out, "forget --dry-run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("last snapshot"), "{text}");
    assert!(text.contains("weekly snapshot"), "{text}");
    assert_eq!(
        text.lines().filter(|l| l.contains("  remove")).count(),
        7,
        "{text}"
    );
    assert_eq!(env.snapshot_ids().len(), 10);

    let out = env
        .larder()
        .env("TZ", "UTC")
        .args([
            "forget",
            "--keep-last",
            "2",
            "--keep-weekly",
            "2",
            "--dry-run",
            "--json",
        ])
        .output()
        .unwrap();
    let v = parse_json(&out.stdout);
    let snaps = v["groups"][0]["snapshots"].as_array().unwrap();
    assert_eq!(snaps.len(), 10);
    // 2026-11-10 and 09 by keep-last; 11-08 (Sunday, ISO week 45) and 11-10 (week 46) weekly.
    let kept: Vec<_> = snaps.iter().filter(|s| s["keep"] == true).collect();
    assert_eq!(kept.len(), 3);
    assert_eq!(
        kept[0]["reasons"],
        serde_json::json!(["last snapshot", "weekly snapshot"])
    );
}

#[test]
fn forget_removes_what_the_policy_does_not_keep_and_prune_frees_it() {
    let env = Env::init();
    nights(&env, "db");
    nights(&env, "other");
    let before = env.objects("packs").len();
    let out = env
        .larder()
        .env("TZ", "UTC")
        .args([
            "forget",
            "--name",
            "db",
            "--keep-daily",
            "3",
            "--prune",
            "--max-unused",
            "0%",
        ])
        .output()
        .unwrap();
    assert_success(&out, "forget --prune");
    let left = names_and_days(&env);
    assert_eq!(left.iter().filter(|(n, _)| n == "other").count(), 10);
    let db: Vec<_> = left
        .iter()
        .filter(|(n, _)| n == "db")
        .map(|(_, d)| d.as_str())
        .collect();
    assert_eq!(db, ["2026-11-08", "2026-11-09", "2026-11-10"]);
    assert!(env.objects("packs").len() < before);
    for d in 8..=10u64 {
        let mut want = random_bytes(7, 300_000);
        want.extend_from_slice(&random_bytes(u64::from(b'd') * 1000 + 100 + d, 50_000));
        let got = env.restore(&[
            "latest",
            "--name",
            "db",
            "--at",
            &format!("2026-11-{d:02}T03:00:00Z"),
        ]);
        assert!(got == want, "day {d} restored different bytes");
    }
}

#[test]
fn a_policy_that_empties_a_group_is_refused_unless_allowed() {
    let env = Env::init();
    nights(&env, "db");
    let out = env
        .larder()
        .args(["forget", "--keep-tag", "nightly"])
        .output()
        .unwrap();
    let err = assert_failure(
        &out,
        2,
        &["refusing to remove every snapshot", "--allow-empty"],
    );
    assert_error_line(&err);
    assert_eq!(env.snapshot_ids().len(), 10);
    env.larder()
        .args(["forget", "--keep-tag", "nightly", "--allow-empty"])
        .assert()
        .success();
    assert!(env.snapshot_ids().is_empty());
}

#[test]
fn no_policy_is_a_usage_error() {
    let env = Env::init();
    nights(&env, "db");
    let out = env.larder().args(["forget"]).output().unwrap();
    assert_failure(&out, 2, &["no policy"]);
    assert_eq!(env.snapshot_ids().len(), 10);
}
