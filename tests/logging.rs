//! Logs and progress (issue 6: "on a TTY, progress bars with bytes, rate and ETA, none when
//! not a TTY; `-q`/`-v`; logs through `tracing` with `RUST_LOG`-style filtering"). Logs go to
//! stderr; off a terminal they carry no timestamps or colours, and nothing else is drawn. A
//! terminal is made with `script` (util-linux), as in `progress.rs`.

#![allow(clippy::panic, reason = "tests fail by panicking")]

mod common;

use common::*;

/// `larder ARGS… snapshot --name db --stdin` fed 3 MiB of text from `seed` (compressible, so
/// no warning about the input), with `RUST_LOG` set to `rust_log` or removed; asserts success
/// and returns stderr.
fn snapshot_stderr(env: &Env, seed: u64, rust_log: Option<&str>, args: &[&str]) -> String {
    let mut cmd = env.larder();
    match rust_log {
        Some(v) => cmd.env("RUST_LOG", v),
        None => cmd.env_remove("RUST_LOG"),
    };
    let out = cmd
        .args(args)
        .args(["snapshot", "--name", "db", "--stdin"])
        .write_stdin(text_bytes(seed, 3 << 20))
        .output()
        .expect("run larder snapshot");
    assert_success(&out, "snapshot");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every line of `stderr` is a plain log line at one of `levels`: no timestamp, no colour,
/// no progress drawing, no password.
fn assert_plain_log(stderr: &str, levels: &[&str]) {
    assert!(!stderr.is_empty(), "no log lines at all");
    assert!(
        !stderr.contains('\x1b') && !stderr.contains('\r'),
        "escape sequences or progress redraws off a terminal:\n{stderr:?}"
    );
    assert!(!stderr.contains(PASSWORD), "the password reached the log");
    for line in stderr.lines() {
        let level = line.split_whitespace().next().unwrap_or_default();
        assert!(
            levels.contains(&level),
            "not a log line at {levels:?} (timestamped, or another level?): {line:?}"
        );
    }
}

#[test]
fn rust_log_debug_shows_the_repository_being_opened() {
    let env = Env::init();
    let err = snapshot_stderr(&env, 1, Some("larder=debug"), &[]);
    assert_plain_log(&err, &["INFO", "DEBUG"]);
    for needle in [
        "repository opened",
        "catalog synced",
        "lock acquired",
        "pack uploaded",
        "lock released",
    ] {
        assert!(err.contains(needle), "no `{needle}` line:\n{err}");
    }
    let opened = err
        .lines()
        .find(|l| l.contains("catalog synced"))
        .unwrap_or_default();
    assert!(
        opened.starts_with("DEBUG larder::repo:"),
        "the catalog sync line is not a debug event of larder::repo: {opened:?}"
    );
}

#[test]
fn a_piped_run_prints_nothing_on_stderr() {
    let env = Env::init();
    let err = snapshot_stderr(&env, 2, None, &[]);
    assert!(err.is_empty(), "stderr of a piped snapshot: {err:?}");
}

#[test]
fn verbose_counts_raise_the_level() {
    let env = Env::init();
    let info = snapshot_stderr(&env, 3, None, &["-v"]);
    assert_plain_log(&info, &["INFO"]);
    assert!(info.contains("repository opened"), "-v:\n{info}");

    let debug = snapshot_stderr(&env, 4, None, &["-vv"]);
    assert_plain_log(&debug, &["INFO", "DEBUG"]);
    assert!(debug.contains("pack uploaded"), "-vv:\n{debug}");
}

#[test]
fn rust_log_wins_over_verbose() {
    let env = Env::init();
    let err = snapshot_stderr(&env, 5, Some("off"), &["-vv"]);
    assert!(err.is_empty(), "RUST_LOG=off -vv still logged: {err:?}");
    let err = snapshot_stderr(&env, 6, Some("larder::repo::lock=debug"), &[]);
    assert_plain_log(&err, &["DEBUG"]);
    assert!(
        err.lines().all(|l| l.contains("larder::repo::lock")),
        "a line from outside the lock module:\n{err}"
    );
}

#[test]
fn quiet_and_verbose_conflict() {
    let env = Env::init();
    let out = env
        .larder()
        .args(["-q", "-v", "snapshots"])
        .output()
        .expect("run larder");
    assert_eq!(out.status.code(), Some(2), "-q -v should be a usage error");
}

#[test]
fn stream_restore_on_a_terminal_draws_a_bar_with_eta() {
    let env = Env::init();
    env.snapshot("db", &text_bytes(7, 4 << 20), &[]);
    // stdout is a slow pipe, so the restore lasts long enough to be drawn; stderr is the
    // terminal `script` provides.
    let script = "script -qec \"timeout 60 $LARDER restore --name db | (sleep 1; cat >/dev/null)\" /dev/null";
    let out = env.shell(script).output().expect("run script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "restore on a terminal failed:\n{screen}"
    );
    // Each redraw starts with a carriage return; the summary line also says "restored".
    let bar = screen
        .split(['\r', '\n'])
        .find(|l| l.contains("ETA"))
        .unwrap_or_else(|| panic!("no progress bar on the terminal:\n{screen:?}"));
    for needle in ["% ", " MiB restored, ", " MB/s, ETA "] {
        assert!(bar.contains(needle), "no `{needle}` in the bar {bar:?}");
    }
}

#[test]
fn quiet_draws_no_bar_on_a_terminal() {
    let env = Env::init();
    env.snapshot("db", &text_bytes(8, 4 << 20), &[]);
    let script = "script -qec \"timeout 60 $LARDER -q restore --name db | (sleep 1; cat >/dev/null)\" /dev/null";
    let out = env.shell(script).output().expect("run script");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "restore on a terminal failed:\n{screen}"
    );
    assert!(
        !screen.contains("ETA") && !screen.contains("\x1b[2K"),
        "a bar despite -q:\n{screen:?}"
    );
}
